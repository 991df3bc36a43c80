"""Near-duplicates: how well copies are found (--quality), and how fast a library is grouped (--speed).

--quality makes copies of each photo in ../shared/photos/coco_mini (resized to 50 %
and 25 %, re-saved as JPEG quality 60, cropped by 5 %, 15 % brighter), indexes them
all with the colour test encoder, and counts per pHash threshold the copies found
in their original's group (recall) and the groups holding two different photos
(false groups). It does so twice: with every pair's pHash compared (the pHash
alone decides: the worst case for false groups), and with the colour encoder's
vectors as the candidate filter that CLIP vectors are in a real library.

--speed groups a synthetic library held in memory (clustered random 512-d unit
vectors, random pHashes, 1 % planted copies a few bits off their originals) and
reports seconds and peak memory. Reading a real library's vectors comes on top
(`Store.iter_vectors`: ~0.1 s per 100k photos).

    python benchmarks/bench_duplicates.py --quality
    python benchmarks/bench_duplicates.py --speed --count 100000
    python benchmarks/bench_duplicates.py --speed --library --count 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import COCO_FOLDER, default_cache_dir, emit, log, peak_rss_mb, synthetic_library  # noqa: E402

EDITS = ("half", "quarter", "q60", "crop5", "bright")
THRESHOLDS = (0.95, 0.92, 0.9, 0.875, 0.86, 0.84, 0.82, 0.8, 0.78, 0.75, 0.7)


def _edit(image: Image.Image, edit: str) -> Image.Image:
    w, h = image.size
    if edit == "half":
        return image.resize((w // 2, h // 2), Image.Resampling.LANCZOS)
    if edit == "quarter":
        return image.resize((w // 4, h // 4), Image.Resampling.LANCZOS)
    if edit == "crop5":
        dx, dy = round(w * 0.025), round(h * 0.025)  # 5 % off each dimension, centred
        return image.crop((dx, dy, w - dx, h - dy))
    if edit == "bright":
        return ImageEnhance.Brightness(image).enhance(1.15)
    return image


def make_copies(source: Path, into: Path, limit: int | None = None) -> dict[str, str]:
    """Originals and their edited copies under `into`; maps each file to its original's name."""
    origin: dict[str, str] = {}
    photos = sorted(p for p in source.rglob("*.jpg"))[:limit]
    for photo in photos:
        with Image.open(photo) as opened:
            image = opened.convert("RGB")
        stem = photo.stem
        target = into / f"{stem}.jpg"
        image.save(target, quality=92)
        origin[str(target)] = stem
        for edit in EDITS:
            target = into / "copies" / edit / f"{stem}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            _edit(image, edit).save(target, quality=60 if edit == "q60" else 92)
            origin[str(target)] = stem
    return origin


