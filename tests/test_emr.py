"""Issue 3: the scripts and the residency guard, against a local AWS endpoint (moto, loopback)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from fruits_pipeline.cli import main
from fruits_pipeline.errors import ExitCode, ResidencyError
from fruits_pipeline.residency import check_buckets, validate_allowed_regions
from tests.aws import LocalAws, create_bucket, reset_aws, set_step_state
from tests.conftest import ROOT, SAMPLE, WEIGHTS

JOB_ARGS = [
    "--input", "s3://fruits-data-eu/fruits-360/Training/",
    "--output", "s3://fruits-data-eu/runs/2026-11-21 first run/",
    "--weights", "s3://fruits-data-eu/weights/mobilenet_v2.weights.h5",
    "--variance", "0.9",
]  # fmt: skip


@pytest.fixture
def aws(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """A reset local AWS, this process's environment pointed at it, two buckets made."""
    reset_aws(local_aws)
    for key, value in local_aws.env().items():
        monkeypatch.setenv(key, value)
    for bucket, region in [("fruits-data-eu", "eu-west-1"), ("fruits-code-eu", "eu-west-1"),
                           ("fruits-data-us", "us-east-1")]:  # fmt: skip
        create_bucket(bucket, region)
    local_aws.requests.clear()  # tests see only what the code under test sent
    return local_aws


def emr() -> Any:
    return boto3.client("emr", region_name="eu-west-1")


def make_cluster() -> str:
    return emr().run_job_flow(
        Name="test", ReleaseLabel="emr-7.10.0", LogUri="s3://fruits-code-eu/logs/",
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1,
                   "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]  # fmt: skip


def script_env(aws: LocalAws, region: str = "eu-west-1") -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, **aws.env(region), "PATH": path, "PYTHON": sys.executable}


