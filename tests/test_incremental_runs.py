"""Incremental runs reuse what did not change; ``project`` scores new photos with a saved run's
scaler + PCA. Whole runs of the command line, in-process, with the fake model (tests/fakes.py)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.functions import array_to_vector, vector_to_array

from fruits_pipeline.cli import parse_job_args, run_command
from fruits_pipeline.errors import ExitCode
from fruits_pipeline.reduction import PCA_COL, VECTOR_COL
from tests.conftest import SAMPLE
from tests.fakes import FAKE_MODEL, FAKE_SHA256

pytestmark = pytest.mark.e2e  # whole runs of the job (the fake model)

LABELS = ("apple", "mango", "Cocos")


def photos(split: str, label: str) -> list[Path]:
    return sorted((SAMPLE / split / label).glob("*.jpg"))


def command(*argv: str) -> int:
    """A command line's exit code, run in-process with the fake model."""
    return run_command(parse_job_args(argv), model=FAKE_MODEL)


def run(*args: str) -> int:
    return command("run", *args, "--no-probe")


def by_path(folder: Path, column: str) -> dict[str, np.ndarray]:
    frame = pd.read_parquet(folder)
    return {p: np.asarray(v) for p, v in zip(frame["path"], frame[column], strict=True)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run on 41 files (2 corrupt), the folder changed, an incremental run and a full run."""
    root = tmp_path_factory.mktemp("incremental")
    folder = root / "in"
    for label in LABELS:
        (folder / label).mkdir(parents=True)
        for photo in photos("Training", label)[:13]:
            shutil.copy(photo, folder / label / photo.name)
    noise = random.Random(1)
    (folder / "apple" / "corrupt a.jpg").write_bytes(noise.randbytes(900))
    (folder / "mango" / "corrupt b.jpg").write_bytes(noise.randbytes(900))
    assert run("--input", str(folder), "--output", str(root / "first")) == ExitCode.OK

    new = [photos("Test", label)[0] for label in LABELS] + [photos("Test", "apple")[1]]
    for photo in new:  # 4 new photos: 10 % of 39 good ones
        shutil.copy(photo, folder / photo.parent.name / f"new {photo.name}")
    changed = [
        folder / "apple" / photos("Training", "apple")[0].name,
        folder / "Cocos" / photos("Training", "Cocos")[0].name,
    ]
    for target, source in zip(changed, photos("Test", "Cocos")[1:3], strict=True):
        shutil.copy(source, target)  # other bytes, a new modification time
    deleted = [folder / "mango" / p.name for p in photos("Training", "mango")[1:4]]
    for path in deleted:
        path.unlink()
    shutil.copy(photos("Test", "mango")[1], folder / "mango" / "corrupt b.jpg")  # fixed
    code = run(
        "--input",
        str(folder),
        "--output",
        str(root / "second"),
        "--incremental-from",
        str(root / "first"),
    )
    assert code == ExitCode.OK
    assert run("--input", str(folder), "--output", str(root / "full")) == ExitCode.OK
    manifest = json.loads((root / "second" / "manifest.json").read_text())
    return {"root": root, "folder": folder, "manifest": manifest}


def test_only_new_and_changed_images_run_the_model(runs: dict[str, Any]) -> None:
    counts = runs["manifest"]["counts"]
    # counted in the featurize UDF: 4 new + 2 changed + the corrupt file that was fixed
    assert counts["model_runs"] == 7
    assert counts["featurized_new"] == 7
    assert counts["removed"] == 3
    assert counts["reused"] == 39 + 2 - 3 - 2 - 1  # the unchanged, the still-corrupt one included
    assert counts["files_seen"] == 41 + 4 - 3
    assert counts["per_label"]["mango"]["removed"] == 3
    assert counts["per_label"]["apple"]["featurized_new"] == 3  # 2 new + 1 changed
    assert runs["manifest"]["incremental_from"].endswith("/first")


def test_an_unchanged_failure_is_reported_again_without_the_model(runs: dict[str, Any]) -> None:
    errors = pd.read_parquet(runs["root"] / "second" / "errors")
    assert [Path(p).name for p in errors["path"]] == ["corrupt a.jpg"]
    assert list(errors["error_kind"]) == ["not_an_image"]
    fixed = by_path(runs["root"] / "second" / "features", "features")
    assert any(p.endswith("mango/corrupt b.jpg") for p in fixed)  # changed, so retried


def test_incremental_outputs_equal_a_full_run_on_the_final_folder(runs: dict[str, Any]) -> None:
    for part, column in (("features", "features"), ("pca", "pca_features")):
        incremental = by_path(runs["root"] / "second" / part, column)
        full = by_path(runs["root"] / "full" / part, column)
        assert incremental.keys() == full.keys() and len(full) == 41  # 42 files, 1 corrupt
        difference = max(np.abs(incremental[p] - full[p]).max() for p in full)
        assert difference <= 1e-5, (part, difference)
    errors = pd.read_parquet(runs["root"] / "full" / "errors")
    assert [Path(p).name for p in errors["path"]] == ["corrupt a.jpg"]


def test_a_previous_run_that_did_not_succeed_is_refused(
    runs: dict[str, Any], tmp_path: Path, capsys
) -> None:
    failed = tmp_path / "failed"
    shutil.copytree(runs["root"] / "first", failed)
    manifest = json.loads((failed / "manifest.json").read_text())
    manifest.update(status="failed", error="TooManyBadImagesError: ...")
    (failed / "manifest.json").write_text(json.dumps(manifest))
    (failed / ".manifest.json.crc").unlink()  # Hadoop's local checksum of the old text
    code = run(
        "--input",
        str(runs["folder"]),
        "--output",
        str(tmp_path / "out"),
        "--incremental-from",
        str(failed),
    )
    assert code == ExitCode.NO_INPUT
    assert "did not succeed (status failed: TooManyBadImagesError" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    same = run(
        "--input",
        str(runs["folder"]),
        "--output",
        str(failed),
        "--overwrite",
        "--incremental-from",
        str(failed),
    )
    assert same == ExitCode.USAGE
    assert (failed / "features").is_dir()  # --overwrite did not get to delete it


def test_project_gives_the_saved_models_own_projection(
    runs: dict[str, Any], tmp_path: Path, spark
) -> None:
    unseen = tmp_path / "unseen"
    for label in LABELS:
        (unseen / label).mkdir(parents=True)
        for photo in photos("Test", label)[5:9]:
            shutil.copy(photo, unseen / label / photo.name)
    model_run, output = runs["root"] / "first", tmp_path / "scored"
    code = command(
        "project", "--model", str(model_run), "--input", str(unseen), "--output", str(output)
    )
    assert code == ExitCode.OK
    manifest = json.loads((output / "manifest.json").read_text())
    first = json.loads((model_run / "manifest.json").read_text())
    assert manifest["model_run"] == {
        "run": f"file:{model_run}",
        "k": first["reduction"]["k"],
        "weights_sha256": first["weights"]["sha256"],
    }
    assert not (output / "model").exists()

    features = spark.read.parquet(str(output / "features"))
    model = PipelineModel.load(str(model_run / "model"))
    theirs = model.transform(features.withColumn(VECTOR_COL, array_to_vector("features")))
    expected = {
        r.path: np.asarray(r.p)
        for r in theirs.select("path", vector_to_array(PCA_COL).alias("p")).collect()
    }
    ours = by_path(output / "pca", "pca_features")
    assert ours.keys() == expected.keys() and len(ours) == 12
    assert max(np.abs(ours[p] - expected[p]).max() for p in ours) <= 1e-4


def test_project_refuses_other_weights_before_any_work(
    runs: dict[str, Any], tmp_path: Path, capsys
) -> None:
    other = tmp_path / "other.weights.h5"  # the fake gives other weights another sha256
    output = tmp_path / "scored"
    first = str(runs["root"] / "first")
    code = command(
        "project",
        "--model",
        first,
        "--input",
        str(runs["folder"]),
        "--output",
        str(output),
        "--weights",
        str(other),
    )
    assert code == ExitCode.BAD_WEIGHTS
    message = capsys.readouterr().err
    assert FAKE_SHA256 in message
    assert "has sha256" in message
    assert not output.exists()
