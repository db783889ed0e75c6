"""Issues 3 and 11: the EMR files are valid, agree with pyproject.toml and the tested
environment, and the shell scripts are clean (shellcheck, bash 3.2)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from fruits_pipeline.session import JVM_OPTIONS
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

SCRIPTS = [
    ROOT / "bootstrap" / "bootstrap-emr.sh",
    *sorted((ROOT / "scripts").glob("*.sh")),
    ROOT / ".ci" / "run",
]


def project_pins() -> dict[str, str]:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(dependency.split("==") for dependency in dependencies)


def read_pins(name: str) -> dict[str, str]:
    """``{canonical name: version}`` of a lock under requirements/ (pip freeze keeps each
    project's own spelling: ``opt_einsum``, ``Pygments``)."""
    lines = (ROOT / "requirements" / name).read_text().splitlines()
    pins = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {canonicalize_name(name): version for name, version in pins}


def test_the_environment_under_test_is_the_lock() -> None:
    """``make install`` installs requirements/lock.txt exactly: every pin is what runs here."""
    locked = read_pins("lock.txt")
    assert {"pyspark", "pytest", "moto", "ruff", "matplotlib", "pip"} <= set(locked)
    installed = {name: metadata.version(name) for name in locked}
    assert installed == locked


def test_emr_lock_is_the_tested_lock_and_agrees_with_pyproject() -> None:
    fresh = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lock_emr_requirements.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fresh.returncode == 0, fresh.stderr  # the EMR lock is this env's closure, regenerated
    pins, locked = read_pins("emr.txt"), read_pins("lock.txt")
    assert {name: locked.get(name) for name in pins} == pins  # a subset of the tested lock
    expected = project_pins()
    assert expected.pop("pyspark").startswith("3.5.")  # EMR 7.x brings its own Spark 3.5
    assert {name: pins.get(name) for name in expected} == expected
    # What the job imports but pyproject only gets through TensorFlow: pinned all the same.
    assert {"keras", "h5py"} <= set(pins)
    assert not {"pyspark", "py4j", "pytest", "moto", "awscli", "ruff", "matplotlib"} & set(pins)


def test_bootstrap_script_is_strict_and_has_help() -> None:
    text = (ROOT / "bootstrap" / "bootstrap-emr.sh").read_text()
    assert "set -euo pipefail" in text and "/usr/bin/python3.11" in text
    completed = subprocess.run(
        [str(ROOT / "bootstrap" / "bootstrap-emr.sh"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0 and "Exit codes" in completed.stdout
    for bad_args in (["--nope"], []):  # an unknown argument; no --requirements
        bad = subprocess.run(
            [str(ROOT / "bootstrap" / "bootstrap-emr.sh"), *bad_args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert bad.returncode == 2, bad_args


# Imported by the job but not installed by the bootstrap: EMR's Spark, and the report's plotting
# (a local command, never run on the cluster).
NOT_BOOTSTRAPPED = {"pyspark", "py4j", "matplotlib", "fruits_pipeline"}


def imported_packages() -> set[str]:
    """Top-level third-party modules any module of the job imports (function-level ones too)."""
    import ast

    names: set[str] = set()
    for module in (ROOT / "src" / "fruits_pipeline").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - NOT_BOOTSTRAPPED


def test_bootstrap_import_check_covers_everything_the_job_imports_on_a_node() -> None:
    text = (ROOT / "bootstrap" / "bootstrap-emr.sh").read_text()
    checked = re.search(r'^IMPORTS="([^"]+)"', text, re.M)
    assert checked, "bootstrap-emr.sh has no IMPORTS list"
    modules = {name.strip() for name in checked.group(1).split(",")}
    assert {"openvino", "nncf", "tensorflow"} <= imported_packages()
    assert imported_packages() - modules == set()


# A simulated Amazon Linux 2023 node: python3.11 whose pip is a separate dnf package, and sudo,
# dnf and aws that record their calls (one line each) in $CALLS.
FAKE_TOOLS = {
    "python3.11": """#!/usr/bin/env bash
if [[ "$1 $2" == "-m pip" ]]; then
  if [[ "${3:-}" == --version ]]; then [[ -e "$STATE/pip" ]]; exit; fi
  echo "pip ${*:3}" >>"$CALLS"; exit 0
fi
echo "python $*" >>"$CALLS"
""",
    "sudo": """#!/usr/bin/env bash
echo "sudo $*" >>"$CALLS"
exec "$@"
""",
    "dnf": """#!/usr/bin/env bash
echo "dnf $*" >>"$CALLS"
if [[ " $* " == *" python3.11-pip "* ]]; then touch "$STATE/pip"; fi
""",
    "aws": """#!/usr/bin/env bash
echo "aws $*" >>"$CALLS"
cp "$LOCK" "${@: -1}"
""",
}


@pytest.fixture
def al2023(tmp_path: Path) -> dict[str, Any]:
    """Fake tools on PATH; returns the environment, the fake python and a calls reader."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, body in FAKE_TOOLS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STATE": str(state),
        "CALLS": str(calls),
        "LOCK": str(ROOT / "requirements" / "emr.txt"),
    }
    return {
        "env": env,
        "python": str(bin_dir / "python3.11"),
        "state": state,
        "calls": lambda: calls.read_text().splitlines(),
    }


def bootstrap(al2023: dict[str, Any], *options: str) -> subprocess.CompletedProcess:
    command = [
        str(ROOT / "bootstrap" / "bootstrap-emr.sh"),
        "--python",
        al2023["python"],
        "--requirements",
        "s3://fruits-code-eu/code/bootstrap/requirements-emr.txt",
        *options,
    ]
    return subprocess.run(
        command, env=al2023["env"], capture_output=True, text=True, timeout=60, check=False
    )


def test_bootstrap_installs_pip_then_exactly_the_lock_on_al2023(al2023) -> None:
    completed = bootstrap(al2023)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    calls = al2023["calls"]()
    assert calls[:2] == [
        "sudo dnf install -y -q python3.11-pip",
        "dnf install -y -q python3.11-pip",
    ]
    assert calls[2].startswith(
        "aws s3 cp --only-show-errors s3://fruits-code-eu/code/bootstrap/requirements-emr.txt "
    )
    (install,) = [c for c in calls if c.startswith("pip install")]
    assert "--no-deps --requirement" in install  # the lock, nothing resolved anew
    (check,) = [c for c in calls if c.startswith("python -c import")]
    assert {"tensorflow", "keras", "h5py", "PIL", "pyarrow", "boto3"} <= set(
        re.findall(r"\w+", check.removeprefix("python -c import"))
    )

    again = bootstrap(al2023)  # pip is there now: no dnf, the same install (pip skips it)
    assert again.returncode == 0
    assert [c for c in al2023["calls"]()[len(calls) :] if "dnf" in c] == []


def test_bootstrap_dry_run_changes_nothing_on_al2023(al2023) -> None:
    completed = bootstrap(al2023, "--dry-run", "--weights-uri", "s3://fruits-data-eu/weights/w.h5")
    assert completed.returncode == 0, completed.stderr
    assert al2023["calls"]() == []  # only read-only probes ran (python3.11 -m pip --version)
    out = completed.stdout
    assert "dry-run: sudo dnf install -y -q python3.11-pip" in out
    assert "dry-run: aws s3 cp --only-show-errors s3://fruits-code-eu/code/bootstrap/" in out
    assert "--no-deps --requirement" in out
    assert "dry-run: sudo aws s3 cp --only-show-errors s3://fruits-data-eu/weights/w.h5" in out
    missing = subprocess.run(
        [
            str(ROOT / "bootstrap" / "bootstrap-emr.sh"),
            "--python",
            "/nonexistent/python3.11",
            "--requirements",
            str(ROOT / "requirements" / "emr.txt"),
            "--dry-run",
        ],
        env=al2023["env"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "dry-run: sudo dnf install -y -q python3.11 python3.11-pip" in missing.stdout


def configurations() -> dict[str, dict]:
    listing = json.loads((ROOT / "conf" / "emr-configurations.json").read_text())
    assert isinstance(listing, list)
    for item in listing:
        assert set(item) <= {"Classification", "Properties", "Configurations"}, item
        for value in item.get("Properties", {}).values():
            assert isinstance(value, str)  # EMR rejects non-string property values
    return {item["Classification"]: item for item in listing}


def test_emr_configurations_set_python_311_and_the_job_settings() -> None:
    conf = configurations()
    (export,) = conf["spark-env"]["Configurations"]
    assert export["Classification"] == "export"
    assert export["Properties"]["PYSPARK_PYTHON"] == "/usr/bin/python3.11"
    assert export["Properties"]["PYSPARK_DRIVER_PYTHON"] == "/usr/bin/python3.11"
    defaults = conf["spark-defaults"]["Properties"]
    assert defaults["spark.python.worker.reuse"] == "true"
    assert defaults["spark.speculation"] == "false"
    assert int(defaults["spark.sql.execution.arrow.maxRecordsPerBatch"]) > 0
    # EMR 7.10+ serves s3:// with S3A: EMRFS properties (emrfs-site) would only be auto-mapped.
    assert "emrfs-site" not in conf
    assert conf["core-site"]["Properties"]["fs.s3a.encryption.algorithm"] == "SSE-S3"


def test_emr_jvms_take_the_jvm_options_of_a_local_run() -> None:
    defaults = configurations()["spark-defaults"]["Properties"]
    for role in ("driver", "executor"):
        assert defaults[f"spark.{role}.extraJavaOptions"] == JVM_OPTIONS
        # EMR keeps its own JVM options in defaultJavaOptions; replacing them would drop them.
        assert f"spark.{role}.defaultJavaOptions" not in defaults


def test_every_configured_property_is_explained_in_the_runbook() -> None:
    readme = (ROOT / "docs" / "emr-runbook.md").read_text()
    conf = configurations()
    names = [
        *conf["spark-defaults"]["Properties"],
        *conf["core-site"]["Properties"],
        *conf["spark-env"]["Configurations"][0]["Properties"],
    ]
    missing = [name for name in names if f"`{name}`" not in readme]
    assert not missing, f"docs/emr-runbook.md does not explain {missing}"


def test_instance_role_policy_is_least_privilege() -> None:
    """The shape of the policy; tests/test_iam_enforcement.py proves what it allows."""
    policy = json.loads((ROOT / "conf" / "iam-instance-role-policy.json").read_text())
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    writes = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    s3 = [s for s in policy["Statement"] if not s["Sid"].endswith("InGlue")]
    for statement in s3:
        assert all(a.startswith("s3:") and "*" not in a for a in statement["Action"])
        for resource in statement["Resource"]:
            assert resource.startswith("arn:aws:s3:::") and not resource.endswith(":::*")
        if writes & set(statement["Action"]):
            assert all(
                r.endswith(("/runs/*", "/logs/*", "/collections/*", "/warehouse/*"))
                for r in statement["Resource"]
            )
    bucket_level = {a for s in s3 for a in s["Action"] if all("/" not in r for r in s["Resource"])}
    assert bucket_level == {
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
    }
    (glue,) = [s for s in policy["Statement"] if s["Sid"].endswith("InGlue")]
    # Read and commit the collection's tables; never delete a table or touch a database.
    wanted = {"glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"}
    assert set(glue["Action"]) == wanted
    assert all(r.startswith("arn:aws:glue:GLUE_REGION:*:") for r in glue["Resource"])


def test_workflow_uses_oidc_and_no_stored_keys() -> None:
    text = (ROOT / ".github" / "workflows" / "submit-step.yml").read_text()
    assert "workflow_dispatch" in text and "id-token: write" in text
    assert "role-to-assume" in text and "submit_step.sh" in text and "--wait" in text
    assert "-- run --input" in text  # the step's job arguments start with the command
    assert "AWS_SECRET_ACCESS_KEY" not in text and "aws-access-key-id" not in text


def test_workflow_credentials_outlast_the_wait_and_the_job_outlasts_both() -> None:
    """OIDC credentials last 1 h unless asked for more: submit_step.sh must give up waiting
    (exit 11) before they expire, and GitHub must not kill the job before either."""
    text = (ROOT / ".github" / "workflows" / "submit-step.yml").read_text()
    session = int(re.search(r"role-duration-seconds: (\d+)", text).group(1))
    job_limit = int(re.search(r"timeout-minutes: (\d+)", text).group(1)) * 60
    wait = int(re.search(r"--timeout-seconds (\d+)", text).group(1))
    assert 3600 < session <= 43200  # IAM's MaxSessionDuration ranges from 1 h to 12 h
    assert wait + 600 <= session  # ten minutes to check, zip and upload before polling starts
    assert session <= job_limit
    assert f"--max-session-duration {session}" in (ROOT / "docs" / "emr-runbook.md").read_text()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_passes(script) -> None:
    assert shutil.which("shellcheck"), "shellcheck is missing: `make test` installs it"
    completed = subprocess.run(
        ["shellcheck", "-x", str(script)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stdout
    assert "set -euo pipefail" in script.read_text() or script.name == "common.sh"


@pytest.mark.parametrize(
    "script", ["submit_step.sh", "create_cluster.sh", "create_roles.sh", "stage_weights.sh"]
)
def test_scripts_have_help_and_reject_bad_arguments(script: str) -> None:
    path = str(ROOT / "scripts" / script)
    helped = subprocess.run([path, "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0 and "Exit codes" in helped.stdout
    assert "AWS_ENDPOINT_URL" in helped.stdout and "--dry-run" in helped.stdout
    bad = subprocess.run([path, "--bogus"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "unknown option" in bad.stderr


def test_cluster_settings_match_the_jobs_local_settings() -> None:
    from fruits_pipeline.config import FILE_OPEN_COST_BYTES, MAX_PARTITION_BYTES, JobConfig
    from fruits_pipeline.model import TENSORFLOW_ENV

    conf = configurations()
    defaults = conf["spark-defaults"]["Properties"]
    assert defaults["spark.sql.files.openCostInBytes"] == str(FILE_OPEN_COST_BYTES)
    assert defaults["spark.sql.files.maxPartitionBytes"] == str(MAX_PARTITION_BYTES)
    arrow = defaults["spark.sql.execution.arrow.maxRecordsPerBatch"]
    assert arrow == str(JobConfig(input_uri="", output_uri="").arrow_batch_size)
    exported = conf["spark-env"]["Configurations"][0]["Properties"]
    for name, value in TENSORFLOW_ENV.items():
        assert exported[name] == value
        assert defaults[f"spark.executorEnv.{name}"] == value


# Bash features newer than 3.2 (macOS's bash), which `bash --posix` on Linux would not catch.
BASH4_ONLY = {
    "associative array": r"\bdeclare\s+-[a-zA-Z]*A",
    "nameref": r"\b(local|declare)\s+-[a-zA-Z]*n\b",
    "mapfile/readarray": r"\b(mapfile|readarray)\b",
    "case modification": r"\$\{\w+(\^\^|,,|\^|,)\}",
    "@Q/@E/@P transformation": r"\$\{\w+@[QEPAa]\}",
    "&>> or |&": r"&>>|\|&",
    "negative array index": r"\$\{\w+\[-\d+\]\}",
}
BARE_ARRAY = re.compile(r'"\$\{(\w+)\[@\]\}"')
GUARDED_ARRAY = re.compile(r'\$\{(\w+)\[@\]\+"\$\{\1\[@\]\}"\}')
# Arrays expanded bare although they start empty, and why that is safe.
CHECKED_NON_EMPTY = {
    ("submit_step.sh", "JOB_ARGS"): r"\(\(\$\{#JOB_ARGS\[@\]\}\)\) \|\| die",
}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_run_on_bash_3_2(script: Path) -> None:
    """Static, as no bash 3.2 can be installed here (Debian ships 5.2 only): no bash 4 feature,
    and no "${array[@]}" of an array that may be empty, which bash < 4.4 calls unbound under
    ``set -u`` (create_cluster.sh did this without --weights-uri)."""
    text = script.read_text()
    used = [name for name, pattern in BASH4_ONLY.items() if re.search(pattern, text)]
    assert not used, f"{script.name} uses {used}"
    for name in set(BARE_ARRAY.findall(GUARDED_ARRAY.sub("", text))):
        guard = CHECKED_NON_EMPTY.get((script.name, name))
        if guard:
            assert re.search(guard, text), f"{script.name}: {name} is no longer checked"
            continue
        assignments = re.findall(rf"^\s*{name}=\((.*)$", text, re.M)
        assert assignments, f"{script.name}: {name} is expanded but never assigned a list"
        empty = [a for a in assignments if a.startswith(")")]
        assert not empty, f"{script.name}: {name} may be empty where it is expanded"
