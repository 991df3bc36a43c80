"""Desktop integration: one application id, valid launcher and metainfo, icons, `clipdesk desktop`."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from clipdesk import _desktopentry as desktop
from clipdesk._cli import main

ROOT = Path(__file__).resolve().parent.parent


def _entry(text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser["Desktop Entry"]


def test_one_application_id_everywhere():
    assert desktop.desktop_file().name == f"{desktop.APP_ID}.desktop"
    assert _entry(desktop.desktop_file().read_text())["Icon"] == desktop.APP_ID
    meta = ET.parse(desktop.metainfo_file()).getroot()
    assert meta.findtext("id") == desktop.APP_ID
    assert meta.findtext("launchable") == f"{desktop.APP_ID}.desktop"
    assert desktop.svg_icon().name == f"{desktop.APP_ID}.svg"


def test_the_window_carries_the_application_id_and_icon(qapp):
    from PySide6.QtGui import QGuiApplication

    from clipdesk._gui.app import identify

    identify(qapp)
    assert QGuiApplication.desktopFileName() == desktop.APP_ID
    assert not qapp.windowIcon().isNull()


@pytest.mark.skipif(not shutil.which("desktop-file-validate"),
                    reason="desktop-file-validate is not installed (Debian package desktop-file-utils)")
def test_desktop_file_passes_desktop_file_validate():
    result = subprocess.run(["desktop-file-validate", str(desktop.desktop_file())],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("appstreamcli"),
                    reason="appstreamcli is not installed (Debian package appstream)")
def test_metainfo_passes_appstreamcli_validate():
    result = subprocess.run(["appstreamcli", "validate", "--no-net", str(desktop.metainfo_file())],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_png_icons_from_16_to_512_pixels_beside_the_svg():
    for size in (16, 32, 48, 64, 128, 256, 512):
        path = desktop.icon_root() / f"{size}x{size}" / "apps" / f"{desktop.APP_ID}.png"
        with Image.open(path) as image:
            assert image.size == (size, size)
            assert image.mode == "RGBA"
            assert image.getextrema()[3][0] == 0  # a transparent background, not a white square


def test_ico_and_icns_for_the_other_platforms():
    with Image.open(ROOT / "packaging" / "icons" / f"{desktop.APP_ID}.ico") as ico:
        assert ico.format == "ICO"
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(ROOT / "packaging" / "icons" / f"{desktop.APP_ID}.icns") as icns:
        assert icns.format == "ICNS"
        assert (512, 512, 1) in icns.info["sizes"]


def test_packaged_resources_are_package_data():
    # A pip install (not editable) carries only what pyproject.toml lists as package data.
    from pathlib import PurePosixPath

    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = [PurePosixPath(p) for p in config["tool"]["setuptools"]["package-data"]["clipdesk"]]
    for item in desktop.placements(Path("/unused")):
        rel = PurePosixPath(item.source.relative_to(ROOT / "clipdesk").as_posix())
        assert any(len(p.parts) == len(rel.parts) and rel.match(str(p)) for p in patterns), rel


def test_desktop_install_puts_launcher_icons_and_metainfo_under_xdg_data_home(tmp_path, monkeypatch, capsys):
    home = tmp_path / "share with space"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    assert main(["desktop", "install"]) == 0
    assert "desktop uninstall" in capsys.readouterr().out
    launcher = home / "applications" / f"{desktop.APP_ID}.desktop"
    entry = _entry(launcher.read_text())
    # Exec= names this installation's launcher, so a venv's clipdesk starts from the menu.
    program = entry["Exec"].removesuffix(" %F")
    assert entry["Exec"].endswith(" %F")
    assert program.split()[0].startswith("/") or program.startswith('"/')
    assert (home / "metainfo" / f"{desktop.APP_ID}.metainfo.xml").is_file()
    assert (home / "icons" / "hicolor" / "scalable" / "apps" / f"{desktop.APP_ID}.svg").is_file()
    assert (home / "icons" / "hicolor" / "256x256" / "apps" / f"{desktop.APP_ID}.png").is_file()
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(["desktop-file-validate", str(launcher)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout

    assert main(["desktop", "uninstall"]) == 0
    assert not launcher.exists()
    assert not list(p for p in home.rglob(f"{desktop.APP_ID}*"))
    assert main(["desktop", "uninstall"]) == 0
    assert "was not in your desktop's menus" in capsys.readouterr().out


def test_exec_arguments_are_quoted_as_the_desktop_entry_spec_asks(tmp_path):
    text = desktop.installed_desktop_entry(['/opt/my apps/py"thon', "-m", "clipdesk", "gui"])
    entry = _entry(text)
    # Value escapes (\\) first, then Exec quoting: "…\"…" with the inner quote escaped.
    assert entry["Exec"] == '"/opt/my apps/py\\\\"thon" -m clipdesk gui %F'
    assert "TryExec" not in entry
    if shutil.which("desktop-file-validate"):
        path = tmp_path / f"{desktop.APP_ID}.desktop"
        path.write_text(text)
        result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_the_launchers_exec_line_adds_the_folders_it_is_given(photos, data_dir, tmp_path):
    # Exec=clipdesk-gui %F: the file manager passes folders as plain arguments.
    db = data_dir / "lib.db"
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from clipdesk._gui.app import main; sys.exit(main())",
         "--db", str(db), "--model", "clipdesk-test:colours", "--screenshot", str(tmp_path / "s.png"),
         str(photos)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    from clipdesk._store import Store

    with Store(db, create=False) as store:
        assert [f.path for f in store.folders()] == [str(photos)]
        assert store.count_images() > 0
