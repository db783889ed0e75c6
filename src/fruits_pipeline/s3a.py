"""Spark on S3 outside EMR: the S3A connector's jars and settings for a laptop, the tests and CI.

On EMR 7.10+ ``s3://`` is served by the built-in S3A connector and nothing here is used. Off
EMR, Spark ships without it: ``scripts/fetch_s3a_jars.sh`` caches ``hadoop-aws`` and the AWS SDK
bundle it was built against, and ``s3a_settings`` returns the Spark configuration that puts them
on the driver's and executors' class paths and serves ``s3://`` (and ``s3a://``) with S3A, so a
local run reads and writes the very URIs an EMR step uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from fruits_pipeline.errors import UsageError

# Exactly what scripts/fetch_s3a_jars.sh fetches (and checks by sha256).
S3A_JARS = ("hadoop-aws-3.3.1.jar", "aws-java-sdk-bundle-1.11.901.jar")
JARS_ENV = "FRUITS_PIPELINE_S3A_JARS"
S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
# The AWS SDK's own default chain: environment variables (AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN),
# AWS_PROFILE and ~/.aws/credentials, web identity, container and instance roles. S3A's default
# chain skips profiles, which is how most laptops hold their credentials.
CREDENTIALS_CHAIN = "com.amazonaws.auth.DefaultAWSCredentialsProviderChain"


def jars_dir() -> Path:
    """Where ``scripts/fetch_s3a_jars.sh`` keeps the jars: ``$FRUITS_PIPELINE_S3A_JARS``, else
    ``${XDG_CACHE_HOME:-~/.cache}/fruits-pipeline/s3a-jars`` (the script's default too)."""
    if os.environ.get(JARS_ENV):
        return Path(os.environ[JARS_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "fruits-pipeline" / "s3a-jars"


def find_jars(directory: Path | None = None) -> list[Path]:
    """The S3A jars' paths in ``directory`` (default ``jars_dir()``).

    Raises:
        UsageError: a jar is missing; the message says how to fetch them.
    """
    folder = directory or jars_dir()
    jars = [folder / name for name in S3A_JARS]
    missing = [jar.name for jar in jars if not jar.is_file()]
    if missing:
        raise UsageError(
            f"reading or writing s3:// outside EMR needs the S3A connector jars "
            f"({', '.join(missing)} missing in {folder}): run scripts/fetch_s3a_jars.sh once"
        )
    return jars


def s3_endpoint() -> str | None:
    """The S3 endpoint the AWS SDKs are pointed at (``AWS_ENDPOINT_URL_S3``, then
    ``AWS_ENDPOINT_URL``), or None for AWS's own regional endpoints."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3a_settings(
    jars: list[Path], bucket_regions: Mapping[str, str], endpoint: str | None = None
) -> dict[str, str]:
    """Spark configuration for S3 through S3A, off EMR: ``{spark conf key: value}``.

    Args:
        jars: the paths from ``find_jars``; they go on the driver's and executors' class path.
        bucket_regions: ``{bucket: region}`` as the residency guard found them; each bucket is
            addressed at its own regional endpoint (``s3.<region>.amazonaws.com``).
        endpoint: a single S3-compatible endpoint for every bucket (a local test server), as
            ``s3_endpoint()`` gives; it takes path-style addressing, and TLS only for https.

    Pitfall: the class path must be set before the JVM starts. Passed to the session builder
    that starts it, or to ``spark-submit`` (``step.conf_options``), it is; on a running session
    it is silently ignored and ``s3://`` fails with "No FileSystem for scheme".
    """
    classpath = os.pathsep.join(str(jar) for jar in jars)
    settings = {
        "spark.driver.extraClassPath": classpath,
        "spark.executor.extraClassPath": classpath,
        "spark.hadoop.fs.s3.impl": S3A_FILESYSTEM,
        "spark.hadoop.fs.s3a.impl": S3A_FILESYSTEM,
        "spark.hadoop.fs.s3a.aws.credentials.provider": CREDENTIALS_CHAIN,
    }
    if endpoint:
        settings["spark.hadoop.fs.s3a.endpoint"] = endpoint
        settings["spark.hadoop.fs.s3a.path.style.access"] = "true"
        settings["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            endpoint.startswith("https:")
        ).lower()
    else:
        for bucket, region in sorted(bucket_regions.items()):
            settings[f"spark.hadoop.fs.s3a.bucket.{bucket}.endpoint"] = f"s3.{region}.amazonaws.com"
    return settings
