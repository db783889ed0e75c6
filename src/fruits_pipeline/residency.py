"""The EU residency guard: refuse any bucket or region outside the allowed EU regions.

Runs on the driver **before any Spark work**: a bucket, or the driver itself, in the wrong place
stops the run before a single object is read or written. ``fruits-pipeline`` and the shell
scripts use it (the scripts through ``python -m fruits_pipeline.residency``), so there is one
implementation of the rule.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any

from fruits_pipeline.config import DEFAULT_REGION, EU_REGIONS
from fruits_pipeline.errors import ResidencyError
from fruits_pipeline.storage import configured_region, is_s3_uri, parse_s3_uri, s3_client

# EC2's instance metadata service (IMDSv2). The AWS SDKs honour the same two variables, so
# AWS_EC2_METADATA_DISABLED=true (tests, laptops) turns every client's lookup off at once.
METADATA_ENDPOINT = "http://169.254.169.254"
# The SDKs' own default: the link-local endpoint answers in milliseconds on EC2, and elsewhere
# this bounds the wait of every run that touches S3 from a laptop.
METADATA_TIMEOUT_S = 1.0


def validate_allowed_regions(regions: Sequence[str]) -> tuple[str, ...]:
    """Return ``regions`` if every one is an EU region, else raise ``ResidencyError``."""
    outside = [region for region in regions if region not in EU_REGIONS]
    if outside:
        raise ResidencyError(
            f"--allowed-regions may only name EU regions ({', '.join(sorted(EU_REGIONS))}); "
            f"refused: {', '.join(outside)}"
        )
    if not regions:
        raise ResidencyError("--allowed-regions needs at least one EU region")
    return tuple(regions)


def check_region(region: str, allowed: Sequence[str], what: str) -> None:
    """Refuse ``region`` (of ``what``: a cluster, an API endpoint) unless it is allowed."""
    if region not in allowed:
        raise ResidencyError(
            f"{what} is in region {region}, outside the allowed regions "
            f"{', '.join(allowed)}: refusing to run (data must stay in the EU)"
        )


def instance_region(timeout_s: float = METADATA_TIMEOUT_S) -> str | None:
    """The region of the EC2 instance this runs on, from IMDSv2; None when not on EC2.

    IMDSv2 is two requests: ``PUT /latest/api/token`` for a session token, then
    ``GET /latest/meta-data/placement/region`` with it. ``AWS_EC2_METADATA_SERVICE_ENDPOINT``
    replaces the endpoint; ``AWS_EC2_METADATA_DISABLED=true`` skips the lookup (None).

    Pitfall: "no answer" (refused, timed out, not found) means "not on EC2" and returns None;
    an instance that answers the token request but not the region raises ``ResidencyError``,
    since a guard that cannot read the region on EC2 must not pass.
    """
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return None
    endpoint = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", METADATA_ENDPOINT).rstrip("/")
    token_request = urllib.request.Request(
        f"{endpoint}/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
    )
    try:
        with urllib.request.urlopen(token_request, timeout=timeout_s) as response:
            token = response.read().decode()
    except (OSError, urllib.error.URLError):  # HTTPError, refused, unreachable, timed out
        return None
    region_request = urllib.request.Request(
        f"{endpoint}/latest/meta-data/placement/region",
        headers={"X-aws-ec2-metadata-token": token},
    )
    try:
        with urllib.request.urlopen(region_request, timeout=timeout_s) as response:
            return response.read().decode().strip()
    except (OSError, urllib.error.URLError) as error:
        raise ResidencyError(
            f"this EC2 instance's metadata service ({endpoint}) gave a token but not the "
            f"region: {error}; refusing to run"
        ) from error


def check_driver_region(uris: Iterable[str | None], allowed: Sequence[str]) -> str | None:
    """The region the job runs in, refused unless allowed; None when no AWS region applies.

    The rule: on EC2 (an EMR node) the instance's own region, from its metadata, always
    counts. Elsewhere (a laptop) only a run that touches S3 is in a region: the configured one
    (``AWS_REGION``, ``AWS_DEFAULT_REGION``, else the default), which its S3 clients then use.
    A local run off EC2 touches no AWS region and passes. The metadata lookup itself only
    happens for runs that touch S3, so local runs never call the network.

    Raises:
        ResidencyError: the region is outside ``allowed``, or EC2 metadata is unreadable.
    """
    if not any(uri and is_s3_uri(uri) for uri in uris):
        return None
    region = instance_region()
    if region is not None:
        check_region(region, allowed, "the driver (EC2 instance metadata)")
        return region
    region = configured_region()
    check_region(region, allowed, "the configured AWS region (AWS_REGION)")
    return region


def bucket_region(client: Any, bucket: str) -> str:
    """The region of ``bucket``, as ``GetBucketLocation`` reports it, normalised.

    S3 answers None (or "") for us-east-1 and the legacy "EU" for eu-west-1.
    """
    location = client.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def check_buckets(
    uris: Iterable[str | None], allowed: Sequence[str], region: str | None = None
) -> dict[str, str]:
    """Check the bucket of every ``s3://`` URI in ``uris``; return ``{bucket: region}``.

    Non-S3 URIs (local folders, ``file:``) are skipped: they never leave the machine. The S3
    client addresses ``region`` (the driver's, from ``check_driver_region``) when given.

    Raises:
        ResidencyError: a bucket is outside ``allowed``, or its region cannot be read (a guard
            that cannot check must refuse). The message names the bucket and its region.
    """
    buckets = sorted({parse_s3_uri(uri)[0] for uri in uris if uri and is_s3_uri(uri)})
    if not buckets:
        return {}
    client = s3_client(region)
    regions: dict[str, str] = {}
    for bucket in buckets:
        try:
            regions[bucket] = bucket_region(client, bucket)
        except Exception as error:  # botocore ClientError, NoCredentialsError, endpoint errors
            raise ResidencyError(
                f"cannot verify the region of bucket {bucket}: {error}; refusing to run"
            ) from error
        if regions[bucket] not in allowed:
            raise ResidencyError(
                f"bucket {bucket} is in region {regions[bucket]}, outside the allowed regions "
                f"{', '.join(allowed)}: refusing to read or write it (data must stay in the EU)"
            )
    return regions


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fruits_pipeline.residency --allowed-regions R [--region R] URI...``.

    The shell scripts' entry to the same guard. Exit 0 when everything is allowed, 5 (the job's
    residency code) with the reason on stderr otherwise.
    """
    parser = argparse.ArgumentParser(
        prog="python -m fruits_pipeline.residency",
        description="Check that S3 buckets (and optionally a region) are in allowed EU regions.",
    )
    parser.add_argument("uris", nargs="*", help="s3:// URIs whose buckets must be allowed")
    parser.add_argument("--allowed-regions", default=DEFAULT_REGION, help="comma-separated")
    parser.add_argument("--region", help="a region that must be allowed too (the cluster's)")
    args = parser.parse_args(argv)
    try:
        allowed = validate_allowed_regions(
            [r.strip() for r in args.allowed_regions.split(",") if r.strip()]
        )
        if args.region:
            check_region(args.region, allowed, "the EMR cluster")
        for bucket, region in check_buckets(args.uris, allowed).items():
            print(f"residency ok: bucket {bucket} is in {region}")
    except ResidencyError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(error.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
