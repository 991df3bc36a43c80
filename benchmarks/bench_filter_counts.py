"""The desktop app's filter row on a large library: counting its choices, and browsing a filter.

A synthetic library of --size photos (default 100k; no model, no pixels: rows with
dates, cameras, types, shapes, in 14 years × 25 event folders), built once and cached.
For a few filters, how long `Library.filter_choices` takes (the worker's pass behind the
counts beside each choice: folders, types, cameras, shapes), the first time (reading
which folder each photo is in) and again, and how long browsing that filter takes
(`Library.all_photos`). Each figure says how many cores other processes used meanwhile.

    python benchmarks/bench_filter_counts.py
    python benchmarks/bench_filter_counts.py --size 1000000 --json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Load, add_common_options, emit, log  # noqa: E402

MODEL_ID = "bench-filter-rows"
CAMERAS = [("Canon", "Canon EOS 5D"), ("Apple", "iPhone 12"), ("FUJIFILM", "X-T3"), (None, None)]


def build(db: Path, size: int) -> None:
    from clipdesk._facts import Facts
    from clipdesk._store import NewImage, Store

    vector = np.full(4, 0.5, dtype=np.float32)
    with Store(db) as store:
        store.bind_model(MODEL_ID, len(vector))
        root = store.add_folder("/photos")
        for start in range(0, size, 10_000):
            with store.write():
                for i in range(start, min(size, start + 10_000)):
                    year = 2010 + i % 14
                    make, model = CAMERAS[i % 4]
                    store.insert_image(
                        NewImage(
                            folder_id=root.id, path=f"/photos/{year}/{i % 25:02d}-event/{i:07d}.jpg",
                            size=1000, mtime_ns=0, hash=str(i),
                            width=4000 if i % 3 else 3000, height=3000 if i % 3 else 4000,
                            taken_at=f"{year}-0{1 + i % 9}-1{i % 10}T10:00:00",
                            facts=Facts(file_type="jpeg" if i % 5 else "png", camera_make=make, camera_model=model),
                        ),
                        vector,
                    )


def measure(db: Path) -> list[dict[str, Any]]:
    from clipdesk._filters import Filter
    from clipdesk._library import Library, LibraryOptions

    filters = {
        "none (first: reads the folders)": Filter(),
        "none": Filter(),
        "camera": Filter(camera="iphone"),
        "camera and folder": Filter(camera="iphone", folders=("/photos/2019",)),
    }
    rows: list[dict[str, Any]] = []
    options = LibraryOptions(db_path=db, model=MODEL_ID, memory_index=False)
    with Library(options, create=False, read_only=True) as library:
        for name, keep in filters.items():
            with Load() as counting:
                choices = library.filter_choices(keep)
            with Load() as browsing:
                shown = library.all_photos("newest", keep)
            rows.append({
                "filter": name, "kept": choices.matching, "folders": len(choices.folders),
                "counts_ms": round(counting.seconds * 1000), "browse_newest_ms": round(browsing.seconds * 1000),
                "other_cores": round(max(counting.others_cores, browsing.others_cores), 2),
                "shown": len(shown),
            })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--size", type=int, default=100_000, help="photos in the library (default 100,000)")
    args = parser.parse_args()
    size = 2_000 if args.quick else args.size
    db = args.cache_dir / f"filter-rows-{size}.db"
    built = db.with_name(db.name + ".built")  # a library cut short by Ctrl-C is built again
    if not built.exists():
        log(f"building a library of {size:,} photos in {db} (once)…")
        db.parent.mkdir(parents=True, exist_ok=True)
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            stale.unlink(missing_ok=True)
        build(db, size)
        built.touch()
    result = {"size": size, "rows": measure(db)}

    def text(r: dict[str, Any]) -> str:
        lines = [f"{r['size']:,} photos: counting the filter row's choices, and browsing the filter"]
        for row in r["rows"]:
            lines.append(
                f"  {row['filter']:<34} {row['counts_ms']:>7,} ms counts  {row['browse_newest_ms']:>7,} ms browse"
                f"  ({row['kept']:,} kept, {row['folders']} folders; others used {row['other_cores']} cores)"
            )
        return "\n".join(lines)

    emit(result, args.json, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
