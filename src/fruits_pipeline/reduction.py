"""Reducing: StandardScaler + PCA on the persisted features, k chosen by explained variance.

``fit_reduction`` standardises the 1280-d features, fits PCA **once at full rank** to get the
whole explained-variance curve, picks k, and keeps the top-k components of that same fit as a
``PCAModel``: no second fit, and never a second pass over the images (only over ``features/``).
The result is a standard ``PipelineModel`` (scaler, then PCA) that ``PipelineModel.load`` reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.ml import PipelineModel
from pyspark.ml.common import _py2java
from pyspark.ml.feature import PCAModel, StandardScalerModel
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.sql import DataFrame, SparkSession

from fruits_pipeline.config import FEATURE_DIM
from fruits_pipeline.vectors import keyed_vectors, to_matrix

# Column names of the saved PipelineModel: to project new features, add VECTOR_COL with
# ``array_to_vector("features")`` and read PCA_COL (see README, "Outputs").
VECTOR_COL = "features_vector"
SCALED_COL = "scaled_features"
PCA_COL = "pca_vector"

# Cumulative sums of 1280 floats drift by ~1e-15; without this slack a target of 1.0 could
# never be met exactly.
_VARIANCE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Reduction:
    """A fitted reduction and how k was chosen.

    ``cumulative_variance[i]`` is the share of variance kept by the first ``i + 1`` components
    (length 1280). It is None, with ``note`` saying why, when the standardised features have no
    variance at all (one image, or identical images): then k = 1 and projections are 0.
    """

    model: PipelineModel
    k: int
    cumulative_variance: list[float] | None
    achieved_variance: float | None
    note: str | None = None


def choose_k(explained_variance: Sequence[float], target: float) -> int:
    """Smallest k whose cumulative explained variance reaches ``target`` (a share in (0, 1]).

    ``explained_variance`` holds each component's share, largest first, as Spark's
    ``PCAModel.explainedVariance``. Returns a value in ``1..len(explained_variance)``.
    """
    cumulative = np.cumsum(np.asarray(explained_variance, dtype=np.float64))
    reached = np.nonzero(cumulative >= target - _VARIANCE_TOLERANCE)[0]
    return int(reached[0]) + 1 if reached.size else len(cumulative)


def _scaler_model(spark: SparkSession, moments: FeatureMoments) -> StandardScalerModel:
    """A ``StandardScalerModel(withMean, withStd)`` from moments computed here, without a fit.

    Same JVM class and numbers as ``StandardScaler.fit`` (unbiased std; zero-variance features
    scale to 0), built through py4j so the features are read once for scaler and PCA together.
    """
    sc = spark.sparkContext
    java_model = sc._jvm.org.apache.spark.ml.feature.StandardScalerModel(  # type: ignore[union-attr]
        f"StandardScalerModel_{uuid.uuid4().hex[:12]}",
        _py2java(sc, DenseVector(moments.std.tolist())),
        _py2java(sc, DenseVector(moments.mean.tolist())),
    )
    java_model.set(java_model.withMean(), True)
    java_model.set(java_model.withStd(), True)
    model = StandardScalerModel(java_model)
    model._transfer_params_from_java()  # so getWithMean() and friends read the JVM's values
    return model.setInputCol(VECTOR_COL).setOutputCol(SCALED_COL)


def _pca_model(spark: SparkSession, components: np.ndarray, explained: np.ndarray) -> PCAModel:
    """A ``PCAModel`` from a ``(d, k)`` component matrix, without fitting.

    Spark has no public constructor for this, so the JVM one is called through py4j; the model
    then transforms, saves and loads like any fitted ``PCAModel``.
    """
    sc = spark.sparkContext
    rows, cols = components.shape
    matrix = DenseMatrix(rows, cols, components.ravel(order="F").tolist())
    java_model = sc._jvm.org.apache.spark.ml.feature.PCAModel(  # type: ignore[union-attr]
        f"PCAModel_{uuid.uuid4().hex[:12]}",
        _py2java(sc, matrix),
        _py2java(sc, DenseVector(explained.tolist())),
    )
    java_model.set(java_model.k(), cols)  # transform validates k against the matrix width
    model = PCAModel(java_model)
    model._transfer_params_from_java()
    return model.setInputCol(SCALED_COL).setOutputCol(PCA_COL)


def inverse_std(std: np.ndarray) -> np.ndarray:
    """``1 / std`` per feature, and 0 where std is 0, as Spark's ``StandardScalerModel`` scales."""
    return np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)


