"""Running the job: the stages in order, each a function returning a typed result.

``Stage`` lists them; its order numbers the progress lines and its labels are the manifest's
timing keys. Order is part of the contract:

1. residency guard (boto3, before Spark starts any work); then, not a numbered stage, an output
   that already holds a run is refused unless ``--overwrite``;
2. load and check the weights on the driver (and, for ``--incremental-from`` or ``project``,
   that the other run is usable); 3. list the input (no bytes read; an empty input stops here,
   nothing written);
4. start the Python workers (engine loaded); 5. featurize: the model runs **exactly once per
   image** (new and changed images only, in an incremental run), into a staging Parquet;
6. account for every listed file and write ``features/``, ``errors/`` and ``inventory/``;
   then ``--max-error-fraction`` is enforced;
7. fit scaler + PCA on ``features/`` and save ``model/`` (``project``: load the model run's);
   8. project into ``pca/``;
9. the linear probe; 10. ``manifest.json`` last: ``"status": "succeeded"`` only once everything
   above is written. A failure after outputs were started writes it with ``"failed"``.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from enum import Enum
from importlib import metadata

from PIL import Image
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_pipeline import __version__
from fruits_pipeline.accounting import Listing, add_skipped, count_outcomes, list_input
from fruits_pipeline.config import JobConfig
from fruits_pipeline.engines import MOBILENET_V2, ModelSource
from fruits_pipeline.errors import OutputExistsError, TooManyBadImagesError
from fruits_pipeline.featurize import failures, featurize_images, make_featurize_udf, successes
from fruits_pipeline.incremental import Increment, plan_increment
from fruits_pipeline.manifest import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    Counts,
    Manifest,
    ModelRunInfo,
    ProbeSummary,
    ReductionSummary,
    ResidencyInfo,
    Throughput,
    WeightsInfo,
)
from fruits_pipeline.probe import run_probe
from fruits_pipeline.progress import Progress
from fruits_pipeline.reading import read_image_files, to_images
from fruits_pipeline.reduction import Reduction, export_pipeline_model, fit_reduction, project
from fruits_pipeline.residency import (
    check_buckets,
    check_driver_region,
    validate_allowed_regions,
)
from fruits_pipeline.runs import load_model_run, load_previous_run
from fruits_pipeline.schema import CONTENT, PATH, RESULT
from fruits_pipeline.writing import (
    STAGING,
    child_uri,
    clear_outputs,
    delete,
    existing_outputs,
    file_length,
    write_manifest,
    write_parquet,
)

SessionFactory = Callable[[dict[str, str]], SparkSession]
OUTPUT_DATA = ("features", "errors", "pca", "model", "inventory")
_VERSIONED_PACKAGES = (
    "tensorflow-cpu", "keras", "openvino", "numpy", "pandas", "pyarrow", "pillow", "boto3",
)  # fmt: skip


class Stage(Enum):
    """The job's stages, in order; the value is the label printed and the timing key."""

    RESIDENCY = "residency check"
    WEIGHTS = "load weights"
    LIST = "list input"
    WORKERS = "start workers"
    FEATURIZE = "featurize"
    ACCOUNT = "account for every file and write features, errors"
    FIT = "fit scaler + PCA"
    PROJECT = "project and write pca"
    PROBE = "linear probe"
    MANIFEST = "write manifest"


STAGES = tuple(stage.value for stage in Stage)


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


def check_residency(config: JobConfig) -> ResidencyInfo:
    """Stage 1: the region the job runs in and every bucket it touches are in an allowed EU
    region (``ResidencyError`` otherwise)."""
    allowed = validate_allowed_regions(config.allowed_regions)
    uris = [config.input_uri, config.output_uri, config.weights, config.incremental_from,
            config.model_run]  # fmt: skip
    region = check_driver_region(uris, allowed)
    buckets = check_buckets(uris, allowed, region)
    return ResidencyInfo(allowed_regions=list(allowed), region=region, buckets=buckets)


def refuse_existing_output(spark: SparkSession, config: JobConfig) -> list[str]:
    """The parts of a previous run under ``--output``; ``OutputExistsError`` unless
    ``--overwrite`` (then the caller clears exactly those parts, once the run starts)."""
    previous = existing_outputs(spark, config.output_uri)
    if previous and not config.overwrite:
        raise OutputExistsError(
            f"{config.output_uri} already holds a run ({', '.join(previous)}); "
            "pass --overwrite to replace it"
        )
    return previous


def start_workers(spark: SparkSession, featurize: Callable[[Column], Column]) -> int:
    """Stage 4: load the engine and build the model in every Python worker before featurizing.

    Runs the featurize UDF itself on one tiny generated JPEG per core, so the workers it warms
    are the ones the featurize stage reuses: Spark keeps a separate worker pool per kind of
    Python evaluation, and an RDD job would warm the wrong pool. The featurize stage then
    measures steady-state inference, and a broken worker environment (a missing engine, say)
    fails here, before any image is read. Returns how many tiny images were featurized.
    """
    tasks = spark.sparkContext.defaultParallelism
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 255, 255)).save(buffer, "JPEG")
    rows = spark.sparkContext.parallelize([(buffer.getvalue(),)] * tasks, tasks)
    frame = spark.createDataFrame(rows, f"{CONTENT} binary")
    results = frame.select(featurize(F.col(CONTENT)).alias(RESULT)).collect()
    return sum(1 for row in results if row[RESULT].error_kind is None)


