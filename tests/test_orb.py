"""orb.py: ORB descriptors, the bag of visual words, the vocabulary and the UDF, on real photos."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fruits_pipeline.decoding import DecodeError
from fruits_pipeline.orb import (
    DESCRIPTOR_BITS,
    NO_KEYPOINTS,
    bag_of_words,
    fit_vocabulary,
    make_orb_udf,
    orb_bits,
    orb_series,
)
from fruits_pipeline.schema import ERROR_KIND, PACKED_FEATURES
from tests.conftest import SAMPLE

pytestmark = pytest.mark.spark

PHOTOS = sorted(SAMPLE.rglob("*.jpg"))[::20]


def blank_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (100, 100), (255, 255, 255)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_photo_gives_descriptor_bits_and_a_blank_image_an_error_of_its_own() -> None:
    bits = orb_bits(PHOTOS[0].read_bytes(), 224)
    assert bits.shape[1] == DESCRIPTOR_BITS and len(bits) >= 20
    assert set(np.unique(bits)) == {0.0, 1.0}
    with pytest.raises(DecodeError) as raised:
        orb_bits(blank_jpeg(), 224)
    assert raised.value.kind == NO_KEYPOINTS
    with pytest.raises(DecodeError) as raised:
        orb_bits(b"not an image", 224)
    assert raised.value.kind == "not_an_image"


def test_bag_of_words_counts_each_descriptor_for_its_nearest_word() -> None:
    words = np.array([[0.0] * 4, [1.0] * 4, [1.0, 1.0, 0.0, 0.0]])
    bits = np.array([[0, 0, 0, 1], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(bag_of_words(bits, words), [0.25, 0.25, 0.5])


def test_series_gives_features_or_an_error_never_a_zero_vector() -> None:
    words = np.random.default_rng(0).integers(0, 2, (16, DESCRIPTOR_BITS)).astype(float)
    contents = pd.Series([PHOTOS[0].read_bytes(), blank_jpeg(), b""])
    frame = orb_series(contents, words, 224)
    feature = np.frombuffer(frame[PACKED_FEATURES][0], dtype="<f4")
    assert feature.shape == (16,) and feature.sum() == pytest.approx(1.0)
    assert frame[ERROR_KIND].tolist() == [None, NO_KEYPOINTS, "empty_file"]
    assert frame[PACKED_FEATURES][1] is None and frame[PACKED_FEATURES][2] is None


def test_vocabulary_is_seeded_and_the_udf_uses_it(spark) -> None:
    images = spark.createDataFrame(
        [(str(path), path.read_bytes()) for path in PHOTOS] + [("blank.jpg", blank_jpeg())],
        "path string, content binary",
    )
    words = fit_vocabulary(images, 224, seed=3, words=8)
    assert words.shape == (8, DESCRIPTOR_BITS)
    np.testing.assert_allclose(fit_vocabulary(images, 224, seed=3, words=8), words)
    udf = make_orb_udf(spark.sparkContext.broadcast(words), 224)
    rows = images.select("path", udf("content").alias("result")).collect()
    assert [row.result.error_kind for row in rows] == [None] * len(PHOTOS) + [NO_KEYPOINTS]
    first = np.frombuffer(rows[0].result.packed_features, dtype="<f4")
    np.testing.assert_allclose(first, bag_of_words(orb_bits(PHOTOS[0].read_bytes(), 224), words))