@dataclass(frozen=True)
class FeatureMoments:
    """Row count, mean ``(d,)`` and scatter matrix ``Σ (x - mean)(x - mean)ᵀ`` ``(d, d)``."""

    rows: int
    mean: np.ndarray
    scatter: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> FeatureMoments:
        """The moments of no rows: the neutral element of ``combined``."""
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))

    def combined(self, other: FeatureMoments) -> FeatureMoments:
        """The moments of both sets of rows together (Chan, Golub and LeVeque's update)."""
        if not self.rows or not other.rows:
            return self if other.rows == 0 else other
        rows = self.rows + other.rows
        delta = other.mean - self.mean
        return FeatureMoments(
            rows=rows,
            mean=self.mean + delta * (other.rows / rows),
            scatter=self.scatter
            + other.scatter
            + np.outer(delta, delta) * (self.rows * other.rows / rows),
        )

    @property
    def std(self) -> np.ndarray:
        """Unbiased standard deviation per feature, as Spark's ``StandardScaler`` uses."""
        if self.rows < 2:
            return np.zeros_like(self.mean)
        return np.sqrt(np.clip(np.diag(self.scatter), 0.0, None) / (self.rows - 1))

    def standardised_covariance(self) -> np.ndarray:
        """Covariance of the standardised features (zero-variance features stay 0)."""
        scale = inverse_std(self.std)
        return self.scatter / max(self.rows - 1, 1) * np.outer(scale, scale)


def partition_moments(matrix: np.ndarray) -> FeatureMoments:
    """Moments of one partition's ``(n, d)`` rows, shifted by the first row for accuracy.

    Shifting makes constant features (and identical rows) come out with exactly zero scatter,
    so they are recognised as zero-variance instead of as noise around 1e-17.
    """
    shift = matrix[0]
    centred = matrix - shift
    total = centred.sum(axis=0)
    return FeatureMoments(
        rows=len(matrix),
        mean=shift + total / len(matrix),
        scatter=centred.T @ centred - np.outer(total, total) / len(matrix),
    )


