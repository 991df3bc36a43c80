"""Paints one classified photo: its thumbnail, its name, and a bar per label, best first."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from .classifymodel import ErrorRole, KeyRole, PathRole, RankedRole
from .delegate import draw_fitted
from .thumbnails import ThumbnailLoader

BARS = 5  # labels shown per photo; the tooltip has them all
THUMB = 64


class ProbabilityDelegate(QStyledItemDelegate):
    """A thumbnail, the file name, then one bar per label, best first."""

    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        line = option.fontMetrics.height() + 4
        bars = max(1, min(BARS, len(index.data(RankedRole) or [])))
        return QSize(200, max(THUMB + 8, line * (bars + 1) + 8))  # the view gives rows its full width

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        opt.icon = opt.icon.__class__()
        if opt.widget is not None:
            opt.widget.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, opt.widget)
        painter.save()
        rect = opt.rect.adjusted(4, 4, -4, -4)
        thumb = QRect(rect.x(), rect.y(), THUMB, THUMB)
        pixmap = self.loader.pixmap(int(index.data(KeyRole)), str(index.data(PathRole)))
        if pixmap is not None:
            draw_fitted(painter, pixmap, thumb)
        else:
            painter.fillRect(thumb, opt.palette.color(QPalette.ColorRole.AlternateBase))
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text = opt.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        fm = opt.fontMetrics
        line = fm.height() + 4
        x = thumb.right() + 10
        width = max(40, rect.right() - x)
        painter.setPen(text)
        bold = painter.font()
        bold.setBold(True)
        painter.setFont(bold)
        painter.drawText(QRect(x, rect.y(), width, line), Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(str(index.data()), Qt.TextElideMode.ElideMiddle, width))
        painter.setFont(opt.font)
        error = index.data(ErrorRole)
        if error:
            painter.setPen(opt.palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(QRect(x, rect.y() + line, width, line), Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(str(error), Qt.TextElideMode.ElideRight, width))
        ranked = (index.data(RankedRole) or [])[:BARS]
        longest = max((fm.horizontalAdvance(label) for label, _ in ranked), default=0)
        label_w = min(longest + 12, width // 2)
        pct_w = fm.horizontalAdvance("100.0%") + 8
        bar_w = max(10, width - label_w - pct_w)
        accent = opt.palette.color(QPalette.ColorRole.Highlight)
        track = opt.palette.color(QPalette.ColorRole.AlternateBase)
        for n, (label, p) in enumerate(ranked):
            y = rect.y() + line * (n + 1)
            painter.setPen(text)
            painter.drawText(QRect(x, y, label_w - 6, line), Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(label, Qt.TextElideMode.ElideRight, label_w - 6))
            bar = QRect(x + label_w, y + 3, bar_w, line - 6)
            painter.fillRect(bar, track)
            painter.fillRect(QRect(bar.x(), bar.y(), max(1, round(bar_w * p)), bar.height()),
                             accent if n == 0 else accent.lighter(150) if accent.lightness() < 128 else accent.darker(130))
            painter.drawText(QRect(bar.right() + 4, y, pct_w, line),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, f"{p * 100:.1f}%")
        painter.restore()
