"""The command line: ``fruits-pipeline [options]`` runs the job, ``fruits-pipeline report RUN``
writes the HTML report. Parsing builds a ``JobConfig``; every exit goes through ``ExitCode``."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from fruits_pipeline import __version__
from fruits_pipeline.config import DEFAULT_REGION, ENGINES, FEATURE_DIM, JobConfig
from fruits_pipeline.errors import EXIT_CODE_HELP, ExitCode, PipelineError
from fruits_pipeline.manifest import Manifest
from fruits_pipeline.progress import Progress

DESCRIPTION = """\
Turn a folder (or S3 prefix) of fruit photos into features a classifier can learn from:
every *.jpg / *.jpeg below --input is labelled by its parent folder, featurized with
MobileNetV2 (1280-d, ImageNet weights broadcast from the driver), standardised and reduced by
PCA to the smallest k that keeps --variance of the variance, and written as Parquet. A linear
probe (logistic regression on the Training split, scored on Test) checks the features.

outputs under --output:
  features/      path, label, split, features (array<float>[1280])
  errors/        path, label, split, error_kind, error_message: images that could not be used
  pca/           path, label, split, pca_features (array<float>[k])
  model/         the fitted StandardScaler + PCA (pyspark.ml.PipelineModel.load)
  inventory/     path, length, modificationTime of every file: what --incremental-from compares
  manifest.json  counts per label, k and the variance curve, probe accuracy, timings, weights
                 sha256, versions;
                 written last, "status": "succeeded" only when everything else was written

also: fruits-pipeline project --model RUN ...   new images through RUN's scaler + PCA
      fruits-pipeline report RUN                 writes report.html for a finished run"""

PROJECT_DESCRIPTION = """\
Project new photos with a finished run's reduction, no refit: every *.jpg / *.jpeg below
--input is labelled by its parent folder, featurized with the weights RUN used (checked by
sha256, else exit 7), and projected with RUN's fitted StandardScaler + PCA (RUN/model).

outputs under --output: features/, errors/, pca/ (k of RUN), inventory/ and manifest.json
(which names RUN, its k and the weights' sha256); no model/ (it is RUN's)."""

PROJECT_EXAMPLES = """examples:
  fruits-pipeline project --model s3://my-eu-bucket/runs/2026-11-21/ \\
      --input s3://my-eu-bucket/uploads/2026-11-22/ --output s3://my-eu-bucket/scored/2026-11-22/ \\
      --weights s3://my-eu-bucket/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"""

EXAMPLES = """examples:
  fruits-pipeline --input sample/fruits-360 --output runs/sample \\
      --weights models/mobilenet_v2_1.0_224_no_top_imagenet_from_tflite.weights.h5
  spark-submit --py-files fruits_pipeline.zip main.py \\
      --input s3://my-eu-bucket/fruits-360/ --output s3://my-eu-bucket/runs/2026-11-21/"""


