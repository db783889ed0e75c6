"""The job refuses to run outside the allowed regions, read from the EC2
instance metadata (IMDSv2) of the node it runs on, or from the configured region off EC2.

The metadata service is a fake on 127.0.0.1 (``AWS_EC2_METADATA_SERVICE_ENDPOINT``), answering
like EC2's: a token for ``PUT /latest/api/token``, the region for a GET that carries it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fruits_pipeline.cli import main
from fruits_pipeline.errors import ExitCode, ResidencyError
from fruits_pipeline.residency import check_buckets, check_driver_region, instance_region
from tests.aws import LocalAws
from tests.conftest import WEIGHTS

pytestmark = pytest.mark.spark

TOKEN = "fake-imds-token"
S3_JOB = ["s3://fruits-data-eu/fruits-360/", "s3://fruits-data-eu/runs/x/", "imagenet"]


class FakeMetadata(ThreadingHTTPServer):
    """IMDSv2 on loopback: answers ``region`` (None: 404 for the region, as a broken service)."""

    region: str | None = "eu-west-1"
    calls: list[tuple[str, str, str]]


class _Handler(BaseHTTPRequestHandler):
    server: FakeMetadata

    def _answer(self, status: int, body: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_PUT(self) -> None:
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        self.server.calls.append(("PUT", self.path, ttl))
        self._answer(200, TOKEN) if self.path == "/latest/api/token" and ttl else self._answer(400)

    def do_GET(self) -> None:
        token = self.headers.get("X-aws-ec2-metadata-token", "")
        self.server.calls.append(("GET", self.path, token))
        if token != TOKEN:
            self._answer(401)  # IMDSv2 only: no token, no answer
        elif self.path == "/latest/meta-data/placement/region" and self.server.region:
            self._answer(200, self.server.region)
        else:
            self._answer(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metadata(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMetadata]:
    """A fake metadata service, and this process pointed at it (as if on an EC2 instance)."""
    server = FakeMetadata(("127.0.0.1", 0), _Handler)
    server.calls = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{server.server_port}"
    )
    yield server
    server.shutdown()


def test_job_on_a_us_node_is_refused_before_anything_is_read_or_written(
    metadata: FakeMetadata, aws: LocalAws, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    metadata.region = "us-east-1"
    output = tmp_path / "run"
    code = main(
        [
            "run",
            "--input",
            "s3://fruits-data-eu/fruits-360/",
            "--output",
            str(output),
            "--weights",
            str(WEIGHTS),
        ]
    )
    assert code == ExitCode.RESIDENCY
    err = capsys.readouterr().err
    assert "the driver (EC2 instance metadata) is in region us-east-1" in err
    assert not output.exists()
    assert aws.requests == []  # refused before even asking where the buckets are
    assert [(method, path) for method, path, _ in metadata.calls] == [
        ("PUT", "/latest/api/token"),
        ("GET", "/latest/meta-data/placement/region"),
    ]
    assert metadata.calls[1][2] == TOKEN  # IMDSv2: the region read with the session token


def test_an_eu_node_passes_and_its_region_addresses_the_s3_client(
    metadata: FakeMetadata, aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    metadata.region = "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # the node's own region wins over this
    region = check_driver_region(S3_JOB, ["eu-west-1"])
    assert region == "eu-west-1"
    assert check_buckets(S3_JOB, ["eu-west-1"], region) == {"fruits-data-eu": "eu-west-1"}
    assert {r["region"] for r in aws.requests} == {"eu-west-1"}  # signed for the node's region


def test_a_node_that_gives_a_token_but_no_region_is_refused(metadata: FakeMetadata) -> None:
    metadata.region = None
    with pytest.raises(ResidencyError, match="gave a token but not the region"):
        check_driver_region(S3_JOB, ["eu-west-1"])


def test_off_ec2_the_configured_region_is_the_one_checked(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 9 of the loopback: the lookup is refused at once, as off EC2.
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
    assert instance_region() is None
    assert check_driver_region(S3_JOB, ["eu-west-1"]) == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with pytest.raises(ResidencyError, match=r"\(AWS_REGION\) is in region us-east-1"):
        check_driver_region(S3_JOB, ["eu-west-1"])


def test_a_local_run_touches_no_region_and_asks_no_metadata(metadata: FakeMetadata) -> None:
    metadata.region = "us-east-1"
    local = ["file:/data/fruits-360", "file:/tmp/run", str(WEIGHTS)]
    assert check_driver_region(local, ["eu-west-1"]) is None
    assert metadata.calls == []


def test_metadata_disabled_means_no_lookup(
    metadata: FakeMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert instance_region() is None
    assert metadata.calls == []
