"""A collection's state in Apache Iceberg tables: what ``--table`` names.

A collection is three Iceberg tables in one Spark catalog (``CATALOG`` and a digest):

- ``features``: one row per featurized image, keyed by ``path``, with the file's identity
  (``length``, ``modificationTime``), ``label``, ``split``, ``features`` (array<float>[1280]),
  the featurizer that made it (``Provenance``: weights sha256, engine, precision, extractor,
  image size) and the ``run_id`` that committed it;
- ``errors``: likewise for every listed file that could not be used, with the reason;
- ``moments``: one row per run, the scaler + PCA moments of ``features`` at one of its
  snapshots (``StoredMoments``), so a fit never re-reads the collection and time travel to a
  snapshot finds the moments of that snapshot.

``--table`` is a folder (``file:``, a local path, or ``s3://``: a Hadoop catalog whose warehouse
is that folder, tables ``features/``, ``errors/``, ``moments/`` inside it), or
``glue:DATABASE.TABLE`` (the Glue Data Catalog, tables ``TABLE``, ``TABLE_errors``,
``TABLE_moments``, data under ``--warehouse``). Every function takes the ``SparkSession``;
``open_collection`` points it at the catalog first.

Pitfall: a Hadoop catalog commits by renaming a metadata file, which S3 does not do atomically:
on ``s3://`` one run at a time may write a collection (the job is one writer). Glue commits
are atomic.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType

from fruits_pipeline.config import FEATURE_DIM
from fruits_pipeline.errors import TableMismatchError, UsageError
from fruits_pipeline.reduction import FeatureMoments, feature_moments
from fruits_pipeline.schema import (
    ERROR_KIND,
    ERROR_MESSAGE,
    FEATURES,
    FILE_IDENTITY,
    LABEL,
    LENGTH,
    MODIFICATION_TIME,
    PATH,
    SPLIT,
)
from fruits_pipeline.storage import is_s3_uri

CATALOG = "fruits_collection"
GLUE_PREFIX = "glue:"
RUN_ID = "run_id"
SNAPSHOT = "features_snapshot"
SCATTER = "scatter"

_ICEBERG = "org.apache.iceberg"
# Row-level deletes as delete files (Iceberg format 2): removing a few rows writes a small
# file instead of rewriting every data file that holds one of them.
_TABLE_PROPERTIES = {
    "format-version": "2",
    "write.delete.mode": "merge-on-read",
    "write.update.mode": "merge-on-read",
    "write.merge.mode": "merge-on-read",
}
_PROPERTY_PREFIX = "fruits."
# The moments' 1280 x 1280 scatter is stored as the bytes of a row-major little-endian float64
# matrix (13 MB): as array<double>, 1.6 million Python floats went through Py4J each way.
_SCATTER_DTYPE = np.dtype("<f8")


@dataclass(frozen=True)
class Provenance:
    """What made a collection's features; a table holds the features of exactly one.

    Each field is a column of every row and a table property (``fruits.<field>``); a run with
    another featurizer is refused (``check_provenance``).
    """

    weights_sha256: str
    engine: str
    precision: str
    extractor: str
    image_size: int

    def properties(self) -> dict[str, str]:
        return {f"{_PROPERTY_PREFIX}{k}": str(v) for k, v in vars(self).items()}

    def columns(self) -> list[Column]:
        return [F.lit(value).alias(name) for name, value in vars(self).items()]


_FEATURIZER_DDL = (
    "weights_sha256 string, engine string, precision string, extractor string, image_size int"
)
_IDENTITY_DDL = f"{PATH} string, {LENGTH} long, {MODIFICATION_TIME} timestamp"
_KEYS_DDL = f"{_IDENTITY_DDL}, {LABEL} string, {SPLIT} string"
FEATURES_TABLE_SCHEMA = f"{_KEYS_DDL}, {FEATURES} array<float>, {_FEATURIZER_DDL}, {RUN_ID} string"
ERRORS_TABLE_SCHEMA = (
    f"{_KEYS_DDL}, {ERROR_KIND} string, {ERROR_MESSAGE} string, {_FEATURIZER_DDL}, {RUN_ID} string"
)
MOMENTS_TABLE_SCHEMA = (
    f"{SNAPSHOT} long, {RUN_ID} string, committed_at timestamp, rows long, "
    f"mean array<double>, {SCATTER} binary, fitted boolean, k int"
)


@dataclass(frozen=True)
class CollectionTable:
    """``--table`` parsed: the catalog's Spark settings and the three tables' names."""

    uri: str
    settings: dict[str, str]
    features: str
    errors: str
    moments: str


def parse_table(
    value: str, warehouse: str | None = None, endpoint: str | None = None
) -> CollectionTable:
    """``--table`` -> ``CollectionTable``.

    Args:
        value: a folder (``s3://b/collections/fruits``, ``file:/x``, or a local path, made
            absolute) or ``glue:DATABASE.TABLE``.
        warehouse: where a Glue table's data goes (``s3://bucket/prefix``); needed for Glue
            only, and only when the table does not exist yet.
        endpoint: one endpoint for Glue and S3 (a local AWS server, ``s3a.s3_endpoint()``),
            for a Glue table; None for AWS's own.

    Raises:
        UsageError: a Glue name that is not ``DATABASE.TABLE``.

    Pitfall: Spark builds a catalog once per name and ignores later changes to its settings;
    so the catalog's name is a digest of its settings (``CATALOG`` + 8 hex digits), and two
    collections in one session never share one.
    """
    if value.startswith(GLUE_PREFIX):
        database, _, name = value[len(GLUE_PREFIX) :].partition(".")
        if not database or not name or "." in name:
            raise UsageError(f"--table {value}: a Glue table is glue:DATABASE.TABLE")
        properties = {
            "catalog-impl": f"{_ICEBERG}.aws.glue.GlueCatalog",
            "io-impl": f"{_ICEBERG}.aws.s3.S3FileIO",
        }
        if warehouse:
            properties["warehouse"] = warehouse
        if endpoint:
            properties.update(
                {"glue.endpoint": endpoint, "s3.endpoint": endpoint, "s3.path-style-access": "true"}
            )
        catalog, settings = _catalog(properties)
        base = f"{catalog}.{database}.{name}"
        return CollectionTable(value, settings, base, f"{base}_errors", f"{base}_moments")
    uri = value if is_s3_uri(value) or ":" in value.split("/")[0] else _file_uri(value)
    catalog, settings = _catalog({"type": "hadoop", "warehouse": uri.rstrip("/")})
    return CollectionTable(
        uri, settings, f"{catalog}.features", f"{catalog}.errors", f"{catalog}.moments"
    )


def _catalog(properties: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A catalog's name, from its ``properties``, and its Spark settings."""
    digest = hashlib.sha256(repr(sorted(properties.items())).encode()).hexdigest()[:8]
    name = f"{CATALOG}_{digest}"
    prefix = f"spark.sql.catalog.{name}"
    settings = {prefix: f"{_ICEBERG}.spark.SparkCatalog"}
    settings.update({f"{prefix}.{key}": value for key, value in properties.items()})
    return name, settings