def feature_moments(features: DataFrame) -> FeatureMoments:
    """Mean and scatter of the ``features`` column in one pass over the data.

    Each task reduces its rows to ``FeatureMoments`` (NumPy on Arrow buffers, float64); the
    driver combines them. The rows are coalesced to one task per core, so at most cores x 13 MB
    of partial scatter matrices reach the driver, whatever the number of images.
    """
    dim = FEATURE_DIM

    def moments(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        total = FeatureMoments.empty(dim)
        for batch in batches:
            if batch.num_rows:
                matrix = to_matrix(batch.column("features"), dim)
                total = total.combined(partition_moments(matrix))
        yield pa.RecordBatch.from_pydict(
            {"rows": [total.rows], "mean": [total.mean], "scatter": [total.scatter.ravel()]},
            schema=pa.schema(
                [("rows", pa.int64()), ("mean", pa.list_(pa.float64())),
                 ("scatter", pa.list_(pa.float64()))]
            ),
        )  # fmt: skip

    partitions = max(1, features.sparkSession.sparkContext.defaultParallelism)
    partials = (
        features.select("features")
        .coalesce(partitions)
        .mapInArrow(moments, "rows long, mean array<double>, scatter array<double>")
        .toPandas()
    )
    result = FeatureMoments.empty(dim)
    for rows, mean, scatter in partials.itertuples(index=False):
        result = result.combined(
            FeatureMoments(int(rows), np.asarray(mean), np.asarray(scatter).reshape(dim, dim))
        )
    return result


def principal_components(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full-rank eigendecomposition of a covariance matrix, largest variance first.

    Returns ``(components (d, d), explained (d,))``: unit eigenvectors as columns, each signed
    so its largest-magnitude entry is positive (a fixed convention, so reruns agree), and each
    component's share of the total variance. Shares are NaN when the total variance is 0.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues = np.clip(eigenvalues[order], 0.0, None)  # rounding leaves tiny negatives
    eigenvectors = eigenvectors[:, order]
    signs = np.sign(eigenvectors[np.abs(eigenvectors).argmax(axis=0), np.arange(len(order))])
    total = eigenvalues.sum()
    explained = eigenvalues / total if total > 0 else np.full_like(eigenvalues, np.nan)
    return eigenvectors * np.where(signs == 0, 1.0, signs), explained


def fit_reduction(features: DataFrame, target: float, k: int | None = None) -> Reduction:
    """Fit StandardScaler(withMean, withStd) + a full-rank PCA on ``features`` and choose k.

    Args:
        features: rows with ``features`` (array<float>[1280]); read from the persisted
            ``features/`` Parquet, so fitting never re-runs the model.
        target: share of variance to keep, in (0, 1]; k is the smallest that reaches it.
        k: a fixed k (1..1280) that overrides the variance rule.

    Returns:
        The ``Reduction``; its ``model`` (Spark's ``StandardScalerModel`` then ``PCAModel``)
        maps ``features_vector`` to ``pca_vector`` (k doubles).

    Scaler and PCA come from one pass over ``features``: each task reduces its rows to a mean
    and a scatter matrix, the driver combines them (``feature_moments``), and both models are
    built from those numbers. Spark 3.5's ``StandardScaler.fit`` would be a second pass, and
    its ``PCA.fit`` takes the SVD of the 1280 x 1280 covariance in pure-Java LAPACK, which was
    slow (13 s) and, on our rank-deficient covariances, returned components that do not match
    its own explained variances. Only the eigendecomposition (NumPy LAPACK, under a second)
    runs on the driver.

    Pitfall: Spark's ``PCAModel.transform`` does not centre data; the scaler's
    ``withMean=True`` does, which is what makes the projection a true PCA projection.
    """
    spark = features.sparkSession
    moments = feature_moments(features)
    scaler = _scaler_model(spark, moments)
    rows = moments.rows
    components, explained = principal_components(moments.standardised_covariance())

    if rows < 2 or not np.all(np.isfinite(explained)):
        # No variance to explain: every direction projects to 0; keep one so k stays valid.
        note = f"the {rows} standardised feature vector(s) have no variance: k = 1, projections 0"
        pca = _pca_model(spark, components[:, :1], np.zeros(1))
        return Reduction(PipelineModel([scaler, pca]), 1, None, None, note)

    chosen = k if k is not None else choose_k(explained, target)
    cumulative = np.cumsum(explained)
    pca = _pca_model(spark, components[:, :chosen], explained[:chosen])
    return Reduction(
        model=PipelineModel([scaler, pca]),
        k=chosen,
        cumulative_variance=[float(value) for value in cumulative],
        achieved_variance=float(cumulative[chosen - 1]),
    )


def project(model: PipelineModel) -> Callable[[DataFrame], DataFrame]:
    """Transform: ``(path, label, split, features)`` -> ``(path, label, split, pca_features)``.

    ``pca_features`` is array<float>[k]: the features standardised and projected on the top-k
    components with the numbers of ``model`` (its ``StandardScalerModel`` then ``PCAModel``),
    so they equal ``model.transform`` (a test checks it). Computed with NumPy matrix products on
    Arrow batches (``mapInArrow``): Spark's ``PCAModel.transform`` multiplies row by row in
    pure-Java BLAS, which took 2-4 s for 8,000 images here.
    """
    scaler, pca = model.stages
    mean, scale = scaler.mean.toArray(), inverse_std(scaler.std.toArray())
    components = pca.pc.toArray()
    dim = mean.size

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            projected = ((to_matrix(batch.column("features"), dim) - mean) * scale) @ components
            yield keyed_vectors(batch, "pca_features", projected)

    def transform(df: DataFrame) -> DataFrame:
        return df.select("path", "label", "split", "features").mapInArrow(
            apply, "path string, label string, split string, pca_features array<float>"
        )

    return transform
