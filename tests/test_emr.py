"""Issues 3 and 11: the scripts and the residency guard, against a local AWS endpoint (moto,
loopback)."""

from __future__ import annotations

import io
import json
import os
import re
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
from tests.aws import LocalAws, set_step_state
from tests.conftest import ROOT, SAMPLE, WEIGHTS

pytestmark = pytest.mark.e2e  # the shell scripts, run with the AWS CLI against the local AWS

JOB_ARGS = [
    "run",
    "--input",
    "s3://fruits-data-eu/fruits-360/Training/",
    "--output",
    "s3://fruits-data-eu/runs/2026-11-21 first run/",
    "--weights",
    "s3://fruits-data-eu/weights/mobilenet_v2.weights.h5",
    "--variance",
    "0.9",
]


def emr() -> Any:
    return boto3.client("emr", region_name="eu-west-1")


def make_cluster() -> str:
    return emr().run_job_flow(
        Name="test",
        ReleaseLabel="emr-7.10.0",
        LogUri="s3://fruits-code-eu/logs/",
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]


def script_env(aws: LocalAws, region: str = "eu-west-1") -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, **aws.env(region), "PATH": path, "PYTHON": sys.executable}


def run_script(aws: LocalAws, *args: str, region: str = "eu-west-1") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / args[0]), *args[1:]],
        cwd=ROOT,
        env=script_env(aws, region),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def keys(bucket: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def submit(aws: LocalAws, cluster: str, *options: str) -> subprocess.CompletedProcess:
    return run_script(
        aws,
        "submit_step.sh",
        "--cluster-id",
        cluster,
        "--bucket",
        "fruits-code-eu",
        "--version",
        "v1",
        *options,
        "--",
        *JOB_ARGS,
    )


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
        [
            "aws",
            "--endpoint-url",
            aws.endpoint,
            "emr",
            "describe-step",
            "--cluster-id",
            cluster,
            "--step-id",
            step_id,
        ],
        env=script_env(aws),
        capture_output=True,
        text=True,
        check=True,
    )
    step = json.loads(described.stdout)["Step"]
    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == [
        "spark-submit",
        "--deploy-mode",
        "cluster",
        "--conf",
        "spark.yarn.maxAppAttempts=1",
        "--py-files",
        "s3://fruits-code-eu/code/v1/fruits_pipeline.zip",
        "s3://fruits-code-eu/code/v1/main.py",
        *JOB_ARGS,
    ]


