"""The S3A settings for Spark on S3 off EMR, and the script that fetches the connector's jars."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fruits_pipeline.errors import ExitCode, UsageError
from fruits_pipeline.s3a import (
    S3A_JARS,
    find_jars,
    jars_dir,
    s3_endpoint,
    s3a_settings,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.spark

FETCH = ROOT / "scripts" / "fetch_s3a_jars.sh"


def test_jars_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRUITS_PIPELINE_S3A_JARS", str(tmp_path))
    assert jars_dir() == tmp_path
    monkeypatch.delenv("FRUITS_PIPELINE_S3A_JARS")
    monkeypatch.setenv("XDG_CACHE_HOME", "/c")
    assert jars_dir() == Path("/c/fruits-pipeline/s3a-jars")


def test_missing_jars_are_a_usage_error_that_says_how_to_fetch(tmp_path: Path) -> None:
    (tmp_path / S3A_JARS[0]).write_bytes(b"jar")
    with pytest.raises(
        UsageError, match=r"aws-java-sdk-bundle-1\.11\.901\.jar missing .*fetch_s3a_jars\.sh"
    ):
        find_jars(tmp_path)
    assert UsageError.exit_code == ExitCode.USAGE


def test_settings_for_a_local_endpoint_and_for_aws_regions() -> None:
    jars = [Path("/j/a.jar"), Path("/j/b.jar")]
    local = s3a_settings(jars, {"bkt": "eu-west-1"}, "http://127.0.0.1:5000")
    assert local["spark.driver.extraClassPath"] == "/j/a.jar:/j/b.jar"
    assert local["spark.executor.extraClassPath"] == "/j/a.jar:/j/b.jar"
    assert local["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert local["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:5000"
    assert local["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert local["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert not any(".bucket." in key for key in local)
    aws = s3a_settings(jars, {"b2": "eu-central-1", "b1": "eu-west-1"})
    assert aws["spark.hadoop.fs.s3a.bucket.b1.endpoint"] == "s3.eu-west-1.amazonaws.com"
    assert aws["spark.hadoop.fs.s3a.bucket.b2.endpoint"] == "s3.eu-central-1.amazonaws.com"
    assert "spark.hadoop.fs.s3a.endpoint" not in aws
    assert aws["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith(
        "DefaultAWSCredentialsProviderChain"
    )


def test_endpoint_comes_from_the_sdk_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert s3_endpoint() is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert s3_endpoint() == "http://127.0.0.1:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2")
    assert s3_endpoint() == "http://127.0.0.1:2"


def test_fetch_script_finds_the_cached_jars_and_dry_run_fetches_nothing(tmp_path: Path) -> None:
    cached = subprocess.run([str(FETCH)], capture_output=True, text=True, check=False)
    assert cached.returncode == 0, cached.stderr
    assert Path(cached.stdout.strip()) == jars_dir()
    assert "already there" in cached.stderr
    assert find_jars(Path(cached.stdout.strip()))  # make test ran the real fetch
    empty = tmp_path / "jars"
    dry = subprocess.run([str(FETCH), "--dir", str(empty), "--dry-run"], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert dry.returncode == 0
    assert "would pip download sagemaker_pyspark==1.4.5" in dry.stderr
    assert not empty.exists()


def test_fetch_script_refuses_a_jar_with_the_wrong_checksum(tmp_path: Path) -> None:
    for name in S3A_JARS:
        (tmp_path / name).write_bytes(b"not the jar")
    completed = subprocess.run([str(FETCH), "--dir", str(tmp_path), "--dry-run"],
                               capture_output=True, text=True, check=False)  # fmt: skip
    assert completed.returncode == 0
    assert "already there" not in completed.stderr  # a wrong jar is never taken as ready
    bad = subprocess.run([str(FETCH), "--nope"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "unknown option" in bad.stderr
