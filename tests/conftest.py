"""Shared fixtures: one local Spark session, the shipped sample and weights, one sample run, and
a local AWS (moto on 127.0.0.1) with the project's buckets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from fruits_pipeline.jars import ICEBERG_JARS, S3A_JARS, find_jars
from fruits_pipeline.table import CollectionTable, open_collection, parse_table
from tests.aws import LocalAws, create_bucket, reset_aws, start_local_aws

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample" / "fruits-360"
WEIGHTS = ROOT / "models" / "mobilenet_v2_1.0_224_no_top_imagenet_from_tflite.weights.h5"
SHARED_SAMPLE = ROOT.parent / "shared" / "fruits-360-sample"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers: this venv, whatever PATH says
# Every JVM this test process starts (the fixture's, or a job's run in-process, whichever comes
# first: stopping a session does not restart the JVM) has the S3A and Iceberg jars, so any test
# can read a run written to the local S3 server or open an Iceberg table (``make test`` fetches
# them).
os.environ.setdefault(
    "PYSPARK_SUBMIT_ARGS",
    "--driver-class-path "
    f"{os.pathsep.join(str(jar) for jar in find_jars(S3A_JARS + ICEBERG_JARS))} pyspark-shell",
)


# Every test is of one cost tier: the marker closest to it (a test's own marker overrides its
# module's ``pytestmark``). ``--tier unit,spark`` runs those tiers only (``make test-quick``).
TIERS = ("unit", "spark", "e2e")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tier",
        default=",".join(TIERS),
        help="comma-separated cost tiers to run: " + ", ".join(TIERS) + " (default: all)",
    )


def tier_of(item: pytest.Item) -> str | None:
    """The closest tier marker: the test's own, else its class's, else its module's."""
    return next((mark.name for mark in item.iter_markers() if mark.name in TIERS), None)


