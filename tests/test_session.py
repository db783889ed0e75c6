"""session.py: the session is built at the edge; a running one is never silently repurposed."""

from __future__ import annotations

import re

import pytest

from fruits_pipeline.config import JobConfig
from fruits_pipeline.errors import UsageError
from fruits_pipeline.session import RunSession, build_session, session_settings

pytestmark = pytest.mark.spark


def test_a_running_session_with_another_master_is_refused(spark) -> None:
    running = spark.sparkContext.master
    other = "local[3]" if running != "local[3]" else "local[1]"
    config = JobConfig(input_uri="file:/in", output_uri="file:/out", master=other)
    with pytest.raises(UsageError, match=rf"master {re.escape(running)} is already running"):
        build_session(config, {})
    same = JobConfig(input_uri="file:/in", output_uri="file:/out", master=running)
    assert build_session(same, {}) is spark


def test_a_running_session_is_reused_with_the_jobs_runtime_settings(spark) -> None:
    config = JobConfig(input_uri="file:/in", output_uri="file:/out", arrow_batch_size=64)
    try:
        assert build_session(config, {}) is spark
        assert spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "64"
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
    assert session_settings(config)["spark.sql.files.openCostInBytes"] == "65536"


def test_a_run_leaves_a_session_it_did_not_start_running(spark) -> None:
    run_session = RunSession(JobConfig(input_uri="file:/in", output_uri="file:/out"))
    assert run_session({}) is spark and not run_session.started
    run_session.close()
    assert spark.sparkContext._jsc is not None  # still usable
    assert spark.range(3).count() == 3
