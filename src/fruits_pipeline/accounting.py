"""Accounting: every listed file ends up in ``features/`` or ``errors/``, and the counts prove it.

The listing comes from Spark's file index (``DataFrame.inputFiles``), not from the scan: Spark's
file scan silently drops zero-byte files, so only the listing is a complete account of the
input. Both stay in Spark: the listing becomes a one-column DataFrame inside the JVM
(``jvm.input_files``), what the scan skipped is an anti-join, and counts are a ``groupBy``.
The driver's Python holds per-label counts and the files the scan skipped (zero-byte uploads:
rare), never one object per image, so its memory does not grow with the input
(``benchmarks/accounting.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from fruits_pipeline.errors import NoInputError
from fruits_pipeline.jvm import glob_files, input_files, normalized_path
from fruits_pipeline.manifest import Counts, LabelCounts
from fruits_pipeline.reading import read_images, to_images, with_label, with_split
from fruits_pipeline.schema import (
    ERROR_KIND,
    FILE_IDENTITY,
    KEY_COLUMNS,
    LABEL,
    PATH,
    RESULT,
    RESULT_FIELDS,
)

EMPTY_FILE = "empty_file"
UNREADABLE = "unreadable"
IGNORED_NAME = "ignored_name"
# reading.IMAGE_GLOB as a regular expression, for the files listed outside Spark.
IMAGE_NAME = re.compile(r".*\.jpe?g", re.IGNORECASE)


@dataclass(frozen=True)
class Listing:
    """The input, listed: ``images`` to featurize (``path, label, split, content``: lazy, no
    byte read yet), ``files`` every matching file's ``path`` (as the scan writes paths),
    ``count`` how many, ``read_partitions`` how many read tasks the scan plans, ``scanned``
    each scanned file's identity (``schema.FILE_IDENTITY``: zero-byte files are not scanned),
    ``hidden`` the listed files Spark's sources cannot read for their names
    (``hidden_images``)."""

    images: DataFrame
    files: DataFrame
    scanned: DataFrame
    count: int
    read_partitions: int
    hidden: frozenset[str] = frozenset()


def scan_path(uri: Column) -> Column:
    """A listing URI written as the scan's ``path`` column writes it.

    ``inputFiles()`` gives ``java.net.URI`` strings: percent-encoded, ``file:///x`` for local
    files; the scan's ``path`` is Hadoop's ``Path.toString()``: decoded, ``file:/x``. Pitfall:
    ``url_decode`` is form decoding, which reads ``+`` as a space; a ``+`` in a URI is a
    literal plus (``Kiwi+Lime``), so it is protected first.
    """
    decoded = F.url_decode(F.regexp_replace(uri, r"\+", "%2B"))
    return F.regexp_replace(decoded, "^file:///", "file:/")


def list_input(spark: SparkSession, input_uri: str, split_names: Sequence[str]) -> Listing:
    """List every JPEG under ``input_uri`` (``reading.IMAGE_GLOB``), reading no image byte.

    Raises:
        NoInputError: the input does not exist or holds no matching file.
    """
    try:
        scan = read_images(spark, input_uri)
        listed, count = input_files(scan)
    except AnalysisException as error:
        raise NoInputError(f"cannot read input {input_uri}: {error}") from error
    if not count:
        raise NoInputError(
            f"no file matching *.jpg or *.jpeg (any case) under {input_uri}: nothing to do"
        )
    files = listed.select(scan_path(F.col("value")).alias(PATH))
    deepest = files.select(F.max(F.size(F.split(PATH, "/")) - 1)).first()[0]  # type: ignore[index]
    hidden = hidden_images(spark, input_uri, deepest)
    if hidden:
        files = files.unionByName(spark.createDataFrame([(p,) for p in hidden], f"{PATH} string"))
    return Listing(
        images=scan.transform(to_images(split_names)),
        files=files,
        scanned=scan.select(*FILE_IDENTITY),
        count=count + len(hidden),
        hidden=frozenset(hidden),
        read_partitions=scan.rdd.getNumPartitions(),  # planning only: no file is read
    )


def hidden_images(spark: SparkSession, input_uri: str, deepest: int) -> list[str]:
    """JPEGs under ``input_uri`` that Spark's file sources never list: their name, or a
    folder's on their path, starts with ``_`` or ``.`` (Spark takes them for hidden or
    metadata files, and no option turns that off).

    Found with Hadoop globs ``*/.../{_,.}*`` at every depth down to ``deepest`` (as the
    separators of the deepest listed path count them): one listing call per depth, and per
    hidden folder, whatever the number of ordinary files. Pitfall: a hidden name deeper than
    every ordinary image is not looked for.
    """
    base = normalized_path(spark, input_uri).rstrip("/")
    found: set[str] = set()
    for depth in range(1, max(deepest - base.count("/"), 0) + 1):
        found |= glob_files(spark, base + "/*" * (depth - 1) + "/{_,.}*")
    return sorted(p for p in found if IMAGE_NAME.fullmatch(p.rsplit("/", 1)[-1]))


def skipped_error(length: int, hidden: bool = False) -> tuple[str, str]:
    """``(error_kind, error_message)`` for a listed file the scan did not return."""
    if hidden:
        return IGNORED_NAME, (
            "Spark's file sources skip files and folders whose names start with '_' or '.'; "
            "rename it to featurize it"
        )
    if length == 0:
        return EMPTY_FILE, "the file is empty (0 bytes); Spark's file scan skips such files"
    return UNREADABLE, "listed in the input but not returned by the file scan"


def skipped_rows(
    spark: SparkSession,
    paths: Sequence[str],
    file_length: Callable[[str], int],
    split_names: Sequence[str],
    hidden: frozenset[str] = frozenset(),
) -> DataFrame:
    """Error rows shaped like the staging (``schema.STAGED_SCHEMA``) for ``paths`` the scan
    skipped, each with the kind ``skipped_error`` gives for its length, or for a ``hidden``
    name (``Listing.hidden``)."""
    rows = [(path, (None, *skipped_error(file_length(path), path in hidden))) for path in paths]
    return (
        spark.createDataFrame(rows, f"{PATH} string, {RESULT} struct<{RESULT_FIELDS}>")
        .transform(with_label)
        .transform(with_split(split_names))
        .select(*KEY_COLUMNS, RESULT)
    )


def add_skipped(
    listing_files: DataFrame,
    accounted: DataFrame,
    staging_uri: str,
    file_length: Callable[[str], int],
    split_names: Sequence[str],
    hidden: frozenset[str] = frozenset(),
) -> int:
    """Append to the staging an error row for every listed file not in ``accounted``.

    Args:
        listing_files: ``Listing.files`` (``path``).
        accounted: ``path`` of every file with an outcome already: the staging's rows, and an
            incremental run's reused files.
        staging_uri: the featurize stage's Parquet (``schema.STAGED_SCHEMA``).
        file_length: bytes of the file at a path (``writing.file_length``).
        split_names: as ``JobConfig.split_names``.
        hidden: ``Listing.hidden``, the files Spark cannot read for their names.

    Returns how many were added: the files the scan skipped (zero-byte uploads, in practice).
    """
    skipped = [row[PATH] for row in listing_files.join(accounted, PATH, "left_anti").collect()]
    if skipped:
        spark = listing_files.sparkSession
        rows = skipped_rows(spark, skipped, file_length, split_names, hidden)
        rows.write.mode("append").parquet(staging_uri)
    return len(skipped)


def errors_by_kind(errors: DataFrame) -> dict[str, int]:
    """``{error_kind: files}`` of ``errors/``, most frequent first (ties by kind)."""
    kinds = errors.groupBy(ERROR_KIND).count().orderBy(F.desc("count"), ERROR_KIND).collect()
    return {row[ERROR_KIND]: row["count"] for row in kinds}


def label_counts(
    rows: list[Row], gone: dict[str, int], incremental: bool
) -> dict[str, LabelCounts]:
    """``count_outcomes``' rows (one per label: ``files_seen``, ``featurized``, ``reused``,
    ``featurized_new``) and the files ``gone`` per label, as ``LabelCounts``; the incremental
    fields only for an ``incremental`` run."""
    per_label = {
        row[LABEL]: LabelCounts(
            row.files_seen,
            row.featurized,
            row.files_seen - row.featurized,
            *((row.reused, row.featurized_new, gone.get(row[LABEL], 0)) if incremental else ()),
        )
        for row in rows
    }
    for label, count in gone.items():
        per_label.setdefault(label, LabelCounts(0, 0, 0, 0, 0, count))
    return per_label


def count_outcomes(
    features: DataFrame,
    errors: DataFrame,
    listed_count: int,
    reused: DataFrame | None = None,
    removed: DataFrame | None = None,
    model_runs: int | None = None,
) -> Counts:
    """Per-label counts of what was written, checked against the listing; errors by kind.

    Args:
        features, errors: the run's ``features/`` and ``errors/`` (``path``, ``label``, ...).
        listed_count: how many files the listing found.
        reused: ``path`` of the files an incremental run carried over (None: a full run).
        removed: ``path, label`` of the previous run's files no longer listed.
        model_runs: rows the featurize UDF received (``Counts.model_runs``).

    Raises:
        RuntimeError: the counts do not add up to the listing: the invariant every output rests
            on (``files_seen == featurized + errors == listed``) is broken, so nothing may be
            claimed.
    """
    ok, carried = F.col("ok"), F.col("reused")
    outcomes = features.select(PATH, LABEL, F.lit(True).alias("ok")).unionByName(
        errors.select(PATH, LABEL, F.lit(False).alias("ok"))
    )
    if reused is not None:
        outcomes = outcomes.join(reused.withColumn("reused", F.lit(True)), PATH, "left")
    else:
        outcomes = outcomes.withColumn("reused", F.lit(None).cast("boolean"))
    rows = (
        outcomes.groupBy(LABEL)
        .agg(
            F.count(F.lit(1)).alias("files_seen"),
            F.count_if(ok).alias("featurized"),
            F.count_if(carried).alias("reused"),
            F.count_if(ok & carried.isNull()).alias("featurized_new"),
        )
        .collect()
    )
    gone = {}
    if removed is not None:
        gone = {r[LABEL]: r["count"] for r in removed.groupBy(LABEL).count().collect()}
    per_label = label_counts(rows, gone, incremental=reused is not None)
    counts = Counts.from_per_label(per_label, model_runs, errors_by_kind(errors))
    if counts.files_seen != listed_count:
        raise RuntimeError(
            f"accounted for {counts.files_seen} files but {listed_count} were listed"
        )
    return counts
