"""summary.py: the run summary stays within MAX_LINES whatever the number of classes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fruits_pipeline.manifest import (
    ClassifierScore,
    CollectionInfo,
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
from fruits_pipeline.summary import MAX_LINES, summary_lines
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

CLASS_NAMES = (ROOT.parent / "shared" / "fruits-360-classes.txt").read_text().splitlines()


def succeeded(per_label: dict[str, LabelCounts], kinds: dict[str, int]) -> Manifest:
    probe = ProbeSummary(
        status="succeeded",
        split="Training folder -> Test folder",
        train_images=2944,
        test_images=992,
        train_rows=1200,
        train_rows_per_class=100,
        accuracy=0.9871,
        macro_f1=0.9865,
        classifiers=[
            ClassifierScore("logistic_regression", 0.9871, 0.9865, 3.2),
            ClassifierScore("decision_tree", 0.81, 0.8, 1.4),
            ClassifierScore("random_forest", 0.93, 0.92, 5.0),
        ],
    )
    return Manifest(
        status="succeeded",
        started_at="2026-12-01T00:00:00+00:00",
        input="file:/in",
        output="file:/runs/1",
        config={},
        weights=WeightsInfo("w.h5", "ab" * 32),
        read_partitions=3,
        residency=ResidencyInfo(["eu-west-1"], None, {}),
        versions={},
        counts=Counts.from_per_label(per_label, errors_by_kind=kinds),
        reduction=ReductionSummary(88, "variance", 0.95, 0.9503, [0.5, 1.0], None),
        probe=probe,
        throughput=Throughput(301.2, 20.0, 150.4),
    )


def test_120_classes_and_many_error_kinds_fit_in_twelve_lines() -> None:
    assert len(CLASS_NAMES) == 120
    per_label = {
        name: LabelCounts(30 + i % 7 + 1, 30 + i % 7, 1) for i, name in enumerate(CLASS_NAMES)
    }
    kinds = {"truncated": 60, "empty_file": 40, "not_an_image": 15, "corrupt": 4, "odd": 1}
    lines = summary_lines(succeeded(per_label, kinds))
    assert len(lines) <= MAX_LINES, lines
    text = "\n".join(lines)
    assert "120, 30 to 36 images each" in text
    assert "truncated 60, empty_file 40, not_an_image 15 (+2 more kinds)" in text
    assert "  smallest   Apple Braeburn 30, Apple Red 1 30, Avocado 30" in lines
    assert "  largest    Apple Pink Lady 36, Apricot 36, Blueberry 36" in lines
    assert "decision tree 0.810 (1.4 s)" in text and "trained on 1,200 rows" in text
    assert max(len(line) for line in lines) < 140, "a line holds a list it should not"
    assert all(line[12] == " " != line[13] for line in lines[1:]), "values in one column"


def test_a_few_classes_are_all_named() -> None:
    per_label = {"apple": LabelCounts(40, 40, 0), "kiwi": LabelCounts(38, 37, 1)}
    lines = summary_lines(succeeded(per_label, {"truncated": 1}))
    assert "  per class  kiwi 37, apple 40" in lines
    assert "  errors     truncated 1" in lines
    assert lines[0] == "run succeeded: file:/runs/1"
    assert lines[-1] == "  features   mobilenet_v2, weights w.h5 (sha256 abababababab…)"


def test_an_int8_run_names_its_calibration_and_gate_figures_on_the_features_line() -> None:
    manifest = succeeded({"kiwi": LabelCounts(2, 2, 0)}, {})
    assert not any("int8" in line for line in summary_lines(manifest))
    gate = QuantizationSummary("int8", 300, 256, 0.968, 0.947, 1.0, 1.0, 1.0, {}, 9.0)
    lines = summary_lines(manifest.with_(quantization=gate))
    assert len(lines) == len(summary_lines(manifest))
    (features,) = [line for line in lines if line.startswith("  features")]
    assert "int8, calibrated on 300, gate on 256" in features
    assert "mean 0.968, worst 0.947" in features


def collection_manifest(info: CollectionInfo) -> Manifest:
    skipped = ProbeSummary(status="skipped", reason="--table: pca/ may hold the new photos only")
    per_label = {name: LabelCounts(30, 30, 0) for name in CLASS_NAMES}
    return succeeded(per_label, {"truncated": 2}).with_(collection=info, probe=skipped)


def test_a_collection_run_says_what_it_did_to_the_collection() -> None:
    drift = {"new": {"rows": 3, "mean_shift": 0.21}, "retained_drop": 0.012}
    info = CollectionInfo("glue:fruits.photos", 42, 9_000, 2, 3, 1, "auto", False, drift, 41)
    lines = summary_lines(collection_manifest(info))
    assert len(lines) <= MAX_LINES, lines
    assert (
        "  collection glue:fruits.photos: 9,000 photos, 3 featurized in 1 chunk, 2 removed; "
        "model kept (new photos: 0.012 less variance kept, mean shift 0.21 sd)"
    ) in lines
    first = CollectionInfo("/data/fruits", 7, 8, 0, 8, 3, "auto", True, None, None)
    assert (
        "  collection /data/fruits: 8 photos, 8 featurized in 3 chunks, 0 removed; refitted "
        "(moments summed from every row)"
    ) in summary_lines(collection_manifest(first))
    again = CollectionInfo("/data/fruits", 9, 8, 0, 0, 0, "auto", False, {"new": {"rows": 0}}, 7)
    nothing_new = collection_manifest(again)
    nothing_new = nothing_new.with_(counts=replace(nothing_new.counts, model_runs=0))
    lines = summary_lines(nothing_new)
    assert (
        "  collection /data/fruits: 8 photos, 0 featurized in 0 chunks, 0 removed; model kept "
        "(no new photos)"
    ) in lines
    assert "  speed      no image needed the model, whole job 150.4 img/s after start-up" in lines
    assert not any(line.startswith("  collection") for line in summary_lines(succeeded({}, {})))