# Modules of the unit and spark tiers long enough that, collected in their alphabetical place,
# one would be left running alone at the end of ``make test-quick`` while the other process
# idles (its ``--durations`` names them): they are handed out first, after tests/e2e/.
LONG_MODULES = ("tests/test_table.py", "tests/test_commits.py", "tests/test_accounting.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test without a tier; keep only the tiers asked for with ``--tier``; hand out
    tests/e2e/ first, then ``LONG_MODULES``, then the rest in collection order."""
    untiered = [item.nodeid for item in items if tier_of(item) is None]
    if untiered:
        raise pytest.UsageError(
            "every test needs a tier marker (" + ", ".join(TIERS) + "):\n  " + "\n  ".join(untiered)
        )
    if stale := [module for module in LONG_MODULES if not (ROOT / module).is_file()]:
        raise pytest.UsageError(f"LONG_MODULES names modules that do not exist: {stale}")
    wanted = set(config.getoption("--tier").split(","))
    if unknown := wanted - set(TIERS):
        raise pytest.UsageError(f"--tier: unknown tier(s) {sorted(unknown)}")
    deselected = [item for item in items if tier_of(item) not in wanted]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if tier_of(item) in wanted]
    items.sort(key=handed_out_first)  # stable: a module's tests keep their order


def handed_out_first(item: pytest.Item) -> int:
    """0 for tests/e2e/, then ``LONG_MODULES`` in their order, then every other module."""
    module = item.nodeid.split("::", 1)[0]
    if module.startswith("tests/e2e/"):
        return 0
    return 1 + (LONG_MODULES.index(module) if module in LONG_MODULES else len(LONG_MODULES))


# ``make test`` runs the tests in processes side by side (pytest-xdist, ``--dist loadscope``): a
# module runs whole in one process, so its expensive fixtures (a whole run of the job) are made
# once; the modules that read the sample run form one group. (xdist's own ``xdist_group`` marks
# do not group under pytest 9.2: pytest-dev/pytest-xdist#1386.)
SHARED_FIXTURE_GROUPS = {
    module: "sample_run"
    for module in ("tests/e2e/test_sample_run.py", "tests/test_report.py", "tests/test_engines.py")
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadscope``: one work unit per module, or per group of modules that share
    a fixture (``SHARED_FIXTURE_GROUPS``); any other ``--dist`` keeps xdist's own."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SHARED_FIXTURE_GROUPS.get(module, module)

    return ModuleGroups(config, log)


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    """``local[2]`` session for the whole test run (the job reuses it with getOrCreate).

    The S3A and Iceberg jars are on its class path (``PYSPARK_SUBMIT_ARGS`` above), so a test
    can read a run written to the local S3 server once it points the session there
    (``point_spark_at``).
    """
    session = (
        SparkSession.builder.master("local[2]")
        .appName("fruits-pipeline-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.log.level", "WARN")
        # The JIT stops at its first tier (C1): the tests run many small queries once each, and
        # on two cores the optimizing compiler's work costs them more than it gains. (Here, not
        # in PYSPARK_SUBMIT_ARGS: the job's own runs in subprocesses set their own options.)
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def local_aws() -> LocalAws:
    """moto's server on 127.0.0.1 for the whole test run; tests reset it (``reset_aws``)."""
    aws, server = start_local_aws()
    yield aws
    server.shutdown()


def user_shell_env() -> dict[str, str]:
    """This process's environment as a user's plain shell has it: the virtualenv not on PATH,
    no ``VIRTUAL_ENV``, no ``PYSPARK_*`` and no ``SPARK_HOME`` (those this file sets included)."""
    venv_bin = Path(sys.executable).parent
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "VIRTUAL_ENV" and not k.startswith(("PYSPARK_", "SPARK_HOME"))
    }
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != venv_bin)
    return env


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The README's run command (``make sample``) on the shipped sample, run once.

    Returns ``{"output": Path, "manifest": dict, "stdout": str, "stderr": str}``. Runs in its
    own process, exactly as a user would, so it does not share the test session's Spark.
    """
    output = tmp_path_factory.mktemp("sample-run") / "run"
    completed = subprocess.run(
        ["make", "--no-print-directory", "sample", f"SAMPLE_OUTPUT={output}"],
        cwd=ROOT,
        env=user_shell_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    manifest = json.loads((output / "manifest.json").read_text())
    return {
        "output": output,
        "manifest": manifest,
        "stdout": completed.stdout,
        "stderr": completed.stderr,
    }


def count_jpgs_per_label(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix.lower() in {".jpg", ".jpeg"}:
            counts[path.parent.name] = counts.get(path.parent.name, 0) + 1
    return counts


@pytest.fixture
def aws(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> LocalAws:
    """A reset local AWS, this process's environment pointed at it, three buckets made.

    AWS managed policies (AmazonEMRServicePolicy_v2) exist in moto's IAM only for a test marked
    ``aws_managed_policies``: loading them makes the reset and every first request to a backend
    about 1.7 s slower.
    """
    # The reset below recreates the IAM backend, which reads this then.
    managed = request.node.get_closest_marker("aws_managed_policies") is not None
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", str(managed).lower())
    reset_aws(local_aws)
    for key, value in local_aws.env().items():
        monkeypatch.setenv(key, value)
    for bucket, region in [
        ("fruits-data-eu", "eu-west-1"),
        ("fruits-code-eu", "eu-west-1"),
        ("fruits-data-us", "us-east-1"),
    ]:
        create_bucket(bucket, region)
    local_aws.requests.clear()  # tests see only what the code under test sent
    return local_aws


@pytest.fixture
def collection(spark: SparkSession, tmp_path: Path) -> CollectionTable:
    """An empty collection (``table.py``) in a Hadoop catalog under ``tmp_path``, opened with
    ``tests.fake_chunks.PROVENANCE``; its tables are dropped afterwards."""
    from tests.fake_chunks import PROVENANCE

    table = parse_table(str(tmp_path / "collection"))
    open_collection(spark, table, PROVENANCE)
    yield table
    for name in (table.features, table.errors, table.moments):
        spark.sql(f"DROP TABLE IF EXISTS {name}")