def _file_uri(path: str) -> str:
    return "file:" + os.path.abspath(path)


def open_collection(spark: SparkSession, table: CollectionTable, provenance: Provenance) -> None:
    """Point ``spark`` at the collection's catalog, check the featurizer, create what is missing.

    Raises:
        TableMismatchError: an existing table holds another featurizer's features; checked
            for every table before any is created, so nothing is committed.
    """
    for key, value in table.settings.items():
        spark.conf.set(key, value)
    existing = {name: spark.catalog.tableExists(name) for name in _names(table)}
    for name in (table.features, table.errors):
        if existing[name]:
            check_provenance(spark, name, provenance)
    schemas = {
        table.features: FEATURES_TABLE_SCHEMA,
        table.errors: ERRORS_TABLE_SCHEMA,
        table.moments: MOMENTS_TABLE_SCHEMA,
    }
    properties = {**_TABLE_PROPERTIES, **provenance.properties()}
    for name, schema in schemas.items():
        if not existing[name]:
            listed = ", ".join(f"'{key}'='{value}'" for key, value in properties.items())
            spark.sql(f"CREATE TABLE {name} ({schema}) USING iceberg TBLPROPERTIES ({listed})")


def _names(table: CollectionTable) -> tuple[str, str, str]:
    return table.features, table.errors, table.moments


