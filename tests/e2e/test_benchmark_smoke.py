"""The benchmarks run end to end in their tiny smoke modes (timings are not tested)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_benchmark_smoke_mode_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    figures_path = tmp_path / "figures.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "throughput.py"),
            "--smoke",
            "--json",
            str(figures_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "(a) raw model" in completed.stdout and "(b)/(c) =" in completed.stdout
    figures = json.loads(figures_path.read_text())
    assert figures["raw_model"]["best"]["images_per_s"] > 0
    assert figures["ours"]["images"] == 24 and figures["classic"]["images"] == 24
    assert figures["classic"]["partitions"] == 2  # the notebook's 20, fewer for a smoke run
    assert figures["ours"]["featurize_images_per_s"] > 0
    assert figures["ours"]["peak_rss_mb"]["python_worker"] > 100  # TensorFlow is in there
    assert figures["ours_memory_n"]["peak_rss_mb"]["driver_jvm"] > 100


def run_benchmark(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args, "--no-save"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def test_incremental_benchmark_runs_and_prints_the_ratio() -> None:
    completed = run_benchmark(
        "-m", "benchmarks.incremental", "--n", "40", "--repeats", "1", "--quiet-wait", "0"
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "the model ran on 4 photos, 40 reused" in completed.stdout
    assert "B / C = " in completed.stdout
    assert "with the listing stage" in completed.stdout and "whole processes" in completed.stdout
    assert "C1's stages (s): " in completed.stdout


def test_incremental_benchmark_with_a_table_runs_the_model_on_the_new_photos_only() -> None:
    completed = run_benchmark(
        "-m",
        "benchmarks.incremental",
        "--table",
        "--sizes",
        "40,80",
        "--new",
        "8",
        "--quiet-wait",
        "0",
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    for size in (40, 80):
        assert f"collection of {size} photos, then 8 new ({size + 8} in all)" in out
        # The table's incremental run featurizes the new photos only; the full run all of them.
        assert f"the model ran on 8 photos, {size} reused: " in out
        assert f"full run, no table: the model ran on {size + 8} photos: " in out
    assert out.count("first run, empty table: ") == 2
    assert out.count("incremental / full = ") == 2
    assert out.count("incremental's stages (s): ") == 2
    assert re.search(
        r"^incremental runs: 80 / 40 = \d+\.\d\dx after start-up \(target <= 1\.3x\): "
        r"(met|NOT MET)$",
        out,
        re.MULTILINE,
    ), out
    assert re.search(r"^load average: start \[.*\], end \[.*\]", out, re.MULTILINE)


def test_accounting_benchmark_runs_and_prints_the_driver_memory() -> None:
    completed = run_benchmark(str(ROOT / "benchmarks" / "accounting.py"), "--sizes", "2000")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "spark    driver Python peak RSS: 2,000 rows" in completed.stdout
    assert "collect  driver Python peak RSS: 2,000 rows" in completed.stdout
