"""Thumbnails and the preview never block on a FIFO and decode huge pixel counts in bounded memory."""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path

from PIL import Image

from clipdesk._gui.preview import PreviewPane
from clipdesk._gui.thumbnails import ThumbnailLoader
from clipdesk._search import Hit


def huge_palette_png(path: Path, width: int = 12_000, height: int = 10_000) -> None:
    """A red palette PNG with transparency: 120 MP in ~140 kB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(b"\0" + b"\1" * width) for _ in range(height)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0]))
        + chunk(b"tRNS", bytes([0, 255]))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def _release(fifo: Path) -> None:
    """Let a reader blocked on the FIFO go (a writer opens it, then closes it)."""
    with contextlib.suppress(OSError):  # nobody is reading: nothing blocked
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_thumbnail_of_a_fifo_fails_at_once_and_others_still_load(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (80, 60), (200, 30, 30)).save(photo)
    loader = ThumbnailLoader(64, workers=1)
    try:
        loader.pixmap(1, str(fifo))
        qtbot.waitUntil(lambda: loader.loaded(1), timeout=10_000)
        assert 1 in loader.failed
        loader.pixmap(2, str(photo))
        qtbot.waitUntil(lambda: loader.loaded(2), timeout=10_000)
        assert loader.pixmap(2, str(photo)) is not None
    finally:
        _release(fifo)
        loader.stop()


def test_preview_of_a_huge_palette_png_and_of_a_fifo(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "palette.png"
    huge_palette_png(big)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    pane = PreviewPane()
    qtbot.addWidget(pane)
    try:
        pane.show_hit(Hit(image_id=1, path=str(big), score=0.5))
        qtbot.waitUntil(lambda: pane.loader.loaded(1), timeout=60_000)
        pixmap = pane.loader.pixmap(1, str(big))
        assert pixmap is not None and max(pixmap.width(), pixmap.height()) <= 1024
        pane.show_hit(Hit(image_id=2, path=str(fifo), score=0.5))
        qtbot.waitUntil(lambda: pane.picture.text() == "This photo cannot be read.", timeout=10_000)
    finally:
        _release(fifo)
        pane.loader.stop()
