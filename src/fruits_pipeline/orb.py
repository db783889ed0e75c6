"""The ``orb`` extractor: ORB keypoint descriptors (OpenCV) pooled into a bag of visual words.

An image becomes a fixed-length vector in three steps:

1. ``orb_bits``: bytes -> the same RGB pixels the model would see (``decoding.decode_image``)
   -> grey -> up to ``KEYPOINTS`` ORB keypoints -> their 256-bit descriptors, as 0/1 floats
   ``(n, 256)``. An image without a keypoint (a blank one) is a ``DecodeError`` of kind
   ``no_keypoints``, never a zero vector.
2. ``fit_vocabulary`` (once per run, on the driver's orders): Spark ML ``KMeans`` with ``WORDS``
   centres on the descriptors of a seeded sample of the images; the centres are the visual
   words, broadcast to the workers.
3. ``bag_of_words``: each descriptor counts for its nearest word; the histogram, divided by the
   number of descriptors, is the image's ``WORDS``-d feature (shares summing to 1).

``make_orb_udf`` runs 1 and 3 in a scalar-iterator pandas UDF that returns the featurize UDF's
struct (``packed_features`` float32 little-endian, ``error_kind``, ``error_message``), so the
features/errors split, the scaler, the PCA and the Parquet outputs are the MobileNetV2 ones.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from fruits_pipeline.decoding import DecodeError, decode_image
from fruits_pipeline.errors import NoInputError
from fruits_pipeline.schema import (
    CONTENT,
    ERROR_KIND,
    ERROR_MESSAGE,
    PACKED_FEATURES,
    PATH,
    RESULT_FIELDS,
)

if TYPE_CHECKING:
    from pyspark import Accumulator, Broadcast

WORDS = 256  # the vocabulary's size: the width of an ORB feature vector
KEYPOINTS = 500  # most keypoints ORB keeps per image (OpenCV's default)
# FAST corner threshold. Fruits on a white background have smooth skins: at OpenCV's default of
# 20, some sample photos (apples, lemons) had no keypoint at all; at 5 every one had 90 or more.
FAST_THRESHOLD = 5
DESCRIPTOR_BITS = 256  # an ORB descriptor: 32 bytes
NO_KEYPOINTS = "no_keypoints"
# Vocabulary fitting: descriptors of at most SAMPLE_IMAGES images, SAMPLE_PER_IMAGE of each
# (seeded), so k-means sees every kind of image and its cost does not grow with the dataset.
SAMPLE_IMAGES = 200
SAMPLE_PER_IMAGE = 40
KMEANS_ITERATIONS = 20
_PACKED = np.dtype("<f4")


def orb_bits(data: bytes | None, image_size: int) -> np.ndarray:
    """One image's ORB descriptors as bits: ``float32 (n, 256)`` of 0.0 and 1.0, ``n >= 1``.

    Raises:
        DecodeError: the bytes do not decode (``decoding.decode_image``'s kinds), or ORB finds
            no keypoint (kind ``no_keypoints``).
    """
    import cv2

    grey = cv2.cvtColor(decode_image(data, image_size), cv2.COLOR_RGB2GRAY)
    orb = cv2.ORB_create(nfeatures=KEYPOINTS, fastThreshold=FAST_THRESHOLD)
    _, descriptors = orb.detectAndCompute(grey, None)
    if descriptors is None or not len(descriptors):
        raise DecodeError(NO_KEYPOINTS, "ORB found no keypoint in this image (blank or flat)")
    return np.unpackbits(descriptors, axis=1).astype(np.float32)


def bag_of_words(bits: np.ndarray, words: np.ndarray) -> np.ndarray:
    """``(n, 256)`` descriptor bits and ``(w, 256)`` word centres -> ``float32 (w,)``: the share
    of the descriptors whose nearest centre (Euclidean, as k-means fitted them) is each word."""
    distances = (
        np.sum(bits**2, axis=1, keepdims=True) - 2 * bits @ words.T + np.sum(words**2, axis=1)
    )
    counts = np.bincount(distances.argmin(axis=1), minlength=len(words))
    return (counts / len(bits)).astype(np.float32)


def orb_series(contents: pd.Series, words: np.ndarray, image_size: int) -> pd.DataFrame:
    """One Arrow batch of file contents -> the featurize struct's columns, row for row."""
    packed: list[bytes | None] = []
    kinds: list[str | None] = []
    messages: list[str | None] = []
    for data in contents:
        try:
            feature = bag_of_words(orb_bits(data, image_size), words)
            packed.append(feature.astype(_PACKED).tobytes())
            kinds.append(None)
            messages.append(None)
        except DecodeError as error:
            packed.append(None)
            kinds.append(error.kind)
            messages.append(error.message)
    return pd.DataFrame({PACKED_FEATURES: packed, ERROR_KIND: kinds, ERROR_MESSAGE: messages})


def make_orb_udf(
    words: Broadcast[np.ndarray], image_size: int, rows_seen: Accumulator[int] | None = None
) -> Callable[[Column], Column]:
    """The ``orb`` extractor's UDF: ``binary -> struct<packed_features, error_kind,
    error_message>``, like ``featurize.make_featurize_udf``'s.

    Args:
        words: the broadcast vocabulary, ``float64 (WORDS, 256)`` (``fit_vocabulary``).
        image_size: side the images are resized to before ORB runs (the model's, 224).
        rows_seen: an accumulator counting the rows the UDF received.
    """

    @pandas_udf(RESULT_FIELDS)  # type: ignore[call-overload]
    def extract(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        centres = words.value
        for contents in batches:
            if rows_seen is not None:
                rows_seen.add(len(contents))
            yield orb_series(contents, centres, image_size)

    return extract


def sampled_bits(image_size: int, seed: int) -> Callable[[DataFrame], DataFrame]:
    """Transform: images (``path``, ``content``) -> ``bits`` (array<float>[256]) rows: at most
    ``SAMPLE_PER_IMAGE`` seeded descriptors per image; images without one give none."""

    @pandas_udf("array<array<float>>")  # type: ignore[call-overload]
    def descriptors(contents: pd.Series, paths: pd.Series) -> pd.Series:
        rows = []
        for data, path in zip(contents, paths, strict=True):
            try:
                bits = orb_bits(data, image_size)
            except DecodeError:
                rows.append([])
                continue
            rng = np.random.default_rng([seed, zlib.crc32(str(path).encode())])
            keep = rng.permutation(len(bits))[:SAMPLE_PER_IMAGE]
            rows.append(list(bits[np.sort(keep)]))
        return pd.Series(rows)

    def transform(images: DataFrame) -> DataFrame:
        sample = images.orderBy(F.xxhash64(PATH, F.lit(seed))).limit(SAMPLE_IMAGES)
        return sample.select(F.explode(descriptors(F.col(CONTENT), F.col(PATH))).alias("bits"))

    return transform


def fit_vocabulary(images: DataFrame, image_size: int, seed: int, words: int = WORDS) -> np.ndarray:
    """The visual words: Spark ML ``KMeans`` (``words`` centres, seeded) on the descriptors of
    a seeded sample of ``images`` (``path``, ``content``). Returns ``float64 (w, 256)``:
    ``w`` is ``words``, or fewer when the sample holds fewer distinct descriptors.

    Raises:
        NoInputError: no sampled image has a keypoint, so there is nothing to cluster.
    """
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.functions import array_to_vector

    bits = images.transform(sampled_bits(image_size, seed))
    # The seeded sample comes out of one limit() task: spread it so every core clusters.
    cores = images.sparkSession.sparkContext.defaultParallelism
    vectors = bits.select(array_to_vector("bits").alias("bits_vector")).repartition(cores).persist()
    try:
        if vectors.isEmpty():
            raise NoInputError(
                f"ORB found no keypoint in the {SAMPLE_IMAGES:,} sampled images: no visual "
                "vocabulary can be fitted (use --extractor mobilenet_v2)"
            )
        # Random initial centres: k-means|| initialisation of 256 centres took longer than the
        # iterations themselves, and a vocabulary only needs centres spread over the data.
        # Spark's k-means fails inside its aggregator when asked for more centres than it has
        # points: a tiny input gets a vocabulary of one word per descriptor sampled.
        points = vectors.count()
        kmeans = KMeans(
            featuresCol="bits_vector",
            k=min(words, points),
            seed=seed,
            maxIter=KMEANS_ITERATIONS,
            initMode="random",
        )
        model = kmeans.fit(vectors)
    finally:
        vectors.unpersist()
    return np.asarray(model.clusterCenters(), dtype=np.float64)
