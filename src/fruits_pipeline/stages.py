"""The job's stages: each a short function returning a typed, frozen result.

``Stage`` lists them in order: ``key`` names a stage in the manifest's ``timings_s`` (stable,
for the report and the benchmarks), ``label`` is what the progress lines print. ``job.run_job``
calls them in this order, each through ``staged``, which times it and prints its result's
``detail`` (text) and ``images`` (a count) when it has them. Order is part of the contract:

1. residency guard (boto3, before Spark starts any work); then, not a numbered stage, an output
   that already holds a run is refused unless ``--overwrite``;
2. load and check the weights on the driver (and, for an incremental run or ``project``, that
   the other run is usable); 3. list the input (no bytes read; an empty input stops here,
   nothing written);
then, for ``--precision int8``, quantize on a sample of the input and pass the quality gate
(refused: exit 8, nothing written);
4. start the Python workers (engine loaded); 5. featurize: the model runs **exactly once per
   image** (new and changed images only, in an incremental run), into a staging Parquet;
6. account for every listed file and write ``features/``, ``errors/`` and ``inventory/``;
   then ``--max-error-fraction`` is enforced;
7. fit scaler + PCA on ``features/`` and save ``model/`` (``project``: load the model run's);
   8. project into ``pca/``;
9. the linear probe; 10. ``manifest.json`` last (``job.py``).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import TypeVar

from PIL import Image
from pyspark import Accumulator
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_pipeline.accounting import Listing, add_skipped, count_outcomes, list_input
from fruits_pipeline.collection import (
    CollectionUpdate,
    FitPolicy,
    staged_chunks,
    update_collection,
    write_collection_parts,
)
from fruits_pipeline.config import F32, FEATURE_DIM, INT8, OPENVINO, ORB, JobConfig
from fruits_pipeline.drift import Refit
from fruits_pipeline.engines import (
    ModelSource,
    OpenVinoFactory,
    OpenVinoModel,
    PredictorFactory,
    converted_models,
    openvino_model,
)
from fruits_pipeline.errors import OutputExistsError, TooManyBadImagesError, UsageError
from fruits_pipeline.featurize import failures, featurize_images, make_featurize_udf, successes
from fruits_pipeline.incremental import Increment, plan_increment
from fruits_pipeline.jvm import file_length
from fruits_pipeline.layout import RunLayout
from fruits_pipeline.manifest import Counts, ProbeSummary, QuantizationSummary, ResidencyInfo
from fruits_pipeline.model import LoadedWeights
from fruits_pipeline.orb import fit_vocabulary, make_orb_udf
from fruits_pipeline.plan import RunPlan
from fruits_pipeline.probe import run_probe
from fruits_pipeline.progress import Progress
from fruits_pipeline.quantize import checked_int8_model
from fruits_pipeline.reading import read_image_files, to_images
from fruits_pipeline.reduction import Reduction, export_pipeline_model, fit_reduction, project
from fruits_pipeline.residency import check_buckets, check_driver_region, validate_allowed_regions
from fruits_pipeline.runs import ModelRun, PreviousRun, load_model_run, load_previous_run
from fruits_pipeline.schema import CONTENT, PATH, RESULT
from fruits_pipeline.table import CollectionTable, Provenance
from fruits_pipeline.writing import existing_outputs, write_parquet

# What the manifest records as the weights of a run with orb features: they use no model.
NO_WEIGHTS = LoadedWeights(source="none: orb features use no model", sha256="none", arrays=[])


class Stage(Enum):
    """The job's stages, in order: ``key`` (the timing's name), ``label`` (what is printed)."""

    RESIDENCY = ("residency", "residency check")
    WEIGHTS = ("weights", "load weights")
    LIST = ("list", "list input")
    PRECISION = ("precision", "model precision (int8: quantize and gate)")
    WORKERS = ("workers", "start workers")
    FEATURIZE = ("featurize", "featurize")
    ACCOUNT = ("account", "account for every file and write features, errors")
    FIT = ("fit", "fit scaler + PCA")
    PROJECT = ("project", "project and write pca")
    PROBE = ("probe", "linear probe")
    MANIFEST = ("manifest", "write manifest")

    def __init__(self, key: str, label: str) -> None:
        self.key = key
        self.label = label


STAGES = tuple(stage.key for stage in Stage)
Result = TypeVar("Result")


def staged(progress: Progress, stage: Stage, work: Callable[[], Result]) -> Result:
    """Run ``work`` as ``stage``: timed under ``stage.key``, announced by ``stage.label``; the
    closing line shows the result's ``images`` and ``detail`` attributes when it has them."""
    with progress.stage(stage.key, stage.label) as info:
        result = work()
        info["images"] = getattr(result, "images", None)
        info["detail"] = getattr(result, "detail", None)
    return result


