"""What AWS authorizes for each S3 request, and the S3 operations of a run, by principal.

``iam_action_for`` maps one request as ``tests/aws.py`` records it (path-style) to the IAM
(action, resource) pairs AWS checks for it, following the S3 API reference's "Permissions"
sections: a HEAD of an object is ``s3:GetObject``, a copy needs ``s3:GetObject`` on its source as
well as ``s3:PutObject``, DeleteObjects checks ``s3:DeleteObject`` on every key it names, and the
multipart calls map to PutObject except for listing parts, listing a bucket's uploads and
aborting. ``OPERATIONS`` is the job's traffic, replayed with boto3 under moto's IAM enforcement
by ``tests/test_iam_enforcement.py``.

Why replayed with boto3 rather than by S3A itself: under moto's enforcement, moto refused the
signatures of S3A's own AWS SDK (aws-java-sdk 1.11.901) even for a principal allowed
everything. S3A's requests are recorded instead (``tests/s3a_capture.py``) with enforcement off,
then mapped here and re-signed with botocore.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

# The two principals of a run. The cluster's instance role runs the driver, S3A, the bootstrap
# and the log uploads; whoever submits (a person, or the OIDC role of the GitHub workflow)
# uploads the code. Neither does the other's part.
INSTANCE_ROLE = "instance role"
SUBMITTER = "submitter"

DATA, CODE, OTHER = "fruits-data-eu", "fruits-code-eu", "fruits-other-eu"


def arn(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" + ("" if key is None else f"/{key}")


LIST_PARAMETERS = frozenset(
    {
        "list-type",
        "delimiter",
        "max-keys",
        "prefix",
        "fetch-owner",
        "continuation-token",
        "start-after",
        "encoding-type",
    }
)


def _deleted_keys(body: str) -> list[str]:
    root = ET.fromstring(body)
    return [element.text or "" for element in root.iter() if element.tag.endswith("Key")]


def iam_action_for(request: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS authorizes for one recorded S3 request.

    ``request`` has ``method``, ``path`` (``/bucket`` or ``/bucket/key``, decoded), ``query``,
    and optionally ``copy_source`` (``/bucket/key``) and ``body`` (needed for DeleteObjects).

    Raises:
        ValueError: a request this mapping does not know; better to fail than to guess.
    """
    method = request["method"]
    query = dict(parse_qsl(request["query"], keep_blank_values=True))
    bucket, _, key = request["path"].lstrip("/").partition("/")
    if not key:
        bucket_actions = {
            ("GET", "location"): "s3:GetBucketLocation",
            ("GET", "uploads"): "s3:ListBucketMultipartUploads",
            ("PUT", "policy"): "s3:PutBucketPolicy",
            ("DELETE", "policy"): "s3:DeleteBucketPolicy",
            ("PUT", "publicAccessBlock"): "s3:PutBucketPublicAccessBlock",
            ("DELETE", "publicAccessBlock"): "s3:PutBucketPublicAccessBlock",
        }
        for (verb, name), action in bucket_actions.items():
            if method == verb and name in query:
                return [(action, arn(bucket))]
        if method == "POST" and "delete" in query:
            return [("s3:DeleteObject", arn(bucket, k)) for k in _deleted_keys(request["body"])]
        if method in ("GET", "HEAD") and set(query) <= LIST_PARAMETERS:
            return [("s3:ListBucket", arn(bucket))]
        raise ValueError(f"unmapped bucket request: {method} {request['path']}?{request['query']}")
    if method in ("GET", "HEAD") and "uploadId" in query:
        return [("s3:ListMultipartUploadParts", arn(bucket, key))]
    if method in ("GET", "HEAD") and not set(query) - {"partNumber", "response-content-type"}:
        return [("s3:GetObject", arn(bucket, key))]
    if method == "DELETE":
        action = "s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject"
        return [(action, arn(bucket, key))]
    if (method == "PUT" and not set(query) - {"partNumber", "uploadId"}) or (
        method == "POST" and ("uploads" in query or "uploadId" in query)
    ):
        checks = [("s3:PutObject", arn(bucket, key))]
        source = unquote(request.get("copy_source", "")).lstrip("/")
        if source:  # CopyObject / UploadPartCopy: S3A's rename
            source_bucket, _, source_key = source.partition("/")
            checks.append(("s3:GetObject", arn(source_bucket, source_key.split("?")[0])))
        return checks
    raise ValueError(f"unmapped object request: {method} {request['path']}?{request['query']}")


