"""job.py in-process, with the fake model (tests/fakes.py): what a run leaves behind when it
fails unexpectedly, and what --overwrite removes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

import fruits_pipeline.stages
from fruits_pipeline.cli import parse_job_args
from fruits_pipeline.errors import OutputExistsError
from fruits_pipeline.job import run_job
from fruits_pipeline.manifest import Manifest
from fruits_pipeline.progress import Progress
from fruits_pipeline.session import RunSession
from fruits_pipeline.stages import STAGES, Stage
from tests.conftest import SAMPLE
from tests.fakes import FAKE_MODEL, FAKE_SHA256

pytestmark = pytest.mark.e2e  # whole runs of the job (the fake model)


@pytest.fixture(scope="module")
def tiny_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six sample photos of two labels."""
    root = tmp_path_factory.mktemp("tiny")
    for label in ("apple", "mango"):
        (root / label).mkdir()
        for photo in sorted((SAMPLE / "Training" / label).glob("*.jpg"))[:3]:
            shutil.copy(photo, root / label / photo.name)
    return root


def run(spark: SparkSession, tiny_input: Path, output: Path, *extra: str) -> Manifest:
    """The job on ``tiny_input`` with the fake model, in the test session (``spark``)."""
    config = parse_job_args(
        ["run", "--input", str(tiny_input), "--output", str(output), "--no-probe", *extra]
    )
    return run_job(config, Progress(), RunSession(config), model=FAKE_MODEL)


def test_a_fake_model_run_writes_every_output(
    spark: SparkSession, tiny_input: Path, tmp_path: Path
) -> None:
    manifest = run(spark, tiny_input, tmp_path / "run", "--k", "2")
    assert manifest.status == "succeeded"
    assert manifest.weights.sha256 == FAKE_SHA256
    assert manifest.counts is not None and manifest.counts.featurized == 6
    assert manifest.reduction is not None and manifest.reduction.k == 2
    assert set(manifest.outputs) == {"features", "errors", "pca", "model", "inventory"}
    features = spark.read.parquet(str(tmp_path / "run" / "features")).collect()
    assert {len(row.features) for row in features} == {1280}
    by_label = {row.label: row.features[:3] for row in features}
    assert by_label["apple"] != by_label["mango"]  # the fake's features follow the pixels


def test_an_unexpected_failure_leaves_a_failed_manifest_and_no_staging(
    spark: SparkSession, tiny_input: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fit(*_: object, **__: object) -> None:
        raise RuntimeError("the fit broke")

    monkeypatch.setattr(fruits_pipeline.stages, "fit_reduction", broken_fit)
    output = tmp_path / "run"
    with pytest.raises(RuntimeError, match="the fit broke"):
        run(spark, tiny_input, output)
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"] == "RuntimeError: the fit broke"
    assert manifest["counts"]["files_seen"] == 6  # what was done before the failure is kept
    assert "reduction" not in manifest and "outputs" not in manifest
    assert list(manifest["timings_s"]) == list(STAGES[: STAGES.index(Stage.FIT.key)])
    written = sorted(p.name for p in output.iterdir() if not p.name.startswith("."))  # no .crc
    assert written == ["errors", "features", "inventory", "manifest.json"]


def test_overwrite_replaces_exactly_the_runs_outputs(
    spark: SparkSession, tiny_input: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    for part in ("features", "errors", "pca", "model", "staging"):
        (output / part).mkdir(parents=True)
        (output / part / "stale.parquet").write_text("old")
    (output / "manifest.json").write_text('{"status": "failed"}')
    (output / "notes.txt").write_text("mine")
    (output / "report").mkdir()
    (output / "report" / "report.html").write_text("mine too")
    with pytest.raises(OutputExistsError):
        run(spark, tiny_input, output)
    assert (output / "features" / "stale.parquet").exists()  # refused: nothing touched

    assert run(spark, tiny_input, output, "--overwrite").status == "succeeded"
    assert (output / "notes.txt").read_text() == "mine"
    assert (output / "report" / "report.html").read_text() == "mine too"
    assert not list(output.rglob("stale.parquet"))
    assert not (output / "staging").exists()
    assert json.loads((output / "manifest.json").read_text())["status"] == "succeeded"


def test_the_three_shapes_with_the_fake_model(
    spark: SparkSession, tiny_input: Path, tmp_path: Path
) -> None:
    """A full run, an incremental run on one more photo, a projection: each stage as the plan
    says (what runs the model, what is fitted, what is written)."""
    folder = tmp_path / "in"
    shutil.copytree(tiny_input, folder)
    first = run(spark, folder, tmp_path / "first", "--k", "2")
    extra = sorted((SAMPLE / "Test" / "apple").glob("*.jpg"))[0]
    shutil.copy(extra, folder / "apple" / f"new {extra.name}")

    again = run(spark, folder, tmp_path / "again", "--incremental-from", str(tmp_path / "first"))
    assert again.counts is not None and again.counts.model_runs == 1
    assert (again.counts.files_seen, again.counts.reused) == (7, 6)
    assert again.incremental_from == f"file:{tmp_path / 'first'}"

    config = parse_job_args(
        [
            "project",
            "--model",
            str(tmp_path / "first"),
            "--input",
            str(folder),
            "--output",
            str(tmp_path / "scored"),
        ]
    )
    scored = run_job(config, Progress(), RunSession(config), model=FAKE_MODEL)
    assert scored.model_run is not None and scored.model_run.k == first.reduction.k == 2
    assert scored.probe is not None and scored.probe.status == "skipped"
    assert scored.outputs is not None and "model" not in scored.outputs
    assert not (tmp_path / "scored" / "model").exists()
    assert scored.reduction is not None and scored.reduction.k_rule.startswith("from --model")
