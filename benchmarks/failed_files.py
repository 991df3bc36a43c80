"""What files that can never be indexed cost on every later `clipdesk index` (and reconcile).

Makes N junk `.jpg` files (truncated JPEGs, or random bytes) and a few photos in a
temp folder, indexes them once, then times the next runs of `clipdesk index` and
counts the lines they print on stderr, with the deterministic colour encoder.

    .venv/bin/python benchmarks/failed_files.py                    # 5,000 truncated JPEGs
    .venv/bin/python benchmarks/failed_files.py --files 50000 --kind random
    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/failed_files.py   # compare

Not a test: its figures depend on the machine.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def make_folder(root: Path, files: int, kind: str) -> None:
    root.mkdir(parents=True)
    buf = io.BytesIO()
    Image.effect_noise((640, 480), 64).convert("RGB").save(buf, "JPEG")
    half = buf.getvalue()[: len(buf.getvalue()) // 2]
    for i in range(files):
        data = half + b"%d" % i if kind == "truncated" else os.urandom(4096)
        (root / f"junk{i:06d}.jpg").write_bytes(data)
    for i in range(10):
        Image.new("RGB", (48, 32), (i * 20, 0, 0)).save(root / f"photo{i}.jpg")


def run_index(env: dict[str, str], *args: str) -> tuple[float, str, int]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "clipdesk", "index", *args],
        env=env, capture_output=True, text=True, check=True,
    )
    return time.monotonic() - start, done.stdout.strip(), len(done.stderr.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--kind", choices=["truncated", "random"], default="truncated")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        make_folder(root, args.files, args.kind)
        env = dict(os.environ, CLIPDESK_DATA_DIR=str(Path(tmp) / "data"))
        seconds, summary, _ = run_index(env, str(root), "--model", "clipdesk-test:colours")
        print(f"first index:  {seconds:5.2f} s  {summary}")
        for _ in range(args.repeats):
            seconds, summary, lines = run_index(env)
            print(f"next index:   {seconds:5.2f} s  {lines} stderr lines  {summary}")


if __name__ == "__main__":
    main()
