"""Start-up: no torch on the way to the window; the screenshot command works end to end."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from PIL import Image


def modules_imported(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """Run code in a fresh interpreter; the modules starting with these prefixes it imported."""
    code += f"\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith({prefixes!r})))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(ast.literal_eval(out.stdout))


def test_gui_startup_modules_do_not_import_torch():
    code = (
        "import clipdesk._cli, clipdesk._gui.app, clipdesk._gui.mainwindow, clipdesk._gui.worker\n"
        "import clipdesk._gui.thumbnails, clipdesk._gui.classifypanel, clipdesk._gui.settingsdialog\n"
    )
    assert modules_imported(code, ("torch", "transformers")) == []


def test_the_command_line_parser_does_not_import_the_gui():
    code = (
        "from clipdesk._cli import build_parser\n"
        "args = build_parser().parse_args(['gui', '--add', 'x', '--size', '800x600'])\n"
        "assert args.add == ['x'] and args.size == '800x600'\n"
    )
    assert modules_imported(code, ("clipdesk._gui", "PySide6")) == []


def test_screenshot_command_indexes_searches_classifies_and_saves(photos, data_dir, tmp_path):
    shot = tmp_path / "shot.png"
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-m", "clipdesk", "gui", "--db", str(data_dir / "lib.db"),
         "--model", "clipdesk-test:colours", "--add", str(photos), "--query", "red",
         "--classify", str(photos / "blue1.jpg"), "--labels", "red, blue",
         "--size", "900x600", "--screenshot", str(shot)],
        check=False, capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with Image.open(shot) as image:
        assert image.size[0] >= 900  # HiDPI screens give more pixels, never fewer


def test_gui_command_errors_are_one_line(data_dir):
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-m", "clipdesk", "gui", "--classify", "x.jpg", "--screenshot", "x.png"],
        check=False, capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "clipdesk: --classify needs --labels 'a,b,…' or --preset NAME."


def test_sigterm_closes_the_window_cleanly(photos, data_dir):
    import signal
    import time

    from clipdesk._library import Library, LibraryOptions

    db = data_dir / "lib.db"
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(
        [sys.executable, "-m", "clipdesk", "gui", "--db", str(db), "--model", "clipdesk-test:colours",
         "--add", str(photos)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                with Library(LibraryOptions(db_path=db)) as library:
                    if library.folders():
                        break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    with Library(LibraryOptions(db_path=db)) as library:
        assert library.store.integrity() == "ok"
