"""Featurizing: image bytes -> 1280-d MobileNetV2 features, or an error row, in a pandas UDF.

``featurize_images`` adds one struct column computed by a **scalar-iterator pandas UDF**: the
iterator form lets each Python worker fetch its model once (``model.worker_predictor``) and then
stream every Arrow batch of the task through it. ``split_results`` turns the struct into the
``features`` and ``errors`` frames. Both are ``DataFrame -> DataFrame`` transforms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from fruits_pipeline.decoding import DecodeError, decode_image
from fruits_pipeline.model import Predictor, preprocess, worker_predictor

RESULT_FIELDS = "features array<float>, error_kind string, error_message string"


def featurize_series(
    contents: pd.Series, predict: Predictor, image_size: int, batch_size: int
) -> pd.DataFrame:
    """Featurize one Arrow batch of file contents.

    Args:
        contents: ``bytes`` (or None) per row, the raw files.
        predict: ``float32 (n, s, s, 3) -> float32 (n, 1280)``, see ``model.make_predictor``.
        image_size: the model's input side ``s`` in pixels.
        batch_size: most images per model call; bounds the float32 batch to
            ``batch_size * s * s * 3 * 4`` bytes (19 MB at 32 x 224 x 224).

    Returns:
        One row per input row, same order: ``features`` (float32 array of 1280, or None),
        ``error_kind`` and ``error_message`` (None when the image was featurized).

    Pitfall: a row is either features or an error, never both and never a placeholder vector;
    non-finite model outputs become ``non_finite_features`` errors rather than NaN features.
    """
    count = len(contents)
    features: list[np.ndarray | None] = [None] * count
    kinds: list[str | None] = [None] * count
    messages: list[str | None] = [None] * count
    decoded_rows: list[int] = []
    decoded: list[np.ndarray] = []
    for row, data in enumerate(contents):
        try:
            decoded.append(decode_image(data, image_size))
            decoded_rows.append(row)
        except DecodeError as error:
            kinds[row], messages[row] = error.kind, error.message
    for start in range(0, len(decoded), batch_size):
        batch = preprocess(np.stack(decoded[start : start + batch_size]))
        outputs = predict(batch)
        for row, vector in zip(decoded_rows[start : start + batch_size], outputs, strict=True):
            if np.all(np.isfinite(vector)):
                features[row] = vector.astype(np.float32)
            else:
                kinds[row] = "non_finite_features"
                messages[row] = "the model produced NaN or infinite features for this image"
    return pd.DataFrame({"features": features, "error_kind": kinds, "error_message": messages})


def make_featurize_udf(
    weights: Broadcast[list[np.ndarray]],
    weights_sha256: str,
    image_size: int,
    batch_size: int,
    tf_threads: int,
) -> Callable[[Column], Column]:
    """Build the scalar-iterator pandas UDF: ``binary -> struct<features, error_kind,
    error_message>``.

    ``weights`` is the driver's broadcast of ``LoadedWeights.arrays``; executors read it, they
    never download anything. The Arrow batch size (rows per ``pd.Series``) is Spark's
    ``spark.sql.execution.arrow.maxRecordsPerBatch``.
    """

    @pandas_udf(RESULT_FIELDS)  # type: ignore[call-overload]
    def featurize(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        predict = worker_predictor(weights, weights_sha256, image_size, tf_threads)
        for contents in batches:
            yield featurize_series(contents, predict, image_size, batch_size)

    return featurize


def featurize_images(featurize: Callable[[Column], Column]) -> Callable[[DataFrame], DataFrame]:
    """Transform: ``(path, label, split, content)`` -> ``(path, label, split, result)``.

    ``result`` is the UDF's struct. The image bytes are dropped here, so nothing downstream
    carries them. Lazy: inference runs when the result is written (once, see ``job.py``).
    """

    def transform(df: DataFrame) -> DataFrame:
        return df.select("path", "label", "split", featurize(F.col("content")).alias("result"))

    return transform


def successes(df: DataFrame) -> DataFrame:
    """Featurized rows: ``(path, label, split, features array<float>[1280])``."""
    return df.where(F.col("result.error_kind").isNull()).select(
        "path", "label", "split", F.col("result.features").alias("features")
    )


def failures(df: DataFrame) -> DataFrame:
    """Rows that could not be featurized: ``(path, label, split, error_kind, error_message)``."""
    return df.where(F.col("result.error_kind").isNotNull()).select(
        "path",
        "label",
        "split",
        F.col("result.error_kind").alias("error_kind"),
        F.col("result.error_message").alias("error_message"),
    )
