"""main.py, the spark-submit entrypoint: the console script's subcommands under spark-submit."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ROOT, user_shell_env

pytestmark = pytest.mark.spark


def readme_spark_submit_command() -> str:
    """The README's spark-submit command, its continuation lines joined."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if ".venv/bin/spark-submit" in line)
    command = ""
    for line in lines[start:]:
        command += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            return command.strip()
    raise AssertionError("the README's spark-submit command never ends")


def test_the_readmes_spark_submit_command_runs_without_an_activated_venv() -> None:
    """Neither the venv on PATH nor PYSPARK_PYTHON set: the command must bring what it needs
    (PySpark's launcher would otherwise look for Spark with the system's python3)."""
    command = readme_spark_submit_command()
    assert " run " in command
    help_command = command.split(" run ")[0] + " run --help"
    completed = subprocess.run(
        ["bash", "-c", help_command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=user_shell_env(),
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "usage: fruits-pipeline run" in completed.stdout
    assert "--variance" in completed.stdout
