"""Reading a finished run back: its manifest, its fitted reduction, its outputs.

Used by incremental runs (``--incremental-from RUN``: reuse RUN's features for unchanged
images) and by ``fruits-pipeline project --model RUN`` (project new images with RUN's scaler +
PCA). Both refuse, before any image is read, a run they cannot trust.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from fruits_pipeline.config import F32, ORB, JobConfig
from fruits_pipeline.errors import NoInputError, UsageError, WeightsError
from fruits_pipeline.jvm import exists
from fruits_pipeline.layout import RunLayout
from fruits_pipeline.manifest import SUCCEEDED, Manifest
from fruits_pipeline.model import LoadedWeights
from fruits_pipeline.reduction import Reduction, import_pipeline_model
from fruits_pipeline.writing import read_text


@dataclass(frozen=True)
class PreviousRun:
    """A succeeded run an incremental run builds on: its manifest and its outputs (lazy)."""

    uri: str
    manifest: Manifest
    inventory: DataFrame
    features: DataFrame
    errors: DataFrame


def read_manifest(spark: SparkSession, run: str) -> Manifest | None:
    """RUN's manifest, or None when RUN holds none."""
    uri = RunLayout(run).manifest
    return Manifest.loads(read_text(spark, uri)) if exists(spark, uri) else None


def _succeeded(spark: SparkSession, run: str, exception: type[Exception], role: str) -> Manifest:
    manifest = read_manifest(spark, run)
    if manifest is None:
        raise exception(f"{role} {run} holds no manifest.json: it is not a run of this job")
    if manifest.status != SUCCEEDED:
        why = f": {manifest.error}" if manifest.error else ""
        raise exception(f"{role} {run} did not succeed (status {manifest.status}{why})")
    return manifest


def load_previous_run(
    spark: SparkSession, config: JobConfig, weights: LoadedWeights
) -> PreviousRun:
    """``config.incremental_from``, checked reusable for this run.

    Raises:
        NoInputError: (exit 3) it did not succeed, predates the inventory, or made its features
            differently (other extractor, weights, image size, engine or precision): then
            none could be reused.
        UsageError: it is this run's own ``--output`` (``--overwrite`` would delete it first),
            or this run extracts ``orb`` features.
    """
    run = config.incremental_from
    assert run is not None
    if run.rstrip("/") == config.output_uri.rstrip("/"):
        raise UsageError("--incremental-from must be another run than --output")
    if config.extractor == ORB:
        raise UsageError(
            "--incremental-from runs extract mobilenet_v2 features only: an orb run fits its "
            "visual vocabulary afresh, so the previous run's histograms would not match it"
        )
    manifest = _succeeded(spark, run, NoInputError, "--incremental-from")
    made = {
        "extractor": (manifest.extractor, config.extractor),
        "weights sha256": (manifest.weights.sha256, weights.sha256),
        "image size": (manifest.config.get("image_size"), config.image_size),
        "engine": (manifest.config.get("engine"), config.engine),
        # Runs made before --precision existed ran f32.
        "precision": (manifest.config.get("precision", F32), config.precision),
    }
    different = [f"{what} {was} (now {now})" for what, (was, now) in made.items() if was != now]
    if different:
        raise NoInputError(
            f"--incremental-from {run} made its features with {', '.join(different)}: none "
            "can be reused; run without --incremental-from"
        )
    layout = RunLayout(run)
    if not exists(spark, layout.inventory):
        raise NoInputError(
            f"--incremental-from {run} has no inventory/ (made by an older version): none of "
            "its files can be matched; run without --incremental-from"
        )
    read = spark.read.parquet
    return PreviousRun(
        uri=run,
        manifest=manifest,
        inventory=read(layout.inventory),
        features=read(layout.features),
        errors=read(layout.errors),
    )


@dataclass(frozen=True)
class ModelRun:
    """The run ``project`` borrows its scaler + PCA from."""

    uri: str
    manifest: Manifest
    reduction: Reduction


def load_model_run(spark: SparkSession, config: JobConfig, weights: LoadedWeights) -> ModelRun:
    """``config.model_run``'s fitted reduction, once its weights are shown to be ours.

    Raises:
        WeightsError: (exit 7) the weights loaded have another sha256 than the run's: its PCA
            was fitted on other features. Both hashes are in the message.
        UsageError: the run did not succeed, or made its features with another extractor, at
            another image size or precision.
    """
    run = config.model_run
    assert run is not None
    manifest = _succeeded(spark, run, UsageError, "--model")
    if manifest.extractor != config.extractor:
        raise UsageError(
            f"--model {run} was fitted on {manifest.extractor} features; project makes "
            f"{config.extractor} features, which its scaler + PCA cannot take"
        )
    if manifest.weights.sha256 != weights.sha256:
        raise WeightsError(
            f"--model {run} was fitted on features of weights with sha256 "
            f"{manifest.weights.sha256}, but {config.weights} has sha256 {weights.sha256}: "
            f"pass --weights {manifest.weights.source} (or the same file)"
        )
    made = {"--image-size": "image_size", "--precision": "precision"}
    for flag, key in made.items():
        was = manifest.config.get(key, F32 if key == "precision" else None)
        if was != getattr(config, key):
            raise UsageError(f"--model {run} made its features with {flag} {was}; pass the same")
    return ModelRun(run, manifest, import_pipeline_model(RunLayout(run).model))
