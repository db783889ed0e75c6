"""The S3A settings for Spark on S3 off EMR."""

from __future__ import annotations

import pytest

from fruits_pipeline.s3a import s3_endpoint, s3a_settings

pytestmark = pytest.mark.unit


def test_settings_for_a_local_endpoint_and_for_aws_regions() -> None:
    local = s3a_settings({"bkt": "eu-west-1"}, "http://127.0.0.1:5000")
    assert local["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert local["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:5000"
    assert local["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert local["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert not any(".bucket." in key for key in local)
    aws = s3a_settings({"b2": "eu-central-1", "b1": "eu-west-1"})
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