def to_uri(location: str) -> str:
    """A location with a scheme (``s3://``, ``file:``, ``hdfs://``) as is; a bare path as an
    absolute ``file:`` URI (not percent-encoded: Hadoop paths take spaces as they are)."""
    if urlparse(location).scheme:
        return location
    return "file:" + os.path.abspath(location)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _variance(text: str) -> float:
    value = _fraction(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("must be above 0 (a share of variance to keep)")
    return value


def _sha256(text: str) -> str:
    digest = text.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise argparse.ArgumentTypeError(f"must be 64 hexadecimal digits, got {text!r}")
    return digest


def _int_between(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {text}")
        return value

    return parse


def build_parser(project: bool = False) -> argparse.ArgumentParser:
    """The job's parser; ``project``: ``fruits-pipeline project``'s (``--model`` instead of the
    reduction and incremental options)."""
    defaults = JobConfig(input_uri="", output_uri="")
    parser = argparse.ArgumentParser(
        prog="fruits-pipeline project" if project else "fruits-pipeline",
        description=PROJECT_DESCRIPTION if project else DESCRIPTION,
        epilog=(PROJECT_EXAMPLES if project else EXAMPLES) + "\n\n" + EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    io = parser.add_argument_group("input and output")
    if project:
        io.add_argument(
            "--model",
            required=True,
            help="a succeeded run (its --output) whose scaler + PCA project the new images; "
            "its weights must be the ones loaded here (else exit 7)",
        )
    else:
        io.add_argument(
            "--incremental-from",
            default=None,
            metavar="PREVIOUS_RUN",
            help="a succeeded run to build on: images with the same path, length and "
            "modification time reuse its features (or its error); only new and changed images "
            "run the model; scaler + PCA are refitted on all (exit 3 if it cannot be reused)",
        )
    io.add_argument(
        "--input", required=True, help="folder of images: s3://, file:// or a local path"
    )
    io.add_argument(
        "--output", required=True, help="where the run is written: s3://, file:// or a local path"
    )
    io.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous run in --output (otherwise refused, exit 6)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--weights",
        default=defaults.weights,
        help="'imagenet' (official Keras file, downloaded on the driver), a local .h5 path, "
        "or an s3:// URI fetched on the driver (default: %(default)s)",
    )
    model.add_argument(
        "--weights-sha256",
        type=_sha256,
        default=None,
        help="expected sha256 of the weights file: a different file is refused (exit 7); "
        "with 'imagenet', Keras checks the download against it (default: no check)",
    )
    model.add_argument(
        "--engine",
        choices=ENGINES,
        default=defaults.engine,
        help="inference engine in the Python workers: openvino (the driver converts the Keras "
        "model; workers load no TensorFlow) or tensorflow (Keras) (default: %(default)s)",
    )
    model.add_argument(
        "--image-size",
        type=_int_between(32, 1024),
        default=defaults.image_size,
        help="model input side in pixels; images are resized to it (default: %(default)s)",
    )
    model.add_argument(
        "--batch-size",
        type=_int_between(1, 4096),
        default=defaults.batch_size,
        help="images per model call inside a task (default: %(default)s)",
    )
    if not project:  # a projection uses the --model run's reduction as it is
        reduce = parser.add_argument_group("reduction")
        reduce.add_argument(
            "--variance",
            type=_variance,
            default=defaults.variance,
            help="share of explained variance to keep; k is the smallest that reaches it "
            "(default: %(default)s)",
        )
        reduce.add_argument(
            "--k",
            type=_int_between(1, FEATURE_DIM),
            default=None,
            help=f"fixed number of components (1..{FEATURE_DIM}), overrides --variance",
        )
    quality = parser.add_argument_group("bad input")
    quality.add_argument(
        "--max-error-fraction",
        type=_fraction,
        default=defaults.max_error_fraction,
        help="fail (exit 4) when more than this share of images cannot be used "
        "(default: %(default)s)",
    )
    quality.add_argument(
        "--no-probe",
        dest="probe",
        action="store_false",
        help="skip the linear probe (on by default: Training -> Test, or a seeded 80/20 "
        "stratified hold-out when the input has no such folders)",
    )
    quality.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed for the probe's hold-out split (default: %(default)s)",
    )
    placement = parser.add_argument_group("placement (GDPR)")
    placement.add_argument(
        "--allowed-regions",
        default=DEFAULT_REGION,
        help="comma-separated EU regions every S3 bucket must be in (default: %(default)s); "
        "non-EU regions are refused",
    )
    spark = parser.add_argument_group("spark")
    spark.add_argument(
        "--master", default=None, help="Spark master; default: spark-submit's, else local[*]"
    )
    spark.add_argument(
        "--model-threads",
        "--tf-threads",
        type=_int_between(1, 64),
        default=defaults.model_threads,
        help="model threads per Python worker, either engine (default: %(default)s: one task "
        "per core); --tf-threads is its former name",
    )
    spark.add_argument(
        "--arrow-batch-size",
        type=_int_between(1, 100_000),
        default=defaults.arrow_batch_size,
        help="rows per Arrow batch sent to the model UDF (default: %(default)s)",
    )
    return parser


def parse_job_args(argv: Sequence[str], project: bool = False) -> JobConfig:
    """Parse the job's arguments into a ``JobConfig`` (argparse exits 2 on bad arguments)."""
    args = build_parser(project).parse_args(argv)
    return JobConfig(
        model_run=to_uri(args.model) if project else None,
        incremental_from=None
        if project or args.incremental_from is None
        else to_uri(args.incremental_from),
        input_uri=to_uri(args.input),
        output_uri=to_uri(args.output),
        variance=getattr(args, "variance", JobConfig.variance),
        k=getattr(args, "k", None),
        weights=args.weights,
        weights_sha256=args.weights_sha256,
        engine=args.engine,
        batch_size=args.batch_size,
        image_size=args.image_size,
        master=args.master,
        overwrite=args.overwrite,
        allowed_regions=tuple(r.strip() for r in args.allowed_regions.split(",") if r.strip()),
        max_error_fraction=args.max_error_fraction,
        probe=args.probe,
        seed=args.seed,
        model_threads=args.model_threads,
        arrow_batch_size=args.arrow_batch_size,
    )


def summary_lines(manifest: Manifest) -> list[str]:
    """The run summary printed at the end of a succeeded run."""
    counts, reduction, throughput = manifest.counts, manifest.reduction, manifest.throughput
    assert counts and reduction and throughput, "a succeeded run has every section"
    lines = [
        f"run {manifest.status}: {manifest.output}",
        f"  images     {counts.files_seen} seen, {counts.featurized} featurized, "
        f"{counts.errors} errors",
        "  labels     " + ", ".join(f"{k} {v}" for k, v in counts.images_per_label.items()),
        f"  k          {reduction.k} ({reduction.k_rule}; "
        f"target {reduction.target_variance}, kept {reduction.achieved_variance})",
        f"  speed      featurize {throughput.featurize_images_per_s} img/s, whole job "
        f"{throughput.job_images_per_s} img/s after start-up",
        f"  weights    {manifest.weights.source} (sha256 {manifest.weights.sha256})",
    ]
    probe = manifest.probe
    if probe and probe.accuracy is not None and probe.macro_f1 is not None:
        lines.append(f"  probe      accuracy {probe.accuracy:.4f}, macro F1 {probe.macro_f1:.4f}")
    return lines


def run(argv: Sequence[str], project: bool = False) -> int:
    config = parse_job_args(argv, project)
    progress = Progress()
    # Spark and the model load only for a real run, not for --help.
    from fruits_pipeline.job import run_job
    from fruits_pipeline.session import RunSession

    session = RunSession(config)
    try:
        manifest = run_job(config, progress, session)
    except PipelineError as error:
        print(f"fruits-pipeline: error: {error}", file=sys.stderr)
        return int(error.exit_code)
    except Exception:
        traceback.print_exc()
        print("fruits-pipeline: error: the run failed unexpectedly (see above)", file=sys.stderr)
        return int(ExitCode.FAILURE)
    finally:
        session.close()
    print("\n".join(summary_lines(manifest)), flush=True)
    return int(ExitCode.OK)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry: dispatch to ``report``, ``project`` or run the job; return the
    exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["report"]:
        from fruits_pipeline.report import main as report_main

        return report_main(arguments[1:])
    if arguments[:1] == ["project"]:
        return run(arguments[1:], project=True)
    return run(arguments)
