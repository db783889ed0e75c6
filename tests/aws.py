"""A local AWS: moto's server on 127.0.0.1 over real HTTP, recording the requests it serves.

boto3 and the AWS CLI reach it through ``AWS_ENDPOINT_URL`` with dummy credentials, exactly as
they reach AWS. The server runs in the test process, so a test can also set what AWS would
decide on its own (a step's final state) through moto's backend.
"""

from __future__ import annotations

import io
import re
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

ACCOUNT = "123456789012"


@dataclass
class LocalAws:
    endpoint: str
    requests: list[dict[str, str]] = field(default_factory=list)

    def env(self, region: str = "eu-west-1") -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def emr_calls(self, action: str) -> list[dict[str, str]]:
        """The EMR API calls named ``action`` (e.g. ``RunJobFlow``), in order."""
        return [r for r in self.requests if r["target"].endswith(f".{action}")]


_SIGNED_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


class _Recorder:
    def __init__(self, app: Any, sink: list[dict[str, str]]) -> None:
        self.app, self.sink = app, sink

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        self.sink.append(
            {
                "method": environ["REQUEST_METHOD"],
                "path": environ.get("PATH_INFO", ""),
                "query": environ.get("QUERY_STRING", ""),
                # SigV4 credential scope: the region the client addressed the request to.
                "region": "".join(_SIGNED_REGION.findall(environ.get("HTTP_AUTHORIZATION", ""))),
                "target": environ.get("HTTP_X_AMZ_TARGET", ""),
                # CopyObject is a PUT whose source is only in this header (S3A's rename).
                "copy_source": environ.get("HTTP_X_AMZ_COPY_SOURCE", ""),
                "agent": environ.get("HTTP_USER_AGENT", ""),
                "body": body.decode("utf-8", "replace") if len(body) < 100_000 else "",
            }
        )
        return self.app(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    """No line per request on stderr: an S3A run makes thousands."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def start_local_aws() -> tuple[LocalAws, Any]:
    aws = LocalAws(endpoint="")
    app = _Recorder(DomainDispatcherApplication(create_backend_app), aws.requests)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    aws.endpoint = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return aws, server


def reset_aws(aws: LocalAws) -> None:
    """Forget every bucket, role and cluster, and the request log."""
    request = urllib.request.Request(f"{aws.endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request).close()
    aws.requests.clear()


def create_bucket(name: str, region: str) -> None:
    """A bucket in ``region``, created as the README does (us-east-1 takes no constraint)."""
    client = boto3.client("s3", region_name=region)
    if region == "us-east-1":
        client.create_bucket(Bucket=name)
    else:
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})


def point_spark_at(spark: Any, aws: LocalAws) -> None:
    """Serve ``s3://`` in a running session (S3A jars on its class path) from ``aws``, with the
    job's own S3A settings (``s3a.s3a_settings``) set on its Hadoop configuration."""
    from fruits_pipeline.s3a import s3a_settings

    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_settings({}, aws.endpoint).items():
        if key.startswith("spark.hadoop."):
            hadoop.set(key.removeprefix("spark.hadoop."), value)
    # The JVM's environment was fixed before the test set AWS_ACCESS_KEY_ID.
    hadoop.set(
        "fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    )
    hadoop.set("fs.s3a.access.key", "testing")
    hadoop.set("fs.s3a.secret.key", "testing")


def set_step_state(cluster_id: str, step_id: str, state: str, region: str = "eu-west-1") -> None:
    """Play the cluster's part: move a step to ``state`` (moto never runs steps itself)."""
    from moto.emr.models import emr_backends

    # moto cannot read a region from a 127.0.0.1 host name and files EMR calls under us-east-1.
    backends = emr_backends[ACCOUNT]
    cluster = (
        backends[region].clusters.get(cluster_id) or backends["us-east-1"].clusters[cluster_id]
    )
    for step in cluster.steps:
        if step.id == step_id:
            step.state = state
            return
    raise KeyError(step_id)
