"""Diagnostics: `clipdesk doctor [--json]` and the report Help ▸ Copy diagnostics copies."""

from __future__ import annotations

import json

import pytest

from clipdesk import _diagnostics as diagnostics
from clipdesk._cli import main
from clipdesk._library import Library, LibraryOptions

COLOURS = "clipdesk-test:colours"


def _index(db, folder):
    with Library(LibraryOptions(db_path=db, model=COLOURS)) as library:
        library.index([str(folder)])


def test_a_healthy_library_reports_versions_paths_model_and_size(data_dir, photos):
    db = data_dir / "lib.db"
    _index(db, photos)
    report = diagnostics.collect(db, probe_device=False, check_display=False)
    assert report.problems == []
    assert report.library["images"] == 8 and report.library["folders"] == 1
    assert report.library["integrity"] == "ok" and report.library["size_bytes"] > 0
    assert report.model["id"] == COLOURS and report.model["source"] == "the library's"
    assert report.versions["clipdesk"] and report.versions["pillow"] and report.versions["sqlite"]
    assert set(report.paths) == {"library", "data", "thumbnails", "cache", "settings", "logs", "models"}
    text = report.as_text()
    assert str(db) in text and "8 photos in 1 folder" in text and "Problems:  none found" in text


def test_each_problem_says_what_to_do(data_dir, photos, monkeypatch):
    db = data_dir / "lib.db"
    _index(db, photos)
    photos.rename(photos.with_name("moved"))
    monkeypatch.setattr("clipdesk._models.cached", lambda model_id, **kw: None)
    report = diagnostics.collect(db, "openai/clip-vit-base-patch32", probe_device=False, check_display=False)
    problems = {p.what: p.todo for p in report.problems}
    missing = next(what for what in problems if str(photos) in what)
    assert "clipdesk forget" in problems[missing]
    model = next(what for what in problems if "not downloaded" in what)
    assert "connect to the internet" in problems[model]
    assert "What to do:" in report.as_text()


def test_a_damaged_library_points_to_rebuild(data_dir):
    db = data_dir / "lib.db"
    data_dir.mkdir(parents=True)
    db.write_bytes(b"this is not a database" * 100)
    report = diagnostics.collect(db, COLOURS, probe_device=False, check_display=False)
    assert report.library["error"]
    assert any("clipdesk rebuild" in p.todo for p in report.problems)


def test_a_model_folder_that_is_gone_is_a_problem(data_dir, tmp_path):
    report = diagnostics.collect(data_dir / "lib.db", str(tmp_path / "no-model"), probe_device=False,
                                 check_display=False)
    assert report.model["available"] is False
    assert any("no-model" in p.what for p in report.problems)


def test_doctor_json_and_exit_status(data_dir, photos, capsys):
    db = data_dir / "lib.db"
    _index(db, photos)
    assert main(["doctor", "--json", "--db", str(db)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["library"]["images"] == 8 and data["problems"] == []
    assert data["device"]  # the device is probed for the terminal
    assert main(["doctor", "--db", str(db), "--model", str(data_dir / "gone")]) == 1
    out = capsys.readouterr().out
    assert "Problems:" in out and "What to do:" in out


@pytest.mark.parametrize("platform_name", ["linux", "darwin", "win32"])
def test_settings_location_names_the_platforms_store(monkeypatch, platform_name):
    monkeypatch.setattr(diagnostics.sys, "platform", platform_name)
    where = diagnostics.settings_location()
    assert "clipdesk" in where
