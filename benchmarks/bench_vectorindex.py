"""The in-memory search index alone, on a synthetic library (no model): its side file and its close.

For a library of --size vectors (default 100k at 512 dimensions, as ViT-B/32; built once
and cached, the same library as bench_search.py's) with the index in binary mode:

- reading the float vectors of 8192 random rows (one query's re-rank candidates) from the
  index's temporary file, the portable way the index does it (a mapping per read), and for
  comparison the old Unix-only way (one os.preadv per row) where this OS has it;
- the vector search alone (k=10 and k=10,000), and this process's RSS afterwards;
- how long `VectorIndex.close()` takes while a full read of the library runs in the
  background (it must stop the read, not wait for it).

    python benchmarks/bench_vectorindex.py
    python benchmarks/bench_vectorindex.py --size 1000000 --json
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import Synthetic, build_library, library_path  # noqa: E402
from common import Load, add_common_options, emit, log, median, percentile, rss_mb  # noqa: E402

MODEL_ID = "bench-synthetic"
DIM = 512
READ_ROWS = 8192


def _preadv_rows(file: Any, rows: np.ndarray) -> np.ndarray:
    """The index's reader before it was made portable: one os.preadv per row."""
    fd, size = file._file.fileno(), file.row_bytes
    out = np.empty((len(rows), file.dim), dtype=np.float32)
    buffer = out.data.cast("B")
    for i in np.argsort(rows).tolist():
        os.preadv(fd, [buffer[i * size : (i + 1) * size]], int(rows[i]) * size)
    return out


def _ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(median(values), 2), "p95_ms": round(percentile(values, 95), 2)}


def measure(db: Path, size: int, repeats: int) -> dict[str, Any]:
    from clipdesk import _vectorindex as vectorindex
    from clipdesk._store import Store
    from clipdesk._vectorindex import VectorIndex

    out: dict[str, Any] = {"size": size}
    rng = np.random.default_rng(7)
    with Store(db, create=False) as store:
        # The side file on its own, filled with the library's vectors.
        side = vectorindex._FloatFile(DIM)
        for _, vectors in store.iter_vectors():
            side.append(vectors)
        portable, old = [], []
        with Load() as load:
            for _ in range(repeats):
                rows = rng.choice(side.rows, min(READ_ROWS, side.rows), replace=False)
                start = time.perf_counter()
                got = side.read(rows)
                portable.append((time.perf_counter() - start) * 1000)
                if hasattr(os, "preadv"):
                    start = time.perf_counter()
                    expected = _preadv_rows(side, rows)
                    old.append((time.perf_counter() - start) * 1000)
                    assert np.array_equal(got, expected)
        side.close()
        out["side_file_read"] = {
            "rows": min(READ_ROWS, size),
            "portable_mapping": _ms(portable),
            "old_preadv_per_row": _ms(old) if old else None,
            "others_cores_meanwhile": round(load.others_cores, 2),
        }

        index = VectorIndex(exact_bytes=0)
        started = time.perf_counter()
        index.sync(store)
        out["index_build_s"] = round(time.perf_counter() - started, 2)
        queries = Synthetic(size, DIM).queries(max(repeats, 5))
        with Load() as load:
            small = []
            for q in queries:
                start = time.perf_counter()
                index.search(store, q, 10)
                small.append((time.perf_counter() - start) * 1000)
            large = []
            for q in queries[:5]:
                start = time.perf_counter()
                index.search(store, q, 10_000)
                large.append((time.perf_counter() - start) * 1000)
        out["vector_search_k10"] = _ms(small)
        out["vector_search_k10000"] = _ms(large)
        out["search_others_cores"] = round(load.others_cores, 2)
        out["rss_mb_after_searches"] = round(rss_mb(), 1)
        index.close()

        closes = []
        for _ in range(3):
            index = VectorIndex(exact_bytes=0)
            assert index.search_if_ready(store, queries[0], 10) is None
            deadline = time.monotonic() + 30
            while not index.building and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(0.05)  # well into the read
            start = time.perf_counter()
            index.close()
            closes.append((time.perf_counter() - start) * 1000)
            assert not index.building
        out["close_during_background_read"] = _ms(closes)
        out["background_read_threads_left"] = sum(
            t.name == "clipdesk-search-index" for t in threading.enumerate()
        )
    return out


def text_report(r: dict[str, Any]) -> str:
    read = r["side_file_read"]
    old = read["old_preadv_per_row"]
    return "\n".join([
        f"search index alone, {r['size']} vectors of {DIM} dims, binary mode (p50 / p95 ms)",
        f"  side file, {read['rows']} random rows: mapping {read['portable_mapping']['p50_ms']}"
        f" / {read['portable_mapping']['p95_ms']}"
        + (f"; old preadv per row {old['p50_ms']} / {old['p95_ms']}" if old else "; no os.preadv here")
        + f"  (others used {read['others_cores_meanwhile']} cores)",
        f"  full read {r['index_build_s']} s",
        f"  search k=10      {r['vector_search_k10']['p50_ms']} / {r['vector_search_k10']['p95_ms']}",
        f"  search k=10,000  {r['vector_search_k10000']['p50_ms']} / {r['vector_search_k10000']['p95_ms']}",
        f"  RSS after searches {r['rss_mb_after_searches']} MB",
        f"  close() during a background read {r['close_during_background_read']['p50_ms']}"
        f" / {r['close_during_background_read']['p95_ms']}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--size", type=int, default=None, help="library size (default 100000)")
    parser.add_argument("--repeats", type=int, default=20, help="timed reads and searches (default 20)")
    args = parser.parse_args(argv)
    size = args.size or (3000 if args.quick else 100_000)
    repeats = 3 if args.quick else args.repeats
    db = library_path(args.cache_dir, size, MODEL_ID, DIM)
    build_library(db, size, MODEL_ID, DIM)
    log(f"measuring the search index on {db}")
    emit(measure(db, size, repeats), args.json, text_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
