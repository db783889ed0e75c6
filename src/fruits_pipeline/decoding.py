"""Turning a file's bytes into a square RGB pixel array, or a named reason why not.

Runs on executors, once per image, inside the featurize UDF. Pure: bytes in, array or
:class:`DecodeError` out, no Spark and no model, so every hostile case is tested directly.

What happens to each kind of input (the README repeats this table):

=================================  =========================================================
input                              outcome
=================================  =========================================================
RGB JPEG                           decoded
grayscale, CMYK, YCbCr, palette    converted to RGB
RGBA / LA / palette+transparency   composited onto white (the Fruits-360 background)
16-bit grayscale (``I;16``, ``I``)  scaled to 8 bits (value / 257)
PNG, GIF, BMP, TIFF, WebP named    decoded by content, not by name (first frame if animated)
``.jpg``
EXIF-rotated photo                 rotated upright (EXIF orientation applied)
very large JPEG (e.g. 8000x6000)   decoded reduced by the JPEG DCT (up to 1/8), never at full
                                   size, so a task's memory stays small
very large non-JPEG                error ``too_large`` above ``MAX_PIXELS``
zero-byte file                     error ``empty_file``
random bytes / unknown format      error ``not_an_image``
truncated JPEG                     error ``truncated`` (never padded with grey)
other corrupt data                 error ``corrupt``
=================================  =========================================================
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Largest image (in pixels, after JPEG reduced decoding) decoded at full size: 64 MP is ~200 MB
# as RGB, the most one task may spend on one image. Larger non-JPEG files are refused instead.
MAX_PIXELS = 64_000_000

_WHITE = (255, 255, 255)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


class DecodeError(Exception):
    """An image that cannot be featurized. ``kind`` is a stable keyword for the errors table."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def decode_image(data: bytes | None, size: int) -> np.ndarray:
    """Decode one file's bytes to an RGB array resized to ``size x size``.

    Args:
        data: the file's raw bytes (the ``content`` column of ``binaryFile``).
        size: output side in pixels (the model's input size, 224 by default).

    Returns:
        ``uint8`` array of shape ``(size, size, 3)``, channels R, G, B, values 0..255.
        Non-square images are stretched to a square (no crop), as Keras' directory loaders do.

    Raises:
        DecodeError: with ``kind`` one of ``empty_file``, ``not_an_image``, ``truncated``,
            ``too_large``, ``corrupt``.

    Pitfall: Pillow opens lazily and only fails on ``load()``; truncation is detected there
    because ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left False on purpose.
    """
    if not data:
        raise DecodeError("empty_file", "the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own MAX_PIXELS check below is the bound; Pillow's bomb warning is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            # For JPEG this picks a DCT scale (1/2, 1/4, 1/8) no smaller than the target, so a
            # huge photo never exists at full size in memory. A no-op for other formats.
            image.draft("RGB", (size, size))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DecodeError(
                    "too_large",
                    f"{image.format} image of {width}x{height} pixels is above the "
                    f"{MAX_PIXELS:,}-pixel decode limit",
                )
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb(image)
    except DecodeError:
        raise
    except UnidentifiedImageError as error:
        raise DecodeError("not_an_image", f"not a recognised image format: {error}") from error
    except Image.DecompressionBombError as error:
        raise DecodeError("too_large", str(error)) from error
    except Exception as error:  # Pillow raises many types on malformed data; none may crash a task
        kind = "truncated" if "truncated" in str(error).lower() else "corrupt"
        raise DecodeError(kind, f"cannot decode: {error}") from error
    resized = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (see the module table for the rules)."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own I;16 -> L conversion clips at 255 instead of scaling: do it by hand.
        gray = np.asarray(image, dtype=np.float64) / 257.0
        return Image.fromarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode == "F":
        gray = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
