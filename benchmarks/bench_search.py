"""Search latency, recall and memory on libraries of synthetic CLIP-like vectors.

For each size (default 10k and 100k; add 1000000 with --sizes), a library is
built once and cached: clustered, normalised vectors with a shared mean
direction like real CLIP image embeddings, and "text" queries offset from the
image clusters (CLIP's modality gap). Each size is measured in a fresh process:

- text search with the model loaded, new words each time (text encoding included);
- text encoding alone; the vector search alone; a repeated query (text cache);
- recall@10 against exact brute-force search, and a 10,000-result search;
- sqlite-vec's own brute-force KNN for comparison;
- RSS of that process, and the database size per image;
- and a cold `clipdesk search` process (model read from disk), against
  `python -c "import torch"` and the search through the torch text tower in the
  same run, interleaved (`--cold-only` measures only this).

    python benchmarks/bench_search.py                          # 10k and 100k
    python benchmarks/bench_search.py --sizes 10000,100000,1000000
    python benchmarks/bench_search.py --sizes 100000 --cold-only     # cold search vs import torch
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Load,
    add_common_options,
    emit,
    log,
    median,
    model_folder,
    peak_rss_mb,
    percentile,
    rss_mb,
    wait_for_quiet,
)

TARGETS = {
    "p50_ms_with_text": {100_000: 50.0, 1_000_000: 150.0},
    "recall_at_10": 0.99,
    "search_rss_mb": {1_000_000: 600.0},
    "cold_cli_s": {100_000: 1.0},
    "cold_share_of_import_torch": 0.5,
}
CHUNK = 50_000
GEN_SEED = 20_240_601
RECALL_QUERIES = 100


# -- synthetic library ------------------------------------------------------------


class Synthetic:
    """Deterministic CLIP-like vectors: image i is made from seed (GEN_SEED, chunk)."""

    def __init__(self, size: int, dim: int) -> None:
        rng = np.random.default_rng(GEN_SEED)
        self.size, self.dim = size, dim
        self.clusters = max(8, size // 250)
        self.centres = _unit(rng.standard_normal((self.clusters, dim)))
        self.image_mean = _unit(rng.standard_normal(dim))
        self.text_mean = _unit(rng.standard_normal(dim))
        # Photo collections are lopsided: a few subjects hold most photos.
        weights = 1.0 / np.arange(1, self.clusters + 1) ** 0.8
        self.weights = weights / weights.sum()

    def chunk(self, start: int) -> np.ndarray:
        count = min(CHUNK, self.size - start)
        rng = np.random.default_rng((GEN_SEED, start))
        which = rng.choice(self.clusters, size=count, p=self.weights)
        noise = _unit(rng.standard_normal((count, self.dim)))
        # Weights chosen so that random pairs have cosine ~0.45 and same-cluster pairs ~0.75,
        # as with ViT-B/32 image embeddings.
        return _unit(0.65 * self.image_mean + 0.55 * self.centres[which] + 0.5 * noise).astype(np.float32)

    def queries(self, count: int) -> np.ndarray:
        rng = np.random.default_rng(GEN_SEED + 1)
        which = rng.choice(self.clusters, size=count, p=self.weights)
        noise = _unit(rng.standard_normal((count, self.dim)))
        # Text vectors sit apart from images (cosine ~0.2–0.35 to their best matches).
        return _unit(0.8 * self.text_mean + 0.25 * self.image_mean + 0.3 * self.centres[which] + 0.45 * noise).astype(np.float32)


def _unit(x: Any) -> Any:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def library_path(cache: Path, size: int, model_id: str, dim: int) -> Path:
    key = hashlib.blake2b(f"{model_id}|{dim}|v1".encode(), digest_size=6).hexdigest()
    return cache / "search-libraries" / f"lib-{size}-{key}.db"


def build_library(path: Path, size: int, model_id: str, dim: int) -> None:
    """Write `size` synthetic images and vectors, as the indexer would, in big transactions."""
    from clipdesk._store import Store

    if path.exists() and (path.parent / (path.name + ".done")).exists():
        return
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"building a library of {size} synthetic vectors at {path} (once)")
    synthetic = Synthetic(size, dim)
    started = time.monotonic()
    with Store(path) as store:
        store.bind_model(model_id, dim)
        folder = store.add_folder("/bench/photos")
        now = time.time()
        for start in range(0, size, CHUNK):
            vectors = synthetic.chunk(start)
            with store.write():
                store.conn.executemany(
                    "INSERT INTO images(id, folder_id, path, size, mtime_ns, hash, width, height, "
                    "taken_at, indexed_at) VALUES (?, ?, ?, 3000000, 0, ?, 4000, 3000, NULL, ?)",
                    (
                        (start + i + 1, folder.id, f"/bench/photos/{start + i:07d}.jpg", f"h{start + i}", now)
                        for i in range(len(vectors))
                    ),
                )
                store.conn.executemany(
                    "INSERT INTO vectors(image_id, embedding) VALUES (?, ?)",
                    ((start + i + 1, v.tobytes()) for i, v in enumerate(vectors)),
                )
            if start and start % (10 * CHUNK) == 0:
                log(f"  {start} vectors ({time.monotonic() - started:.0f} s)")
        store.checkpoint()
    (path.parent / (path.name + ".done")).write_text("ok")


def ground_truth(path: Path, size: int, dim: int, k: int = 10) -> np.ndarray:
    """Exact top-k image ids for the recall queries (brute force, cached)."""
    cache = path.with_suffix(".truth.npy")
    if cache.exists():
        return np.load(cache)
    synthetic = Synthetic(size, dim)
    queries = synthetic.queries(RECALL_QUERIES)
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, size, CHUNK):
        scores = queries @ synthetic.chunk(start).T
        ids = np.arange(start + 1, start + 1 + scores.shape[1])
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_ids = np.concatenate([best_ids, np.broadcast_to(ids, scores.shape)], axis=1)
        order = np.argsort(-all_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(all_scores, order, axis=1)
        best_ids = np.take_along_axis(all_ids, order, axis=1)
    np.save(cache, best_ids)
    return best_ids


# -- measuring one size (in its own process) ---------------------------------------


def measure(db: Path, model: Path, size: int, queries: int) -> dict[str, Any]:
    from clipdesk._library import Library, LibraryOptions
    from clipdesk._search import Query

    out: dict[str, Any] = {"rss_mb_at_start": round(rss_mb(), 1)}
    library = Library(LibraryOptions(db_path=db, model=str(model)), create=False)
    encoder = library.encoder
    started = time.perf_counter()
    encoder.encode_texts(["warm up"])
    out["text_model_load_s"] = round(time.perf_counter() - started, 2)
    searcher = library.searcher()
    dim = encoder.dim
    synthetic = Synthetic(size, dim)
    recall_queries = synthetic.queries(RECALL_QUERIES)
    started = time.perf_counter()
    # The first search of a large library is answered by sqlite-vec while the
    # in-memory index is read in the background; the wait is for that read.
    searcher.rank(recall_queries[0], 10)
    out["first_search_s"] = round(time.perf_counter() - started, 2)
    if searcher.index is not None:
        searcher.index.sync(library.store)
    out["index_build_s"] = round(time.perf_counter() - started, 2)
    index = searcher.index
    out["index_mode"] = "exact (floats in memory)" if index is None or index.exact else "binary + exact re-rank"
    out["index_mb"] = round(index.memory_bytes() / 2**20, 1) if index is not None else 0.0

    def timed(fn: Any) -> float:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1000

    words = ["red", "car", "beach", "dog", "mountain", "birthday", "snow", "city", "night", "cake"]

    def text(i: int) -> str:
        return f"a photo of a {words[i % 10]} {words[(i // 10) % 10]} number {i}"

    with Load() as load:
        # Interleaved, so that warm-up and machine noise fall on both alike.
        with_text, encode_only = [], []
        for i in range(queries):
            with_text.append(timed(lambda i=i: library.search(Query(texts=(text(i),), limit=10))))
            encode_only.append(timed(lambda i=i: encoder.encode_texts([text(10_000 + i)])))
        vector_only = [timed(lambda q=q: searcher.rank(q, 10)) for q in recall_queries]
        hits_before = library.text_cache.hits
        cached = [timed(lambda: library.search(Query(texts=(text(0),), limit=10))) for _ in range(queries)]
        cache_hits = library.text_cache.hits - hits_before
        large_k = [timed(lambda q=q: searcher.rank(q, 10_000)) for q in recall_queries[:5]]
        knn = [timed(lambda q=q: library.store.knn(q, 10)) for q in recall_queries[:5]]
    truth = ground_truth(db, size, dim)
    found = [[i for i, _ in searcher.rank(q, 10)] for q in recall_queries]
    recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
    exact_top1 = float(np.mean([bool(f) and f[0] == t[0] for f, t in zip(found, truth)]))

    def stats(values: list[float]) -> dict[str, float]:
        return {"p50_ms": round(median(values), 2), "p95_ms": round(percentile(values, 95), 2)}

    out.update(
        {
            "search_with_text": stats(with_text),
            "text_encoding": stats(encode_only),
            "vector_search": stats(vector_only),
            "repeated_query": stats(cached),
            "repeated_query_cache_hits": cache_hits,
            "k10000_search": stats(large_k),
            "sqlite_vec_knn": stats(knn),
            "recall_at_10": round(recall, 4),
            "top1_exact_share": round(exact_top1, 3),
            "others_cores_meanwhile": round(load.others_cores, 2),
            "rss_mb": round(rss_mb(), 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    )
    library.close()
    return out


PROBE = "import sys; from clipdesk._cli import main; code = main(sys.argv[1:]); " \
    "print('torch' in sys.modules, 'transformers' in sys.modules, file=sys.stderr); sys.exit(code)"


def _timed_process(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """Wall seconds and peak RSS (MB) of one process, with its stdout and stderr."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}… failed: {stderr}")
    return elapsed, usage.ru_maxrss / 1024, stdout, stderr


