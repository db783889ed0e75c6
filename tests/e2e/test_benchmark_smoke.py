"""Every benchmark runs end to end in its smoke mode, all of them in one process that shares
their job runs (``benchmarks/smoke.py``); timings are not tested: speed targets live in the
benchmarks' output, not in assertions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``python -m benchmarks.smoke`` once: ``{"out": its folder, "stdout": ..., name: that
    benchmark's printed output}``."""
    out = tmp_path_factory.mktemp("smoke")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3000,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    printed = {path.stem: path.read_text() for path in out.glob("*.txt")}
    return {"out": out, "stdout": completed.stdout, **printed}


def test_the_benchmarks_share_their_full_runs(smoke: dict[str, Any]) -> None:
    # The throughput run on 48 photos stands in for the incremental benchmark's full run C and
    # the table benchmark's full run at size 40.
    match = re.search(r"^shared job runs: (\d+) made, (\d+) asked for again", smoke["stdout"], re.M)
    assert match, smoke["stdout"][-3000:]
    assert int(match.group(2)) == 2


def test_throughput_prints_the_table_and_writes_json(smoke: dict[str, Any]) -> None:
    assert "(a) raw model" in smoke["throughput"] and "(b)/(c) =" in smoke["throughput"]
    figures = json.loads((smoke["out"] / "throughput.json").read_text())
    assert figures["raw_model"]["best"]["images_per_s"] > 0
    assert figures["ours"]["images"] == 48 and figures["classic"]["images"] == 48
    assert figures["classic"]["partitions"] == 2  # the notebook's 20, fewer for a smoke run
    assert figures["ours"]["featurize_images_per_s"] > 0
    assert figures["ours"]["peak_rss_mb"]["python_worker"] > 100  # the model is in there
    assert figures["ours_memory_n"]["peak_rss_mb"]["driver_jvm"] > 100


def test_precision_compares_f32_and_int8(smoke: dict[str, Any]) -> None:
    figures = json.loads((smoke["out"] / "precision.json").read_text())["precision"]
    assert set(figures["raw"]) == set(figures["jobs"]) == {"f32", "int8"}
    assert figures["jobs"]["int8"]["quantization"]["calibration_images"] > 0
    assert figures["jobs"]["f32"]["quantization"] is None
    for line in (
        "raw OpenVINO f32",
        "raw OpenVINO int8",
        "--precision int8, featurize stage",
        "f32 job featurize / raw f32",
        "int8 job featurize / f32 job featurize",
    ):
        assert line in smoke["precision"]


def test_incremental_prints_the_ratio(smoke: dict[str, Any]) -> None:
    out = smoke["incremental"]
    assert "the model ran on 4 photos, 44 reused" in out
    assert "B / C = " in out
    assert "with the listing stage" in out and "whole processes" in out
    assert "C1's stages (s): " in out


def test_incremental_with_a_table_runs_the_model_on_the_new_photos_only(
    smoke: dict[str, Any],
) -> None:
    out = smoke["incremental_table"]
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


def test_accounting_prints_the_driver_memory(smoke: dict[str, Any]) -> None:
    assert "spark    driver Python peak RSS: 2,000 rows" in smoke["accounting"]
    assert "collect  driver Python peak RSS: 2,000 rows" in smoke["accounting"]
