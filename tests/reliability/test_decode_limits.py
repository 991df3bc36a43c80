"""Files that cost memory or block: huge pixel counts, huge files, FIFOs, odd limits.

Runs that could take gigabytes on a regression run in a child process with a cap on
its address space (RLIMIT_AS), so a failure is a clean MemoryError, never a swap storm.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipdesk._indexer import Indexer
from clipdesk._store import Store
from clipdesk._testing.colours import PALETTE, ColourEncoder

from .helpers import (
    jpeg_folder,
    COLOUR_MODEL,
    clipdesk_argv,
    clipdesk_env,
    jpeg_bytes,
    read_library,
    run_measured,
)

RED, BLUE = PALETTE["red"], PALETTE["blue"]
WIDTH, HEIGHT = 12_000, 10_000  # 120 MP, a few hundred kB compressed
ADDRESS_SPACE_MB = 1536  # a whole index run with 4 workers needs ~1 GB of address space


def _png(path: Path, depth: int, colour_type: int, row: bytes, extra: bytes = b"") -> None:
    """A WIDTH × HEIGHT PNG whose every row is `row`, compressed row by row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(b"\0" + row) for _ in range(HEIGHT)) + comp.flush()
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, depth, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def huge_palette_png(path: Path, colour: tuple[int, int, int]) -> None:
    """Palette + transparency: every pixel is the opaque entry 1 (entry 0 is see-through)."""
    trns = bytes([0, 255])
    plte = bytes([0, 0, 0, *colour])

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    _png(path, 8, 3, b"\1" * WIDTH, chunk(b"PLTE", plte) + chunk(b"tRNS", trns))


