"""Filters: what a photo carries (date, folder, type, camera, shape, place) narrows search and listing."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from clipdesk import _search as search_module
from clipdesk._errors import UsageError
from clipdesk._facts import Facts, Orientation, camera_name
from clipdesk._filters import Filter, parse_date, parse_types
from clipdesk._search import Query, Searcher
from clipdesk._store import NewImage, Store
from clipdesk._testing.colours import ColourEncoder
from conftest import COLOUR_MODEL, CliRunner, run_json
from exifphotos import (
    COMBINED_AFTER, COMBINED_BEFORE, COMBINED_CAMERA, COMBINED_EXPECTED, COMBINED_FOLDER, COMBINED_NOT,
    COMBINED_TEXT, COMBINED_TYPE, EXIF_IFD, GPS_IFD, add_combined_photos, make_camera_roll, make_exif_photo,
)

# -- what a photo carries ----------------------------------------------------------


def test_facts_are_read_at_decode_and_from_the_header_alike(tmp_path: Path) -> None:
    from clipdesk._imaging import open_image, read_info

    path = make_exif_photo(tmp_path / "a.jpg", "red", taken="2019:07:14 10:00:00", offset="-05:00",
                           make="FUJIFILM", model="X-T3", lens="XF35mmF1.4 R", gps=(-33.8568, 151.2153))
    _, info = open_image(path, min_side=32)
    assert info == read_info(path)
    assert info.taken_at == "2019-07-14T10:00:00"
    assert info.facts == Facts(
        taken_offset="-05:00", camera_make="FUJIFILM", camera_model="X-T3", lens="XF35mmF1.4 R",
        latitude=pytest.approx(-33.8568, abs=1e-4), longitude=pytest.approx(151.2153, abs=1e-4),
        file_type="jpeg",
    )
    # The type is what the file is, not what its name says; no EXIF, no facts but the type.
    plain = tmp_path / "really-a-png.jpg"
    Image.new("RGB", (8, 8)).save(plain, format="PNG")
    assert read_info(plain).facts == Facts(file_type="png")


def test_malformed_gps_and_offsets_are_left_out(tmp_path: Path) -> None:
    from clipdesk._imaging import read_info

    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[0x9011] = "local"
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (95.0, 0.0, 0.0)  # no such latitude
    gps[3], gps[4] = "E", (10.0, 0.0, 0.0)
    path = tmp_path / "odd.jpg"
    Image.new("RGB", (8, 8)).save(path, exif=exif)
    assert read_info(path).facts == Facts(file_type="jpeg")


# -- parsing and rules -----------------------------------------------------------


def test_dates_are_a_year_a_month_or_a_day_with_inclusive_ends() -> None:
    assert parse_date("2019", end=False) == date(2019, 1, 1)
    assert parse_date("2019", end=True) == date(2019, 12, 31)
    assert parse_date("2020-02", end=True) == date(2020, 2, 29)
    assert parse_date("2019-02", end=False) == date(2019, 2, 1)
    assert parse_date("2019-07-14", end=True) == date(2019, 7, 14)
    for impossible in ("2019-02-30", "2019-13", "2019-00-10", "19", "yesterday", "2019/07/14", ""):
        with pytest.raises(UsageError):
            parse_date(impossible, end=False)


def test_types_accept_the_names_users_know() -> None:
    assert parse_types(["jpg,PNG", ".heic", "tif", "jpeg"]) == ("jpeg", "png", "heif", "tiff")
    with pytest.raises(UsageError, match="svg"):
        parse_types(["jpeg,svg"])


def test_a_filter_that_cannot_match_is_refused() -> None:
    with pytest.raises(UsageError, match="later than"):
        Filter(after=date(2020, 1, 1), before=date(2019, 12, 31))
    assert Filter(after=date(2019, 7, 14), before=date(2019, 7, 14)).before == date(2019, 7, 14)
    with pytest.raises(UsageError, match="not inside the library"):
        Filter(folders=("/elsewhere",)).within_library(["/photos"])
    assert Filter(folders=("/photos/2019/trip",)).within_library(["/photos"]).folders


def test_camera_names_are_not_doubled() -> None:
    assert camera_name("Canon", "Canon EOS 5D") == "Canon EOS 5D"
    assert camera_name("NIKON CORPORATION", "NIKON D750") == "NIKON D750"
    assert camera_name("FUJIFILM", "X-T3") == "FUJIFILM X-T3"
    assert camera_name(None, None) is None


def _row(store: Store, folder_id: int, path: str, **kw: Any) -> int:
    facts = kw.pop("facts", None)
    image = NewImage(
        folder_id=folder_id, path=path, size=kw.pop("size", 100), mtime_ns=kw.pop("mtime_ns", 0),
        hash=path, width=kw.pop("width", 40), height=kw.pop("height", 30), taken_at=kw.pop("taken_at", None),
        facts=facts,
    )
    vector = kw.pop("vector", np.ones(ColourEncoder.dim, dtype=np.float32))
    image_id = store.insert_image(image, vector / np.linalg.norm(vector))
    assert image_id is not None
    return image_id


def test_each_rule_keeps_exactly_its_photos_in_sql(tmp_path: Path) -> None:
    with Store(tmp_path / "lib.db") as store:
        store.bind_model(COLOUR_MODEL, ColourEncoder.dim)
        root = store.add_folder(str(tmp_path / "photos"))
        p = str(tmp_path / "photos")
        with store.write():
            ids = {
                "old": _row(store, root.id, f"{p}/a/old.jpg", taken_at="2018-12-31T23:59:59",
                            facts=Facts(file_type="jpeg", camera_make="Canon", camera_model="Canon EOS 5D")),
                "july": _row(store, root.id, f"{p}/a/b/july.png", taken_at="2019-07-14T23:30:00",
                             width=30, height=40, facts=Facts(file_type="png", latitude=1.0, longitude=2.0)),
                "august": _row(store, root.id, f"{p}/ab/august.jpg", taken_at="2019-08-01T00:00:00",
                               width=50, height=50, facts=Facts(file_type="jpeg", camera_model="iPhone 12")),
                "undated": _row(store, root.id, f"{p}/undated.gif", width=4000, height=3000,
                                mtime_ns=int(time.mktime((2019, 7, 20, 12, 0, 0, 0, 0, -1))) * 10**9),
            }

        def kept(f: Filter) -> set[str]:
            found = set(store.matching_ids(*f.sql()).tolist())
            return {name for name, i in ids.items() if i in found}

        assert kept(Filter()) == set(ids)
        assert kept(Filter(after=date(2019, 1, 1))) == {"july", "august", "undated"}
        # Inclusive to the end of the day, by the date taken, else the file's local time.
        assert kept(Filter(before=date(2019, 7, 14))) == {"old", "july"}
        assert kept(Filter(after=date(2019, 7, 1), before=date(2019, 7, 31))) == {"july", "undated"}
        # A folder is a folder: "a" does not hold "ab".
        assert kept(Filter(folders=(f"{p}/a",))) == {"old", "july"}
        assert kept(Filter(folders=(f"{p}/a/b", f"{p}/ab"))) == {"july", "august"}
        assert kept(Filter(types=("png", "gif"))) == {"july"}  # the GIF's facts are not read yet
        assert kept(Filter(camera="eos")) == {"old"}
        assert kept(Filter(camera="CANON eos 5")) == {"old"}
        assert kept(Filter(camera="iphone")) == {"august"}
        assert kept(Filter(orientation=Orientation.PORTRAIT)) == {"july"}
        assert kept(Filter(orientation=Orientation.SQUARE)) == {"august"}
        assert kept(Filter(orientation=Orientation.LANDSCAPE)) == {"old", "undated"}
        assert kept(Filter(min_pixels=2500)) == {"august", "undated"}
        assert kept(Filter(has_gps=True)) == {"july"}
        assert kept(Filter(types=("jpeg",), camera="canon", before=date(2019, 1, 1))) == {"old"}
        assert store.count_undescribed() == 1


# -- before the top-k: a selective filter still finds every match ----------------------


def _big_library(db: Path, photos: Path, total: int, rare: int) -> tuple[list[int], np.ndarray]:
    """`total` photos whose vectors all match "red" better than the `rare` ones the camera filter keeps."""
    encoder = ColourEncoder()
    red = encoder.encode_texts(["red"])[0]
    other = encoder.encode_texts(["blue"])[0]
    rng = np.random.default_rng(7)
    rare_ids: list[int] = []
    with Store(db) as store:
        store.bind_model(encoder.model_id, encoder.dim)
        folder = store.add_folder(str(photos))
        with store.write():
            for n in range(total):
                is_rare = n % (total // rare) == 0 and len(rare_ids) < rare
                base = 0.3 * red + other if is_rare else red
                vector = base + rng.normal(0, 0.01, encoder.dim).astype(np.float32)
                facts = Facts(file_type="jpeg", camera_make="Rarecam" if is_rare else "Commoncam")
                image_id = _row(store, folder.id, f"{photos}/{n:05d}.jpg", vector=vector, facts=facts)
                if is_rare:
                    rare_ids.append(image_id)
    return rare_ids, red


def test_a_filter_keeping_5_of_10000_returns_all_5(tmp_path: Path, db_path: Path, cli: CliRunner) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    rare_ids, _ = _big_library(db_path, photos, 10_000, 5)
    # Unfiltered, the 10 best are all common photos: a filter applied after the top-k finds none.
    best = run_json(cli, "search", "red", "-n", "10")
    assert isinstance(best, list) and all(h["camera"] == "Commoncam" for h in best)
    hits = run_json(cli, "search", "red", "--camera", "rarecam", "-n", "10")
    assert isinstance(hits, list) and len(hits) == 5
    assert {h["camera"] for h in hits} == {"Rarecam"}
    listed = run_json(cli, "list", "--camera", "RARE")
    assert isinstance(listed, list) and len(listed) == 5 and "score" not in listed[0]


@pytest.mark.parametrize("exact_up_to", [search_module.EXACT_FILTERED, 2])
def test_ranking_within_a_filter_matches_ranking_its_photos_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exact_up_to: int
) -> None:
    # With exact_up_to=2 the filter's 5 and 2,000 matches take the "deeper ranking" path.
    monkeypatch.setattr(search_module, "EXACT_FILTERED", exact_up_to)
    db = tmp_path / "lib.db"
    rare_ids, red = _big_library(db, tmp_path / "photos", 10_000, 5)
    with Store(db) as store:
        searcher = Searcher(store, ColourEncoder())
        few = searcher.search(Query(texts=("red",), limit=10, filter=Filter(camera="rarecam")))
        assert sorted(h.image_id for h in few) == sorted(rare_ids)
        everyone = Filter(camera="commoncam", folders=(str(tmp_path / "photos"),))
        ids = store.matching_ids(*everyone.sql())[::5]  # 2,000 photos, by id
        with store.write():
            store.conn.executemany("UPDATE images SET camera_make = 'Some' WHERE id = ?", ((int(i),) for i in ids))
        some = searcher.search(Query(texts=("red",), limit=10, filter=Filter(camera="some")))
        found, vectors = store.vectors(ids)
        expected = found[np.argsort(-(vectors @ red), kind="stable")[:10]]
        assert [h.image_id for h in some] == [int(i) for i in expected]


# -- the command line on real photos ----------------------------------------------------


@pytest.fixture
def camera_roll(tmp_path: Path) -> Path:
    return make_camera_roll(tmp_path / "roll")


def _names(results: object) -> list[str]:
    assert isinstance(results, list)
    return [Path(r["path"]).name for r in results]


def test_each_filter_through_the_command_line(cli: CliRunner, camera_roll: Path) -> None:
    cli("--model", COLOUR_MODEL, "index", str(camera_roll))
    everything = run_json(cli, "list")
    # Ordered by date taken; undated photos by their file's time, marked as such.
    assert _names(everything) == ["scan.bmp", "beach.jpg", "sunset.jpg", "poppies.png", "forest.webp"]
    assert isinstance(everything, list)
    beach = everything[1]
    assert beach == {
        "path": str(camera_roll / "2019" / "beach.jpg"), "taken_at": "2019-07-14T10:00:00+02:00",
        "taken_from": "exif", "camera": "Canon EOS 5D", "width": 80, "height": 40, "type": "jpeg",
        "size": (camera_roll / "2019" / "beach.jpg").stat().st_size,
    }
    assert everything[0]["taken_from"] == "file" and everything[0]["taken_at"].startswith("2018-03-01T12:00")

    def listed(*options: str) -> list[str]:
        return _names(run_json(cli, "list", *options))

    assert listed("--after", "2019-07-31") == ["sunset.jpg", "poppies.png", "forest.webp"]
    assert listed("--before", "2019-07") == ["scan.bmp", "beach.jpg", "sunset.jpg"]
    assert listed("--after", "2019", "--before", "2019") == ["beach.jpg", "sunset.jpg", "poppies.png"]
    assert listed("--in", str(camera_roll / "2019" / "trip")) == ["poppies.png"]
    assert listed("--in", str(camera_roll / "2020"), "--in", str(camera_roll / "2019" / "trip")) == [
        "poppies.png", "forest.webp"]
    assert listed("--type", "png,webp") == ["poppies.png", "forest.webp"]
    assert listed("--type", "jpg", "--type", "bmp") == ["scan.bmp", "beach.jpg", "sunset.jpg"]
    assert listed("--camera", "canon") == ["beach.jpg", "poppies.png"]
    assert listed("--camera", "IPHONE") == ["sunset.jpg"]
    assert listed("--orientation", "portrait") == ["sunset.jpg"]
    assert listed("--orientation", "square") == ["poppies.png"]
    assert listed("--orientation", "landscape", "--min-pixels", "3200") == ["beach.jpg", "forest.webp"]
    assert listed("--has-gps") == ["beach.jpg"]
    assert listed("--has-gps", "--camera", "apple") == []
    assert listed("-n", "2") == ["scan.bmp", "beach.jpg"]

    # The same filters on search and similar: only what they keep is ranked.
    assert _names(run_json(cli, "search", "red", "--camera", "canon", "-n", "1")) == ["poppies.png"]
    assert _names(run_json(cli, "search", "red", "--after", "2019-08", "-n", "1")) == ["poppies.png"]
    similar = run_json(cli, "similar", str(camera_roll / "scan.bmp"), "--orientation", "portrait", "-n", "5")
    assert _names(similar) == ["sunset.jpg"]
    text = cli("list", "--has-gps").stdout
    assert text.strip() == f"2019-07-14 10:00  {camera_roll / '2019' / 'beach.jpg'}"


def test_filters_text_and_not_combine(cli: CliRunner, camera_roll: Path) -> None:
    add_combined_photos(camera_roll)
    cli("--model", COLOUR_MODEL, "index", str(camera_roll))
    filters = ["--in", str(camera_roll / COMBINED_FOLDER), "--type", COMBINED_TYPE, "--camera", COMBINED_CAMERA,
               "--after", COMBINED_AFTER, "--before", COMBINED_BEFORE, "-n", "10"]
    # Each filter leaves out a blue photo the words alone would rank first; the
    # negative pushes the purple one (the nearest to blue) to the end.
    hits = run_json(cli, "search", COMBINED_TEXT, "--not", COMBINED_NOT, *filters)
    assert _names(hits) == COMBINED_EXPECTED
    assert _names(run_json(cli, "search", COMBINED_TEXT, *filters)) == ["beach.jpg", "purple-canon.jpg",
                                                                       "red-canon.jpg"]
    unfiltered = _names(run_json(cli, "search", COMBINED_TEXT, "--not", COMBINED_NOT, "-n", "5"))
    assert set(unfiltered) == {"beach.jpg", "june.jpg", "loose.jpg", "blue-canon.png", "blue-phone.jpg"}
    hits = run_json(cli, "search", "red", "--also", "green", "--not", "blue", "--type", "webp,png")
    assert sorted(_names(hits)[:2]) == ["forest.webp", "poppies.png"]
    assert _names(hits)[2:] == ["blue-canon.png"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--after", "2019-02-30"], "not a date that exists"),
        (["--before", "last year"], "not a date"),
        (["--after", "2020", "--before", "2019-12"], "later than"),
        (["--in", "/"], "not inside the library"),
        (["--type", "svg"], "not a photo type"),
        (["--orientation", "round"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    cli: CliRunner, camera_roll: Path, options: list[str], says: str
) -> None:
    cli("--model", COLOUR_MODEL, "index", str(camera_roll / "2020"))
    for command in (["list"], ["search", "red"], ["similar", str(camera_roll / "scan.bmp")]):
        result = cli(*command, *options, check=False)
        assert result.returncode == 2, (command, result.stderr)
        if says != "invalid choice":  # argparse's own usage message
            assert result.stderr.count("\n") == 1 and result.stderr.startswith("clipdesk: ")
        assert says in result.stderr
        assert result.stdout == ""


def test_index_describes_photos_indexed_before_facts_were_kept(
    cli: CliRunner, camera_roll: Path, db_path: Path
) -> None:
    cli("--model", COLOUR_MODEL, "index", str(camera_roll))
    with Store(db_path) as store, store.write():
        store.conn.execute("UPDATE images SET camera_make = NULL, file_type = NULL, facts_version = NULL")
    report = run_json(cli, "index")
    assert isinstance(report, dict) and report["encoded"] == 0 and report["unchanged"] == 5
    with Store(db_path) as store:
        assert store.count_undescribed() == 0
    assert _names(run_json(cli, "list", "--camera", "canon", "--type", "jpeg")) == ["beach.jpg"]
