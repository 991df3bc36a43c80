"""Before Qt starts: is there a display, and can Qt's platform plugin load? Qt-free.

Without a display, or with a system library its platform plugin needs missing, Qt prints
a paragraph and aborts the process (a core dump). We look first, in a few milliseconds,
and say in one sentence what is missing and, on Debian and Ubuntu, what to install.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

# Platforms that need no display server: the user (or a test) chose them on purpose.
_HEADLESS = {"offscreen", "minimal", "minimalegl", "vnc", "eglfs", "linuxfb", "vkkhrdisplay"}

# Where the Debian package is not simply the library's name with its version appended.
_DEBIAN_PACKAGES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}

NO_DISPLAY = (
    "There is no display to show the window on (neither DISPLAY nor WAYLAND_DISPLAY is set, or "
    "nothing answers there): start clipdesk from your desktop, or use the command line instead "
    "(`clipdesk --help`)."
)


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that provides a shared library, e.g. libxcb-icccm.so.4 → libxcb-icccm4."""
    if soname in _DEBIAN_PACKAGES:
        return _DEBIAN_PACKAGES[soname]
    match = re.fullmatch(r"(lib[\w+-]+?)\.so\.(\d+)(?:\.\d+)*", soname)
    if not match:
        return soname.split(".so")[0].lower()
    name, version = match.group(1).lower(), match.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def _is_debian_like() -> bool:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    fields = dict(re.findall(r'(?m)^(ID|ID_LIKE)="?([^"\n]*)"?$', text))
    words = f"{fields.get('ID', '')} {fields.get('ID_LIKE', '')}".split()
    return "debian" in words or "ubuntu" in words


def missing_libraries_message(missing: list[str], debian: bool | None = None) -> str:
    """One sentence naming the missing system libraries and, on Debian/Ubuntu, the packages to install."""
    names = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    plural = len(missing) > 1
    text = (f"The window cannot open: Qt needs the system librar{'ies' if plural else 'y'} {names}, "
            f"which {'are' if plural else 'is'} missing")
    if _is_debian_like() if debian is None else debian:
        packages = " ".join(dict.fromkeys(debian_package(m) for m in missing))
        return f"{text}; install {'them' if len(missing) > 1 else 'it'} with `sudo apt install {packages}`."
    return f"{text}; install {'them' if len(missing) > 1 else 'it'} with your system's package manager."


def _connects(address: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(address)
        except OSError:
            return False
        return True


def x11_reachable(display: str | None) -> bool:
    """True if an X server is set and, where it is a local one, answers on its socket."""
    if not display:
        return False
    match = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if not match:
        return True  # a remote or unusual display (ssh -X, host:0): Qt will find out
    socket_path = f"/tmp/.X11-unix/X{match.group(1)}"
    # Linux X servers listen on an abstract socket too; containers often share only that one.
    return _connects("\0" + socket_path) or _connects(socket_path)


def wayland_reachable(name: str | None, runtime_dir: str | None) -> bool:
    """True if a Wayland compositor answers on WAYLAND_DISPLAY."""
    if not name:
        return False
    path = name if os.path.isabs(name) else os.path.join(runtime_dir or "", name)
    return bool(runtime_dir or os.path.isabs(name)) and _connects(path)


def plugin_path(name: str) -> Path | None:
    """PySide6's platform plugin library for this platform name (xcb, wayland), without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "Qt" / "plugins" / "platforms" / f"libq{name}.so"
        if candidate.is_file():
            return candidate
    return None


def missing_libraries(library: Path) -> list[str]:
    """The shared libraries this library needs that the system does not have (empty when it loads)."""
    ldd = shutil.which("ldd")
    if ldd:
        try:
            out = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=10,
                                 check=False).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        found = re.findall(r"(?m)^\s*(\S+) => not found", out)
        if found:
            return list(dict.fromkeys(found))
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        return missing_from_error(str(exc))
    return []


def missing_from_error(message: str) -> list[str]:
    """The library a loader error names ('libEGL.so.1: cannot open shared object file…')."""
    return re.findall(r"(lib[^\s:/]+\.so[.\d]*): cannot open shared object file", message)


def problem(environ: dict[str, str] | None = None) -> str | None:
    """Why Qt could not show a window here, as one sentence; None where it can (or where we cannot tell)."""
    if not sys.platform.startswith("linux"):
        return None  # Windows and macOS always have their one platform plugin's display
    env = os.environ if environ is None else environ
    requested = [p.split(":")[0].strip() for p in env.get("QT_QPA_PLATFORM", "").split(";") if p.strip()]
    if requested and requested[0] in _HEADLESS:
        return None
    x11 = x11_reachable(env.get("DISPLAY"))
    wayland = wayland_reachable(env.get("WAYLAND_DISPLAY"), env.get("XDG_RUNTIME_DIR"))
    plugins = [name for name, usable in (("wayland", wayland), ("xcb", x11))
               if usable and (not requested or any(r.startswith(name) for r in requested))]
    if not plugins:
        return NO_DISPLAY
    missing: list[str] = []
    for name in plugins:
        path = plugin_path(name)
        if path is None:
            return None  # an unusual Qt build: let Qt itself decide
        missing = missing_libraries(path)
        if not missing:
            return None
    return missing_libraries_message(missing)
