"""job.py: what a run leaves behind when it fails unexpectedly, and what --overwrite removes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import fruits_pipeline.job
from fruits_pipeline.cli import main
from fruits_pipeline.errors import ExitCode
from fruits_pipeline.job import STAGES
from tests.conftest import SAMPLE, WEIGHTS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six sample photos of two labels."""
    root = tmp_path_factory.mktemp("tiny")
    for label in ("apple", "mango"):
        (root / label).mkdir()
        for photo in sorted((SAMPLE / "Training" / label).glob("*.jpg"))[:3]:
            shutil.copy(photo, root / label / photo.name)
    return root


def run(tiny_input: Path, output: Path, *extra: str) -> int:
    return main(["--input", str(tiny_input), "--output", str(output), "--weights", str(WEIGHTS),
                 "--no-probe", *extra])  # fmt: skip


def test_an_unexpected_failure_leaves_a_failed_manifest_and_no_staging(
    tiny_input: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def broken_fit(*_: object, **__: object) -> None:
        raise RuntimeError("the fit broke")

    monkeypatch.setattr(fruits_pipeline.job, "fit_reduction", broken_fit)
    output = tmp_path / "run"
    assert run(tiny_input, output) == ExitCode.FAILURE
    assert "the run failed unexpectedly" in capsys.readouterr().err
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["error"] == "RuntimeError: the fit broke"
    assert manifest["counts"]["files_seen"] == 6  # what was done before the failure is kept
    assert "reduction" not in manifest and "outputs" not in manifest
    assert list(manifest["timings_s"]) == list(STAGES[:6])
    written = sorted(p.name for p in output.iterdir() if not p.name.startswith("."))  # no .crc
    assert written == ["errors", "features", "inventory", "manifest.json"]


def test_overwrite_replaces_exactly_the_runs_outputs(tiny_input: Path, tmp_path: Path) -> None:
    output = tmp_path / "run"
    for part in ("features", "errors", "pca", "model", "staging"):
        (output / part).mkdir(parents=True)
        (output / part / "stale.parquet").write_text("old")
    (output / "manifest.json").write_text('{"status": "failed"}')
    (output / "notes.txt").write_text("mine")
    (output / "report").mkdir()
    (output / "report" / "report.html").write_text("mine too")
    assert run(tiny_input, output) == ExitCode.OUTPUT_EXISTS
    assert (output / "features" / "stale.parquet").exists()  # refused: nothing touched

    assert run(tiny_input, output, "--overwrite") == ExitCode.OK
    assert (output / "notes.txt").read_text() == "mine"
    assert (output / "report" / "report.html").read_text() == "mine too"
    assert not list(output.rglob("stale.parquet"))
    assert not (output / "staging").exists()
    assert json.loads((output / "manifest.json").read_text())["status"] == "succeeded"
