"""The probe is recorded and deterministic; the report embeds real figures and renders."""

from __future__ import annotations

import base64
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pyspark.sql import functions as F

from fruits_pipeline.cli import main
from fruits_pipeline.errors import ExitCode
from fruits_pipeline.manifest import ProbeSummary
from fruits_pipeline.probe import DECISION_TREE, run_probe, with_hold_out
from fruits_pipeline.report import FIGURE_DPI, FIGURE_INCHES, FIGURES
from tests.chromium import screenshot
from tests.conftest import SHARED_SAMPLE, WEIGHTS

# every test reads the sample run, made by the real model
pytestmark = pytest.mark.e2e

FIGURE_PIXELS = (int(FIGURE_INCHES[0] * FIGURE_DPI), int(FIGURE_INCHES[1] * FIGURE_DPI))


def assert_real_picture(image: Image.Image, size: tuple[int, int]) -> None:
    assert image.size == size
    pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10, "a flat, blank image"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, "too few colours to be a plot"


@pytest.fixture(scope="module")
def run_with_errors(sample_run: dict[str, Any], tmp_path_factory) -> Path:
    """The sample run plus an errors/ table, as a run with bad files would have."""
    run = tmp_path_factory.mktemp("report-run") / "run"
    shutil.copytree(sample_run["output"], run, ignore=shutil.ignore_patterns("report"))
    errors = pd.DataFrame(
        {
            "path": ["file:/data/Training/apple/broken.jpg", "file:/data/Test/Cherry/empty.jpg"],
            "label": ["apple", "Cherry"],
            "split": ["Training", "Test"],
            "error_kind": ["truncated", "empty_file"],
            "error_message": [
                "cannot decode: image file is truncated",
                "the file is empty (0 bytes)",
            ],
        }
    )
    shutil.rmtree(run / "errors")
    (run / "errors").mkdir()
    errors.to_parquet(run / "errors" / "part-0.parquet")
    return run


@pytest.fixture(scope="module")
def report(run_with_errors: Path) -> Path:
    out = run_with_errors / "report"
    assert main(["report", str(run_with_errors), "--out", str(out)]) == ExitCode.OK
    return out / "report.html"


def test_probe_accuracy_is_in_the_sample_manifest(sample_run: dict[str, Any]) -> None:
    probe = sample_run["manifest"]["probe"]
    assert probe["status"] == "succeeded"
    assert probe["split"] == "Training folder -> Test folder"
    assert (probe["train_images"], probe["test_images"]) == (120, 120)
    assert 0.9 <= probe["accuracy"] <= 1.0
    assert set(probe["per_class_recall"]) == set(sample_run["manifest"]["images_per_label"])
    matrix = np.asarray(probe["confusion_matrix"]["matrix"])
    assert matrix.sum() == 120
    assert probe["accuracy"] == pytest.approx(np.trace(matrix) / 120)


def test_report_embeds_every_figure_as_a_real_png(report: Path) -> None:
    text = report.read_text()
    (embedded,) = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert base64.b64decode(embedded) == (report.parent / "variance.png").read_bytes()
    for name in FIGURES:  # the static figures beside the page; the projection is interactive
        assert_real_picture(Image.open(report.parent / f"{name}.png"), FIGURE_PIXELS)
    assert 'id="points"' in text and "<svg" in text
    assert "<h2>Errors</h2>" in text and "truncated" in text and "empty_file" in text
    assert "probe accuracy" in text and "sha256" in text


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    shot = screenshot(report.as_uri(), tmp_path / "shot.png", (1000, 2600))
    assert_real_picture(shot, (1000, 2600))


def test_report_on_a_missing_run_exits_3(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "nothing")]) == ExitCode.NO_INPUT
    assert "no manifest.json" in capsys.readouterr().err


def untimed(probe: ProbeSummary) -> ProbeSummary:
    """``probe`` without the classifiers' training seconds: wall time is never reproducible."""
    scores = [replace(score, train_seconds=0.0) for score in probe.classifiers or []]
    return replace(probe, classifiers=scores)


def test_probe_is_deterministic_for_a_fixed_seed(sample_run: dict[str, Any], spark) -> None:
    pca = spark.read.parquet(str(sample_run["output"] / "pca"))
    assert untimed(run_probe(pca, seed=7)) == untimed(run_probe(pca, seed=7))
    # Without split folders: the seeded hold-out, scored by one classifier (each is checked
    # for determinism above).
    unsplit = pca.withColumn("split", F.lit(None).cast("string"))
    first, second = (
        untimed(run_probe(unsplit, seed=7, classifiers=[DECISION_TREE])) for _ in range(2)
    )
    assert first == second and first.split.startswith("stratified 20% hold-out")
    assert first.test_images == 6 * 8  # ceil(0.2 * 40) per label, 6 labels


def test_hold_out_is_stratified_and_seeded(sample_run: dict[str, Any], spark) -> None:
    pca = spark.read.parquet(str(sample_run["output"] / "pca"))

    def held_out(seed: int) -> set[str]:
        marked = pca.transform(with_hold_out(seed)).where("is_test")
        counts = {r.label: r["count"] for r in marked.groupBy("label").count().collect()}
        assert set(counts.values()) == {8}
        return {r.path for r in marked.select("path").collect()}

    assert held_out(1) == held_out(1)
    assert held_out(1) != held_out(2)


def test_probe_on_the_full_shared_sample_reaches_97_percent(tmp_path: Path) -> None:
    if not SHARED_SAMPLE.is_dir():
        pytest.skip(f"the full sample is not at {SHARED_SAMPLE}")
    output = tmp_path / "run"
    code = main(
        ["run", "--input", str(SHARED_SAMPLE), "--output", str(output), "--weights", str(WEIGHTS)]
    )
    assert code == ExitCode.OK
    manifest = json.loads((output / "manifest.json").read_text())
    probe = manifest["probe"]
    assert (probe["train_images"], probe["test_images"]) == (2944, 992)
    assert probe["accuracy"] >= 0.97, probe


def test_report_of_a_failed_run_says_so(run_with_errors: Path, tmp_path: Path) -> None:
    run = tmp_path / "failed"
    run.mkdir()
    manifest = json.loads((run_with_errors / "manifest.json").read_text())
    # What a run stopped by bad images writes: everything up to the counts, no later section.
    failed = {
        k: v
        for k, v in manifest.items()
        if k not in ("reduction", "probe", "throughput", "outputs")
    }
    failed.update(status="failed", error="TooManyBadImagesError: 3 of 20 images (15.0%) ...")
    (run / "manifest.json").write_text(json.dumps(failed))
    shutil.copytree(run_with_errors / "errors", run / "errors")
    assert main(["report", str(run)]) == ExitCode.OK
    text = (run / "report" / "report.html").read_text()
    assert "failed: TooManyBadImagesError" in text and "not reached" in text
    assert "<h2>Images per class</h2>" in text and "<td>Cherry</td>" in text
