"""The report and the run summary at 120 classes: half the shared sample (1,968 photos, 16 to 18
a class) linked under the class names of a Fruits-360 release, run as a user runs it, then the
report opened in headless Chromium.

Screenshots: the interactive projection with a class highlighted, and the probe's tables. Set
``REPORT_SHOTS=FOLDER`` to keep them and the run's console (docs/report-120-classes.png is one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks.linked_classes import CLASS_NAMES, link_under_names
from fruits_pipeline.report_html import palette
from fruits_pipeline.summary import MAX_LINES
from tests.chromium import screenshot
from tests.conftest import ROOT, SHARED_SAMPLE, WEIGHTS

pytestmark = pytest.mark.e2e

HIGHLIGHTED = "Melon Piel de Sapo"  # spaces, and a name a legend would have cut off
TALL = (1100, 3200)  # the page down to the projection (headless Chromium does not scroll)


@pytest.fixture(scope="module")
def run_120(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not SHARED_SAMPLE.is_dir():
        pytest.skip(f"the shared sample is not at {SHARED_SAMPLE}")
    work = tmp_path_factory.mktemp("classes-120")
    names = CLASS_NAMES.read_text(encoding="utf-8").splitlines()
    link_under_names(SHARED_SAMPLE, names, work / "photos", stride=2)
    script = Path(sys.executable).with_name("fruits-pipeline")
    completed = subprocess.run(
        [
            str(script),
            "run",
            "--input",
            str(work / "photos"),
            "--output",
            str(work / "run"),
            "--weights",
            str(WEIGHTS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = subprocess.run(
        [str(script), "report", str(work / "run")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert "report written" in report.stdout
    kept = os.environ.get("REPORT_SHOTS")
    if kept:
        (Path(kept) / "console.txt").write_text(completed.stdout + completed.stderr)
    return {
        "run": work / "run",
        "names": names,
        "stdout": completed.stdout,
        "stderr": completed.stderr,
    }


def colour_pixels(image: Image.Image, colour: str, tolerance: int = 6) -> int:
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(np.asarray(image, dtype=int) - target).max(axis=2) <= tolerance).sum())


def test_a_successful_run_prints_no_warning_and_a_short_summary(run_120: dict[str, Any]) -> None:
    console = run_120["stdout"] + run_120["stderr"]
    assert not [line for line in console.splitlines() if "WARN" in line], console[-3000:]
    summary = run_120["stdout"][run_120["stdout"].index("run succeeded") :].splitlines()
    assert len(summary) <= MAX_LINES, summary
    assert any(line.startswith("  classes    120,") for line in summary), summary


def test_projection_highlights_a_searched_class(run_120: dict[str, Any], tmp_path: Path) -> None:
    report = run_120["run"] / "report" / "report.html"
    page = f"{report.as_uri()}#class={HIGHLIGHTED.replace(' ', '%20')}"
    shot = screenshot(page, tmp_path / "report-120-classes.png", TALL)
    colour = palette(120)[sorted(run_120["names"]).index(HIGHLIGHTED)]
    assert colour_pixels(shot, colour) > 100, "the highlighted class's points are not drawn"
    assert colour_pixels(shot, "#d9d9d9") > 1000, "the other classes are not greyed"
    plain = screenshot(report.as_uri(), tmp_path / "plain.png", TALL)
    assert colour_pixels(plain, "#d9d9d9") < colour_pixels(shot, "#d9d9d9") / 3


def test_probe_tables_render(run_120: dict[str, Any], tmp_path: Path) -> None:
    report = run_120["run"] / "report" / "report.html"
    shot = screenshot(report.as_uri(), tmp_path / "report-tables.png", (1100, 6000))
    pixels = np.asarray(shot)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20
    text = report.read_text(encoding="utf-8")
    assert "Worst-recalled classes" in text and "Most confused pairs" in text
    assert text.count("<svg") == 1 and 'class="cell"' not in text  # no numbers at 120 classes
