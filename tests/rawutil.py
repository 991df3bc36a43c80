"""A tiny DNG writer for the RAW tests: a 16-bit Bayer image, optionally with an embedded JPEG preview.

Real camera files cannot be shipped with the tests; LibRaw reads these the same way.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

_TYPES = {"BYTE": (1, "B"), "ASCII": (2, "s"), "SHORT": (3, "H"), "LONG": (4, "I"),
          "RATIONAL": (5, "II"), "SRATIONAL": (10, "ii")}


def _ifd(entries: list[tuple[int, str, object]], start: int, next_offset: int) -> bytes:
    """One TIFF IFD placed at `start`, from (tag, type, values) entries, with its out-of-line data."""
    entries = sorted(entries, key=lambda e: e[0])
    data_start = start + 2 + 12 * len(entries) + 4
    head = struct.pack("<H", len(entries))
    extra = b""
    for tag, typ, values in entries:
        code, fmt = _TYPES[typ]
        if typ == "ASCII":
            raw = str(values).encode() + b"\0"
            count = len(raw)
        elif typ in ("RATIONAL", "SRATIONAL"):
            raw = b"".join(struct.pack("<" + fmt, *v) for v in values)  # type: ignore[attr-defined]
            count = len(values)  # type: ignore[arg-type]
        else:
            raw = struct.pack(f"<{len(values)}{fmt}", *values)  # type: ignore[arg-type]
            count = len(values)  # type: ignore[arg-type]
        if len(raw) <= 4:
            head += struct.pack("<HHI", tag, code, count) + raw.ljust(4, b"\0")
        else:
            head += struct.pack("<HHII", tag, code, count, data_start + len(extra))
            extra += raw + (b"\0" if len(raw) % 2 else b"")
    return head + struct.pack("<I", next_offset) + extra


def make_dng(path: Path, width: int = 64, height: int = 48, preview: Image.Image | None = None,
             colour: tuple[int, int, int] = (200, 30, 30), orientation: int = 1) -> Path:
    """Write a DNG of one colour; with a preview, that JPEG is embedded as its thumbnail."""
    cfa = np.zeros((height, width), np.uint16)
    red, green, blue = (c * 200 for c in colour)
    cfa[0::2, 0::2] = red
    cfa[0::2, 1::2] = green
    cfa[1::2, 0::2] = green
    cfa[1::2, 1::2] = blue
    pixels = cfa.tobytes()
    jpeg = b""
    if preview is not None:
        buffer = io.BytesIO()
        preview.save(buffer, "JPEG")
        jpeg = buffer.getvalue()
    # Layout: header | pixels | JPEG | IFD0 (the raw image) | IFD1 (the preview).
    pixels_at = 8
    jpeg_at = pixels_at + len(pixels)
    ifd0_at = jpeg_at + len(jpeg) + len(jpeg) % 2
    identity = [(1, 1), (0, 1), (0, 1), (0, 1), (1, 1), (0, 1), (0, 1), (0, 1), (1, 1)]
    raw_entries: list[tuple[int, str, object]] = [
        (254, "LONG", [0]), (256, "LONG", [width]), (257, "LONG", [height]), (258, "SHORT", [16]),
        (259, "SHORT", [1]), (262, "SHORT", [32803]), (271, "ASCII", "Clipdesk"), (272, "ASCII", "Test RAW"),
        (273, "LONG", [pixels_at]), (274, "SHORT", [orientation]), (277, "SHORT", [1]),
        (278, "LONG", [height]), (279, "LONG", [len(pixels)]), (284, "SHORT", [1]),
        (33421, "SHORT", [2, 2]), (33422, "BYTE", [0, 1, 1, 2]), (50706, "BYTE", [1, 4, 0, 0]),
        (50708, "ASCII", "Clipdesk Test RAW"), (50717, "LONG", [65535]),
        (50721, "SRATIONAL", identity), (50728, "RATIONAL", [(1, 1), (1, 1), (1, 1)]),
    ]
    ifd0_size = len(_ifd(raw_entries, ifd0_at, 0))
    ifd1_at = ifd0_at + ifd0_size + ifd0_size % 2
    out = b"II*\0" + struct.pack("<I", ifd0_at) + pixels + jpeg + b"\0" * (len(jpeg) % 2)
    out += _ifd(raw_entries, ifd0_at, ifd1_at if jpeg else 0)
    if preview is not None:
        out += b"\0" * (ifd1_at - len(out))
        out += _ifd([(254, "LONG", [1]), (256, "LONG", [preview.width]), (257, "LONG", [preview.height]),
                     (259, "SHORT", [6]), (513, "LONG", [jpeg_at]), (514, "LONG", [len(jpeg)])], ifd1_at, 0)
    path.write_bytes(out)
    return path
