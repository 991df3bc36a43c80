"""Indexing throughput: the real pipeline against the model alone and a naive loop.

For each set of photos (generated 12-MP JPEGs; ~640 px photos from
../shared/photos/coco_mini, or generated ones when that is absent), each repeat
measures, one after the other so that machine noise hits all three alike:

- index:  `Library.index` (the code path of `clipdesk index`) into a fresh library;
- model:  the vision model alone on already preprocessed tensors, same batch size;
- naive:  full decode (no draft mode) → transformers' CLIPImageProcessor → encode,
          one image at a time (the loop of a model card's example).

and prints images/s with the ratios index/model and index/naive (medians over
repeats). `--cli` also times one `clipdesk index` process end to end.

    python benchmarks/bench_index.py            # ViT-B/32 sizes, a few minutes
    python benchmarks/bench_index.py --quick    # smoke run, seconds
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    COCO_FOLDER,
    Timer,
    add_common_options,
    emit,
    generated_photos,
    log,
    measured,
    median,
    model_folder,
    peak_rss_mb,
    spread,
    subset,
)

TARGETS = {"12mp": {"index/model": 0.85, "index/naive": 3.0}, "640px": {"index/model": 0.9}}


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--large", type=int, default=128, help="how many generated large JPEGs (default 128)")
    parser.add_argument("--large-size", type=parse_size, default=(4000, 3000), help="their size (default 4000x3000)")
    parser.add_argument("--small", type=int, default=239, help="how many ~640 px photos (default 239)")
    parser.add_argument("--photos", type=Path, default=COCO_FOLDER, help="folder of ~640 px photos")
    parser.add_argument("--naive", type=int, default=16, help="images for the naive baseline (default 16)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the encoder's own")
    parser.add_argument("--workers", type=int, default=None, help="decode threads (default: the indexer's own)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", choices=["12mp", "640px"], default=None, help="one photo set only")
    parser.add_argument("--cli", action="store_true", help="also time one `clipdesk index` process per set")
    parser.add_argument("--int8", action="store_true",
                        help="also measure the opt-in 8-bit CPU mode: speed, and agreement with fp32")
    return parser


def photo_sets(args: argparse.Namespace, work: Path) -> dict[str, tuple[Path, str]]:
    sets: dict[str, tuple[Path, str]] = {}
    if args.only in (None, "12mp"):
        size = args.large_size
        folder = generated_photos(args.cache_dir, args.large, size)
        sets["12mp"] = (subset(folder, args.large, work / "12mp"), f"generated {size[0]}x{size[1]} JPEG q90")
    if args.only in (None, "640px"):
        if args.photos.is_dir() and not args.quick:
            sets["640px"] = (subset(args.photos, args.small, work / "640px"), f"photos in {args.photos}")
        else:
            folder = generated_photos(args.cache_dir, args.small, (640, 480))
            sets["640px"] = (subset(folder, args.small, work / "640px"), "generated 640x480 JPEG q90")
    return sets


def preprocessed(encoder: Any, folder: Path) -> list[Any]:
    """Every photo of a folder as the model's input array (also warms the page cache)."""
    from clipdesk._imaging import open_image
    from clipdesk._scanner import scan

    out = []
    for stat in scan(str(folder)):
        image, _ = open_image(stat.path, min_side=encoder.image_size)
        out.append(encoder.preprocess(image))
    return out


def time_model(encoder: Any, pixels: list[Any]) -> float:
    """Images/s of the model alone on ready tensors, in batches of the encoder's size."""
    import numpy as np

    size = encoder.batch_size
    batches = [np.stack(pixels[i : i + size]) for i in range(0, len(pixels), size)]
    with Timer() as t:
        for batch in batches:
            encoder.encode_pixels(batch)
    return len(pixels) / t.seconds


def time_index(encoder: Any, folder: Path, db: Path, workers: int | None) -> tuple[float, int]:
    """Images/s of `Library.index` into a fresh library; and how many failed."""
    from clipdesk._library import Library, LibraryOptions

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    options = LibraryOptions(db_path=db, model=str(encoder.folder), workers=workers)
    with Library(options, encoder=encoder) as library, Timer() as t:
        report = library.index([str(folder)])
    return report.encoded / t.seconds, len(report.failed)


