"""The EMR path, run for real: the step EMR received, run by ``spark-submit`` on a Spark with
separate executor JVMs and Python workers (``local-cluster``), reading and writing only S3
through the S3A connector (EMR 7.10+ serves ``s3://`` with S3A) against the local S3 server.

One run serves most tests (it takes a minute or two): it is submitted with
``scripts/submit_step.sh`` to the local EMR endpoint, and the step's own arguments, read back
from EMR, are what runs; one of its Python workers is killed while it runs the model.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.functions import array_to_vector, vector_to_array

from fruits_pipeline.errors import ExitCode
from fruits_pipeline.jars import S3A_JARS, classpath_settings, find_jars
from fruits_pipeline.s3a import s3a_settings
from fruits_pipeline.step import local_command, spark_submit_args
from tests.aws import LocalAws, create_bucket, point_spark_at, reset_aws
from tests.conftest import ROOT, SAMPLE, WEIGHTS

pytestmark = pytest.mark.e2e

BUCKET = "fruits-e2e-eu"
US_BUCKET = "fruits-e2e-us"
MASTER = "local-cluster[2,1,2048]"  # two executor JVMs, one core and 2 GB each
CODE_PREFIX = f"s3://{BUCKET}/code/e2e"
WEIGHTS_URI = f"s3://{BUCKET}/weights/{WEIGHTS.name}"
INPUT = f"s3://{BUCKET}/fruits-360/"
OUTPUT = f"s3://{BUCKET}/runs/2026-11-22 e2e/"
JOB_ARGS = ["run", "--input", INPUT, "--output", OUTPUT, "--weights", WEIGHTS_URI]
# Folder names as the app's users will write them: spaces, a plus, non-ASCII letters.
RENAMED = {"apple": "Apple Braeburn", "Cherry": "Cherry Wax+Red", "lemon": "Pêche Plate"}
CORRUPT_KEY = "fruits-360/Training/Cocos/corrupt 1.jpg"
HIDDEN_KEY = "fruits-360/Training/Apple Braeburn/_IMG 2.jpg"  # Spark's sources never list it
EMPTY_KEY = "fruits-360/Test/mango/empty.jpg"
# EMR's spark-defaults that size executors for an m5.xlarge or point at EMR's interpreter make
# no sense on local-cluster's 1-core, 2 GB executors; every other setting applies as on EMR.
NOT_LOCAL = ("spark.pyspark.", "spark.executor.memory", "spark.executor.cores",
             "spark.executor.pyspark.memory", "spark.executor.instances", "spark.driver.memory",
             "spark.driver.cores", "spark.dynamicAllocation.")  # fmt: skip


def emr_spark_defaults() -> dict[str, str]:
    """``conf/emr-configurations.json``'s spark-defaults that apply to a local-cluster run."""
    listing = json.loads((ROOT / "conf" / "emr-configurations.json").read_text())
    (defaults,) = [c["Properties"] for c in listing if c["Classification"] == "spark-defaults"]
    return {k: v for k, v in defaults.items() if not k.startswith(NOT_LOCAL)}


def upload_input(client: Any) -> dict[str, str]:
    """Upload the sample twice over (480 photos), a corrupt, an empty and a "hidden" object
    (its name starts with "_"); return the ``{s3 path: label}`` every photo must come out with."""
    expected = {}
    photos = sorted(p for p in SAMPLE.rglob("*") if p.suffix == ".jpg")
    for copy in ("", "copy "):
        for photo in photos:
            label = RENAMED.get(photo.parent.name, photo.parent.name)
            name = copy + photo.name
            if photo == photos[0] and copy:
                name = name.replace(".jpg", ".JPG")
            key = f"fruits-360/{photo.parent.parent.name}/{label}/{name}"
            client.put_object(Bucket=BUCKET, Key=key, Body=photo.read_bytes())
            expected[f"s3://{BUCKET}/{key}"] = label
    client.put_object(Bucket=BUCKET, Key=CORRUPT_KEY, Body=random.Random(7).randbytes(3000))
    client.put_object(Bucket=BUCKET, Key=EMPTY_KEY, Body=b"")
    client.put_object(Bucket=BUCKET, Key=HIDDEN_KEY, Body=photos[0].read_bytes())
    return expected


