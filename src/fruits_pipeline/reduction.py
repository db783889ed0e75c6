"""Reducing: StandardScaler + PCA on the persisted features, k chosen by explained variance.

``fit_reduction`` reads ``features/`` once, standardises the 1280-d features and takes the
full-rank PCA of their covariance in NumPy, picks k and keeps the top-k components. Those NumPy
numbers (a ``Reduction``) are the truth: ``project`` computes ``pca/`` from them, and
``export_pipeline_model`` writes the same numbers as the standard Spark ``PipelineModel``
(scaler, then PCA) that ``model/`` holds for ``PipelineModel.load`` (its two models built by
``jvm.py``; ``import_pipeline_model`` reads one back with PySpark's public API).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession

from fruits_pipeline.config import FEATURE_DIM
from fruits_pipeline.jvm import pca_model, standard_scaler_model
from fruits_pipeline.schema import FEATURES, KEY_COLUMNS, PCA_FEATURES, PCA_SCHEMA
from fruits_pipeline.vectors import keyed_vectors, to_matrix

# Column names of the saved PipelineModel: to project new features, add VECTOR_COL with
# ``array_to_vector("features")`` and read PCA_COL (see README, "Outputs").
VECTOR_COL = "features_vector"
SCALED_COL = "scaled_features"
PCA_COL = "pca_vector"

# Cumulative sums of 1280 floats drift by ~1e-15; without this slack a target of 1.0 could
# never be met exactly.
_VARIANCE_TOLERANCE = 1e-9
# Removing rows (FeatureMoments.without) that leaves a feature with less than this share of
# its scatter leaves it constant: the rest is rounding.
_CONSTANT_SHARE = 1e-9


@dataclass(frozen=True)
class Reduction:
    """A fitted scaler + PCA, as NumPy numbers, and how k was chosen.

    ``mean`` and ``std`` ``(1280,)`` (unbiased; 0 for constant features) standardise;
    ``components`` ``(1280, k)`` are the top-k unit eigenvectors of the standardised covariance
    and ``explained`` ``(k,)`` their shares of its variance. ``cumulative_variance[i]`` is the
    share kept by the first ``i + 1`` components (length 1280). It is None, with ``note`` saying
    why, when the standardised features have no variance at all (one image, or identical
    images): then k = 1 and projections are 0.
    """

    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray
    explained: np.ndarray
    cumulative_variance: list[float] | None
    achieved_variance: float | None
    note: str | None = None

    @property
    def k(self) -> int:
        return int(self.components.shape[1])


def choose_k(explained_variance: Sequence[float], target: float) -> int:
    """Smallest k whose cumulative explained variance reaches ``target`` (a share in (0, 1]).

    ``explained_variance`` holds each component's share, largest first, as Spark's
    ``PCAModel.explainedVariance``. Returns a value in ``1..len(explained_variance)``.
    """
    cumulative = np.cumsum(np.asarray(explained_variance, dtype=np.float64))
    reached = np.nonzero(cumulative >= target - _VARIANCE_TOLERANCE)[0]
    return int(reached[0]) + 1 if reached.size else len(cumulative)


def export_pipeline_model(spark: SparkSession, reduction: Reduction) -> PipelineModel:
    """``reduction`` as Spark's ``PipelineModel([StandardScalerModel, PCAModel])``, unfitted.

    ``features_vector`` (add it with ``array_to_vector("features")``) -> ``scaled_features`` ->
    ``pca_vector`` (k doubles): the same classes and numbers as ``StandardScaler(withMean=True,
    withStd=True).fit`` then a k-component ``PCA``, so ``model/`` saves and loads like any
    fitted pipeline. Spark has no public constructor for either model: ``jvm.py`` builds them.
    """
    scaler = standard_scaler_model(spark, reduction.mean, reduction.std)
    pca = pca_model(spark, reduction.components, reduction.explained)
    return PipelineModel(
        [
            scaler.setInputCol(VECTOR_COL).setOutputCol(SCALED_COL),
            pca.setInputCol(SCALED_COL).setOutputCol(PCA_COL),
        ]
    )


def import_pipeline_model(uri: str) -> Reduction:
    """The ``Reduction`` saved as ``model/`` at ``uri`` (by ``export_pipeline_model``).

    Reads it with ``PipelineModel.load`` and takes back its numbers through PySpark's public
    API. The variance curve is not in ``model/`` (the manifest has it): it comes back None.
    """
    scaler, pca = PipelineModel.load(uri).stages
    explained = pca.explainedVariance.toArray()
    return Reduction(
        mean=scaler.mean.toArray(),
        std=scaler.std.toArray(),
        components=pca.pc.toArray(),
        explained=explained,
        cumulative_variance=None,
        achieved_variance=float(explained.sum()),
        note=f"scaler + PCA loaded from {uri}, not refitted",
    )


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

    def without(self, part: FeatureMoments) -> FeatureMoments:
        """The moments of these rows less ``part``, a subset of them (``combined`` undone).

        Lets a collection's moments follow its rows: add those of new rows, take away those of
        removed or changed ones, and never re-read the rest. Raises ValueError when ``part``
        has more rows than these moments.
        """
        if part.rows == 0:
            return self
        rows = self.rows - part.rows
        if rows < 0:
            raise ValueError(f"cannot remove {part.rows} rows from moments of {self.rows}")
        if rows == 0:
            return FeatureMoments.empty(self.mean.size)
        mean = (self.mean * self.rows - part.mean * part.rows) / rows
        delta = part.mean - mean
        scatter = (
            self.scatter - part.scatter - np.outer(delta, delta) * (rows * part.rows / self.rows)
        )
        # A feature left constant must come out with exactly zero scatter, as a fit from scratch
        # gives (partition_moments): rounding leaves ~1e-17 there, which standardising would
        # blow up to a unit variance.
        before = np.diag(self.scatter)
        constant = (np.diag(scatter) <= _CONSTANT_SHARE * before) | (before == 0)
        scatter[constant, :] = 0.0
        scatter[:, constant] = 0.0
        return FeatureMoments(rows=rows, mean=mean, scatter=scatter)

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


def feature_moments(features: DataFrame, dim: int = FEATURE_DIM) -> FeatureMoments:
    """Mean and scatter of the ``features`` column (``dim`` values a row) in one pass.

    Each task reduces its rows to ``FeatureMoments`` (NumPy on Arrow buffers, float64); the
    driver combines them. The rows are coalesced to one task per core, so at most cores x 13 MB
    of partial scatter matrices reach the driver, whatever the number of images. They travel
    as raw float64 bytes: as ``array<double>`` they became Python lists of 1.6 million floats
    on the driver, slow unless the session had Arrow enabled for ``toPandas``.
    """

    def moments(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        total = FeatureMoments.empty(dim)
        for batch in batches:
            if batch.num_rows:
                matrix = to_matrix(batch.column(FEATURES), dim)
                total = total.combined(partition_moments(matrix))
        yield pa.RecordBatch.from_pydict(
            {
                "rows": [total.rows],
                "mean": [total.mean.tobytes()],
                "scatter": [total.scatter.tobytes()],
            },
            schema=pa.schema(
                [("rows", pa.int64()), ("mean", pa.binary()), ("scatter", pa.binary())]
            ),
        )

    partitions = max(1, features.sparkSession.sparkContext.defaultParallelism)
    partials = (
        features.select(FEATURES)
        .coalesce(partitions)
        .mapInArrow(moments, "rows long, mean binary, scatter binary")
        .collect()
    )
    result = FeatureMoments.empty(dim)
    for rows, mean, scatter in partials:
        result = result.combined(
            FeatureMoments(
                int(rows),
                np.frombuffer(mean, dtype=np.float64).copy(),
                np.frombuffer(scatter, dtype=np.float64).reshape(dim, dim).copy(),
            )
        )
    return result
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


def fit_reduction(
    features: DataFrame, target: float, k: int | None = None, dim: int = FEATURE_DIM
) -> Reduction:
    """Fit StandardScaler(withMean, withStd) + a full-rank PCA on ``features`` and choose k.

    Args:
        features: rows with ``features`` (array<float>[1280]); read from the persisted
            ``features/`` Parquet, so fitting never re-runs the model.
        target: share of variance to keep, in (0, 1]; k is the smallest that reaches it.
        k: a fixed k (1..dim) that overrides the variance rule.
        dim: values per feature vector: the extractor's width (1280 for MobileNetV2).

    Returns:
        The ``Reduction``: NumPy mean, std, top-k components and the variance curve.
        ``export_pipeline_model`` turns it into ``model/``, ``project`` into ``pca/``.

    Scaler and PCA come from one pass over ``features``: each task reduces its rows to a mean
    and a scatter matrix, and the driver combines them (``feature_moments``). Spark 3.5's
    ``StandardScaler.fit`` would be a second pass, and its ``PCA.fit`` takes the SVD of the
    1280 x 1280 covariance in pure-Java LAPACK, which was slow (13 s) and, on our
    rank-deficient covariances, returned components that do not match its own explained
    variances. Only the eigendecomposition (NumPy LAPACK, under a second)
    runs on the driver.

    Pitfall: Spark's ``PCAModel.transform`` does not centre data; the scaler's
    ``withMean=True`` does, which is what makes the projection a true PCA projection.
    """
    return reduction_from_moments(feature_moments(features, dim), target, k)


def reduction_from_moments(
    moments: FeatureMoments, target: float, k: int | None = None
) -> Reduction:
    """The scaler + PCA of the rows whose ``moments`` these are, k chosen as ``fit_reduction``
    does (``target`` share of variance, or a fixed ``k``). Reads no data: a collection that
    keeps its moments refits without re-reading its features."""
    rows = moments.rows
    components, explained = principal_components(moments.standardised_covariance())
    if rows < 2 or not np.all(np.isfinite(explained)):
        # No variance to explain: every direction projects to 0; keep one so k stays valid.
        note = f"the {rows} standardised feature vector(s) have no variance: k = 1, projections 0"
        return Reduction(
            moments.mean, moments.std, components[:, :1], np.zeros(1), None, None, note
        )
    chosen = k if k is not None else choose_k(explained, target)
    cumulative = np.cumsum(explained)
    return Reduction(
        mean=moments.mean,
        std=moments.std,
        components=components[:, :chosen],
        explained=explained[:chosen],
        cumulative_variance=[float(value) for value in cumulative],
        achieved_variance=float(cumulative[chosen - 1]),
    )


def project(reduction: Reduction) -> Callable[[DataFrame], DataFrame]:
    """Transform: ``(path, label, split, features)`` -> ``(path, label, split, pca_features)``.

    ``pca_features`` is array<float>[k]: the features standardised and projected on the top-k
    components of ``reduction``, the numbers ``model/`` holds, so they equal the exported
    model's ``transform`` (a test checks it). Computed with NumPy matrix products on Arrow
    batches (``mapInArrow``): Spark's ``PCAModel.transform`` multiplies row by row in pure-Java
    BLAS, which took 2-4 s for 8,000 images here.

    Pitfall: the arrays go to the tasks as one broadcast. Captured in the function's closure,
    the ``d x k`` components (3 MB at k = 300) travelled inside every serialized task.
    """

    def transform(df: DataFrame) -> DataFrame:
        arrays = df.sparkSession.sparkContext.broadcast(
            (reduction.mean, inverse_std(reduction.std), reduction.components)
        )

        def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            mean, scale, components = arrays.value
            for batch in batches:
                matrix = to_matrix(batch.column(FEATURES), mean.size)
                yield keyed_vectors(batch, PCA_FEATURES, ((matrix - mean) * scale) @ components)

        return df.select(*KEY_COLUMNS, FEATURES).mapInArrow(apply, PCA_SCHEMA)

    return transform
