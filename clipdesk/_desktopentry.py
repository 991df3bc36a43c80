"""clipdesk's place on a freedesktop desktop: its application id, launcher, icons and AppStream data.

The files live in the package (`clipdesk/_resources/`) so that a pip install carries them;
`clipdesk desktop install` copies them under $XDG_DATA_HOME for that user. Qt-free.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ._errors import ClipdeskError

# One id everywhere: desktop file, metainfo, icon name and QGuiApplication.setDesktopFileName
# (Wayland compositors match windows to launchers by it).
APP_ID = "io.github.clipdesk.clipdesk"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)

_RESOURCES = Path(__file__).resolve().with_name("_resources")


def resource_dir() -> Path:
    """The folder holding the desktop file, the metainfo and the icon theme folder."""
    return _RESOURCES


def icon_root() -> Path:
    """The package's hicolor icon folder (`scalable/apps/ID.svg`, `NxN/apps/ID.png`)."""
    return _RESOURCES / "icons" / "hicolor"


def svg_icon() -> Path:
    """The scalable icon (the window icon on every platform)."""
    return icon_root() / "scalable" / "apps" / f"{APP_ID}.svg"


def desktop_file() -> Path:
    return _RESOURCES / f"{APP_ID}.desktop"


def metainfo_file() -> Path:
    return _RESOURCES / f"{APP_ID}.metainfo.xml"


def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share where it is unset or not absolute (as the spec says)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


@dataclass(frozen=True)
class Placement:
    """One file `desktop install` writes: where it comes from and where it goes."""

    source: Path
    target: Path


def placements(home: Path) -> list[Placement]:
    """Every file `desktop install` writes under the data folder `home`, and its source."""
    items = [
        Placement(desktop_file(), home / "applications" / f"{APP_ID}.desktop"),
        Placement(metainfo_file(), home / "metainfo" / f"{APP_ID}.metainfo.xml"),
        Placement(svg_icon(), home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"),
    ]
    for size in ICON_SIZES:
        rel = Path(f"{size}x{size}") / "apps" / f"{APP_ID}.png"
        items.append(Placement(icon_root() / rel, home / "icons" / "hicolor" / rel))
    return items


def _exec_quote(arg: str) -> str:
    """One argument of a desktop file's Exec= key, quoted as the Desktop Entry spec asks."""
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", arg):
        quoted = arg
    else:
        quoted = '"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"'
    # A literal % is %%; then the key's value is a string, whose own escape is \\.
    return quoted.replace("%", "%%").replace("\\", "\\\\")


def launcher_command() -> list[str]:
    """How the desktop starts this installation's app: its clipdesk-gui, else `python -m clipdesk gui`."""
    beside = Path(sys.executable).with_name("clipdesk-gui")
    found = beside if beside.is_file() and os.access(beside, os.X_OK) else None
    if found is None:
        which = shutil.which("clipdesk-gui")
        found = Path(which) if which else None
    if found is not None:
        return [str(found.resolve())]
    return [str(Path(sys.executable).resolve()), "-m", "clipdesk", "gui"]


def installed_desktop_entry(command: list[str]) -> str:
    """The packaged desktop file with Exec= and TryExec= pointing at this installation."""
    text = desktop_file().read_text(encoding="utf-8")
    exec_line = " ".join(_exec_quote(a) for a in command) + " %F"
    text = re.sub(r"(?m)^Exec=.*$", lambda _: f"Exec={exec_line}", text)
    try_exec = f"TryExec={_exec_quote(command[0])}" if len(command) == 1 else ""
    text = re.sub(r"(?m)^TryExec=.*\n", lambda _: f"{try_exec}\n" if try_exec else "", text)
    return text


def _refresh_caches(home: Path) -> None:
    # Menus and icon caches pick new files up without this on most desktops; where the
    # tools exist, running them makes it immediate. Their failure is not ours to report.
    for tool, args in (("update-desktop-database", [str(home / "applications")]),
                       ("gtk-update-icon-cache", ["-q", "-t", "-f", str(home / "icons" / "hicolor")])):
        path = shutil.which(tool)
        if path:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run([path, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=30, check=False)


def _require_freedesktop() -> None:
    if sys.platform in ("win32", "darwin"):
        raise ClipdeskError(
            "`clipdesk desktop` adds clipdesk to Linux desktop menus; on Windows and macOS use the "
            "installer or app bundle instead."
        )


def install(home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Put the launcher, icons and metainfo under the user's data folder; returns the files written."""
    _require_freedesktop()
    home = data_home() if home is None else home
    written: list[Path] = []
    try:
        for item in placements(home):
            item.target.parent.mkdir(parents=True, exist_ok=True)
            if item.source == desktop_file():
                entry = installed_desktop_entry(command or launcher_command())
                item.target.write_text(entry, encoding="utf-8")
            else:
                shutil.copyfile(item.source, item.target)
            written.append(item.target)
    except OSError as exc:
        raise ClipdeskError(f"Could not write {exc.filename or home}: {exc.strerror or exc}.") from None
    _refresh_caches(home)
    return written


def uninstall(home: Path | None = None) -> list[Path]:
    """Remove what `install` wrote (and nothing else); returns the files removed."""
    _require_freedesktop()
    home = data_home() if home is None else home
    removed: list[Path] = []
    for item in placements(home):
        try:
            item.target.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ClipdeskError(f"Could not remove {item.target}: {exc.strerror or exc}.") from None
        removed.append(item.target)
    if removed:
        _refresh_caches(home)
    return removed
