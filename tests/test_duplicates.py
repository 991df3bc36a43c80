"""Near-duplicates: copies of one photo form one group with the best to keep first; different photos never do."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import COLOUR_MODEL, CliRunner, run_json
from PIL import Image, ImageDraw

from clipdesk._duplicates import DEFAULT_THRESHOLD, group_rows, hamming, make_group, near_copies, phash_pairs
from clipdesk._errors import ClipdeskError
from clipdesk._library import Library, LibraryOptions
from clipdesk._store import PhotoFacts
from clipdesk._testing.colours import ColourEncoder


def scene(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A photo-like picture: a gradient, a few shapes and some grain (a solid colour has no pHash to speak of)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * x / w + np.sin(angle) * y / h + 1) / 2
    low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    pixels = low + ramp[..., None] * (high - low)
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.uniform(0, w * 0.8), rng.uniform(0, h * 0.8)
        x1, y1 = x0 + rng.uniform(w * 0.1, w * 0.5), y0 + rng.uniform(h * 0.1, h * 0.5)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    grain = rng.normal(0, 6, (h, w, 3))
    return Image.fromarray((np.asarray(image, dtype=np.float32) + grain).clip(0, 255).astype(np.uint8), "RGB")


def save(image: Image.Image, path: Path, **options: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def with_copies(seed: int, folder: Path, name: str) -> list[Path]:
    """An original and its resized (50 %, 25 %) and re-compressed (JPEG 60) copies."""
    original = scene(seed)
    w, h = original.size
    return [
        save(original, folder / f"{name}.jpg", quality=95),
        save(original.resize((w // 2, h // 2), Image.Resampling.LANCZOS), folder / "small" / f"{name}-half.png"),
        save(original.resize((w // 4, h // 4), Image.Resampling.LANCZOS), folder / "small" / f"{name}-quarter.jpg"),
        save(original, folder / "resaved" / f"{name}-q60.jpg", quality=60),
    ]


@pytest.fixture
def library(db_path: Path) -> Iterator[Library]:
    with Library(LibraryOptions(db_path, model=COLOUR_MODEL), encoder=ColourEncoder()) as lib:
        yield lib


def real(paths: list[Path]) -> list[str]:
    return [os.path.realpath(p) for p in paths]


def test_a_photo_and_its_resized_and_recompressed_copies_form_one_group_best_first(
    library: Library, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    copies = with_copies(1, photos, "beach")
    for seed in range(2, 6):
        save(scene(seed), photos / "others" / f"other{seed}.jpg", quality=90)
    library.index([str(photos)])

    groups = library.duplicates()

    assert len(groups) == 1
    group = groups[0]
    assert [p.path for p in group.photos][0] == real(copies)[0]  # the full-size original is kept
    assert sorted(p.path for p in group.photos) == sorted(real(copies))
    assert not group.exact
    assert DEFAULT_THRESHOLD <= group.min_similarity <= 1.0
    # The JPEG-60 copy has as many pixels: the shorter path decides between the two.
    assert group.keep_reason == "same size and date; shortest path"


def test_fingerprints_are_made_while_indexing(library: Library, tmp_path: Path) -> None:
    save(scene(1), tmp_path / "photos" / "a.jpg")
    library.index([str(tmp_path / "photos")])
    assert library.store.missing_phashes() == []
    assert all(p.phash is not None for p in library.store.duplicate_facts())


def test_different_photos_never_group(library: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for seed in range(20):
        save(scene(seed), photos / f"photo{seed}.jpg", quality=85)
    # The same kind of picture twice: one layout, different shapes and colours.
    save(scene(100, (480, 360)), photos / "twin-a.jpg")
    save(scene(101, (480, 360)), photos / "twin-b.jpg")
    library.index([str(photos)])
    assert library.duplicates() == []
    assert library.duplicates(threshold=0.75) == []  # not even at a looser level


def test_identical_files_form_an_exact_group_and_the_shortest_path_is_kept(
    library: Library, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    first = save(scene(7), photos / "deep" / "er" / "copy.jpg")
    second = photos / "keep.jpg"
    shutil.copyfile(first, second)
    library.index([str(photos)])

    (group,) = library.duplicates()

    assert group.exact and group.min_similarity == 1.0
    assert [p.path for p in group.photos] == real([second, first])
    assert group.keep_reason == "same size and date; shortest path"


def test_the_one_to_keep_has_most_pixels_then_the_oldest_date_then_the_shortest_path() -> None:
    def photo(i: int, path: str, w: int, taken: str | None) -> PhotoFacts:
        return PhotoFacts(i, path, f"h{i}", 0, w, w, taken)

    group = make_group([
        photo(1, "/p/a/long-name.jpg", 100, "2020-01-01T00:00:00"),
        photo(2, "/p/b.jpg", 100, None),
        photo(3, "/p/c.jpg", 100, "2019-05-05T10:00:00"),
    ])
    assert [p.id for p in group.photos] == [3, 1, 2]
    assert group.keep_reason == "same size; taken first (2019-05-05T10:00:00)"
    assert make_group([photo(1, "/a.jpg", 90, None), photo(2, "/b.jpg", 100, None)]).photos[0].id == 2


def test_pairs_need_both_a_close_fingerprint_and_a_like_vector() -> None:
    hashes = np.array([0, 0b111, -1, 0], dtype=np.int64)
    vectors = np.eye(4, dtype=np.float32)
    vectors[1] = vectors[0]  # 0 and 1: same picture; 3 has 0's pHash but shows something else
    has = np.ones(4, dtype=bool)
    pairs = near_copies(hashes, has, lambda rows: (vectors[rows], has[rows]))
    assert list(zip(*(p.tolist() for p in pairs))) == [(0, 1)]
    assert group_rows(["a", "b", "c", "c"], pairs) == [[0, 1], [2, 3]]


def test_json_lists_the_largest_groups_first(cli: CliRunner, db_path: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    with_copies(1, photos, "big")  # four files
    pair = save(scene(2), photos / "pair" / "a.jpg")
    shutil.copyfile(pair, photos / "pair" / "b.jpg")
    save(scene(3), photos / "alone.jpg")
    cli("index", str(photos), "--db", str(db_path), "--model", COLOUR_MODEL)

    result = run_json(cli, "duplicates", "--db", str(db_path))

    assert isinstance(result, dict) and list(result) == ["groups"]
    groups = result["groups"]
    assert [len(g["paths"]) for g in groups] == [4, 2]
    assert [g["exact"] for g in groups] == [False, True]
    for group in groups:
        assert set(group) >= {"paths", "exact", "min_similarity"}
        assert all(isinstance(p, str) for p in group["paths"])
        assert isinstance(group["min_similarity"], float)
    assert groups[0]["paths"][0] == os.path.realpath(photos / "big.jpg")

    text = cli("duplicates", "--db", str(db_path)).stdout
    assert "2 groups of duplicates; 4 photos could go." in text
    assert f"keep  {os.path.realpath(photos / 'big.jpg')}" in text


def test_in_restricts_the_groups_to_photos_in_those_folders(
    cli: CliRunner, db_path: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    with_copies(1, photos / "trip", "a")
    with_copies(2, photos / "home", "b")
    shutil.copyfile(photos / "trip" / "a.jpg", photos / "home" / "a-again.jpg")
    cli("index", str(photos), "--db", str(db_path), "--model", COLOUR_MODEL)

    result = run_json(cli, "duplicates", "--db", str(db_path), "--in", str(photos / "trip"))

    assert isinstance(result, dict)
    (group,) = result["groups"]
    trip = os.path.realpath(photos / "trip") + os.sep
    assert len(group["paths"]) == 4 and all(p.startswith(trip) for p in group["paths"])
    both = run_json(
        cli, "duplicates", "--db", str(db_path), "--in", str(photos / "trip"), "--in", str(photos / "home")
    )
    assert isinstance(both, dict) and sorted(len(g["paths"]) for g in both["groups"]) == [4, 5]


def test_a_bad_threshold_or_folder_is_refused_with_a_clear_message(library: Library, tmp_path: Path) -> None:
    with pytest.raises(ClipdeskError, match="between 0 and 1"):
        library.duplicates(threshold=1.5)
    with pytest.raises(ClipdeskError, match="No folder"):
        library.duplicates(within=[str(tmp_path / "nowhere")])


def test_fingerprint_pairs_block_by_block_match_every_pair_compared() -> None:
    rng = np.random.default_rng(5)
    hashes = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, 300, dtype=np.int64)
    hashes[100:200] = hashes[:100] ^ (1 << rng.integers(0, 64, 100)).astype(np.int64)  # one bit off
    hashes[250] = hashes[3]
    i, j = phash_pairs(hashes, 3, block_rows=16, block_columns=40)
    bits = hamming(hashes[:, None], hashes[None, :])
    expected = {(a, b) for a, b in zip(*np.nonzero(bits <= 3)) if a < b}
    assert set(zip(i.tolist(), j.tolist())) == expected
    assert len(expected) >= 100
