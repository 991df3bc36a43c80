"""Paints one result cell: the thumbnail fitted in a square, the file name under it.

Painting asks the thumbnail loader for the row's picture, so only rows on
screen are ever decoded.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from .resultsmodel import ImageIdRole, PathRole
from .thumbnails import ThumbnailLoader

PADDING = 6



def draw_fitted(painter: QPainter, pixmap: QPixmap, box: QRect) -> None:
    """Draw a thumbnail as large as fits in box, centred, keeping its aspect ratio."""
    size = pixmap.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
    target = QRect(0, 0, size.width(), size.height())
    target.moveCenter(box.center())
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.drawPixmap(target, pixmap)


class ThumbnailDelegate(QStyledItemDelegate):
    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.cell = 160  # logical pixels for the picture square

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        text = option.fontMetrics.height()
        return QSize(self.cell + 2 * PADDING, self.cell + text + 3 * PADDING)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        style = opt.widget.style() if opt.widget else None
        painter.save()
        if style is not None:
            opt.text = ""
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, opt.widget)
        rect = opt.rect
        square = QRect(rect.x() + PADDING, rect.y() + PADDING, self.cell, self.cell)
        image_id = index.data(ImageIdRole)
        path = index.data(PathRole)
        pixmap = self.loader.pixmap(int(image_id), str(path)) if image_id is not None else None
        if pixmap is not None and not pixmap.isNull():
            draw_fitted(painter, pixmap, square)
        else:
            painter.fillRect(square, opt.palette.color(QPalette.ColorRole.AlternateBase))
            if image_id is not None and int(image_id) in self.loader.failed:
                painter.setPen(opt.palette.color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(square, Qt.AlignmentFlag.AlignCenter, "cannot read")
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(opt.palette.color(role))
        text_rect = QRect(
            rect.x() + PADDING, square.bottom() + PADDING // 2, self.cell, opt.fontMetrics.height() + PADDING
        )
        name = opt.fontMetrics.elidedText(str(index.data()), Qt.TextElideMode.ElideMiddle, self.cell)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, name)
        painter.restore()