def write_features_and_errors(
    spark: SparkSession,
    config: JobConfig,
    listing: Listing,
    increment: Increment | None,
    model_runs: int,
) -> Counts:
    """Stage 6: every listed file gets its outcome, then ``features/``, ``errors/`` and
    ``inventory/`` are written and counted (``accounting.count_outcomes``).

    Files the scan skipped become error rows of the staging (``accounting.add_skipped``); an
    incremental run adds the outcomes it reused. ``inventory/`` records each scanned file's
    identity for the next incremental run.
    """
    output = config.output_uri
    staging = child_uri(output, STAGING)
    accounted = spark.read.parquet(staging).select(PATH)
    if increment is not None:
        accounted = accounted.unionByName(increment.unchanged)
    add_skipped(
        listing.files,
        accounted,
        staging,
        lambda p: file_length(spark, p),
        config.split_names,
        listing.hidden,
    )
    staged = spark.read.parquet(staging)
    features, errors = staged.transform(successes), staged.transform(failures)
    if increment is not None:
        features = features.unionByName(increment.reused_features)
        errors = errors.unionByName(increment.reused_errors)
    write_parquet(features, child_uri(output, "features"))
    write_parquet(errors, child_uri(output, "errors"))
    write_parquet(listing.scanned, child_uri(output, "inventory"))
    return count_outcomes(
        spark.read.parquet(child_uri(output, "features")),
        spark.read.parquet(child_uri(output, "errors")),
        listing.count,
        reused=increment.unchanged if increment is not None else None,
        removed=increment.removed if increment is not None else None,
        model_runs=model_runs,
    )


def read_new_files(split_names: Sequence[str]) -> Callable[[DataFrame], DataFrame]:
    """``plan_increment``'s reader: the named files' images, as ``list_input`` shapes them."""
    return lambda paths: read_image_files(paths).transform(to_images(split_names))


def check_error_fraction(counts: Counts, config: JobConfig) -> None:
    """``TooManyBadImagesError`` when more than ``--max-error-fraction`` of the files failed."""
    fraction = counts.errors / counts.files_seen
    if fraction > config.max_error_fraction:
        raise TooManyBadImagesError(
            f"{counts.errors} of {counts.files_seen} images ({fraction:.1%}) could not be "
            f"featurized, above --max-error-fraction {config.max_error_fraction:.1%}; see "
            f"{child_uri(config.output_uri, 'errors')}"
        )


def reduction_summary(reduction: Reduction, config: JobConfig) -> ReductionSummary:
    if config.model_run is not None:
        rule = f"from --model {config.model_run}"
    else:
        rule = "fixed (--k)" if config.k is not None else "variance"
    return ReductionSummary(
        k=reduction.k,
        k_rule=rule,
        target_variance=config.variance,
        achieved_variance=reduction.achieved_variance,
        cumulative_variance=reduction.cumulative_variance,
        note=reduction.note,
    )


def probe_detail(probe: ProbeSummary) -> str:
    if probe.status == SUCCEEDED:
        return f"test accuracy {probe.accuracy:.4f} ({probe.split})"
    return probe.reason or probe.status


