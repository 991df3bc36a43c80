"""How quickly `clipdesk watch` makes copied photos searchable, and what it costs when idle.

Runs the real command line in temp folders with the deterministic colour
encoder (`--model clipdesk-test:colours`), so the figures are the delay of the
machinery (events, debounce, hashing, decoding, writing); a real model adds its
encode time per image on top, which is printed beside them.

    .venv/bin/python benchmarks/watch_latency.py            # all measurements
    .venv/bin/python benchmarks/watch_latency.py --json     # the same as JSON
    .venv/bin/python benchmarks/watch_latency.py --idle-seconds 20 --idle-files 2000

Not a test: it takes a few minutes and its figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

MODEL = "clipdesk-test:colours"
VIT_B32_MS_PER_IMAGE = 75.0  # measured encode cost of ViT-B/32 per image on the 2-core CPU box


class Watch:
    """`clipdesk watch` running in the background, its log lines collected."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clipdesk", "watch", "--model", MODEL, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())

    def wait_for(self, text: str, timeout: float = 600) -> None:
        end = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError(f"watch never said {text!r}: {self.lines[-5:]}")
            time.sleep(0.02)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=60)


def indexed(db: Path, names: list[str]) -> int:
    """How many of these file names the library holds (read as another process would)."""
    from clipdesk.store import Store

    with Store(db, create=False) as store:
        paths = {os.path.basename(str(r[0])) for r in store.conn.execute("SELECT path FROM images")}
    return sum(n in paths for n in names)


