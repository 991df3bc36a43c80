"""Decoding photos: inputs, sizes, modes, orientation, limits, safe opening, the decode budget."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipdesk import _imaging as imaging
from clipdesk._errors import ImageUnreadable
from clipdesk._imaging import (
    MAX_PIXELS,
    DecodeBudget,
    decode_cost,
    open_image,
    read_info,
)
from clipdesk._safefile import MAX_FILE_BYTES, open_regular

RED = (220, 20, 30)


def _jpeg(path: Path, size: tuple[int, int], colour: tuple[int, int, int] = RED, **kw: object) -> Path:
    Image.new("RGB", size, colour).save(path, "JPEG", quality=95, **kw)
    return path


# -- inputs ---------------------------------------------------------------------------


def test_path_bytes_and_open_file_decode_alike(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "a.jpg", (64, 48))
    from_path, info = open_image(path)
    from_bytes, _ = open_image(path.read_bytes())
    with open(path, "rb") as handle:
        from_file, _ = open_image(handle)
    assert from_path.mode == "RGB" and from_path.size == (64, 48)
    assert (info.width, info.height, info.taken_at) == (64, 48, None)
    assert np.array_equal(np.asarray(from_path), np.asarray(from_bytes))
    assert np.array_equal(np.asarray(from_path), np.asarray(from_file))


def test_min_side_reduces_but_keeps_three_times_the_side(tmp_path: Path) -> None:
    Image.new("RGB", (2000, 1500), RED).save(tmp_path / "a.png")
    image, info = open_image(tmp_path / "a.png", min_side=100)
    assert image.size == (400, 300)  # an integer factor (5), short side >= 3 × 100
    assert (info.width, info.height) == (2000, 1500)  # the photo's own size
    small, _ = open_image(tmp_path / "a.png", min_side=600)
    assert small.size == (2000, 1500)  # a factor under 2 is not worth it


def test_jpeg_decodes_in_draft_mode(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "big.jpg", (4000, 3000))
    image, info = open_image(path, min_side=224)
    assert (info.width, info.height) == (4000, 3000)
    assert 224 <= min(image.size) < 3000 / 4


def test_exif_orientation_and_date(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    exif[0x0132] = "2021:07:04 12:30:00"
    path = tmp_path / "rotated.jpg"
    Image.new("RGB", (60, 40), RED).save(path, exif=exif)
    image, info = open_image(path)
    assert image.size == (40, 60) and (info.width, info.height) == (40, 60)
    assert info.taken_at == "2021-07-04T12:30:00"
    assert read_info(path) == info


# -- modes ------------------------------------------------------------------------------


def _palette_with_transparency(size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 4, (size[1], size[0]), dtype=np.uint8), "P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    image.info["transparency"] = 0
    return image


def _transparent_palette() -> Image.Image:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    return image


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: _transparent_palette(), (255, 255, 255)),
        (lambda: Image.new("1", (8, 8), 1), (255, 255, 255)),
        (lambda: Image.new("I;16", (8, 8), 32768), (128, 128, 128)),  # the format's range
        (lambda: Image.new("I", (8, 8), 200), (200, 200, 200)),  # 8-bit values in 32 bits
        (lambda: Image.new("F", (8, 8), 0.5), (127, 127, 127)),  # floats are 0..1
        (lambda: Image.new("LA", (8, 8), (0, 0)), (255, 255, 255)),  # transparent on white
        (lambda: Image.new("RGB", (8, 8), RED).convert("CMYK"), RED),
    ],
)
def test_every_mode_becomes_rgb(make, expected: tuple[int, int, int], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = make()
    path = tmp_path / ("odd.tif" if source.mode in ("I", "F", "CMYK") else "odd.png")
    source.save(path, transparency=0) if source.mode == "P" else source.save(path)
    image, _ = open_image(path)
    assert image.mode == "RGB"
    assert all(abs(a - b) <= 2 for a, b in zip(image.getpixel((4, 4)), expected))


@pytest.mark.parametrize("mode", ["P", "1", "I;16"])
def test_modes_pillow_cannot_shrink_are_shrunk_strip_by_strip_exactly(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    if mode == "P":
        source = _palette_with_transparency((301, 203))
    elif mode == "1":
        source = Image.fromarray(rng.integers(0, 2, (203, 301), dtype=bool))
    else:
        source = Image.fromarray(rng.integers(0, 65535, (203, 301), dtype=np.uint16))
    path = tmp_path / "odd.png"
    source.save(path, transparency=0) if mode == "P" else source.save(path)
    whole, _ = open_image(path, min_side=20)  # factor 3
    monkeypatch.setattr(imaging, "_STRIP_PIXELS", 301 * 7)  # strips of 6 rows
    strips, _ = open_image(path, min_side=20)
    assert whole.size == strips.size == (101, 68)
    assert np.array_equal(np.asarray(whole), np.asarray(strips))


# -- limits ----------------------------------------------------------------------------


def _png_header_only(path: Path, width: int, height: int) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def test_pixel_limit_is_ours_and_pillows_alike(tmp_path: Path) -> None:
    assert Image.MAX_IMAGE_PIXELS is not None and 2 * Image.MAX_IMAGE_PIXELS == MAX_PIXELS
    _png_header_only(tmp_path / "bomb.png", 20_001, 10_000)
    with pytest.raises(ImageUnreadable, match=r"too large \(200,010,000 pixels; the limit is 200 MP\)"):
        open_image(tmp_path / "bomb.png")
    _png_header_only(tmp_path / "giga.png", 100_000, 100_000)
    # Pillow refuses this one itself, at the same limit, in our words.
    with pytest.raises(ImageUnreadable, match=r"too large \(10,000,000,000 pixels; the limit is 200 MP\)"):
        open_image(tmp_path / "giga.png")
    with pytest.raises(ImageUnreadable, match="too large"):
        read_info(tmp_path / "giga.png")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not an image"),
        (b"plain text, not a picture\n" * 10, "not an image"),
        (b"\x89PNG\r\n\x1a\n", "cannot decode|not an image|truncated"),
    ],
)
def test_bad_content_gives_a_reason(content: bytes, reason: str, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(ImageUnreadable, match=reason):
        open_image(tmp_path / "bad.png")


def test_truncated_jpeg_says_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageUnreadable, match="truncated"):
        open_image(tmp_path / "cut.jpg")


# -- safe opening ------------------------------------------------------------------------


def test_fifo_device_folder_and_missing_file_are_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "folder.jpg").mkdir()
    cases = {
        tmp_path / "pipe.jpg": "FIFO",
        Path("/dev/null"): "device",
        tmp_path / "folder.jpg": "folder",
        tmp_path / "missing.jpg": "not found",
    }
    for path, reason in cases.items():
        with pytest.raises(ImageUnreadable, match=reason):
            open_image(path)
    with pytest.raises(ImageUnreadable, match="FIFO"):
        read_info(tmp_path / "pipe.jpg")


def test_open_regular_follows_links_and_refuses_oversized_files(tmp_path: Path) -> None:
    photo = _jpeg(tmp_path / "a.jpg", (8, 8))
    (tmp_path / "link.jpg").symlink_to(photo)
    with open_regular(tmp_path / "link.jpg") as handle:
        assert handle.read() == photo.read_bytes()
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse
    with pytest.raises(ImageUnreadable, match=r"file too large \(2\.0 GB; no photo is larger than 2 GB\)"):
        open_regular(huge)


# -- the decode budget -------------------------------------------------------------------


def test_budget_makes_decodes_wait_their_turn() -> None:
    budget = DecodeBudget(100)
    first = budget.reserve(70)
    first.__enter__()
    entered = threading.Event()

    def second() -> None:
        with budget.reserve(70):
            entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not entered.wait(0.2)  # 70 + 70 > 100: it waits
    assert budget.used == 70
    first.__exit__(None, None, None)
    assert entered.wait(10)
    thread.join(10)
    assert budget.used == 0


def test_a_decode_bigger_than_the_budget_runs_alone() -> None:
    budget = DecodeBudget(100)
    with budget.reserve(10_000):
        assert budget.used == 100
    with budget.reserve(30), budget.reserve(30):
        assert budget.used == 60


def test_open_image_reserves_its_cost(tmp_path: Path) -> None:
    class Recording(DecodeBudget):
        costs: list[int] = []

        @contextmanager
        def reserve(self, cost: int) -> Iterator[None]:
            self.costs.append(cost)
            with super().reserve(cost):
                yield

    Image.new("RGB", (1000, 800), RED).save(tmp_path / "a.png")
    budget = Recording(1 << 30)
    open_image(tmp_path / "a.png", min_side=100, budget=budget)
    assert budget.costs and budget.costs[0] >= 1000 * 800 * 4
    assert budget.used == 0


def test_decode_cost_counts_draft_size_and_progressive_buffers(tmp_path: Path) -> None:
    baseline = _jpeg(tmp_path / "base.jpg", (4000, 3000))
    progressive = _jpeg(tmp_path / "prog.jpg", (4000, 3000), progressive=True)
    costs = []
    for path in (baseline, progressive):
        with Image.open(path) as image:
            image.draft("RGB", (224, 224))
            costs.append(decode_cost(image, (4000, 3000), 1))
    # Draft mode decodes 1/8 scale; progressive JPEGs keep every coefficient.
    assert costs[0] < 4000 * 3000 // 4
    assert costs[1] >= costs[0] + 6 * 4000 * 3000


def test_a_long_panorama_is_reduced_further_but_never_below_min_side(tmp_path: Path) -> None:
    Image.new("L", (40_000, 1_000), 90).save(tmp_path / "pano.png")
    image, info = open_image(tmp_path / "pano.png", min_side=224)
    assert (info.width, info.height) == (40_000, 1_000)
    assert image.size == (20_000, 500)  # under 16 MP; 3 × 224 alone would keep it whole
    Image.new("L", (100_000, 400), 90).save(tmp_path / "thin.png")
    image, _ = open_image(tmp_path / "thin.png", min_side=224)
    assert image.size == (100_000, 400)  # halving would cut the short side below 224


def test_budget_serves_decodes_in_the_order_they_asked() -> None:
    budget = DecodeBudget(100)
    small = budget.reserve(10)
    small.__enter__()
    order: list[str] = []

    def decode(name: str, cost: int) -> None:
        with budget.reserve(cost):
            order.append(name)

    def in_line(count: int) -> None:
        while len(budget._waiting) < count:
            threading.Event().wait(0.001)

    big = threading.Thread(target=decode, args=("big", 500))
    big.start()
    in_line(1)
    later = threading.Thread(target=decode, args=("later", 10))
    later.start()
    in_line(2)
    assert order == []  # the later one would fit, but waits behind the big one
    small.__exit__(None, None, None)
    big.join(10)
    later.join(10)
    assert order == ["big", "later"] and budget.used == 0
