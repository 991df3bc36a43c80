"""The window's centre: search box, result controls, and the grid or the first-run page.

Only layout and the grid's own behaviour live here; what a search, a click or a
drop means is the main window's business, wired to the widgets this exposes.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QSlider,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .._library import PHOTO_ORDERS, PhotoOrder
from .delegate import ThumbnailDelegate
from .notice import Notice
from .resultsmodel import ResultsModel
from .searchbox import SearchBox
from .thumbnails import ThumbnailLoader

GRID_BATCH = 500  # rows laid out per step, so a library-sized grid never freezes the window
ORDER_NAMES = {"name": "Name", "newest": "Newest first", "oldest": "Oldest first"}


class ResultsPage(QWidget):
    """Search row, notice, count and sliders, and a stack of the results grid and the empty state."""

    def __init__(
        self,
        model: ResultsModel,
        loader: ThumbnailLoader,
        *,
        relevance: int,
        thumbnail_size: int,
        order: PhotoOrder = "name",
    ) -> None:
        super().__init__()
        self.model = model
        self.search_box = SearchBox()
        self.search_box.setAccessibleName("Search photos")
        self.examples_button = QToolButton()
        self.examples_button.setAutoRaise(True)
        self.examples_button.setToolTip("Example photos in this search; click to remove them")
        self.examples_button.hide()

        self.relevance = QSlider(Qt.Orientation.Horizontal)
        self.relevance.setRange(0, 95)
        self.relevance.setValue(relevance)
        self.relevance.setFixedWidth(140)
        self.relevance.setToolTip(
            "Hide weak matches: the further right, the closer to the best match a photo must be"
        )
        self.relevance.setAccessibleName("Relevance: hide weak matches")
        self.relevance.valueChanged.connect(lambda value: model.set_relevance(value / 100))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(64, 256)
        self.size_slider.setValue(min(256, thumbnail_size))
        self.size_slider.setFixedWidth(120)
        self.size_slider.setToolTip("Thumbnail size")
        self.size_slider.setAccessibleName("Thumbnail size")
        self.size_slider.valueChanged.connect(self._size_changed)
        self.count_label = QLabel()
        # Without a search the grid shows every photo, in the order chosen here.
        self.order = QComboBox()
        for key in PHOTO_ORDERS:
            self.order.addItem(ORDER_NAMES[key], key)
        self.order.setCurrentIndex(PHOTO_ORDERS.index(order))
        self.order.setToolTip("The order of your photos while nothing is searched")
        self.order.setAccessibleName("Sort photos")

        top = QHBoxLayout()
        top.addWidget(self.search_box, 1)
        top.addWidget(self.examples_button)
        controls = QHBoxLayout()
        controls.addWidget(self.count_label, 1)
        self._order_label = QLabel("Sort:")
        controls.addWidget(self._order_label)
        controls.addWidget(self.order)
        controls.addSpacing(12)
        relevance_label, size_label = QLabel("Relevance:"), QLabel("Size:")
        controls.addWidget(relevance_label)
        controls.addWidget(self.relevance)
        controls.addSpacing(12)
        controls.addWidget(size_label)
        controls.addWidget(self.size_slider)
        self._result_controls = (self.count_label, relevance_label, self.relevance, size_label, self.size_slider)
        self._relevance_controls = (relevance_label, self.relevance)
        self._empty = False
        self._browsing = True
        self._filter_row: QWidget | None = None

        self.view = self._build_grid(loader)
        self.empty, self.empty_add = self._build_empty_state()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty)
        self.pages.addWidget(self.view)
        self.notice = Notice()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addLayout(top)
        layout.addWidget(self.notice)
        layout.addLayout(controls)
        layout.addWidget(self.pages, 1)
        self.pages.setCurrentWidget(self.view)
        self._show_controls()

    def set_filter_row(self, row: QWidget) -> None:
        """Put the filter row under the search box, above the count and the grid."""
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(layout.indexOf(self.pages) - 1, row)  # before the row of result controls
        self._filter_row = row
        self._show_controls()

    def _build_grid(self, loader: ThumbnailLoader) -> QListView:
        view = QListView()
        view.setViewMode(QListView.ViewMode.IconMode)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setMovement(QListView.Movement.Static)
        view.setUniformItemSizes(True)
        view.setLayoutMode(QListView.LayoutMode.Batched)
        view.setBatchSize(GRID_BATCH)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.setDragEnabled(True)
        view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        view.setDefaultDropAction(Qt.DropAction.CopyAction)
        view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.delegate = ThumbnailDelegate(loader, view)
        self.delegate.cell = self.size_slider.value()
        view.setItemDelegate(self.delegate)
        view.setAccessibleName("Results")
        view.setModel(self.model)
        # Rows scrolled past need no thumbnails: drop their queued jobs; painting re-queues what
        # is on screen now.
        view.verticalScrollBar().valueChanged.connect(lambda _: loader.clear_queue())
        return view

    @staticmethod
    def _build_empty_state() -> tuple[QWidget, QPushButton]:
        empty = QWidget()
        title = QLabel("<h2>Make your photos searchable</h2>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        body = QLabel(
            "Add a folder of photos. clipdesk indexes it in the background, on this computer "
            "only; then describe what you are looking for.\nYou can also drop a folder on this window."
        )
        body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        body.setWordWrap(True)
        add = QPushButton("Add folder…")
        layout = QVBoxLayout(empty)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(body)
        layout.addWidget(add, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        return empty, add

    def _size_changed(self, value: int) -> None:
        self.delegate.cell = value
        self.view.setIconSize(QSize(value, value))  # makes the view lay its grid out again
        self.view.doItemsLayout()

    def photo_order(self) -> PhotoOrder:
        return PHOTO_ORDERS[max(0, self.order.currentIndex())]

    def show_empty_state(self, empty: bool) -> None:
        """The first-run page instead of the grid (no folders, nothing to show)."""
        self._empty = empty
        self.pages.setCurrentWidget(self.empty if empty else self.view)
        self._show_controls()

    def _show_controls(self) -> None:
        # Sorting applies to the unsearched grid, relevance to search results.
        for widget in self._result_controls:
            idle = self._browsing and widget in self._relevance_controls
            widget.setVisible(not self._empty and not idle)
        if self._filter_row is not None:
            self._filter_row.setVisible(not self._empty)
        self._order_label.setVisible(not self._empty and self._browsing)
        self.order.setVisible(not self._empty and self._browsing)

    def show_count(self, *, browsing: bool, has_photos: bool) -> None:
        """The line above the grid: how many photos or matches, and whether some are hidden."""
        if browsing != self._browsing:
            self._browsing = browsing
            self._show_controls()
        shown, total = self.model.rowCount(), self.model.total
        if browsing:
            text = f"{total:,} photos" if total else ""
        elif total == 0:
            text = "No matches." if has_photos else "No photos indexed yet."
        elif shown < total:
            text = f"{shown:,} of {total:,} matches (weaker ones hidden)"
        else:
            text = f"{total:,} matches, best first"
        self.count_label.setText(text)

    def show_examples(self, count: int) -> None:
        """The button naming the example photos in the search (hidden when there are none)."""
        self.examples_button.setText(f"like {count} photo{'s' if count != 1 else ''} ✕")
        self.examples_button.setVisible(count > 0)

    def selected_rows(self) -> list[int]:
        """Selected rows in order; the current row when nothing is selected."""
        rows = sorted(i.row() for i in self.view.selectionModel().selectedIndexes())
        if not rows and self.view.currentIndex().isValid():
            rows = [self.view.currentIndex().row()]
        return rows
