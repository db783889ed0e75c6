"""reduction.py: one-pass moments, the NumPy scaler + PCA, k, its edge cases (valid k, no NaN,
as the README documents), the projection and the exported Spark model."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.functions import array_to_vector, vector_to_array

from fruits_pipeline.config import FEATURE_DIM
from fruits_pipeline.reduction import (
    PCA_COL,
    VECTOR_COL,
    export_pipeline_model,
    feature_moments,
    fit_reduction,
    principal_components,
    project,
    reduction_from_moments,
)

pytestmark = pytest.mark.spark

# The edge cases run at a narrow width (each 1280 x 1280 eigendecomposition, and each 1280-value
# row sent from Python, costs a test about a second); Spark's own fit and transform are checked
# at the real FEATURE_DIM below.
NARROW = 64


def frame(spark, matrix: np.ndarray, labels: list[str] | None = None):
    labels = labels or ["one class"] * len(matrix)
    rows = [
        (f"file:/x/{i}.jpg", labels[i], None, row.astype(float).tolist())
        for i, row in enumerate(matrix)
    ]
    return spark.createDataFrame(
        rows, "path string, label string, split string, features array<float>"
    )


def reduce_and_project(spark, matrix: np.ndarray, target: float = 0.95, k: int | None = None):
    features = frame(spark, matrix)
    reduction = fit_reduction(features, target, k, dim=matrix.shape[1])
    projected = np.stack(
        features.transform(project(reduction)).toPandas()["pca_features"].to_numpy()
    )
    return reduction, projected


def test_one_image_gives_k_1_and_zero_projection(spark) -> None:
    reduction, projected = reduce_and_project(spark, np.random.default_rng(0).random((1, NARROW)))
    assert reduction.k == 1 and reduction.cumulative_variance is None
    assert "no variance" in reduction.note
    assert projected.shape == (1, 1) and np.all(projected == 0)


def test_identical_images_are_the_same_degenerate_case(spark) -> None:
    matrix = np.tile(np.random.default_rng(1).random(NARROW), (4, 1))
    reduction, projected = reduce_and_project(spark, matrix)
    assert reduction.k == 1 and np.all(np.isfinite(projected)) and np.all(projected == 0)


def test_fewer_images_than_features_one_class_and_constant_features(spark) -> None:
    rng = np.random.default_rng(2)
    matrix = rng.random((6, NARROW))
    matrix[:, :20] = 0.5  # 20 zero-variance features
    reduction, projected = reduce_and_project(spark, matrix, target=1.0)
    # 6 points span at most 5 directions: k can never need more.
    assert 1 <= reduction.k <= 5
    assert reduction.achieved_variance == pytest.approx(1.0, abs=1e-9)
    assert projected.shape == (6, reduction.k) and np.all(np.isfinite(projected))


def test_fixed_k_overrides_the_variance_rule(spark) -> None:
    matrix = np.random.default_rng(3).random((12, NARROW))
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


def test_one_pass_moments_match_numpy_across_partitions(spark) -> None:
    rng = np.random.default_rng(4)
    matrix = rng.random((40, NARROW)) * 6 + 100  # a large mean tests the shifted sums
    matrix[:, 5] = 2.5  # a constant feature must come out with exactly zero variance
    features = frame(spark, matrix).repartition(3)
    moments = feature_moments(features, NARROW)
    data = matrix.astype(np.float32).astype(np.float64)  # the column holds float32
    assert moments.rows == 40
    np.testing.assert_allclose(moments.mean, data.mean(axis=0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(moments.std, data.std(axis=0, ddof=1), rtol=1e-9, atol=1e-12)
    assert moments.std[5] == 0.0 and not moments.scatter[5].any()
    std = data.std(axis=0, ddof=1)
    scaled = np.divide(data - data.mean(axis=0), std, out=np.zeros_like(data), where=std > 0)
    np.testing.assert_allclose(
        moments.standardised_covariance(), np.cov(scaled, rowvar=False), rtol=0, atol=1e-9
    )


def test_scaler_built_from_moments_equals_sparks_own_fit(spark) -> None:
    from pyspark.ml.feature import StandardScaler

    matrix = np.random.default_rng(5).random((30, FEATURE_DIM))
    vectors = frame(spark, matrix).withColumn(VECTOR_COL, array_to_vector("features"))
    moments = feature_moments(frame(spark, matrix))  # what fit_reduction fits from
    ours = export_pipeline_model(spark, reduction_from_moments(moments, 0.9)).stages[0]
    theirs = StandardScaler(inputCol=VECTOR_COL, withMean=True, withStd=True).fit(vectors)
    np.testing.assert_allclose(ours.mean.toArray(), theirs.mean.toArray(), rtol=1e-12)
    np.testing.assert_allclose(ours.std.toArray(), theirs.std.toArray(), rtol=1e-9)
    assert ours.getWithMean() and ours.getWithStd()
    fixed_k = reduction_from_moments(moments, 0.9, k=4)
    assert export_pipeline_model(spark, fixed_k).stages[1].getK() == 4


def test_numpy_projection_equals_the_saved_models_own_transform(spark) -> None:
    matrix = np.random.default_rng(6).random((25, FEATURE_DIM))
    matrix[:, 3] = 1.0  # zero-variance features map to 0 in both
    features = frame(spark, matrix)
    reduction = fit_reduction(features, 0.9)
    model = export_pipeline_model(spark, reduction)
    ours = np.stack(features.transform(project(reduction)).toPandas()["pca_features"].to_numpy())
    by_spark = model.transform(features.withColumn(VECTOR_COL, array_to_vector("features")))
    theirs = np.stack(
        by_spark.select(vector_to_array(PCA_COL, "float32").alias("p")).toPandas()["p"].to_numpy()
    )
    assert ours.shape == theirs.shape and ours.shape[1] > 1
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