def cold_cli(db: Path, model: Path, runs: int) -> dict[str, Any]:
    """Wall time of `clipdesk search` as a new process, model loaded from disk, interleaved
    with `python -c "import torch"` and with the search through the torch text tower."""
    times: dict[str, list[float]] = {"search": [], "import_torch": [], "search_torch_tower": []}
    imported: set[str] = set()
    env = {k: v for k, v in os.environ.items() if k != "CLIPDESK_TEXT_TOWER"}
    rss: list[float] = []
    others: list[float] = []
    for i in range(runs):
        # Other engineers share the cores: start each round once they are quiet (or after 10 s).
        others.append(round(wait_for_quiet(10.0), 2))
        args = ["--db", str(db), "--model", str(model), "search", f"a cold query {i}", "-n", "10", "--json"]
        elapsed, peak, out, err = _timed_process([sys.executable, "-c", PROBE, *args], env)
        times["search"].append(elapsed)
        rss.append(peak)
        json.loads(out)
        flags = err.strip().splitlines()[-1].split()
        imported |= {name for name, flag in zip(("torch", "transformers"), flags) if flag == "True"}
        times["import_torch"].append(_timed_process([sys.executable, "-c", "import torch"], env)[0])
        torch_env = dict(env, CLIPDESK_TEXT_TOWER="torch")
        times["search_torch_tower"].append(_timed_process([sys.executable, "-m", "clipdesk", *args], torch_env)[0])
    search, torch_s = median(times["search"]), median(times["import_torch"])
    return {"median_s": round(search, 3), "runs_s": [round(t, 3) for t in times["search"]],
            "peak_rss_mb": round(max(rss), 1), "imported": sorted(imported),
            "import_torch_median_s": round(torch_s, 3),
            "import_torch_runs_s": [round(t, 3) for t in times["import_torch"]],
            "share_of_import_torch": round(search / torch_s, 2),
            "torch_tower_median_s": round(median(times["search_torch_tower"]), 3),
            "torch_tower_runs_s": [round(t, 3) for t in times["search_torch_tower"]],
            "others_cores_before_each_run": others}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from clipdesk._models import parse

    folder, description = model_folder(args)
    spec = parse(str(folder))
    dim = int(json.loads((folder / "config.json").read_text()).get("projection_dim", 512))
    sizes = [2000] if args.quick and args.sizes is None else [int(s) for s in (args.sizes or "10000,100000").split(",")]
    queries = 5 if args.quick else args.queries
    result: dict[str, Any] = {"benchmark": "search", "model": description, "dim": dim, "sizes": {}}
    for size in sizes:
        db = library_path(args.cache_dir, size, spec.model_id, dim)
        build_library(db, size, spec.model_id, dim)
        ground_truth(db, size, dim)
        cmd = [sys.executable, __file__, "--worker", str(size), "--db", str(db), "--model", str(folder),
               "--queries", str(queries), "--cache-dir", str(args.cache_dir)]
        entry: dict[str, Any] = {}
        if not args.cold_only:
            log(f"[{size}] measuring in a fresh process")
            worker = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if worker.returncode != 0:
                raise RuntimeError(f"worker for {size} failed:\n{worker.stderr}")
            entry = json.loads(worker.stdout)
        db_bytes = sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
        entry["db_bytes_per_image"] = round(db_bytes / size)
        log(f"[{size}] cold `clipdesk search` runs")
        entry["cold_cli"] = cold_cli(db, folder, min(args.cold, 2) if args.quick else args.cold)
        entry["targets"] = {
            "p50_ms_with_text": TARGETS["p50_ms_with_text"].get(size),
            "recall_at_10": TARGETS["recall_at_10"],
            "search_rss_mb": TARGETS["search_rss_mb"].get(size),
            "cold_cli_s": TARGETS["cold_cli_s"].get(size),
            "cold_share_of_import_torch": TARGETS["cold_share_of_import_torch"],
        }
        result["sizes"][str(size)] = entry
    return result


