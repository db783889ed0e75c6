"""probe.py: scores against a hand computation, and the probe on a tiny separable frame."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_pipeline.probe import run_probe, scores
from fruits_pipeline.schema import PCA_SCHEMA

pytestmark = pytest.mark.spark


def test_scores_match_a_hand_computation() -> None:
    # rows: true a, b, c; columns: predicted a, b, c
    confusion = np.array([[2, 1, 0], [0, 3, 0], [1, 0, 0]])
    result = scores(["a", "b", "c"], confusion)
    assert result["accuracy"] == pytest.approx(5 / 7)
    assert result["per_class_recall"] == pytest.approx({"a": 2 / 3, "b": 1.0, "c": 0.0})
    # precision a = 2/3, b = 3/4, c = 0 (never predicted); F1 = 2pr / (p + r)
    f1 = [2 / 3, 2 * 0.75 * 1.0 / 1.75, 0.0]
    assert result["macro_f1"] == pytest.approx(sum(f1) / 3)


def test_macro_f1_leaves_out_classes_absent_from_the_test_set() -> None:
    confusion = np.array([[3, 0], [0, 0]])  # "b" has no test image and is never predicted
    result = scores(["a", "b"], confusion)
    assert result["macro_f1"] == pytest.approx(1.0)
    assert result["per_class_recall"] == {"a": 1.0}


def test_probe_separates_two_clusters_and_skips_one_label(spark) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for label, centre in (("kiwi", 5.0), ("fig", -5.0)):
        for i in range(20):
            split = "Test" if i < 5 else "Training"
            point = (centre + rng.normal(size=3)).astype(float).tolist()
            rows.append((f"file:/d/{split}/{label}/{i}.jpg", label, split, point))
    pca = spark.createDataFrame(rows, PCA_SCHEMA)
    probe = run_probe(pca, seed=42)
    assert probe.status == "succeeded"
    assert (probe.train_images, probe.test_images) == (30, 10)
    assert probe.accuracy == 1.0 and probe.macro_f1 == 1.0
    assert probe.confusion_matrix == {"labels": ["fig", "kiwi"], "matrix": [[5, 0], [0, 5]]}
    one_label = run_probe(pca.where("label = 'kiwi'"), seed=42)
    assert (one_label.status, one_label.reason) == ("skipped", "a probe needs at least two labels")
