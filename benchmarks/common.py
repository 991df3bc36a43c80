"""What the benchmarks share: a cache folder, test models, generated photos, statistics, memory.

Benchmarks are scripts (`python benchmarks/bench_*.py`), not part of the installed
package; they import clipdesk as a user's program would.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The shared folder beside the repository (../shared), unless CLIPDESK_SHARED names another.
SHARED = Path(os.environ.get("CLIPDESK_SHARED") or Path(__file__).resolve().parents[2] / "shared")
TOKENIZER_FOLDER = SHARED / "clip-tokenizer"
COCO_FOLDER = SHARED / "photos" / "coco_mini"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clipdesk-bench"


def add_common_options(parser: Any) -> None:
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help="where generated photos, models and libraries are kept between runs")
    parser.add_argument("--model", type=Path, default=None,
                        help="a CLIP model folder (default: a random ViT-B/32 of real sizes, built "
                        "from ../shared/clip-tokenizer; with --quick, a tiny random CLIP)")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (seconds)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def model_folder(args: Any) -> tuple[Path, str]:
    """The model to benchmark and a word describing it; built and cached on first use."""
    if args.model is not None:
        return args.model, str(args.model)
    cache: Path = args.cache_dir
    if args.quick or not TOKENIZER_FOLDER.is_dir():
        if not args.quick:
            log(f"{TOKENIZER_FOLDER} is missing: using a tiny random CLIP (figures are meaningless)")
        folder = cache / "tiny-clip"
        if not (folder / "model.safetensors").exists():
            from clipdesk._testing.tiny_clip import build_tiny_clip

            build_tiny_clip(folder)
        return folder, "tiny random CLIP"
    folder = cache / "vit-b-32-random"
    if not (folder / "model.safetensors").exists():
        from clipdesk._testing.tiny_clip import build_full_size_clip

        log("building a random CLIP with ViT-B/32 sizes (once)")
        build_full_size_clip(folder, TOKENIZER_FOLDER)
    return folder, "random CLIP, ViT-B/32 sizes"


# -- generated photos ---------------------------------------------------------


def synthetic_photo(seed: int, size: tuple[int, int]) -> Any:
    """A photo-like image: smooth colour regions, shapes, texture and sensor-like noise.

    Pure noise would make files several times larger (and slower to decode) than
    camera JPEGs; this content gives ~3 MB at 12 MP, quality 90, like a phone photo.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    width, height = size
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    draw = ImageDraw.Draw(base)
    for _ in range(40):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(max(2, width // 80), max(3, width // 7)))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    texture = Image.fromarray(
        rng.integers(0, 256, (max(1, height // 16), max(1, width // 16), 3), dtype=np.uint8)
    ).resize((width, height), Image.Resampling.BILINEAR)
    arr = np.asarray(base, dtype=np.int16) * 3 // 4 + np.asarray(texture, dtype=np.int16) // 4
    arr += rng.normal(0, 5.0, (height, width, 1)).astype(np.int16)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def generated_photos(cache: Path, count: int, size: tuple[int, int], quality: int = 90) -> Path:
    """A folder of `count` generated JPEGs of `size`, made once and reused."""
    folder = cache / f"photos-{size[0]}x{size[1]}-q{quality}"
    folder.mkdir(parents=True, exist_ok=True)
    made = 0
    for i in range(count):
        path = folder / f"photo{i:05d}.jpg"
        if path.exists():
            continue
        if made == 0:
            log(f"generating {size[0]}x{size[1]} JPEGs in {folder} (once)")
        image = synthetic_photo(i, size)
        exif = image.getexif()
        exif[0x0132] = "2024:06:01 12:00:00"
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, exif=exif)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(buffer.getvalue())
        tmp.rename(path)
        made += 1
    return folder


def subset(folder: Path, count: int, into: Path) -> Path:
    """A folder holding links to the first `count` photos of another (so a run indexes exactly those)."""
    from clipdesk._scanner import scan

    into.mkdir(parents=True, exist_ok=True)
    for i, stat in enumerate(scan(str(folder))):
        if i >= count:
            break
        # Hard links, not symlinks: the scanner never follows symbolic links.
        target = into / f"{i:05d}{Path(stat.path).suffix.lower()}"
        if not target.exists():
            try:
                os.link(stat.path, target)
            except OSError:
                target.write_bytes(Path(stat.path).read_bytes())
    return into


# -- statistics and memory ----------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return float(ordered[index])


def spread(values: Sequence[float]) -> str:
    """min–max as text, to show how noisy a repeated figure was."""
    return f"{min(values):.3g}–{max(values):.3g}" if values else "-"


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return _status_kb("VmHWM") / 1024


def _status_kb(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    import resource

    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@dataclass
class Timer:
    seconds: float = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def emit(result: dict[str, Any], as_json: bool, text: Callable[[dict[str, Any]], str]) -> None:
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text(result))


# -- other people's load --------------------------------------------------------
# The machines we measure on are shared: another process using a core while we
# time something skews the figure. We measure how much CPU everyone else used
# during each timing, and repeat a timing that others disturbed.


def _cpu_ticks() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def _own_ticks() -> float:
    """CPU jiffies used by this process and its waited-for children."""
    parts = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return sum(float(x) for x in parts[11:15])


class Load:
    """Measures the CPU (in cores) used by other processes while the block runs."""

    def __enter__(self) -> Load:
        self.others_cores = 0.0
        try:
            self._busy, self._total = _cpu_ticks()
            self._own = _own_ticks()
            self._ok = True
        except (OSError, ValueError, IndexError):
            self._ok = False
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        if not self._ok:
            return
        busy, total = _cpu_ticks()
        own = _own_ticks()
        cores = os.cpu_count() or 1
        if total > self._total:
            others = (busy - self._busy) - (own - self._own)
            self.others_cores = max(0.0, others / (total - self._total) * cores)


def wait_for_quiet(limit_s: float = 20.0, threshold: float = 0.15) -> float:
    """Wait (at most limit_s) until other processes use under `threshold` cores; returns their use."""
    deadline = time.monotonic() + limit_s
    while True:
        with Load() as load:
            time.sleep(0.5)
        if load.others_cores < threshold or time.monotonic() > deadline:
            return load.others_cores


def measured(fn: Callable[[], float], *, tries: int = 3, threshold: float = 0.15,
             quiet_s: float = 20.0) -> tuple[float, float]:
    """Run a timing (fn returns a rate), repeating it while others disturbed it.

    Returns (rate, cores other processes used meanwhile), keeping the least
    disturbed try when none was quiet.
    """
    best: tuple[float, float] | None = None
    for _ in range(max(1, tries)):
        wait_for_quiet(quiet_s, threshold)
        with Load() as load:
            rate = fn()
        if best is None or load.others_cores < best[1]:
            best = (rate, load.others_cores)
        if load.others_cores < threshold:
            break
    assert best is not None
    return best


# -- a large library without encoding it ------------------------------------------

SYNTHETIC_PER_FOLDER = 1000


def synthetic_library(db: Path, root: Path, count: int, *, model_id: str, dim: int,
                      zero_dims: Sequence[int] = ()) -> Path:
    """A library of `count` photos under root/library, indexed without running a model.

    Every photo is a real file, so a reconcile keeps it, yet costs almost no disk:
    the photos of one sub-folder are hard links to one small PNG (kept outside root).
    Rows and random vectors go in with plain SQL in one transaction. The vectors are
    zero in `zero_dims`, so a query along those dimensions finds none of them.
    Returns the folder (root/library).
    """
    import numpy as np

    from clipdesk._store import Store

    library, sources = root / "library", root.parent / f"{root.name}-link-sources"
    sources.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    with Store(db) as store:
        store.bind_model(model_id, dim)
        folder = store.add_folder(str(root))
        with store.write():
            for start in range(0, count, SYNTHETIC_PER_FOLDER):
                n = min(SYNTHETIC_PER_FOLDER, count - start)
                _synthetic_folder(store, folder.id, library, sources, start, n, rng, dim, zero_dims)
    return library


def _synthetic_folder(store: Any, folder_id: int, library: Path, sources: Path, start: int, n: int,
                      rng: Any, dim: int, zero_dims: Sequence[int]) -> None:
    """One sub-folder of hard-linked photos and their rows (inside a write transaction)."""
    import numpy as np
    from PIL import Image

    sub = library / f"{start // SYNTHETIC_PER_FOLDER:04d}"
    sub.mkdir(parents=True, exist_ok=True)
    source = sources / f"{sub.name}.png"
    Image.new("RGB", (16, 16), (start % 251, (start // 251) % 251, 90)).save(source)
    st = source.stat()
    now = time.time()
    rows = []
    for i in range(start, start + n):
        path = sub / f"{i:07d}.png"
        os.link(source, path)
        rows.append((folder_id, str(path), st.st_size, st.st_mtime_ns, f"{i:032x}", 16, 16, None, now))
    store.conn.executemany(
        "INSERT INTO images(folder_id, path, size, mtime_ns, hash, width, height, taken_at, "
        "indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    first = store.conn.last_insert_rowid() - n + 1
    vectors = rng.random((n, dim), dtype=np.float32)
    vectors[:, list(zero_dims)] = 0.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.conn.executemany(
        "INSERT INTO vectors(image_id, embedding) VALUES (?, ?)",
        ((first + k, vectors[k].tobytes()) for k in range(n)))
