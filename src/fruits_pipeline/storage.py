"""S3 URIs and the few boto3 calls the driver makes (weights download, bucket regions).

Spark itself reads and writes ``s3://`` through Hadoop's S3A on the cluster (EMR 7.10+); boto3 is
only used on the driver, for things that must happen before Spark starts work. boto3 honours
``AWS_ENDPOINT_URL`` and ``AWS_PROFILE``, which is how the tests point it at a local server.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from fruits_pipeline.config import DEFAULT_REGION

S3_SCHEMES = ("s3", "s3a", "s3n")


def is_s3_uri(uri: str) -> bool:
    return urlparse(uri).scheme in S3_SCHEMES


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")`` (also ``s3a://``, ``s3n://``)."""
    parsed = urlparse(uri)
    if parsed.scheme not in S3_SCHEMES or not parsed.netloc:
        raise ValueError(f"not an S3 URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/")


def configured_region() -> str:
    """``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the default EU region."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def s3_client(region: str | None = None) -> Any:
    """A boto3 S3 client for ``region`` (else ``configured_region()``), never region-less:
    without one boto3 would address the us-east-1 endpoint."""
    import boto3

    return boto3.client("s3", region_name=region or configured_region())


def download_s3_object(uri: str, directory: str, region: str | None = None) -> str:
    """Download ``uri`` into ``directory``, keeping its file name; return the local path."""
    bucket, key = parse_s3_uri(uri)
    local_path = os.path.join(directory, os.path.basename(key) or "object")
    s3_client(region).download_file(bucket, key, local_path)
    return local_path
