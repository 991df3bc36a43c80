"""Bad and odd image files: each bad one is reported and skipped, odd ones index correctly."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipdesk._imaging import open_image, read_info
from clipdesk._indexer import Indexer
from clipdesk._paths import display
from clipdesk._store import Store
from clipdesk._testing.colours import PALETTE, ColourEncoder

from .helpers import (
    jpeg_folder,
    COLOUR_MODEL,
    clipdesk_argv,
    clipdesk_env,
    jpeg_bytes,
    read_library,
    run_measured,
    write_png16,
    write_png_header_only,
    write_png_stream,
)

RED, BLUE, BLACK, WHITE = PALETTE["red"], PALETTE["blue"], PALETTE["black"], PALETTE["white"]


def _patterned_jpeg() -> bytes:
    """A JPEG with detail everywhere, so cutting it anywhere loses pixels."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (192, 256, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _frames(path: Path, fmt: str) -> None:
    first, second = Image.new("RGB", (40, 30), RED), Image.new("RGB", (40, 30), BLUE)
    first.save(path, fmt, save_all=True, append_images=[second], duration=100, loop=0)


def _palette_with_transparency(path: Path) -> None:
    """Mostly transparent (over a black palette entry), a small red patch: white when shown."""
    image = Image.new("P", (40, 40), 0)
    image.putpalette(list(BLACK) + list(RED) + [0, 0, 0] * 254)
    image.paste(1, (0, 0, 8, 8))
    image.save(path, transparency=0)


def _bad_files(root: Path) -> dict[str, str]:
    """Files that cannot be indexed: name -> the kind of badness."""
    jpeg = _patterned_jpeg()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) * 3 // 5])
    (root / "empty.jpg").write_bytes(b"")
    (root / "random-bytes.jpg").write_bytes(random.Random(3).randbytes(5000))
    (root / "text.png").write_text("this is not a picture\n" * 20)
    write_png_header_only(root / "bomb.png", 100_000, 100_000)  # 10 gigapixels declared
    (root / "header-only.gif").write_bytes(b"GIF89a\xff\xff\xff\xff\x00\x00\x00")
    return {
        "truncated.jpg": "truncated JPEG",
        "empty.jpg": "zero-byte file",
        "random-bytes.jpg": "random bytes named .jpg",
        "text.png": "text file named .png",
        "bomb.png": "decompression bomb",
        "header-only.gif": "GIF with huge dimensions and no data",
    }