def run_job(
    config: JobConfig,
    progress: Progress,
    make_session: SessionFactory,
    model: ModelSource = MOBILENET_V2,
) -> Manifest:
    """Run the whole job for ``config``; return the manifest written (status succeeded).

    Three shapes, one sequence of stages: a full run; an incremental run
    (``config.incremental_from``: only new and changed images run the model, scaler + PCA are
    refitted on all); a projection (``config.model_run``: the new images are projected with
    that run's scaler + PCA, no refit, no ``model/`` written).

    ``make_session(bucket_regions)`` builds the SparkSession once the residency guard passed
    (``session.build_session``); ``model`` loads the weights and builds the workers' predictor
    factory (``engines.MOBILENET_V2``; tests pass a fake). Raises a ``PipelineError`` subclass
    for every refusal or data problem (its exit code is the CLI's). A failure after outputs
    were started leaves ``manifest.json`` with ``"status": "failed"`` and the reason; a refusal
    before that writes nothing.
    """
    progress.stages = STAGES
    output = config.output_uri
    started_at = now()
    with progress.stage(Stage.RESIDENCY.value):
        residency = check_residency(config)
    spark = make_session(residency.buckets)
    existing = refuse_existing_output(spark, config)
    with progress.stage(Stage.WEIGHTS.value) as info:
        weights = model.load_weights(config, residency.region)
        model_run = load_model_run(spark, config, weights) if config.model_run else None
        previous = load_previous_run(spark, config, weights) if config.incremental_from else None
        info["detail"] = f"{config.weights}, sha256 {weights.sha256[:12]}..."
    with progress.stage(Stage.LIST.value) as info:
        listing = list_input(spark, config.input_uri, config.split_names)
        if previous:  # every join of the increment reads it, and inventory/: one scan, not seven
            listing = replace(listing, scanned=listing.scanned.cache())
        increment = (
            plan_increment(listing, previous, read_new_files(config.split_names))
            if previous else None
        )  # fmt: skip
        info["detail"] = (
            f"{listing.count} files under {config.input_uri}, "
            f"{listing.read_partitions} read partitions"
        )
    manifest = Manifest(
        status=RUNNING, started_at=started_at, input=config.input_uri, output=output,
        config=asdict(config), weights=WeightsInfo(weights.source, weights.sha256),
        read_partitions=listing.read_partitions, residency=residency, versions=library_versions(),
        incremental_from=config.incremental_from,
        model_run=ModelRunInfo(model_run.uri, model_run.reduction.k, weights.sha256)
        if model_run else None,
    )  # fmt: skip
    if existing:
        clear_outputs(spark, output)
    try:
        factory = model.predictor_factory(config, weights, spark.sparkContext.broadcast)
        rows_seen = spark.sparkContext.accumulator(0)
        udf = make_featurize_udf(factory, config.image_size, config.batch_size, rows_seen)
        with progress.stage(Stage.WORKERS.value) as info:
            warmed = start_workers(spark, udf)
            info["detail"] = f"{config.engine} model loaded in the Python workers ({warmed} tasks)"
        job_start, rows_before = time.perf_counter(), rows_seen.value
        images = increment.to_featurize if increment else listing.images
        with (
            progress.stage(Stage.FEATURIZE.value) as info,
            progress.watch_tasks(spark.sparkContext),
        ):
            write_parquet(images.transform(featurize_images(udf)), child_uri(output, STAGING))
            model_runs = rows_seen.value - rows_before
            info["images"] = model_runs
        with progress.stage(Stage.ACCOUNT.value) as info:
            counts = write_features_and_errors(spark, config, listing, increment, model_runs)
            info["detail"] = f"{counts.featurized} featurized, {counts.errors} errors" + (
                f" ({counts.reused} reused, {counts.removed} removed)" if increment else ""
            )
        manifest = manifest.with_(counts=counts)
        check_error_fraction(counts, config)
        features = spark.read.parquet(child_uri(output, "features"))
        with progress.stage(Stage.FIT.value) as info:
            if model_run:
                reduction = model_run.reduction
                info["detail"] = f"k = {reduction.k}, loaded from {model_run.uri} (no refit)"
            else:
                reduction = fit_reduction(features, config.variance, config.k)
                fitted = export_pipeline_model(spark, reduction)
                fitted.write().overwrite().save(child_uri(output, "model"))
                info["detail"] = f"k = {reduction.k}" + (
                    f", {reduction.achieved_variance:.4f} of variance kept"
                    if reduction.achieved_variance is not None else ""
                )  # fmt: skip
        with progress.stage(Stage.PROJECT.value) as info:
            write_parquet(features.transform(project(reduction)), child_uri(output, "pca"))
            info["images"] = counts.featurized
        with progress.stage(Stage.PROBE.value) as info:
            probe = (
                run_probe(spark.read.parquet(child_uri(output, "pca")), config.seed)
                if config.probe and not model_run else
                ProbeSummary(status="skipped", reason="--no-probe" if not model_run else
                             "project: the probe belongs to the run that fitted the model")
            )  # fmt: skip
            info["detail"] = probe_detail(probe)
        with progress.stage(Stage.MANIFEST.value):
            job_seconds = time.perf_counter() - job_start
            featurize_seconds = progress.timings[Stage.FEATURIZE.value]
            featurized_here = model_runs if increment else counts.files_seen
            outputs = [name for name in OUTPUT_DATA if not (model_run and name == "model")]
            manifest = manifest.with_(
                status=SUCCEEDED, finished_at=now(),
                reduction=reduction_summary(reduction, config), probe=probe,
                timings_s=dict(progress.timings),
                throughput=Throughput(
                    featurize_images_per_s=round(featurized_here / featurize_seconds, 2),
                    job_seconds_after_startup=round(job_seconds, 3),
                    job_images_per_s=round(counts.files_seen / job_seconds, 2),
                ),
                outputs={name: child_uri(output, name) for name in outputs},
            )  # fmt: skip
            write_manifest(spark, output, manifest)
    except Exception as error:
        failed = manifest.with_(status=FAILED, error=f"{type(error).__name__}: {error}",
                                finished_at=now(), timings_s=dict(progress.timings))  # fmt: skip
        write_manifest(spark, output, failed)
        raise
    finally:
        delete(spark, child_uri(output, STAGING))
        listing.scanned.unpersist()
    return manifest
