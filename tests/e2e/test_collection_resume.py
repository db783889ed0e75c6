"""A run with --table killed (SIGKILL, the whole process group) after its first commit, then run
again with the same command: the model runs only on the images not committed, and the outputs
equal those of an uninterrupted run within 1e-5. The fake model (tests/fakes.py) stands in for
MobileNetV2; the killed run is a process of its own, as on a cluster."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession

from fruits_pipeline.cli import parse_job_args
from fruits_pipeline.job import run_job
from fruits_pipeline.manifest import Manifest
from fruits_pipeline.progress import Progress
from fruits_pipeline.session import RunSession
from fruits_pipeline.table import parse_table
from tests.conftest import ROOT, SAMPLE
from tests.fake_chunks import table_run_arguments
from tests.fakes import FAKE_MODEL

pytestmark = pytest.mark.e2e

IMAGES = 8
# The job's own entry point, with the fake model injected.
RUN_WITH_FAKE_MODEL = (
    "import sys\n"
    "from fruits_pipeline.cli import parse_job_args\n"
    "from fruits_pipeline.job import run_job\n"
    "from fruits_pipeline.progress import Progress\n"
    "from fruits_pipeline.session import RunSession\n"
    "from tests.fakes import FAKE_MODEL\n"
    "config = parse_job_args(sys.argv[1:])\n"
    "run_job(config, Progress(), RunSession(config), model=FAKE_MODEL)\n"
)


def arguments(inputs: Path, output: Path, table: Path) -> list[str]:
    """The run's command line; the same for the killed run and its re-run."""
    return table_run_arguments(inputs, output, table, chunk_images=2)


def run_here(inputs: Path, output: Path, table: Path) -> Manifest:
    """The command in this process, on the test session's Spark."""
    config = parse_job_args(arguments(inputs, output, table))
    return run_job(config, Progress(), RunSession(config), model=FAKE_MODEL)


def kill_after_first_commit(inputs: Path, output: Path, table: Path) -> None:
    """Start the run in its own process group; SIGKILL the group once ``features`` has its
    first commit (a Hadoop table's metadata v2: v1 is its creation)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN_WITH_FAKE_MODEL,
            *arguments(inputs, output, table),
            "--master",
            "local[1]",
        ],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    committed = table / "features" / "metadata" / "v2.metadata.json"
    deadline = time.monotonic() + 900
    while not committed.exists():
        assert process.poll() is None, "the run ended before its first commit"
        assert time.monotonic() < deadline, "no commit within 15 minutes"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def pca_by_path(spark: SparkSession, run: Path) -> dict[str, np.ndarray]:
    rows = spark.read.parquet(str(run / "pca")).collect()
    return {row.path: np.asarray(row.pca_features) for row in rows}


def test_a_killed_run_resumes_without_rerunning_committed_images(
    spark: SparkSession, tmp_path: Path
) -> None:
    inputs = tmp_path / "in" / "Training"
    for label in ("apple", "mango"):
        (inputs / label).mkdir(parents=True)
        for photo in sorted((SAMPLE / "Training" / label).glob("*.jpg"))[: IMAGES // 2]:
            shutil.copy(photo, inputs / label / photo.name)
    table = tmp_path / "collection"
    kill_after_first_commit(inputs.parent, tmp_path / "killed", table)
    collection = parse_table(str(table))
    for key, value in collection.settings.items():  # the catalog, as the job sets it
        spark.conf.set(key, value)
    committed = spark.table(collection.features).count() + spark.table(collection.errors).count()
    assert 0 < committed < IMAGES

    resumed = run_here(inputs.parent, tmp_path / "killed", table)
    assert resumed.status == "succeeded"
    assert resumed.counts.model_runs == IMAGES - committed  # counted by the UDF
    assert resumed.counts.featurized == IMAGES and resumed.collection.rows == IMAGES

    whole = run_here(inputs.parent, tmp_path / "whole", tmp_path / "uninterrupted")
    assert whole.counts.model_runs == IMAGES
    ours, theirs = pca_by_path(spark, tmp_path / "killed"), pca_by_path(spark, tmp_path / "whole")
    assert sorted(ours) == sorted(theirs) and len(ours) == IMAGES
    for path, vector in theirs.items():
        np.testing.assert_allclose(ours[path], vector, atol=1e-5)
    assert resumed.reduction.k == whole.reduction.k
