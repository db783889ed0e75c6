"""The job with --extractor orb, in-process on a few sample photos and a blank image: the
vocabulary's width flows through features/, the reduction and the probe; no weights load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from pyspark.sql import SparkSession

from fruits_pipeline.cli import parse_job_args
from fruits_pipeline.errors import UsageError
from fruits_pipeline.job import run_job
from fruits_pipeline.manifest import Manifest
from fruits_pipeline.orb import NO_KEYPOINTS, WORDS
from fruits_pipeline.progress import Progress
from fruits_pipeline.session import RunSession
from tests.conftest import SAMPLE

pytestmark = pytest.mark.e2e  # whole runs of the job (the fake model)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight training and four test photos of two labels, and one blank photo."""
    root = tmp_path_factory.mktemp("orb-input")
    for label in ("apple", "mango"):
        sources = sorted((SAMPLE / "Training" / label).glob("*.jpg"))[:6]
        for split, chosen in (("Training", sources[:4]), ("Test", sources[4:])):
            (root / split / label).mkdir(parents=True)
            for photo in chosen:
                shutil.copy(photo, root / split / label / photo.name)
    Image.new("RGB", (100, 100), (255, 255, 255)).save(root / "Training" / "apple" / "blank.jpg")
    return root


def run(photos: Path, output: Path, *extra: str) -> Manifest:
    config = parse_job_args(
        ["run", "--input", str(photos), "--output", str(output), "--extractor", "orb", *extra]
    )
    return run_job(config, Progress(), RunSession(config))


def test_an_orb_run_writes_bag_of_words_features(
    spark: SparkSession, photos: Path, tmp_path: Path
) -> None:
    manifest = run(photos, tmp_path / "run", "--max-error-fraction", "0.2")
    assert manifest.status == "succeeded" and manifest.extractor == "orb"
    assert manifest.weights.sha256 == "none"
    assert manifest.counts.featurized == 12 and manifest.counts.errors_by_kind == {NO_KEYPOINTS: 1}
    features = spark.read.parquet(str(tmp_path / "run" / "features")).collect()
    widths = {len(row.features) for row in features}
    assert len(widths) == 1 and widths.pop() <= WORDS
    assert all(sum(row.features) == pytest.approx(1.0, abs=1e-5) for row in features)
    assert len(manifest.reduction.cumulative_variance) == len(features[0].features)
    names = [score.name for score in manifest.probe.classifiers]
    assert names == ["logistic_regression", "decision_tree", "random_forest"]


def test_k_above_the_vocabulary_is_refused(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--k 1000 is above"):
        run(photos, tmp_path / "run", "--max-error-fraction", "0.2", "--k", "1000")
