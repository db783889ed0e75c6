"""Spark on S3 outside EMR: the S3A connector's jars and settings for a laptop, the tests and CI.

On EMR 7.10+ ``s3://`` is served by the built-in S3A connector and nothing here is used. Off
EMR, Spark ships without it: ``scripts/fetch_jars.sh`` caches ``hadoop-aws`` and the AWS SDK
bundle it was built against (``jars.S3A_JARS``, put on the class path by
``jars.classpath_settings``), and ``s3a_settings`` returns the Spark configuration that serves
``s3://`` (and ``s3a://``) with S3A, so a local run reads and writes the very URIs an EMR step
uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
# The AWS SDK's own default chain: environment variables (AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN),
# AWS_PROFILE and ~/.aws/credentials, web identity, container and instance roles. S3A's default
# chain skips profiles, which is how most laptops hold their credentials.
CREDENTIALS_CHAIN = "com.amazonaws.auth.DefaultAWSCredentialsProviderChain"


def s3_endpoint() -> str | None:
    """The S3 endpoint the AWS SDKs are pointed at (``AWS_ENDPOINT_URL_S3``, then
    ``AWS_ENDPOINT_URL``), or None for AWS's own regional endpoints."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3a_settings(bucket_regions: Mapping[str, str], endpoint: str | None = None) -> dict[str, str]:
    """Spark configuration for S3 through S3A, off EMR: ``{spark conf key: value}``.

    Args:
        bucket_regions: ``{bucket: region}`` as the residency guard found them; each bucket is
            addressed at its own regional endpoint (``s3.<region>.amazonaws.com``).
        endpoint: a single S3-compatible endpoint for every bucket (a local test server), as
            ``s3_endpoint()`` gives; it takes path-style addressing, and TLS only for https.

    Pitfall: without ``S3A_JARS`` on the class path (``jars.classpath_settings``, set before
    the JVM starts) ``s3://`` fails with "No FileSystem for scheme".
    """
    settings = {
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
