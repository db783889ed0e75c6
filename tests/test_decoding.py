"""What happens to each kind of hostile file, decided and checked one by one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fruits_pipeline.decoding import DecodeError, decode_image
from tests import hostile

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", sorted(hostile.HOSTILE))
def test_each_hostile_file_decodes_or_fails_with_its_kind(name: str) -> None:
    factory, kind = hostile.HOSTILE[name]
    if kind is None:
        pixels = decode_image(factory(), 224)
        assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8
        assert pixels.std() > 5  # a real picture, not a flat fill
    else:
        with pytest.raises(DecodeError) as raised:
            decode_image(factory(), 224)
        assert raised.value.kind == kind
        assert raised.value.message


def test_transparency_becomes_white_not_black() -> None:
    pixels = decode_image(hostile.rgba_png_named_jpg(), 100)
    assert pixels[:, :45].min() == 255  # the transparent half
    assert pixels[:, 55:].mean() < 250  # the opaque half is the fruit


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    reference = decode_image(hostile.encode(hostile.fruit().convert("L"), "PNG"), 100)
    sixteen = decode_image(hostile.sixteen_bit_png_named_jpg(), 100)
    assert np.abs(reference.astype(int) - sixteen.astype(int)).max() <= 1


def test_exif_orientation_is_applied() -> None:
    # Stored 120 wide x 80 high; orientation 6 means it is shown 80 wide x 120 high.
    from PIL import Image

    stored = np.asarray(hostile.fruit((120, 80)))
    upright = np.asarray(Image.fromarray(stored).transpose(Image.Transpose.ROTATE_270))
    decoded = decode_image(hostile.exif_rotated_jpeg(), 64).astype(int)
    wrong_way = np.asarray(Image.fromarray(stored).resize((64, 64))).astype(int)
    right_way = np.asarray(Image.fromarray(upright).resize((64, 64))).astype(int)
    assert np.abs(decoded - right_way).mean() < np.abs(decoded - wrong_way).mean() / 2


def test_non_jpeg_above_the_pixel_limit_is_refused(monkeypatch) -> None:
    monkeypatch.setattr("fruits_pipeline.decoding.MAX_PIXELS", 50 * 50)
    with pytest.raises(DecodeError) as raised:
        decode_image(hostile.encode(hostile.fruit(), "PNG"), 32)
    assert raised.value.kind == "too_large"


# Peak resident memory allowed for decoding the 8000x6000 JPEG, above the process's own
# baseline (Python + NumPy + Pillow). Decoded at full size it would need ~150 MB.
LARGE_IMAGE_MEMORY_BOUND_MB = 40

_MEASURE = """
import json, resource, sys
from fruits_pipeline.decoding import decode_image
from tests.hostile import huge_jpeg
data = huge_jpeg()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pixels = decode_image(data, 224)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after, "shape": list(pixels.shape)}))
"""


def test_large_jpeg_decodes_within_the_memory_bound() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE], capture_output=True, text=True, check=True
    )
    measured = json.loads(completed.stdout)
    grown_mb = (measured["after_kb"] - measured["before_kb"]) / 1024
    assert measured["shape"] == [224, 224, 3]
    assert grown_mb < LARGE_IMAGE_MEMORY_BOUND_MB, f"peak RSS grew {grown_mb:.0f} MB"
