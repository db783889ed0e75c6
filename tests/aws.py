"""A local AWS: moto's server on 127.0.0.1 over real HTTP, recording the requests it serves.

boto3 and the AWS CLI reach it through ``AWS_ENDPOINT_URL`` with dummy credentials, exactly as
they reach AWS. The server runs in the test process, so a test can also set what AWS would
decide on its own (a step's final state) through moto's backend.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

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


def start_local_aws() -> tuple[LocalAws, Any]:
    aws = LocalAws(endpoint="")
    app = _Recorder(DomainDispatcherApplication(create_backend_app), aws.requests)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    aws.endpoint = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return aws, server


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
