"""Which files are photos: Pillow's own registry (AVIF wherever it reads it), camera RAW through
the raw extra, and every other file counted as skipped rather than silently ignored."""

from __future__ import annotations

import json

import pytest
from PIL import Image, features
from rawutil import make_dng

from clipdesk import _imaging, _rawphoto
from clipdesk._cli import main
from clipdesk._imaging import open_image, read_info, supported_suffixes
from clipdesk._scanner import scan

COLOURS = "clipdesk-test:colours"
needs_rawpy = pytest.mark.skipif(not _rawphoto.raw_available(), reason="rawpy (the raw extra) is not installed")


def test_photo_extensions_come_from_pillows_registry(monkeypatch):
    Image.init()
    registered = Image.registered_extensions()
    suffixes = supported_suffixes()
    assert {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".bmp"} <= suffixes
    assert all(registered.get(s) in _imaging.PHOTO_FORMATS for s in suffixes - _rawphoto.RAW_SUFFIXES)
    assert ".pdf" not in suffixes and ".eps" not in suffixes  # Pillow knows them; they are not photos
    # A format a plugin registers becomes a photo format without a list to edit here.
    monkeypatch.setitem(Image.EXTENSION, ".xyzphoto", "JPEG")
    assert ".xyzphoto" in supported_suffixes()


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow was built without AVIF")
def test_avif_is_indexed_wherever_pillow_reads_it(data_dir, tmp_path, capsys):
    folder = tmp_path / "avif"
    folder.mkdir()
    Image.new("RGB", (64, 48), (0, 160, 0)).save(folder / "leaf.avif")
    assert ".avif" in supported_suffixes()
    assert main(["index", str(folder), "--db", str(data_dir / "lib.db"), "--model", COLOURS, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indexed"] == 1 and report["failed"] == []
    main(["search", "green", "--json", "--db", str(data_dir / "lib.db")])
    (hit,) = json.loads(capsys.readouterr().out)
    assert hit["path"].endswith("leaf.avif") and hit["type"] == "avif"


def test_other_files_are_counted_as_skipped(data_dir, photos, capsys):
    (photos / "holiday.mov").write_bytes(b"\0" * 10)
    (photos / "trip" / "notes.txt").write_text("x")
    (photos / "trip" / "clip.MOV").write_bytes(b"\0" * 10)
    others: list[str] = []
    list(scan(str(photos), on_other=others.append))
    assert sorted(p.rsplit("/", 1)[1] for p in others) == ["clip.MOV", "holiday.mov", "notes.txt"]
    db = str(data_dir / "lib.db")
    assert main(["index", str(photos), "--db", db, "--model", COLOURS, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unsupported"] == {".mov": 2, ".txt": 1}
    assert main(["index", "--db", db]) == 0
    assert "3 other files skipped (2 .mov, 1 .txt)" in capsys.readouterr().out


@needs_rawpy
def test_raw_is_read_through_its_embedded_preview(tmp_path):
    path = make_dng(tmp_path / "shot.dng", 64, 48, preview=Image.new("RGB", (32, 24), (0, 0, 255)))
    image, info = open_image(path)
    assert image.getpixel((10, 10))[2] > 200 and image.getpixel((10, 10))[0] < 60  # the blue preview
    assert (info.width, info.height) == (64, 48)  # the RAW's own size, not the preview's
    assert info.facts is not None and info.facts.file_type == "raw" and info.facts.camera_model == "Test RAW"
    assert info.taken_at is None  # the file keeps no date (LibRaw would say 1970)
    with open(path, "rb") as handle:  # the indexer's way: an open file and its name
        assert open_image(handle, name=str(path))[0].size == image.size


@needs_rawpy
def test_raw_without_a_preview_is_developed_upright(tmp_path):
    path = make_dng(tmp_path / "plain.dng", 64, 48, colour=(200, 30, 30), orientation=6)
    image, info = open_image(path)
    assert image.size[0] < image.size[1]  # turned as the camera was held
    red, green, blue = image.getpixel((image.size[0] // 2, image.size[1] // 2))
    assert red > green and red > blue
    assert (info.width, info.height) == (48, 64)
    assert (read_info(path).width, read_info(path).height) == (48, 64)


@needs_rawpy
def test_raw_files_are_indexed_searched_and_filtered(data_dir, tmp_path, capsys):
    folder = tmp_path / "raw"
    folder.mkdir()
    make_dng(folder / "sky.dng", preview=Image.new("RGB", (32, 24), (0, 0, 255)))
    make_dng(folder / "broken.nef", 8, 8).write_bytes(b"not a raw file")
    db = str(data_dir / "lib.db")
    assert main(["index", str(folder), "--db", db, "--model", COLOURS, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indexed"] == 1 and [f["path"] for f in report["failed"]] == [str(folder / "broken.nef")]
    assert main(["list", "--type", "raw", "--json", "--db", db]) == 0
    assert [p["path"] for p in json.loads(capsys.readouterr().out)] == [str(folder / "sky.dng")]


def test_without_rawpy_raw_files_are_skipped_with_the_extra_to_install(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_imaging, "raw_available", lambda: False)
    folder = tmp_path / "raw"
    folder.mkdir()
    make_dng(folder / "sky.dng")
    Image.new("RGB", (8, 8)).save(folder / "ok.png")
    assert main(["index", str(folder), "--db", str(data_dir / "lib.db"), "--model", COLOURS]) == 0
    captured = capsys.readouterr()
    assert "1 indexed" in captured.out and "1 other file skipped (1 .dng)" in captured.out
    assert "pip install 'clipdesk[raw]'" in captured.err
