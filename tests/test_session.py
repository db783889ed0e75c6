"""session.py: the session is built at the edge; a running one is never silently repurposed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading

import pytest
from pyspark.sql import SparkSession

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


def test_a_session_running_while_this_thread_has_none_active_is_reused_and_left_running(
    spark,
) -> None:
    """From another thread ``getActiveSession()`` is None while the test's session runs (a JVM
    thread-local); the run must still find the session and leave it to its owner."""
    seen: dict[str, object] = {}

    def run() -> None:
        seen["active_here"] = SparkSession.getActiveSession()
        run_session = RunSession(JobConfig(input_uri="file:/in", output_uri="file:/out"))
        seen["session"], seen["started"] = run_session({}), run_session.started
        run_session.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen["active_here"] is None  # what made a run stop a session it did not start
    assert seen["session"] is spark and seen["started"] is False
    assert spark.range(3).count() == 3


def test_a_jvm_that_cannot_start_is_a_clear_error(tmp_path) -> None:
    script = (
        "from fruits_pipeline.config import JobConfig\n"
        "from fruits_pipeline.errors import PipelineError\n"
        "from fruits_pipeline.session import build_session\n"
        "try:\n"
        "    build_session(JobConfig(input_uri='file:/in', output_uri='file:/out'), {})\n"
        "except PipelineError as error:\n"
        "    print(f'{int(error.exit_code)}: {error}')\n"
    )
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java")}
    completed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert completed.stdout.startswith("1: Spark's JVM did not start"), completed.stderr
    assert "Java 17" in completed.stdout
