"""main.py, the spark-submit entrypoint: the console script's subcommands under spark-submit."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

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


# What spark-submit's launcher logs as its JVM starts, before the job's Python runs: the only
# lines the job cannot configure away (on a machine whose hostname names the loopback address).
LAUNCHER_LINES = re.compile(
    r"WARN Utils: (Your hostname, .* resolves to a loopback address|Set SPARK_LOCAL_IP)"
)


@pytest.mark.e2e
def test_the_readmes_spark_submit_command_runs_the_job_quietly(tmp_path: Path) -> None:
    """The README's command as written but for its output folder, from a user's plain shell:
    neither the venv on PATH nor PYSPARK_PYTHON set, so the command must bring what it needs
    (PySpark's launcher would otherwise look for Spark with the system's python3). Spark's own
    start-up lines (INFO SparkContext, Hadoop's native library) must not reach the console."""
    command = readme_spark_submit_command()
    written = re.search(r"--output (\S+)", command)
    assert written and " run " in command, command
    completed = subprocess.run(
        ["bash", "-c", command.replace(written.group(0), f"--output {tmp_path / 'run'}")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=user_shell_env(),
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert f"run succeeded: file:{tmp_path / 'run'}" in completed.stdout, completed.stdout[-2000:]
    noise = [line for line in completed.stderr.splitlines() if not LAUNCHER_LINES.search(line)]
    assert noise == [], completed.stderr[-3000:]