def huge_bilevel_png(path: Path) -> None:
    _png(path, 1, 0, b"\xff" * (WIDTH // 8))  # all white


def huge_grey16_png(path: Path) -> None:
    _png(path, 16, 0, b"\x00\x00" * WIDTH)  # all black


def capped_argv(*args: str) -> list[str]:
    """`clipdesk ARGS` in a child whose address space is capped at ADDRESS_SPACE_MB."""
    code = (
        "import resource, runpy, sys\n"
        f"limit = {ADDRESS_SPACE_MB} << 20\n"
        "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
        f"sys.argv = ['clipdesk', *{list(args)!r}]\n"
        "runpy.run_module('clipdesk', run_name='__main__', alter_sys=True)\n"
    )
    return [sys.executable, "-c", code]


def _colour_of(vector: np.ndarray) -> str:
    return list(PALETTE)[int(np.argmax(vector[: len(PALETTE)]))]


# -- item 4: tiny files, huge pixel counts -----------------------------------------


def test_tiny_files_with_huge_pixel_counts_stay_within_the_bound(tmp_path: Path) -> None:
    """120 MP palette+alpha, 1-bit and 16-bit PNGs of a few hundred kB, 4 workers.

    Before the fix one such file took 1–2 GB and these four together 5 GB.
    """
    root = tmp_path / "photos"
    root.mkdir()
    huge_palette_png(root / "palette-red.png", RED)
    huge_palette_png(root / "palette-blue.png", BLUE)
    huge_bilevel_png(root / "bilevel.png")
    huge_grey16_png(root / "grey16.png")
    assert sum(p.stat().st_size for p in root.iterdir()) < 1_000_000
    data = tmp_path / "data"
    argv = capped_argv("index", str(root), "--model", COLOUR_MODEL, "--workers", "4", "--json")
    run = run_measured(argv, clipdesk_env(data), tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["failed"] == [] and report["indexed"] == 4
    colours = {
        Path(path).name: _colour_of(np.frombuffer(blob, dtype=np.float32))
        for path, blob in read_library(data / "library.db").vectors.items()
    }
    assert colours == {
        "palette-red.png": "red",
        "palette-blue.png": "blue",
        "bilevel.png": "white",
        "grey16.png": "black",
    }
    print(f"peak RSS indexing four 120 MP tiny PNGs with 4 workers: {run.peak_rss_mb:.0f} MB")
    # The documented bound: 512 MB of decodes at once, plus the process itself.
    assert run.peak_rss_mb < 700


def test_classify_and_search_by_example_of_a_huge_palette_png_are_bounded(tmp_path: Path) -> None:
    photo = tmp_path / "palette-red.png"
    huge_palette_png(photo, RED)
    env = clipdesk_env(tmp_path / "data")
    classify = run_measured(
        capped_argv("classify", str(photo), "--model", COLOUR_MODEL, "--labels", "red,blue", "--json"),
        env,
        tmp_path,
    )
    assert classify.returncode == 0, classify.stderr
    assert json.loads(classify.stdout)[0]["labels"]["red"] > 0.9
    print(f"peak RSS classifying a 120 MP palette PNG: {classify.peak_rss_mb:.0f} MB")
    assert classify.peak_rss_mb < 500

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "red.jpg").write_bytes(jpeg_bytes(RED))
    subprocess.run(
        clipdesk_argv("index", str(tmp_path / "lib"), "--model", COLOUR_MODEL),
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    similar = run_measured(capped_argv("search", "--like", str(photo), "--json"), env, tmp_path)
    assert similar.returncode == 0, similar.stderr
    assert "red.jpg" in similar.stdout
    assert similar.peak_rss_mb < 500


# -- item 5: a file is never read whole ----------------------------------------------


def test_a_huge_sparse_file_is_refused_unread_and_the_rest_indexed(tmp_path: Path) -> None:
    """A 3 GB sparse .jpg cost 3.2 GB of memory; a 20 GB one aborted the whole run."""
    root = tmp_path / "photos"
    root.mkdir()
    (root / "good.jpg").write_bytes(jpeg_bytes(BLUE))
    for name, size in (("three-gb.jpg", 3 << 30), ("twenty-gb.jpg", 20 << 30)):
        with open(root / name, "wb") as handle:
            handle.write(jpeg_bytes(RED))
            handle.truncate(size)  # sparse: no disk space used
    argv = capped_argv("index", str(root), "--model", COLOUR_MODEL, "--json")
    run = run_measured(argv, clipdesk_env(tmp_path / "data"), tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    report = json.loads(run.stdout)
    assert report["indexed"] == 1
    failed = {Path(f["path"]).name: f["error"] for f in report["failed"]}
    assert set(failed) == {"three-gb.jpg", "twenty-gb.jpg"}
    assert all("too large" in reason for reason in failed.values()), failed
    print(f"peak RSS indexing beside 3 GB and 20 GB sparse files: {run.peak_rss_mb:.0f} MB")
    assert run.peak_rss_mb < 300


def test_memory_error_on_one_file_skips_only_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clipdesk._indexer as indexer_mod

    root = jpeg_folder(tmp_path / "photos", 4)
    real_open_image = indexer_mod.open_image
    calls = 0

    def failing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise MemoryError
        return real_open_image(*args, **kwargs)

    monkeypatch.setattr(indexer_mod, "open_image", failing_once)
    with Store(tmp_path / "lib.db") as store:
        report = Indexer(store, ColourEncoder(), workers=1).index([str(root)])
        assert report.indexed == 3
        assert len(report.failed) == 1 and "memory" in report.failed[0].error
        assert store.integrity() == "ok"


def test_hash_is_computed_in_chunks(tmp_path: Path) -> None:
    """The content hash never needs the whole file in one buffer (and matches hashing it whole)."""
    import hashlib

    from clipdesk._indexer import HASH_CHUNK, hash_handle

    payload = os.urandom(3 * HASH_CHUNK + 17)
    reads: list[int] = []

    class Recording(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    digest, size = hash_handle(Recording(payload))
    assert digest == hashlib.blake2b(payload, digest_size=16).hexdigest() and size == len(payload)
    assert all(0 < n <= HASH_CHUNK for n in reads)


# -- item 6: FIFOs never block ----------------------------------------------------------


def test_classify_of_a_fifo_answers_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    env = clipdesk_env(tmp_path / "data")
    argv = clipdesk_argv("classify", str(fifo), "--model", COLOUR_MODEL, "--labels", "red,blue")
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("classify blocked on a FIFO")
    assert "Traceback" not in result.stderr
    assert "x.jpg" in result.stderr and "FIFO" in result.stderr, result.stderr


def test_file_replaced_by_fifo_between_scan_and_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import clipdesk._indexer as indexer_mod

    root = jpeg_folder(tmp_path / "photos", 4)
    real_scan = indexer_mod.scan

    def scan_then_swap(*args, **kwargs):  # type: ignore[no-untyped-def]
        yield from real_scan(*args, **kwargs)
        (root / "p2.jpg").unlink()
        os.mkfifo(root / "p2.jpg")

    monkeypatch.setattr(indexer_mod, "scan", scan_then_swap)
    outcome: list[object] = []
    with Store(tmp_path / "lib.db") as store:
        indexer = Indexer(store, ColourEncoder(), workers=2)
        thread = threading.Thread(target=lambda: outcome.append(indexer.index([str(root)])))
        thread.start()
        thread.join(60)
        if thread.is_alive():
            # Let a blocked reader go (a writer opens the FIFO, then closes it), then fail.
            os.close(os.open(root / "p2.jpg", os.O_WRONLY | os.O_NONBLOCK))
            thread.join(60)
            pytest.fail("index blocked on a FIFO")
    report = outcome[0]
    assert report.indexed == 3  # type: ignore[attr-defined]
    assert [(Path(f.path).name, f.error) for f in report.failed] == [  # type: ignore[attr-defined]
        ("p2.jpg", "a named pipe (FIFO), not a photo")
    ]


# -- item 13: limits that refused valid photos, noise on stderr --------------------------


def test_180_megapixel_jpeg_is_accepted(tmp_path: Path) -> None:
    """Pillow's own limit (179 MP) used to refuse it although ours is 200 MP."""
    from clipdesk._imaging import open_image

    path = tmp_path / "panorama.jpg"
    Image.new("L", (15_000, 12_000), 200).save(path, quality=30)
    image, info = open_image(path, min_side=224)
    assert (info.width, info.height) == (15_000, 12_000)
    assert min(image.size) >= 224


def test_png_with_a_large_icc_profile_is_read(tmp_path: Path) -> None:
    """Profiles over 1 MB hit Pillow's limit for PNG text chunks."""
    from clipdesk._imaging import open_image

    path = tmp_path / "profiled.png"
    profile = os.urandom(1_500_000)
    Image.new("RGB", (32, 24), RED).save(path, icc_profile=profile)
    image, info = open_image(path, min_side=8)
    assert image.getpixel((0, 0)) == RED and info.width == 32


def _tiff_libtiff_complains_about(path: Path) -> None:
    """A deflate TIFF whose PlanarConfiguration tag has the wrong type: libtiff prints."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), RED).save(buf, "TIFF", compression="tiff_deflate")
    data = bytearray(buf.getvalue())
    assert data[:2] == b"II"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 284:  # PlanarConfiguration
            struct.pack_into("<H", data, entry + 2, 11)  # FLOAT instead of SHORT
    path.write_bytes(bytes(data))


def test_libtiff_prints_nothing_during_a_json_run(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    _tiff_libtiff_complains_about(root / "odd.tif")
    (root / "good.jpg").write_bytes(jpeg_bytes(BLUE))
    env = clipdesk_env(tmp_path / "data")
    argv = clipdesk_argv("index", str(root), "--model", COLOUR_MODEL, "--json")
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["indexed"] == 1
    assert [Path(f["path"]).name for f in report["failed"]] == ["odd.tif"]
    assert result.stderr == ""