def text_report(result: dict[str, Any]) -> str:
    lines = [f"model: {result['model']} (dim {result['dim']}); latencies p50 / p95 in ms"]
    for size, e in result["sizes"].items():
        t = e["targets"]
        if "search_with_text" in e:
            lines += [
                f"{int(size):,} images  ({e['index_mode']}, index {e['index_mb']} MB, ready {e['index_build_s']} s"
                f" after the first search, which took {e['first_search_s']} s;"
                f" others used {e['others_cores_meanwhile']} cores meanwhile)",
                f"  search incl. text encoding  {e['search_with_text']['p50_ms']:8.2f} / {e['search_with_text']['p95_ms']:.2f}"
                + (f"   (target p50 ≤ {t['p50_ms_with_text']})" if t["p50_ms_with_text"] else ""),
                f"  text encoding alone         {e['text_encoding']['p50_ms']:8.2f} / {e['text_encoding']['p95_ms']:.2f}",
                f"  vector search alone         {e['vector_search']['p50_ms']:8.2f} / {e['vector_search']['p95_ms']:.2f}",
                f"  repeated query (cached)     {e['repeated_query']['p50_ms']:8.2f} / {e['repeated_query']['p95_ms']:.2f}"
                f"   ({e['repeated_query_cache_hits']} cache hits)",
                f"  10,000 results              {e['k10000_search']['p50_ms']:8.2f} / {e['k10000_search']['p95_ms']:.2f}",
                f"  sqlite-vec brute force      {e['sqlite_vec_knn']['p50_ms']:8.2f} / {e['sqlite_vec_knn']['p95_ms']:.2f}",
                f"  recall@10 {e['recall_at_10']} (target ≥ {t['recall_at_10']}), top-1 exact {e['top1_exact_share']}",
                f"  RSS {e['rss_mb']} MB (peak {e['peak_rss_mb']})"
                + (f"   (target ≤ {t['search_rss_mb']})" if t["search_rss_mb"] else "")
                + f"; database {e['db_bytes_per_image']} bytes/image",
            ]
        c = e["cold_cli"]
        lines += [
            f"{int(size):,} images, cold `clipdesk search`: {c['median_s']} s (runs {c['runs_s']},"
            f" peak RSS {c['peak_rss_mb']} MB)" + (f"   (target ≤ {t['cold_cli_s']})" if t["cold_cli_s"] else ""),
            f"  `python -c \"import torch\"`: {c['import_torch_median_s']} s (runs {c['import_torch_runs_s']});"
            f" search / import torch = {c['share_of_import_torch']}"
            f"   (target ≤ {t['cold_share_of_import_torch']})",
            f"  imported: {', '.join(c['imported']) or 'neither torch nor transformers'};"
            f" through the torch text tower: {c['torch_tower_median_s']} s (runs {c['torch_tower_runs_s']})",
            f"  other processes used {c['others_cores_before_each_run']} cores before each round",
        ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--sizes", default=None, help="comma-separated library sizes (default 10000,100000)")
    parser.add_argument("--queries", type=int, default=40, help="distinct text queries per size (default 40)")
    parser.add_argument("--cold", type=int, default=5, help="cold `clipdesk search` runs per size (default 5)")
    parser.add_argument("--cold-only", action="store_true",
                        help="measure only the cold `clipdesk search` (against `import torch`), not the warm searches")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker is not None:
        json.dump(measure(args.db, args.model, args.worker, args.queries), sys.stdout)
        return 0
    emit(run(args), args.json, text_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
