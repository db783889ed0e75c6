"""The seeded, decoded sample of a run's images that int8 calibrates and is judged on."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fruits_pipeline.decoding import decode_image
from fruits_pipeline.reading import read_images, to_images
from fruits_pipeline.sampling import decoded_sample, seeded_paths
from tests.conftest import SAMPLE

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five real photos of each of two labels, plus one file that does not decode."""
    root = tmp_path_factory.mktemp("sample-input")
    for label in ("apple", "lemon"):
        (root / "Training" / label).mkdir(parents=True)
        for photo in sorted((SAMPLE / "Training" / label).glob("*.jpg"))[:5]:
            shutil.copy(photo, root / "Training" / label / photo.name)
    (root / "Training" / "apple" / "broken.jpg").write_bytes(b"not an image at all")
    return root


def images_of(spark, folder: Path):
    return read_images(spark, str(folder)).transform(to_images(("Training", "Test")))


def test_same_seed_same_sample_and_a_prefix_for_fewer(spark, folder: Path) -> None:
    images = images_of(spark, folder)
    everything = seeded_paths(images, 100, seed=7)
    assert len(everything) == 11 and len(set(everything)) == 11
    assert seeded_paths(images, 100, seed=7) == everything
    assert seeded_paths(images, 4, seed=7) == everything[:4]
    assert seeded_paths(images, 100, seed=8) != everything


def test_decoded_as_featurize_decodes_and_undecodable_files_left_out(spark, folder) -> None:
    images = images_of(spark, folder)
    sample = decoded_sample(images, 100, seed=7, image_size=32)
    order = [path for path in seeded_paths(images, 100, seed=7) if "broken" not in path]
    assert list(sample.paths) == order and len(sample) == 10
    assert sample.pixels.shape == (10, 32, 32, 3) and sample.pixels.dtype == np.uint8
    for path, label, pixels in zip(sample.paths, sample.labels, sample.pixels, strict=True):
        local = Path(path.removeprefix("file:"))
        assert label == local.parent.name
        np.testing.assert_array_equal(pixels, decode_image(local.read_bytes(), 32))
    part = sample.take(2, 5)
    assert part.paths == sample.paths[2:5] and len(part.pixels) == 3


def test_empty_input_gives_an_empty_sample(spark, folder: Path) -> None:
    images = images_of(spark, folder).limit(0)
    sample = decoded_sample(images, 10, seed=1, image_size=32)
    assert len(sample) == 0 and sample.pixels.shape == (0, 32, 32, 3)
