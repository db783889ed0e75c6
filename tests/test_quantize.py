"""int8 quantization (NNCF, on the driver) judged by the gate, on real photos with the real
model: a good calibration passes, a blank one is refused with exit code 8, and the int8 IR runs
in a worker that imports neither TensorFlow nor NNCF."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fruits_pipeline.decoding import decode_image
from fruits_pipeline.engines import OpenVinoFactory, OpenVinoModel, openvino_model
from fruits_pipeline.errors import ExitCode, QualityGateError
from fruits_pipeline.model import load_weights
from fruits_pipeline.quantize import CheckedInt8, enforce, features_of, quantize_and_judge
from fruits_pipeline.sampling import DecodedSample
from tests.test_engines import real_photos

pytestmark = pytest.mark.e2e

CALIBRATION = 24


@pytest.fixture(scope="module")
def f32() -> OpenVinoModel:
    from tests.conftest import WEIGHTS

    return openvino_model(load_weights(str(WEIGHTS), 224), 224)


@pytest.fixture(scope="module")
def sample() -> DecodedSample:
    """Eight real photos of every class, interleaved so calibration and gate both see all."""
    photos = real_photos(per_label=8)
    photos = sorted(photos, key=lambda path: (photos.index(path) % 8, path.parent.name))
    return DecodedSample(
        pixels=np.stack([decode_image(path.read_bytes(), 224) for path in photos]),
        labels=tuple(path.parent.name for path in photos),
        paths=tuple(str(path) for path in photos),
    )


@pytest.fixture(scope="module")
def checked(f32: OpenVinoModel, sample: DecodedSample) -> CheckedInt8:
    return quantize_and_judge(f32, sample, calibration_images=CALIBRATION, threads=2)


def test_int8_calibrated_on_real_photos_passes_the_gate(checked, sample) -> None:
    gate = checked.gate
    assert checked.calibration_images == CALIBRATION
    assert gate.images == len(sample) - CALIBRATION
    assert gate.passed, gate.failures
    assert 0.9 < gate.mean_cosine < 1.0, "int8 features equal to f32: not quantized?"
    assert gate.probe is not None and gate.probe.agreement >= 0.95
    assert enforce(checked) is checked
    assert checked.model.weights != b"" and b"FakeQuantize" in checked.model.xml


def test_int8_calibrated_on_blank_images_is_refused_with_its_exit_code(
    f32, sample, capsys: pytest.CaptureFixture[str]
) -> None:
    blank = sample.pixels.copy()
    blank[:CALIBRATION] = 255  # white frames: every activation range collapses
    broken = DecodedSample(blank, sample.labels, sample.paths)
    checked = quantize_and_judge(f32, broken, calibration_images=CALIBRATION, threads=2)
    assert capsys.readouterr().out == "", "NNCF's progress bars printed amid the job's progress"
    assert not checked.gate.passed
    with pytest.raises(QualityGateError, match="refused by the quality gate") as refused:
        enforce(checked)
    assert refused.value.exit_code == ExitCode.QUALITY_GATE == 8
    assert "--precision f32" in str(refused.value)


def test_too_small_an_input_is_refused_before_quantizing(f32, sample) -> None:
    with pytest.raises(QualityGateError, match="at least 16 readable images"):
        quantize_and_judge(f32, sample.take(0, 10), calibration_images=CALIBRATION)


def test_int8_worker_loads_neither_tensorflow_nor_nncf(checked, sample, tmp_path: Path) -> None:
    factory = OpenVinoFactory(SimpleNamespace(value=checked.model), 1)  # type: ignore[arg-type]
    (tmp_path / "factory.pickle").write_bytes(pickle.dumps(factory))
    np.save(tmp_path / "batch.npy", sample.pixels[:4])
    code = f"""
import pickle, sys
import numpy as np
from fruits_pipeline.featurize import worker_predictor
factory = pickle.loads(open({str(tmp_path / "factory.pickle")!r}, "rb").read())
predict = worker_predictor("test", factory)
np.save({str(tmp_path / "features.npy")!r}, predict(np.load({str(tmp_path / "batch.npy")!r})))
print(sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras", "nncf")))
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == "[]"
    expected = features_of(checked.model, sample.pixels[:4], threads=1)
    np.testing.assert_allclose(np.load(tmp_path / "features.npy"), expected, rtol=0, atol=1e-5)