def check_residency(config: JobConfig) -> ResidencyInfo:
    """Stage 1: the region the job runs in and every bucket it touches are in an allowed EU
    region (``ResidencyError`` otherwise)."""
    allowed = validate_allowed_regions(config.allowed_regions)
    uris = [
        config.input_uri,
        config.output_uri,
        config.weights,
        config.incremental_from,
        config.model_run,
        config.table,
        config.warehouse,
    ]
    region = check_driver_region(uris, allowed)
    buckets = check_buckets(uris, allowed, region)
    return ResidencyInfo(allowed_regions=list(allowed), region=region, buckets=buckets)


def refuse_existing_output(spark: SparkSession, layout: RunLayout, overwrite: bool) -> list[str]:
    """The parts of a previous run in ``layout``; ``OutputExistsError`` unless ``overwrite``
    (then the caller clears exactly those parts, once the run starts)."""
    previous = existing_outputs(spark, layout)
    if previous and not overwrite:
        raise OutputExistsError(
            f"{layout.root} already holds a run ({', '.join(previous)}); "
            "pass --overwrite to replace it"
        )
    return previous


@dataclass(frozen=True)
class Sources:
    """What the run builds on, checked on the driver: the model's ``weights``, the run an
    incremental run reuses (``previous``) and the run ``project`` takes its reduction from."""

    weights: LoadedWeights
    previous: PreviousRun | None
    model_run: ModelRun | None

    @property
    def detail(self) -> str:
        cached = ", converted model from the cache" if self.weights.converted else ""
        return f"{self.weights.source}, sha256 {self.weights.sha256[:12]}...{cached}"


def load_sources(
    spark: SparkSession, config: JobConfig, plan: RunPlan, model: ModelSource, region: str | None
) -> Sources:
    """Stage 2: the weights (``model.load_weights``; ``NO_WEIGHTS`` for orb features), then
    the other runs the plan names."""
    weights = NO_WEIGHTS if config.extractor == ORB else model.load_weights(config, region)
    return Sources(
        weights=weights,
        previous=load_previous_run(spark, config, weights) if plan.reuse_from else None,
        model_run=load_model_run(spark, config, weights) if plan.model_from else None,
    )


@dataclass(frozen=True)
class Scope:
    """The input, listed (``listing``), and of it what runs the model: every image, or for an
    incremental run the new and changed ones (``increment``)."""

    listing: Listing
    increment: Increment | None
    input_uri: str

    @property
    def to_featurize(self) -> DataFrame:
        return self.increment.to_featurize if self.increment else self.listing.images

    @property
    def detail(self) -> str:
        return (
            f"{self.listing.count} files under {self.input_uri}, "
            f"{self.listing.read_partitions} read partitions"
        )


def read_new_files(split_names: Sequence[str]) -> Callable[[DataFrame], DataFrame]:
    """``plan_increment``'s reader: the named files' images, as ``list_input`` shapes them."""
    return lambda paths: read_image_files(paths).transform(to_images(split_names))


