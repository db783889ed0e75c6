"""The EMR path, run for real: the step EMR received, run by ``spark-submit`` on a Spark with
separate executor JVMs and Python workers (``local-cluster``), reading and writing only S3
through the S3A connector (EMR 7.10+ serves ``s3://`` with S3A) against the local S3 server.

One run serves most tests (it takes a minute or two): it is submitted with
``scripts/submit_step.sh`` to the local EMR endpoint, and the step's own arguments, read back
from EMR, are what runs; one of its Python workers is killed while it runs the model.

A collection on S3 (``--table s3://…/collections/fruits``, an Iceberg Hadoop catalog whose
warehouse is on S3, through S3A) is run the same way on a small folder of its own: a first run,
then the same command again after new photos arrive and one is deleted.
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
from fruits_pipeline.jars import ICEBERG_JARS, S3A_JARS, classpath_settings, find_jars
from fruits_pipeline.s3a import s3a_settings
from fruits_pipeline.step import local_command, spark_submit_args
from fruits_pipeline.table import parse_table
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
NOT_LOCAL = (
    "spark.pyspark.",
    "spark.executor.memory",
    "spark.executor.cores",
    "spark.executor.pyspark.memory",
    "spark.executor.instances",
    "spark.driver.memory",
    "spark.driver.cores",
    "spark.dynamicAllocation.",
)


def emr_classification(name: str) -> dict[str, str]:
    """The properties of classification ``name`` in ``conf/emr-configurations.json`` ({} if
    the file has none)."""
    listing = json.loads((ROOT / "conf" / "emr-configurations.json").read_text())
    found = [c.get("Properties", {}) for c in listing if c["Classification"] == name]
    return found[0] if found else {}


def emr_spark_defaults() -> dict[str, str]:
    """``conf/emr-configurations.json``'s spark-defaults that apply to a local-cluster run."""
    defaults = emr_classification("spark-defaults")
    return {k: v for k, v in defaults.items() if not k.startswith(NOT_LOCAL)}


def emr_jars() -> list[Path]:
    """The jars EMR puts on every step's class path that a local Spark lacks: S3A (EMR serves
    ``s3://`` with it), and Iceberg's only when the configuration turns EMR's Iceberg on
    (``iceberg-defaults``): without it on EMR, ``--table`` fails here too."""
    iceberg = emr_classification("iceberg-defaults").get("iceberg.enabled") == "true"
    return find_jars(S3A_JARS + (ICEBERG_JARS if iceberg else ()))


def sample_photos() -> list[Path]:
    """The shipped sample's 240 photos, sorted (so by split, then class)."""
    return sorted(p for p in SAMPLE.rglob("*") if p.suffix == ".jpg")


def put_photo(client: Any, prefix: str, photo: Path, name: str | None = None) -> tuple[str, str]:
    """Upload ``photo`` as ``prefix/SPLIT/LABEL/NAME`` (its class renamed by ``RENAMED``);
    return its ``s3://`` path and the label it must come out with."""
    label = RENAMED.get(photo.parent.name, photo.parent.name)
    key = f"{prefix}/{photo.parent.parent.name}/{label}/{name or photo.name}"
    client.put_object(Bucket=BUCKET, Key=key, Body=photo.read_bytes())
    return f"s3://{BUCKET}/{key}", label


