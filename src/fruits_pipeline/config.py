"""The configuration of each command: frozen dataclasses whose fields carry their own options.

Every tunable the job reads is a field of ``JobConfig`` with its default, the reason for it, and
its command-line option: ``option(...)`` puts the flag, the help text, the ``--help`` section,
the subcommands that take it and its parser in the field's metadata. ``cli.py`` builds every
subcommand's parser from these fields alone, so adding an option is adding one field here.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any
from urllib.parse import urlparse

from fruits_pipeline.schema import SPLIT_NAMES

DEFAULT_REGION = "eu-west-1"

# Regions of AWS located in EU member states. London (eu-west-2) and Zurich (eu-central-2) are
# named "eu-" but are outside the EU, so they are not accepted even when asked for.
EU_REGIONS = frozenset(
    {"eu-west-1", "eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2"}
)

# Inference engines the featurize UDF can run (engines.py).
OPENVINO = "openvino"
TENSORFLOW = "tensorflow"
ENGINES = (OPENVINO, TENSORFLOW)

# Arithmetic of the model in the workers (quantize.py): f32 as converted from Keras, or int8
# quantized on the driver and checked by the quality gate (gate.py).
F32 = "f32"
INT8 = "int8"
PRECISIONS = (F32, INT8)

# Images per model call when --batch-size is not given: the fastest in the job for each engine
# and precision (docs/performance.md, "Worker settings"). An f32 batch of one keeps the model's
# largest activations in the CPU caches; int8 and Keras gain more from fewer, larger calls.
BATCH_SIZES = {(OPENVINO, F32): 1, (OPENVINO, INT8): 8, (TENSORFLOW, F32): 8}

# MobileNetV2 (alpha 1.0) global-average-pooled output width.
FEATURE_DIM = 1280

# Feature extractors (--extractor): the CNN, or ORB descriptors pooled into a bag of visual
# words (orb.py), whose width is its vocabulary's size.
MOBILENET_V2 = "mobilenet_v2"
ORB = "orb"
EXTRACTORS = (MOBILENET_V2, ORB)

# Read partitioning (also in conf/emr-configurations.json; a test keeps them equal). Spark packs
# files into read partitions counting each file as its size plus an "open cost" (4 MB by default,
# which makes one task per ~30 five-kilobyte JPEGs). A 64 KB open cost and an 8 MB cap give
# tasks of ~120 Fruits-360 images: per-task overhead is negligible and the last wave of tasks
# leaves cores idle for seconds, not for a whole large task. Images are never repartitioned, so
# their bytes are never shuffled.
FILE_OPEN_COST_BYTES = 64 * 1024
MAX_PARTITION_BYTES = 8 * 1024 * 1024

# The subcommands (cli.py); each option names those that take it.
RUN = "run"
PROJECT = "project"
REPORT = "report"
JOB_COMMANDS = (RUN, PROJECT)

# The --help sections of the job's options, in the order they are shown.
INPUT_OUTPUT = "input and output"
MODEL = "model"
REDUCTION = "reduction"
BAD_INPUT = "bad input"
PLACEMENT = "placement (GDPR)"
SPARK = "spark"
GROUPS = (INPUT_OUTPUT, MODEL, REDUCTION, BAD_INPUT, PLACEMENT, SPARK)

OPTION = "option"  # the key of a field's metadata that holds its Option


def to_uri(location: str) -> str:
    """A location with a scheme (``s3://``, ``file:``, ``hdfs://``) as is; a bare path as an
    absolute ``file:`` URI (not percent-encoded: Hadoop paths take spaces as they are)."""
    if urlparse(location).scheme:
        return location
    return "file:" + os.path.abspath(location)


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def variance_share(text: str) -> float:
    value = fraction(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("must be above 0 (a share of variance to keep)")
    return value


def sha256_hex(text: str) -> str:
    digest = text.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise argparse.ArgumentTypeError(f"must be 64 hexadecimal digits, got {text!r}")
    return digest


def int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {text}")
        return value

    return parse


def region_list(text: str) -> tuple[str, ...]:
    """``"eu-west-1, eu-central-1"`` -> ``("eu-west-1", "eu-central-1")``."""
    return tuple(region.strip() for region in text.split(",") if region.strip())


@dataclass(frozen=True)
class Option:
    """How one config field is set on the command line.

    ``flags``: the option strings, the first its name (a name without ``-`` is positional);
    ``help``: its ``--help`` text, to which ``(default: ...)`` is added when the default is a
    value worth showing; ``group``: its ``--help`` section; ``commands``: the subcommands that
    take it; ``parse``: text -> value, raising ``argparse.ArgumentTypeError`` (exit 2);
    ``switch``: the value the flag sets when given without a value (a ``store_true`` /
    ``store_false`` flag); ``required``: the subcommands where it must be given.
    """

    flags: tuple[str, ...]
    help: str
    group: str
    commands: tuple[str, ...] = JOB_COMMANDS
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    switch: bool | None = None
    required: tuple[str, ...] = ()


def option(*flags: str, default: Any = MISSING, **settings: Any) -> Any:
    """A dataclass field set by the command-line option ``flags`` (``Option``'s settings)."""
    return field(default=default, metadata={OPTION: Option(flags, **settings)})


def options_of(config_type: type, command: str) -> list[tuple[Field[Any], Option]]:
    """The fields of ``config_type`` (a dataclass) that ``command`` takes, with their options."""
    return [
        (item, item.metadata[OPTION])
        for item in fields(config_type)
        if OPTION in item.metadata and command in item.metadata[OPTION].commands
    ]


@dataclass(frozen=True, kw_only=True)
class JobConfig:
    """What one run of the job does: built by ``cli.parse_job_args``, see ``--help`` for each."""

    # fruits-pipeline project: a finished run whose fitted scaler + PCA (model/) projects the
    # new images, with no refit; its weights must be the ones this run loads.
    model_run: str | None = option(
        "--model",
        default=None,
        group=INPUT_OUTPUT,
        commands=(PROJECT,),
        required=(PROJECT,),
        parse=to_uri,
        metavar="RUN",
        help="a succeeded run (its --output) whose scaler + PCA project the new images; its "
        "weights must be the ones loaded here (else exit 7)",
    )
    # A previous succeeded run whose features and errors are reused for unchanged images (same
    # path, length and modification time), so only new and changed images run the model.
    incremental_from: str | None = option(
        "--incremental-from",
        default=None,
        group=INPUT_OUTPUT,
        commands=(RUN,),
        parse=to_uri,
        metavar="PREVIOUS_RUN",
        help="a succeeded run to build on: images with the same path, length and "
        "modification time reuse its features (or its error); only new and changed images "
        "run the model; scaler + PCA are refitted on all (exit 3 if it cannot be reused)",
    )
    # A collection (table.py): the run brings its Iceberg tables up to date with --input and
    # runs the model only on new and changed images (docs/collection.md).
    table: str | None = option(
        "--table",
        default=None,
        group=INPUT_OUTPUT,
        commands=(RUN,),
        metavar="TABLE",
        help="the collection's Iceberg tables: a folder (s3://, file:, a local path) or "
        "glue:DATABASE.TABLE; only new and changed images run the model, vanished ones are "
        "deleted (exit 9 if it holds another featurizer's features)",
    )
    warehouse: str | None = option(
        "--warehouse",
        default=None,
        group=INPUT_OUTPUT,
        commands=(RUN,),
        metavar="S3_URI",
        help="where a new glue: collection's files go (s3://BUCKET/warehouse)",
    )
    # auto: refit when the new photos drift past drift.py's thresholds (docs/collection.md).
    refit: str = option(
        "--refit",
        default="auto",
        group=REDUCTION,
        commands=(RUN,),
        choices=("auto", "always", "never"),
        help="with --table: refit scaler + PCA on the whole collection when the new photos "
        "drift (auto), on every run (always), or only when there is no model (never)",
    )
    # A chunk is committed to the table before the next starts: what a killed run loses. About
    # three minutes of model time on the default cluster (8 workers at ~100 images/s).
    chunk_images: int = option(
        "--chunk-images",
        default=20_000,
        group=SPARK,
        commands=(RUN,),
        parse=int_between(1, 10**9),
        help="with --table: images per committed chunk of the model pass",
    )
    input_uri: str = option(
        "--input",
        group=INPUT_OUTPUT,
        required=JOB_COMMANDS,
        parse=to_uri,
        help="folder of images: s3://, file:// or a local path",
    )
    output_uri: str = option(
        "--output",
        group=INPUT_OUTPUT,
        required=JOB_COMMANDS,
        parse=to_uri,
        help="where the run is written: s3://, file:// or a local path",
    )
    overwrite: bool = option(
        "--overwrite",
        default=False,
        switch=True,
        group=INPUT_OUTPUT,
        help="replace a previous run in --output (otherwise refused, exit 6)",
    )
    weights: str = option(
        "--weights",
        default="imagenet",
        group=MODEL,
        help="'imagenet' (official Keras file, downloaded on the driver), a local .h5 path, "
        "or an s3:// URI fetched on the driver",
    )
    # Checked before loading (and by Keras on download for "imagenet"). None checks nothing:
    # Keras publishes no hash for the official file.
    weights_sha256: str | None = option(
        "--weights-sha256",
        default=None,
        group=MODEL,
        parse=sha256_hex,
        help="expected sha256 of the weights file: a different file is refused (exit 7); "
        "with 'imagenet', Keras checks the download against it (default: no check)",
    )
    extractor: str = option(
        "--extractor",
        default=MOBILENET_V2,
        group=MODEL,
        commands=(RUN,),
        choices=EXTRACTORS,
        help="features: mobilenet_v2 (the CNN, 1280-d) or orb (OpenCV ORB descriptors pooled "
        "into a 256-word bag of visual words, the vocabulary fitted on a seeded sample of the "
        "run's images; no weights needed)",
    )
    # OpenVINO: the fastest measured here, with features within 1e-4 of Keras
    # (tests/test_engines.py), and workers without TensorFlow (see the performance notes).
    engine: str = option(
        "--engine",
        default=OPENVINO,
        group=MODEL,
        choices=ENGINES,
        help="inference engine in the Python workers: openvino (the driver converts the Keras "
        "model; workers load no TensorFlow) or tensorflow (Keras)",
    )
    # f32 keeps the features within 1e-4 of Keras; int8 is about twice as fast on CPUs with
    # VNNI or AMX, and is used only if the quality gate accepts it on the run's own images.
    precision: str = option(
        "--precision",
        default=F32,
        group=MODEL,
        choices=PRECISIONS,
        help="model arithmetic: f32 (features within 1e-4 of Keras) or int8 (quantized on the "
        "driver with NNCF, calibrated on 300 of the input's photos, used only if the quality "
        "gate accepts it on others, else exit 8; needs --engine openvino)",
    )
    image_size: int = option(
        "--image-size",
        default=224,
        group=MODEL,
        parse=int_between(32, 1024),
        help="model input side in pixels; images are resized to it",
    )
    model_cache: bool = option(
        "--no-model-cache",
        default=True,
        switch=False,
        group=MODEL,
        help="convert the weights again instead of reading the converted model from the cache "
        "of earlier runs ($XDG_CACHE_HOME/fruits-pipeline/openvino; openvino engine only)",
    )
    # None until __post_init__ sets it from BATCH_SIZES: always an int in a built config.
    batch_size: int | None = option(
        "--batch-size",
        default=None,
        group=MODEL,
        parse=int_between(1, 4096),
        help="images per model call inside a task (default: the fastest measured, 1 for "
        "openvino f32, 8 for int8 and for tensorflow)",
    )
    variance: float = option(
        "--variance",
        default=0.95,
        group=REDUCTION,
        commands=(RUN,),
        parse=variance_share,
        help="share of explained variance to keep; k is the smallest that reaches it",
    )
    k: int | None = option(
        "--k",
        default=None,
        group=REDUCTION,
        commands=(RUN,),
        parse=int_between(1, FEATURE_DIM),
        help=f"fixed number of components (1..{FEATURE_DIM}), overrides --variance",
    )
    max_error_fraction: float = option(
        "--max-error-fraction",
        default=0.05,
        group=BAD_INPUT,
        parse=fraction,
        help="fail (exit 4) when more than this share of images cannot be used",
    )
    probe: bool = option(
        "--no-probe",
        default=True,
        switch=False,
        group=BAD_INPUT,
        help="skip the linear probe (on by default: Training -> Test, or a seeded 80/20 "
        "stratified hold-out when the input has no such folders)",
    )
    seed: int = option(
        "--seed",
        default=42,
        group=BAD_INPUT,
        parse=int,
        help="seed for the probe's hold-out split and the --precision int8 sample",
    )
    allowed_regions: tuple[str, ...] = option(
        "--allowed-regions",
        default=(DEFAULT_REGION,),
        group=PLACEMENT,
        parse=region_list,
        help="comma-separated EU regions every S3 bucket must be in; non-EU regions are refused",
    )
    master: str | None = option(
        "--master",
        default=None,
        group=SPARK,
        help="Spark master; default: spark-submit's, else local[*]",
    )
    # One thread per task lets Spark run one task per core without oversubscribing them.
    model_threads: int = option(
        "--model-threads",
        "--tf-threads",
        default=1,
        group=SPARK,
        parse=int_between(1, 64),
        help="model threads per Python worker, either engine (one task per core); "
        "--tf-threads is its former name",
    )
    # Bounds a worker's memory (bytes of up to this many files at once) while keeping model
    # batches full.
    arrow_batch_size: int = option(
        "--arrow-batch-size",
        default=256,
        group=SPARK,
        parse=int_between(1, 100_000),
        help="rows per Arrow batch sent to the model UDF",
    )
    verbose: bool = option(
        "--verbose",
        default=False,
        switch=True,
        group=SPARK,
        help="show Spark's own logging (INFO and up); by default only warnings that ask for "
        "action are shown",
    )
    # Grandparent folder names recognised as the dataset split; anything else gives split = null.
    split_names: tuple[str, ...] = field(default=SPLIT_NAMES)

    def __post_init__(self) -> None:
        # Decided once, here, so the run and its manifest see the batch size actually used.
        if self.batch_size is None:
            batch = BATCH_SIZES.get((self.engine, self.precision), BATCH_SIZES[(TENSORFLOW, F32)])
            object.__setattr__(self, "batch_size", batch)


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """What ``fruits-pipeline report`` draws: built by ``cli``, see ``report --help``."""

    run: str = option(
        "run",
        group=INPUT_OUTPUT,
        commands=(REPORT,),
        metavar="RUN",
        help="the run's --output: a local folder or an s3:// prefix",
    )
    out: str | None = option(
        "--out",
        default=None,
        group=INPUT_OUTPUT,
        commands=(REPORT,),
        help="where to write (default: RUN/report, or ./report)",
    )
    compare: str | None = option(
        "--compare",
        default=None,
        group=INPUT_OUTPUT,
        commands=(REPORT,),
        metavar="OTHER_RUN",
        help="another finished run (local or s3://) put side by side with RUN, for example the "
        "same photos with --extractor orb",
    )
