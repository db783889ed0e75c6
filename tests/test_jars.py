"""The jars a Spark off EMR needs (S3A, Iceberg), and the script that fetches them from Maven."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fruits_pipeline.errors import ExitCode, UsageError
from fruits_pipeline.jars import (
    ICEBERG_JARS,
    S3A_JARS,
    classpath_settings,
    find_jars,
    jars_dir,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.spark

FETCH = ROOT / "scripts" / "fetch_jars.sh"


def test_jars_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRUITS_PIPELINE_JARS", str(tmp_path))
    assert jars_dir() == tmp_path
    monkeypatch.delenv("FRUITS_PIPELINE_JARS")
    monkeypatch.setenv("XDG_CACHE_HOME", "/c")
    assert jars_dir() == Path("/c/fruits-pipeline/jars")


def test_missing_jars_are_a_usage_error_that_says_how_to_fetch(tmp_path: Path) -> None:
    (tmp_path / S3A_JARS[0]).write_bytes(b"jar")
    assert find_jars(S3A_JARS[:1], tmp_path) == [tmp_path / S3A_JARS[0]]
    with pytest.raises(
        UsageError, match=r"aws-java-sdk-bundle-1\.12\.262\.jar missing .*fetch_jars\.sh"
    ):
        find_jars(S3A_JARS, tmp_path)
    assert UsageError.exit_code == ExitCode.USAGE


def test_classpath_settings_reach_driver_and_executors() -> None:
    settings = classpath_settings([Path("/j/a.jar"), Path("/j/b.jar")])
    assert settings == {
        "spark.driver.extraClassPath": "/j/a.jar:/j/b.jar",
        "spark.executor.extraClassPath": "/j/a.jar:/j/b.jar",
    }


def test_the_s3a_jars_match_pysparks_own_hadoop() -> None:
    import pyspark

    shipped = {jar.name for jar in (Path(pyspark.__file__).parent / "jars").glob("hadoop-*.jar")}
    assert "hadoop-client-api-3.3.4.jar" in shipped
    assert S3A_JARS[0] == "hadoop-aws-3.3.4.jar"
    script = FETCH.read_text()
    for name in S3A_JARS + ICEBERG_JARS:  # the script pins exactly the jars the code uses
        artifact, version = name.removesuffix(".jar").rsplit("-", 1)
        assert f":{artifact}:{version} " in script, name


def test_fetch_script_finds_the_cached_jars_and_dry_run_fetches_nothing(tmp_path: Path) -> None:
    cached = subprocess.run([str(FETCH)], capture_output=True, text=True, check=False)
    assert cached.returncode == 0, cached.stderr
    assert Path(cached.stdout.strip()) == jars_dir()
    assert "already there" in cached.stderr
    assert find_jars(S3A_JARS + ICEBERG_JARS, Path(cached.stdout.strip()))  # make test fetched
    empty = tmp_path / "jars"
    dry = subprocess.run([str(FETCH), "--dir", str(empty), "--dry-run"], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert dry.returncode == 0
    assert "would mvn dependency:copy org.apache.hadoop:hadoop-aws:3.3.4" in dry.stderr
    assert "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.1" in dry.stderr
    assert not empty.exists()


def test_fetch_script_refuses_a_jar_with_the_wrong_checksum(tmp_path: Path) -> None:
    for name in S3A_JARS + ICEBERG_JARS:
        (tmp_path / name).write_bytes(b"not the jar")
    completed = subprocess.run([str(FETCH), "--dir", str(tmp_path), "--dry-run"],
                               capture_output=True, text=True, check=False)  # fmt: skip
    assert completed.returncode == 0
    assert "already there" not in completed.stderr  # a wrong jar is never taken as ready
    assert completed.stderr.count("would mvn dependency:copy") == 4
    bad = subprocess.run([str(FETCH), "--nope"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "unknown option" in bad.stderr


def test_a_session_gets_the_jars_its_run_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    from fruits_pipeline.cli import parse_job_args
    from fruits_pipeline.session import extra_jar_settings

    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    local = parse_job_args(["run", "--input", "/in", "--output", "/out"])
    assert extra_jar_settings(local, {}) == {}
    table = parse_job_args(["run", "--input", "/in", "--output", "/out", "--table", "/c"])
    classpath = extra_jar_settings(table, {})["spark.driver.extraClassPath"]
    assert [Path(jar).name for jar in classpath.split(":")] == list(ICEBERG_JARS)
    on_s3 = parse_job_args(
        ["run", "--input", "/in", "--output", "/out", "--table", "s3://fruits-data-eu/c"]
    )
    settings = extra_jar_settings(on_s3, {"fruits-data-eu": "eu-west-1"})
    names = [Path(jar).name for jar in settings["spark.executor.extraClassPath"].split(":")]
    assert names == list(S3A_JARS + ICEBERG_JARS)
    assert settings["spark.hadoop.fs.s3.impl"].endswith("S3AFileSystem")
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "1")  # spark-submit: EMR brings both
    assert extra_jar_settings(on_s3, {}) == {}