def quality(args: argparse.Namespace) -> dict[str, Any]:
    from clipdesk._duplicates import group_rows, hamming, near_copies
    from clipdesk._library import Library, LibraryOptions

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(os.path.realpath(tmp))
        photos = root / "photos"
        photos.mkdir()
        if not args.photos.is_dir():
            raise SystemExit(f"no photos at {args.photos} (give --photos FOLDER)")
        origin = make_copies(args.photos, photos, 10 if args.quick else None)
        log(f"{len(origin)} files ({len(set(origin.values()))} photos and their copies); indexing")
        with Library(LibraryOptions(root / "library.db", model="clipdesk-test:colours")) as library:
            library.index([str(photos)])
            facts = library.store.duplicate_facts()
            ids = {f.id: row for row, f in enumerate(facts)}
            vectors = np.zeros((len(facts), library.store.vec_dim() or 1), dtype=np.float32)
            for chunk_ids, chunk in library.store.iter_vectors():
                for image_id, vector in zip(chunk_ids.tolist(), chunk):
                    vectors[ids[image_id]] = vector / max(float(np.linalg.norm(vector)), 1e-12)
        names = [origin[f.path] for f in facts]
        kinds = [_kind(f.path) for f in facts]
        hashes = np.array([f.phash for f in facts], dtype=np.int64)
        content = [f.hash for f in facts]
        has = np.ones(len(facts), dtype=bool)
        # Distances between different photos, to show the margin.
        originals = np.flatnonzero(np.array(kinds) == "original")
        bits = hamming(hashes[originals][:, None], hashes[originals][None, :])
        apart = bits[np.triu_indices(len(originals), 1)]
        copies_bits = {
            edit: [
                int(hamming(hashes[[r]], hashes[[names.index(names[r])]])[0])
                for r in range(len(facts)) if kinds[r] == edit
            ]
            for edit in EDITS
        }
        rows = []
        for gate, min_cosine in (("pHash alone", -1.0), ("colour vectors + pHash", 0.80)):
            for threshold in THRESHOLDS:
                pairs = near_copies(hashes, has, lambda r: (vectors[r], has[r]), threshold,
                                    min_cosine=min_cosine)
                groups = group_rows(content, pairs)
                rows.append({"candidates": gate, "threshold": threshold,
                             **_score(groups, names, kinds)})
    return {
        "photos": len(originals),
        "files": len(facts),
        "different_photos_min_bits": int(apart.min()),
        "different_photos_pairs_within": {b: int((apart <= b).sum()) for b in (8, 10, 12, 14, 16)},
        "copy_bits_max": {edit: max(v) for edit, v in copies_bits.items()},
        "copy_bits_p95": {edit: float(np.percentile(v, 95)) for edit, v in copies_bits.items()},
        "rows": rows,
    }


def _kind(path: str) -> str:
    parts = Path(path).parts
    return parts[-2] if "copies" in parts else "original"


def _score(groups: list[list[int]], names: list[str], kinds: list[str]) -> dict[str, Any]:
    """Copies found with their original, per edit, and groups mixing different photos."""
    group_of = {row: g for g, rows in enumerate(groups) for row in rows}
    original_row = {names[r]: r for r in range(len(names)) if kinds[r] == "original"}
    found = {edit: 0 for edit in EDITS}
    total = {edit: 0 for edit in EDITS}
    for row, kind in enumerate(kinds):
        if kind == "original":
            continue
        total[kind] += 1
        other = original_row[names[row]]
        if row in group_of and group_of.get(other) == group_of[row]:
            found[kind] += 1
    false_groups = sum(1 for rows in groups if len({names[r] for r in rows}) > 1)
    return {
        "recall": {edit: round(found[edit] / total[edit], 4) for edit in EDITS},
        "recall_all": round(sum(found.values()) / sum(total.values()), 4),
        "false_groups": false_groups,
        "groups": len(groups),
    }


