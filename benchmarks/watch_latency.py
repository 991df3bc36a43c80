"""How quickly `clipdesk watch` makes copied photos searchable in a library of a given size.

With `--library-size N` photos already indexed under the watched folder (real
files, hard links to a few small PNGs; rows and random vectors written straight
into the library, see `common.synthetic_library`), it runs the real command line
with the deterministic colour encoder (`--model clipdesk-test:colours`) and
measures, from the end of a copy of 1 and of 50 new photos, the delay until a
new `clipdesk search` process finds them, and the CPU the watcher spent per
single-photo change. The figures are the machinery's (events, debounce, hashing,
decoding, writing, a search process starting); a real model adds its encode time
per image on top.

    .venv/bin/python benchmarks/watch_latency.py                        # N = 1000
    .venv/bin/python benchmarks/watch_latency.py --library-size 1000000 --json

Not a test: building a million-photo library takes about a minute, and the
figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import log, synthetic_library  # noqa: E402

MODEL = "clipdesk-test:colours"
QUERY = "purple"
# The colour encoder's dimensions for purple and for "not a colour": the synthetic
# vectors are zero there, so a search for "purple" finds only the copied photos.
QUERY_DIMS = (7, 8)
DIM = 9
PURPLE = (130, 40, 170)


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

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def wait_for(self, text: str, times: int = 1, timeout: float = 1800) -> None:
        """Wait until `text` has appeared in `times` log lines."""
        end = time.monotonic() + timeout
        while self.count(text) < times:
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError(f"watch never said {text!r}: {self.lines[-5:]}")
            time.sleep(0.02)

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        import psutil

        return float(psutil.Process(self.proc.pid).memory_info().rss / 1e6)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=120)


def in_library(db: Path, paths: list[Path]) -> int:
    """How many of these files the library holds (read as another process would, by the path index)."""
    from clipdesk._store import Store

    with Store(db, create=False) as store:
        marks = ",".join("?" * len(paths))
        query = f"SELECT count(*) FROM images WHERE path IN ({marks})"
        return int(store.conn.execute(query, [str(p) for p in paths]).fetchone()[0])


def search_finds(env: dict[str, str], db: Path, paths: list[Path], limit: int) -> bool:
    """True when a new `clipdesk search` process lists every one of these photos."""
    out = subprocess.run(
        [sys.executable, "-m", "clipdesk", "--db", str(db), "search", QUERY, "-n", str(limit), "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    if out.returncode != 0:
        return False
    found = {h["path"] for h in json.loads(out.stdout or "[]")}
    return all(str(p) in found for p in paths)


def copy_and_find(watch: Watch, env: dict[str, str], db: Path, staged: list[Path], dest: Path) -> dict[str, float]:
    """Copy staged photos into the watched folder; time until a new search finds them all.

    Only the photos copied into `dest` match the query, so asking for all of them finds these.
    """
    idle_lines = watch.count("up to date:")
    cpu = watch.cpu_seconds()
    targets = [dest / p.name for p in staged]
    for source, target in zip(staged, targets):  # a copy, as a file manager does it
        shutil.copyfile(source, target)
    copied = time.monotonic()
    while in_library(db, targets) < len(targets):
        time.sleep(0.01)
    stored = time.monotonic() - copied
    # A search process started now: what a user typing `clipdesk search` gets.
    limit = len(list(dest.iterdir())) + 10
    while not search_finds(env, db, targets, limit):
        time.sleep(0.01)
    found = time.monotonic() - copied
    watch.wait_for("up to date:", idle_lines + 1)  # the watcher has finished with the change
    return {"in_library_s": stored, "found_s": found, "cpu_s": watch.cpu_seconds() - cpu}


def stage(folder: Path, prefix: str, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        path = folder / f"{prefix}-{i:03d}.jpg"
        Image.new("RGB", (640, 480), (PURPLE[0], PURPLE[1], PURPLE[2] - i % 40)).save(path, quality=90)
        out.append(path)
    return out


def measure(work: Path, env: dict[str, str], size: int, singles: int, debounce: float, idle_s: float) -> dict[str, Any]:
    root, db = work / "watched", work / "library.db"
    root.mkdir()
    started = time.monotonic()
    synthetic_library(db, root, size, model_id=MODEL, dim=DIM, zero_dims=QUERY_DIMS)
    log(f"library of {size} photos built in {time.monotonic() - started:.1f} s")
    dest = root / "new"
    dest.mkdir()
    single_sets = [stage(work / "staging", f"single{k}", 1) for k in range(singles)]
    batch = stage(work / "staging", "batch", 50)
    started = time.monotonic()
    watch = Watch(env, "--db", str(db), "--debounce", str(debounce), str(root))
    try:
        watch.wait_for(f"up to date: {size} images")
        start_up = time.monotonic() - started
        log(f"watch reconciled the library in {start_up:.1f} s")
        time.sleep(2)  # let start-up work settle
        ones = [copy_and_find(watch, env, db, s, dest) for s in single_sets]
        fifty = copy_and_find(watch, env, db, batch, dest)
        idle_cpu = None
        if idle_s > 0:
            before = watch.cpu_seconds()
            time.sleep(idle_s)
            idle_cpu = (watch.cpu_seconds() - before) / idle_s
        rss = watch.rss_mb()
    finally:
        code = watch.stop()
    if code != 0:
        raise RuntimeError(f"watch exited with {code}: {watch.lines[-5:]}")
    result: dict[str, Any] = {
        "library_size": size,
        "copy_1_s": round(statistics.median(o["found_s"] for o in ones), 3),
        "copy_50_s": round(fifty["found_s"], 3),
        # CPU time is counted in ticks (10 ms): the mean over several changes is finer.
        "cpu_per_change_s": round(statistics.mean(o["cpu_s"] for o in ones), 4),
        "rss_mb": round(rss, 1),
    }
    details = {
        "watch_start_up_s": round(start_up, 1),
        "copy_1_in_library_s": [round(o["in_library_s"], 3) for o in ones],
        "copy_1_found_s": [round(o["found_s"], 3) for o in ones],
        "copy_1_cpu_s": [round(o["cpu_s"], 3) for o in ones],
        "copy_50_in_library_s": round(fifty["in_library_s"], 3),
        "copy_50_cpu_s": round(fifty["cpu_s"], 3),
        "idle_cpu_share_of_one_core": None if idle_cpu is None else round(idle_cpu, 4),
    }
    log("details: " + json.dumps(details))
    return result


def service_lanes(work: Path, files: int = 400, batch_s: float = 0.05) -> dict[str, Any]:
    """In process: how long a search waits behind bulk indexing, and how long stop() takes mid-batch.

    The encoder is the colour one slowed to `batch_s` per batch of 8, like a real model on a
    slow CPU; these were wall-clock limits in tests/test_service.py (2 s and 5 s).
    """
    import numpy as np

    from clipdesk._library import LibraryOptions
    from clipdesk._search import Query
    from clipdesk._service import IndexService
    from clipdesk._testing.colours import ColourEncoder

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
    parser.add_argument("--library-size", type=int, default=1000, help="photos already indexed (default: 1000)")
    parser.add_argument("--singles", type=int, default=20,
                        help="single-photo copies, one after another: the median delay and the mean CPU "
                        "are kept (default: 20)")
    parser.add_argument("--debounce", type=float, default=1.0, help="watch --debounce (default: 1 s, the default)")
    parser.add_argument("--idle-seconds", type=float, default=0.0, help="also measure idle CPU for this long")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--work-dir", type=Path, default=None, help="where to build the library (default: a temp folder)")
    parser.add_argument("--only-service", action="store_true",
                        help="only the in-process search-while-indexing and stop timings")
    args = parser.parse_args()

    # Resolved, so the paths the watcher reports are the paths the library holds.
    work = Path(tempfile.mkdtemp(prefix="clipdesk-watch-bench-", dir=args.work_dir)).resolve()
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(work / "data"), HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    try:
        if args.only_service:
            result = service_lanes(work)
            waits = result["search_while_indexing_s"]
            line = (
                f"service, {result['files']} files at {result['batch_s']:g} s a batch: a search while "
                f"indexing waited {waits['median']:.3f} s (median of 5, max {waits['max']:.3f} s); "
                f"stop() mid-batch took {result['stop_mid_batch_s']:.3f} s"
            )
        else:
            result = measure(work, env, args.library_size, max(1, args.singles), args.debounce, args.idle_seconds)
            line = (
                f"library of {result['library_size']} photos: a copied photo found by a new `clipdesk "
                f"search` {result['copy_1_s']:.2f} s after the copy, 50 photos {result['copy_50_s']:.2f} s; "
                f"watcher CPU per change {result['cpu_per_change_s']:.3f} s; watcher RSS {result['rss_mb']} MB"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
