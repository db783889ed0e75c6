"""The shipped IAM policies, proven under moto's IAM enforcement.

Each principal is an IAM user holding only its policy (``conf/iam-instance-role-policy.json``
for the cluster, ``conf/iam-submit-step-policy.json`` for whoever submits), the buckets filled
in. Every S3 operation of a run (``tests.s3_iam.OPERATIONS``) is sent with boto3 and that
user's keys once moto enforces IAM (``/moto-api/reset-auth``, which sets
``INITIAL_NO_AUTH_ACTION_COUNT``), and the requests recorded from a real S3A run of the job
(``tests/data/s3a-requests.json``) are re-signed and sent the same way.

Two parts of AWS's decision moto's HTTP layer does not model, so they are decided by moto's
own policy engine (``IAMPolicy``) on the exact (action, resource) AWS checks: a copy's read of
its source (moto checks only the destination), and DeleteObjects (moto checks s3:DeleteObject
on the bucket's ARN, AWS on every key).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from moto.iam.access_control import IAMPolicy, PermissionResult

from tests.aws import ACCOUNT, LocalAws
from tests.conftest import ROOT
from tests.s3_iam import (
    CODE,
    DATA,
    IMAGE,
    INSTANCE_ROLE,
    OPERATIONS,
    OTHER,
    RUN,
    STAGED,
    SUBMITTER,
    Operation,
    iam_action_for,
)

pytestmark = pytest.mark.spark

POLICIES = {
    INSTANCE_ROLE: ROOT / "conf" / "iam-instance-role-policy.json",
    SUBMITTER: ROOT / "conf" / "iam-submit-step-policy.json",
}
S3A_LOG = ROOT / "tests" / "data" / "s3a-requests.json"
GLUE_REGION, GLUE_DATABASE = "eu-west-1", "fruits"
# Calls whose HTTP decision in moto is not AWS's (see the module's docstring).
POLICY_ENGINE_ONLY = {"delete_objects"}


def policy_text(principal: str) -> str:
    text = POLICIES[principal].read_text()
    placeholders = {
        "DATA_BUCKET": DATA,
        "CODE_BUCKET": CODE,
        "GLUE_REGION": GLUE_REGION,
        "GLUE_DATABASE": GLUE_DATABASE,
    }
    for name, value in placeholders.items():
        text = text.replace(name, value)
    return text


def engine_allows(principal: str, action: str, resource: str) -> bool:
    decision = IAMPolicy(policy_text(principal)).is_action_permitted(action, resource)
    return decision == PermissionResult.PERMITTED


def post(aws: LocalAws, path: str, body: str) -> None:
    request = urllib.request.Request(
        f"{aws.endpoint}{path}",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request).close()


@pytest.fixture
def enforced(aws: LocalAws) -> Iterator[dict[str, Any]]:
    """Objects a run finds, one IAM user per principal with only its policy, then enforcement.

    Yields ``{"keys": {principal: Credentials}, "uploads": {key: upload id}}``.
    """
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=OTHER, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for bucket, key in [
        (DATA, IMAGE),
        (DATA, "weights/w.h5"),
        (DATA, STAGED),
        (CODE, "code/v1/fruits_pipeline.zip"),
        (OTHER, "secret.csv"),
    ]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    uploads = {
        key: s3.create_multipart_upload(Bucket=DATA, Key=key)["UploadId"]
        for key in (f"{RUN}/abandoned",)
    }
    iam = boto3.client("iam")
    keys = {}
    for principal in POLICIES:
        user = principal.replace(" ", "-")
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="only", PolicyDocument=policy_text(principal))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys[principal] = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    post(aws, "/moto-api/reset-auth", "0")  # from the next request on, moto enforces IAM
    try:
        yield {"keys": keys, "uploads": uploads}
    finally:
        post(aws, "/moto-api/reset-auth", "inf")


def client_for(credentials: Credentials) -> Any:
    return boto3.client(
        "s3",
        region_name="eu-west-1",
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
    )


def send(op: Operation, client: Any, uploads: dict[str, str], parts: list[dict]) -> bool:
    """Send ``op`` with boto3; True if AWS (moto) let it through, whatever else went wrong.

    ``uploads`` (key: upload id) and ``parts`` carry the multipart upload from call to call.
    """
    params = dict(op.params)
    if op.call in (
        "upload_part",
        "list_parts",
        "complete_multipart_upload",
        "abort_multipart_upload",
    ):
        params["UploadId"] = uploads[params["Key"]]
    if op.call == "complete_multipart_upload":
        params["MultipartUpload"] = {"Parts": parts}
    try:
        response = getattr(client, op.call)(**params)
    except ClientError as error:
        return error.response["Error"]["Code"] not in ("AccessDenied", "403")
    if op.call == "create_multipart_upload":
        uploads[params["Key"]] = response["UploadId"]
    if op.call == "upload_part":
        parts.append({"PartNumber": params["PartNumber"], "ETag": response["ETag"]})
    return not any(e["Code"] == "AccessDenied" for e in response.get("Errors", []))


def test_every_operation_of_a_run_is_decided_as_intended(
    aws: LocalAws, enforced: dict[str, Any], capsys: pytest.CaptureFixture
) -> None:
    rows, wrong, parts = [], [], []
    for op in OPERATIONS:
        aws.requests.clear()
        client = client_for(enforced["keys"][op.principal])
        http_allowed = send(op, client, enforced["uploads"], parts)
        # The mapping, checked against what boto3 really sent.
        sent = [check for request in aws.requests for check in iam_action_for(request)]
        assert sent == list(op.checks), (op.why, aws.requests)
        engine = all(engine_allows(op.principal, action, res) for action, res in op.checks)
        decided = engine if op.call in POLICY_ENGINE_ONLY else http_allowed and engine
        if decided != op.allowed or (op.call not in POLICY_ENGINE_ONLY and http_allowed != engine):
            wrong.append((op.principal, op.why, op.call, http_allowed, engine))
        for action, resource in op.checks:
            rows.append(
                f"{'ALLOWED' if decided else 'DENIED ':7} {op.principal:13} {action:30} "
                f"{resource:70} {op.why}"
            )
    with capsys.disabled():
        print("\nIAM enforcement (moto): decision, principal, action, resource, operation")
        print("\n".join(rows))
    assert not wrong, wrong


def signed(
    aws: LocalAws, credentials: Credentials, request: dict[str, str]
) -> urllib.request.Request:
    """A recorded S3A request, signed anew (SigV4) with ``credentials``."""
    url = f"{aws.endpoint}{quote(request['path'])}"
    if request["query"]:
        url += f"?{request['query']}"
    # A content type of its own, or urllib's form type would have the server parse the body away.
    headers = {"Content-Type": "application/xml"}
    if request["copy_source"]:
        headers["x-amz-copy-source"] = request["copy_source"]
    body = request["body"].encode()
    aws_request = AWSRequest(method=request["method"], url=url, headers=headers, data=body)
    S3SigV4Auth(credentials, "s3", "eu-west-1").add_auth(aws_request)
    prepared = aws_request.prepare()
    return urllib.request.Request(
        prepared.url, data=body or None, method=request["method"], headers=dict(prepared.headers)
    )


def with_a_live_upload(request: dict[str, str], client: Any) -> dict[str, str]:
    """The capture writes upload ids as ``ID``; moto looks an upload up before it authorizes
    the call, so a multipart request gets a live upload of its own (the instance role may
    start one under runs/), and a completion a body to parse (the capture keeps none)."""
    if "uploadId=ID" not in request["query"]:
        return request
    bucket, _, key = request["path"].lstrip("/").partition("/")
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    query = request["query"].replace("uploadId=ID", f"uploadId={upload}")
    body = request["body"]
    if request["method"] == "POST":
        part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x")
        body = (
            f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
            f"<ETag>{part['ETag']}</ETag></Part></CompleteMultipartUpload>"
        )
    return {**request, "query": query, "body": body}


def status_of(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_every_request_of_a_real_s3a_run_is_allowed_for_the_instance_role(
    aws: LocalAws, enforced: dict[str, Any]
) -> None:
    recorded = json.loads(S3A_LOG.read_text())
    assert {r["phase"] for r in recorded} == {
        "job",
        "job --overwrite",
        "table run",
        "table run again",
        "multipart upload and purge",
    }
    checks = {check for request in recorded for check in iam_action_for(request)}
    refused = [c for c in checks if not engine_allows(INSTANCE_ROLE, *c)]
    assert not refused, refused
    # Every kind of request S3A sent is one the replayed operations prove.
    proven = {
        action
        for op in OPERATIONS
        if op.principal == INSTANCE_ROLE and op.allowed
        for action, _ in op.checks
    }
    assert {action for action, _ in checks} <= proven

    credentials = enforced["keys"][INSTANCE_ROLE]
    client = client_for(credentials)
    not_through = []
    # The runs repeat many requests (every HEAD of manifest.json, say); identical requests get
    # identical decisions, so each distinct one is sent once (in the order first recorded).
    distinct = {tuple(v for k, v in sorted(r.items()) if k != "phase"): r for r in recorded}
    for request in distinct.values():
        if request["method"] == "POST" and "delete" in request["query"]:
            continue  # DeleteObjects: moto checks the bucket's ARN (see the module docstring)
        status = status_of(signed(aws, credentials, with_a_live_upload(request, client)))
        if status == 403 or status >= 500:  # denied, or never reached the authorization
            not_through.append((status, request["method"], request["path"], request["query"]))
    assert not not_through, not_through


def test_the_s3a_run_needs_what_the_old_policy_lacked() -> None:
    """The capture is the evidence for the fixes: the HEAD of the input folder's own key, the
    HEAD of ``runs``, and the multipart clean-up actions."""
    recorded = json.loads(S3A_LOG.read_text())
    checks = {check for request in recorded for check in iam_action_for(request)}
    assert ("s3:GetObject", f"arn:aws:s3:::{DATA}/fruits-360") in checks
    assert ("s3:GetObject", f"arn:aws:s3:::{DATA}/runs") in checks
    actions = {action for action, _ in checks}
    assert {"s3:ListBucketMultipartUploads", "s3:AbortMultipartUpload"} <= actions


def test_iam_action_for_knows_the_requests_the_policies_hinge_on() -> None:
    copy = {
        "method": "PUT",
        "path": f"/{DATA}/runs/x/part-0",
        "query": "",
        "copy_source": f"{DATA}/runs/x/_temporary/0/part-0",
    }
    assert iam_action_for(copy) == [
        ("s3:PutObject", f"arn:aws:s3:::{DATA}/runs/x/part-0"),
        ("s3:GetObject", f"arn:aws:s3:::{DATA}/runs/x/_temporary/0/part-0"),
    ]
    bulk = {
        "method": "POST",
        "path": f"/{DATA}",
        "query": "delete",
        "copy_source": "",
        "body": "<Delete><Object><Key>runs/a</Key></Object><Object><Key>runs/b</Key>"
        "</Object></Delete>",
    }
    assert iam_action_for(bulk) == [
        ("s3:DeleteObject", f"arn:aws:s3:::{DATA}/runs/a"),
        ("s3:DeleteObject", f"arn:aws:s3:::{DATA}/runs/b"),
    ]
    with pytest.raises(ValueError, match="unmapped"):
        iam_action_for({"method": "PUT", "path": f"/{DATA}", "query": "acl", "copy_source": ""})


def test_the_submitter_cannot_use_the_instance_policy_paths(aws: LocalAws) -> None:
    """The two policies split the work: what one may write, the other may not."""
    writes = {"s3:PutObject", "s3:DeleteObject"}
    for principal, other in ((INSTANCE_ROLE, SUBMITTER), (SUBMITTER, INSTANCE_ROLE)):
        for op in OPERATIONS:
            if op.principal == principal and op.allowed:
                for action, resource in op.checks:
                    if action in writes and engine_allows(other, action, resource):
                        pytest.fail(f"both {principal} and {other} may {action} {resource}")


def glue_arn(kind: str, region: str = GLUE_REGION) -> str:
    return f"arn:aws:glue:{region}:{ACCOUNT}:{kind}"


# What Iceberg's GlueCatalog calls for a collection (tests/test_table.py records them against
# the local AWS: GetDatabase, CreateTable, GetTable, UpdateTable) and the resources Glue checks
# for each: the catalog, the database, and the table. Then what must stay denied.
GLUE_DECISIONS = (
    *(
        (action, resource, True)
        for action in ("glue:GetDatabase",)
        for resource in (glue_arn("catalog"), glue_arn("database/fruits"))
    ),
    *(
        (action, resource, True)
        for action in ("glue:GetTable", "glue:CreateTable", "glue:UpdateTable")
        for resource in (
            glue_arn("catalog"),
            glue_arn("database/fruits"),
            glue_arn("table/fruits/photos"),
            glue_arn("table/fruits/photos_errors"),
            glue_arn("table/fruits/photos_moments"),
        )
    ),
    ("glue:DeleteTable", glue_arn("table/fruits/photos"), False),
    ("glue:CreateDatabase", glue_arn("database/other"), False),
    ("glue:DeleteDatabase", glue_arn("database/fruits"), False),
    ("glue:GetTable", glue_arn("table/other/photos"), False),
    ("glue:UpdateTable", glue_arn("table/other/photos"), False),
    ("glue:GetTable", glue_arn("table/fruits/photos", region="us-east-1"), False),
    ("glue:GetTable", glue_arn("table/fruits/photos", region="eu-west-2"), False),
)


def test_glue_actions_of_a_collection_are_decided_as_intended() -> None:
    """Glue's part of the instance policy, by moto's own policy engine on the exact (action,
    resource) pairs Glue checks: moto's HTTP layer does not evaluate Glue requests against
    resource ARNs, so an ARN-scoped Glue policy cannot be proven there."""
    wrong = [
        (action, resource, allowed)
        for action, resource, allowed in GLUE_DECISIONS
        if engine_allows(INSTANCE_ROLE, action, resource) != allowed
    ]
    assert not wrong, wrong
    assert not any(engine_allows(SUBMITTER, action, res) for action, res, _ in GLUE_DECISIONS)
