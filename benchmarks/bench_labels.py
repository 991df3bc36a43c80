"""Labels that stay: how long applying a label set, searching by label and safe search take.

Builds (once, kept in --cache-dir) a synthetic library of --count photos with random
512-d vectors, then on it, from the stored vectors (nothing is encoded):

- applies a 3-label typed set to the whole library, then again (a re-run replaces it),
  and the 5-label moderation preset;
- times the SQL a `--label` filter and safe search add before ranking (`Store.matching_ids`),
  and a filtered search (`Searcher.rank_filtered`);
- times giving one indexer batch (32 new photos) the active sets, as the indexer does
  inside its write transaction;
- reports the library's growth per stored label probability.

The text tower is a stand-in (a fixed random unit vector per prompt), since only the
vectors' size matters for the time.

    python benchmarks/bench_labels.py --count 100000
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_cache_dir, emit, log, peak_rss_mb, synthetic_library  # noqa: E402

MODEL_ID = "bench:labels"
DIM = 512


class TextStandIn:
    """An encoder whose text tower gives each prompt a fixed random unit vector."""

    model_id = MODEL_ID
    dim = DIM

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            row = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            rows.append(row / np.linalg.norm(row))
        return np.stack(rows)

    def logit_scale(self) -> float:
        return 100.0


def _used_bytes(store: Any) -> int:
    """Bytes in use (pages not on the free list): a kept library reuses the pages a run freed."""
    def pragma(name: str) -> int:
        return int(store.conn.execute(f"PRAGMA {name}").fetchone()[0])

    return (pragma("page_count") - pragma("freelist_count")) * pragma("page_size")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from clipdesk._filters import Filter
    from clipdesk._labels import ActiveLabeller, LabelDefinition, apply_label_set, label_sets
    from clipdesk._search import Searcher
    from clipdesk._store import Store

    n = args.count
    root = args.cache_dir / f"labels-{n}"
    db = root / "library.db"
    if not db.exists():
        log(f"making a synthetic library of {n:,} photos in {root}")
        root.mkdir(parents=True, exist_ok=True)
        synthetic_library(db, root / "photos", n, model_id=MODEL_ID, dim=DIM)
    encoder: Any = TextStandIn()
    result: dict[str, Any] = {"count": n}
    with Store(db) as store:
        for name in [s.name for s in label_sets(store)]:  # a fresh start on a kept library
            with store.write():
                store.conn.execute("DELETE FROM label_sets WHERE name = ?", (name,))
        before = _used_bytes(store)
        scenes = LabelDefinition.typed(["beach", "mountains", "city"])
        for key, definition in (("apply_s", scenes), ("rerun_s", scenes),
                                ("moderation_s", LabelDefinition.preset("moderation"))):
            log(f"applying '{definition.name}'")
            start = time.perf_counter()
            report = apply_label_set(store, encoder, definition, store.iter_vectors(4096), n, whole_library=True)
            result[key] = round(time.perf_counter() - start, 2)
            assert report.labelled == n, report
        result["db_bytes_per_probability"] = round((_used_bytes(store) - before) / (n * 8), 1)

        def timed(keep: Filter) -> tuple[float, int]:
            where, params = keep.sql()
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                found = len(store.matching_ids(where, params))
                best = min(best, time.perf_counter() - start)
            return round(best * 1000, 1), found

        result["label_filter_ms"], result["label_filter_kept"] = timed(Filter(labels=("beach",)))
        result["safe_filter_ms"], result["safe_filter_kept"] = timed(Filter(hide_unsafe_above=0.5))
        searcher = Searcher(store, encoder)
        query = encoder.encode_texts(["a sunny day"])[0]
        start = time.perf_counter()
        searcher.rank_filtered(query, 20, Filter(labels=("beach",), hide_unsafe_above=0.5))
        result["filtered_search_ms"] = round((time.perf_counter() - start) * 1000, 1)

        labeller = ActiveLabeller(store, encoder)
        ids, vectors = next(store.iter_vectors(32))
        labeller.label(ids[:32].tolist(), list(vectors[:32]))  # text vectors made once per run
        start = time.perf_counter()
        with store.write():
            labeller.label(ids[:32].tolist(), list(vectors[:32]))
        result["new_batch_of_32_ms"] = round((time.perf_counter() - start) * 1000, 2)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 photos")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.count = min(args.count, 2000)
    emit(run(args), args.json, lambda r: (
        f"{r['count']:,} photos: a 3-label set applied in {r['apply_s']} s (re-run {r['rerun_s']} s), "
        f"moderation in {r['moderation_s']} s; --label filter {r['label_filter_ms']} ms, "
        f"safe search {r['safe_filter_ms']} ms, filtered search {r['filtered_search_ms']} ms; "
        f"32 new photos labelled in {r['new_batch_of_32_ms']} ms; "
        f"{r['db_bytes_per_probability']} bytes per stored probability; peak RSS {r['peak_rss_mb']} MB"))


if __name__ == "__main__":
    main()
