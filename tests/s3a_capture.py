"""Record the S3 requests of a real S3A run of the job against the local AWS (a developer tool).

    .venv/bin/python -m tests.s3a_capture [--jars DIR] [--out tests/data/s3a-requests.json]

Runs the job itself (``local[1]``, the shipped stand-in weights) with its input and output on
``s3a://`` through Hadoop's S3A, twice (the second time with ``--overwrite``), then twice with
a collection (``--table``, an Iceberg folder catalog under ``collections/``: the first run
creates the tables, the second finds nothing new), then one multipart upload and S3A's purge
of pending uploads, and writes moto's request log of it.
``tests/test_iam_enforcement.py`` maps every recorded request to the IAM actions AWS would
check and proves each one allowed for the instance role under moto's IAM enforcement.

The jars (``jars.S3A_JARS`` and ``ICEBERG_JARS``, from ``scripts/fetch_jars.sh``) are not part
of the project: the
capture is committed, the test reads the file. Pitfall: EMR 7.10 runs its own S3A build (Hadoop
3.4, AWS SDK v2), so its requests are those of open-source S3A: the same kinds of operation on
the same keys, not necessarily the same sequence.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import boto3

from fruits_pipeline.jars import ICEBERG_JARS, S3A_JARS, find_jars, jars_dir
from tests.aws import LocalAws, start_local_aws
from tests.conftest import ROOT, SAMPLE, WEIGHTS

BUCKET = "fruits-data-eu"
INPUT = f"s3a://{BUCKET}/fruits-360/"
OUTPUT = f"s3a://{BUCKET}/runs/capture/"
TABLE = f"s3a://{BUCKET}/collections/capture"
# Small parts so that an 11 MB file goes up as a multipart upload (S3A's minimum part: 5 MB).
PART_BYTES = 5 * 1024 * 1024


def upload_sample(client: Any) -> None:
    """Two labels in both splits, a few images each: enough for every stage, probe included."""
    for split, per_label in (("Training", 4), ("Test", 2)):
        for label in ("apple", "lemon"):
            for path in sorted((SAMPLE / split / label).glob("*.jpg"))[:per_label]:
                client.upload_file(str(path), BUCKET, f"fruits-360/{split}/{label}/{path.name}")


def s3a_session(aws: LocalAws, jars: Path) -> Any:
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[1]")
        .appName("s3a-capture")
        .config(
            "spark.jars",
            ",".join(str(jar) for jar in find_jars(S3A_JARS + ICEBERG_JARS, jars)),
        )
        .config("spark.ui.enabled", "false")
    )
    s3a = {
        "endpoint": aws.endpoint,
        "endpoint.region": "eu-west-1",
        "path.style.access": "true",
        "connection.ssl.enabled": "false",
        "access.key": "testing",
        "secret.key": "testing",
        "multipart.size": str(PART_BYTES),
        "multipart.threshold": str(PART_BYTES),
    }
    for name, value in s3a.items():
        builder = builder.config(f"spark.hadoop.fs.s3a.{name}", value)
    return builder.getOrCreate()


def multipart_and_purge(spark: Any, client: Any) -> None:
    """An 11 MB file written through S3A (a multipart upload), then S3A's clean-up of a pending
    upload (``fs.s3a.multipart.purge``: list the bucket's uploads, abort the stale ones)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(OUTPUT + "multipart-probe.bin")
    filesystem = path.getFileSystem(conf)
    stream = filesystem.create(path, True)
    stream.write(bytearray(11 * 1024 * 1024))
    stream.close()
    filesystem.delete(path, False)

    client.create_multipart_upload(Bucket=BUCKET, Key="runs/capture/abandoned.bin")
    purging = jvm.org.apache.hadoop.conf.Configuration(conf)
    purging.set("fs.s3a.multipart.purge", "true")
    purging.set("fs.s3a.multipart.purge.age", "0")
    jvm.org.apache.hadoop.fs.FileSystem.newInstance(path.toUri(), purging).close()


# Attempt, task and job ids, upload ids, file UUIDs and Spark ML stage uids differ on every
# run: the same request with another id is the same request for IAM, so they are written as N,
# UUID and UID.
_VOLATILE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r"(Model_)[0-9a-f]{12}\b"), r"\1UID"),
    (re.compile(r"(uploadId=)[^&]+"), r"\1ID"),
    (re.compile(r"\d{6,}"), "N"),
]


def normalised(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def recorded(aws: LocalAws, phase: str) -> list[dict[str, str]]:
    """The distinct requests S3A sent (not boto3's set-up), with what ``iam_action_for`` needs,
    in the order first sent."""
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    for request in aws.requests:
        if "aws-sdk-java" not in request["agent"]:
            continue
        query = dict(parse_qsl(request["query"], keep_blank_values=True))
        row = {
            "phase": phase,
            "method": request["method"],
            "path": normalised(request["path"]),
            "query": normalised(request["query"]),
            "copy_source": normalised(request["copy_source"]),
            # DeleteObjects names its keys only in the body.
            "body": normalised(request["body"]) if "delete" in query else "",
        }
        rows.setdefault(tuple(row.values()), row)
    aws.requests.clear()
    return list(rows.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jars", type=Path, default=jars_dir())
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "s3a-requests.json")
    args = parser.parse_args()

    aws, server = start_local_aws()
    os.environ.update(aws.env())
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    upload_sample(client)
    aws.requests.clear()

    from fruits_pipeline.cli import main as job

    spark = s3a_session(aws, args.jars)
    rows: list[dict[str, str]] = []
    common = ["run", "--input", INPUT, "--output", OUTPUT, "--weights", str(WEIGHTS)]
    table = ["--table", TABLE, "--overwrite"]
    for phase, extra in (
        ("job", []),
        ("job --overwrite", ["--overwrite"]),
        ("table run", table),
        ("table run again", table),
    ):
        code = job([*common, *extra])
        if code != 0:
            raise SystemExit(f"the job exited {code} during the capture ({phase})")
        rows += recorded(aws, phase)
    multipart_and_purge(spark, client)
    rows += recorded(aws, "multipart upload and purge")
    spark.stop()
    server.shutdown()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    # One request a line: a diff of two captures reads request by request.
    args.out.write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")
    print(f"{len(rows)} distinct S3A requests written to {args.out}")


if __name__ == "__main__":
    main()
