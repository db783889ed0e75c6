"""The linear probe: how well a plain linear classifier separates the fruits in ``pca/``.

A multinomial ``LogisticRegression`` trained on the ``Training`` split's ``pca_features`` and
scored on the ``Test`` split; without both splits, on a seeded, stratified 80/20 hold-out. It is
a health check of the features, not the product's classifier: if it drops, the reduction or the
weights lost something.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import StringIndexer
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from fruits_pipeline.manifest import ProbeSummary
from fruits_pipeline.schema import LABEL, PATH, PCA_FEATURES, SPLIT, TEST_SPLIT, TRAIN_SPLIT

HOLD_OUT_SHARE = 0.2
_MAX_ITER = 200
_REG_PARAM = (
    1e-3  # a touch of L2: with k close to the number of images, the fit is otherwise ill-posed
)


@dataclass(frozen=True)
class ProbeSplit:
    train: DataFrame
    test: DataFrame
    how: str


def with_hold_out(seed: int, share: float = HOLD_OUT_SHARE) -> Any:
    """Transform adding ``is_test``: a seeded, stratified hold-out of ``share`` per label.

    Within each label, rows are ordered by a seeded hash of their path and the first
    ``ceil(share * count)`` are held out: the same rows for the same seed, whatever the
    partitioning.
    """

    def transform(df: DataFrame) -> DataFrame:
        per_label = Window.partitionBy(LABEL)
        ordered = per_label.orderBy(F.xxhash64(PATH, F.lit(seed)), PATH)
        return (
            df.withColumn("_rank", F.row_number().over(ordered))
            .withColumn(
                "is_test", F.col("_rank") <= F.ceil(F.count(F.lit(1)).over(per_label) * share)
            )
            .drop("_rank")
        )

    return transform


def split_for_probe(pca: DataFrame, seed: int) -> ProbeSplit:
    """Training/Test folders when both are present, else the seeded stratified hold-out."""
    splits = {row[SPLIT] for row in pca.select(SPLIT).distinct().collect()}
    if {TRAIN_SPLIT, TEST_SPLIT} <= splits:
        return ProbeSplit(
            pca.where(F.col(SPLIT) == TRAIN_SPLIT),
            pca.where(F.col(SPLIT) == TEST_SPLIT),
            f"{TRAIN_SPLIT} folder -> {TEST_SPLIT} folder",
        )
    marked = pca.transform(with_hold_out(seed))
    return ProbeSplit(
        marked.where(~F.col("is_test")),
        marked.where(F.col("is_test")),
        f"stratified {HOLD_OUT_SHARE:.0%} hold-out per label, seed {seed}",
    )


def scores(labels: list[str], confusion: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class recall from a confusion matrix (rows: true labels)."""
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    hits = np.diag(confusion)
    recall = np.divide(hits, true_counts, out=np.zeros(len(labels)), where=true_counts > 0)
    precision = np.divide(hits, predicted_counts, out=np.zeros(len(labels)),
                          where=predicted_counts > 0)  # fmt: skip
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(len(labels)),
                   where=denominator > 0)  # fmt: skip
    present = true_counts > 0  # macro F1 over the classes the test set has
    return {
        "accuracy": float(hits.sum() / confusion.sum()),
        "macro_f1": float(f1[present].mean()),
        "per_class_recall": {
            label: float(r) for label, r, p in zip(labels, recall, present, strict=True) if p
        },
    }


def run_probe(pca: DataFrame, seed: int) -> ProbeSummary:
    """Fit and score the probe on ``pca`` (``path, label, split, pca_features``).

    Returns the manifest's ``probe`` section (``ProbeSummary``): how the data was split, image
    counts, accuracy, macro F1, per-class recall and the confusion matrix (``labels`` x
    ``labels``, rows true).
    ``status`` is ``skipped`` with a ``reason`` when there is nothing to probe (one label, or an
    empty side). Deterministic for a given ``seed`` and data.
    """
    labels = sorted(row[LABEL] for row in pca.select(LABEL).distinct().collect())
    if len(labels) < 2:
        return ProbeSummary(status="skipped", reason="a probe needs at least two labels")
    split = split_for_probe(pca.withColumn("pca_vector", array_to_vector(PCA_FEATURES)), seed)
    train_count, test_count = split.train.count(), split.test.count()
    if not train_count or not test_count:
        return ProbeSummary(
            status="skipped", reason=f"empty side: {train_count} train, {test_count} test"
        )
    indexer = StringIndexer(inputCol=LABEL, outputCol="label_index", stringOrderType="alphabetAsc")
    indexer_model = indexer.fit(split.train.unionByName(split.test))
    # standardization=False: PCA coordinates already carry their scale (large variance first).
    # Spark's default rescales the near-noise tail components to unit variance, and on the
    # 240-image sample the probe then fit that noise: train 1.0, test 0.35 (False: test 1.0).
    classifier = LogisticRegression(
        featuresCol="pca_vector", labelCol="label_index", family="multinomial",
        maxIter=_MAX_ITER, regParam=_REG_PARAM, standardization=False,
    )  # fmt: skip
    model = classifier.fit(indexer_model.transform(split.train))
    predicted = model.transform(indexer_model.transform(split.test))
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for row in predicted.groupBy("label_index", "prediction").count().collect():
        confusion[int(row.label_index), int(row.prediction)] += row["count"]
    return ProbeSummary(
        status="succeeded",
        split=split.how,
        train_images=train_count,
        test_images=test_count,
        **scores(labels, confusion),
        confusion_matrix={"labels": labels, "matrix": confusion.tolist()},
    )
