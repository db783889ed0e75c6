"""Running the job: the plan (``plan.py``), then the stages (``stages.py``) in a straight line.

``run_job`` is the whole job; each stage is a short function of ``stages.py`` returning a typed
result, and ``manifest.json`` is written last, ``"status": "succeeded"`` only once everything
else is written. A failure after outputs were started writes it with ``"failed"``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata

from pyspark.sql import SparkSession

from fruits_pipeline import __version__
from fruits_pipeline.collection import CollectionUpdate
from fruits_pipeline.config import JobConfig
from fruits_pipeline.engines import MOBILENET_V2, ModelSource
from fruits_pipeline.jvm import delete
from fruits_pipeline.manifest import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    CollectionInfo,
    Manifest,
    ModelRunInfo,
    ProbeSummary,
    ReductionSummary,
    ResidencyInfo,
    Throughput,
    WeightsInfo,
)
from fruits_pipeline.plan import RunPlan, Shape, plan_run
from fruits_pipeline.progress import Progress
from fruits_pipeline.s3a import s3_endpoint
from fruits_pipeline.stages import (
    STAGES,
    Accounted,
    Featurized,
    Featurizer,
    Precision,
    Reduced,
    Scope,
    Sources,
    Stage,
    account_collection,
    check_error_fraction,
    check_residency,
    choose_precision,
    featurize_to_staging,
    fit_or_load,
    list_scope,
    load_sources,
    probe_or_skip,
    refuse_existing_output,
    staged,
    start_featurizer,
    update_table,
    write_features_and_errors,
    write_projection,
)
from fruits_pipeline.table import parse_table
from fruits_pipeline.writing import clear_outputs, write_manifest

SessionFactory = Callable[[dict[str, str]], SparkSession]
_VERSIONED_PACKAGES = (
    "tensorflow-cpu",
    "keras",
    "openvino",
    "numpy",
    "pandas",
    "pyarrow",
    "pillow",
    "boto3",
)
# The stages after start-up: their seconds are the job's, in the manifest's throughput.
_AFTER_STARTUP = STAGES[STAGES.index(Stage.FEATURIZE.key) : STAGES.index(Stage.MANIFEST.key)]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "fruits-pipeline": __version__}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed as a package"
    import pyspark

    versions["pyspark"] = pyspark.__version__  # EMR's Spark is not pip-installed
    return versions


def started_manifest(
    config: JobConfig, started_at: str, residency: ResidencyInfo, sources: Sources, scope: Scope
) -> Manifest:
    """The manifest as the run starts writing: what it reads, with which weights, where."""
    weights, model_run = sources.weights, sources.model_run
    return Manifest(
        status=RUNNING,
        started_at=started_at,
        input=config.input_uri,
        output=config.output_uri,
        config=asdict(config),
        weights=WeightsInfo(weights.source, weights.sha256),
        read_partitions=scope.listing.read_partitions,
        residency=residency,
        versions=library_versions(),
        incremental_from=config.incremental_from,
        model_run=ModelRunInfo(model_run.uri, model_run.reduction.k, weights.sha256)
        if model_run
        else None,
    )


def throughput(
    plan: RunPlan, accounted: Accounted, featurized: Featurized, timings: Mapping[str, float]
) -> Throughput:
    """Images per second of the featurize stage (the images the model ran on: all of them, or
    an incremental run's new and changed ones) and of the stages after start-up."""
    files = accounted.counts.files_seen
    job_seconds = sum(timings[key] for key in _AFTER_STARTUP)
    featurized_here = files if plan.shape is Shape.FULL else featurized.images
    return Throughput(
        featurize_images_per_s=round(featurized_here / timings[Stage.FEATURIZE.key], 2),
        job_seconds_after_startup=round(job_seconds, 3),
        job_images_per_s=round(files / job_seconds, 2),
    )


def succeeded_manifest(
    manifest: Manifest,
    config: JobConfig,
    plan: RunPlan,
    reduced: Reduced,
    probe: ProbeSummary,
    throughput: Throughput,
    timings: Mapping[str, float],
) -> Manifest:
    """``manifest`` completed: reduction, probe, timings, throughput and the outputs written."""
    reduction = reduced.reduction
    return manifest.with_(
        status=SUCCEEDED,
        finished_at=now(),
        reduction=ReductionSummary(
            k=reduction.k,
            k_rule=plan.k_rule,
            target_variance=config.variance,
            achieved_variance=reduction.achieved_variance,
            cumulative_variance=reduction.cumulative_variance,
            note=reduction.note,
        ),
        probe=probe,
        timings_s=dict(timings),
        throughput=throughput,
        outputs={name: plan.layout.part(name) for name in plan.outputs},
    )


def failed_manifest(manifest: Manifest, error: Exception, timings: Mapping[str, float]) -> Manifest:
    """``manifest`` as far as the run got, marked failed with ``error``."""
    return manifest.with_(
        status=FAILED,
        error=f"{type(error).__name__}: {error}",
        finished_at=now(),
        timings_s=dict(timings),
    )


def started_workers(
    spark: SparkSession,
    config: JobConfig,
    model: ModelSource,
    progress: Progress,
    sources: Sources,
    scope: Scope,
    precision: Precision,
) -> Featurizer:
    """Stage 4, for every shape of run: what the workers run, built, broadcast and started."""
    return staged(
        progress,
        Stage.WORKERS,
        lambda: start_featurizer(
            spark, config, model, sources.weights, scope.to_featurize, precision
        ),
    )


def featurize_and_account(
    spark: SparkSession,
    config: JobConfig,
    plan: RunPlan,
    model: ModelSource,
    progress: Progress,
    sources: Sources,
    scope: Scope,
    precision: Precision,
) -> tuple[Featurized, Accounted]:
    """Stages 4 to 6: start the workers, run the model into the staging, write ``features/``,
    ``errors/`` and ``inventory/``."""
    layout = plan.layout
    featurizer = started_workers(spark, config, model, progress, sources, scope, precision)
    with progress.watch_tasks(spark.sparkContext):
        featurized = staged(
            progress,
            Stage.FEATURIZE,
            lambda: featurize_to_staging(scope.to_featurize, featurizer, layout.staging),
        )
    accounted = staged(
        progress,
        Stage.ACCOUNT,
        lambda: write_features_and_errors(spark, config, layout, scope, featurized),
    )
    return featurized, accounted


def featurize_collection(
    spark: SparkSession,
    config: JobConfig,
    plan: RunPlan,
    model: ModelSource,
    progress: Progress,
    sources: Sources,
    scope: Scope,
    precision: Precision,
) -> tuple[Featurized, Accounted, CollectionUpdate]:
    """Stages 4 to 6 with ``--table``: start the workers, bring the collection up to date
    (chunked, committed model pass; ``stages.update_table``), write ``features/`` and
    ``errors/`` and count the collection against the listing."""
    layout = plan.layout
    table = parse_table(str(config.table), config.warehouse, s3_endpoint())
    featurizer = started_workers(spark, config, model, progress, sources, scope, precision)
    with progress.watch_tasks(spark.sparkContext):
        featurized, update = staged(
            progress,
            Stage.FEATURIZE,
            lambda: update_table(spark, config, table, layout.staging, featurizer, sources, scope),
        )
    accounted = staged(
        progress,
        Stage.ACCOUNT,
        lambda: account_collection(
            spark, table, layout, update, scope.listing.count, featurized.images
        ),
    )
    return featurized, accounted, update


def collection_info(config: JobConfig, update: CollectionUpdate) -> CollectionInfo:
    """The manifest's ``collection`` section."""
    drift = update.drift
    return CollectionInfo(
        table=str(config.table),
        snapshot=update.snapshot,
        rows=update.rows,
        removed=update.removed,
        featurized=update.featurized.images,
        chunks=update.featurized.chunks,
        refit=config.refit,
        refitted=update.refitted,
        drift=None if drift is None else {**asdict(drift), "retained_drop": drift.retained_drop},
        previous_snapshot=update.previous,
    )


def reduce_and_probe(
    spark: SparkSession,
    config: JobConfig,
    plan: RunPlan,
    progress: Progress,
    sources: Sources,
    featurized: Featurized,
    accounted: Accounted,
    update: CollectionUpdate | None = None,
) -> tuple[Reduced, ProbeSummary]:
    """Stages 7 to 9: fit scaler + PCA (or load the model run's, or save the collection's),
    write ``pca/``, probe."""
    layout = plan.layout
    reduced = staged(
        progress,
        Stage.FIT,
        lambda: fit_or_load(spark, config, layout, sources.model_run, featurized.width, update),
    )
    staged(
        progress,
        Stage.PROJECT,
        lambda: write_projection(spark, layout, reduced.reduction, accounted.counts.featurized),
    )
    probe = staged(progress, Stage.PROBE, lambda: probe_or_skip(spark, plan, config.seed))
    return reduced, probe


def run_job(
    config: JobConfig,
    progress: Progress,
    make_session: SessionFactory,
    model: ModelSource = MOBILENET_V2,
) -> Manifest:
    """Run the whole job for ``config``; return the manifest written (status succeeded).

    ``make_session(bucket_regions)`` builds the SparkSession once the residency guard passed
    (``session.RunSession``); ``model`` loads the weights and builds the workers' predictor
    (``engines.MOBILENET_V2``; tests pass ``tests/fakes.py``'s). Raises a ``PipelineError``
    subclass for every refusal or data problem (its exit code is the CLI's). A failure after
    outputs were started leaves ``manifest.json`` with ``"status": "failed"`` and the reason; a
    refusal before that writes nothing.
    """
    plan, started_at = plan_run(config), now()
    progress.stages = STAGES
    residency = staged(progress, Stage.RESIDENCY, lambda: check_residency(config))
    spark = make_session(residency.buckets)
    existing = refuse_existing_output(spark, plan.layout, config.overwrite)
    sources = staged(
        progress, Stage.WEIGHTS, lambda: load_sources(spark, config, plan, model, residency.region)
    )
    scope = staged(progress, Stage.LIST, lambda: list_scope(spark, config, sources.previous))
    precision = staged(
        progress, Stage.PRECISION, lambda: choose_precision(config, sources.weights, scope)
    )
    manifest = started_manifest(config, started_at, residency, sources, scope).with_(
        quantization=precision.quantization
    )
    if existing:
        clear_outputs(spark, plan.layout)
    try:
        update = None
        if plan.shape is Shape.COLLECTION:
            featurized, accounted, update = featurize_collection(
                spark, config, plan, model, progress, sources, scope, precision
            )
            manifest = manifest.with_(collection=collection_info(config, update))
        else:
            featurized, accounted = featurize_and_account(
                spark, config, plan, model, progress, sources, scope, precision
            )
        manifest = manifest.with_(counts=accounted.counts)
        check_error_fraction(accounted.counts, config.max_error_fraction, plan.layout)
        reduced, probe = reduce_and_probe(
            spark, config, plan, progress, sources, featurized, accounted, update
        )
        speed = throughput(plan, accounted, featurized, progress.timings)
        manifest = succeeded_manifest(
            manifest, config, plan, reduced, probe, speed, progress.timings
        )
        staged(progress, Stage.MANIFEST, lambda: write_manifest(spark, plan.layout, manifest))
    except Exception as error:
        write_manifest(spark, plan.layout, failed_manifest(manifest, error, progress.timings))
        raise
    finally:
        delete(spark, plan.layout.staging)
        scope.listing.scanned.unpersist()
    return manifest
