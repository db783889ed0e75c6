"""The model pass of a run with a table, committed in chunks, so that a run resumes.

The images to featurize (``table.plan_changes``) are split into chunks of at most
``chunk_images``; each chunk is read, featurized and appended to the collection's ``features``
and ``errors`` tables before the next one starts. A run killed or failed at any point, run
again, finds the committed images in the table (same identity) and runs the model on none of
them: the work lost is at most the chunk in flight.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructField, StructType

from fruits_pipeline.schema import PATH
from fruits_pipeline.table import append

CHUNK = "chunk"

# paths (a ``path`` frame) -> (features rows, errors rows), each shaped as its table's rows
# (``table.with_provenance`` applied): what one chunk commits.
FeaturizeChunk = Callable[[DataFrame], tuple[DataFrame, DataFrame]]


@dataclass(frozen=True)
class ChunkedPass:
    """What ``featurize_in_chunks`` committed: ``chunks`` commits of ``features`` (and as many
    of ``errors``), for ``images`` images in all."""

    images: int
    chunks: int


def chunk_count(images: int, chunk_images: int) -> int:
    """How many chunks of at most ``chunk_images`` (> 0) hold ``images`` images (0 for none)."""
    return math.ceil(images / chunk_images)


def with_chunk(chunk_images: int) -> Callable[[DataFrame], DataFrame]:
    """Transform: adds ``chunk``, the row's place in ``path`` order divided by ``chunk_images``:
    chunks ``0..chunk_count - 1`` of exactly ``chunk_images`` rows, the last one of fewer.

    Pitfall: a hash of the path would need no sort, but its chunks vary in size, so a chunk
    could exceed ``chunk_images`` or be empty (an empty commit, nothing resumable gained).
    """

    def transform(df: DataFrame) -> DataFrame:
        ordered = df.orderBy(PATH)
        schema = StructType([*ordered.schema.fields, StructField(CHUNK, LongType(), False)])
        indexed = ordered.rdd.zipWithIndex().map(lambda row: (*row[0], row[1] // chunk_images))
        return df.sparkSession.createDataFrame(indexed, schema)

    return transform


def featurize_in_chunks(
    paths: DataFrame,
    chunk_images: int,
    featurize: FeaturizeChunk,
    features_table: str,
    errors_table: str,
) -> ChunkedPass:
    """Featurize the files ``paths`` names, committing each chunk to the two tables.

    Args:
        paths: a ``path`` frame (``table.Changes.to_featurize``); pinned once here
            (``localCheckpoint``), so every chunk splits the same list even as the table
            the list came from grows with each commit.
        chunk_images: at most this many images per chunk (> 0): a few minutes of model time.
        featurize: one chunk's ``path`` frame -> its (features, errors) rows.
        features_table, errors_table: the collection's tables (``table.CollectionTable``).

    Errors are committed first: a run killed between a chunk's two commits retries only that
    chunk's featurized images (their errors stay committed), never re-runs the whole chunk's
    bad files. Chunks follow the paths' order (``with_chunk``).
    """
    keyed = paths.select(PATH).transform(with_chunk(chunk_images)).localCheckpoint(eager=True)
    images = keyed.count()
    chunks = chunk_count(images, chunk_images)
    for chunk in range(chunks):
        features, errors = featurize(keyed.where(F.col(CHUNK) == chunk).select(PATH))
        append(errors, errors_table)
        append(features, features_table)
    return ChunkedPass(images=images, chunks=chunks)