def search_finds(env: dict[str, str], db: Path, text: str, name: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "clipdesk", "--db", str(db), "search", text, "-n", "600", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    return out.returncode == 0 and any(h["path"].endswith(name) for h in json.loads(out.stdout or "[]"))


def latency(work: Path, env: dict[str, str], files: int, debounce: float, size: tuple[int, int]) -> dict[str, Any]:
    """Copy `files` photos into a watched folder; time until the library and `clipdesk search` have them."""
    root, staging, db = work / f"watched-{files}", work / f"staging-{files}", work / f"lib-{files}.db"
    root.mkdir()
    staging.mkdir()
    Image.new("RGB", (64, 48), (220, 30, 30)).save(root / "seed.jpg")
    names = []
    for i in range(files):
        name = f"purple-{i:04d}.jpg"
        Image.new("RGB", size, (130, 40, 170 - i % 40)).save(staging / name, quality=90)
        names.append(name)
    watch = Watch(env, "--db", str(db), "--debounce", str(debounce), str(root))
    try:
        watch.wait_for("up to date: 1 images")
        start = time.monotonic()
        for name in names:  # a copy, as a file manager does it
            shutil.copyfile(staging / name, root / name)
        copied = time.monotonic()
        first = None
        while (count := indexed(db, names)) < files:
            if count and first is None:
                first = time.monotonic() - copied
            time.sleep(0.01)
        in_library = time.monotonic() - copied
        # A search process started now: what a user typing `clipdesk search` gets.
        last = names[-1]
        while not search_finds(env, db, "purple", last):
            time.sleep(0.01)
        via_search = time.monotonic() - copied
    finally:
        code = watch.stop()
    return {
        "files": files,
        "image_size": list(size),
        "debounce_s": debounce,
        "copy_s": round(copied - start, 3),
        "first_in_library_s": round(first if first is not None else in_library, 3),
        "all_in_library_s": round(in_library, 3),
        "found_by_clipdesk_search_s": round(via_search, 3),
        "vit_b32_encode_would_add_s": round(files * VIT_B32_MS_PER_IMAGE / 1000, 2),
        "watch_exit_status": code,
    }


def idle_cpu(work: Path, env: dict[str, str], files: int, seconds: float, poll: bool, poll_interval: float) -> dict[str, Any]:
    """CPU used by an idle `clipdesk watch` on a library of `files` photos."""
    import psutil

    root, db = work / "idle-library", work / "idle.db"
    if not root.exists():
        for i in range(files):  # 100 photos per folder, like camera import folders
            sub = root / f"{i // 100:03d}"
            if i % 100 == 0:
                sub.mkdir(parents=True)
            Image.new("RGB", (16, 16), (i % 256, (i // 256) % 256, 77)).save(sub / f"{i:05d}.png")
        subprocess.run(
            [sys.executable, "-m", "clipdesk", "--db", str(db), "--model", MODEL, "index", str(root)],
            check=True, env=env, capture_output=True,
        )
    args = ["--db", str(db)] + (["--poll", "--poll-interval", str(poll_interval)] if poll else [])
    watch = Watch(env, *args)
    try:
        watch.wait_for(f"up to date: {files} images")
        time.sleep(2)  # let start-up work settle
        proc = psutil.Process(watch.proc.pid)
        before = proc.cpu_times()
        t0 = time.monotonic()
        time.sleep(seconds)
        after = proc.cpu_times()
        elapsed = time.monotonic() - t0
        rss = proc.memory_info().rss
        threads = proc.num_threads()
    finally:
        watch.stop()
    used = (after.user - before.user) + (after.system - before.system)
    return {
        "files": files,
        "mode": f"polling every {poll_interval:g} s" if poll else "native events (inotify)",
        "seconds": round(elapsed, 1),
        "cpu_seconds": round(used, 3),
        "cpu_percent_of_one_core": round(100 * used / elapsed, 3),
        "rss_mb": round(rss / 1e6, 1),
        "threads": threads,
    }


def service_lanes(work: Path, files: int = 400, batch_s: float = 0.05) -> dict[str, Any]:
    """In process: how long a search waits behind bulk indexing, and how long stop() takes mid-batch.

    The encoder is the colour one slowed to `batch_s` per batch of 8, like a real model on a
    slow CPU; these were wall-clock limits in tests/test_service.py (2 s and 5 s).
    """
    import numpy as np

    from clipdesk.library import LibraryOptions
    from clipdesk.search import Query
    from clipdesk.service import IndexService
    from clipdesk.testing.colours import ColourEncoder

    class Slow(ColourEncoder):
        def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
            time.sleep(batch_s)
            return super().encode_pixels(pixels)

    root = work / "lanes"
    root.mkdir()
    for i in range(files):
        Image.new("RGB", (32, 32), (i % 250, 20 + i // 250, 50)).save(root / f"{i:04d}.png")
    service = IndexService(LibraryOptions(db_path=work / "lanes.db"), encoder=Slow(), debounce=0.2)
    service.start()
    try:
        service.add_folder(str(root))
        while service.submit(lambda lib: lib.store.count_images()).result(60) < 16:
            time.sleep(0.01)
        waits = []
        for _ in range(5):
            t0 = time.monotonic()
            service.submit(lambda lib: lib.search(Query(texts=("red",), limit=3))).result(60)
            waits.append(time.monotonic() - t0)
            time.sleep(0.1)
    finally:
        t0 = time.monotonic()
        service.stop()
        stop_s = time.monotonic() - t0
    return {
        "files": files,
        "batch_s": batch_s,
        "search_while_indexing_s": {"max": round(max(waits), 3), "median": round(sorted(waits)[2], 3)},
        "stop_mid_batch_s": round(stop_s, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--debounce", type=float, default=1.0, help="watch --debounce (default: the default, 1 s)")
    parser.add_argument("--batch", type=int, default=500, help="files in the batch copy (default: 500)")
    parser.add_argument("--idle-files", type=int, default=10_000, help="library size for idle CPU (default: 10000)")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle measurement length (default: 60)")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="interval for the polling run (default: 5)")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--only-service", action="store_true",
                        help="only the in-process search-while-indexing and stop timings")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="clipdesk-watch-bench-"))
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(work / "data"), HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    try:
        results["service"] = service_lanes(work)
        if args.only_service:
            json.dump(results, sys.stdout, indent=2)
            print()
            return 0
        results["one_file"] = latency(work, env, 1, args.debounce, (640, 480))
        results["batch"] = latency(work, env, args.batch, args.debounce, (640, 480))
        if not args.skip_idle:
            results["idle_native"] = idle_cpu(work, env, args.idle_files, args.idle_seconds, False, args.poll_interval)
            results["idle_polling"] = idle_cpu(work, env, args.idle_files, args.idle_seconds, True, args.poll_interval)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return 0
    lanes = results["service"]
    print(
        f"service, {lanes['files']} files at {lanes['batch_s']:g} s a batch: a search while indexing "
        f"waited {lanes['search_while_indexing_s']['median']:.3f} s (median of 5, max "
        f"{lanes['search_while_indexing_s']['max']:.3f} s); stop() mid-batch took {lanes['stop_mid_batch_s']:.3f} s"
    )
    for key in ("one_file", "batch"):
        r = results[key]
        print(
            f"{r['files']:4d} file(s) copied in {r['copy_s']:.2f} s (debounce {r['debounce_s']:g} s): "
            f"first in library {r['first_in_library_s']:.2f} s, all {r['all_in_library_s']:.2f} s, "
            f"found by a new `clipdesk search` {r['found_by_clipdesk_search_s']:.2f} s after the copy; "
            f"ViT-B/32 encoding would add ~{r['vit_b32_encode_would_add_s']:.2f} s"
        )
    for key in ("idle_native", "idle_polling"):
        if key in results:
            r = results[key]
            print(
                f"idle, {r['files']} files, {r['mode']}: {r['cpu_seconds']:.2f} CPU s in {r['seconds']:.0f} s "
                f"= {r['cpu_percent_of_one_core']:.2f}% of one core; RSS {r['rss_mb']} MB, {r['threads']} threads"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
