"""manifest.py: the typed sections and their JSON, both ways."""

from __future__ import annotations

import json

import pytest

from fruits_pipeline.manifest import (
    Counts,
    LabelCounts,
    Manifest,
    ProbeSummary,
    QuantizationSummary,
    ReductionSummary,
    ResidencyInfo,
    Throughput,
    WeightsInfo,
)

pytestmark = pytest.mark.unit


def running() -> Manifest:
    return Manifest(
        status="running",
        started_at="2026-11-22T00:00:00+00:00",
        input="s3://b/in/",
        output="s3://b/runs/1/",
        config={"k": None},
        weights=WeightsInfo("imagenet", "ab" * 32),
        read_partitions=3,
        residency=ResidencyInfo(["eu-west-1"], "eu-west-1", {"b": "eu-west-1"}),
        versions={"python": "3.11.7"},
    )


def test_counts_add_up_per_label_and_in_all() -> None:
    counts = Counts.from_per_label({"kiwi": LabelCounts(3, 2, 1), "apple": LabelCounts(2, 2, 0)})
    assert (counts.files_seen, counts.featurized, counts.errors) == (5, 4, 1)
    assert list(counts.per_label) == ["apple", "kiwi"]
    assert counts.images_per_label == {"apple": 2, "kiwi": 2}


def test_a_running_manifest_leaves_out_the_sections_it_has_not_reached() -> None:
    data = running().to_json()
    assert list(data) == [
        "status",
        "started_at",
        "input",
        "output",
        "config",
        "weights",
        "read_partitions",
        "residency",
        "versions",
        "timings_s",
    ]
    assert data["weights"] == {"source": "imagenet", "sha256": "ab" * 32}
    assert data["config"] == {"k": None}  # a None inside a section is kept


def test_a_succeeded_manifest_round_trips_through_json() -> None:
    manifest = running().with_(
        status="succeeded",
        counts=Counts.from_per_label({"kiwi": LabelCounts(2, 2, 0)}),
        reduction=ReductionSummary(1, "variance", 0.95, None, None, "no variance"),
        probe=ProbeSummary(status="skipped", reason="--no-probe"),
        timings_s={"featurize": 1.5},
        throughput=Throughput(10.0, 2.0, 8.0),
        outputs={"features": "s3://b/runs/1/features"},
        finished_at="2026-11-22T00:01:00+00:00",
        quantization=QuantizationSummary(
            precision="int8",
            calibration_images=300,
            gate_images=256,
            mean_cosine=0.968,
            worst_cosine=0.947,
            probe_agreement=1.0,
            probe_accuracy_f32=1.0,
            probe_accuracy_int8=None,
            seconds=12.5,
            thresholds={"mean_cosine": 0.95, "worst_cosine": 0.8, "probe_agreement": 0.95},
        ),
    )
    text = manifest.dumps()
    data = json.loads(text)
    assert data["images_per_label"] == {"kiwi": 2}
    assert data["probe"] == {"status": "skipped", "reason": "--no-probe"}
    assert data["reduction"]["achieved_variance"] is None  # null, as the README says
    assert data["quantization"]["calibration_images"] == 300
    assert data["quantization"]["probe_accuracy_int8"] is None
    assert "error" not in data
    assert Manifest.loads(text) == manifest


def test_a_failed_manifest_says_why() -> None:
    failed = running().with_(status="failed", error="RuntimeError: boom")
    data = json.loads(failed.dumps())
    assert data["status"] == "failed" and data["error"] == "RuntimeError: boom"
    assert "counts" not in data and "reduction" not in data
    assert Manifest.from_json(data).error == "RuntimeError: boom"
