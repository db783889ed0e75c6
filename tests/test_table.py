"""table.py on tiny local Iceberg tables: create and reopen a collection, refuse another
featurizer with nothing committed, compare a listing with the table, delete and append, keep the
moments with the table's snapshots."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import _parse_datatype_string

from fruits_pipeline.errors import ExitCode, TableMismatchError, UsageError
from fruits_pipeline.reduction import partition_moments
from fruits_pipeline.table import (
    CATALOG,
    ERRORS_TABLE_SCHEMA,
    FEATURES_TABLE_SCHEMA,
    CollectionTable,
    Provenance,
    StoredMoments,
    append,
    current_snapshot,
    delete_paths,
    held_identities,
    latest_moments,
    listed_identities,
    open_collection,
    parse_table,
    plan_changes,
    save_moments,
    update_moments,
    with_provenance,
)
from tests.fake_chunks import PROVENANCE

pytestmark = pytest.mark.spark

T0 = datetime(2026, 1, 1, 12, 0, 0)
T1 = datetime(2026, 2, 1, 12, 0, 0)


def vectors(seed: int, rows: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 2, size=(rows, 1280)).astype(np.float32)


def feature_rows(spark: SparkSession, paths: list[str], matrix: np.ndarray) -> DataFrame:
    rows = [
        (path, "apple", "Training", row.tolist()) for path, row in zip(paths, matrix, strict=True)
    ]
    return spark.createDataFrame(
        rows, "path string, label string, split string, features array<float>"
    )


def identities(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, "path string, length long, modificationTime timestamp")


def catalog_of(table: CollectionTable) -> str:
    return table.features.split(".")[0]


def test_parse_table_folders_and_glue(tmp_path: Path) -> None:
    local = parse_table(str(tmp_path / "c"))
    prefix = f"spark.sql.catalog.{catalog_of(local)}"
    assert catalog_of(local).startswith(CATALOG)
    assert local.settings[f"{prefix}.warehouse"] == f"file:{tmp_path}/c"
    assert local.settings[f"{prefix}.type"] == "hadoop"
    assert local.settings[prefix] == "org.apache.iceberg.spark.SparkCatalog"
    assert local.features.split(".")[1:] == ["features"]
    assert local.errors.split(".")[1:] == ["errors"]
    other = parse_table(str(tmp_path / "d"))
    assert catalog_of(other) != catalog_of(local)  # Spark never reconfigures a named catalog
    assert catalog_of(parse_table(f"file:{tmp_path}/c")) == catalog_of(local)
    s3 = parse_table("s3://fruits-data-eu/collections/fruits/")
    warehouse = s3.settings[f"spark.sql.catalog.{catalog_of(s3)}.warehouse"]
    assert warehouse == "s3://fruits-data-eu/collections/fruits"
    glue = parse_table("glue:fruits.photos", warehouse="s3://fruits-data-eu/warehouse")
    prefix = f"spark.sql.catalog.{catalog_of(glue)}"
    assert glue.features == f"{catalog_of(glue)}.fruits.photos"
    assert glue.errors == f"{catalog_of(glue)}.fruits.photos_errors"
    assert glue.settings[f"{prefix}.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
    assert glue.settings[f"{prefix}.warehouse"] == "s3://fruits-data-eu/warehouse"
    assert f"{prefix}.glue.endpoint" not in glue.settings
    local_aws = parse_table("glue:fruits.photos", endpoint="http://127.0.0.1:5000")
    assert local_aws.settings[f"spark.sql.catalog.{catalog_of(local_aws)}.s3.endpoint"] == (
        "http://127.0.0.1:5000"
    )
    with pytest.raises(UsageError, match=r"glue:DATABASE\.TABLE"):
        parse_table("glue:photos")


def test_a_new_collection_has_the_schemas_and_the_featurizer(
    spark: SparkSession, collection: CollectionTable
) -> None:
    for name, ddl in (
        (collection.features, FEATURES_TABLE_SCHEMA),
        (collection.errors, ERRORS_TABLE_SCHEMA),
    ):
        wanted = _parse_datatype_string(ddl)
        assert [(f.name, f.dataType) for f in spark.table(name).schema] == [
            (f.name, f.dataType) for f in wanted
        ]
    properties = dict(
        (row["key"], row["value"])
        for row in spark.sql(f"SHOW TBLPROPERTIES {collection.features}").collect()
    )
    assert properties["fruits.weights_sha256"] == "ab" * 32
    assert properties["fruits.image_size"] == "224"
    assert properties["format-version"] == "2"
    assert current_snapshot(spark, collection.features) is None
    open_collection(spark, collection, PROVENANCE)  # reopening the same featurizer is fine


def test_another_featurizer_is_refused_and_nothing_is_committed(
    spark: SparkSession, collection: CollectionTable
) -> None:
    append(
        feature_rows(spark, ["file:/p/a.jpg"], vectors(0, 1)).transform(
            with_provenance(identities(spark, [("file:/p/a.jpg", 5, T0)]), PROVENANCE, "run-1")
        ),
        collection.features,
    )
    before = current_snapshot(spark, collection.features)
    other = Provenance("cd" * 32, "openvino", "int8", "mobilenet_v2", 224)
    with pytest.raises(TableMismatchError) as refused:
        open_collection(spark, collection, other)
    assert "weights_sha256: table abab" in str(refused.value)
    assert "precision: table fp32, this run int8" in str(refused.value)
    assert refused.value.exit_code == ExitCode.TABLE_MISMATCH == 9
    assert current_snapshot(spark, collection.features) == before
    assert spark.sql(f"SELECT * FROM {collection.features}.snapshots").count() == 1


def test_plan_changes_finds_new_changed_vanished_and_keeps_unscanned_files(
    spark: SparkSession,
) -> None:
    held = identities(
        spark,
        [
            ("file:/p/same.jpg", 5, T0),
            ("file:/p/changed.jpg", 5, T0),
            ("file:/p/gone.jpg", 5, T0),
            ("file:/p/empty.jpg", None, None),
        ],
    )
    files = spark.createDataFrame(
        [
            ("file:/p/same.jpg",),
            ("file:/p/changed.jpg",),
            ("file:/p/new.jpg",),
            ("file:/p/empty.jpg",),
        ],
        "path string",
    )
    scanned = identities(
        spark,
        [("file:/p/same.jpg", 5, T0), ("file:/p/changed.jpg", 6, T1), ("file:/p/new.jpg", 7, T1)],
    )
    listed = listed_identities(files, scanned)
    assert listed.where("path = 'file:/p/empty.jpg'").first()["length"] is None
    changes = plan_changes(listed, held)
    assert sorted(r.path for r in changes.to_featurize.collect()) == [
        "file:/p/changed.jpg",
        "file:/p/new.jpg",
    ]
    assert sorted(r.path for r in changes.stale.collect()) == [
        "file:/p/changed.jpg",
        "file:/p/gone.jpg",
    ]


def test_delete_and_append_are_commits_and_held_identities_see_both_tables(
    spark: SparkSession, collection: CollectionTable
) -> None:
    ids = identities(
        spark, [("file:/p/a.jpg", 5, T0), ("file:/p/b.jpg", 6, T0), ("file:/p/bad.jpg", 3, T0)]
    )
    append(
        feature_rows(spark, ["file:/p/a.jpg", "file:/p/b.jpg"], vectors(1, 2)).transform(
            with_provenance(ids, PROVENANCE, "run-1")
        ),
        collection.features,
    )
    errors = spark.createDataFrame(
        [("file:/p/bad.jpg", "apple", "Training", "truncated", "cut short")],
        "path string, label string, split string, error_kind string, error_message string",
    )
    append(errors.transform(with_provenance(ids, PROVENANCE, "run-1")), collection.errors)
    row = spark.table(collection.features).where("path = 'file:/p/b.jpg'").first()
    assert (row["length"], row["modificationTime"], row["run_id"]) == (6, T0, "run-1")
    assert (row["engine"], row["precision"], row["image_size"]) == ("openvino", "fp32", 224)
    assert sorted(r.path for r in held_identities(spark, collection).collect()) == [
        "file:/p/a.jpg",
        "file:/p/b.jpg",
        "file:/p/bad.jpg",
    ]
    first = current_snapshot(spark, collection.features)
    delete_paths(
        spark, collection.features, spark.createDataFrame([("file:/p/a.jpg",)], "path string")
    )
    assert [r.path for r in spark.table(collection.features).collect()] == ["file:/p/b.jpg"]
    assert current_snapshot(spark, collection.features) != first
    assert spark.sql(f"SELECT * FROM {collection.features} VERSION AS OF {first}").count() == 2


def test_moments_follow_the_table_across_snapshots(
    spark: SparkSession, collection: CollectionTable
) -> None:
    assert latest_moments(spark, collection) is None
    first = vectors(2, 6)
    paths = [f"file:/p/{i}.jpg" for i in range(6)]
    ids = identities(spark, [(path, 5, T0) for path in paths])
    append(
        feature_rows(spark, paths, first).transform(with_provenance(ids, PROVENANCE, "run-1")),
        collection.features,
    )
    update = update_moments(spark, collection, None)
    assert update.added.rows == 6 and update.removed.rows == 0
    np.testing.assert_allclose(
        update.current.scatter, partition_moments(first.astype(float)).scatter, atol=1e-6
    )
    save_moments(
        spark, collection, StoredMoments(update.snapshot, "run-1", update.current, True, 3)
    )
    # A later run: two files removed, one changed (new features), two new.
    delete_paths(
        spark, collection.features, spark.createDataFrame([(p,) for p in paths[:3]], "path string")
    )
    second = vectors(3, 3)
    new_paths = [paths[2], "file:/p/new1.jpg", "file:/p/new2.jpg"]
    new_ids = identities(spark, [(path, 9, T1) for path in new_paths])
    append(
        feature_rows(spark, new_paths, second).transform(
            with_provenance(new_ids, PROVENANCE, "run-2")
        ),
        collection.features,
    )
    stored = latest_moments(spark, collection)
    assert (stored.snapshot, stored.run_id, stored.fitted, stored.k) == (
        update.snapshot,
        "run-1",
        True,
        3,
    )
    later = update_moments(spark, collection, stored)
    assert (later.added.rows, later.removed.rows, later.current.rows) == (3, 3, 6)
    scratch = partition_moments(np.vstack([first[3:], second]).astype(float))
    np.testing.assert_allclose(later.current.mean, scratch.mean, atol=1e-9)
    np.testing.assert_allclose(later.current.scatter, scratch.scatter, atol=1e-6)
    save_moments(
        spark, collection, StoredMoments(later.snapshot, "run-2", later.current, False, None)
    )
    assert latest_moments(spark, collection).run_id == "run-2"
    assert latest_moments(spark, collection, fitted=True).run_id == "run-1"


def expire(spark: SparkSession, name: str, snapshot: int) -> None:
    """Iceberg's snapshot expiry, as table maintenance (``expire_snapshots``, Glue's retention)
    runs it on a collection between two runs."""
    table = spark._jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(
        spark._jsparkSession, name
    )
    table.expireSnapshots().expireSnapshotId(snapshot).commit()


def test_moments_from_an_expired_snapshot_are_summed_again_from_every_row(
    spark: SparkSession, collection: CollectionTable
) -> None:
    paths = [f"file:/p/{i}.jpg" for i in range(4)]
    first, second = vectors(4, 4), vectors(5, 2)
    ids = identities(spark, [(path, 5, T0) for path in paths])
    rows = feature_rows(spark, paths, first).transform(with_provenance(ids, PROVENANCE, "run-1"))
    append(rows, collection.features)
    update = update_moments(spark, collection, None)
    assert update.previous is None
    stored = StoredMoments(update.snapshot, "run-1", update.current, True, 2)
    new_paths = ["file:/p/new1.jpg", "file:/p/new2.jpg"]
    new_ids = identities(spark, [(path, 9, T1) for path in new_paths])
    append(
        feature_rows(spark, new_paths, second).transform(
            with_provenance(new_ids, PROVENANCE, "run-2")
        ),
        collection.features,
    )
    assert update_moments(spark, collection, stored).previous == stored.snapshot
    expire(spark, collection.features, stored.snapshot)
    later = update_moments(spark, collection, stored)
    assert later.previous is None and later.added.rows == later.current.rows == 6
    scratch = partition_moments(np.vstack([first, second]).astype(float))
    np.testing.assert_allclose(later.current.mean, scratch.mean, atol=1e-9)
    np.testing.assert_allclose(later.current.scatter, scratch.scatter, atol=1e-6)


@pytest.fixture
def jvm_credentials(spark: SparkSession, aws) -> None:
    """The local AWS's credentials and region for the JVM's AWS SDK v2 (Iceberg's Glue and S3
    clients): its environment was fixed when the test session's JVM started, but the SDK's
    default chain reads Java system properties first."""
    system = spark.sparkContext._jvm.java.lang.System
    values = {
        "aws.accessKeyId": "testing",
        "aws.secretAccessKey": "testing",
        "aws.region": "eu-west-1",
    }
    for key, value in values.items():
        system.setProperty(key, value)
    yield
    for key in values:
        system.clearProperty(key)


def test_a_glue_collection_on_the_local_aws(spark: SparkSession, aws, jvm_credentials) -> None:
    import boto3

    boto3.client("glue").create_database(DatabaseInput={"Name": "fruits"})
    table = parse_table(
        "glue:fruits.photos", warehouse="s3://fruits-data-eu/warehouse", endpoint=aws.endpoint
    )
    open_collection(spark, table, PROVENANCE)
    ids = identities(spark, [("s3://fruits-data-eu/in/a.jpg", 5, T0)])
    rows = feature_rows(spark, ["s3://fruits-data-eu/in/a.jpg"], vectors(4, 1))
    append(rows.transform(with_provenance(ids, PROVENANCE, "run-1")), table.features)
    first = current_snapshot(spark, table.features)
    delete_paths(spark, table.features, ids.select("path"))
    assert spark.table(table.features).count() == 0
    assert spark.sql(f"SELECT * FROM {table.features} VERSION AS OF {first}").count() == 1
    open_collection(spark, table, PROVENANCE)
    with pytest.raises(TableMismatchError):
        open_collection(
            spark, table, Provenance("cd" * 32, "openvino", "fp32", "mobilenet_v2", 224)
        )
    glue = {
        t["Name"]: t for t in boto3.client("glue").get_tables(DatabaseName="fruits")["TableList"]
    }
    assert sorted(glue) == ["photos", "photos_errors", "photos_moments"]
    assert glue["photos"]["Parameters"]["table_type"] == "ICEBERG"
    assert glue["photos"]["Parameters"]["metadata_location"].startswith(
        "s3://fruits-data-eu/warehouse/fruits.db/photos/metadata/"
    )
    calls = {request["target"] for request in aws.requests if request["target"]}
    assert {
        "AWSGlue.GetDatabase",
        "AWSGlue.CreateTable",
        "AWSGlue.GetTable",
        "AWSGlue.UpdateTable",
    } <= calls
