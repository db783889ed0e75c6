"""The int8 quality gate's arithmetic (gate.py) on synthetic features: no Spark, no model."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_pipeline.gate import (
    Thresholds,
    cosine_similarities,
    judge,
    ridge_probe,
    split_per_label,
)

pytestmark = pytest.mark.unit

DIM = 64


def clustered(labels: list[str], seed: int = 0) -> np.ndarray:
    """Features with one well-separated centre per label plus a little noise, like real ones."""
    rng = np.random.default_rng(seed)
    centres = {label: rng.normal(0, 1, DIM) * 3 for label in sorted(set(labels))}
    return np.stack([centres[label] + rng.normal(0, 0.3, DIM) for label in labels]).astype(
        np.float32
    )


LABELS = [f"class {index % 4}" for index in range(40)]


def test_identical_features_pass_with_perfect_figures() -> None:
    features = clustered(LABELS)
    result = judge(features, features.copy(), LABELS)
    assert result.passed and result.failures == ()
    assert result.mean_cosine == pytest.approx(1.0) and result.worst_cosine == pytest.approx(1.0)
    assert result.probe is not None
    assert result.probe.agreement == 1.0 and result.probe.accuracy_f32 == 1.0
    assert result.probe.train_images + result.probe.test_images == len(LABELS)


def test_slightly_perturbed_features_pass() -> None:
    features = clustered(LABELS)
    noise = np.random.default_rng(1).normal(0, 0.05, features.shape).astype(np.float32)
    result = judge(features, features + noise, LABELS)
    assert result.passed
    assert 0.99 < result.worst_cosine <= result.mean_cosine < 1.0


def test_features_unrelated_to_f32_are_refused_and_each_failure_named() -> None:
    labels = LABELS * 2  # 80 gate images: a probe with 40 test images, enough to decide
    features = clustered(labels)
    broken = np.random.default_rng(2).normal(0, 1, features.shape).astype(np.float32)
    result = judge(features, broken, labels)
    assert not result.passed
    names = [failure.split()[0] for failure in result.failures]
    assert names == ["mean_cosine", "worst_cosine", "probe_agreement"]
    assert result.probe is not None and result.probe.agreement < 0.95


def test_a_probe_on_too_few_test_images_is_recorded_but_decides_nothing() -> None:
    features = clustered(LABELS)  # 40 gate images: 20 probe test images, one is 0.05
    broken = np.random.default_rng(2).normal(0, 1, features.shape).astype(np.float32)
    result = judge(features, broken, LABELS)
    assert result.probe is not None and result.probe.test_images == 20
    assert result.probe.agreement < 0.95  # recorded...
    assert [failure.split()[0] for failure in result.failures] == ["mean_cosine", "worst_cosine"]


def test_one_bad_image_fails_the_worst_cosine_alone() -> None:
    features = clustered(LABELS)
    int8 = features.copy()
    int8[3] = -features[3]
    result = judge(features, int8, LABELS)
    assert result.worst_cosine == pytest.approx(-1.0)
    assert [failure.split()[0] for failure in result.failures] == ["worst_cosine"]


def test_thresholds_decide() -> None:
    features = clustered(LABELS)
    noise = np.random.default_rng(3).normal(0, 0.5, features.shape).astype(np.float32)
    lenient = judge(features, features + noise, LABELS, Thresholds(0.5, 0.5, 0.5))
    strict = judge(features, features + noise, LABELS, Thresholds(0.9999, 0.9999, 1.0))
    assert lenient.passed and not strict.passed


def test_no_probe_when_the_labels_allow_none() -> None:
    features = clustered(["a"] * 10)
    result = judge(features, features, ["a"] * 10)
    assert result.probe is None and result.probe_note and result.passed
    assert split_per_label(["a", "a", "b"]) is None
    assert split_per_label(["a", "b", "a", "b"]) is not None


def test_split_alternates_within_each_label_and_skips_singletons() -> None:
    split = split_per_label(["a", "b", "a", "b", "a", "c"])
    assert split is not None
    train, test = split
    assert train.tolist() == [0, 1, 4] and test.tolist() == [2, 3]


def test_ridge_probe_separates_clusters_with_more_features_than_images() -> None:
    labels = np.array(LABELS, dtype=object)
    features = clustered(LABELS)
    split = split_per_label(LABELS)
    assert split is not None
    train, test = split
    assert len(train) == len(test) == 20 < DIM
    assert (ridge_probe(features, labels, train, test) == labels[test]).all()


def test_cosine_of_a_zero_row_is_zero_not_nan() -> None:
    a = np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(cosine_similarities(a, a), [1.0, 0.0])


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="matching"):
        judge(np.zeros((2, DIM)), np.zeros((3, DIM)), ["a", "b"])