def _odd_files(root: Path) -> dict[str, str]:
    """Unusual but valid images: name -> the palette colour they must encode as."""
    Image.new("RGB", (48, 32), RED).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    write_png16(root / "grey16.png", 24, 16, [BLACK[0] * 257])
    write_png16(root / "rgb16.png", 24, 16, [c * 257 for c in BLUE])
    _palette_with_transparency(root / "palette-transparent.png")
    _frames(root / "animated.gif", "GIF")
    _frames(root / "animated.webp", "WEBP")
    Image.new("L", (40, 30), BLACK[0]).save(root / "greyscale.jpg")
    Image.new("RGB", (1, 1), BLUE).save(root / "one-pixel.png")
    Image.new("RGB", (2, 5000), RED).save(root / "very-tall-strip.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (48, 32), BLUE).save(root / "exif-rotated.jpg", exif=exif)
    (root / "caf\udce9-latin1-name.jpg").write_bytes(jpeg_bytes(RED))
    (root / ("r" * 251 + ".jpg")).write_bytes(jpeg_bytes(RED))  # 255 bytes, the limit
    (root / ("é" * 124 + ".png")).write_bytes((root / "one-pixel.png").read_bytes())
    return {
        "cmyk.jpg": "red",
        "grey16.png": "black",
        "rgb16.png": "blue",
        "palette-transparent.png": "white",
        "animated.gif": "red",
        "animated.webp": "red",
        "greyscale.jpg": "black",
        "one-pixel.png": "blue",
        "very-tall-strip.png": "red",
        "exif-rotated.jpg": "blue",
        "caf\udce9-latin1-name.jpg": "red",
        "r" * 251 + ".jpg": "red",
        "é" * 124 + ".png": "blue",
    }


def _nearest_colour(vector: np.ndarray) -> str:
    return list(PALETTE)[int(np.argmax(vector[: len(PALETTE)]))]


def test_bad_files_are_reported_and_skipped_and_odd_files_indexed(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    bad = _bad_files(root)
    odd = _odd_files(root)
    data = tmp_path / "data"
    env = clipdesk_env(data)
    del env["PYTHONWARNINGS"]  # warnings count as noise here
    argv = clipdesk_argv("index", str(root), "--model", COLOUR_MODEL, "--workers", "2", "--json")
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    failed = {Path(f["path"]).name: f["error"] for f in report["failed"]}
    assert set(failed) == set(bad), failed
    assert all(reason.strip() for reason in failed.values())
    assert report["indexed"] == len(odd)
    assert result.stderr == ""

    contents = read_library(data / "library.db")
    assert contents.integrity == "ok"
    colours = {
        os.path.basename(path): _nearest_colour(np.frombuffer(blob, dtype=np.float32))
        for path, blob in contents.vectors.items()
    }
    assert colours == odd

    # Failed files are remembered: unchanged, they are not read or reported again.
    repeat = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(repeat.stdout)["skipped"] == len(bad) and not json.loads(repeat.stdout)["failed"]

    # In text mode (a new library), each bad file gets one "skipped PATH: reason" line and the run succeeds.
    text_env = dict(env, CLIPDESK_DATA_DIR=str(tmp_path / "data-text"))
    again = subprocess.run(argv[:-1], env=text_env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "Traceback" not in again.stderr
    skipped = again.stderr.splitlines()
    assert len(skipped) == len(bad) and all(line.startswith("  skipped ") for line in skipped)
    for name in bad:
        assert any(display(str(root / name)) in line for line in skipped), name


def test_huge_images_keep_memory_bounded(tmp_path: Path) -> None:
    """Two 100-megapixel PNGs, a 100 MP JPEG and a 169 MP header-only PNG, with 4 workers."""
    root = tmp_path / "photos"
    root.mkdir()
    write_png_stream(root / "big-red.png", 10_000, 10_000, RED)
    write_png_stream(root / "big-blue.png", 10_000, 10_000, BLUE)
    Image.new("L", (10_000, 10_000), 40).save(root / "big-grey.jpg", quality=50)
    write_png_header_only(root / "bomb-under-pillow-limit.png", 13_000, 13_000)
    Image.new("RGB", (64, 48), RED).save(root / "small.jpg")
    argv = clipdesk_argv("index", str(root), "--model", COLOUR_MODEL, "--workers", "4", "--json")
    run = run_measured(argv, clipdesk_env(tmp_path / "data"), tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["indexed"] == 4
    assert [Path(f["path"]).name for f in report["failed"]] == ["bomb-under-pillow-limit.png"]
    # One full-size decode of a 100 MP PNG is ~400 MB; two at once would be ~800 MB.
    print(f"peak RSS indexing 3 × 100 MP images with 4 workers: {run.peak_rss_mb:.0f} MB")
    assert run.peak_rss_mb < 650


def test_extreme_aspect_ratio_preprocessing_is_bounded(tmp_path: Path) -> None:
    """A 1×100000 line scaled for the model must not be blown up to gigabytes first."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from PIL import Image\n"
        "from clipdesk._encoder import Preprocessing, CLIP_MEAN, CLIP_STD\n"
        "prep = Preprocessing(224, (224, 224), CLIP_MEAN, CLIP_STD)\n"
        "for size in [(1, 100_000), (100_000, 1), (3, 40_000)]:\n"
        "    assert prep(Image.new('RGB', size, (200, 0, 0))).shape == (3, 224, 224)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child of a
        # large pytest process would report its parent's size.
        "print([int(l.split()[1]) // 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) < 400


def test_extreme_aspect_crop_matches_plain_resize() -> None:
    """The bounded path gives the same pixels as resize-then-crop would."""
    from clipdesk._encoder import CLIP_MEAN, CLIP_STD, Preprocessing

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (2000, 40, 3), dtype=np.uint8))
    prep = Preprocessing(32, (32, 32), CLIP_MEAN, CLIP_STD)
    plain = image.resize((32, 1600), Image.Resampling.BICUBIC, reducing_gap=3.0)
    plain = plain.crop((0, 784, 32, 816))
    expected = Preprocessing(32, (32, 32), CLIP_MEAN, CLIP_STD)(plain)
    assert np.abs(prep(image) - expected).mean() < 0.05


# -- EXIF orientation ---------------------------------------------------------------

QUADRANTS = [
    RED,
    (30, 180, 40),
    BLUE,
    (240, 220, 40),
]  # top-left, top-right, bottom-left, bottom-right


def _upright(scale: int = 1) -> np.ndarray:
    """64×32 (× scale), four coloured quadrants: no rotation or flip leaves it unchanged."""
    h, w = 16 * scale, 32 * scale
    arr = np.zeros((2 * h, 2 * w, 3), dtype=np.uint8)
    arr[:h, :w], arr[:h, w:], arr[h:, :w], arr[h:, w:] = QUADRANTS
    return arr


# How a camera stores the upright picture for each EXIF orientation (per the EXIF spec:
# orientation says where row 0 and column 0 of the stored pixels are in the picture).
STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}


def _quadrant_means(arr: np.ndarray) -> np.ndarray:
    """Mean colour at the middle of each quadrant (away from the blurred borders)."""
    h, w = arr.shape[:2]
    rows, cols = (
        [(h // 8, 3 * h // 8), (5 * h // 8, 7 * h // 8)],
        [(w // 8, 3 * w // 8), (5 * w // 8, 7 * w // 8)],
    )
    return np.array(
        [arr[r0 : r1 + 1, c0 : c1 + 1].mean((0, 1)) for r0, r1 in rows for c0, c1 in cols]
    )


def _exif_file(path: Path, orientation: int, scale: int = 1) -> Path:
    stored = np.ascontiguousarray(STORED[orientation](_upright(scale)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    extra = {"quality": 100, "subsampling": 0} if path.suffix == ".jpg" else {}
    Image.fromarray(stored).save(path, exif=exif, **extra)
    return path


def test_exif_table_is_the_spec() -> None:
    upright = _upright()
    # Orientation 7 is the transverse: stored[r][c] = upright[H-1-c][W-1-r].
    h, w = upright.shape[:2]
    transverse = np.empty((w, h, 3), dtype=np.uint8)
    for r in range(w):
        for c in range(h):
            transverse[r, c] = upright[h - 1 - c, w - 1 - r]
    assert np.array_equal(STORED[7](upright), transverse)
    assert len({STORED[o](upright).tobytes() for o in STORED}) == 8


@pytest.mark.parametrize("scale", [1, 10])  # 10: big enough to be reduced before rotating
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_decodes_upright(
    tmp_path: Path, orientation: int, suffix: str, scale: int
) -> None:
    path = _exif_file(tmp_path / f"o{orientation}{suffix}", orientation, scale)
    expected = _quadrant_means(_upright())
    for min_side in (None, 8):  # full size (thumbnails, viewers) and reduced (the model)
        image, info = open_image(path, min_side=min_side)
        assert (info.width, info.height) == (64 * scale, 32 * scale)
        assert read_info(path) == info
        if min_side is None:
            assert image.size == (64 * scale, 32 * scale)
        else:
            assert image.size[0] > image.size[1] >= min_side
        got = _quadrant_means(np.asarray(image, dtype=np.float32))
        assert np.abs(got - expected).max() < 12, (orientation, min_side)


class LayoutEncoder:
    """A position-sensitive test encoder: the 4×4 thumbnail's pixels are the vector."""

    model_id = "clipdesk-test:layout"
    dim = 48
    image_size = 16
    batch_size = 4

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.resize((4, 4), Image.Resampling.BOX), dtype=np.float32).ravel()

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(pixels, dtype=np.float32) / 255.0

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), self.dim), dtype=np.float32)

    def logit_scale(self) -> float:
        return 1.0


