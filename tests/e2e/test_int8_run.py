"""--precision int8 through the whole job, with the real model: a run that passes the quality
gate records it in the manifest; a deliberately broken int8 model (calibrated on blank images)
is refused with exit code 8 and nothing written; an incremental run never mixes precisions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import fruits_pipeline.quantize
from fruits_pipeline.cli import parse_job_args, run_command
from fruits_pipeline.errors import ExitCode
from tests.conftest import SHARED_SAMPLE, WEIGHTS

pytestmark = pytest.mark.e2e

PER_LABEL = 7


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven real photos of each of the six labels (42: 21 calibrate, 21 judge)."""
    root = tmp_path_factory.mktemp("int8-input")
    for folder in sorted((SHARED_SAMPLE / "Training").iterdir()):
        (root / "Training" / folder.name).mkdir(parents=True)
        for photo in sorted(folder.glob("*.jpg"))[:PER_LABEL]:
            shutil.copy(photo, root / "Training" / folder.name / photo.name)
    return root


def run(photos: Path, output: Path, *extra: str) -> int:
    config = parse_job_args(
        [
            "run",
            "--input",
            str(photos),
            "--output",
            str(output),
            "--weights",
            str(WEIGHTS),
            "--no-probe",
            "--k",
            "4",
            *extra,
        ]
    )
    return run_command(config)


@pytest.fixture(scope="module")
def int8_run(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("int8-run") / "run"
    assert run(photos, output, "--precision", "int8") == ExitCode.OK
    return output


def test_an_int8_run_records_its_calibration_and_gate(int8_run: Path) -> None:
    manifest = json.loads((int8_run / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["config"]["precision"] == "int8"
    record = manifest["quantization"]
    assert record["calibration_images"] == record["gate_images"] == 21
    assert record["thresholds"]["mean_cosine"] <= record["mean_cosine"] < 1.0
    # 21 gate photos leave at most 11 probe test photos, fewer than the probe needs to decide:
    # its agreement is recorded, and the cosine figures alone decide.
    assert record["gate_images"] // 2 + 1 < record["thresholds"]["probe_test_images"]
    assert 0.0 <= record["probe_agreement"] <= 1.0
    assert manifest["counts"]["featurized"] == 6 * PER_LABEL


def test_a_broken_int8_model_is_refused_with_exit_8_and_nothing_written(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    real = fruits_pipeline.quantize.quantize

    def calibrated_on_blank_images(ir, calibration: np.ndarray):
        return real(ir, np.full_like(calibration, 255))

    monkeypatch.setattr(fruits_pipeline.quantize, "quantize", calibrated_on_blank_images)
    output = tmp_path / "refused"
    assert run(photos, output, "--precision", "int8") == ExitCode.QUALITY_GATE == 8
    assert "refused by the quality gate" in capsys.readouterr().err
    assert not output.exists()


def test_an_incremental_run_never_mixes_precisions(int8_run: Path, photos, tmp_path) -> None:
    code = run(photos, tmp_path / "f32", "--incremental-from", str(int8_run))
    assert code == ExitCode.NO_INPUT
    assert not (tmp_path / "f32").exists()
