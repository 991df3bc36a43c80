"""The log file: the platform's log folder, --verbose on the terminal, crash traces beside it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import platformdirs

from clipdesk import _logfile as logfile


def test_the_log_lives_in_the_platforms_log_folder(monkeypatch):
    monkeypatch.delenv("CLIPDESK_DATA_DIR", raising=False)
    expected = Path(platformdirs.user_log_dir("clipdesk", appauthor=False)) / "clipdesk.log"
    assert logfile.log_path() == expected
    assert logfile.crash_log_path().parent == expected.parent


def test_verbose_prints_clipdesks_debug_records_on_stderr(data_dir, capfd):
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        logfile.install(verbose=True)
        logging.getLogger("clipdesk.test").debug("a detail only --verbose shows")
        logging.getLogger("PIL.test").debug("another library's chatter")
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
        logging.getLogger("clipdesk").setLevel(logging.NOTSET)
    err = capfd.readouterr().err
    assert "a detail only --verbose shows" in err
    assert "chatter" not in err
    assert "a detail only --verbose shows" in (data_dir / "clipdesk.log").read_text()


def test_a_native_crash_leaves_its_stack_in_the_log_folder(data_dir):
    code = ("from clipdesk import _logfile; _logfile.install()\n"
            "import ctypes; ctypes.string_at(0)\n")  # a segfault, as a bug in native code would
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60, check=False)
    assert result.returncode != 0
    crash = (data_dir / "crash.log").read_text()
    assert "Fatal Python error" in crash and "Current thread" in crash
    assert (os.stat(data_dir / "crash.log").st_mode & 0o077) == 0  # it names the user's files
