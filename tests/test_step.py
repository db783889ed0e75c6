"""The EMR step's one builder: its package, its spark-submit command, the command run locally."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from fruits_pipeline.step import (
    STEP_CONF,
    build_package,
    conf_options,
    emr_step,
    local_command,
    main,
)
from fruits_pipeline.step import spark_submit_args as step_args

pytestmark = pytest.mark.unit

JOB = ["run", "--input", "s3://b/in put/", "--output", "s3://b/runs/r/"]


def test_spark_submit_args_run_the_zip_and_entrypoint_in_cluster_mode() -> None:
    args = step_args("s3://b/code/v1/", JOB)
    assert args == [
        "spark-submit",
        "--deploy-mode",
        "cluster",
        "--conf",
        "spark.yarn.maxAppAttempts=1",
        "--py-files",
        "s3://b/code/v1/fruits_pipeline.zip",
        "s3://b/code/v1/main.py",
        *JOB,
    ]
    assert STEP_CONF == {"spark.yarn.maxAppAttempts": "1"}


def test_conf_options_are_spark_submit_conf_pairs() -> None:
    assert conf_options({"a": "1", "b": "2"}) == ["--conf", "a=1", "--conf", "b=2"]


def test_emr_step_is_a_spark_step_without_the_command_name() -> None:
    step = emr_step("run 1", "s3://b/code/v1", JOB)
    assert step["Type"] == "Spark" and step["ActionOnFailure"] == "CONTINUE"
    assert step["Args"] == step_args("s3://b/code/v1", JOB)[1:]


def test_local_command_keeps_the_step_and_adds_master_and_conf() -> None:
    conf = {"spark.a": "1", "spark.b": "x=y"}
    command = local_command(step_args("s3://b/c", JOB), "/x/spark-submit", "local[1]", conf)
    assert command == [
        "/x/spark-submit",
        "--master",
        "local[1]",
        "--conf",
        "spark.a=1",
        "--conf",
        "spark.b=x=y",
        "--deploy-mode",
        "client",
        "--conf",
        "spark.yarn.maxAppAttempts=1",
        "--py-files",
        "s3://b/c/fruits_pipeline.zip",
        "s3://b/c/main.py",
        *JOB,
    ]
    with pytest.raises(ValueError, match="not a spark-submit command"):
        local_command(["python", "x.py"], "/x/spark-submit", "local[1]", {})


def test_package_holds_every_module_and_nothing_else(tmp_path: Path) -> None:
    archive, entrypoint = build_package(tmp_path)
    names = zipfile.ZipFile(archive).namelist()
    package = Path(__file__).resolve().parents[1] / "src" / "fruits_pipeline"
    assert sorted(names) == sorted(f"fruits_pipeline/{p.name}" for p in package.glob("*.py"))
    assert entrypoint.read_text() == (package / "main.py").read_text()


def test_main_writes_package_and_steps_file(tmp_path: Path) -> None:
    assert (
        main(["--code-prefix", "s3://b/code/v2", "--name", "n", "--out", str(tmp_path), "--", *JOB])
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fruits_pipeline.zip",
        "main.py",
        "steps.json",
    ]
    assert json.loads((tmp_path / "steps.json").read_text()) == [
        emr_step("n", "s3://b/code/v2", JOB)
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(["--code-prefix", "s3://b/c", "--name", "n", "--out", str(tmp_path)])
    assert exit_info.value.code == 2


def test_main_refuses_job_arguments_without_their_command(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--code-prefix", "s3://b/c", "--name", "n", "--out", str(tmp_path), "--", *JOB[1:]])
    assert exit_info.value.code == 2
    assert "start with its command (run or project)" in capsys.readouterr().err