def check_provenance(spark: SparkSession, name: str, provenance: Provenance) -> None:
    """Refuse table ``name`` unless its ``fruits.*`` properties are ``provenance``'s.

    Raises:
        TableMismatchError: the message names each differing property, both values.
    """
    held = {
        row["key"]: row["value"]
        for row in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()
        if row["key"].startswith(_PROPERTY_PREFIX)
    }
    wanted = provenance.properties()
    differences = [
        f"{key[len(_PROPERTY_PREFIX) :]}: table {held.get(key)}, this run {value}"
        for key, value in wanted.items()
        if held.get(key) != value
    ]
    if differences:
        raise TableMismatchError(
            f"{name} holds features made by another featurizer ({'; '.join(differences)}); "
            "use another --table, or run with the table's featurizer"
        )


@dataclass(frozen=True)
class Changes:
    """How the listing differs from the collection (lazy ``path`` frames).

    ``to_featurize``: listed files with no row of the same identity (new or changed);
    ``stale``: the collection's rows whose file is gone or changed, to delete.
    """

    to_featurize: DataFrame
    stale: DataFrame


def listed_identities(files: DataFrame, scanned: DataFrame) -> DataFrame:
    """Every listed file's ``(path, length, modificationTime)``: ``files`` (``path``) with the
    identity ``scanned`` found for it, null for files the scan skips (zero-byte, hidden)."""
    return files.join(scanned, PATH, "left").select(*FILE_IDENTITY)


def held_identities(spark: SparkSession, table: CollectionTable) -> DataFrame:
    """The identities of every file the collection has a row for, features or errors."""
    return (
        spark.table(table.features)
        .select(*FILE_IDENTITY)
        .unionByName(spark.table(table.errors).select(*FILE_IDENTITY))
    )


def plan_changes(listed: DataFrame, held: DataFrame) -> Changes:
    """Compare identities (``listed_identities`` against ``held_identities``).

    Null lengths and times match each other (null-safe): a zero-byte file stays one row of
    ``errors`` across runs instead of being retried every time.
    """

    def same(left: DataFrame, right: DataFrame) -> Column:
        matches = [left[column].eqNullSafe(right[column]) for column in FILE_IDENTITY]
        return matches[0] & matches[1] & matches[2]

    return Changes(
        to_featurize=listed.join(held, same(listed, held), "left_anti").select(PATH),
        stale=held.join(listed, same(held, listed), "left_anti").select(PATH).distinct(),
    )


def delete_paths(spark: SparkSession, name: str, paths: DataFrame) -> None:
    """One Iceberg commit deleting the rows of ``name`` whose ``path`` is in ``paths``."""
    view = f"fruits_delete_{uuid.uuid4().hex}"
    paths.select(PATH).createOrReplaceTempView(view)
    try:
        spark.sql(f"DELETE FROM {name} WHERE {PATH} IN (SELECT {PATH} FROM {view})")
    finally:
        spark.catalog.dropTempView(view)


