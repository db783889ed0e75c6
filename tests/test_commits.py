"""commits.py: the model pass committed in chunks, and a failed pass resumed without running the
model again on any committed image (a fake model on tiny local Iceberg tables)."""

from __future__ import annotations

import pytest
from pyspark.sql import DataFrame, SparkSession

from fruits_pipeline.commits import chunk_count, featurize_in_chunks, with_chunk
from fruits_pipeline.table import (
    CollectionTable,
    held_identities,
    listed_identities,
    plan_changes,
)
from tests.fake_chunks import IDENTITY_SCHEMA, WHEN, FakeModel

pytestmark = pytest.mark.spark

PATHS = [f"file:/in/Training/apple/{i}.jpg" for i in range(10)]
BAD = frozenset({PATHS[3], PATHS[7]})  # what the fake model cannot decode


def listed(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([(p, 5, WHEN) for p in PATHS], IDENTITY_SCHEMA)


def to_featurize(spark: SparkSession, table: CollectionTable) -> DataFrame:
    identities = listed(spark)
    files = identities.select("path")
    return plan_changes(
        listed_identities(files, identities), held_identities(spark, table)
    ).to_featurize


def test_chunks_cover_every_path_once_none_empty_none_too_big(spark: SparkSession) -> None:
    assert [chunk_count(n, 3) for n in (0, 1, 3, 4, 10)] == [0, 1, 1, 2, 4]
    rows = listed(spark).transform(with_chunk(3)).collect()
    sizes = [sum(1 for row in rows if row.chunk == chunk) for chunk in range(4)]
    assert sizes == [3, 3, 3, 1] and sorted(row.path for row in rows) == sorted(PATHS)
    again = {row.path: row.chunk for row in listed(spark).transform(with_chunk(3)).collect()}
    assert again == {row.path: row.chunk for row in rows}  # the same list, the same chunks


def test_each_chunk_is_committed_and_a_failed_pass_resumes_without_rerunning(
    spark: SparkSession, collection: CollectionTable
) -> None:
    first = FakeModel(spark, listed(spark), bad=BAD, fail_at=1)
    with pytest.raises(RuntimeError, match="driver was lost"):
        featurize_in_chunks(
            to_featurize(spark, collection), 3, first, collection.features, collection.errors
        )
    committed = {row.path for row in held_identities(spark, collection).collect()}
    assert committed == set(first.ran) and 0 < len(committed) < len(PATHS)
    assert spark.sql(f"SELECT * FROM {collection.features}.snapshots").count() == 1

    second = FakeModel(spark, listed(spark), bad=BAD)
    done = featurize_in_chunks(
        to_featurize(spark, collection), 3, second, collection.features, collection.errors
    )
    assert not set(second.ran) & committed  # the model never ran again on a committed image
    assert sorted(first.ran + second.ran) == sorted(PATHS)
    assert done.images == len(PATHS) - len(committed)
    assert done.chunks == chunk_count(done.images, 3)
    features = {row.path for row in spark.table(collection.features).collect()}
    errors = {row.path for row in spark.table(collection.errors).collect()}
    assert features == set(PATHS) - BAD and errors == BAD
    assert spark.table(collection.features).count() == len(PATHS) - len(BAD)
    nothing = featurize_in_chunks(
        to_featurize(spark, collection),
        3,
        FakeModel(spark, listed(spark)),
        collection.features,
        collection.errors,
    )
    assert (nothing.images, nothing.chunks) == (0, 0)
