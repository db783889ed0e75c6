"""Issue 4: reduction edge cases give valid k and no NaN, as documented in the README."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_pipeline.config import FEATURE_DIM
from fruits_pipeline.reduction import fit_reduction, principal_components, project


def frame(spark, matrix: np.ndarray, labels: list[str] | None = None):
    labels = labels or ["one class"] * len(matrix)
    rows = [(f"file:/x/{i}.jpg", labels[i], None, row.astype(float).tolist())
            for i, row in enumerate(matrix)]  # fmt: skip
    return spark.createDataFrame(
        rows, "path string, label string, split string, features array<float>"
    )


def reduce_and_project(spark, matrix: np.ndarray, target: float = 0.95, k: int | None = None):
    features = frame(spark, matrix)
    reduction = fit_reduction(features, target, k)
    projected = np.stack(
        features.transform(project(reduction.model)).toPandas()["pca_features"].to_numpy()
    )
    return reduction, projected


def test_one_image_gives_k_1_and_zero_projection(spark) -> None:
    reduction, projected = reduce_and_project(spark, np.random.default_rng(0).random((1, 1280)))
    assert reduction.k == 1 and reduction.cumulative_variance is None
    assert "no variance" in reduction.note
    assert projected.shape == (1, 1) and np.all(projected == 0)


def test_identical_images_are_the_same_degenerate_case(spark) -> None:
    matrix = np.tile(np.random.default_rng(1).random(1280), (4, 1))
    reduction, projected = reduce_and_project(spark, matrix)
    assert reduction.k == 1 and np.all(np.isfinite(projected)) and np.all(projected == 0)


def test_fewer_images_than_features_one_class_and_constant_features(spark) -> None:
    rng = np.random.default_rng(2)
    matrix = rng.random((6, FEATURE_DIM))
    matrix[:, :300] = 0.5  # 300 zero-variance features
    reduction, projected = reduce_and_project(spark, matrix, target=1.0)
    # 6 points span at most 5 directions: k can never need more.
    assert 1 <= reduction.k <= 5
    assert reduction.achieved_variance == pytest.approx(1.0, abs=1e-9)
    assert projected.shape == (6, reduction.k) and np.all(np.isfinite(projected))


def test_fixed_k_overrides_the_variance_rule(spark) -> None:
    matrix = np.random.default_rng(3).random((12, FEATURE_DIM))
    reduction, projected = reduce_and_project(spark, matrix, target=0.99, k=3)
    assert reduction.k == 3 and projected.shape == (12, 3)
    assert reduction.achieved_variance == pytest.approx(reduction.cumulative_variance[2])


def test_principal_components_are_sorted_unit_and_signed() -> None:
    rng = np.random.default_rng(4)
    data = rng.standard_normal((50, 6)) * np.array([5, 4, 3, 2, 1, 0.5])
    components, explained = principal_components(np.cov(data, rowvar=False))
    assert np.all(np.diff(explained) <= 1e-12) and explained.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(components.T @ components, np.eye(6), atol=1e-12)
    largest = components[np.abs(components).argmax(axis=0), np.arange(6)]
    assert np.all(largest > 0)