def descendants(root: int) -> list[int]:
    """Every live process below ``root``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def kill_a_busy_python_worker(root: int, within_s: float = 60.0) -> int | None:
    """SIGKILL one Python worker below ``root`` that is busy running a task; return its pid.

    Spark's Python workers are forked from ``pyspark.daemon``, so a worker is a process whose
    command line and whose parent's both name it; busy means it used CPU in the last 0.3 s.
    """
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        workers = []
        for pid in descendants(root):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                parent_command = Path(f"/proc/{parent}/cmdline").read_bytes()
                if b"pyspark.daemon" in command and b"pyspark.daemon" in parent_command:
                    workers.append((pid, cpu_ticks(pid)))
            except (OSError, ValueError, IndexError):
                continue
        time.sleep(0.3)
        for pid, ticks in workers:
            try:
                if cpu_ticks(pid) > ticks:
                    os.kill(pid, signal.SIGKILL)
                    return pid
            except OSError:
                continue
    return None


def spark_work_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "work"


def run_locally(
    step_args: list[str], aws: LocalAws, kill_during_featurize: bool = False
) -> dict[str, Any]:
    """Run ``step_args`` on ``MASTER`` with S3A pointed at ``aws``; optionally kill a busy
    Python worker once featurize starts. Leaves no ``work/`` folder in the pyspark package."""
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    conf = {
        **emr_spark_defaults(),
        **classpath_settings(find_jars(S3A_JARS)),
        **s3a_settings({}, aws.endpoint),
    }
    command = local_command(step_args, spark_submit, MASTER, conf)
    env = {**os.environ, **aws.env(), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}  # fmt: skip
    work = spark_work_dir()
    before = set(work.iterdir()) if work.exists() else None
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout, killed = [], None
    assert process.stdout is not None
    for line in process.stdout:
        stdout.append(line)
        if kill_during_featurize and killed is None and re.search(r"\) featurize \.\.\.$", line):
            killed = kill_a_busy_python_worker(process.pid)
    stderr = process.stderr.read() if process.stderr else ""
    process.wait(timeout=60)
    if before is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        for entry in set(work.iterdir()) - before:
            shutil.rmtree(entry, ignore_errors=True)
    return {"returncode": process.returncode, "stdout": "".join(stdout), "stderr": stderr,
            "killed": killed, "seconds": time.monotonic() - started}  # fmt: skip


def read_parquet_from_s3(prefix: str) -> pd.DataFrame:
    """Every Parquet part under ``s3://BUCKET/prefix/``, read with boto3 and pandas."""
    client = boto3.client("s3")
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix.rstrip("/") + "/")
    frames = [
        pd.read_parquet(
            io.BytesIO(client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
        )
        for item in listing.get("Contents", [])
        if item["Key"].endswith(".parquet")
    ]
    return pd.concat(frames, ignore_index=True)


def venv_path() -> str:
    """PATH with this interpreter's folder first (the AWS CLI and spark-submit of the venv)."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def output_key(name: str) -> str:
    return OUTPUT.removeprefix(f"s3://{BUCKET}/") + name


@pytest.fixture(scope="module")
def s3_run(local_aws: LocalAws) -> dict[str, Any]:
    """The README's EMR walk against the local endpoints, then the step run on local-cluster."""
    with pytest.MonkeyPatch.context() as patch:
        reset_aws(local_aws)
        for key, value in local_aws.env().items():
            patch.setenv(key, value)
        create_bucket(BUCKET, "eu-west-1")
        create_bucket(US_BUCKET, "us-east-1")
        client = boto3.client("s3")
        expected = upload_input(client)
        client.upload_file(str(WEIGHTS), BUCKET, WEIGHTS_URI.removeprefix(f"s3://{BUCKET}/"))
        emr = boto3.client("emr", region_name="eu-west-1")
        cluster = emr.run_job_flow(
            Name="e2e", ReleaseLabel="emr-7.10.0", LogUri=f"s3://{BUCKET}/logs/",
            Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1,
                       "KeepJobFlowAliveWhenNoSteps": True},
            JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
        )["JobFlowId"]  # fmt: skip
        submitted = subprocess.run(
            [str(ROOT / "scripts" / "submit_step.sh"), "--cluster-id", cluster, "--bucket",
             BUCKET, "--version", "e2e", "--", *JOB_ARGS],
            cwd=ROOT, env={**os.environ, "PYTHON": sys.executable, "PATH": venv_path()},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        step = emr.describe_step(ClusterId=cluster, StepId=submitted.stdout.strip())["Step"]
        step_args = step["Config"]["Args"]
        result = run_locally(step_args, local_aws, kill_during_featurize=True)
        yield {**result, "aws": local_aws, "expected": expected, "step_args": step_args}


def test_the_step_emr_received_is_the_one_the_builder_makes(s3_run: dict[str, Any]) -> None:
    assert s3_run["step_args"] == spark_submit_args(CODE_PREFIX, JOB_ARGS)
    assert s3_run["step_args"][:3] == ["spark-submit", "--deploy-mode", "cluster"]


def test_run_on_s3_succeeds_with_every_photo_featurized_exactly_once(
    s3_run: dict[str, Any],
) -> None:
    assert s3_run["returncode"] == 0, s3_run["stdout"][-3000:] + s3_run["stderr"][-5000:]
    print(f"local-cluster run on S3: {s3_run['seconds']:.0f} s")
    # The job stops its session: no executor relaunched while the JVM shuts down (RunSession).
    assert "Failed to launch executor" not in s3_run["stderr"]
    features = read_parquet_from_s3(output_key("features"))
    assert len(features) == len(s3_run["expected"]) == 480
    assert features["path"].is_unique, "a retried task left duplicate rows"
    assert dict(zip(features["path"], features["label"], strict=True)) == s3_run["expected"]
    assert all(len(vector) == 1280 for vector in features["features"])
    assert set(features["split"]) == {"Training", "Test"}


def test_bad_objects_are_in_errors_with_their_reason(s3_run: dict[str, Any]) -> None:
    errors = read_parquet_from_s3(output_key("errors"))
    found = {row.path: (row.label, row.error_kind) for row in errors.itertuples()}
    assert found == {
        f"s3://{BUCKET}/{CORRUPT_KEY}": ("Cocos", "not_an_image"),
        f"s3://{BUCKET}/{EMPTY_KEY}": ("mango", "empty_file"),
        f"s3://{BUCKET}/{HIDDEN_KEY}": ("Apple Braeburn", "ignored_name"),
    }
    assert all(errors["error_message"].str.len() > 10)


def test_manifest_pca_and_model_are_written_to_s3(s3_run: dict[str, Any], spark) -> None:
    manifest = json.loads(
        boto3.client("s3").get_object(Bucket=BUCKET, Key=output_key("manifest.json"))["Body"].read()
    )
    assert manifest["status"] == "succeeded"
    assert manifest["counts"]["files_seen"] == 483
    assert manifest["counts"]["featurized"] == 480
    assert manifest["counts"]["errors"] == 3
    assert manifest["counts"]["per_label"]["Pêche Plate"]["featurized"] == 80
    assert manifest["residency"]["buckets"] == {BUCKET: "eu-west-1"}
    assert manifest["weights"]["source"] == WEIGHTS_URI
    k = manifest["reduction"]["k"]
    pca = read_parquet_from_s3(output_key("pca")).sort_values("path").reset_index(drop=True)
    assert len(pca) == 480 and all(len(v) == k for v in pca["pca_features"])

    point_spark_at(spark, s3_run["aws"])
    model = PipelineModel.load(OUTPUT + "model")
    features = spark.read.parquet(OUTPUT + "features").orderBy("path").limit(5)
    projected = model.transform(features.withColumn("features_vector", array_to_vector("features")))
    rows = projected.select("path", vector_to_array("pca_vector").alias("p")).collect()
    by_path = dict(zip(pca["path"], pca["pca_features"], strict=True))
    for row in rows:
        assert max(abs(a - b) for a, b in zip(row.p, by_path[row.path], strict=True)) < 1e-3


def test_a_python_worker_killed_during_featurize_is_survived(s3_run: dict[str, Any]) -> None:
    assert s3_run["killed"] is not None, "no busy Python worker was found to kill"
    assert re.search(r"Lost task|Python worker exited unexpectedly", s3_run["stderr"]), (
        "the killed worker's task never failed: the fault missed the model"
    )
    assert s3_run["returncode"] == 0  # retried (spark.task.maxFailures), see the test above


def test_report_reads_the_run_from_s3(s3_run: dict[str, Any], tmp_path: Path) -> None:
    env = {**os.environ, **s3_run["aws"].env()}
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "fruits-pipeline"), "report", OUTPUT,
         "--out", str(tmp_path / "report")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    page = (tmp_path / "report" / "report.html").read_text()
    assert "corrupt 1.jpg" in page and "not_an_image" in page
    assert "data:image/png;base64," in page


