"""Handing files to the desktop: open in the system viewer, show in the file manager."""

from __future__ import annotations

import os
import shutil
import sys

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices


def open_file(path: str) -> bool:
    """Open a photo in the user's default viewer; False if nothing could open it."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def show_in_folder(path: str) -> bool:
    """Show the file manager with this file selected where the platform allows, else its folder."""
    if sys.platform == "win32":
        return QProcess.startDetached("explorer.exe", ["/select,", os.path.normpath(path)])[0]
    if sys.platform == "darwin":
        return QProcess.startDetached("open", ["-R", path])[0]
    # freedesktop file managers (Nautilus, Dolphin, Nemo, Thunar…) select the file over D-Bus.
    dbus_send = shutil.which("dbus-send")
    if dbus_send and os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        uri = QUrl.fromLocalFile(path).toString()
        started, _ = QProcess.startDetached(dbus_send, [
            "--session", "--print-reply", "--dest=org.freedesktop.FileManager1",
            "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1.ShowItems",
            f"array:string:{uri}", "string:",
        ])
        if started:
            return True
    return QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path)))