def naive_processor(encoder: Any) -> Any:
    """transformers' CLIPImageProcessor with the model's settings: what a model card's example uses."""
    from transformers import CLIPImageProcessor

    pre = encoder.preprocess
    return CLIPImageProcessor(
        size={"shortest_edge": pre.shortest_edge},
        crop_size={"height": pre.crop[0], "width": pre.crop[1]},
        image_mean=list(pre.mean),
        image_std=list(pre.std),
    )


def time_naive(encoder: Any, processor: Any, folder: Path, count: int) -> float:
    """Images/s of the textbook loop: full decode, CLIPImageProcessor, encode one image at a time."""
    from PIL import Image

    from clipdesk._scanner import scan

    paths = [s.path for s in scan(str(folder))][:count]
    with Timer() as t:
        for path in paths:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
            pixels = processor(images=rgb, return_tensors="np")["pixel_values"]
            encoder.encode_pixels(pixels)
    return len(paths) / t.seconds


def encode_all(encoder: Any, pixels: list[Any]) -> Any:
    import numpy as np

    size = encoder.batch_size
    return np.concatenate([encoder.encode_pixels(np.stack(pixels[i : i + size])) for i in range(0, len(pixels), size)])


QUERIES = ["a dog", "a cat on a sofa", "a red car", "people at the beach", "a birthday cake", "snowy mountains",
           "a city at night", "a plate of food", "a child playing", "an old building", "flowers", "a boat",
           "a bicycle", "a laptop on a desk", "a train station", "a horse", "a bowl of fruit", "a bus", "sunset", "a bird"]


def int8_agreement(fp32: Any, int8: Any, pixels: list[Any]) -> dict[str, Any]:
    """How far the 8-bit image vectors are from fp32: cosine per image, and top-10 overlap per query."""
    import numpy as np

    a, b = encode_all(fp32, pixels), encode_all(int8, pixels)
    cos = (a * b).sum(axis=1)
    queries = fp32.encode_texts(QUERIES)
    k = min(10, len(pixels))
    overlap = [len(set(np.argsort(-(a @ q))[:k]) & set(np.argsort(-(b @ q))[:k])) / k for q in queries]
    return {"cosine_min": round(float(cos.min()), 5), "cosine_median": round(float(np.median(cos)), 5),
            "top10_overlap_mean": round(float(np.mean(overlap)), 3), "top10_overlap_min": round(float(min(overlap)), 3),
            "queries": len(QUERIES)}


