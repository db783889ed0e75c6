"""A run with ``--table``: bring the collection up to date with the input, then decide the fit.

``update_collection`` composes ``table.py``, ``commits.py``, the moments and ``drift.py``: it
compares the listing with the collection, deletes the rows of vanished and changed files,
featurizes the new and changed ones in committed chunks, brings the moments forward, measures
drift and refits (or not) by ``--refit``. Everything it reads or writes is in the tables;
the run folder's outputs are the job's (``pca/``, ``errors/``, ``model/``, the manifest).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession

from fruits_pipeline.accounting import Listing, add_skipped, count_outcomes
from fruits_pipeline.commits import ChunkedPass, FeaturizeChunk, featurize_in_chunks
from fruits_pipeline.drift import Drift, Refit, measure_drift, should_refit
from fruits_pipeline.featurize import failures, featurize_images, successes
from fruits_pipeline.layout import RunLayout
from fruits_pipeline.manifest import Counts
from fruits_pipeline.reading import read_image_files, to_images
from fruits_pipeline.reduction import Reduction, reduction_from_moments
from fruits_pipeline.schema import ERROR_KIND, ERROR_MESSAGE, FEATURES, KEY_COLUMNS, PATH
from fruits_pipeline.table import (
    CollectionTable,
    Provenance,
    StoredMoments,
    added_since,
    delete_paths,
    held_identities,
    latest_moments,
    listed_identities,
    open_collection,
    plan_changes,
    save_moments,
    update_moments,
    with_provenance,
)
from fruits_pipeline.writing import write_parquet


def staged_chunks(
    udf: Callable[[Column], Column],
    staging: str,
    listing: Listing,
    provenance: Provenance,
    run_id: str,
    file_length: Callable[[str], int],
    split_names: Sequence[str],
) -> FeaturizeChunk:
    """The job's ``FeaturizeChunk``: read a chunk's files, run the model once per image into
    its own staging Parquet (``staging/chunk-N``), add error rows for the files the scan skips
    (``accounting.add_skipped``), and return its features and errors as the tables' rows."""
    numbers = itertools.count()
    identities = listed_identities(listing.files, listing.scanned)
    rows = with_provenance(identities, provenance, run_id)

    def featurize(paths: DataFrame) -> tuple[DataFrame, DataFrame]:
        spark, uri = paths.sparkSession, f"{staging}/chunk-{next(numbers)}"
        images = read_image_files(paths).transform(to_images(split_names))
        write_parquet(images.transform(featurize_images(udf)), uri)
        done = spark.read.parquet(uri).select(PATH)
        add_skipped(paths, done, uri, file_length, split_names, listing.hidden)
        staged = spark.read.parquet(uri)
        return staged.transform(successes).transform(rows), staged.transform(failures).transform(
            rows
        )

    return featurize


@dataclass(frozen=True)
class CollectionUpdate:
    """What a run did to its collection.

    ``run_id``: the run's rows' ``run_id``; ``removed``: rows deleted (files gone or
    changed); ``featurized``: the chunked model pass;
    ``snapshot``: the ``features`` snapshot the moments (and any fit) describe, ``previous``
    the one the moments before this run described (None: none, or expired since); ``rows``: the
    collection's photos then; ``drift``: the new photos against the current model (None when
    there was no model); ``refitted``: whether this run fitted; ``reduction``: the model the
    run projects with (the new fit, or the current one).
    """

    run_id: str
    removed: int
    featurized: ChunkedPass
    snapshot: int | None
    previous: int | None
    rows: int
    drift: Drift | None
    refitted: bool
    reduction: Reduction


def sync_rows(
    spark: SparkSession,
    table: CollectionTable,
    listing: Listing,
    featurize: FeaturizeChunk,
    chunk_images: int,
) -> tuple[int, ChunkedPass]:
    """Delete the rows of vanished and changed files (one commit per table), then featurize the
    new and changed files in committed chunks. Returns (rows deleted, the model pass)."""
    listed = listed_identities(listing.files, listing.scanned)
    changes = plan_changes(listed, held_identities(spark, table))
    stale = changes.stale.localCheckpoint(eager=True)
    removed = stale.count()
    if removed:
        delete_paths(spark, table.errors, stale)
        delete_paths(spark, table.features, stale)
    passed = featurize_in_chunks(
        changes.to_featurize, chunk_images, featurize, table.features, table.errors
    )
    return removed, passed


@dataclass(frozen=True)
class FitPolicy:
    """``--refit``, ``--variance``/``--k`` and ``--chunk-images`` of a run with a table."""

    refit: Refit
    variance: float
    k: int | None
    chunk_images: int


def update_collection(
    spark: SparkSession,
    table: CollectionTable,
    provenance: Provenance,
    listing: Listing,
    featurize: FeaturizeChunk,
    policy: FitPolicy,
    run_id: str,
) -> CollectionUpdate:
    """Open the collection (``TableMismatchError`` for another provenance, nothing committed),
    sync its rows with ``listing``, bring its moments forward, measure drift, fit by
    ``policy.refit`` and save the moments (one more commit)."""
    open_collection(spark, table, provenance)
    removed, passed = sync_rows(spark, table, listing, featurize, policy.chunk_images)
    before = latest_moments(spark, table)
    update = update_moments(spark, table, before)
    fitted = latest_moments(spark, table, fitted=True)
    current, drift = None, None
    if fitted is not None:
        current = reduction_from_moments(fitted.moments, policy.variance, fitted.k)
        drift = measure_drift(current, fitted.moments, update.added)
    refit = should_refit(policy.refit, drift) or current is None
    if refit or current is None:
        reduction = reduction_from_moments(update.current, policy.variance, policy.k)
    else:
        reduction = current
    stored = StoredMoments(
        update.snapshot, run_id, update.current, refit, reduction.k if refit else None
    )
    save_moments(spark, table, stored)
    return CollectionUpdate(
        run_id=run_id,
        removed=removed,
        featurized=passed,
        snapshot=update.snapshot,
        previous=update.previous,
        rows=update.current.rows,
        drift=drift,
        refitted=refit,
        reduction=reduction,
    )


def write_collection_parts(
    spark: SparkSession,
    table: CollectionTable,
    layout: RunLayout,
    update: CollectionUpdate,
    listed: int,
    model_runs: int,
) -> Counts:
    """The run folder's ``features/`` (the photos it projects: the whole collection after a
    refit, else those added since the previous moments) and ``errors/`` (the collection's),
    then the counts of the collection against the listing (``accounting.count_outcomes``:
    every listed file is in one of the tables)."""
    features = spark.table(table.features)
    projected = features
    if not update.refitted:
        projected = added_since(spark, table.features, update.snapshot, update.previous)
    write_parquet(projected.select(*KEY_COLUMNS, FEATURES), layout.features)
    errors = spark.table(table.errors).select(*KEY_COLUMNS, ERROR_KIND, ERROR_MESSAGE)
    write_parquet(errors, layout.errors)
    return count_outcomes(
        features.select(*KEY_COLUMNS, FEATURES),
        spark.read.parquet(layout.errors),
        listed,
        model_runs=model_runs,
    )