def speed(args: argparse.Namespace) -> dict[str, Any]:
    from clipdesk._duplicates import DEFAULT_THRESHOLD, group_rows, near_copies

    n, dim = args.count, 512
    rng = np.random.default_rng(3)
    log(f"making {n:,} synthetic photos")
    # Clustered like CLIP vectors: photos share a common direction and one of 64
    # themes (cosine ~0.45 between unrelated photos, ~0.65 within a theme).
    themes = 0.756 * rng.standard_normal((64, dim), dtype=np.float32)
    vectors = np.empty((n, dim), dtype=np.float32)
    step = 65536
    for start in range(0, n, step):
        m = min(step, n - start)
        block = rng.standard_normal((m, dim), dtype=np.float32)
        block += themes[rng.integers(0, 64, m)]
        block += 1.134  # the shared direction
        vectors[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    hashes = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64)
    planted = n // 100
    src = rng.choice(n, planted, replace=False)
    dst = (src + 1 + rng.integers(0, n - 1, planted)) % n
    noise = rng.standard_normal((planted, dim), dtype=np.float32) * 0.01
    vectors[dst] = vectors[src] + noise
    vectors[dst] /= np.linalg.norm(vectors[dst], axis=1, keepdims=True)
    flips = np.left_shift(np.int64(1), rng.integers(0, 63, planted).astype(np.int64))
    hashes[dst] = hashes[src] ^ flips
    content = [f"{i:032x}" for i in range(n)]
    has = np.ones(n, dtype=bool)
    log("grouping")
    start_t = time.perf_counter()
    pairs = near_copies(hashes, has, lambda r: (vectors[r], has[r]), DEFAULT_THRESHOLD,
                        workers=args.workers)
    groups = group_rows(content, pairs)
    seconds = time.perf_counter() - start_t
    return {"count": n, "dim": dim, "planted": planted, "groups": len(groups), "workers": args.workers,
            "seconds": round(seconds, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}


def library_speed(args: argparse.Namespace) -> dict[str, Any]:
    """`find_duplicates` on a synthetic library on disk: reading the facts and vectors included."""
    from clipdesk._duplicates import find_duplicates
    from clipdesk._store import Store

    n = args.count
    root = args.cache_dir / f"duplicates-{n}"
    db = root / "library.db"
    if not db.exists():
        log(f"making a synthetic library of {n:,} photos in {root}")
        root.mkdir(parents=True, exist_ok=True)
        synthetic_library(db, root / "photos", n, model_id="clipdesk-test:colours", dim=512)
        rng = np.random.default_rng(3)
        with Store(db) as store, store.write():
            ids = [r[0] for r in store.conn.execute("SELECT id FROM images")]
            hashes = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, len(ids), dtype=np.int64)
            # 1 % are copies of their neighbour: the same pHash and vector.
            for at in range(0, len(ids) - 1, 100):
                original, copy = ids[at], ids[at + 1]
                hashes[at + 1] = hashes[at]
                blob = store.conn.execute(
                    "SELECT embedding FROM vectors WHERE image_id = ?", (original,)).fetchone()[0]
                store.conn.execute("DELETE FROM vectors WHERE image_id = ?", (copy,))
                store.conn.execute("INSERT INTO vectors(image_id, embedding) VALUES (?, ?)", (copy, blob))
            store.set_phashes(zip(ids, hashes.tolist()))
    log("grouping")
    with Store(db) as store:
        start_t = time.perf_counter()
        groups = find_duplicates(store, workers=args.workers)
        seconds = time.perf_counter() - start_t
    return {"count": n, "groups": len(groups), "seconds": round(seconds, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1), "workers": args.workers, "from": "library on disk"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quality", action="store_true")
    mode.add_argument("--speed", action="store_true")
    parser.add_argument("--photos", type=Path, default=COCO_FOLDER)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="threads comparing pHashes")
    parser.add_argument("--library", action="store_true",
                        help="with --speed: group a synthetic library on disk, reading it included")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 photos, or 10 for --quality")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.count = min(args.count, 2000)
    if args.quality:
        emit(quality(args), args.json, _quality_text)
    else:
        emit(library_speed(args) if args.library else speed(args), args.json, lambda r: (
            f"{r['count']:,} photos grouped in {r['seconds']} s; {r['groups']} groups; "
            f"peak RSS {r['peak_rss_mb']} MB"))


def _quality_text(result: dict[str, Any]) -> str:
    lines = [
        f"{result['photos']} photos, {result['files']} files with copies",
        f"differing bits, copy vs original, max: {result['copy_bits_max']}",
        f"  95th percentile: {result['copy_bits_p95']}",
        f"closest two different photos: {result['different_photos_min_bits']} bits apart; "
        f"pairs within b bits: {result['different_photos_pairs_within']}",
        "candidates               thresh  recall (" + " ".join(EDITS) + ")  all  false groups",
    ]
    for row in result["rows"]:
        recall = " ".join(f"{row['recall'][e]:.2f}" for e in EDITS)
        lines.append(f"{row['candidates']:<24} {row['threshold']:.3f}  {recall}  "
                     f"{row['recall_all']:.3f}  {row['false_groups']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
