"""Decoding photos for the model: right way up, reduced early, first frame only.

Runs on worker threads. Memory is bounded twice over: an image is refused above
MAX_PIXELS before its pixels are allocated, and all decodes in a process share one
DecodeBudget, so many threads never hold many huge images at once.
"""

from __future__ import annotations

import collections
import ctypes
import io
import math
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from ._errors import ImageUnreadable
from ._facts import Facts
from ._rawphoto import FILE_TYPE as RAW_FILE_TYPE
from ._rawphoto import RAW_SUFFIXES, is_raw, open_raw, raw_available, raw_size
from ._safefile import open_regular

# Images above this many pixels are refused outright (a "decompression bomb"
# declares huge dimensions in a tiny file to exhaust memory). 200 MP still lets
# real panoramas and 100 MP medium-format photos through.
MAX_PIXELS = 200_000_000

# Pillow refuses images above twice its MAX_IMAGE_PIXELS: make that our limit
# exactly (its default refuses a valid 180 MP photo). Between the two, Pillow only
# warns, which is noise here.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
# Pillow warns about damaged metadata it skipped ("Corrupt EXIF data"…); the
# photo is indexed or reported either way, so the warnings are only noise.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
# Pillow's 1 MB cap on a PNG's compressed metadata also applies to its ICC colour
# profile, and real profiles can be larger. Still bounded, against zip bombs.
PngImagePlugin.MAX_TEXT_CHUNK = 16 * 1024 * 1024

