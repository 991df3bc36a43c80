"""Render clipdesk's icon from its SVG: hicolor PNGs (16-512 px) for Linux, .ico and .icns for bundles.

Run after changing the SVG, and commit what it writes:

    QT_QPA_PLATFORM=offscreen python packaging/make_icons.py

The PNGs go beside the SVG inside the package (so `clipdesk desktop install` finds them in a
pip install); the .ico and .icns go to packaging/icons/, for the Windows and macOS bundles.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clipdesk._desktopentry import APP_ID, ICON_SIZES, icon_root  # noqa: E402

ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # Windows reads up to 256
OUT = ROOT / "packaging" / "icons"


def render(renderer: QSvgRenderer, size: int) -> Image.Image:
    """The SVG drawn at size x size, antialiased, on a transparent background."""
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(data.data()))).convert("RGBA")


def main() -> int:
    _app = QGuiApplication(sys.argv[:1])
    svg = icon_root() / "scalable" / "apps" / f"{APP_ID}.svg"
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        print(f"cannot read {svg}", file=sys.stderr)
        return 1
    images = {size: render(renderer, size) for size in sorted({*ICON_SIZES, *ICO_SIZES, 1024})}
    for size in ICON_SIZES:
        target = icon_root() / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        # No timestamps or other chunks: the same SVG gives the same bytes, so git sees no change.
        images[size].save(target, optimize=True)
        print(target.relative_to(ROOT))
    OUT.mkdir(parents=True, exist_ok=True)
    ico = OUT / f"{APP_ID}.ico"
    images[256].save(ico, sizes=[(s, s) for s in ICO_SIZES],
                     append_images=[images[s] for s in ICO_SIZES if s != 256])
    icns = OUT / f"{APP_ID}.icns"
    images[1024].save(icns, append_images=[images[s] for s in (16, 32, 64, 128, 256, 512)])
    for path in (ico, icns):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
