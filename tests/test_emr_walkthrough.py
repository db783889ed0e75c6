"""The "Run on EMR" walk, run as written, from an empty account (a fresh
local AWS) to a finished step and its manifest.

Two things no local endpoint can do are played here: the download from Keras' bucket (a fake
``curl`` on PATH hands over the shipped stand-in weights) and the cluster (a thread that, once
the step is added, writes its manifest and marks it COMPLETED, as EMR would).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest

from fruits_pipeline.model import IMAGENET_FILE, IMAGENET_URL
from tests.aws import LocalAws, set_step_state
from tests.conftest import ROOT, SAMPLE, WEIGHTS, count_jpgs_per_label
from tests.test_emr import script_env

pytestmark = pytest.mark.e2e  # the whole walk: scripts, AWS CLI, a run

BUCKET = "fruits-walk-eu"
# The walk's first line names the reader's bucket and data; the test's replace them.
OWN_VALUES = f"export AWS_REGION=eu-west-1 BUCKET={BUCKET} DATA={SAMPLE.relative_to(ROOT)}"
FAKE_CURL = """#!/usr/bin/env bash
# curl ... --output FILE URL: the "download" hands over the shipped stand-in weights.
while (($#)); do
  case "$1" in --output) out=$2; shift 2 ;; -*) shift ;; *) echo "$1" >>"$CURL_LOG"; shift ;; esac
done
cp "$STAND_IN" "$out"
"""
MANIFEST = {"status": "succeeded", "counts": {"files_seen": 240, "featurized": 240, "errors": 0}}


def readme_walk() -> tuple[str, str]:
    """The walk's ``export`` line and the commands after it, as the runbook has them."""
    runbook = (ROOT / "docs" / "emr-runbook.md").read_text()
    section = runbook[runbook.index("## The walk") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    first, rest = block.split("\n", 1)
    return first, rest


def play_the_cluster(stop: threading.Event, done: dict[str, Any]) -> None:
    """Run each added step the way EMR reports one that succeeded: manifest, then COMPLETED."""
    emr, s3 = boto3.client("emr", region_name="eu-west-1"), boto3.client("s3")
    while not stop.wait(0.05):
        for cluster in emr.list_clusters()["Clusters"]:
            for step in emr.list_steps(ClusterId=cluster["Id"])["Steps"]:
                if step["Id"] in done:
                    continue
                args = step["Config"]["Args"]
                output = args[args.index("--output") + 1]
                bucket, _, prefix = output.removeprefix("s3://").partition("/")
                s3.put_object(
                    Bucket=bucket, Key=f"{prefix}manifest.json", Body=json.dumps(MANIFEST).encode()
                )
                set_step_state(cluster["Id"], step["Id"], "COMPLETED")
                done[step["Id"]] = args


@pytest.mark.aws_managed_policies
def test_the_readme_walk_runs_from_an_empty_account_to_the_results(
    aws: LocalAws, tmp_path: Path
) -> None:
    first, commands = readme_walk()
    assert first.startswith("export AWS_REGION=eu-west-1 BUCKET=") and "DATA=" in first
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    env = script_env(aws)
    env.update(
        PATH=f"{bin_dir}:{env['PATH']}", STAND_IN=str(WEIGHTS), CURL_LOG=str(tmp_path / "curl.log")
    )
    stop, done = threading.Event(), {}
    cluster = threading.Thread(target=play_the_cluster, args=(stop, done), daemon=True)
    cluster.start()
    try:
        completed = subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{OWN_VALUES}\n{commands}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        stop.set()
        cluster.join()
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]
    # 8. the results: the manifest the step wrote, read back through the CLI, printed last.
    assert json.loads(completed.stdout[completed.stdout.rindex("\n{") :]) == MANIFEST

    s3, iam = boto3.client("s3"), boto3.client("iam")
    # 1. private bucket in the EU.
    assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "eu-west-1"
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    # 2. the roles the cluster was created with; one bucket for all, so named once a statement.
    assert iam.get_instance_profile(InstanceProfileName="fruits-pipeline-emr-ec2")
    policy = iam.get_role_policy(
        RoleName="fruits-pipeline-emr-ec2", PolicyName="fruits-pipeline-s3"
    )
    assert policy["PolicyDocument"]["Statement"][0]["Resource"] == [f"arn:aws:s3:::{BUCKET}"]
    (run_job_flow,) = aws.emr_calls("RunJobFlow")
    sent = json.loads(run_job_flow["body"])
    assert (sent["ServiceRole"], sent["JobFlowRole"]) == (
        "fruits-pipeline-emr-service",
        "fruits-pipeline-emr-ec2",
    )
    # 3. the official file's name and URL, its sha256 pinned through to the step.
    assert (tmp_path / "curl.log").read_text().split() == [IMAGENET_URL]
    weights = s3.head_object(Bucket=BUCKET, Key=f"weights/{IMAGENET_FILE}")
    sha256 = weights["Metadata"]["sha256"]
    (args,) = done.values()
    assert args[args.index("--weights-sha256") + 1] == sha256
    assert args[args.index("--weights") + 1] == f"s3://{BUCKET}/weights/{IMAGENET_FILE}"
    # 4. every image synced.
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="fruits-360/", MaxKeys=1000)
    images = [item for item in listed["Contents"] if item["Key"].endswith(".jpg")]
    assert len(images) == sum(count_jpgs_per_label(SAMPLE).values())
    # 5. the subnet tagged for AmazonEMRServicePolicy_v2, and the cluster launched in it.
    subnet = sent["Instances"]["Ec2SubnetId"]
    tags = boto3.client("ec2", region_name="eu-west-1").describe_tags(
        Filters=[{"Name": "resource-id", "Values": [subnet]}]
    )["Tags"]
    assert {(t["Key"], t["Value"]) for t in tags} == {
        ("for-use-with-amazon-emr-managed-policies", "true")
    }
