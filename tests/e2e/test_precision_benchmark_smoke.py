"""benchmarks/precision.py runs end to end on a few images and prints its table (timings are
not tested: speed targets live in the benchmark's output, not in assertions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.precision import compare, table
from tests.conftest import SHARED_SAMPLE

pytestmark = pytest.mark.e2e


def test_precision_comparison_on_a_few_images(tmp_path: Path) -> None:
    figures = compare(
        SHARED_SAMPLE,
        tmp_path,
        n=24,
        raw_seconds=0.5,
        layouts=[(1, 1)],
        batches=[8],
        calibration=16,
    )
    assert set(figures["raw"]) == set(figures["jobs"]) == {"f32", "int8"}
    assert figures["jobs"]["int8"]["quantization"]["calibration_images"] == 12
    assert figures["jobs"]["f32"]["quantization"] is None
    printed = table(figures)
    for line in (
        "raw OpenVINO f32",
        "raw OpenVINO int8",
        "--precision int8, featurize stage",
        "f32 job featurize / raw f32",
        "int8 job featurize / f32 job featurize",
    ):
        assert line in printed