def time_cli(model: Path, folder: Path, db: Path, device: str) -> dict[str, float]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "clipdesk", "--db", str(db), "--model", str(model),
           "--device", device, "index", str(folder), "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    import json

    report = json.loads(out)
    return {
        "wall_s": round(wall, 2),
        "images_per_s_incl_startup": round(report["encoded"] / wall, 2),
        "images_per_s_reported": round(report["encoded"] / report["seconds"], 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from clipdesk._indexer import default_workers
    from clipdesk._models import EncoderOptions, load_encoder

    if args.quick:
        args.large, args.large_size, args.small = min(args.large, 6), (800, 600), min(args.small, 8)
        args.naive, args.repeats = min(args.naive, 2), 1
    folder, description = model_folder(args)
    encoder: Any = load_encoder(str(folder), EncoderOptions(args.device, args.batch_size))
    work = Path(tempfile.mkdtemp(prefix="clipdesk-bench-index-"))
    try:
        sets = photo_sets(args, work)
        result: dict[str, Any] = {
            "benchmark": "index",
            "model": description,
            "device": encoder.device,
            "batch_size": encoder.batch_size,
            "workers": args.workers or _default_workers(default_workers, encoder.device),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "repeats": args.repeats,
            "sets": {},
        }
        processor = naive_processor(encoder)
        for name, (photos, source) in sets.items():
            log(f"[{name}] preprocessing {source} for the model-alone run")
            pixels = preprocessed(encoder, photos)
            encoder.encode_pixels(pixels[0][None])  # load the weights outside the timings
            sizes = [p.stat().st_size for p in photos.iterdir()]
            runs: dict[str, list[float]] = {"index": [], "model": [], "naive": []}
            others: list[float] = []
            failed = [0]
            quiet = 0.0 if args.quick else 5.0

            def index_rate() -> float:
                ips, failed[0] = time_index(encoder, photos, work / f"{name}.db", args.workers)  # noqa: B023  # called within this iteration
                return ips

            for r in range(args.repeats):
                for key, fn in (
                    ("model", lambda: time_model(encoder, pixels)),  # noqa: B023  # called within this iteration
                    ("index", index_rate),
                    ("naive", lambda: time_naive(encoder, processor, photos, args.naive)),  # noqa: B023  # called within this iteration
                ):
                    rate, load = measured(fn, tries=1 if args.quick else 2, quiet_s=quiet)
                    runs[key].append(rate)
                    others.append(load)
                ips = runs["index"][-1]
                log(f"[{name}] repeat {r + 1}: index {ips:.2f}, model {runs['model'][-1]:.2f}, "
                    f"naive {runs['naive'][-1]:.2f} images/s")
            entry: dict[str, Any] = {
                "source": source,
                "images": len(pixels),
                "mean_file_mb": round(sum(sizes) / len(sizes) / 1e6, 2),
                "failed": failed[0],
                # CPU (in cores) other processes used during the timings: the machine is shared.
                "others_cores_median": round(median(others), 2),
                "images_per_s": {k: [round(v, 2) for v in vs] for k, vs in runs.items()},
                "median_images_per_s": {k: round(median(vs), 2) for k, vs in runs.items()},
                # Ratios within each repeat first: they cancel most of the machine's noise.
                "index/model": round(median([i / m for i, m in zip(runs["index"], runs["model"])]), 3),
                "index/naive": round(median([i / n for i, n in zip(runs["index"], runs["naive"])]), 3),
                "targets": TARGETS.get(name, {}),
            }
            entry["meets_targets"] = all(entry[k] >= v for k, v in entry["targets"].items())
            if args.int8:
                encoder8: Any = load_encoder(str(folder), EncoderOptions(args.device, args.batch_size, int8=True))
                model8, index8, model32 = [], [], []
                for _ in range(args.repeats):
                    model32.append(measured(lambda: time_model(encoder, pixels), tries=1, quiet_s=quiet)[0])  # noqa: B023  # called within this iteration
                    model8.append(measured(lambda: time_model(encoder8, pixels), tries=1, quiet_s=quiet)[0])  # noqa: B023  # called within this iteration
                    index8.append(measured(lambda: time_index(encoder8, photos, work / f"{name}-8.db", args.workers)[0],  # noqa: B023  # called within this iteration
                                           tries=1, quiet_s=quiet)[0])
                entry["int8"] = {
                    "median_images_per_s": {"index": round(median(index8), 2), "model": round(median(model8), 2)},
                    "model_speedup_vs_fp32": round(median([e / f for e, f in zip(model8, model32)]), 2),
                    "index_speedup_vs_fp32_index": round(median(index8) / median(runs["index"]), 2),
                    "agreement": int8_agreement(encoder, encoder8, pixels),
                }
            if args.cli:
                entry["cli"] = time_cli(folder, photos, work / f"{name}-cli.db", args.device)
            result["sets"][name] = entry
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _default_workers(fn: Any, device: str) -> int:
    try:
        return int(fn(device))
    except TypeError:  # older clipdesk: one default for every device
        return int(fn())


def text_report(result: dict[str, Any]) -> str:
    lines = [
        f"model: {result['model']} on {result['device']}, batch {result['batch_size']}, "
        f"{result['workers']} decode workers, {result['torch_threads']} torch threads, "
        f"{result['repeats']} repeats (medians; spread in brackets)"
    ]
    for name, entry in result["sets"].items():
        ips = entry["images_per_s"]
        lines.append(f"{name}: {entry['images']} × {entry['source']} (~{entry['mean_file_mb']} MB each;"
                     f" other processes used {entry['others_cores_median']} cores meanwhile)")
        for key in ("index", "model", "naive"):
            lines.append(f"  {key:6s} {entry['median_images_per_s'][key]:8.2f} images/s  [{spread(ips[key])}]")
        targets = entry["targets"]
        for key in ("index/model", "index/naive"):
            goal = f"  (target ≥ {targets[key]})" if key in targets else ""
            lines.append(f"  {key:12s} {entry[key]:6.3f}{goal}")
        if "cli" in entry:
            lines.append(f"  clipdesk index process: {entry['cli']}")
        if "int8" in entry:
            lines.append(f"  opt-in int8: {entry['int8']}")
    lines.append(f"peak RSS of this benchmark process: {result['peak_rss_mb']} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    emit(run(args), args.json, text_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
