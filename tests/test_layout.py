"""layout.py: one name per part of a run, one list of them."""

from __future__ import annotations

import pytest

from fruits_pipeline.layout import DATA_PARTS, MANIFEST, OUTPUT_PARTS, STAGING, RunLayout

pytestmark = pytest.mark.unit


def test_every_part_is_below_the_run_with_one_slash() -> None:
    for root in ("s3://b/runs/r", "s3://b/runs/r/"):
        layout = RunLayout(root)
        assert layout.features == "s3://b/runs/r/features"
        assert layout.manifest == "s3://b/runs/r/manifest.json"
        assert (layout.errors, layout.pca, layout.model) == (
            "s3://b/runs/r/errors",
            "s3://b/runs/r/pca",
            "s3://b/runs/r/model",
        )
        assert (layout.inventory, layout.staging) == (
            "s3://b/runs/r/inventory",
            "s3://b/runs/r/staging",
        )


def test_the_manifest_is_cleared_first_and_every_part_is_cleared() -> None:
    assert OUTPUT_PARTS[0] == MANIFEST  # no stale success survives a half-done clear
    assert set(DATA_PARTS) | {STAGING} < set(OUTPUT_PARTS)
    assert len(set(OUTPUT_PARTS)) == len(OUTPUT_PARTS)


def test_an_unknown_part_is_refused() -> None:
    with pytest.raises(ValueError, match="not a part of a run"):
        RunLayout("file:/x").part("report")
