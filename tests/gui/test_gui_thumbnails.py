"""Thumbnails: decoded off the GUI thread, upright, cached privately on disk, jobs droppable."""

from __future__ import annotations

import os
import stat
import threading

from PIL import Image
from PySide6.QtGui import QImage

from clipdesk._gui import thumbnails
from clipdesk._gui.thumbnails import ThumbnailLoader, thumbnail_dir


def rotated_jpeg(path):  # type: ignore[no-untyped-def]
    """A wide JPEG whose EXIF says 'rotate 90°': shown upright it is tall."""
    image = Image.new("RGB", (120, 60), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, exif=exif.tobytes())
    return path


def test_thumbnail_is_upright_and_cached_privately(qtbot, data_dir, tmp_path, monkeypatch):
    path = rotated_jpeg(tmp_path / "turned.jpg")
    decoded_on: list[str] = []
    real_load = ThumbnailLoader._load

    def spy(self, *args):  # type: ignore[no-untyped-def]
        decoded_on.append(threading.current_thread().name)
        return real_load(self, *args)

    monkeypatch.setattr(ThumbnailLoader, "_load", spy)
    loader = ThumbnailLoader(64, disk_cache=thumbnail_dir())
    try:
        assert loader.pixmap(7, str(path)) is None  # not yet: queued
        with qtbot.waitSignal(loader.ready, timeout=10_000):
            pass
        pixmap = loader.pixmap(7, str(path))
        assert pixmap is not None and pixmap.height() > pixmap.width()
        assert decoded_on and decoded_on[0] != threading.main_thread().name
        files = list(thumbnail_dir().iterdir())
        assert len(files) == 1 and files[0].name.startswith("7-")
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
        assert stat.S_IMODE(thumbnail_dir().stat().st_mode) == 0o700
        cached = QImage(str(files[0]))
        assert cached.height() > cached.width()

        # An edited photo (new mtime) gets a new thumbnail, not the stale one.
        os.utime(path, ns=(1, 1))
        loader.forget()
        loader.pixmap(7, str(path))
        qtbot.waitUntil(lambda: loader.pending == 0 and loader.pixmap(7, str(path)) is not None, timeout=10_000)
        assert len(list(thumbnail_dir().iterdir())) == 2
    finally:
        loader.stop()


def test_changing_results_drops_queued_jobs(qtbot, tmp_path):
    gate, busy = threading.Event(), threading.Event()
    loader = ThumbnailLoader(32, workers=1)
    real = loader._load

    def slow(path, image_id):  # type: ignore[no-untyped-def]
        busy.set()
        gate.wait(5)
        return real(path, image_id)

    loader._load = slow  # type: ignore[method-assign]
    try:
        paths = []
        for i in range(20):
            p = tmp_path / f"{i}.png"
            Image.new("RGB", (8, 8)).save(p)
            paths.append(p)
            loader.request(i, str(p))
        assert busy.wait(5)
        assert loader.pending == 20  # one being decoded, 19 queued
        loader.clear_queue()
        assert loader.pending == 1
        gate.set()
        qtbot.waitUntil(lambda: loader.pending == 0, timeout=5_000)
    finally:
        gate.set()
        loader.stop()


def test_unreadable_file_is_marked_not_retried(qtbot, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    loader = ThumbnailLoader(32)
    try:
        with qtbot.waitSignal(loader.ready, timeout=5_000):
            loader.pixmap(1, str(bad))
        assert 1 in loader.failed
        assert loader.pixmap(1, str(bad)) is None and loader.pending == 0
    finally:
        loader.stop()


def test_prune_keeps_the_cache_under_its_limit(data_dir, tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.jpg").write_bytes(b"x" * 600_000)
        os.utime(folder / f"{i}.jpg", (i, i))
    loader = ThumbnailLoader.__new__(ThumbnailLoader)
    loader._disk, loader._cache_limit = folder, 1_300_000
    ThumbnailLoader.prune(loader)
    assert sorted(p.name for p in folder.iterdir()) == ["3.jpg", "4.jpg"]
    assert thumbnails.DEFAULT_CACHE_MB > 0


def _colour(pixmap) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    c = pixmap.toImage().pixelColor(pixmap.width() // 2, pixmap.height() // 2)
    return c.red(), c.green(), c.blue()


def test_revalidate_reloads_photos_changed_on_disk(qtbot, tmp_path):
    # An edited photo keeps its image id, so the thumbnail in memory must be checked
    # against the file; a file that could not be read may have been fixed meanwhile.
    edited, fixed, same = tmp_path / "edited.png", tmp_path / "fixed.png", tmp_path / "same.png"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(edited)
    Image.new("RGB", (40, 30), (0, 255, 0)).save(same)
    fixed.write_bytes(b"still being copied")
    loader = ThumbnailLoader(32)
    try:
        for image_id, path in enumerate((edited, fixed, same)):
            loader.request(image_id, str(path))
        qtbot.waitUntil(lambda: all(loader.loaded(i) for i in range(3)), timeout=5_000)
        assert 1 in loader.failed
        Image.new("RGB", (40, 30), (0, 0, 255)).save(edited)
        os.utime(edited, ns=(1, 1))  # a date that surely differs
        Image.new("RGB", (40, 30), (255, 255, 0)).save(fixed)
        kept = loader.pixmap(2, str(same))
        reloaded: list[int] = []
        loader.ready.connect(reloaded.append)
        loader.revalidate()
        qtbot.waitUntil(lambda: sorted(set(reloaded)) == [0, 1], timeout=5_000)
        for image_id, path in enumerate((edited, fixed)):
            loader.pixmap(image_id, str(path))  # what repainting the row does
        qtbot.waitUntil(lambda: loader.pending == 0 and loader.loaded(0) and loader.loaded(1), timeout=5_000)
        assert _colour(loader.pixmap(0, str(edited))) == (0, 0, 255)
        assert _colour(loader.pixmap(1, str(fixed))) == (255, 255, 0)
        assert loader.pixmap(2, str(same)) is kept  # unchanged: not decoded again
    finally:
        loader.stop()
