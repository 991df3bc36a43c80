"""Camera RAW files, through the optional `raw` extra (rawpy, i.e. LibRaw).

For searching, the JPEG preview a camera embeds in its RAW file is the photo as it was
shot, and decoding it is a hundred times cheaper than developing the raw data; only a
RAW without a preview is developed (at half size). Without rawpy, RAW files are counted
as skipped, with a hint to install the extra.
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from typing import Any, BinaryIO

from ._errors import ImageUnreadable

RAW_SUFFIXES = frozenset({
    ".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".iiq", ".kdc", ".mef", ".mos",
    ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
})
FILE_TYPE = "RAW"  # what `--type raw` finds
INSTALL_HINT = "camera RAW files need the raw extra: pip install 'clipdesk[raw]'"

# LibRaw's flip (how to turn the image upright) as the EXIF orientation that does the same.
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}


def raw_available() -> bool:
    """Whether rawpy is installed (found without importing it: start-up stays quick)."""
    return importlib.util.find_spec("rawpy") is not None


def is_raw(name: str) -> bool:
    return name.lower().endswith(tuple(RAW_SUFFIXES))


@dataclass(frozen=True)
class RawPhoto:
    """A RAW file's picture as an ordinary image stream (a JPEG preview or developed pixels)."""

    stream: BinaryIO
    orientation: int  # EXIF-style; 1 = upright as stored
    width: int  # of the picture as stored (before orientation)
    height: int


def _rawpy() -> Any:
    try:
        import rawpy
    except ImportError:
        raise ImageUnreadable(INSTALL_HINT) from None
    return rawpy


def open_raw(data: bytes, max_pixels: int) -> RawPhoto:
    """The picture in a RAW file's bytes: its embedded JPEG preview where there is one, else developed."""
    rawpy = _rawpy()
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            orientation = _FLIP_TO_ORIENTATION.get(int(raw.sizes.flip), 1)
            width, height = int(raw.sizes.width), int(raw.sizes.height)
            if width * height > max_pixels:
                raise ImageUnreadable(f"image is too large ({width}×{height} pixels)")
            try:
                thumb = raw.extract_thumb()
            except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
                thumb = None
            if thumb is not None and thumb.format == rawpy.ThumbFormat.JPEG:
                return RawPhoto(io.BytesIO(bytes(thumb.data)), orientation, width, height)
            # No usable preview: develop at half size (4× fewer pixels), upright already.
            rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
    except ImageUnreadable:
        raise
    except MemoryError:
        raise ImageUnreadable("not enough memory to decode this image") from None
    except Exception as exc:  # LibRaw's many error types all mean "not a RAW file it can read"
        raise ImageUnreadable(f"cannot read this RAW file ({type(exc).__name__})") from None
    from PIL import Image

    stream = io.BytesIO()
    Image.fromarray(rgb).save(stream, "PPM")  # uncompressed: quick to write and to read back
    stream.seek(0)
    # Developed upright: the RAW's own size, turned as the photo is shown.
    upright = (height, width) if orientation in (6, 8) else (width, height)
    return RawPhoto(stream, 1, *upright)


def raw_size(data: bytes) -> tuple[int, int, int]:
    """(width, height, orientation) of a RAW file from its header, without developing it."""
    rawpy = _rawpy()
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            return (int(raw.sizes.width), int(raw.sizes.height),
                    _FLIP_TO_ORIENTATION.get(int(raw.sizes.flip), 1))
    except Exception as exc:
        raise ImageUnreadable(f"cannot read this RAW file ({type(exc).__name__})") from None
