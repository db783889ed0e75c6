"""Bad input, through the command line with the fake model (tests/fakes.py): every file
accounted for, clear exit codes, no manifest claiming a false success."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fruits_pipeline.cli import parse_job_args, run_command
from fruits_pipeline.errors import ExitCode
from tests import hostile
from tests.conftest import SAMPLE
from tests.fakes import FAKE_MODEL

pytestmark = pytest.mark.e2e  # whole runs of the job (the fake model)

GOOD_SOURCES = sorted(SAMPLE.glob("Training/*/*.jpg"))[::24][:10]


def run_job(input_dir: Path, output: Path, *extra: str) -> int:
    """The ``run`` command on ``input_dir``, exit code and all, with the fake model."""
    argv = ["run", "--input", str(input_dir), "--output", str(output), "--no-probe", *extra]
    return run_command(parse_job_args(argv), model=FAKE_MODEL)


@pytest.fixture(scope="module")
def hostile_input(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Hostile files plus 10 good sample photos, in folders named with spaces and accents."""
    root = tmp_path_factory.mktemp("hostile") / "bucket with spaces"
    expected = hostile.write_hostile_folder(root)
    good: dict[str, Path] = {}
    for index, source in enumerate(GOOD_SOURCES):
        folder = root / "Test" / ("Äpfel grün" if index % 2 else "Apple Red 1")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"good-{source.parent.name}-{source.name}"
        shutil.copy(source, target)
        expected[str(target)] = None
        good[str(target)] = source
    return {"root": root, "expected": expected, "good": good}


def paths_in(folder: Path) -> list[str]:
    return [p.removeprefix("file:") for p in pd.read_parquet(folder)["path"]]


def test_every_hostile_file_lands_in_features_or_errors(
    hostile_input: dict[str, Any], tmp_path: Path
) -> None:
    output = tmp_path / "run"
    assert run_job(hostile_input["root"], output, "--max-error-fraction", "0.5") == ExitCode.OK
    expected: dict[str, str | None] = hostile_input["expected"]

    features = pd.read_parquet(output / "features")
    errors = pd.read_parquet(output / "errors")
    featurized, failed = paths_in(output / "features"), paths_in(output / "errors")
    assert sorted(featurized + failed) == sorted(expected)  # each file exactly once
    assert set(featurized) == {path for path, kind in expected.items() if kind is None}
    kinds = {
        p.removeprefix("file:"): k
        for p, k in zip(errors["path"], errors["error_kind"], strict=False)
    }
    assert kinds == {path: kind for path, kind in expected.items() if kind is not None}
    assert errors["error_message"].str.len().min() > 10
    assert set(errors["label"]) <= {"Apple Red 1", "Pêche jaune"}

    matrix = np.stack(features["features"].to_numpy())
    assert np.isfinite(matrix).all() and (np.abs(matrix).sum(axis=1) > 0).all()
    pca = np.stack(pd.read_parquet(output / "pca")["pca_features"].to_numpy())
    assert np.isfinite(pca).all()

    # A good image's features do not depend on which bad files shared its batch: the same
    # photos alone, in another run, get the same vectors.
    alone = tmp_path / "good only"
    for target in hostile_input["good"]:
        destination = alone / Path(target).relative_to(hostile_input["root"])
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(target, destination)
    assert run_job(alone, tmp_path / "reference") == ExitCode.OK
    reference = pd.read_parquet(tmp_path / "reference" / "features")
    by_name = {Path(p).name: v for p, v in zip(reference.path, reference.features, strict=True)}
    by_path = dict(zip(featurized, features["features"], strict=False))
    for target in hostile_input["good"]:
        np.testing.assert_allclose(by_path[target], by_name[Path(target).name], rtol=0, atol=1e-4)

    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    counts = manifest["counts"]
    assert counts["files_seen"] == len(expected) == counts["featurized"] + counts["errors"]
    assert counts["errors"] == 3
    for label, per_label in counts["per_label"].items():
        assert per_label["files_seen"] == per_label["featurized"] + per_label["errors"], label


def test_too_many_bad_images_exits_4_with_errors_and_a_failed_manifest(
    hostile_input: dict[str, Any], tmp_path: Path, capsys
) -> None:
    output = tmp_path / "run"
    assert run_job(hostile_input["root"], output) == ExitCode.TOO_MANY_BAD_IMAGES
    assert "above --max-error-fraction" in capsys.readouterr().err
    assert len(pd.read_parquet(output / "errors")) == 3
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "TooManyBadImagesError" in manifest["error"]
    assert manifest["counts"]["errors"] == 3
    assert not (output / "pca").exists() and not (output / "staging").exists()


def test_empty_input_exits_3_and_writes_nothing(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    (empty / "Training" / "Kiwi").mkdir(parents=True)
    (empty / "Training" / "Kiwi" / "readme.txt").write_text("no images here")
    output = tmp_path / "run"
    assert run_job(empty, output) == ExitCode.NO_INPUT
    assert "no file matching *.jpg or *.jpeg" in capsys.readouterr().err
    assert not output.exists()


def test_missing_input_exits_3(tmp_path: Path, capsys) -> None:
    assert run_job(tmp_path / "nowhere", tmp_path / "run") == ExitCode.NO_INPUT
    assert "cannot read input" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_existing_output_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    output = tmp_path / "run"
    output.mkdir()
    previous = '{"status": "succeeded", "note": "an earlier run"}'
    (output / "manifest.json").write_text(previous)
    assert run_job(SAMPLE, output) == ExitCode.OUTPUT_EXISTS
    assert "--overwrite" in capsys.readouterr().err
    assert (output / "manifest.json").read_text() == previous
    assert sorted(p.name for p in output.iterdir()) == ["manifest.json"]