def run_script(aws: LocalAws, *args: str, region: str = "eu-west-1") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / args[0]), *args[1:]], cwd=ROOT, env=script_env(aws, region),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def keys(bucket: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def submit(aws: LocalAws, cluster: str, *options: str) -> subprocess.CompletedProcess:
    return run_script(aws, "submit_step.sh", "--cluster-id", cluster, "--bucket",
                      "fruits-code-eu", "--version", "v1", *options, "--", *JOB_ARGS)  # fmt: skip


def test_submit_step_uploads_code_and_adds_the_exact_spark_step(aws: LocalAws) -> None:
    cluster = make_cluster()
    completed = submit(aws, cluster)
    assert completed.returncode == 0, completed.stderr
    step_id = completed.stdout.strip()
    assert step_id.startswith("s-")
    assert keys("fruits-code-eu") == ["code/v1/fruits_pipeline.zip", "code/v1/main.py"]
    body = boto3.client("s3").get_object(Bucket="fruits-code-eu", Key="code/v1/fruits_pipeline.zip")
    names = zipfile.ZipFile(io.BytesIO(body["Body"].read())).namelist()
    assert {"fruits_pipeline/cli.py", "fruits_pipeline/featurize.py"} <= set(names)
    assert not any("__pycache__" in name for name in names)

    described = subprocess.run(
        ["aws", "--endpoint-url", aws.endpoint, "emr", "describe-step",
         "--cluster-id", cluster, "--step-id", step_id],
        env=script_env(aws), capture_output=True, text=True, check=True,
    )  # fmt: skip
    step = json.loads(described.stdout)["Step"]
    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == [
        "spark-submit", "--deploy-mode", "cluster", "--conf", "spark.yarn.maxAppAttempts=1",
        "--py-files", "s3://fruits-code-eu/code/v1/fruits_pipeline.zip",
        "s3://fruits-code-eu/code/v1/main.py", *JOB_ARGS,
    ]  # fmt: skip


@pytest.mark.parametrize(("final", "code"), [("COMPLETED", 0), ("FAILED", 4), ("CANCELLED", 4)])
def test_wait_exits_on_the_steps_final_state(aws: LocalAws, final: str, code: int) -> None:
    cluster = make_cluster()
    command = [str(ROOT / "scripts" / "submit_step.sh"), "--cluster-id", cluster, "--bucket",
               "fruits-code-eu", "--version", "v1", "--wait", "--poll-seconds", "1",
               "--", *JOB_ARGS]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=script_env(aws), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    step_id = process.stdout.readline().strip()
    assert step_id.startswith("s-")
    time.sleep(2)
    assert process.poll() is None  # still waiting while the step RUNS
    set_step_state(cluster, step_id, final)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert f"step {step_id}: {final}" in stderr
    if code:
        assert f"s3://fruits-code-eu/logs/{cluster}/steps/{step_id}/" in stderr


def test_dry_run_changes_nothing(aws: LocalAws) -> None:
    cluster = make_cluster()
    completed = submit(aws, cluster, "--dry-run")
    assert completed.returncode == 0, completed.stderr
    assert "dry-run: aws emr add-steps" in completed.stdout
    assert "dry-run: aws s3 cp" in completed.stdout
    assert keys("fruits-code-eu") == []
    assert emr().list_steps(ClusterId=cluster)["Steps"] == []


@pytest.mark.parametrize("where", ["code bucket", "job input", "region"])
def test_submit_refuses_outside_the_eu_before_uploading(aws: LocalAws, where: str) -> None:
    cluster = make_cluster()
    bucket = "fruits-data-us" if where == "code bucket" else "fruits-code-eu"
    job = ["--input", "s3://fruits-data-us/in/" if where == "job input" else "s3://fruits-data-eu/in/",
           "--output", "s3://fruits-data-eu/out/"]  # fmt: skip
    completed = run_script(
        aws, "submit_step.sh", "--cluster-id", cluster, "--bucket", bucket, "--version", "v1",
        "--", *job, region="us-east-1" if where == "region" else "eu-west-1",
    )  # fmt: skip
    assert completed.returncode == 5, completed.stderr
    if where == "region":
        assert "region us-east-1" in completed.stderr
    else:
        assert "bucket fruits-data-us is in region us-east-1" in completed.stderr
    assert keys("fruits-code-eu") == [] and keys("fruits-data-us") == []
    assert emr().list_steps(ClusterId=cluster)["Steps"] == []


def test_create_cluster_in_eu_with_bootstrap_configurations_and_auto_termination(
    aws: LocalAws,
) -> None:
    completed = run_script(aws, "create_cluster.sh", "--bucket", "fruits-code-eu", "--spot",
                           "--idle-timeout", "1800")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    cluster_id = completed.stdout.strip()
    assert cluster_id.startswith("j-")
    assert keys("fruits-code-eu") == ["code/bootstrap/bootstrap-emr.sh"]

    # The region AWS would create it in: the one the CLI signed and sent RunJobFlow to.
    (request,) = aws.emr_calls("RunJobFlow")
    assert request["region"] == "eu-west-1"
    client = emr()
    cluster = client.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["ReleaseLabel"].startswith("emr-7.")
    assert [a["Name"] for a in cluster["Applications"]] == ["Spark"]
    assert cluster["LogUri"] == "s3://fruits-code-eu/logs/"
    actions = client.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    assert [a["ScriptPath"] for a in actions] == [
        "s3://fruits-code-eu/code/bootstrap/bootstrap-emr.sh"
    ]
    expected_conf = json.loads((ROOT / "conf" / "emr-configurations.json").read_text())
    classifications = {c["Classification"] for c in cluster["Configurations"]}
    assert classifications == {c["Classification"] for c in expected_conf}
    # moto stores no auto-termination policy: check what the CLI sent to the EMR API.
    sent = json.loads(request["body"])
    assert sent["AutoTerminationPolicy"] == {"IdleTimeout": 1800}
    markets = {g["InstanceRole"]: g["Market"] for g in sent["Instances"]["InstanceGroups"]}
    assert markets == {"MASTER": "ON_DEMAND", "CORE": "SPOT"}
    assert [g["InstanceCount"] for g in sent["Instances"]["InstanceGroups"]] == [1, 2]


def test_create_cluster_refuses_a_non_eu_region(aws: LocalAws) -> None:
    completed = run_script(aws, "create_cluster.sh", "--bucket", "fruits-code-eu",
                           "--region", "us-east-1")  # fmt: skip
    assert completed.returncode == 5
    assert "region us-east-1" in completed.stderr
    assert keys("fruits-code-eu") == [] and aws.emr_calls("RunJobFlow") == []


def test_create_cluster_dry_run_creates_nothing(aws: LocalAws) -> None:
    completed = run_script(aws, "create_cluster.sh", "--bucket", "fruits-code-eu", "--dry-run")
    assert completed.returncode == 0, completed.stderr
    assert "--auto-termination-policy IdleTimeout=3600" in completed.stdout
    assert keys("fruits-code-eu") == [] and aws.emr_calls("RunJobFlow") == []


def test_guard_passes_eu_buckets_and_refuses_others(aws: LocalAws) -> None:
    assert check_buckets(["s3://fruits-data-eu/x", "file:/tmp/y", None], ["eu-west-1"]) == {
        "fruits-data-eu": "eu-west-1"
    }
    with pytest.raises(ResidencyError, match="bucket fruits-data-us is in region us-east-1"):
        check_buckets(["s3://fruits-data-eu/x", "s3://fruits-data-us/y"], ["eu-west-1"])
    with pytest.raises(ResidencyError, match="cannot verify the region of bucket no-such"):
        check_buckets(["s3://no-such/x"], ["eu-west-1"])
    for outside in (["us-east-1"], ["eu-west-2"], ["eu-central-2"], []):
        with pytest.raises(ResidencyError):
            validate_allowed_regions(outside)


def test_job_refuses_a_us_bucket_before_reading_anything(aws: LocalAws, tmp_path, capsys) -> None:
    code = main(["--input", "s3://fruits-data-us/fruits-360/", "--output", str(tmp_path / "run"),
                 "--weights", str(WEIGHTS)])  # fmt: skip
    assert code == ExitCode.RESIDENCY
    assert "bucket fruits-data-us is in region us-east-1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    touched = [r for r in aws.requests if r["path"].startswith("/fruits-data-us")]
    assert touched, "the guard never asked where the bucket is"
    assert all(r["method"] == "GET" and r["query"] == "location" for r in touched), touched


def test_job_loads_weights_from_s3_on_the_driver(aws: LocalAws, tmp_path, capsys) -> None:
    key = "weights/mobilenet_v2_1.0_224_no_top_imagenet_from_tflite.weights.h5"
    boto3.client("s3").upload_file(str(WEIGHTS), "fruits-data-eu", key)
    subset = tmp_path / "in" / "Training" / "apple"
    subset.mkdir(parents=True)
    for source in sorted((SAMPLE / "Training" / "apple").glob("*.jpg"))[:6]:
        (subset / source.name).write_bytes(source.read_bytes())
    output = tmp_path / "run"
    code = main(["--input", str(tmp_path / "in"), "--output", str(output), "--weights",
                 f"s3://fruits-data-eu/{key}", "--no-probe"])  # fmt: skip
    assert code == ExitCode.OK, capsys.readouterr().err
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["weights"]["source"] == f"s3://fruits-data-eu/{key}"
    assert manifest["weights"]["sha256"].startswith("82996ab2f66b")
    assert manifest["residency"]["buckets"] == {"fruits-data-eu": "eu-west-1"}
    assert manifest["counts"]["featurized"] == 6
