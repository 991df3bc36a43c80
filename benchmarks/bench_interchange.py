"""Export and import: seconds, file size and peak memory per format for a large library.

Builds a synthetic library (random 512-d unit vectors, real hard-linked files; see
common.synthetic_library), then exports it in each format and imports the Parquet
and npz exports into new libraries, each in a process of its own so that its peak
memory is its own. The vectors alone are photos × dim × 4 bytes (205 MB at 100k × 512).

    python benchmarks/bench_interchange.py                 # 100,000 photos
    python benchmarks/bench_interchange.py --photos 1000000 --formats parquet,npz
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, default_cache_dir, emit, log, synthetic_library  # noqa: E402

FORMATS = ("parquet", "npz", "faiss", "chroma")

# Run in a child process: one export or import, then its own peak memory as JSON.
CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[5])
from common import peak_rss_mb
from clipdesk._interchange import export_library, import_library
from clipdesk._library import Library, LibraryOptions
action, db, where, fmt = sys.argv[1:5]
start = time.perf_counter()
with Library(LibraryOptions(db_path=db, memory_index=False), create=action == "import") as library:
    if action == "export":
        photos = export_library(library, where, fmt).photos
    else:
        photos = import_library(library, where).photos
print(json.dumps({"seconds": time.perf_counter() - start, "photos": photos, "peak_rss_mb": peak_rss_mb()}))
"""


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _child(*args: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args, str(Path(__file__).resolve().parent)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} {args[3]} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated, from " + ", ".join(FORMATS))
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="unused; for a common interface")
    parser.add_argument("--quick", action="store_true", help="2,000 photos (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    photos = 2_000 if args.quick else args.photos
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    result: dict[str, Any] = {"photos": photos, "dim": args.dim, "vectors_mb": photos * args.dim * 4 / 1e6,
                              "export": {}, "import": {}}
    with tempfile.TemporaryDirectory(prefix="clipdesk-bench-interchange-") as temp:
        root = Path(temp)
        db = root / "library.db"
        log(f"building a synthetic library of {photos} photos…")
        with Timer() as built:
            synthetic_library(db, root / "photos", photos, model_id="openai/clip-vit-base-patch32", dim=args.dim)
        result["library_mb"] = _size(db) / 1e6
        log(f"  {built.seconds:.1f} s")
        for fmt in formats:
            out = root / f"out-{fmt}"
            log(f"export --format {fmt}…")
            entry = _child("export", str(db), str(out), fmt)
            entry["bytes"] = _size(out)
            entry["files"] = sorted(p.name for p in out.iterdir())
            result["export"][fmt] = entry
            log(f"  {entry['seconds']:.1f} s, {entry['bytes'] / 1e6:.1f} MB, peak {entry['peak_rss_mb']:.0f} MB")
        for fmt in (f for f in formats if f in ("parquet", "npz")):
            log(f"import from {fmt}…")
            entry = _child("import", str(root / f"import-{fmt}.db"), str(root / f"out-{fmt}"), fmt)
            result["import"][fmt] = entry
            log(f"  {entry['seconds']:.1f} s, peak {entry['peak_rss_mb']:.0f} MB")

    def text(r: dict[str, Any]) -> str:
        lines = [f"{r['photos']} photos × {r['dim']} floats ({r['vectors_mb']:.0f} MB of vectors; "
                 f"library {r['library_mb']:.0f} MB)"]
        for fmt, e in r["export"].items():
            lines.append(f"  export {fmt:8s} {e['seconds']:7.1f} s  {e['bytes'] / 1e6:8.1f} MB  peak {e['peak_rss_mb']:.0f} MB")
        for fmt, e in r["import"].items():
            lines.append(f"  import {fmt:8s} {e['seconds']:7.1f} s  peak {e['peak_rss_mb']:.0f} MB")
        return "\n".join(lines)

    emit(result, args.json, text)


if __name__ == "__main__":
    main()
