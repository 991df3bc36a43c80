"""Decoding photos for the model: right way up, reduced early, first frame only.

Runs on worker threads: nothing here touches shared state.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageUnreadable

# Images above this many pixels are refused outright (a "decompression bomb"
# declares huge dimensions in a tiny file to exhaust memory). 200 MP still lets
# real panoramas and 100 MP medium-format photos through.
MAX_PIXELS = 200_000_000

# Pillow's own bomb check warns at ~89 MP; we apply MAX_PIXELS ourselves, so the
# warning would only be noise on 100 MP photos.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
# Pillow warns about damaged metadata it skipped ("Corrupt EXIF data"…); the
# photo is indexed or reported either way, so the warnings are only noise.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
)
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".avif"})

# Decoding an image this big without JPEG's draft mode takes ~4 bytes a pixel
# (400 MB at 100 MP); callers may pass a lock so only one such decode runs at once.
BIG_PIXELS = 40_000_000

# What undoes each EXIF orientation (the same table as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132
_ORIENTATION = 0x0112


def heif_available() -> bool:
    """Register the HEIF plugin if it is installed; true when HEIC files can be read."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def supported_suffixes() -> frozenset[str]:
    return IMAGE_SUFFIXES | HEIF_SUFFIXES if heif_available() else IMAGE_SUFFIXES


@dataclass(frozen=True)
class ImageInfo:
    """What we record about a photo besides its vector (size as displayed, upright)."""

    width: int
    height: int
    taken_at: str | None


def _exif_datetime(image: Image.Image) -> str | None:
    try:
        exif = image.getexif()
        raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except Exception:  # malformed EXIF must never cost the photo itself
        return None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode to 8-bit RGB; transparency is laid on white, as viewers show it."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float32)
        # Scale by the format's range, not the image's maximum: a mid-grey 16-bit
        # photo must stay mid-grey. 32-bit data has no fixed range; floats are 0..1.
        if image.mode.startswith("I;16"):
            top = 65535.0
        elif image.mode == "F" and float(arr.max(initial=0.0)) <= 1.0:
            top = 1.0
        else:
            peak = float(arr.max(initial=0.0))
            top = 255.0 if peak <= 255.0 else 65535.0 if peak <= 65535.0 else peak
        image = Image.fromarray((arr * (255.0 / top)).clip(0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def open_image(
    source: bytes | str | Path,
    min_side: int | None = None,
    *,
    big_decode_lock: threading.Lock | None = None,
) -> tuple[Image.Image, ImageInfo]:
    """Decode a photo as upright RGB; with min_side, at a reduced size no smaller than that.

    Raises ImageUnreadable with a short reason for anything that is not a usable image.
    With big_decode_lock, decodes of images above BIG_PIXELS take turns (bounded memory).
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        image: Image.Image = Image.open(stream)
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageUnreadable(
                f"image too large ({width}×{height} pixels; the limit is {MAX_PIXELS // 1_000_000} MP)"
            )
        if width < 1 or height < 1:
            raise ImageUnreadable("image has no pixels")
        if min_side and image.format == "JPEG":
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: several times faster.
            image.draft("RGB", (min_side, min_side))
        image.seek(0)
        big = image.size[0] * image.size[1] > BIG_PIXELS
        with big_decode_lock if big and big_decode_lock is not None else nullcontext():
            # Reading EXIF of a PNG decodes it (its EXIF may follow the pixels), so
            # that too happens under the lock.
            image.load()
            orientation = _orientation(image)
            taken_at = _exif_datetime(image)
            if min_side:
                image = _reduce(image, min_side)
        if orientation != 1:
            # By our own table: the reduced copy may no longer carry the EXIF block.
            image = image.transpose(_TRANSPOSE[orientation])
        image = _to_rgb(image)
    except ImageUnreadable:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageUnreadable(f"image too large: {exc}") from None
    except UnidentifiedImageError:
        raise ImageUnreadable("not an image, or a format clipdesk cannot read") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        raise ImageUnreadable(_reason(exc)) from None
    except MemoryError:
        raise ImageUnreadable("not enough memory to decode this image") from None
    except Exception as exc:
        # Pillow's decoders answer some malformed files with other errors
        # (TypeError, KeyError, ZeroDivisionError…); one bad file must never stop a batch.
        raise ImageUnreadable(f"cannot decode image: {type(exc).__name__}: {exc}") from None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return image, ImageInfo(width=width, height=height, taken_at=taken_at)


def _reduce(image: Image.Image, min_side: int) -> Image.Image:
    """Shrink by an integer factor (a cheap box filter) while keeping 3× min_side.

    The same step the model's resize would take (reducing_gap=3), done before
    rotation and colour conversion so those work on the small image.
    """
    factor = int(min(image.size) / (3 * min_side))
    if factor < 2 or image.mode in ("P", "1") or image.mode.startswith("I;16"):
        return image
    return image.reduce(factor)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "truncated" in text:
        return "file is truncated (incomplete download or copy?)"
    return f"cannot decode image: {text}"


def read_info(path: str | Path) -> ImageInfo:
    """Dimensions and date of a photo without decoding its pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if _orientation(image) in (5, 6, 7, 8):
                width, height = height, width
            return ImageInfo(width, height, _exif_datetime(image))
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageUnreadable(_reason(exc)) from None