def with_provenance(
    identities: DataFrame, provenance: Provenance, run_id: str
) -> Callable[[DataFrame], DataFrame]:
    """Transform: keyed rows (features' or errors') -> the table's rows: the file's identity
    joined on from ``identities`` (``listed_identities``), the featurizer and ``run_id``."""

    def transform(df: DataFrame) -> DataFrame:
        return df.join(identities, PATH, "left").select(
            *FILE_IDENTITY,
            *[column for column in df.columns if column not in FILE_IDENTITY],
            *provenance.columns(),
            F.lit(run_id).alias(RUN_ID),
        )

    return transform


def append(df: DataFrame, name: str) -> None:
    """One Iceberg commit appending ``df`` (columns in the table's order, by name) to ``name``."""
    columns = df.sparkSession.table(name).columns
    df.select(*columns).writeTo(name).append()


def current_snapshot(spark: SparkSession, name: str) -> int | None:
    """The snapshot id of ``name``'s main branch, None before its first commit."""
    rows = spark.sql(f"SELECT snapshot_id FROM {name}.refs WHERE name = 'main'").collect()
    return int(rows[0]["snapshot_id"]) if rows else None


def rows_at(spark: SparkSession, name: str, snapshot: int | None) -> DataFrame:
    """``name`` as of ``snapshot`` (time travel); empty when ``snapshot`` is None."""
    if snapshot is None:
        return spark.table(name).limit(0)
    return spark.sql(f"SELECT * FROM {name} VERSION AS OF {snapshot}")


@dataclass(frozen=True)
class StoredMoments:
    """A row of the ``moments`` table: the ``moments`` of ``features`` as of ``snapshot``.

    ``fitted``: the run that saved them fitted scaler + PCA on them, keeping ``k`` components;
    the collection's current model is the latest fitted row's ``reduction_from_moments``.
    """

    snapshot: int | None
    run_id: str
    moments: FeatureMoments
    fitted: bool
    k: int | None


def save_moments(spark: SparkSession, table: CollectionTable, stored: StoredMoments) -> None:
    """Append ``stored`` to the collection's ``moments`` table (one commit).

    The 13 MB scatter reaches the writing task as a broadcast: held in the row, it would be
    serialized into the task itself (Spark warns of any task above 1 MB, on every run).
    """
    moments = stored.moments
    scatter = spark.sparkContext.broadcast(moments.scatter.astype(_SCATTER_DTYPE).tobytes())
    row = (
        stored.snapshot,
        stored.run_id,
        datetime.now(UTC),
        moments.rows,
        moments.mean.tolist(),
        stored.fitted,
        stored.k,
    )
    frame = spark.createDataFrame(
        [row], MOMENTS_TABLE_SCHEMA.replace(f", {SCATTER} binary", ""), verifySchema=False
    ).withColumn(SCATTER, F.udf(lambda: scatter.value, BinaryType())())
    try:
        append(frame, table.moments)
    finally:
        scatter.destroy()


def latest_moments(
    spark: SparkSession, table: CollectionTable, fitted: bool = False
) -> StoredMoments | None:
    """The latest saved moments (``fitted``: the latest a fit used), None when there are none.

    Finds the row from the small columns first, then reads only its 13 MB of scatter.
    """
    rows = spark.table(table.moments)
    if fitted:
        rows = rows.where(F.col("fitted"))
    latest = rows.select(RUN_ID, "committed_at").orderBy(F.col("committed_at").desc()).first()
    if latest is None:
        return None
    row = rows.where(F.col(RUN_ID) == latest[RUN_ID]).orderBy(F.col("committed_at").desc()).first()
    dim = len(row["mean"])
    return StoredMoments(
        snapshot=row[SNAPSHOT],
        run_id=row[RUN_ID],
        moments=FeatureMoments(
            int(row["rows"]),
            np.asarray(row["mean"]),
            np.frombuffer(row[SCATTER], dtype=_SCATTER_DTYPE).reshape(dim, dim).copy(),
        ),
        fitted=bool(row["fitted"]),
        k=row["k"],
    )