def list_scope(spark: SparkSession, config: JobConfig, previous: PreviousRun | None) -> Scope:
    """Stage 3: list the input (``NoInputError`` when empty) and plan the increment, if any."""
    listing = list_input(spark, config.input_uri, config.split_names)
    # The files' identities are read by every join of an increment or a collection's sync
    # (several per run, and per chunk) and by inventory/: one scan of the input, not one each.
    listing = replace(listing, scanned=listing.scanned.cache())
    if previous is None:
        return Scope(listing, None, config.input_uri)
    increment = plan_increment(listing, previous, read_new_files(config.split_names))
    return Scope(listing, increment, config.input_uri)


@dataclass(frozen=True)
class Precision:
    """The model arithmetic the run uses: for int8, the quantized IR that passed the gate
    (``model``) and the manifest's record of it; for f32 both are None (the model source builds
    the workers' model as it always does)."""

    precision: str
    model: OpenVinoModel | None
    quantization: QuantizationSummary | None

    @property
    def detail(self) -> str:
        record = self.quantization
        if record is None:
            return f"{self.precision}: no quantization"
        return (
            f"int8 passed the quality gate on {record.gate_images} images (calibrated on "
            f"{record.calibration_images}): cosine to f32 mean {record.mean_cosine:.4f}, worst "
            f"{record.worst_cosine:.4f}"
            + (f", probe agreement {record.probe_agreement:.4f}" if record.probe_agreement else "")
        )


def choose_precision(config: JobConfig, weights: LoadedWeights, scope: Scope) -> Precision:
    """Stage: ``--precision int8`` converts the model, quantizes it on a seeded sample of the
    input and keeps it only if the quality gate accepts it (``quantize.checked_int8_model``);
    f32 does nothing here.

    Raises:
        UsageError: int8 with an engine other than openvino, or with orb features.
        QualityGateError: (exit 8) the gate refused the int8 model; nothing was written.
    """
    if config.precision == F32:
        return Precision(F32, None, None)
    if config.engine != OPENVINO or config.extractor == ORB:
        raise UsageError(f"--precision {INT8} needs --engine {OPENVINO} and the CNN extractor")
    f32 = openvino_model(weights, config.image_size, converted_models(config))
    threads = os.cpu_count() or 1
    model, record = checked_int8_model(
        f32, scope.listing.images, config.seed, config.image_size, threads
    )
    return Precision(INT8, model, record)


