"""Issue 3: the EMR files are valid, agree with pyproject.toml, and the shell scripts are clean."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib

import pytest

from tests.conftest import ROOT

SCRIPTS = [ROOT / "bootstrap" / "bootstrap-emr.sh", *sorted((ROOT / "scripts").glob("*.sh")),
           ROOT / ".ci" / "run"]  # fmt: skip


def project_pins() -> dict[str, str]:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(dependency.split("==") for dependency in dependencies)


def test_bootstrap_installs_exactly_the_pyproject_pins_but_spark() -> None:
    text = (ROOT / "bootstrap" / "bootstrap-emr.sh").read_text()
    block = re.search(r"PINNED=\(\n(.*?)\n\)", text, re.S)
    assert block, "PINNED=( ... ) not found in the bootstrap"
    pins = dict(line.strip().strip('"').split("==") for line in block.group(1).splitlines())
    expected = project_pins()
    assert expected.pop("pyspark").startswith("3.5.")  # EMR 7.x brings its own Spark 3.5
    assert pins == expected


def test_bootstrap_script_is_strict_and_has_help() -> None:
    text = (ROOT / "bootstrap" / "bootstrap-emr.sh").read_text()
    assert "set -euo pipefail" in text and "/usr/bin/python3.11" in text
    completed = subprocess.run([str(ROOT / "bootstrap" / "bootstrap-emr.sh"), "--help"],
                               capture_output=True, text=True, check=False)  # fmt: skip
    assert completed.returncode == 0 and "Exit codes" in completed.stdout
    bad = subprocess.run([str(ROOT / "bootstrap" / "bootstrap-emr.sh"), "--nope"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode == 2 and "unknown argument" in bad.stderr


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
    assert conf["emrfs-site"]["Properties"]["fs.s3.enableServerSideEncryption"] == "true"


def test_every_configured_property_is_explained_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    conf = configurations()
    names = [*conf["spark-defaults"]["Properties"], *conf["emrfs-site"]["Properties"],
             *conf["spark-env"]["Configurations"][0]["Properties"]]  # fmt: skip
    missing = [name for name in names if f"`{name}`" not in readme]
    assert not missing, f"README does not explain {missing}"


def test_instance_role_policy_is_least_privilege() -> None:
    policy = json.loads((ROOT / "conf" / "iam-instance-role-policy.json").read_text())
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert actions == {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "s3:PutObject",
                       "s3:DeleteObject"}  # fmt: skip
    for statement in policy["Statement"]:
        for resource in statement["Resource"]:
            assert resource != "*" and not resource.endswith(":::*")
        if {"s3:PutObject", "s3:DeleteObject"} & set(statement["Action"]):
            assert all(r.endswith(("/runs/*", "/logs/*")) for r in statement["Resource"])


def test_workflow_uses_oidc_and_no_stored_keys() -> None:
    text = (ROOT / ".github" / "workflows" / "submit-step.yml").read_text()
    assert "workflow_dispatch" in text and "id-token: write" in text
    assert "role-to-assume" in text and "submit_step.sh" in text and "--wait" in text
    assert "AWS_SECRET_ACCESS_KEY" not in text and "aws-access-key-id" not in text


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_passes(script) -> None:
    assert shutil.which("shellcheck"), "shellcheck is missing: `make test` installs it"
    completed = subprocess.run(["shellcheck", "-x", str(script)], cwd=ROOT,
                               capture_output=True, text=True, check=False)  # fmt: skip
    assert completed.returncode == 0, completed.stdout
    assert "set -euo pipefail" in script.read_text() or script.name == "common.sh"


@pytest.mark.parametrize("script", ["submit_step.sh", "create_cluster.sh"])
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
