"""Featurizing: image bytes -> 1280-d MobileNetV2 features, or an error row, in a pandas UDF.

``featurize_images`` adds one struct column computed by a **scalar-iterator pandas UDF**: the
iterator form lets each Python worker build its model once (``worker_predictor``, from the
engine's predictor factory, see ``engines.py``) and then stream every Arrow batch of the task
through it. ``successes`` and ``failures`` turn the struct into the ``features`` and ``errors``
frames. All are ``DataFrame -> DataFrame`` transforms.

The UDF hands features back **packed**: 1280 little-endian float32 in one 5,120-byte binary.
PySpark 3.5 converts an ``array<float>`` result element by element in Python (a list
comprehension and a pyarrow conversion per float, 1,280 per image), and the JVM then writes each
float of the staging Parquet one call at a time; packed, both are one copy per image (measured:
the JVM's share of the CPU during featurize fell from 8 % to 3 %). ``successes`` unpacks them
into ``array<float>`` with vectorised Arrow code when ``features/`` is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark import Accumulator
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from fruits_pipeline.config import FEATURE_DIM
from fruits_pipeline.decoding import DecodeError, decode_image
from fruits_pipeline.model import Predictor, drop_zip_importers, settle_worker
from fruits_pipeline.schema import (
    CONTENT,
    ERROR_KIND,
    ERROR_MESSAGE,
    FEATURES,
    FEATURES_SCHEMA,
    KEY_COLUMNS,
    PACKED_FEATURES,
    RESULT,
    RESULT_FIELDS,
)
from fruits_pipeline.vectors import keyed_vectors

PACKED_DTYPE = np.dtype("<f4")
PACKED_BYTES = FEATURE_DIM * PACKED_DTYPE.itemsize


def featurize_series(
    contents: pd.Series, predict: Predictor, image_size: int, batch_size: int
) -> pd.DataFrame:
    """Featurize one Arrow batch of file contents.

    Args:
        contents: ``bytes`` (or None) per row, the raw files.
        predict: ``uint8 (n, s, s, 3) -> float32 (n, 1280)``, see ``engines.py``.
        image_size: the model's input side ``s`` in pixels.
        batch_size: most images per model call; the decoded pixels of one call are
            ``batch_size * s * s * 3`` bytes (1.2 MB at 8 x 224 x 224), the only ones held.

    Returns:
        One row per input row, same order: ``packed_features`` (the 1280 float32 features as
        5,120 little-endian bytes, or None), ``error_kind`` and ``error_message`` (None when
        the image was featurized). ``successes`` turns the bytes back into floats.

    Pitfall: a row is either features or an error, never both and never a placeholder vector;
    non-finite model outputs become ``non_finite_features`` errors rather than NaN features.
    """
    count = len(contents)
    packed: list[bytes | None] = [None] * count
    kinds: list[str | None] = [None] * count
    messages: list[str | None] = [None] * count
    pixels = np.empty((batch_size, image_size, image_size, 3), dtype=np.uint8)
    rows: list[int] = []
    for row, data in enumerate(contents):
        try:
            pixels[len(rows)] = decode_image(data, image_size)
        except DecodeError as error:
            kinds[row], messages[row] = error.kind, error.message
            continue
        rows.append(row)
        if len(rows) == batch_size:
            _run_model(predict, pixels[: len(rows)], rows, packed, kinds, messages)
            rows = []
    if rows:
        _run_model(predict, pixels[: len(rows)], rows, packed, kinds, messages)
    return pd.DataFrame({PACKED_FEATURES: packed, ERROR_KIND: kinds, ERROR_MESSAGE: messages})


def _run_model(
    predict: Predictor,
    pixels: np.ndarray,
    rows: list[int],
    packed: list[bytes | None],
    kinds: list[str | None],
    messages: list[str | None],
) -> None:
    """One model call on ``pixels``; each of ``rows`` gets its packed vector or an error."""
    outputs = np.asarray(predict(pixels), dtype=PACKED_DTYPE)
    finite = np.isfinite(outputs).all(axis=1)
    for row, vector, ok in zip(rows, outputs, finite, strict=True):
        if ok:
            packed[row] = vector.tobytes()
        else:
            kinds[row] = "non_finite_features"
            messages[row] = "the model produced NaN or infinite features for this image"


_WORKER_PREDICTOR: dict[str, Predictor] = {}


def worker_predictor(key: str, factory: Callable[[], Predictor]) -> Predictor:
    """This Python worker's predictor for ``key``: built by ``factory()`` on first use, then
    reused by every later task (Spark reuses Python workers, ``spark.python.worker.reuse``).

    A worker holds one model: a new ``key`` replaces the previous predictor rather than
    accumulating models in a long-lived worker. After building, ``settle_worker`` runs once.
    """
    if key not in _WORKER_PREDICTOR:
        _WORKER_PREDICTOR.clear()
        _WORKER_PREDICTOR[key] = factory()
        settle_worker()
    return _WORKER_PREDICTOR[key]


def make_featurize_udf(
    factory: Callable[[], Predictor],
    image_size: int,
    batch_size: int,
    rows_seen: Accumulator[int] | None = None,
) -> Callable[[Column], Column]:
    """Build the scalar-iterator pandas UDF: ``binary -> struct<packed_features, error_kind,
    error_message>``.

    Args:
        factory: the engine's predictor factory (``engines.predictor_factory``): picklable,
            run once per Python worker, returns ``uint8 (n, s, s, 3) -> float32 (n, 1280)``.
            It carries the engine's broadcast; executors never download anything.
        image_size: the model's input side ``s`` in pixels.
        batch_size: most images per model call.
        rows_seen: a Spark accumulator the UDF adds its rows to: how many images were sent to
            the model, counted where it runs (a retried task counts its rows again).

    The Arrow batch size (rows per ``pd.Series``) is Spark's
    ``spark.sql.execution.arrow.maxRecordsPerBatch``. Pitfall: the factory is keyed by this
    UDF (a fresh id per call), not by its value: a factory holding a ``Broadcast`` is a new
    object in every task, so its identity cannot tell workers they already built it.
    """
    key = uuid.uuid4().hex

    @pandas_udf(RESULT_FIELDS)  # type: ignore[call-overload]
    def featurize(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        predict = worker_predictor(key, factory)
        for contents in batches:
            if rows_seen is not None:
                rows_seen.add(len(contents))
            yield featurize_series(contents, predict, image_size, batch_size)
        drop_zip_importers()  # before the next task's invalidate_caches (see model.py)

    return featurize


def featurize_images(featurize: Callable[[Column], Column]) -> Callable[[DataFrame], DataFrame]:
    """Transform: ``(path, label, split, content)`` -> ``(path, label, split, result)``.

    ``result`` is the UDF's struct. The image bytes are dropped here, so nothing downstream
    carries them. Lazy: inference runs when the result is written (once, see ``job.py``).
    """

    def transform(df: DataFrame) -> DataFrame:
        return df.select(*KEY_COLUMNS, featurize(F.col(CONTENT)).alias(RESULT))

    return transform


def unpack_batch(batch: pa.RecordBatch, width: int = FEATURE_DIM) -> pa.RecordBatch:
    """``(path, label, split, packed_features)`` -> ``(path, label, split, features)``.

    ``packed_features`` must hold ``width`` float32 per row (``PACKED_BYTES`` bytes for
    MobileNetV2's 1280), none null: the values are reinterpreted in place (no per-row Python)
    as ``list<float32>`` of ``width``.

    Raises:
        ValueError: a row is null or not exactly ``width`` float32 long.
    """
    packed = batch.column(PACKED_FEATURES)
    if packed.null_count:
        raise ValueError("packed_features holds nulls; only featurized rows can be unpacked")
    offsets = np.frombuffer(packed.buffers()[1], dtype=np.int32)[
        packed.offset : packed.offset + len(packed) + 1
    ]
    row_bytes = width * PACKED_DTYPE.itemsize
    if np.any(np.diff(offsets) != row_bytes):
        raise ValueError(f"packed_features rows must be {row_bytes} bytes each")
    data = np.frombuffer(packed.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return keyed_vectors(batch, FEATURES, data.view(PACKED_DTYPE).reshape(len(packed), width))


def unpack_features(df: DataFrame, width: int = FEATURE_DIM) -> DataFrame:
    """Transform: ``(path, label, split, packed_features)`` -> ``(path, label, split, features)``.

    ``features`` is ``array<float>[width]``. Runs as ``mapInArrow``: Arrow buffers in and out,
    so unpacking costs a memory copy per batch, not a Python call per float.
    """

    def unpack(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return (unpack_batch(batch, width) for batch in batches)

    return df.select(*KEY_COLUMNS, PACKED_FEATURES).mapInArrow(unpack, FEATURES_SCHEMA)


def successes(df: DataFrame, width: int = FEATURE_DIM) -> DataFrame:
    """Featurized rows: ``(path, label, split, features array<float>[width])``; ``width`` is
    the extractor's (``df.transform(successes, width)``), 1280 for MobileNetV2."""
    return (
        df.where(F.col(f"{RESULT}.{ERROR_KIND}").isNull())
        .select(*KEY_COLUMNS, F.col(f"{RESULT}.{PACKED_FEATURES}").alias(PACKED_FEATURES))
        .transform(unpack_features, width)
    )


def failures(df: DataFrame) -> DataFrame:
    """Rows that could not be featurized: ``(path, label, split, error_kind, error_message)``."""
    return df.where(F.col(f"{RESULT}.{ERROR_KIND}").isNotNull()).select(
        *KEY_COLUMNS,
        F.col(f"{RESULT}.{ERROR_KIND}").alias(ERROR_KIND),
        F.col(f"{RESULT}.{ERROR_MESSAGE}").alias(ERROR_MESSAGE),
    )
