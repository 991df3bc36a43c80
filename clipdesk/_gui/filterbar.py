"""The filter row above the grid: dates, folders (a tree with counts), type, camera and shape.

It holds what the user chose (`FilterInputs`) and the `Filter` in force, shows
each active filter as a chip that one click removes, and shows the counts the
main window fetches on the worker (`set_choices`); it never touches the library.
"""

from __future__ import annotations

import os
import threading
from functools import partial
from collections.abc import Callable, Sequence

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
    QWidgetAction,
)

from .._facets import FilterChoices
from .._facts import Orientation
from .._filters import Filter
from .._library import Library
from .._paths import display
from .filterstate import FilterInputs, FilterProblem

DATE_DELAY_MS = 600  # typing "2019-07" passes through "2019-0": wait for a pause before applying
PathRole = Qt.ItemDataRole.UserRole + 1
TYPE_LABELS = {"jpeg": "JPEG", "heif": "HEIC", "webp": "WebP"}
SHAPE_LABELS = {Orientation.LANDSCAPE: "Landscape", Orientation.PORTRAIT: "Portrait", Orientation.SQUARE: "Square"}


def type_label(file_type: str) -> str:
    return TYPE_LABELS.get(file_type, file_type.upper())


class FolderTreeModel(QStandardItemModel):
    """The library's folders and every folder inside them, with photo counts; checked ones filter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalHeaderLabels(["Folder", "Photos"])
        self._items: dict[str, QStandardItem] = {}
        self._counts: dict[str, QStandardItem] = {}

    def set_folders(self, roots: Sequence[str], counts: dict[str, int], checked: Sequence[str]) -> None:
        """Show these folders with their counts, checking `checked`; the same folders as shown
        only change their counts (a big library has thousands, and the tree keeps its place)."""
        if counts.keys() == self._items.keys():
            for path, n in counts.items():
                text = f"{n:,}"
                if self._counts[path].text() != text:
                    self._counts[path].setText(text)
            self.set_checked(checked)
            return
        self.removeRows(0, self.rowCount())
        self._items, self._counts = {}, {}
        chosen = set(checked)
        # Parents before their children, and each folder's children by name.
        for path in sorted(counts, key=lambda p: (len(p.split(os.sep)), p.lower())):
            parent = None if path in roots else self._items.get(os.path.dirname(path))
            if parent is None and path not in roots:
                continue
            name = QStandardItem(display(path) if parent is None else os.path.basename(path))
            name.setData(path, PathRole)
            name.setToolTip(display(path))
            name.setEditable(False)
            name.setCheckable(True)
            name.setCheckState(Qt.CheckState.Checked if path in chosen else Qt.CheckState.Unchecked)
            count = QStandardItem(f"{counts[path]:,}")
            count.setEditable(False)
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            (parent.appendRow if parent is not None else self.appendRow)([name, count])
            self._items[path], self._counts[path] = name, count

    def item_for(self, path: str) -> QStandardItem | None:
        return self._items.get(path)

    def count_of(self, path: str) -> int | None:
        """The count shown beside a folder, or None if it is not in the tree."""
        count = self._counts.get(path)
        return None if count is None else int(count.text().replace(",", ""))

    def set_checked(self, paths: Sequence[str]) -> None:
        chosen = set(paths)
        for path, item in self._items.items():
            state = Qt.CheckState.Checked if path in chosen else Qt.CheckState.Unchecked
            if item.checkState() != state:
                item.setCheckState(state)


class FilterBar(QWidget):
    """Date range, folders, type, camera and shape; chips for what is in force."""

    changed = Signal()  # the filter in force changed

    def __init__(self, inputs: FilterInputs = FilterInputs(), parent: QWidget | None = None) -> None:  # noqa: B008
        super().__init__(parent)
        self._inputs = FilterInputs()
        self._filter = Filter()
        self._folders: tuple[str, ...] = ()
        self._types: tuple[str, ...] = ()
        self._choices: FilterChoices | None = None
        self._building = False
        self._counting = threading.Event()
        self.problem: str | None = None

        self.after = self._date_edit("From", "Taken on or after: 2019, 2019-07 or 2019-07-14")
        self.before = self._date_edit("To", "Taken on or before: 2019, 2019-07 or 2019-07-14 (the whole year, "
                                            "month or day)")
        self.folder_model = FolderTreeModel(self)
        self.folder_tree = QTreeView()
        self.folder_tree.setModel(self.folder_model)
        self.folder_tree.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.folder_tree.setMinimumSize(380, 320)
        self.folder_tree.setAccessibleName("Folders to show")
        header = self.folder_tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.folder_model.itemChanged.connect(self._folder_toggled)
        self.folders_button = self._popup_button(
            "Folders", "Show only photos in some folders (and the folders inside them)", self.folder_tree
        )
        # Types are ticked like folders (JPEG and HEIC, say), as `--type jpeg,heic` lists them.
        self.type_model = QStandardItemModel(self)
        self.type_model.itemChanged.connect(self._type_toggled)
        self.type_list = QListView()
        self.type_list.setModel(self.type_model)
        self.type_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.type_list.setMinimumSize(160, 150)
        self.type_list.setAccessibleName("File types to show")
        self.types_button = self._popup_button("Any type", "Show only some types of file", self.type_list)
        self.camera_box = self._combo("Camera", "Show only photos taken with one camera")
        self.shape_box = self._combo("Shape", "Show only landscape, portrait or square photos")
        # Camera names can be long: the closed box shows their start, the list shows them whole.
        self.camera_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.camera_box.setMinimumContentsLength(9)

        self.chip_row = QWidget()
        self.chip_row.setMinimumWidth(1)
        self._chips = QHBoxLayout(self.chip_row)
        self._chips.setContentsMargins(0, 0, 0, 0)
        self.chips: list[QToolButton] = []
        self.clear_button = QPushButton("Clear filters")
        self.clear_button.setToolTip("Show every photo again")
        self.clear_button.clicked.connect(self.clear)
        self.match_label = QLabel()
        self.match_label.setMinimumWidth(1)  # clipped, not widening the window, when narrow
        self.problem_label = QLabel()
        self.problem_label.setStyleSheet("color: #c0392b")
        self.problem_label.hide()

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(QLabel("From"))
        controls.addWidget(self.after)
        controls.addWidget(QLabel("to"))
        controls.addWidget(self.before)
        controls.addSpacing(8)
        for widget in (self.folders_button, self.types_button, self.camera_box, self.shape_box):
            controls.addWidget(widget)
        controls.addStretch(1)
        # The second line (chips, a problem, counts) shows only while it has something to say.
        self.status_row = QWidget()
        chips = QHBoxLayout(self.status_row)
        chips.setContentsMargins(0, 0, 0, 0)
        chips.addWidget(self.chip_row)
        chips.addWidget(self.problem_label)
        chips.addStretch(1)
        chips.addWidget(self.match_label)
        chips.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addWidget(self.status_row)

        self._date_timer = QTimer(self, singleShot=True, interval=DATE_DELAY_MS)
        self._date_timer.timeout.connect(self.apply)
        for edit in (self.after, self.before):
            edit.textChanged.connect(lambda _: self._date_timer.start())
            edit.editingFinished.connect(self.apply)
        self.set_inputs(inputs, quiet=True)

    # -- construction ---------------------------------------------------------------

    def _date_edit(self, name: str, tip: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText("any date")
        edit.setClearButtonEnabled(True)
        edit.setMaximumWidth(92)
        edit.setMinimumWidth(56)  # the row must fit a small screen beside the panels
        edit.setToolTip(tip)
        edit.setAccessibleName(f"{name} date")
        return edit

    @staticmethod
    def _popup_button(text: str, tip: str, content: QWidget) -> QPushButton:
        """A button that opens a list of check boxes (which stays open while they are ticked)."""
        button = QPushButton(text)
        button.setToolTip(tip)
        menu = QMenu(button)
        action = QWidgetAction(menu)
        action.setDefaultWidget(content)
        menu.addAction(action)
        button.setMenu(menu)
        return button

    def _combo(self, name: str, tip: str) -> QComboBox:
        box = QComboBox()
        box.setToolTip(tip)
        box.setAccessibleName(name)
        box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        box.setMinimumWidth(48)  # on a narrow window the closed box shows the start of its choice
        box.currentIndexChanged.connect(lambda _: None if self._building else self.apply())
        return box

    # -- state ------------------------------------------------------------------------

    def current_filter(self) -> Filter:
        """The filter in force (the last valid values the row held)."""
        return self._filter

    def inputs(self) -> FilterInputs:
        """What the row holds now, as typed and chosen (saved between runs)."""
        return FilterInputs(
            after=self.after.text().strip(),
            before=self.before.text().strip(),
            folders=self._folders,
            types=self._types,
            camera=self.camera_box.currentData() or "",
            orientation=self.shape_box.currentData() or "",
        )

    def is_pending(self) -> bool:
        """A typed date waits to be applied."""
        return self._date_timer.isActive()

    def set_inputs(self, inputs: FilterInputs, *, quiet: bool = False) -> None:
        """Show these values and put them in force; `changed` unless quiet."""
        self._building = True
        try:
            self.after.setText(inputs.after)
            self.before.setText(inputs.before)
            self._folders = inputs.folders
            self.folder_model.set_checked(inputs.folders)
            self._types = inputs.types
            self._fill_combos(inputs)
        finally:
            self._building = False
        self._date_timer.stop()
        self.apply(quiet=quiet)

    def clear(self) -> None:
        """Remove every filter (one click on Clear filters)."""
        self.set_inputs(FilterInputs())

    def apply(self, *, quiet: bool = False) -> None:
        """Put what the row holds in force; a problem is shown and the last good filter stays."""
        self._date_timer.stop()
        inputs = self.inputs()
        try:
            keep = inputs.to_filter()
        except FilterProblem as exc:
            self.problem = str(exc)
            self.problem_label.setText(self.problem)
            self.problem_label.show()
            self._show_chips()
            return
        self.problem = None
        self.problem_label.hide()
        self.problem_label.clear()
        self._inputs = inputs
        changed = keep != self._filter
        self._filter = keep
        self._show_chips()
        if changed and not quiet:
            self.changed.emit()

    # -- counts -----------------------------------------------------------------------

    def counting_job(self) -> Callable[[Library], FilterChoices | None]:
        """The work of counting the choices for the filter in force, for the worker thread; it does
        nothing if a later one was asked for before it began (a count is a pass over the library)."""
        self._counting.set()
        stale = self._counting = threading.Event()
        keep = self._filter
        return lambda library: None if stale.is_set() else library.filter_choices(keep)

    def set_choices(self, choices: FilterChoices | None) -> None:
        """Counts from the library (fetched on the worker for the filter in force); None: skipped."""
        if choices is None:
            return
        self._choices = choices
        self._building = True
        try:
            expanded = self._expanded_paths()
            self.folder_model.set_folders(choices.roots, dict(choices.folders), self._folders)
            for index in self._indexes():
                path = index.data(PathRole)
                if path in expanded or (not expanded and path in choices.roots):
                    self.folder_tree.setExpanded(index, True)
            self._fill_combos(self.inputs())
        finally:
            self._building = False
        self._show_matching()

    def _show_matching(self) -> None:
        choices = self._choices
        if choices is None or self._filter.is_empty():
            self.match_label.clear()
            return
        noun = "photo matches" if choices.matching == 1 else "photos match"
        self.match_label.setText(f"{choices.matching:,} of {choices.total:,} {noun} the filters")

    def _fill_combos(self, inputs: FilterInputs) -> None:
        choices = self._choices
        counted = choices is not None  # until the first counts arrive, the choices show without them
        matching = choices.matching if choices else 0
        types = dict(choices.types) if choices else {}
        cameras = dict(choices.cameras) if choices else {}
        shapes = {o.value: n for o, n in choices.orientations} if choices else {}
        self._fill_types(list(types), types, inputs.types, counted)
        self._fill(self.camera_box, "Any camera", list(cameras), cameras, inputs.camera, str, counted, matching)
        self._fill(self.shape_box, "Any shape", [o.value for o in Orientation], shapes, inputs.orientation,
                   lambda value: SHAPE_LABELS[Orientation(value)], counted, matching)

    def _fill_types(self, values: list[str], counts: dict[str, int], chosen: Sequence[str], counted: bool) -> None:
        """The type list with counts, the chosen ones ticked (and listed even where none is left)."""
        values = [*values, *(t for t in chosen if t not in values)]
        self.type_model.clear()
        for value in values:
            item = QStandardItem(f"{type_label(value)} ({counts.get(value, 0):,})" if counted else type_label(value))
            item.setData(value, PathRole)
            item.setEditable(False)
            item.setCheckable(True)
            item.setCheckState(Qt.CheckState.Checked if value in chosen else Qt.CheckState.Unchecked)
            self.type_model.appendRow(item)

    def type_item(self, file_type: str) -> QStandardItem | None:
        """The type's line in the list (tests and the screenshot mode tick it)."""
        found = self.type_model.match(self.type_model.index(0, 0), PathRole, file_type, 1,
                                      Qt.MatchFlag.MatchExactly)
        return self.type_model.itemFromIndex(found[0]) if found else None

    def _type_toggled(self, item: QStandardItem) -> None:
        if self._building:
            return
        file_type = str(item.data(PathRole))
        chosen = [t for t in self._types if t != file_type]
        if item.checkState() == Qt.CheckState.Checked:
            chosen.append(file_type)
        self._set_types(tuple(chosen))
        self.apply()

    def _drop_type(self, file_type: str) -> None:
        self._set_types(tuple(t for t in self._types if t != file_type))

    def _set_types(self, types: tuple[str, ...]) -> None:
        self._types = types
        self._building = True
        try:
            for row in range(self.type_model.rowCount()):
                item = self.type_model.item(row)
                wanted = Qt.CheckState.Checked if item.data(PathRole) in types else Qt.CheckState.Unchecked
                if item.checkState() != wanted:
                    item.setCheckState(wanted)
        finally:
            self._building = False

    @staticmethod
    def _fill(box: QComboBox, anything: str, values: list[str], counts: dict[str, int], chosen: str,
              label: Callable[[str], str], counted: bool, matching: int) -> None:
        """Rebuild a combo's choices with their counts, keeping the chosen one (even where none is left)."""
        if chosen and chosen not in values:
            # A camera typed on the command line, or a choice the other filters leave no photo of:
            # what it keeps among them is what the whole filter keeps.
            values = [*values, chosen]
            counts = {**counts, chosen: matching}
        box.clear()
        box.addItem(anything, "")
        for value in values:
            box.addItem(f"{label(value)} ({counts.get(value, 0):,})" if counted else label(value), value)
        box.setCurrentIndex(max(0, box.findData(chosen)) if chosen else 0)

    def _indexes(self) -> list[QModelIndex]:
        out: list[QModelIndex] = []

        def walk(parent: QModelIndex) -> None:
            for row in range(self.folder_model.rowCount(parent)):
                index = self.folder_model.index(row, 0, parent)
                out.append(index)
                walk(index)

        walk(QModelIndex())
        return out

    def _expanded_paths(self) -> set[str]:
        return {str(i.data(PathRole)) for i in self._indexes() if self.folder_tree.isExpanded(i)}

    def _folder_toggled(self, item: QStandardItem) -> None:
        if self._building or not item.isCheckable():
            return
        path = str(item.data(PathRole))
        chosen = [p for p in self._folders if p != path]
        if item.checkState() == Qt.CheckState.Checked:
            chosen.append(path)
        self._folders = tuple(sorted(chosen))
        self.apply()

    # -- chips ------------------------------------------------------------------------

    def _show_chips(self) -> None:
        """One chip per filter in force; a click on it removes that filter."""
        for chip in self.chips:
            self._chips.removeWidget(chip)
            chip.deleteLater()
        self.chips = []
        inputs, keep = self._inputs, self._filter
        if keep.after is not None:
            self._chip(f"From {inputs.after} ✕", lambda: self.after.clear())
        if keep.before is not None:
            self._chip(f"To {inputs.before} ✕", lambda: self.before.clear())
        for folder in keep.folders:
            self._chip(f"In {os.path.basename(folder) or folder} ✕", partial(self._drop_folder, folder),
                       display(folder))
        for file_type in keep.types:
            self._chip(f"{type_label(file_type)} ✕", partial(self._drop_type, file_type))
        if keep.camera:
            self._chip(f"{keep.camera} ✕", lambda: self.camera_box.setCurrentIndex(0))
        if keep.orientation is not None:
            self._chip(f"{SHAPE_LABELS[keep.orientation]} ✕", lambda: self.shape_box.setCurrentIndex(0))
        # The buttons name what they hold, like the combo boxes beside them.
        folders = keep.folders
        self.folders_button.setText(
            "Folders" if not folders
            else f"In {os.path.basename(folders[0]) or folders[0]}" if len(folders) == 1
            else f"In {len(folders)} folders"
        )
        self.types_button.setText(", ".join(type_label(t) for t in keep.types) if keep.types else "Any type")
        active = bool(self.chips)
        self.clear_button.setVisible(active)
        self.chip_row.setVisible(active)
        self.status_row.setVisible(active or self.problem is not None)
        self._show_matching()

    def _chip(self, text: str, remove: Callable[[], None], tip: str | None = None) -> None:
        chip = QToolButton()
        chip.setText(text)
        chip.setToolTip(f"{tip}\nClick to remove this filter" if tip else "Click to remove this filter")
        chip.setAccessibleName(f"Remove the filter {text.removesuffix(' ✕')}")

        def clicked() -> None:
            remove()
            self.apply()

        chip.clicked.connect(clicked)
        self._chips.addWidget(chip)
        self.chips.append(chip)

    def _drop_folder(self, folder: str) -> None:
        self._folders = tuple(f for f in self._folders if f != folder)
        self._building = True
        try:
            self.folder_model.set_checked(self._folders)
        finally:
            self._building = False
