"""collection.py: a run with a table, three times over a changing input (a fake model on tiny
local Iceberg tables): only what is new runs the model, vanished and changed rows go, the kept
moments give the fit from scratch, and --refit decides."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from pyspark.sql import SparkSession

from fruits_pipeline.accounting import Listing
from fruits_pipeline.collection import FitPolicy, update_collection
from fruits_pipeline.drift import Refit
from fruits_pipeline.reduction import partition_moments, reduction_from_moments
from fruits_pipeline.table import CollectionTable, latest_moments
from tests.fake_chunks import IDENTITY_SCHEMA, PROVENANCE, WHEN, FakeModel, vector_of

pytestmark = pytest.mark.e2e  # whole runs of the job (the fake model)

LATER = datetime(2026, 3, 1)


def listing(spark: SparkSession, files: dict[str, int], when: dict[str, datetime]) -> Listing:
    scanned = spark.createDataFrame(
        [(path, length, when.get(path, WHEN)) for path, length in files.items()], IDENTITY_SCHEMA
    )
    return Listing(
        images=scanned,
        files=scanned.select("path"),
        scanned=scanned,
        count=len(files),
        read_partitions=1,
    )


def run(spark, table, files, when, refit, run_id, bad=frozenset()):
    current = listing(spark, files, when)
    model = FakeModel(spark, current.scanned, run_id=run_id, bad=bad)
    policy = FitPolicy(refit=refit, variance=0.9, k=None, chunk_images=4)
    return model, update_collection(spark, table, PROVENANCE, current, model, policy, run_id)


def test_three_runs_cost_what_is_new_and_fit_from_the_kept_moments(
    spark: SparkSession, collection: CollectionTable
) -> None:
    files = {f"file:/in/Training/apple/{i}.jpg": 100 + i for i in range(12)}
    bad = frozenset({"file:/in/Training/apple/5.jpg"})
    first_model, first = run(spark, collection, files, {}, Refit.AUTO, "run-1", bad)
    assert sorted(first_model.ran) == sorted(files) and first.removed == 0
    assert (first.featurized.images, first.featurized.chunks) == (12, 3)
    assert first.drift is None and first.refitted and first.rows == 11

    again_model, again = run(spark, collection, files, {}, Refit.AUTO, "run-2", bad)
    assert again_model.ran == [] and again.featurized.images == 0 and again.removed == 0
    assert again.drift is not None and again.drift.new.rows == 0 and not again.refitted
    np.testing.assert_allclose(again.reduction.components, first.reduction.components, atol=1e-9)

    changed = dict(files)
    for gone in ("file:/in/Training/apple/0.jpg", "file:/in/Training/apple/1.jpg"):
        del changed[gone]
    changed["file:/in/Training/apple/2.jpg"] = 999  # new content, new length
    changed.update({f"file:/in/Test/apple/{i}.jpg": 200 + i for i in range(3)})
    when = {"file:/in/Training/apple/2.jpg": LATER}
    third_model, third = run(spark, collection, changed, when, Refit.ALWAYS, "run-3", bad)
    assert sorted(third_model.ran) == sorted(
        ["file:/in/Training/apple/2.jpg"] + [f"file:/in/Test/apple/{i}.jpg" for i in range(3)]
    )
    assert third.removed == 3 and third.refitted and third.drift.new.rows == 4
    assert spark.table(collection.features).count() == len(changed) - 1
    current = np.vstack([vector_of(p, n) for p, n in sorted(changed.items()) if p not in bad])
    scratch = reduction_from_moments(partition_moments(current.astype(float)), 0.9)
    assert third.reduction.k == scratch.k and third.rows == len(current)
    signs = np.sign(np.sum(third.reduction.components * scratch.components, axis=0))
    np.testing.assert_allclose(third.reduction.components * signs, scratch.components, atol=1e-5)
    stored = latest_moments(spark, collection)
    assert (stored.run_id, stored.fitted, stored.k) == ("run-3", True, scratch.k)
    assert latest_moments(spark, collection, fitted=True).run_id == "run-3"


def test_a_collection_on_s3_through_s3a(spark: SparkSession, aws) -> None:
    import boto3

    from fruits_pipeline.table import parse_table
    from tests.aws import point_spark_at

    point_spark_at(spark, aws)
    table = parse_table("s3://fruits-data-eu/collections/fruits")
    files = {f"s3://fruits-data-eu/fruits-360/Training/apple/{i}.jpg": 10 + i for i in range(6)}
    model, first = run(spark, table, files, {}, Refit.AUTO, "run-1")
    assert sorted(model.ran) == sorted(files) and first.refitted and first.rows == 6
    files["s3://fruits-data-eu/fruits-360/Test/apple/new.jpg"] = 77
    model, second = run(spark, table, files, {}, Refit.AUTO, "run-2")
    assert model.ran == ["s3://fruits-data-eu/fruits-360/Test/apple/new.jpg"]
    assert second.rows == 7 and spark.table(table.features).count() == 7
    keys = [
        item["Key"]
        for page in boto3.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket="fruits-data-eu")
        for item in page.get("Contents", [])
    ]
    assert any(k.startswith("collections/fruits/features/metadata/") for k in keys)
    assert any(k.startswith("collections/fruits/moments/data/") for k in keys)
    assert all(k.startswith("collections/fruits/") for k in keys)
    for name in (table.features, table.errors, table.moments):
        spark.sql(f"DROP TABLE IF EXISTS {name}")