# All decodes in a process together hold at most this much; one that costs more
# runs alone. One decode holds its pixels as decoded (1 to 4 bytes each, so at most
# 800 MB at MAX_PIXELS), 8 bytes per reduced pixel, and one strip's work (64 MB).
DECODE_BUDGET_BYTES = 512 * 1024 * 1024
# Modes Pillow cannot shrink are converted a strip of about this many pixels at a
# time; converting one takes at most _STRIP_WORK bytes per pixel.
_STRIP_PIXELS = 4_000_000
_STRIP_WORK = 16
_REDUCIBLE_MODES = frozenset(
    {"L", "LA", "La", "PA", "I", "F", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
)
# A reduced image is at most this big, unless that would cut its short side below
# the size asked for (only panoramas thinner than about 1:100 get there).
_MAX_REDUCED_PIXELS = 16_000_000
_WIDE_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


def _silence_libtiff() -> None:
    """Stop libtiff printing its complaints to stderr (it would break `--json` output).

    Pillow already turns a TIFF libtiff cannot read into an exception, which we
    report per file; the printed text adds nothing but noise.
    """
    try:
        from PIL import _imaging

        # dlsym on Pillow's extension finds the libtiff it was linked with.
        lib = ctypes.CDLL(_imaging.__file__)
        for name in (
            "TIFFSetErrorHandler",
            "TIFFSetWarningHandler",
            "TIFFSetErrorHandlerExt",
            "TIFFSetWarningHandlerExt",
        ):
            setter = getattr(lib, name)
            setter.restype = ctypes.c_void_p
            setter.argtypes = [ctypes.c_void_p]
            setter(None)  # no handler: libtiff stays silent
    except (OSError, AttributeError, ImportError):
        pass  # a Pillow without libtiff: nothing to silence


_silence_libtiff()

# The Pillow formats that are photos. Which file names they cover is Pillow's to say
# (`supported_suffixes`): AVIF is read wherever this Pillow was built with libavif, HEIC
# once pillow-heif registers itself, without a list here to keep in step.
PHOTO_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF"})

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
_GPS_IFD = 0x8825
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132
_ORIENTATION = 0x0112
_MAKE = 0x010F
_MODEL = 0x0110
_OFFSET_TIME = 0x9010
_OFFSET_TIME_ORIGINAL = 0x9011
_LENS_MAKE = 0xA433
_LENS_MODEL = 0xA434
_OFFSET = re.compile(r"[+-]\d\d:\d\d")


def heif_available() -> bool:
    """Register the HEIF plugin if it is installed; true when HEIC files can be read."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def supported_suffixes() -> frozenset[str]:
    """The file extensions of photos this installation can read, as Pillow (and its plugins) register
    them, and camera RAW where the raw extra is installed."""
    heif_available()
    Image.init()
    pillow = frozenset(
        suffix for suffix, name in Image.registered_extensions().items()
        if name in PHOTO_FORMATS and name in Image.OPEN
    )
    return pillow | RAW_SUFFIXES if raw_available() else pillow


@dataclass(frozen=True)
class ImageInfo:
    """What we record about a photo besides its vector (size as displayed, upright)."""

    width: int
    height: int
    taken_at: str | None
    # None where not read (a copy of a photo indexed before facts were kept).
    facts: Facts | None = None


def _exif(image: Image.Image) -> Image.Exif:
    """The image's EXIF block; empty where it is malformed (that must never cost the photo)."""
    try:
        return image.getexif()
    except Exception:
        return Image.Exif()


def _exif_datetime(exif: Image.Exif) -> str | None:
    try:
        raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except Exception:  # malformed EXIF must never cost the photo itself
        return None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _orientation(exif: Image.Exif) -> int:
    try:
        value = exif.get(_ORIENTATION, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1


def _facts(exif: Image.Exif, file_type: str | None) -> Facts:
    """Camera, lens, place and date offset from the EXIF; what is missing or malformed is None."""
    file_type = file_type.lower() if file_type else None
    try:
        sub = exif.get_ifd(_EXIF_IFD)
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:  # malformed EXIF must never cost the photo itself
        return Facts(file_type=file_type)
    offset = _text(sub.get(_OFFSET_TIME_ORIGINAL)) or _text(sub.get(_OFFSET_TIME))
    lens = _text(sub.get(_LENS_MODEL))
    lens_make = _text(sub.get(_LENS_MAKE))
    if lens and lens_make and not lens.lower().startswith(lens_make.lower()):
        lens = f"{lens_make} {lens}"
    latitude = _coordinate(gps.get(2), gps.get(1), "S", 90.0)
    longitude = _coordinate(gps.get(4), gps.get(3), "W", 180.0)
    return Facts(
        taken_offset=offset if offset and _OFFSET.fullmatch(offset) else None,
        camera_make=_text(exif.get(_MAKE)),
        camera_model=_text(exif.get(_MODEL)),
        lens=lens or lens_make,
        latitude=latitude if longitude is not None else None,
        longitude=longitude if latitude is not None else None,
        file_type=file_type,
    )


def _text(value: object) -> str | None:
    """An EXIF string, trimmed of the padding cameras add; None if empty or not text."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return " ".join(value.replace("\x00", " ").split())[:200] or None


def _coordinate(value: object, ref: object, negative: str, limit: float) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) and its N/S or E/W reference."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    try:
        degrees = float(value[0]) + float(value[1]) / 60 + float(value[2]) / 3600
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not math.isfinite(degrees) or degrees > limit:
        return None
    ref_text = _text(ref) or ""
    return round(-degrees if ref_text.upper().startswith(negative) else degrees, 7)


def open_image(
    source: bytes | str | Path | BinaryIO,
    min_side: int | None = None,
    *,
    budget: DecodeBudget | None = None,
    name: str | None = None,
) -> tuple[Image.Image, ImageInfo]:
    """Decode a photo as upright RGB; with min_side, at a reduced size no smaller than that.

    A path is opened with `open_regular` (no FIFOs, devices or oversized files).
    Raises ImageUnreadable with a short reason for anything that is not a usable
    image. The decode waits for its share of budget (by default the process's own).
    `name` is the file's name where source is an open file: camera RAW is known by it.
    """
    budget = budget or _PROCESS_BUDGET
    name = str(source) if isinstance(source, (str, Path)) else name
    raw = name is not None and is_raw(name) and raw_available()
    if isinstance(source, bytes):
        stream: BinaryIO = io.BytesIO(source)
        return _decode_raw(stream, min_side, budget) if raw else _decode(stream, min_side, budget)
    if isinstance(source, (str, Path)):
        try:
            handle = open_regular(source)
        except FileNotFoundError:
            raise ImageUnreadable("file not found") from None
        except OSError as exc:
            raise ImageUnreadable(f"cannot read file: {exc.strerror or exc}") from None
        with handle:
            return _decode_raw(handle, min_side, budget) if raw else _decode(handle, min_side, budget)
    return _decode_raw(source, min_side, budget) if raw else _decode(source, min_side, budget)


def _decode_raw(handle: BinaryIO, min_side: int | None, budget: DecodeBudget) -> tuple[Image.Image, ImageInfo]:
    """A camera RAW file, through its embedded preview (see _rawphoto); recorded at the RAW's own size."""
    try:
        data = handle.read()
    except OSError as exc:
        raise ImageUnreadable(f"cannot read file: {exc.strerror or exc}") from None
    photo = open_raw(data, MAX_PIXELS)
    del data
    image, info = _decode(photo.stream, min_side, budget, file_type=RAW_FILE_TYPE, orientation=photo.orientation)
    width, height = (photo.height, photo.width) if photo.orientation in (5, 6, 7, 8) else (photo.width, photo.height)
    # LibRaw writes a RAW's metadata into the preview's EXIF; a camera that kept no date gives 0, 1970.
    taken_at = None if (info.taken_at or "").startswith("1970-01-01T00:00:00") else info.taken_at
    return image, replace(info, width=width, height=height, taken_at=taken_at)


def _decode(
    stream: BinaryIO, min_side: int | None, budget: DecodeBudget, *,
    file_type: str | None = None, orientation: int | None = None,
) -> tuple[Image.Image, ImageInfo]:
    """Decode a stream; file_type and orientation, where given, are the container's (a RAW's)."""
    try:
        # Reads the header only: nothing is allocated for pixels until load().
        image: Image.Image = Image.open(stream)
        file_type = file_type or image.format  # the reduced copy below no longer has one
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageUnreadable(_too_large(width, height))
        if width < 1 or height < 1:
            raise ImageUnreadable("image has no pixels")
        if min_side and image.format == "JPEG":
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: several times faster.
            image.draft("RGB", (min_side, min_side))
        image.seek(0)
        factor = _reduce_factor(image.size, min_side)
        with budget.reserve(decode_cost(image, (width, height), factor)):
            # Reading EXIF of a PNG decodes it (its EXIF may follow the pixels), so
            # that too happens within the budget.
            image.load()
            exif = _exif(image)
            orientation = orientation or _orientation(exif)
            taken_at = _exif_datetime(exif)
            facts = _facts(exif, file_type)
            image = _rgb_reduced(image, factor)
            if orientation != 1:
                # By our own table: the reduced copy no longer carries the EXIF block.
                image = image.transpose(_TRANSPOSE[orientation])
    except ImageUnreadable:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageUnreadable(_too_large(pixels=_bomb_pixels(exc))) from None
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
    return image, ImageInfo(width=width, height=height, taken_at=taken_at, facts=facts)


def _too_large(width: int = 0, height: int = 0, *, pixels: int = 0) -> str:
    limit = f"the limit is {MAX_PIXELS // 1_000_000} MP"
    if width and height:
        return f"image too large ({width}×{height} pixels; {limit})"
    if pixels:
        return f"image too large ({pixels:,} pixels; {limit})"
    return f"image too large ({limit})"


def _bomb_pixels(exc: Image.DecompressionBombError) -> int:
    """The pixel count in Pillow's refusal ("Image size (N pixels) exceeds…"), or 0."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return int(found[1]) if found else 0


def _to_rgb(image: Image.Image, top: float) -> Image.Image:
    """Convert any mode to 8-bit RGB; transparency is laid on white, as viewers show it.

    top is the value that maps to white for 16- and 32-bit modes (see `_range_top`).
    """
    if image.mode in _WIDE_MODES:
        arr = np.asarray(image, dtype=np.float32)
        image = Image.fromarray((arr * (255.0 / top)).clip(0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _range_top(image: Image.Image) -> float:
    """The value white stands for in a 16- or 32-bit image, from the whole image.

    The format's range, not the image's maximum, where there is one: a mid-grey
    16-bit photo must stay mid-grey. 32-bit data has no fixed range; floats are 0..1.
    """
    if image.mode.startswith("I;16"):
        return 65535.0
    if image.mode not in ("I", "F"):
        return 255.0
    extrema = image.getextrema()  # one band: (low, high)
    peak = float(extrema[1]) if isinstance(extrema[1], (int, float)) else 0.0
    if image.mode == "F" and peak <= 1.0:
        return 1.0
    return 255.0 if peak <= 255.0 else 65535.0 if peak <= 65535.0 else peak


def _reduce_factor(size: tuple[int, int], min_side: int | None) -> int:
    """The integer shrink that keeps 3× min_side: the step the model's resize would
    take itself (reducing_gap=3), done here so that later steps work on the small image.

    A long panorama would still be large after that; it is shrunk further, down to
    _MAX_REDUCED_PIXELS, as long as its short side stays at least min_side.
    """
    if not min_side:
        return 1
    short, pixels = min(size), size[0] * size[1]
    factor = max(1, int(short / (3 * min_side)))
    if pixels > _MAX_REDUCED_PIXELS * factor * factor:
        needed = math.ceil(math.sqrt(pixels / _MAX_REDUCED_PIXELS))
        factor = max(factor, min(needed, short // min_side))
    return factor


def _rgb_reduced(image: Image.Image, factor: int) -> Image.Image:
    """A loaded image as RGB, shrunk by factor (a box filter), in bounded extra memory.

    Modes Pillow cannot shrink (palette, 1-bit, 16-bit) are converted and shrunk a
    strip at a time, so a 100 MP palette PNG never exists as 100 MP of RGBA.
    """
    if image.mode == "RGB":
        return image.reduce(factor) if factor > 1 else image
    top = _range_top(image)
    if not _by_strips(image.mode, factor):
        return _to_rgb(image.reduce(factor), top)
    width, height = image.size
    rows = max(1, _STRIP_PIXELS // width)
    rows = max(factor, rows - rows % factor)  # whole boxes per strip: same pixels as one reduce
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    for top_row in range(0, height, rows):
        strip = _to_rgb(image.crop((0, top_row, width, min(height, top_row + rows))), top)
        out.paste(strip.reduce(factor) if factor > 1 else strip, (0, top_row // factor))
    return out


def _pixel_bytes(mode: str) -> int:
    """Bytes Pillow keeps per pixel in this mode."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def decode_cost(image: Image.Image, full_size: tuple[int, int], factor: int) -> int:
    """Bytes a decode of this opened (and drafted) image holds at its peak, at most."""
    width, height = image.size
    cost = width * height * _pixel_bytes(image.mode)
    if image.format == "JPEG" and ("progressive" in image.info or "progression" in image.info):
        # libjpeg keeps every DCT coefficient of a progressive JPEG: 2 bytes per
        # sample per component at full size, whatever the draft scale.
        cost += 2 * Image.getmodebands(image.mode) * full_size[0] * full_size[1]
    cost += 2 * 4 * -(-width // factor) * -(-height // factor)  # the result and a rotated copy
    if _by_strips(image.mode, factor):
        cost += _STRIP_WORK * min(width * height, max(_STRIP_PIXELS, width * factor))
    return cost


def _by_strips(mode: str, factor: int) -> bool:
    """Whether `_rgb_reduced` converts this image a strip at a time."""
    return mode != "RGB" and not (factor > 1 and mode in _REDUCIBLE_MODES)


class DecodeBudget:
    """Bytes of decoded pixels that the decodes in one process may hold at once.

    Decodes start in the order they asked, each once its cost fits; one that costs
    more than the whole budget runs alone. Thread-safe.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self._used = 0
        self._waiting: collections.deque[object] = collections.deque()
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, cost: int) -> Iterator[None]:
        share = min(cost, self.limit)
        turn = object()
        with self._cond:
            # First come, first served: a big decode is not starved by a stream of small ones.
            self._waiting.append(turn)
            while self._waiting[0] is not turn or self._used + share > self.limit:
                self._cond.wait()
            self._waiting.popleft()
            self._used += share
            self._cond.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self._cond:
                self._used -= share
                self._cond.notify_all()

    @property
    def used(self) -> int:
        with self._cond:
            return self._used


# One per process, shared by every decode (indexing, search by example,
# classification, thumbnails, the preview), so that their total stays bounded.
_PROCESS_BUDGET = DecodeBudget(DECODE_BUDGET_BYTES)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "truncated" in text:
        return "file is truncated (incomplete download or copy?)"
    return f"cannot decode image: {text}"


def read_info(path: str | Path) -> ImageInfo:
    """Dimensions, date and facts of a photo from its header, without decoding its pixels.

    A PNG whose EXIF follows its pixels is described without it: reading that
    EXIF would decode the image.
    """
    if is_raw(str(path)) and raw_available():
        try:
            with open_regular(path) as handle:
                width, height, orientation = raw_size(handle.read())
        except OSError as exc:
            raise ImageUnreadable(_reason(exc)) from None
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        return ImageInfo(width, height, None, Facts(file_type=RAW_FILE_TYPE.lower()))
    try:
        with open_regular(path) as handle, Image.open(handle) as image:
            # Pillow would load() a PNG to find EXIF after its pixels.
            header_only = image.format == "PNG" and "exif" not in image.info
            exif = Image.Exif() if header_only else _exif(image)
            width, height = image.size
            if _orientation(exif) in (5, 6, 7, 8):
                width, height = height, width
            return ImageInfo(width, height, _exif_datetime(exif), _facts(exif, image.format))
    except ImageUnreadable:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageUnreadable(_too_large(pixels=_bomb_pixels(exc))) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageUnreadable(_reason(exc)) from None
