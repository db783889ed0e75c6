"""The job with --table, in-process with the fake model (tests/fakes.py): a first run fills
the collection, a second on the same input runs the model on nothing, a third with new and
removed photos runs it on the new ones only; the run folder keeps its contract."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from fruits_pipeline.cli import parse_job_args
from fruits_pipeline.errors import TableMismatchError
from fruits_pipeline.job import run_job
from fruits_pipeline.manifest import Manifest
from fruits_pipeline.progress import Progress
from fruits_pipeline.session import RunSession
from fruits_pipeline.table import parse_table
from tests.conftest import SAMPLE
from tests.fake_chunks import table_run_arguments
from tests.fakes import FAKE_MODEL

pytestmark = pytest.mark.e2e  # whole runs of the job (the fake model)


def photos(root: Path, label: str, count: int, start: int = 0) -> None:
    (root / "Training" / label).mkdir(parents=True, exist_ok=True)
    for photo in sorted((SAMPLE / "Training" / label).glob("*.jpg"))[start : start + count]:
        shutil.copy(photo, root / "Training" / label / photo.name)


def run(inputs: Path, output: Path, table: Path, *extra: str) -> Manifest:
    config = parse_job_args([*table_run_arguments(inputs, output, table, chunk_images=3), *extra])
    return run_job(config, Progress(), RunSession(config), model=FAKE_MODEL)


def test_runs_with_a_table_cost_what_is_new(spark: SparkSession, tmp_path: Path) -> None:
    inputs, table = tmp_path / "in", tmp_path / "collection"
    photos(inputs, "apple", 4)
    photos(inputs, "mango", 4)
    first = run(inputs, tmp_path / "run1", table)
    assert first.status == "succeeded" and first.counts.model_runs == 8
    assert first.collection.rows == 8 and first.collection.chunks == 3
    assert first.collection.refitted and first.collection.drift is None
    assert first.collection.previous_snapshot is None
    assert set(first.outputs) == {"features", "errors", "pca", "model"}
    assert spark.read.parquet(str(tmp_path / "run1" / "pca")).count() == 8

    second = run(inputs, tmp_path / "run2", table)
    assert second.counts.model_runs == 0 and second.counts.featurized == 8
    assert not second.collection.refitted and second.collection.drift["new"]["rows"] == 0
    assert second.collection.previous_snapshot == first.collection.snapshot
    assert spark.read.parquet(str(tmp_path / "run2" / "pca")).count() == 0

    for gone in sorted((inputs / "Training" / "apple").glob("*.jpg"))[:2]:
        gone.unlink()
    photos(inputs, "mango", 3, start=4)
    third = run(inputs, tmp_path / "run3", table, "--refit", "never")
    assert third.counts.model_runs == 3 and third.counts.files_seen == 9
    assert third.collection.removed == 2 and third.collection.rows == 9
    assert not third.collection.refitted and third.collection.drift["new"]["rows"] == 3
    assert spark.read.parquet(str(tmp_path / "run3" / "pca")).count() == 3
    assert third.reduction.k == first.reduction.k

    collection = parse_table(str(table))
    assert spark.table(collection.features).count() == 9

    with pytest.raises(TableMismatchError):
        run(inputs, tmp_path / "run4", table, "--image-size", "96")
