"""The job's configuration: one frozen dataclass, built from the command line by ``cli.py``.

Every tunable the job reads lives here, with its default and the reason for it, so that no stage
hides a literal of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

# MobileNetV2 (alpha 1.0) global-average-pooled output width.
FEATURE_DIM = 1280

# Read partitioning (also in conf/emr-configurations.json; a test keeps them equal). Spark packs
# files into read partitions counting each file as its size plus an "open cost" (4 MB by default,
# which makes one task per ~30 five-kilobyte JPEGs). A 64 KB open cost and an 8 MB cap give
# tasks of ~120 Fruits-360 images (~4 s of model time): per-task overhead is negligible and the
# last wave of tasks leaves cores idle for seconds, not for a whole large task. Images are never
# repartitioned, so their bytes are never shuffled.
FILE_OPEN_COST_BYTES = 64 * 1024
MAX_PARTITION_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class JobConfig:
    """What one run of the job does. Built by ``cli.parse_job_args``; see ``--help`` for each."""

    input_uri: str
    output_uri: str
    variance: float = 0.95
    k: int | None = None
    weights: str = "imagenet"
    # Expected sha256 of the weights file, checked before loading (and by Keras on download for
    # "imagenet"). None checks nothing: Keras publishes no hash for the official file.
    weights_sha256: str | None = None
    # Inference engine (engines.py). OpenVINO: the fastest measured here, with features within
    # 1e-4 of Keras (tests/test_engines.py), and workers without TensorFlow (README, Performance).
    engine: str = OPENVINO
    # Images per model call. 8 measured fastest here, because a small batch's activations stay
    # in the CPU caches: featurize at 87-93 img/s against 79-83 at 16 (2 cores, N = 2,000).
    batch_size: int = 8
    image_size: int = 224
    master: str | None = None
    overwrite: bool = False
    allowed_regions: tuple[str, ...] = (DEFAULT_REGION,)
    max_error_fraction: float = 0.05
    probe: bool = True
    seed: int = 42
    # Model threads per Python worker, either engine. One per task lets Spark run one task per
    # core without oversubscribing them (see README, Performance).
    model_threads: int = 1
    # Rows per Arrow batch handed to the UDF: bounds a worker's memory (bytes of up to this many
    # files at once) while keeping model batches full.
    arrow_batch_size: int = 256
    # A previous succeeded run whose features and errors are reused for unchanged images (same
    # path, length and modification time), so only new and changed images run the model.
    incremental_from: str | None = None
    # ``fruits-pipeline project``: a finished run whose fitted scaler + PCA (model/) projects the
    # new images, with no refit; its weights must be the ones this run loads.
    model_run: str | None = None
    # Grandparent folder names recognised as the dataset split; anything else gives split = null.
    split_names: tuple[str, ...] = field(default=SPLIT_NAMES)