def test_the_same_command_on_a_us_bucket_is_refused_and_writes_nothing(
    s3_run: dict[str, Any],
) -> None:
    us_output = f"s3://{US_BUCKET}/runs/x/"
    args = spark_submit_args(CODE_PREFIX, ["run", "--input", INPUT, "--output", us_output,
                                           "--weights", WEIGHTS_URI])  # fmt: skip
    result = run_locally(args, s3_run["aws"])
    assert result["returncode"] == ExitCode.RESIDENCY, result["stderr"][-3000:]
    # spark-submit hands the Python driver's stderr to its own stdout.
    assert f"bucket {US_BUCKET} is in region us-east-1" in result["stdout"]
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=US_BUCKET)


def test_rerun_on_an_s3_output_that_holds_a_run_is_refused(s3_run: dict[str, Any]) -> None:
    key = output_key("manifest.json")
    before = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    result = run_locally(s3_run["step_args"], s3_run["aws"])
    assert result["returncode"] == ExitCode.OUTPUT_EXISTS, result["stderr"][-3000:]
    assert "already holds a run" in result["stdout"]
    assert boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read() == before


def test_console_script_reads_and_writes_s3_from_a_laptop(s3_run: dict[str, Any]) -> None:
    """The README's "Run against S3 from your laptop": local[*], S3A from the fetched jars."""
    subset = f"s3://{BUCKET}/fruits-360/Test/Pêche Plate/"
    output = f"s3://{BUCKET}/runs/laptop/"
    env = {**os.environ, **s3_run["aws"].env()}
    env.pop("PYSPARK_PYTHON", None)  # as a user runs it: the job finds its own interpreter
    env.pop("PYSPARK_SUBMIT_ARGS", None)  # and its own S3A jars
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "fruits-pipeline"), "run", "--input", subset, "--output",
         output, "--weights", WEIGHTS_URI, "--no-probe", "--master", "local[2]"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    manifest = json.loads(
        boto3.client("s3").get_object(Bucket=BUCKET, Key="runs/laptop/manifest.json")["Body"].read()
    )
    assert manifest["status"] == "succeeded"
    assert manifest["counts"]["per_label"] == {
        "Pêche Plate": {"files_seen": 40, "featurized": 40, "errors": 0}
    }
