"""Before Qt starts: no display, or Qt's platform libraries missing, is one sentence and status 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from clipdesk._gui import displaycheck

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland checks are Linux's")


@pytest.mark.parametrize(("soname", "package"), [
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb.so.1", "libxcb1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libEGL.so.1", "libegl1"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
])
def test_debian_package_for_a_missing_library(soname, package):
    assert displaycheck.debian_package(soname) == package


def test_missing_libraries_are_one_sentence_with_the_packages_to_install():
    text = displaycheck.missing_libraries_message(["libxcb-icccm.so.4", "libxcb-keysyms.so.1"], debian=True)
    assert text == (
        "The window cannot open: Qt needs the system libraries libxcb-icccm.so.4 and libxcb-keysyms.so.1, "
        "which are missing; install them with `sudo apt install libxcb-icccm4 libxcb-keysyms1`."
    )
    other = displaycheck.missing_libraries_message(["libEGL.so.1"], debian=False)
    assert other.endswith("libEGL.so.1, which is missing; install it with your system's package manager.")


def test_the_loader_error_names_the_missing_library():
    error = "libEGL.so.1: cannot open shared object file: No such file or directory"
    assert displaycheck.missing_from_error(error) == ["libEGL.so.1"]


@linux_only
def test_no_display_is_said_in_one_sentence():
    assert displaycheck.problem({}) == displaycheck.NO_DISPLAY
    assert displaycheck.problem({"DISPLAY": ":987"}) == displaycheck.NO_DISPLAY  # nothing answers there
    assert displaycheck.problem({"QT_QPA_PLATFORM": "offscreen"}) is None  # chosen on purpose


@pytest.fixture
def fake_x_server():
    """Something answering on display :987's (abstract) socket, as an X server would."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0/tmp/.X11-unix/X987")
    server.listen(4)
    yield ":987"
    server.close()


@linux_only
def test_missing_platform_libraries_are_found_before_qt_aborts(fake_x_server, monkeypatch):
    seen: list[Path] = []

    def missing(path: Path) -> list[str]:
        seen.append(path)
        return ["libxcb-cursor.so.0"]

    monkeypatch.setattr(displaycheck, "missing_libraries", missing)
    text = displaycheck.problem({"DISPLAY": fake_x_server})
    assert text is not None and "libxcb-cursor.so.0" in text
    assert [p.name for p in seen] == ["libqxcb.so"]  # PySide6's own xcb plugin is the one looked at
    monkeypatch.setattr(displaycheck, "missing_libraries", lambda path: [])
    assert displaycheck.problem({"DISPLAY": fake_x_server}) is None


@linux_only
def test_missing_libraries_reads_what_the_loader_cannot_find(tmp_path):
    assert displaycheck.missing_libraries(Path(sys.executable).resolve()) == []


@linux_only
def test_gui_without_a_display_says_so_and_exits_1(data_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["CLIPDESK_DATA_DIR"] = str(data_dir)
    result = subprocess.run([sys.executable, "-m", "clipdesk", "gui"], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 1  # not Qt's abort (-6)
    assert result.stderr == f"clipdesk: {displaycheck.NO_DISPLAY}\n"
