"""The command line as users and scripts run it: separate processes, JSON parsed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import COLOUR_MODEL, CliRunner, make_photo, run_json


def names(results: object) -> list[str]:
    assert isinstance(results, list)
    return [Path(r["path"]).stem for r in results]


def test_index_search_similar_classify_status_forget(cli: CliRunner, photos: Path, db_path: Path) -> None:
    report = run_json(cli, "--model", COLOUR_MODEL, "index", str(photos))
    assert report == {
        "indexed": 8, "unchanged": 0, "moved": 0, "removed": 0, "encoded": 8,
        "failed": [], "skipped": 0, "unsupported": {}, "cancelled": False, "seconds": report["seconds"],  # type: ignore[index]
    }
    # The library remembers its model: later commands need no --model.
    hits = run_json(cli, "search", "red", "-n", "3")
    assert sorted(names(hits)) == ["red1", "red2", "red3"]
    fields = {"path", "score", "taken_at", "taken_from", "camera", "width", "height", "type", "size"}
    assert all(fields == set(h) for h in hits)  # type: ignore[union-attr]
    red1 = next(h for h in hits if h["path"].endswith("red1.jpg"))  # type: ignore[union-attr]
    assert (red1["width"], red1["height"], red1["type"]) == (64, 48, "jpeg")
    assert red1["size"] == (photos / "red1.jpg").stat().st_size and red1["taken_from"] == "file"

    pushed = run_json(cli, "search", "a photo", "--not", "red", "-n", "8")
    assert set(names(pushed)[-3:]) == {"red1", "red2", "red3"}

    similar = run_json(cli, "similar", str(photos / "blue1.jpg"), "-n", "1")
    assert names(similar) == ["blue2"]

    liked = run_json(cli, "search", "--like", str(photos / "green1.jpg"), "-n", "1")
    assert names(liked) == ["green2"]

    strong = run_json(cli, "search", "yellow", "--min-score", "0.5")
    assert names(strong) == ["yellow1"]

    classified = run_json(cli, "classify", str(photos / "red1.jpg"), str(photos / "blue2.bmp"), "--labels", "red, green, blue")
    assert isinstance(classified, list)
    assert [max(c["labels"], key=c["labels"].get) for c in classified] == ["red", "blue"]
    assert classified[0]["path"].endswith("red1.jpg")

    status = run_json(cli, "status")
    assert status["images"] == 8 and status["integrity"] == "ok"  # type: ignore[index]
    assert status["model"] == COLOUR_MODEL  # type: ignore[index]
    assert status["database"] == str(db_path)  # type: ignore[index]
    assert status["folders"] == [{"path": str(photos), "images": 8}]  # type: ignore[index]

    cli("forget", str(photos))
    assert run_json(cli, "status")["images"] == 0  # type: ignore[index]
    assert (photos / "red1.jpg").exists()


def test_index_json_reports_moves_removals_and_failures(cli: CliRunner, photos: Path) -> None:
    cli("--model", COLOUR_MODEL, "index", str(photos))
    shutil.move(photos / "red1.jpg", photos / "trip" / "moved.jpg")
    (photos / "blue1.jpg").unlink()
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    report = run_json(cli, "index", str(photos))
    assert report["moved"] == 1 and report["removed"] == 1 and report["encoded"] == 0  # type: ignore[index]
    assert report["unchanged"] == 6  # type: ignore[index]
    assert [f["path"] for f in report["failed"]] == [str(photos / "broken.jpg")]  # type: ignore[index]
    assert report["failed"][0]["error"]  # type: ignore[index]


def test_preset_moderation(cli: CliRunner, photos: Path) -> None:
    out = run_json(cli, "--model", COLOUR_MODEL, "classify", str(photos / "red1.jpg"), "--preset", "moderation")
    labels = out[0]["labels"]  # type: ignore[index]
    assert {"safe", "not safe for work", "violent", "graphic"} <= set(labels)
    assert abs(sum(labels.values()) - 1) < 1e-4


def test_tiny_real_clip_through_the_command_line(cli: CliRunner, photos: Path, tiny_clip: Path) -> None:
    report = run_json(cli, "--model", str(tiny_clip), "index", str(photos))
    assert report["indexed"] == 8  # type: ignore[index]
    hits = run_json(cli, "search", "a red photo", "-n", "5")
    assert len(hits) == 5  # type: ignore[arg-type]
    assert run_json(cli, "status")["model"] == str(tiny_clip)  # type: ignore[index]


def _one_clear_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("clipdesk: ")
    return lines[0]


def test_user_errors_are_one_clear_line(cli: CliRunner, photos: Path, tmp_path: Path) -> None:
    assert "No folder" in _one_clear_line(cli("--model", COLOUR_MODEL, "index", str(tmp_path / "nope"), check=False))
    assert "index a folder first" in _one_clear_line(cli("search", "red", check=False))
    cli("rebuild")
    assert "library is empty" in _one_clear_line(cli("search", "red", check=False))
    cli("--model", COLOUR_MODEL, "index", str(photos))
    assert "No image" in _one_clear_line(cli("similar", str(tmp_path / "missing.jpg"), check=False))
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    assert "not an image" in _one_clear_line(cli("classify", str(not_image), "--labels", "a,b", check=False))
    line = _one_clear_line(cli("--model", "./no/such/model", "search", "red", check=False))
    assert "No model folder" in line
    mismatch = _one_clear_line(cli("--model", "openai/clip-vit-base-patch32", "search", "red", check=False))
    assert "indexed with the model" in mismatch


def test_offline_without_a_cached_model(cli: CliRunner, photos: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))
    line = _one_clear_line(cli("index", str(photos), check=False))
    assert "not downloaded" in line and "--model" in line


def test_a_file_that_is_no_database_is_not_offered_for_rebuild(cli: CliRunner, db_path: Path) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db_path.write_bytes(b"this is not a database" * 300)
    line = _one_clear_line(cli("status", check=False))
    assert "not a clipdesk library" in line and "rebuild" not in line
    # Following the advice anyway must not move someone's photo or document aside.
    assert "leaves it alone" in _one_clear_line(cli("rebuild", check=False))
    assert db_path.read_bytes() == b"this is not a database" * 300
    assert not list(db_path.parent.glob("library.db.backup-*"))


def test_a_damaged_library_advises_rebuild_with_the_users_own_db(
    cli: CliRunner, photos: Path, tmp_path: Path
) -> None:
    db = tmp_path / "my libraries" / "photos.db"
    cli("--model", COLOUR_MODEL, "index", str(photos), "--db", str(db))
    cli("status", "--db", str(db))  # checkpointed: everything is in the main file
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page: SQLite reports SQLITE_CORRUPT
    db.write_bytes(bytes(data))
    line = _one_clear_line(cli("search", "red", "--db", str(db), check=False))
    assert "damaged" in line
    assert f"clipdesk rebuild --db '{db}'" in line
    cli("rebuild", "--db", str(db))
    assert len(list(db.parent.glob("photos.db.backup-*"))) == 1
    assert run_json(cli, "status", "--db", str(db))["images"] == 0  # type: ignore[index]


def test_an_internal_sqlite_error_says_so_and_points_to_the_log(
    cli: CliRunner, photos: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from clipdesk import _cli as cli_module
    from clipdesk._store import Store

    cli("--model", COLOUR_MODEL, "index", str(photos))

    def broken(self: Store) -> int:
        return int(self._query("SELECT count(*) FROM no_such_table")[0][0])

    monkeypatch.setattr(Store, "count_images", broken)
    assert cli_module.main(["status"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert "internal error" in err[0].lower() and "bug in clipdesk" in err[0]
    assert "rebuild" not in err[0] and "damaged" not in err[0]
    log = data_dir / "clipdesk.log"
    assert str(log) in err[0]
    assert "no_such_table" in log.read_text()
    import logging

    for handler in [h for h in logging.getLogger().handlers if getattr(h, "baseFilename", "") == str(log)]:
        logging.getLogger().removeHandler(handler)
        handler.close()


def test_commands_that_need_no_model_do_not_import_torch(cli: CliRunner, photos: Path, data_dir: Path) -> None:
    import os
    import subprocess
    import sys

    assert "search" in cli("--help").stdout
    cli("--model", COLOUR_MODEL, "index", str(photos))
    code = (
        "import sys; from clipdesk._cli import main; "
        "main(['status', '--json']); main(['search', 'red', '--json']); "
        "sys.exit(3 if 'torch' in sys.modules else 0)"
    )
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_new_photo_after_first_index(cli: CliRunner, photos: Path) -> None:
    cli("--model", COLOUR_MODEL, "index", str(photos))
    make_photo(photos / "new" / "purple.jpg", "purple")
    report = run_json(cli, "index")
    assert report["indexed"] == 1 and report["unchanged"] == 8  # type: ignore[index]
    assert names(run_json(cli, "search", "purple", "-n", "1")) == ["purple"]


def test_every_command_has_help(cli: CliRunner) -> None:
    for command in ("index", "search", "similar", "classify", "status", "forget", "rebuild", "watch", "gui",
                    "tag", "labels", "safe-search"):
        result = cli(command, "--help")
        assert "--db" in result.stdout, command


def test_tag_then_search_list_and_similar_by_label(cli: CliRunner, photos: Path) -> None:
    cli("--model", COLOUR_MODEL, "index", str(photos))
    report = run_json(cli, "tag", "--labels", "red, green, blue, yellow", "--in", str(photos / "trip"))
    assert report == {**report, "labelled": 2, "counts": {"red": 1, "green": 1, "blue": 0, "yellow": 0}}  # type: ignore[dict-item]
    # Each command is a new process: the labels stayed in the library.
    assert names(run_json(cli, "search", "green", "--label", "red")) == ["red3"]
    assert names(run_json(cli, "search", "green", "label:red")) == ["red3"]  # the search box's syntax
    assert names(run_json(cli, "search", "green", "--label", "green", "--label", "red", "--not", "red")) == [
        "green2", "red3"
    ]
    listed = run_json(cli, "list", "--label", "red", "--type", "jpeg")
    assert [Path(p["path"]).name for p in listed] == ["red3.jpg"]  # type: ignore[index, union-attr]
    assert names(run_json(cli, "similar", str(photos / "red1.jpg"), "--label", "green")) == ["green2"]
    sets = run_json(cli, "labels")
    assert isinstance(sets, list) and len(sets) == 1
    assert sets[0]["name"] == "red, green, blue, yellow" and sets[0]["photos"] == 2
    assert sets[0]["counts"] == {"red": 1, "green": 1, "blue": 0, "yellow": 0} and sets[0]["active"] is True
    text = cli("labels").stdout
    assert "red, green, blue, yellow (typed, 2 photos, active)" in text

    # Re-running the set over the whole library replaces its results.
    cli("tag", "--labels", "red, green, blue, yellow")
    assert run_json(cli, "labels")[0]["counts"] == {"red": 3, "green": 2, "blue": 2, "yellow": 1}  # type: ignore[index]
    # A photo indexed later gets the active set.
    make_photo(photos / "later" / "blue9.png", "blue")
    cli("index")
    assert "blue9" in names(run_json(cli, "search", "blue", "--label", "blue", "-n", "5"))

    unknown = cli("search", "red", "--label", "redd", check=False)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "'redd'" in unknown.stderr


def test_labels_csv_is_valid_and_neutralised_whatever_the_paths(cli: CliRunner, tmp_path: Path) -> None:
    import csv

    root = tmp_path / "odd"
    names_ = ['a, "quoted" red.jpg', "line\nbreak green.png", "=HYPERLINK(1) red.jpg", "-2+3 blue.jpg", "@sum.jpg"]
    for name, colour in zip(names_, ["red", "green", "red", "blue", "yellow"]):
        make_photo(root / name, colour)
    cli("--model", COLOUR_MODEL, "index", str(root))
    cli("tag", "--labels", "red, green, blue, yellow", "--name", "+colours")
    cli("tag", "--labels", "red, white")
    out = tmp_path / "labels.csv"
    result = cli("labels", "--csv", str(out), "--set", "+colours")
    assert "Wrote 5 labels" in result.stderr
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "set", "label", "probability"]
    got = {r[0]: r for r in rows[1:]}
    assert len(got) == 5 and all(len(r) == 4 for r in rows)
    assert got[str(root / names_[0])][2] == "red"
    assert got[str(root / names_[1])][2] == "green"  # the newline kept inside its cell
    assert got[str(root / names_[2])][2] == "red"
    for row in rows[1:]:
        assert row[1] == "'+colours"
        assert not row[0].startswith(("=", "+", "-", "@"))
    everything = tmp_path / "all.csv"
    cli("labels", "--csv", str(everything))
    with open(everything, newline="", encoding="utf-8") as handle:
        assert len(list(csv.reader(handle))) == 1 + 10


def test_safe_search_from_the_command_line(cli: CliRunner, photos: Path) -> None:
    cli("--model", COLOUR_MODEL, "index", str(photos))
    missing = cli("search", "red", "--safe", check=False)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "clipdesk tag --preset moderation" in missing.stderr
    # The colour model finds every photo 80% "not safe" (it knows no moderation word).
    cli("tag", "--preset", "moderation", "--in", str(photos / "trip"))
    assert sorted(names(run_json(cli, "search", "red", "-n", "3"))) == ["red1", "red2", "red3"]
    assert sorted(names(run_json(cli, "search", "red", "-n", "3", "--safe"))) == ["red1", "red2", "yellow1"]
    assert len(run_json(cli, "list", "--safe")) == 6  # type: ignore[arg-type]
    assert run_json(cli, "safe-search") == {"enabled": False, "threshold": 0.5, "moderation_applied": True}
    cli("safe-search", "on")
    assert len(run_json(cli, "list")) == 6  # type: ignore[arg-type]
    assert "red3" not in names(run_json(cli, "similar", str(photos / "red1.jpg")))
    cli("safe-search", "on", "--threshold", "0.9")
    assert len(run_json(cli, "list")) == 8  # type: ignore[arg-type]
    cli("safe-search", "off", "--threshold", "0.5")
    assert len(run_json(cli, "list")) == 8  # type: ignore[arg-type]
    bad = cli("safe-search", "on", "--threshold", "0", check=False)
    assert bad.returncode == 2 and "threshold" in bad.stderr
