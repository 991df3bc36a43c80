"""Peak memory of decoding tiny files with huge pixel counts, and of huge sparse files.

Not a test (it takes gigabytes on old code): the figures behind README's safety
section. Each run is a child process; its peak is its VmHWM. From the repository root:

    PYTHONPATH=$PWD .venv/bin/python tests/reliability/measure_decode_memory.py [--skip-app]

Works on older checkouts too (it needs only `tests/reliability/helpers.py`), so the
same command gives the before and after figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
import tempfile
import zlib
from pathlib import Path

sys.path.insert(0, os.getcwd())

from tests.reliability.helpers import (  # noqa: E402
    COLOUR_MODEL,
    clipdesk_argv,
    clipdesk_env,
    jpeg_bytes,
    run_measured,
)

WIDTH, HEIGHT = 12_000, 10_000

_APP = """
import sys, time
from pathlib import Path
from PySide6.QtWidgets import QApplication
from clipdesk._gui.preview import PreviewPane
from clipdesk._gui.thumbnails import ThumbnailLoader
from clipdesk._search import Hit

app = QApplication([])
files = sorted(Path(sys.argv[1]).iterdir())
loader = ThumbnailLoader(256, workers=2)
pane = PreviewPane()
for i, f in enumerate(files):
    loader.pixmap(i, str(f))
pane.show_hit(Hit(image_id=99, path=str(files[0]), score=0.5))
while not (all(loader.loaded(i) for i in range(len(files))) and pane.loader.loaded(99)):
    app.processEvents()
    time.sleep(0.01)
loader.stop()
pane.loader.stop()
"""


def _png(path: Path, depth: int, colour_type: int, row: bytes, extra: bytes = b"") -> None:
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(b"\0" + row) for _ in range(HEIGHT)) + comp.flush()
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, depth, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + extra + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_files(folder: Path) -> None:
    """Four 120 MP PNGs of 27–250 kB: two palette+transparency, 1-bit, 16-bit grey."""
    folder.mkdir(parents=True)
    trns = _chunk(b"tRNS", bytes([0, 255]))
    _png(folder / "palette-red.png", 8, 3, b"\1" * WIDTH, _chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0])) + trns)
    _png(
        folder / "palette-blue.png", 8, 3, b"\1" * WIDTH, _chunk(b"PLTE", bytes([0, 0, 0, 0, 0, 255])) + trns
    )
    _png(folder / "bilevel.png", 1, 0, b"\xff" * (WIDTH // 8))
    _png(folder / "grey16.png", 16, 0, b"\x80\x00" * WIDTH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-app", action="store_true", help="leave out the thumbnails + preview run")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clipdesk-decode-memory-"))
    try:
        big = tmp / "big"
        make_files(big)

        def measure(label: str, argv: list[str], **extra_env: str) -> None:
            env = clipdesk_env(tmp / f"data-{len(os.listdir(tmp))}", **extra_env)
            run = run_measured(argv, env, tmp, timeout=900)
            print(f"{label}: peak {run.peak_rss_mb:.0f} MB (exit {run.returncode})", flush=True)

        def index(folder: Path, workers: int = 4) -> list[str]:
            return clipdesk_argv(
                "index", str(folder), "--model", COLOUR_MODEL, "--workers", str(workers), "--json"
            )

        for path in sorted(big.iterdir()):
            if path.name == "palette-blue.png":
                continue
            one = tmp / f"one-{path.stem}"
            one.mkdir()
            shutil.copy(path, one / path.name)
            measure(f"index one 120 MP {path.name} ({path.stat().st_size // 1000} kB)", index(one))
        measure("index all four, 4 workers", index(big))
        classify = clipdesk_argv(
            "classify",
            str(big / "palette-red.png"),
            "--model",
            COLOUR_MODEL,
            "--labels",
            "red,blue",
            "--json",
        )
        measure("classify one 120 MP palette PNG", classify)
        if not args.skip_app:
            app = [sys.executable, "-c", _APP, str(big)]
            measure("app: 4 thumbnails (2 workers) + preview", app, QT_QPA_PLATFORM="offscreen")
        sparse = tmp / "sparse"
        sparse.mkdir()
        (sparse / "good.jpg").write_bytes(jpeg_bytes((0, 0, 255)))
        with open(sparse / "three-gb.jpg", "wb") as handle:
            handle.write(jpeg_bytes((255, 0, 0)))
            handle.truncate(3 << 30)
        measure("index a 3 GB sparse .jpg beside a good photo", index(sparse, 2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