def upload_input(client: Any) -> dict[str, str]:
    """Upload the sample twice over (480 photos), a corrupt, an empty and a "hidden" object
    (its name starts with "_"); return the ``{s3 path: label}`` every photo must come out with."""
    expected = {}
    photos = sample_photos()
    for copy in ("", "copy "):
        for photo in photos:
            name = copy + photo.name
            if photo == photos[0] and copy:
                name = name.replace(".jpg", ".JPG")
            uri, label = put_photo(client, "fruits-360", photo, name)
            expected[uri] = label
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
        **classpath_settings(emr_jars()),
        **s3a_settings({}, aws.endpoint),
    }
    command = local_command(step_args, spark_submit, MASTER, conf)
    env = {
        **os.environ,
        **aws.env(),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
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
    return {
        "returncode": process.returncode,
        "stdout": "".join(stdout),
        "stderr": stderr,
        "killed": killed,
        "seconds": time.monotonic() - started,
    }


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


def read_manifest(run: str) -> dict[str, Any]:
    """The ``manifest.json`` of run folder ``run`` (``s3://BUCKET/.../``), read with boto3."""
    key = run.removeprefix(f"s3://{BUCKET}/") + "manifest.json"
    return json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


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
            Name="e2e",
            ReleaseLabel="emr-7.10.0",
            LogUri=f"s3://{BUCKET}/logs/",
            Instances={
                "MasterInstanceType": "m5.xlarge",
                "InstanceCount": 1,
                "KeepJobFlowAliveWhenNoSteps": True,
            },
            JobFlowRole="EMR_EC2_DefaultRole",
            ServiceRole="EMR_DefaultRole",
        )["JobFlowId"]
        submitted = subprocess.run(
            [
                str(ROOT / "scripts" / "submit_step.sh"),
                "--cluster-id",
                cluster,
                "--bucket",
                BUCKET,
                "--version",
                "e2e",
                "--",
                *JOB_ARGS,
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHON": sys.executable, "PATH": venv_path()},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
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
    manifest = read_manifest(OUTPUT)
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
        [
            str(Path(sys.executable).parent / "fruits-pipeline"),
            "report",
            OUTPUT,
            "--out",
            str(tmp_path / "report"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    page = (tmp_path / "report" / "report.html").read_text()
    assert "corrupt 1.jpg" in page and "not_an_image" in page
    assert "data:image/png;base64," in page


def test_the_same_command_on_a_us_bucket_is_refused_and_writes_nothing(
    s3_run: dict[str, Any],
) -> None:
    us_output = f"s3://{US_BUCKET}/runs/x/"
    args = spark_submit_args(
        CODE_PREFIX, ["run", "--input", INPUT, "--output", us_output, "--weights", WEIGHTS_URI]
    )
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
        [
            str(Path(sys.executable).parent / "fruits-pipeline"),
            "run",
            "--input",
            subset,
            "--output",
            output,
            "--weights",
            WEIGHTS_URI,
            "--no-probe",
            "--master",
            "local[2]",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    manifest = read_manifest(output)
    assert manifest["status"] == "succeeded"
    assert manifest["counts"]["per_label"] == {
        "Pêche Plate": {"files_seen": 40, "featurized": 40, "errors": 0}
    }


# A collection on S3: its own small input folder, the same step run twice (--overwrite: the
# same command every time, as a scheduler would run it).
TABLE = f"s3://{BUCKET}/collections/fruits"
TABLE_PREFIX = "collection-in"
TABLE_OUTPUT = f"s3://{BUCKET}/runs/collection/"
TABLE_JOB_ARGS = [
    "run",
    "--input",
    f"s3://{BUCKET}/{TABLE_PREFIX}/",
    "--output",
    TABLE_OUTPUT,
    "--table",
    TABLE,
    "--weights",
    WEIGHTS_URI,
    "--overwrite",
]
TABLE_BAD = {  # key under TABLE_PREFIX: (label, error kind, body)
    "Training/Cocos/corrupt 2.jpg": ("Cocos", "not_an_image", random.Random(8).randbytes(2000)),
    "Test/mango/empty 2.jpg": ("mango", "empty_file", b""),
}


@pytest.fixture(scope="module")
def table_runs(s3_run: dict[str, Any]) -> dict[str, Any]:
    """Two runs of one step with ``--table`` on S3 (the code ``s3_run`` uploaded): 40 photos
    of every class and two bad objects, then, after 8 new photos and one deleted, again.

    Returns ``{"runs": [run_locally's result] * 2, "manifests": [...] * 2, "current": {s3
    path: label} of the photos listed by the second run, "new": its new photos' paths, "aws"}``.
    """
    client, aws = boto3.client("s3"), s3_run["aws"]
    photos = sample_photos()
    current = dict(put_photo(client, TABLE_PREFIX, photo) for photo in photos[::6])
    for key, (_, _, body) in TABLE_BAD.items():
        client.put_object(Bucket=BUCKET, Key=f"{TABLE_PREFIX}/{key}", Body=body)
    step_args = spark_submit_args(CODE_PREFIX, TABLE_JOB_ARGS)
    runs = [run_locally(step_args, aws)]
    manifests = [read_manifest(TABLE_OUTPUT) if runs[0]["returncode"] == 0 else {}]
    gone = sorted(current)[0]
    client.delete_object(Bucket=BUCKET, Key=gone.removeprefix(f"s3://{BUCKET}/"))
    del current[gone]
    new = dict(
        put_photo(client, TABLE_PREFIX, photo, f"new {photo.name}") for photo in photos[1::30]
    )
    current.update(new)
    runs.append(run_locally(step_args, aws))
    manifests.append(read_manifest(TABLE_OUTPUT) if runs[1]["returncode"] == 0 else {})
    return {"runs": runs, "manifests": manifests, "current": current, "new": set(new), "aws": aws}


def test_a_first_table_run_on_s3_featurizes_every_listed_file(table_runs: dict[str, Any]) -> None:
    first = table_runs["runs"][0]
    assert first["returncode"] == 0, first["stdout"][-3000:] + first["stderr"][-5000:]
    print(f"local-cluster table runs on S3: {[round(r['seconds']) for r in table_runs['runs']]} s")
    manifest = table_runs["manifests"][0]
    assert manifest["status"] == "succeeded"
    assert manifest["collection"]["table"] == TABLE
    assert manifest["collection"]["rows"] == manifest["counts"]["featurized"] == 40
    assert manifest["collection"]["featurized"] == 42  # every listed file went through the pass
    assert manifest["counts"]["model_runs"] == 41  # the empty object never reaches the model
    assert manifest["collection"]["removed"] == 0 and manifest["collection"]["refitted"]


def test_the_same_command_again_runs_the_model_on_the_new_photos_only(
    table_runs: dict[str, Any],
) -> None:
    second = table_runs["runs"][1]
    assert second["returncode"] == 0, second["stdout"][-3000:] + second["stderr"][-5000:]
    manifest = table_runs["manifests"][1]
    assert manifest["counts"]["model_runs"] == 8, "the model ran on photos the table held"
    collection = manifest["collection"]
    assert (collection["featurized"], collection["removed"], collection["rows"]) == (8, 1, 47)
    counts = manifest["counts"]
    assert (counts["files_seen"], counts["featurized"], counts["errors"]) == (49, 47, 2)
    # The run folder: pca/ holds what the run projects (all after a refit, else the new ones).
    pca = read_parquet_from_s3("runs/collection/pca")
    projected = set(table_runs["current"]) if collection["refitted"] else table_runs["new"]
    assert set(pca["path"]) == projected and pca["path"].is_unique


def test_the_table_on_s3_holds_the_current_photos_and_the_bad_objects(
    table_runs: dict[str, Any], spark
) -> None:
    """Read back with Spark and the job's own catalog settings, through S3A."""
    assert [run["returncode"] for run in table_runs["runs"]] == [0, 0]
    point_spark_at(spark, table_runs["aws"])
    table = parse_table(TABLE)
    for key, value in table.settings.items():  # the catalog, as the job sets it
        spark.conf.set(key, value)
    rows = spark.table(table.features).select("path", "label", "run_id").collect()
    current, new = table_runs["current"], table_runs["new"]
    assert len(rows) == len(current) and {r.path: r.label for r in rows} == current
    by_run: dict[str, set[str]] = {}
    for row in rows:  # the earlier photos' rows are the first run's, untouched
        by_run.setdefault(row.run_id, set()).add(row.path)
    assert sorted(by_run.values(), key=len) == [new, set(current) - new]
    bad = {
        f"s3://{BUCKET}/{TABLE_PREFIX}/{key}": (label, kind)
        for key, (label, kind, _) in TABLE_BAD.items()
    }
    errors = spark.table(table.errors).collect()
    assert {row.path: (row.label, row.error_kind) for row in errors} == bad
    in_run_folder = read_parquet_from_s3("runs/collection/errors")
    assert dict(zip(in_run_folder["path"], in_run_folder["error_kind"], strict=True)) == {
        path: kind for path, (_, kind) in bad.items()
    }


def test_the_table_metadata_names_its_files_with_s3_uris(table_runs: dict[str, Any]) -> None:
    """Iceberg writes the warehouse's scheme into every metadata file: ``s3://`` as given (not
    ``s3a://``), so Athena, pyiceberg and EMR read the table's files where they are."""
    client, prefix = boto3.client("s3"), "collections/fruits/features/metadata/"
    version = client.get_object(Bucket=BUCKET, Key=f"{prefix}version-hint.text")["Body"].read()
    key = f"{prefix}v{version.decode().strip()}.metadata.json"
    metadata = json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert metadata["location"] == f"{TABLE}/features"
    assert metadata["properties"]["write.delete.mode"] == "merge-on-read"
