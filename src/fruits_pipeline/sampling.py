"""A seeded sample of the run's own images, decoded on the driver as the featurize stage does.

``--precision int8`` calibrates the quantization on such a sample and checks the result on
another part of it (``quantize.py``, ``gate.py``). The sample is chosen by a seeded hash of each
path, so the same input and seed give the same images on every run and every cluster, and only
the chosen files' bytes are read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits_pipeline.decoding import DecodeError, decode_image
from fruits_pipeline.reading import read_image_files, with_label
from fruits_pipeline.schema import CONTENT, LABEL, PATH

_ORDER = "sample_order"


@dataclass(frozen=True)
class DecodedSample:
    """Images in the sample's seeded order: ``pixels`` ``uint8 (n, s, s, 3)`` (as
    ``decoding.decode_image`` gives them), with each one's ``label`` and ``path``."""

    pixels: np.ndarray
    labels: tuple[str, ...]
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, start: int, stop: int | None = None) -> DecodedSample:
        """Images ``start:stop`` of the sample."""
        part = slice(start, stop)
        return DecodedSample(self.pixels[part], self.labels[part], self.paths[part])


def seeded_paths(images: DataFrame, count: int, seed: int) -> list[str]:
    """``count`` paths of ``images`` (or all, if fewer) in a seeded pseudo-random order: those
    with the smallest ``xxhash64(path, seed)``. Reads no file's bytes."""
    ordered = images.select(PATH, F.xxhash64(PATH, F.lit(seed)).alias(_ORDER))
    rows = ordered.orderBy(_ORDER, PATH).limit(count).collect()
    return [row[PATH] for row in rows]


def decoded_sample(images: DataFrame, count: int, seed: int, image_size: int) -> DecodedSample:
    """The first ``count`` images of ``seeded_paths``, read and decoded on the driver.

    Args:
        images: the run's images (a ``path`` column as the ``binaryFile`` scan writes it).
        count: most images to sample.
        seed: the sample's seed (``--seed``).
        image_size: decode side in pixels, the featurize stage's.

    Returns:
        The images that decode, in the seeded order; those that do not are left out (the
        featurize stage reports them), so the sample may hold fewer than ``count``.

    Pitfall: only the chosen files are read, one partition at a time (``toLocalIterator``), so
    the driver never holds more than one read partition of raw bytes.
    """
    paths = seeded_paths(images, count, seed)
    chosen = images.sparkSession.createDataFrame([(path,) for path in paths], f"{PATH} string")
    files = read_image_files(chosen).transform(with_label).select(PATH, LABEL, CONTENT)
    decoded: dict[str, tuple[np.ndarray, str]] = {}
    for row in files.toLocalIterator():
        try:
            decoded[row[PATH]] = (decode_image(row[CONTENT], image_size), row[LABEL])
        except DecodeError:
            continue
    kept = [path for path in paths if path in decoded]
    empty = np.zeros((0, image_size, image_size, 3), np.uint8)
    return DecodedSample(
        pixels=np.stack([decoded[path][0] for path in kept]) if kept else empty,
        labels=tuple(decoded[path][1] for path in kept),
        paths=tuple(kept),
    )
