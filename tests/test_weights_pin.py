"""The weights' sha256 is checked before they are loaded, whatever their
source, and Keras checks the official file's download against it."""

from __future__ import annotations

from typing import Any

import pytest

from fruits_pipeline.cli import parse_job_args
from fruits_pipeline.errors import WeightsError
from fruits_pipeline.model import IMAGENET, IMAGENET_FILE, IMAGENET_URL, load_weights
from tests.conftest import WEIGHTS

pytestmark = pytest.mark.spark

SHIPPED_SHA256 = "82996ab2f66b83c7127acc6c951a6fd15f18d27a8ff3b478c0da10aa65c667f2"


def test_other_weights_than_the_expected_are_refused_before_loading() -> None:
    with pytest.raises(WeightsError, match=f"has sha256 {SHIPPED_SHA256}, not the expected 0+"):
        load_weights(str(WEIGHTS), 224, sha256="0" * 64)


def test_imagenet_download_is_checked_by_keras_against_the_pin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keras

    asked: dict[str, Any] = {}

    def get_file(name: str, origin: str, **options: Any) -> str:
        asked.update(name=name, origin=origin, **options)
        raise ValueError("Incomplete or corrupted file detected.")  # what Keras raises

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    with pytest.raises(WeightsError, match=r"stage_weights\.sh"):
        load_weights(IMAGENET, 224, sha256=SHIPPED_SHA256)
    assert asked == {
        "name": IMAGENET_FILE,
        "origin": IMAGENET_URL,
        "cache_subdir": "models",
        "file_hash": SHIPPED_SHA256,
    }


def test_the_pin_is_a_job_option_taken_in_any_case() -> None:
    args = ["run", "--input", "in", "--output", "out"]
    assert parse_job_args(args).weights_sha256 is None
    pinned = parse_job_args([*args, "--weights-sha256", SHIPPED_SHA256.upper()])
    assert pinned.weights_sha256 == SHIPPED_SHA256
    with pytest.raises(SystemExit) as exit_info:
        parse_job_args([*args, "--weights-sha256", "abc"])
    assert exit_info.value.code == 2