@dataclass(frozen=True)
class Operation:
    """One S3 call of a run: who makes it, the boto3 call, and what AWS checks for it.

    ``checks`` are the (action, resource) pairs ``iam_action_for`` gives for the request boto3
    sends; ``allowed`` is what the policies must decide. ``why`` says who does it and when.
    """

    principal: str
    why: str
    call: str
    params: dict[str, Any]
    checks: tuple[tuple[str, str], ...]
    allowed: bool


def _op(
    principal: str,
    why: str,
    call: str,
    params: dict[str, Any],
    allowed: bool,
    *checks: tuple[str, str],
) -> Operation:
    return Operation(principal, why, call, params, tuple(checks), allowed)


IMAGE = "fruits-360/Training/apple/0_100.jpg"
RUN = "runs/2026-11-21"
COLLECTION = "collections/fruits"
PART = f"{RUN}/features/part-00000.snappy.parquet"
STAGED = f"{RUN}/features/_temporary/0/task_0/part-00000.snappy.parquet"
MULTIPART = f"{RUN}/pca/part-00001.snappy.parquet"

# One call per line group, aligned by hand: the table reads better than the formatter's layout.
# fmt: off
OPERATIONS: tuple[Operation, ...] = (
    # The driver: residency guard, weights, and the code spark-submit fetches.
    *(_op(INSTANCE_ROLE, "driver: residency guard", "get_bucket_location", {"Bucket": b}, True,
          ("s3:GetBucketLocation", arn(b))) for b in (DATA, CODE)),
    _op(INSTANCE_ROLE, "driver: weights download (boto3 HEADs first)", "head_object",
        {"Bucket": DATA, "Key": "weights/w.h5"}, True, ("s3:GetObject", arn(DATA, "weights/w.h5"))),
    _op(INSTANCE_ROLE, "driver: weights download", "get_object",
        {"Bucket": DATA, "Key": "weights/w.h5"}, True, ("s3:GetObject", arn(DATA, "weights/w.h5"))),
    _op(INSTANCE_ROLE, "spark-submit and bootstrap: code, lock, bootstrap", "get_object",
        {"Bucket": CODE, "Key": "code/v1/fruits_pipeline.zip"}, True,
        ("s3:GetObject", arn(CODE, "code/v1/fruits_pipeline.zip"))),
    # S3A reading the input: getFileStatus is a HEAD of the key itself, then a LIST of prefix/.
    _op(INSTANCE_ROLE, "S3A getFileStatus of the input folder: HEAD of its own key",
        "head_object", {"Bucket": DATA, "Key": "fruits-360"}, True,
        ("s3:GetObject", arn(DATA, "fruits-360"))),
    _op(INSTANCE_ROLE, "S3A getFileStatus: LIST prefix/ with max-keys 2", "list_objects_v2",
        {"Bucket": DATA, "Prefix": "fruits-360/", "Delimiter": "/", "MaxKeys": 2}, True,
        ("s3:ListBucket", arn(DATA))),
    _op(INSTANCE_ROLE, "S3A listing the input, folder by folder", "list_objects_v2",
        {"Bucket": DATA, "Prefix": "fruits-360/Training/", "Delimiter": "/"}, True,
        ("s3:ListBucket", arn(DATA))),
    _op(INSTANCE_ROLE, "S3A reading an image (HEAD, then GET)", "head_object",
        {"Bucket": DATA, "Key": IMAGE}, True, ("s3:GetObject", arn(DATA, IMAGE))),
    _op(INSTANCE_ROLE, "S3A reading an image", "get_object", {"Bucket": DATA, "Key": IMAGE},
        True, ("s3:GetObject", arn(DATA, IMAGE))),
    # S3A writing the run: mkdirs probes every parent, the committer writes _temporary/ then
    # renames (copy + delete), markers are PUT and deleted, small files are single PUTs.
    _op(INSTANCE_ROLE, "S3A mkdirs probing the parent folder: HEAD runs", "head_object",
        {"Bucket": DATA, "Key": "runs"}, True, ("s3:GetObject", arn(DATA, "runs"))),
    _op(INSTANCE_ROLE, "S3A probing the output folder: HEAD runs/DATE", "head_object",
        {"Bucket": DATA, "Key": RUN}, True, ("s3:GetObject", arn(DATA, RUN))),
    _op(INSTANCE_ROLE, "S3A directory marker", "put_object",
        {"Bucket": DATA, "Key": f"{RUN}/features/_temporary/0/", "Body": b""}, True,
        ("s3:PutObject", arn(DATA, f"{RUN}/features/_temporary/0/"))),
    _op(INSTANCE_ROLE, "S3A reading a directory marker", "get_object",
        {"Bucket": DATA, "Key": f"{RUN}/features/_temporary/0/"}, True,
        ("s3:GetObject", arn(DATA, f"{RUN}/features/_temporary/0/"))),
    _op(INSTANCE_ROLE, "task attempt writes its file under _temporary/", "put_object",
        {"Bucket": DATA, "Key": STAGED, "Body": b"PAR1"}, True,
        ("s3:PutObject", arn(DATA, STAGED))),
    _op(INSTANCE_ROLE, "committer rename = copy ...", "copy_object",
        {"Bucket": DATA, "Key": PART, "CopySource": {"Bucket": DATA, "Key": STAGED}}, True,
        ("s3:PutObject", arn(DATA, PART)), ("s3:GetObject", arn(DATA, STAGED))),
    _op(INSTANCE_ROLE, "... + delete", "delete_object", {"Bucket": DATA, "Key": STAGED}, True,
        ("s3:DeleteObject", arn(DATA, STAGED))),
    _op(INSTANCE_ROLE, "S3A bulk delete of markers and _temporary/", "delete_objects",
        {"Bucket": DATA, "Delete": {"Objects": [{"Key": f"{RUN}/features/_temporary/0/"},
                                                 {"Key": f"{RUN}/_SUCCESS"}]}}, True,
        ("s3:DeleteObject", arn(DATA, f"{RUN}/features/_temporary/0/")),
        ("s3:DeleteObject", arn(DATA, f"{RUN}/_SUCCESS"))),
    _op(INSTANCE_ROLE, "manifest.json written last", "put_object",
        {"Bucket": DATA, "Key": f"{RUN}/manifest.json", "Body": b"{}"}, True,
        ("s3:PutObject", arn(DATA, f"{RUN}/manifest.json"))),
    # Multipart: large files, and the committers' and S3A's clean-up of pending uploads.
    _op(INSTANCE_ROLE, "multipart: create", "create_multipart_upload",
        {"Bucket": DATA, "Key": MULTIPART}, True, ("s3:PutObject", arn(DATA, MULTIPART))),
    _op(INSTANCE_ROLE, "multipart: upload a part", "upload_part",
        {"Bucket": DATA, "Key": MULTIPART, "PartNumber": 1, "Body": b"x" * 5}, True,
        ("s3:PutObject", arn(DATA, MULTIPART))),
    _op(INSTANCE_ROLE, "multipart: list its parts", "list_parts",
        {"Bucket": DATA, "Key": MULTIPART}, True,
        ("s3:ListMultipartUploadParts", arn(DATA, MULTIPART))),
    _op(INSTANCE_ROLE, "multipart: complete", "complete_multipart_upload",
        {"Bucket": DATA, "Key": MULTIPART}, True, ("s3:PutObject", arn(DATA, MULTIPART))),
    _op(INSTANCE_ROLE, "clean-up: list the bucket's pending uploads", "list_multipart_uploads",
        {"Bucket": DATA}, True, ("s3:ListBucketMultipartUploads", arn(DATA))),
    _op(INSTANCE_ROLE, "clean-up: abort a pending upload", "abort_multipart_upload",
        {"Bucket": DATA, "Key": f"{RUN}/abandoned"}, True,
        ("s3:AbortMultipartUpload", arn(DATA, f"{RUN}/abandoned"))),
    _op(INSTANCE_ROLE, "EMR's log upload to LogUri", "put_object",
        {"Bucket": CODE, "Key": "logs/j-1/steps/s-1/stderr.gz", "Body": b""}, True,
        ("s3:PutObject", arn(CODE, "logs/j-1/steps/s-1/stderr.gz"))),
    # A collection (--table): a folder's Iceberg tables through S3A (HEAD of the folder's own
    # key, then data, metadata and the version hint written, read and, when expired, deleted),
    # a Glue collection's files through Iceberg's S3FileIO under warehouse/.
    _op(INSTANCE_ROLE, "S3A probing the collection folder: HEAD collections", "head_object",
        {"Bucket": DATA, "Key": "collections"}, True, ("s3:GetObject", arn(DATA, "collections"))),
    *(_op(INSTANCE_ROLE, f"collection table: {call}", call, {"Bucket": DATA, "Key": key, **extra},
          True, (action, arn(DATA, key)))
      for key in (f"{COLLECTION}/features/data/00000-0-a.parquet",
                  f"{COLLECTION}/features/metadata/version-hint.text",
                  "warehouse/fruits.db/photos/metadata/00001-b.metadata.json")
      for call, extra, action in (("put_object", {"Body": b"x"}, "s3:PutObject"),
                                  ("get_object", {}, "s3:GetObject"),
                                  ("delete_object", {}, "s3:DeleteObject"))),
    _op(INSTANCE_ROLE, "must not write an object named like the collections folder",
        "put_object", {"Bucket": DATA, "Key": "collections", "Body": b""}, False,
        ("s3:PutObject", arn(DATA, "collections"))),
    # The submitter: code and bootstrap uploads, residency guard. Nothing else.
    *(_op(SUBMITTER, "submit_step.sh / create_cluster.sh: upload", "put_object",
          {"Bucket": CODE, "Key": key, "Body": b""}, True, ("s3:PutObject", arn(CODE, key)))
      for key in ("code/v1/fruits_pipeline.zip", "code/v1/main.py",
                  "code/bootstrap/bootstrap-emr.sh", "code/bootstrap/requirements-emr.txt")),
    *(_op(SUBMITTER, "scripts: residency guard", "get_bucket_location", {"Bucket": b}, True,
          ("s3:GetBucketLocation", arn(b))) for b in (DATA, CODE)),
    # Denials that must stay.
    _op(INSTANCE_ROLE, "must not write the input", "put_object",
        {"Bucket": DATA, "Key": IMAGE, "Body": b""}, False, ("s3:PutObject", arn(DATA, IMAGE))),
    _op(INSTANCE_ROLE, "must not delete the input", "delete_object",
        {"Bucket": DATA, "Key": IMAGE}, False, ("s3:DeleteObject", arn(DATA, IMAGE))),
    _op(INSTANCE_ROLE, "must not bulk-delete the input", "delete_objects",
        {"Bucket": DATA, "Delete": {"Objects": [{"Key": IMAGE}]}}, False,
        ("s3:DeleteObject", arn(DATA, IMAGE))),
    _op(INSTANCE_ROLE, "must not write an object named like the runs folder", "put_object",
        {"Bucket": DATA, "Key": "runs", "Body": b""}, False, ("s3:PutObject", arn(DATA, "runs"))),
    _op(INSTANCE_ROLE, "must not write code (the submitter's part)", "put_object",
        {"Bucket": CODE, "Key": "code/v1/main.py", "Body": b""}, False,
        ("s3:PutObject", arn(CODE, "code/v1/main.py"))),
    _op(INSTANCE_ROLE, "must not replace the weights", "put_object",
        {"Bucket": DATA, "Key": "weights/w.h5", "Body": b""}, False,
        ("s3:PutObject", arn(DATA, "weights/w.h5"))),
    _op(INSTANCE_ROLE, "must not read another bucket", "get_object",
        {"Bucket": OTHER, "Key": "secret.csv"}, False, ("s3:GetObject", arn(OTHER, "secret.csv"))),
    _op(INSTANCE_ROLE, "must not list another bucket", "list_objects_v2", {"Bucket": OTHER},
        False, ("s3:ListBucket", arn(OTHER))),
    *(_op(principal, "must not change the bucket policy", "put_bucket_policy",
          {"Bucket": DATA, "Policy": '{"Version": "2012-10-17", "Statement": []}'}, False,
          ("s3:PutBucketPolicy", arn(DATA))) for principal in (INSTANCE_ROLE, SUBMITTER)),
    *(_op(principal, "must not lift Block Public Access", "put_public_access_block",
          {"Bucket": DATA, "PublicAccessBlockConfiguration": {"BlockPublicAcls": False}}, False,
          ("s3:PutBucketPublicAccessBlock", arn(DATA)))
      for principal in (INSTANCE_ROLE, SUBMITTER)),
    _op(INSTANCE_ROLE, "must not delete Block Public Access", "delete_public_access_block",
        {"Bucket": DATA}, False, ("s3:PutBucketPublicAccessBlock", arn(DATA))),
    _op(SUBMITTER, "must not read the data", "get_object", {"Bucket": DATA, "Key": IMAGE},
        False, ("s3:GetObject", arn(DATA, IMAGE))),
    _op(SUBMITTER, "must not write the runs", "put_object",
        {"Bucket": DATA, "Key": f"{RUN}/manifest.json", "Body": b""}, False,
        ("s3:PutObject", arn(DATA, f"{RUN}/manifest.json"))),
)
# fmt: on
