"""Generators for the files real buckets contain: odd modes, wrong names, broken bytes."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import SAMPLE


def fruit(size: tuple[int, int] = (100, 100)) -> Image.Image:
    """A real sample photo (RGB), resized when asked."""
    with Image.open(next(SAMPLE.glob("Training/apple/*.jpg"))) as image:
        return image.convert("RGB").resize(size)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def grayscale_jpeg() -> bytes:
    return encode(fruit().convert("L"), "JPEG")


def cmyk_jpeg() -> bytes:
    return encode(fruit().convert("CMYK"), "JPEG")


def rgba_png_named_jpg() -> bytes:
    image = fruit().convert("RGBA")
    alpha = np.full((100, 100), 255, np.uint8)
    alpha[:, :50] = 0  # left half transparent: must come out white
    image.putalpha(Image.fromarray(alpha))
    return encode(image, "PNG")


def palette_gif_named_jpg() -> bytes:
    return encode(fruit().convert("P", palette=Image.Palette.ADAPTIVE), "GIF")


def sixteen_bit_png_named_jpg() -> bytes:
    gray = np.asarray(fruit().convert("L"), dtype=np.uint16) * 257
    image = Image.fromarray(gray)  # uint16 array -> mode I;16
    assert image.mode == "I;16"
    return encode(image, "PNG")


def exif_rotated_jpeg() -> bytes:
    """A 120x80 landscape stored as-is with EXIF orientation 6 (display rotated 90 degrees)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(fruit((120, 80)), "JPEG", exif=exif.tobytes())


def huge_jpeg() -> bytes:
    """8000x6000 pixels (48 MP); about 150 MB if it were ever decoded at full size as RGB."""
    return encode(fruit((800, 600)).resize((8000, 6000)), "JPEG", quality=70)


def truncated_jpeg() -> bytes:
    data = encode(fruit(), "JPEG")
    return data[: len(data) // 2]


def zero_bytes() -> bytes:
    return b""


def random_bytes() -> bytes:
    return np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()


# file name -> (bytes factory, expected error_kind or None when it must be featurized)
HOSTILE: dict[str, tuple[Callable[[], bytes], str | None]] = {
    "gray.jpg": (grayscale_jpeg, None),
    "cmyk.jpg": (cmyk_jpeg, None),
    "rgba-png.jpg": (rgba_png_named_jpg, None),
    "palette-gif.JPG": (palette_gif_named_jpg, None),
    "sixteen-bit.jpeg": (sixteen_bit_png_named_jpg, None),
    "exif-rotated.jpg": (exif_rotated_jpeg, None),
    "huge 8000x6000.jpg": (huge_jpeg, None),
    "truncated.jpg": (truncated_jpeg, "truncated"),
    "empty.jpg": (zero_bytes, "empty_file"),
    "random.jpg": (random_bytes, "not_an_image"),
}


def write_hostile_folder(root: Path) -> dict[str, str | None]:
    """Write every hostile file under folders whose names hold spaces and non-ASCII.

    Returns ``{absolute path: expected error_kind or None}``.
    """
    expected: dict[str, str | None] = {}
    for index, (name, (factory, kind)) in enumerate(sorted(HOSTILE.items())):
        folder = root / "Training" / ("Pêche jaune" if index % 2 else "Apple Red 1")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(factory())
        expected[str(folder / name)] = kind
    return expected