@dataclass(frozen=True)
class MomentsUpdate:
    """The collection's moments brought from snapshot ``previous`` of ``features`` (None: from
    no row) to ``snapshot``: ``current`` = ``before`` without ``removed``, with ``added``."""

    snapshot: int | None
    previous: int | None
    current: FeatureMoments
    added: FeatureMoments
    removed: FeatureMoments


def update_moments(
    spark: SparkSession, table: CollectionTable, stored: StoredMoments | None
) -> MomentsUpdate:
    """The moments of ``features`` now, from ``stored`` (those of an earlier snapshot).

    Reads the features of the rows added or removed since ``stored.snapshot`` only
    (``added_since``, ``removed_since``), so whatever happened in between (several runs, a run
    killed between two commits) is accounted for, at a cost that follows what changed.

    Pitfall: table maintenance (Iceberg's ``expire_snapshots``, Glue's snapshot retention)
    may have expired ``stored.snapshot``; the moments are then summed again from every row
    (``previous`` None), one read of the whole collection, as its first fit did.
    """
    snapshot = current_snapshot(spark, table.features)
    if stored is not None and not has_snapshot(spark, table.features, stored.snapshot):
        stored = None
    previous = stored.snapshot if stored else None
    added = feature_moments(added_since(spark, table.features, snapshot, previous))
    gone = removed_since(spark, table.features, snapshot, previous)
    removed = feature_moments(gone) if gone is not None else FeatureMoments.empty(FEATURE_DIM)
    start = stored.moments if stored else FeatureMoments.empty(FEATURE_DIM)
    return MomentsUpdate(snapshot, previous, start.without(removed).combined(added), added, removed)


def has_snapshot(spark: SparkSession, name: str, snapshot: int | None) -> bool:
    """Whether ``name`` still holds ``snapshot`` (None: the empty table, always there)."""
    if snapshot is None:
        return True
    found = spark.sql(f"SELECT 1 FROM {name}.snapshots WHERE snapshot_id = {int(snapshot)}")
    return bool(found.take(1))


def run_ids_at(spark: SparkSession, name: str, snapshot: int | None) -> set[str]:
    """The ``run_id`` of every row of ``name`` as of ``snapshot`` (reads that column only)."""
    rows = rows_at(spark, name, snapshot).select(RUN_ID).distinct().collect()
    return {row[RUN_ID] for row in rows}


def added_since(
    spark: SparkSession, name: str, snapshot: int | None, previous: int | None
) -> DataFrame:
    """The rows of ``name`` at ``snapshot`` that were not there at ``previous``.

    A run commits its rows (each carrying its ``run_id``) before it saves the moments whose
    snapshot a later run starts from, so the rows added since are those of the runs absent at
    ``previous``. Filtering on those ids lets Iceberg skip every older run's data file by its
    column statistics: the features read are the new rows', however large the collection.
    """
    new = sorted(run_ids_at(spark, name, snapshot) - run_ids_at(spark, name, previous))
    return rows_at(spark, name, snapshot).where(F.col(RUN_ID).isin(new))


def removed_since(
    spark: SparkSession, name: str, snapshot: int | None, previous: int | None
) -> DataFrame | None:
    """The rows of ``name`` at ``previous`` that are gone at ``snapshot`` (deleted: their file
    vanished or changed), None when there are none. Compares the two snapshots' keys
    (``path``, ``run_id``) first; features are read only from the removed rows' runs."""
    keys = [PATH, RUN_ID]
    gone = (
        rows_at(spark, name, previous)
        .select(*keys)
        .join(rows_at(spark, name, snapshot).select(*keys), keys, "left_anti")
        .localCheckpoint(eager=True)
    )
    runs = sorted({row[RUN_ID] for row in gone.select(RUN_ID).distinct().collect()})
    if not runs:
        return None
    before = rows_at(spark, name, previous).where(F.col(RUN_ID).isin(runs))
    return before.join(F.broadcast(gone), keys, "left_semi")