def start_workers(spark: SparkSession, featurize: Callable[[Column], Column]) -> int:
    """Load the engine and build the model in every Python worker before featurizing.

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


@dataclass(frozen=True)
class Featurizer:
    """The featurize UDF (``featurize.make_featurize_udf``, or ``orb.make_orb_udf``), its
    workers started, the accumulator counting the rows it is given, and ``width``: the values
    of one feature vector (1280, or the orb vocabulary's size)."""

    udf: Callable[[Column], Column]
    rows_seen: Accumulator[int]
    engine: str
    warmed: int
    width: int

    @property
    def detail(self) -> str:
        if self.engine == ORB:
            return f"orb: {self.width} visual words fitted and broadcast, workers started"
        return f"{self.engine} model loaded in the Python workers ({self.warmed} tasks)"


def start_featurizer(
    spark: SparkSession,
    config: JobConfig,
    model: ModelSource,
    weights: LoadedWeights,
    images: DataFrame,
    precision: Precision,
) -> Featurizer:
    """Stage 4: build what the workers run, broadcast it and start every worker with it: the
    model (``model.predictor_factory``: the openvino engine converts it here; or the int8 IR
    ``precision`` holds), or for orb features the visual vocabulary, fitted on a seeded sample
    of ``images``."""
    rows_seen = spark.sparkContext.accumulator(0)
    broadcast = spark.sparkContext.broadcast
    if config.extractor == ORB:
        words = fit_vocabulary(images, config.image_size, config.seed)
        udf = make_orb_udf(broadcast(words), config.image_size, rows_seen)
        return Featurizer(udf, rows_seen, ORB, start_workers(spark, udf), len(words))
    if precision.model is not None:
        factory: PredictorFactory = OpenVinoFactory(
            broadcast(precision.model), config.model_threads
        )
    else:
        factory = model.predictor_factory(config, weights, broadcast)
    udf = make_featurize_udf(factory, config.image_size, config.batch_size, rows_seen)
    engine = f"{config.engine} {precision.precision}"
    return Featurizer(udf, rows_seen, engine, start_workers(spark, udf), FEATURE_DIM)


@dataclass(frozen=True)
class Featurized:
    """``images``: the rows the model was given in the featurize stage; ``width``: the values
    of each feature vector."""

    images: int
    width: int


def featurize_to_staging(images: DataFrame, featurizer: Featurizer, staging: str) -> Featurized:
    """Stage 5: run the model once per image of ``images`` into the staging Parquet."""
    before = featurizer.rows_seen.value
    write_parquet(images.transform(featurize_images(featurizer.udf)), staging)
    return Featurized(featurizer.rows_seen.value - before, featurizer.width)


@dataclass(frozen=True)
class Accounted:
    """What became of every listed file (``counts``), once ``features/`` and ``errors/`` hold
    it; ``incremental``: whether some outcomes were reused."""

    counts: Counts
    incremental: bool

    @property
    def detail(self) -> str:
        counts = self.counts
        text = f"{counts.featurized} featurized, {counts.errors} errors"
        if self.incremental:
            text += f" ({counts.reused} reused, {counts.removed} removed)"
        return text


def write_features_and_errors(
    spark: SparkSession, config: JobConfig, layout: RunLayout, scope: Scope, featurized: Featurized
) -> Accounted:
    """Stage 6: every listed file gets its outcome, then ``features/``, ``errors/`` and
    ``inventory/`` are written and counted (``accounting.count_outcomes``).

    Files the scan skipped become error rows of the staging (``accounting.add_skipped``); an
    incremental run adds the outcomes it reused. ``inventory/`` records each scanned file's
    identity for the next incremental run.
    """
    listing, increment = scope.listing, scope.increment
    accounted = spark.read.parquet(layout.staging).select(PATH)
    if increment is not None:
        accounted = accounted.unionByName(increment.unchanged)
    length = lambda path: file_length(spark, path)  # noqa: E731
    add_skipped(
        listing.files, accounted, layout.staging, length, config.split_names, listing.hidden
    )
    staged_rows = spark.read.parquet(layout.staging)
    features = staged_rows.transform(successes, featurized.width)
    errors = staged_rows.transform(failures)
    if increment is not None:
        features = features.unionByName(increment.reused_features)
        errors = errors.unionByName(increment.reused_errors)
    write_parquet(features, layout.features)
    write_parquet(errors, layout.errors)
    write_parquet(listing.scanned, layout.inventory)
    counts = count_outcomes(
        spark.read.parquet(layout.features),
        spark.read.parquet(layout.errors),
        listing.count,
        reused=increment.unchanged if increment is not None else None,
        removed=increment.removed if increment is not None else None,
        model_runs=featurized.images,
    )
    return Accounted(counts, increment is not None)


def check_error_fraction(counts: Counts, limit: float, layout: RunLayout) -> None:
    """``TooManyBadImagesError`` when more than ``limit`` of the files failed."""
    fraction = counts.errors / counts.files_seen
    if fraction > limit:
        raise TooManyBadImagesError(
            f"{counts.errors} of {counts.files_seen} images ({fraction:.1%}) could not be "
            f"featurized, above --max-error-fraction {limit:.1%}; see {layout.errors}"
        )


@dataclass(frozen=True)
class Reduced:
    """The scaler + PCA the run projects with: fitted here, or ``loaded_from`` a model run."""

    reduction: Reduction
    loaded_from: str | None

    @property
    def detail(self) -> str:
        k = self.reduction.k
        if self.loaded_from is not None:
            return f"k = {k}, loaded from {self.loaded_from} (no refit)"
        kept = self.reduction.achieved_variance
        return f"k = {k}" + (f", {kept:.4f} of variance kept" if kept is not None else "")


def fit_or_load(
    spark: SparkSession,
    config: JobConfig,
    layout: RunLayout,
    model_run: ModelRun | None,
    width: int,
    collection: CollectionUpdate | None = None,
) -> Reduced:
    """Stage 7: fit scaler + PCA on ``features/`` (``width`` values a row) and save them as
    ``model/``; or, for ``project``, take the model run's as they are; or, with ``--table``,
    save the model the collection's update chose (``collection.update_collection``: fitted
    from its moments, or its current one).

    Raises:
        UsageError: ``--k`` is above ``width`` (orb features have fewer than MobileNetV2's).
    """
    if model_run is not None:
        return Reduced(model_run.reduction, model_run.uri)
    if config.k is not None and config.k > width:
        raise UsageError(
            f"--k {config.k} is above the {width} values of {config.extractor} features"
        )
    if collection is not None:
        reduction = collection.reduction
    else:
        features = spark.read.parquet(layout.features)
        reduction = fit_reduction(features, config.variance, config.k, dim=width)
    export_pipeline_model(spark, reduction).write().overwrite().save(layout.model)
    return Reduced(reduction, None)


@dataclass(frozen=True)
class Projected:
    """``images``: the rows written to ``pca/``."""

    images: int


def write_projection(
    spark: SparkSession, layout: RunLayout, reduction: Reduction, featurized: int
) -> Projected:
    """Stage 8: project ``features/`` with ``reduction`` into ``pca/``."""
    features = spark.read.parquet(layout.features)
    write_parquet(features.transform(project(reduction)), layout.pca)
    return Projected(featurized)


def probe_or_skip(spark: SparkSession, plan: RunPlan, seed: int) -> ProbeSummary:
    """Stage 9: the linear probe on ``pca/`` (``probe.run_probe``), or why it was skipped."""
    if plan.probe_skipped is not None:
        return ProbeSummary(status="skipped", reason=plan.probe_skipped)
    return run_probe(spark.read.parquet(plan.layout.pca), seed)


def update_table(
    spark: SparkSession,
    config: JobConfig,
    table: CollectionTable,
    staging: str,
    featurizer: Featurizer,
    sources: Sources,
    scope: Scope,
) -> tuple[Featurized, CollectionUpdate]:
    """Stage 5 with ``--table``: bring the collection up to date (``collection.py``): delete
    the rows of vanished and changed files, run the model on the new and changed ones in
    committed chunks (each in its own staging Parquet under ``staging``), fit or not by
    ``--refit``."""
    provenance = Provenance(
        sources.weights.sha256, config.engine, config.precision, config.extractor, config.image_size
    )
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    chunks = staged_chunks(
        featurizer.udf,
        staging,
        scope.listing,
        provenance,
        run_id,
        lambda path: file_length(spark, path),
        config.split_names,
    )
    policy = FitPolicy(Refit(config.refit), config.variance, config.k, config.chunk_images)
    before = featurizer.rows_seen.value
    update = update_collection(spark, table, provenance, scope.listing, chunks, policy, run_id)
    return Featurized(featurizer.rows_seen.value - before, featurizer.width), update


def account_collection(
    spark: SparkSession,
    table: CollectionTable,
    layout: RunLayout,
    update: CollectionUpdate,
    listed: int,
    images: int,
) -> Accounted:
    """Stage 6 with ``--table``: ``features/`` (what the run projects), ``errors/`` and the
    counts of the collection against the listing (``collection.write_collection_parts``)."""
    counts = write_collection_parts(spark, table, layout, update, listed, images)
    return Accounted(counts, False)
