"""Running the job: the one place that wires the stages together, with Spark and I/O at the edge.

Order matters and is part of the contract:

1. residency guard (boto3, before Spark starts any work);
2. refuse an existing output unless ``--overwrite``; load and check the weights on the driver;
3. list the input (no bytes read); an empty input stops here, nothing written;
4. featurize: the model runs **exactly once per image**, straight into a staging Parquet;
5. split the staging into ``features/`` and ``errors/``; enforce ``--max-error-fraction``;
6. fit scaler + PCA on ``features/`` and save ``model/``; 7. project into ``pca/``;
8. the linear probe (accuracy of a logistic regression on ``pca/``);
9. ``manifest.json`` last: ``"status": "succeeded"`` only once everything above is written.
"""

from __future__ import annotations

import io
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from typing import Any
from urllib.parse import unquote

from PIL import Image
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits_pipeline import __version__
from fruits_pipeline.config import FILE_OPEN_COST_BYTES, MAX_PARTITION_BYTES, JobConfig
from fruits_pipeline.engines import predictor_factory
from fruits_pipeline.errors import NoInputError, OutputExistsError, TooManyBadImagesError
from fruits_pipeline.featurize import (
    RESULT_FIELDS,
    failures,
    featurize_images,
    make_featurize_udf,
    successes,
)
from fruits_pipeline.model import TENSORFLOW_ENV, LoadedWeights, load_weights
from fruits_pipeline.probe import run_probe
from fruits_pipeline.progress import Progress
from fruits_pipeline.reading import read_images, with_label, with_split
from fruits_pipeline.reduction import fit_reduction, project
from fruits_pipeline.residency import check_buckets, validate_allowed_regions
from fruits_pipeline.s3a import find_jars, s3_endpoint, s3a_settings
from fruits_pipeline.storage import is_s3_uri
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

TOTAL_STAGES = 10
# Local runs share their cores between the JVM and the model. The JVM's work here is light
# (read files, write Parquet), but its C2 JIT compiler took 15 % of a core during featurize;
# the C1 compiler alone compiles cheaply and is plenty for this work (README, Performance).
LOCAL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1"
_VERSIONED_PACKAGES = (
    "tensorflow-cpu", "keras", "openvino", "numpy", "pandas", "pyarrow", "pillow", "boto3",
)  # fmt: skip


def launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands Python its gateway through this variable.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_session(config: JobConfig, bucket_regions: dict[str, str]) -> SparkSession:
    """The SparkSession for a run. ``--master`` wins; else spark-submit's; else ``local[*]``.

    A Spark started from here (not by spark-submit) has no S3 connector: when the input or the
    output is on S3 it gets S3A (``s3a.s3a_settings``), the buckets at their own regions.
    """
    builder = (
        SparkSession.builder.appName("fruits-pipeline")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.arrow_batch_size))
        .config("spark.python.worker.reuse", "true")
        .config("spark.speculation", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL", TENSORFLOW_ENV["TF_CPP_MIN_LOG_LEVEL"])
        .config(
            "spark.executorEnv.TF_CPU_ALLOCATOR_USE_BFC", TENSORFLOW_ENV["TF_CPU_ALLOCATOR_USE_BFC"]
        )
        .config("spark.log.level", "WARN")
        .config("spark.sql.files.openCostInBytes", str(FILE_OPEN_COST_BYTES))
        .config("spark.sql.files.maxPartitionBytes", str(MAX_PARTITION_BYTES))
        # toPandas() of the partial scatter matrices (13 MB each, reduction.py) goes through Arrow.
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    master = config.master or (None if launched_by_spark_submit() else "local[*]")
    if master:
        builder = builder.master(master)
    if master and master.startswith("local") and not launched_by_spark_submit():
        # Workers must run this interpreter (the one with TensorFlow and this package), not the
        # python3 on PATH. When Python starts the JVM, PySpark 3.5 takes the workers' Python
        # from PYSPARK_PYTHON only (the spark.pyspark.python conf is read by spark-submit).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.driver.extraJavaOptions", LOCAL_JVM_OPTIONS)
    if not launched_by_spark_submit() and any(
        is_s3_uri(uri) for uri in (config.input_uri, config.output_uri)
    ):
        for key, value in s3a_settings(find_jars(), bucket_regions, s3_endpoint()).items():
            builder = builder.config(key, value)
    return builder.getOrCreate()


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


def as_scan_path(uri: str) -> str:
    """A URI from ``DataFrame.inputFiles()`` written as the ``path`` column writes it.

    ``inputFiles()`` gives ``java.net.URI`` strings: percent-encoded, ``file:///x`` for local
    files. The scan's ``path`` column is Hadoop's ``Path.toString()``: decoded, ``file:/x``.
    """
    decoded = unquote(uri)
    return (
        "file:/" + decoded.removeprefix("file:///") if decoded.startswith("file:///") else decoded
    )


def list_images(spark: SparkSession, config: JobConfig) -> tuple[DataFrame, list[str]]:
    """The images frame ``(path, label, split, content)`` and every matching file's path.

    The path list comes from the driver's file listing, not from scanning: Spark's file scan
    silently drops zero-byte files, so the listing is the only complete account of the input.

    Raises:
        NoInputError: the input does not exist or holds no matching file.
    """
    try:
        images = (
            read_images(spark, config.input_uri)
            .transform(with_label)
            .transform(with_split(config.split_names))
        )
        listed = sorted(as_scan_path(uri) for uri in images.inputFiles())
    except AnalysisException as error:
        raise NoInputError(f"cannot read input {config.input_uri}: {error}") from error
    if not listed:
        raise NoInputError(
            f"no file matching *.jpg or *.jpeg (any case) under {config.input_uri}: nothing to do"
        )
    return images.select("path", "label", "split", "content"), listed


def skipped_by_scan(
    spark: SparkSession, listed: list[str], returned: set[str], split_names: tuple[str, ...]
) -> DataFrame:
    """Error rows, shaped like the staging output, for listed files the scan never returned.

    Zero-byte files are the known case (``empty_file``); anything else is ``unreadable``.
    """
    rows = []
    for path in listed:
        if path not in returned:
            kind, message = (
                ("empty_file", "the file is empty (0 bytes); Spark's file scan skips such files")
                if file_length(spark, path) == 0
                else ("unreadable", "listed in the input but not returned by the file scan")
            )
            rows.append((path, (None, kind, message)))
    schema = f"path string, result struct<{RESULT_FIELDS}>"
    return (
        spark.createDataFrame(rows, schema)
        .transform(with_label)
        .transform(with_split(split_names))
        .select("path", "label", "split", "result")
    )


def warm_up_workers(spark: SparkSession, featurize: Any) -> int:
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
    frame = spark.createDataFrame(rows, "content binary")
    results = frame.select(featurize(F.col("content")).alias("result")).collect()
    return sum(1 for row in results if row.result.error_kind is None)


def outcomes(staged: DataFrame) -> list[tuple[str, str, bool]]:
    """``(path, label, featurized)`` for every staged row, collected in one small job."""
    rows = staged.select(
        "path", "label", F.col("result.error_kind").isNull().alias("featurized")
    ).collect()
    return [(row.path, row.label, row.featurized) for row in rows]


def count_by_label(rows: list[tuple[str, str, bool]]) -> dict[str, dict[str, int]]:
    """``{label: {"files_seen", "featurized", "errors"}}`` from ``(path, label, featurized)``."""
    counts: dict[str, dict[str, int]] = {}
    for _, label, featurized in rows:
        entry = counts.setdefault(label, {"files_seen": 0, "featurized": 0, "errors": 0})
        entry["files_seen"] += 1
        entry["featurized" if featurized else "errors"] += 1
    return dict(sorted(counts.items()))


def run_job(config: JobConfig, progress: Progress) -> dict[str, Any]:
    """Run the whole job for ``config``; return the manifest written (status succeeded).

    Raises a ``PipelineError`` subclass for every refusal or data problem (its exit code is the
    CLI's). A failure after outputs were started leaves ``manifest.json`` with
    ``"status": "failed"`` and the reason; a refusal before that writes nothing.
    """
    progress.total_stages = TOTAL_STAGES
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with progress.stage("residency check"):
        allowed = validate_allowed_regions(config.allowed_regions)
        buckets = check_buckets([config.input_uri, config.output_uri, config.weights], allowed)
    spark = build_session(config, buckets)
    previous = existing_outputs(spark, config.output_uri)
    if previous and not config.overwrite:
        raise OutputExistsError(
            f"{config.output_uri} already holds a run ({', '.join(previous)}); "
            "pass --overwrite to replace it"
        )
    with progress.stage("load weights") as info:
        weights = load_weights(config.weights, config.image_size)
        info["detail"] = f"{config.weights}, sha256 {weights.sha256[:12]}..."
    with progress.stage("list input") as info:
        images, listed = list_images(spark, config)
        read_partitions = images.rdd.getNumPartitions()  # planning only: no file is read
        info["detail"] = (
            f"{len(listed)} files under {config.input_uri}, {read_partitions} read partitions"
        )

    manifest: dict[str, Any] = {
        "status": "running",
        "started_at": started_at,
        "input": config.input_uri,
        "output": config.output_uri,
        "config": asdict(config),
        "weights": {"source": weights.source, "sha256": weights.sha256},
        "read_partitions": read_partitions,
        "residency": {"allowed_regions": list(allowed), "buckets": buckets},
        "versions": library_versions(),
    }
    if previous:
        clear_outputs(spark, config.output_uri)
    try:
        _featurize_and_reduce(spark, config, images, listed, weights, manifest, progress)
    except Exception as error:
        manifest.update(
            status="failed",
            error=f"{type(error).__name__}: {error}",
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            timings_s=dict(progress.timings),
        )
        write_manifest(spark, config.output_uri, manifest)
        raise
    finally:
        delete(spark, child_uri(config.output_uri, STAGING))
    return manifest


def _featurize_and_reduce(
    spark: SparkSession,
    config: JobConfig,
    images: DataFrame,
    listed: list[str],
    weights: LoadedWeights,
    manifest: dict[str, Any],
    progress: Progress,
) -> None:
    output = config.output_uri
    staging_uri = child_uri(output, STAGING)
    factory = predictor_factory(
        config.engine,
        weights,
        config.image_size,
        config.model_threads,
        spark.sparkContext.broadcast,
    )
    udf = make_featurize_udf(factory, config.image_size, config.batch_size)
    with progress.stage("start workers") as info:
        warmed = warm_up_workers(spark, udf)
        info["detail"] = f"{config.engine} model loaded in the Python workers ({warmed} tasks)"
    job_start = time.perf_counter()
    with progress.stage("featurize") as info:
        with progress.watch_tasks(spark.sparkContext):
            write_parquet(images.transform(featurize_images(udf)), staging_uri)
        info["images"] = len(listed)
    featurize_seconds = progress.timings["featurize"]

    with progress.stage("account for every file and write features, errors") as info:
        scanned = outcomes(spark.read.parquet(staging_uri))
        skipped = skipped_by_scan(
            spark, listed, {path for path, _, _ in scanned}, config.split_names
        )
        skipped_rows = [(row.path, row.label, False) for row in skipped.collect()]
        if skipped_rows:
            skipped.write.mode("append").parquet(staging_uri)
        staged = spark.read.parquet(staging_uri)
        per_label = count_by_label(scanned + skipped_rows)
        files_seen = sum(counts["files_seen"] for counts in per_label.values())
        if files_seen != len(listed):  # the invariant the whole errors/ design rests on
            raise RuntimeError(f"accounted for {files_seen} files but {len(listed)} were listed")
        write_parquet(staged.transform(successes), child_uri(output, "features"))
        write_parquet(staged.transform(failures), child_uri(output, "errors"))
        featurized = sum(counts["featurized"] for counts in per_label.values())
        errors = files_seen - featurized
        info["detail"] = f"{featurized} featurized, {errors} errors"
    manifest["counts"] = {
        "files_seen": files_seen,
        "featurized": featurized,
        "errors": errors,
        "per_label": per_label,
    }
    manifest["images_per_label"] = {label: c["featurized"] for label, c in per_label.items()}
    error_fraction = errors / files_seen
    if error_fraction > config.max_error_fraction:
        raise TooManyBadImagesError(
            f"{errors} of {files_seen} images ({error_fraction:.1%}) could not be featurized, "
            f"above --max-error-fraction {config.max_error_fraction:.1%}; see "
            f"{child_uri(output, 'errors')}"
        )

    features = spark.read.parquet(child_uri(output, "features"))
    with progress.stage("fit scaler + PCA") as info:
        reduction = fit_reduction(features, config.variance, config.k)
        reduction.model.write().overwrite().save(child_uri(output, "model"))
        info["detail"] = f"k = {reduction.k}" + (
            f", {reduction.achieved_variance:.4f} of variance kept"
            if reduction.achieved_variance is not None
            else ""
        )
    with progress.stage("project and write pca") as info:
        write_parquet(features.transform(project(reduction.model)), child_uri(output, "pca"))
        info["images"] = featurized
    with progress.stage("linear probe") as info:
        if config.probe:
            probe = run_probe(spark.read.parquet(child_uri(output, "pca")), config.seed)
        else:
            probe = {"status": "skipped", "reason": "--no-probe"}
        info["detail"] = (
            f"test accuracy {probe['accuracy']:.4f} ({probe['split']})"
            if probe["status"] == "succeeded"
            else probe["reason"]
        )

    with progress.stage("write manifest"):
        job_seconds = time.perf_counter() - job_start
        manifest.update(
            status="succeeded",
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            reduction={
                "k": reduction.k,
                "k_rule": "fixed (--k)" if config.k is not None else "variance",
                "target_variance": config.variance,
                "achieved_variance": reduction.achieved_variance,
                "cumulative_variance": reduction.cumulative_variance,
                "note": reduction.note,
            },
            probe=probe,
            timings_s=dict(progress.timings),
            throughput={
                "featurize_images_per_s": round(files_seen / featurize_seconds, 2),
                "job_seconds_after_startup": round(job_seconds, 3),
                "job_images_per_s": round(files_seen / job_seconds, 2),
            },
            outputs={
                name: child_uri(output, name) for name in ("features", "errors", "pca", "model")
            },
        )
        write_manifest(spark, output, manifest)