def test_exif_rotated_photos_get_the_upright_vector(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    for orientation in STORED:
        _exif_file(root / f"o{orientation}.jpg", orientation)
    with Store(tmp_path / "lib.db") as store:
        report = Indexer(store, LayoutEncoder(), workers=2).index([str(root)])
        assert report.indexed == 8 and not report.failed
        vectors = {
            Path(r.path).stem: store.vector(r.id)
            for r in (store.image_by_path(str(root / f"o{o}.jpg")) for o in STORED)
            if r is not None
        }
    upright = vectors["o1"]
    for name, vector in vectors.items():
        assert np.abs(vector - upright).max() < 0.05, name


# -- names, links, files that change under us ---------------------------------------


def test_non_utf8_and_long_names_end_to_end(tmp_path: Path) -> None:
    root = Path(os.fsdecode(bytes(tmp_path) + b"/ph\xf6tos-\xff"))
    (root / "sub").mkdir(parents=True)
    names = ["caf\udce9.jpg", "sub/\udcff\udcfe.jpg", "x" * 251 + ".jpg", "日本" * 40 + ".jpg"]
    for name in names:
        (root / name).write_bytes(jpeg_bytes(RED))
    (root / "blue.jpg").write_bytes(jpeg_bytes(BLUE))
    # Strict encoding, as in a UTF-8 desktop locale: printing a raw path would crash.
    env = clipdesk_env(tmp_path / "data", PYTHONIOENCODING="utf-8:strict")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(clipdesk_argv(*args), env=env, capture_output=True, timeout=120)
        # Output must be valid UTF-8 (decode strictly), with undecodable bytes escaped.
        result = subprocess.CompletedProcess(
            result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result

    report = json.loads(run("index", str(root), "--model", COLOUR_MODEL, "--json").stdout)
    assert report["indexed"] == 5 and not report["failed"]
    hits = json.loads(run("search", "red", "--json", "-n", "4").stdout)
    assert sorted(h["path"] for h in hits) == sorted(display(str(root / n)) for n in names)
    status = json.loads(run("status", "--json").stdout)
    assert status["folders"] == [{"path": display(str(root)), "images": 5}]
    assert status["integrity"] == "ok"
    text = run("search", "red").stdout
    assert display(str(root / names[0])) in text
    run("similar", str(root / names[0]))
    run("classify", str(root / names[1]), "--labels", "red,blue")
    forgot = run("forget", str(root))
    assert "5 images" in forgot.stdout
    assert read_library(tmp_path / "data" / "library.db").rows == []


def test_path_longer_than_path_max_is_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    (root / "ok.jpg").write_bytes(jpeg_bytes(RED))
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(20):  # 20 × 251 bytes: far beyond PATH_MAX (4096)
            os.mkdir("d" * 250, dir_fd=fd)
            new = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
        with os.fdopen(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write(jpeg_bytes(BLUE))
    finally:
        os.close(fd)
    argv = clipdesk_argv("index", str(root), "--model", COLOUR_MODEL, "--json")
    result = subprocess.run(
        argv, env=clipdesk_env(tmp_path / "data"), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["indexed"] == 1
    assert len(report["failed"]) == 1 and "too long" in report["failed"][0]["error"].lower()


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    """Policy (scanner.py): links are skipped, so loops cannot trap the scan and nothing
    outside the chosen folders is read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(jpeg_bytes(RED))
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    (root / "a" / "real.jpg").write_bytes(jpeg_bytes(BLUE))
    (root / "loop").symlink_to(".")
    (root / "a" / "up").symlink_to("..")
    (root / "a" / "self-loop.jpg").symlink_to("self-loop.jpg")
    (root / "outdir").symlink_to(outside)
    (root / "out.jpg").symlink_to(outside / "secret.jpg")
    (root / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with Store(tmp_path / "lib.db") as store:
        report = Indexer(store, ColourEncoder(), workers=2).index([str(root)])
        assert report.indexed == 1 and not report.failed
        assert store.image_by_path(str(root / "a" / "real.jpg")) is not None
        assert store.count_images() == 1


def test_file_deleted_between_scan_and_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clipdesk._indexer as indexer_mod

    root = jpeg_folder(tmp_path / "photos", 6)
    real_scan = indexer_mod.scan

    def scan_then_delete(*args, **kwargs):  # type: ignore[no-untyped-def]
        yield from real_scan(*args, **kwargs)
        (root / "p3.jpg").unlink()

    monkeypatch.setattr(indexer_mod, "scan", scan_then_delete)
    with Store(tmp_path / "lib.db") as store:
        indexer = Indexer(store, ColourEncoder(), workers=2)
        report = indexer.index([str(root)])
        assert report.indexed == 5
        assert [(Path(f.path).name, f.error) for f in report.failed] == [
            ("p3.jpg", "file disappeared before it could be read")
        ]
        assert store.integrity() == "ok"

        # An indexed photo that changes and is then deleted mid-run leaves the library.
        (root / "p1.jpg").write_bytes(jpeg_bytes((0, 0, 250)))
        real_scan_2 = real_scan

        def scan_then_delete_p1(*args, **kwargs):  # type: ignore[no-untyped-def]
            yield from real_scan_2(*args, **kwargs)
            (root / "p1.jpg").unlink()

        monkeypatch.setattr(indexer_mod, "scan", scan_then_delete_p1)
        report = indexer.index([str(root)])
        assert report.removed == 1 and not report.failed
        assert store.image_by_path(str(root / "p1.jpg")) is None
        assert store.count_images() == 4 and store.integrity() == "ok"


def test_file_still_being_written(tmp_path: Path) -> None:
    """Half a file is reported and left out; once complete it is indexed, exactly once."""
    root = tmp_path / "photos"
    root.mkdir()
    data = _patterned_jpeg()
    target = root / "arriving.jpg"
    target.write_bytes(data[: len(data) // 2])
    with Store(tmp_path / "lib.db") as store:
        indexer = Indexer(store, ColourEncoder(), workers=2)
        report = indexer.index([str(root)])
        assert report.indexed == 0 and len(report.failed) == 1
        assert "truncated" in report.failed[0].error
        with open(target, "ab") as handle:
            handle.write(data[len(data) // 2 :])
        report = indexer.index([str(root)])
        assert report.indexed == 1 and not report.failed

        # A writer appending while indexing runs again and again: the final state is exact.
        live = root / "live.png"
        buf = io.BytesIO()
        Image.fromarray(
            np.random.default_rng(2).integers(0, 255, (300, 300, 3), dtype=np.uint8)
        ).save(buf, "PNG")
        payload = buf.getvalue()

        def writer() -> None:
            with open(live, "wb") as handle:
                for start in range(0, len(payload), len(payload) // 20 + 1):
                    handle.write(payload[start : start + len(payload) // 20 + 1])
                    handle.flush()
                    threading.Event().wait(0.01)

        thread = threading.Thread(target=writer)
        thread.start()
        while thread.is_alive():
            indexer.index([str(root)])
        thread.join()
        indexer.index([str(root)])
        record = store.image_by_path(str(live))
        assert record is not None and record.size == len(payload)
        from clipdesk._indexer import hash_path

        assert record.hash == hash_path(str(live))
        assert store.count_images() == 2 and store.integrity() == "ok"


def _fuzz_bases() -> dict[str, bytes]:
    rng = np.random.default_rng(5)
    image = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    out = {}
    for fmt, suffix in [
        ("JPEG", ".jpg"),
        ("PNG", ".png"),
        ("GIF", ".gif"),
        ("WEBP", ".webp"),
        ("BMP", ".bmp"),
        ("TIFF", ".tif"),
    ]:
        buf = io.BytesIO()
        image.save(buf, fmt)
        out[suffix] = buf.getvalue()
    return out


def test_fuzzed_files_never_stop_a_batch(tmp_path: Path) -> None:
    """Cut, flipped and scrambled versions of every format: each indexes or is reported."""
    rng = random.Random(11)
    root = tmp_path / "photos"
    root.mkdir()
    count = 0
    for suffix, data in _fuzz_bases().items():
        for n in range(25):
            mutated = bytearray(data)
            kind = n % 3
            if kind == 0:
                mutated = mutated[: rng.randrange(1, len(data))]
            else:
                span = 64 if kind == 1 else len(data)  # headers, or anywhere
                for _ in range(rng.randint(1, 8)):
                    mutated[rng.randrange(min(span, len(data)))] = rng.randrange(256)
            (root / f"fuzz{count:03d}{suffix}").write_bytes(bytes(mutated))
            count += 1
    with Store(tmp_path / "lib.db") as store:
        report = Indexer(store, ColourEncoder(), workers=2).index([str(root)])
        assert report.indexed + len(report.failed) == count
        assert all(f.error for f in report.failed)
        assert store.integrity() == "ok"
    print(f"fuzzed files: {count}, indexed {report.indexed}, reported {len(report.failed)}")
