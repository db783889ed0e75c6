"""Weights that cannot be MobileNetV2's are refused on the driver (exit 7), before any work:
the real weights loader, so Keras builds the model."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from fruits_pipeline.cli import main
from fruits_pipeline.errors import ExitCode
from tests.conftest import SAMPLE

pytestmark = pytest.mark.e2e


def _wrong_architecture_weights(folder: Path) -> Path:
    import keras

    path = folder / "mobilenet_v2_0.35.weights.h5"
    keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=0.35, include_top=False, pooling="avg", weights=None
    ).save_weights(path)
    return path


@pytest.mark.parametrize("kind", ["not hdf5", "wrong architecture", "missing"])
def test_bad_weights_exit_7_on_the_driver_and_write_nothing(kind, tmp_path: Path, capsys) -> None:
    if kind == "not hdf5":
        weights = tmp_path / "model.weights.h5"
        weights.write_text("<html>404 not found</html>")
    elif kind == "wrong architecture":
        weights = _wrong_architecture_weights(tmp_path)
    else:
        weights = tmp_path / "absent.h5"
    output = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(
            ["run", "--input", str(SAMPLE), "--output", str(output), "--weights", str(weights)]
        )
    assert code == ExitCode.BAD_WEIGHTS
    # The error says what is wrong, once: not after a page of Keras' warnings per layer.
    assert not [w for w in caught if "keras" in w.filename], caught[:3]
    message = capsys.readouterr().err
    assert str(weights) in message
    assert {
        "not hdf5": "not an HDF5",
        "wrong architecture": "does not fit MobileNetV2",
        "missing": "not found",
    }[kind] in message
    assert not output.exists()
