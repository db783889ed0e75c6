"""The job's configuration: one frozen dataclass, built from the command line by ``cli.py``.

Every tunable the job reads lives here, with its default and the reason for it, so that no stage
hides a literal of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_REGION = "eu-west-1"

# Regions of AWS located in EU member states. London (eu-west-2) and Zurich (eu-central-2) are
# named "eu-" but are outside the EU, so they are not accepted even when asked for.
EU_REGIONS = frozenset(
    {"eu-west-1", "eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2"}
)

# MobileNetV2 (alpha 1.0) global-average-pooled output width.
FEATURE_DIM = 1280


@dataclass(frozen=True)
class JobConfig:
    """What one run of the job does. Built by ``cli.parse_job_args``; see ``--help`` for each."""

    input_uri: str
    output_uri: str
    variance: float = 0.95
    k: int | None = None
    weights: str = "imagenet"
    batch_size: int = 32
    image_size: int = 224
    master: str | None = None
    overwrite: bool = False
    allowed_regions: tuple[str, ...] = (DEFAULT_REGION,)
    max_error_fraction: float = 0.05
    probe: bool = True
    seed: int = 42
    # Model threads per Python worker. One per task lets Spark run one task per core without
    # oversubscribing them (see README, Performance).
    tf_threads: int = 1
    # Rows per Arrow batch handed to the UDF: bounds a worker's memory (bytes of up to this many
    # files at once) while keeping model batches full.
    arrow_batch_size: int = 256
    # Grandparent folder names recognised as the dataset split; anything else gives split = null.
    split_names: tuple[str, ...] = field(default=("Training", "Test"))