@pytest.mark.parametrize(
    ("final", "code"),
    [("COMPLETED", 0), ("FAILED", 10), ("CANCELLED", 10), ("INTERRUPTED", 10)],
)
def test_wait_exits_on_the_steps_final_state(aws: LocalAws, final: str, code: int) -> None:
    cluster = make_cluster()
    command = [
        str(ROOT / "scripts" / "submit_step.sh"),
        "--cluster-id",
        cluster,
        "--bucket",
        "fruits-code-eu",
        "--version",
        "v1",
        "--wait",
        "--poll-seconds",
        "1",
        "--",
        *JOB_ARGS,
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=script_env(aws),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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


def test_wait_gives_up_with_its_own_code_and_leaves_the_step_running(aws: LocalAws) -> None:
    cluster = make_cluster()
    completed = submit(aws, cluster, "--wait", "--poll-seconds", "1", "--timeout-seconds", "1")
    assert completed.returncode == 11, completed.stderr
    assert "gave up waiting after 1 s" in completed.stderr
    (step,) = emr().list_steps(ClusterId=cluster)["Steps"]
    assert step["Status"]["State"] not in {"COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"}


def test_submit_step_exit_codes_are_documented_and_distinct_from_the_jobs() -> None:
    from fruits_pipeline.errors import ExitCode

    helped = subprocess.run(
        [str(ROOT / "scripts" / "submit_step.sh"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    documented = {int(code) for code in re.findall(r"^  (\d+) ", helped, re.M)}
    assert documented == {0, 1, 2, 5, 10, 11}
    # Only the codes both share mean the same: success, failure, usage, residency.
    assert documented & {int(code) for code in ExitCode} == {0, 1, 2, 5}
    runbook = (ROOT / "docs" / "emr-runbook.md").read_text()
    for code in (10, 11):
        assert f"| {code} |" in runbook, f"the runbook's table of submit_step.sh codes lacks {code}"


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
    job_input = "s3://fruits-data-us/in/" if where == "job input" else "s3://fruits-data-eu/in/"
    job = ["run", "--input", job_input, "--output", "s3://fruits-data-eu/out/"]
    completed = run_script(
        aws,
        "submit_step.sh",
        "--cluster-id",
        cluster,
        "--bucket",
        bucket,
        "--version",
        "v1",
        "--",
        *job,
        region="us-east-1" if where == "region" else "eu-west-1",
    )
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
    completed = run_script(
        aws,
        "create_cluster.sh",
        "--bucket",
        "fruits-code-eu",
        "--task-count",
        "3",
        "--spot",
        "--idle-timeout",
        "1800",
    )
    assert completed.returncode == 0, completed.stderr
    cluster_id = completed.stdout.strip()
    assert cluster_id.startswith("j-")
    assert keys("fruits-code-eu") == [
        "code/bootstrap/bootstrap-emr.sh",
        "code/bootstrap/requirements-emr.txt",
    ]
    lock = (
        boto3.client("s3")
        .get_object(Bucket="fruits-code-eu", Key="code/bootstrap/requirements-emr.txt")["Body"]
        .read()
    )
    assert lock == (ROOT / "requirements" / "emr.txt").read_bytes()

    # The region AWS would create it in: the one the CLI signed and sent RunJobFlow to.
    (request,) = aws.emr_calls("RunJobFlow")
    assert request["region"] == "eu-west-1"
    client = emr()
    cluster = client.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["ReleaseLabel"].startswith("emr-7.")
    assert [a["Name"] for a in cluster["Applications"]] == ["Spark"]
    assert cluster["LogUri"] == "s3://fruits-code-eu/logs/"
    actions = client.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    assert [(a["ScriptPath"], a["Args"]) for a in actions] == [
        (
            "s3://fruits-code-eu/code/bootstrap/bootstrap-emr.sh",
            ["--requirements", "s3://fruits-code-eu/code/bootstrap/requirements-emr.txt"],
        )
    ]
    expected_conf = json.loads((ROOT / "conf" / "emr-configurations.json").read_text())
    classifications = {c["Classification"] for c in cluster["Configurations"]}
    assert classifications == {c["Classification"] for c in expected_conf}
    # moto stores neither auto-termination, monitoring nor market: check what the CLI sent.
    sent = json.loads(request["body"])
    assert sent["AutoTerminationPolicy"] == {"IdleTimeout": 1800}
    groups = {g["InstanceRole"]: g for g in sent["Instances"]["InstanceGroups"]}
    # The driver runs on a core node (cluster mode): core stays On-Demand, Spot goes to tasks.
    assert {role: g["Market"] for role, g in groups.items()} == {
        "MASTER": "ON_DEMAND",
        "CORE": "ON_DEMAND",
        "TASK": "SPOT",
    }
    assert {role: g["InstanceCount"] for role, g in groups.items()} == {
        "MASTER": 1,
        "CORE": 2,
        "TASK": 3,
    }
    assert sent["MonitoringConfiguration"] == {
        "S3LoggingConfiguration": {
            "LogTypeUploadPolicy": {
                "system-logs": "on-customer-s3only",
                "application-logs": "on-customer-s3only",
                "persistent-ui-logs": "disabled",
            }
        }
    }
    assert sent["LogUri"] == "s3://fruits-code-eu/logs/"
    assert {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"} in sent["Tags"]
    assert sent["ServiceRole"] == "fruits-pipeline-emr-service"
    assert sent["JobFlowRole"] == "fruits-pipeline-emr-ec2"


def test_create_cluster_without_weights_or_spot_sends_on_demand_only(aws: LocalAws) -> None:
    completed = run_script(aws, "create_cluster.sh", "--bucket", "fruits-code-eu")
    assert completed.returncode == 0, completed.stderr
    sent = json.loads(aws.emr_calls("RunJobFlow")[0]["body"])
    groups = sent["Instances"]["InstanceGroups"]
    assert [(g["InstanceRole"], g["Market"]) for g in groups] == [
        ("MASTER", "ON_DEMAND"),
        ("CORE", "ON_DEMAND"),
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--spot"], "--spot applies to task nodes"),
        (["--release", "emr-7.9.0"], "emr-7.10.0 or a later"),
        (["--core-count", "0"], "the driver runs on a core node"),
    ],
)
def test_create_cluster_refuses_what_cannot_work(aws: LocalAws, options, message) -> None:
    completed = run_script(aws, "create_cluster.sh", "--bucket", "fruits-code-eu", *options)
    assert completed.returncode == 2 and message in completed.stderr
    assert keys("fruits-code-eu") == [] and aws.emr_calls("RunJobFlow") == []


def test_create_cluster_refuses_a_non_eu_region(aws: LocalAws) -> None:
    completed = run_script(
        aws, "create_cluster.sh", "--bucket", "fruits-code-eu", "--region", "us-east-1"
    )
    assert completed.returncode == 5
    assert "region us-east-1" in completed.stderr
    assert keys("fruits-code-eu") == [] and aws.emr_calls("RunJobFlow") == []


def test_create_cluster_dry_run_creates_nothing(aws: LocalAws) -> None:
    completed = run_script(aws, "create_cluster.sh", "--bucket", "fruits-code-eu", "--dry-run")
    assert completed.returncode == 0, completed.stderr
    assert "--auto-termination-policy IdleTimeout=3600" in completed.stdout
    assert "dry-run: aws s3 cp --only-show-errors" in completed.stdout
    assert keys("fruits-code-eu") == [] and aws.emr_calls("RunJobFlow") == []


def iam() -> Any:
    return boto3.client("iam")


def create_roles(aws: LocalAws, *options: str) -> subprocess.CompletedProcess:
    return run_script(
        aws,
        "create_roles.sh",
        "--bucket",
        "fruits-data-eu",
        "--code-bucket",
        "fruits-code-eu",
        *options,
    )


def roles_state() -> dict[str, Any]:
    """Everything create_roles.sh is responsible for, as IAM reports it."""
    client = iam()
    state: dict[str, Any] = {}
    for role in ("fruits-pipeline-emr-service", "fruits-pipeline-emr-ec2"):
        trust = client.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        inline = client.list_role_policies(RoleName=role)["PolicyNames"]
        state[role] = {
            "trusts": [s["Principal"]["Service"] for s in trust["Statement"]],
            "managed": [
                p["PolicyArn"]
                for p in client.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
            ],
            "inline": {
                name: client.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                for name in inline
            },
        }
    profile = client.get_instance_profile(InstanceProfileName="fruits-pipeline-emr-ec2")
    state["profile roles"] = [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]]
    return state


@pytest.mark.aws_managed_policies
def test_create_roles_creates_both_roles_and_the_profile_and_is_idempotent(aws: LocalAws) -> None:
    completed = create_roles(aws)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "fruits-pipeline-emr-ec2"
    first = roles_state()
    service, instance = first["fruits-pipeline-emr-service"], first["fruits-pipeline-emr-ec2"]
    assert service["trusts"] == ["elasticmapreduce.amazonaws.com"]
    assert service["managed"] == ["arn:aws:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"]
    (passing,) = service["inline"].values()
    assert passing["Statement"][0]["Action"] == "iam:PassRole"
    assert passing["Statement"][0]["Resource"] == "arn:aws:iam::*:role/fruits-pipeline-emr-ec2"
    assert instance["trusts"] == ["ec2.amazonaws.com"] and instance["managed"] == []
    (s3_policy,) = instance["inline"].values()
    expected = json.loads(
        (ROOT / "conf" / "iam-instance-role-policy.json")
        .read_text()
        .replace("DATA_BUCKET", "fruits-data-eu")
        .replace("CODE_BUCKET", "fruits-code-eu")
        .replace("GLUE_REGION", "eu-west-1")
        .replace("GLUE_DATABASE", "fruits")
    )
    assert s3_policy == expected
    assert first["profile roles"] == ["fruits-pipeline-emr-ec2"]

    again = create_roles(aws)
    assert again.returncode == 0, again.stderr
    assert "exists" in again.stderr
    assert roles_state() == first  # nothing duplicated, nothing lost
    assert len(iam().list_roles()["Roles"]) == 2


def test_create_roles_dry_run_and_refusals_create_nothing(aws: LocalAws) -> None:
    dry = create_roles(aws, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    for command in (
        "create-role",
        "attach-role-policy",
        "put-role-policy",
        "create-instance-profile",
        "add-role-to-instance-profile",
    ):
        assert f"dry-run: aws iam {command}" in dry.stdout
    assert '"arn:aws:s3:::fruits-data-eu/runs/*"' in dry.stdout
    refused = run_script(aws, "create_roles.sh", "--bucket", "fruits-data-us")
    assert refused.returncode == 5 and "fruits-data-us" in refused.stderr
    bad = run_script(aws, "create_roles.sh", "--bucket", "fruits-data-eu", "--instance-role", "a b")
    assert bad.returncode == 2
    assert iam().list_roles()["Roles"] == []
    assert iam().list_instance_profiles()["InstanceProfiles"] == []


def stage(aws: LocalAws, *options: str) -> subprocess.CompletedProcess:
    return run_script(aws, "stage_weights.sh", "--bucket", "fruits-data-eu", *options)


WEIGHTS_SHA256 = "82996ab2f66b83c7127acc6c951a6fd15f18d27a8ff3b478c0da10aa65c667f2"


def test_stage_weights_uploads_once_with_its_sha256_and_refuses_other_files(
    aws: LocalAws, tmp_path: Path
) -> None:
    key = f"weights/{WEIGHTS.name}"
    first = stage(aws, "--source", str(WEIGHTS), "--sha256", WEIGHTS_SHA256.upper())
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == [f"s3://fruits-data-eu/{key}", WEIGHTS_SHA256]
    head = boto3.client("s3").head_object(Bucket="fruits-data-eu", Key=key)
    assert head["Metadata"] == {"sha256": WEIGHTS_SHA256}
    aws.requests.clear()

    again = stage(aws, "--source", str(WEIGHTS))
    assert again.returncode == 0 and "already holds this file" in again.stderr
    writes = [r for r in aws.requests if r["method"] in ("PUT", "POST")]
    assert writes == []  # checked, not uploaded twice

    other = tmp_path / WEIGHTS.name
    other.write_bytes(WEIGHTS.read_bytes()[:-1] + b"x")
    replaced = stage(aws, "--source", str(other))
    assert replaced.returncode == 3 and "not replacing it" in replaced.stderr
    wrong = stage(aws, "--source", str(WEIGHTS), "--sha256", "0" * 64, "--key", "weights/x.h5")
    assert wrong.returncode == 3 and "refusing to stage it" in wrong.stderr
    assert keys("fruits-data-eu") == [key]


def test_stage_weights_dry_run_names_the_official_file_and_uploads_nothing(aws: LocalAws) -> None:
    from fruits_pipeline.model import IMAGENET_FILE, IMAGENET_URL

    completed = stage(aws, "--dry-run")
    assert completed.returncode == 0, completed.stderr
    assert IMAGENET_URL in completed.stdout
    assert f"s3://fruits-data-eu/weights/{IMAGENET_FILE}" in completed.stdout
    assert keys("fruits-data-eu") == []
    refused = run_script(aws, "stage_weights.sh", "--bucket", "fruits-data-us", "--dry-run")
    assert refused.returncode == 5


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
    code = main(
        [
            "run",
            "--input",
            "s3://fruits-data-us/fruits-360/",
            "--output",
            str(tmp_path / "run"),
            "--weights",
            str(WEIGHTS),
        ]
    )
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
    code = main(
        [
            "run",
            "--input",
            str(tmp_path / "in"),
            "--output",
            str(output),
            "--weights",
            f"s3://fruits-data-eu/{key}",
            "--no-probe",
        ]
    )
    assert code == ExitCode.OK, capsys.readouterr().err
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["weights"]["source"] == f"s3://fruits-data-eu/{key}"
    assert manifest["weights"]["sha256"].startswith("82996ab2f66b")
    assert manifest["residency"]["buckets"] == {"fruits-data-eu": "eu-west-1"}
    assert manifest["counts"]["featurized"] == 6


@pytest.mark.parametrize(
    "command",
    [
        ["create_cluster.sh", "--dry-run", "--bucket", "fruits-code-eu"],  # no --weights-uri
        [
            "create_cluster.sh",
            "--dry-run",
            "--bucket",
            "fruits-code-eu",
            "--weights-uri",
            "s3://fruits-data-eu/weights/w.h5",
            "--task-count",
            "1",
            "--spot",
        ],
        ["create_roles.sh", "--dry-run", "--bucket", "fruits-data-eu"],
        ["stage_weights.sh", "--dry-run", "--bucket", "fruits-data-eu"],
        [
            "submit_step.sh",
            "--dry-run",
            "--cluster-id",
            "j-1",
            "--bucket",
            "fruits-code-eu",
            "--version",
            "v1",
            "--",
            *JOB_ARGS,
        ],
    ],
    ids=lambda command: command[0] + ("+weights" if "--weights-uri" in command else ""),
)
def test_dry_runs_work_in_posix_mode(aws: LocalAws, command: list[str]) -> None:
    """``bash --posix`` (the test_emr_files check covers bash 3.2 itself)."""
    completed = subprocess.run(
        ["bash", "--posix", str(ROOT / "scripts" / command[0]), *command[1:]],
        cwd=ROOT,
        env=script_env(aws),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "dry-run: " in completed.stdout
    assert [r for r in aws.requests if r["method"] != "GET" or "location" not in r["query"]] == []
