"""main.py, the spark-submit entrypoint: the console script's subcommands under spark-submit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.spark


def test_spark_submit_entrypoint_help() -> None:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "spark-submit"),
            "src/fruits_pipeline/main.py",
            "run",
            "--help",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "usage: fruits-pipeline run" in completed.stdout
    assert "--variance" in completed.stdout
