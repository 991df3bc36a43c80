"""The Duplicates window: groups of photos that are one picture, side by side, and a
clean-up that moves the copies the user does not keep to the system trash.

Finding the groups runs on the service's interactive lane and moving files on the
file-work thread (`duplicatework`); this module only asks and shows. The suggested
photo to keep is ticked, with the reason; every group keeps at least one photo.
Photos moved to the trash then leave the library by the service's own path for
deleted files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from .._errors import ClipdeskError
from .._library import Library
from .._logfile import log_path
from .._service import WriteContext
from .duplicatework import (
    Copy,
    Group,
    Removal,
    Scan,
    TrashFn,
    TrashReport,
    fingerprint_older,
    scan_library,
    system_trash,
    trash_files,
)
from .notice import Notice
from .preview import file_size, photo_date
from .thumbnails import ThumbnailLoader
from .worker import Call, ServiceWorker

log = logging.getLogger(__name__)

THUMB = 160  # on-screen size of a thumbnail, in pixels
PAGE = 40  # groups shown at a time: thousands of widgets would make the window crawl


def photos(n: int) -> str:
    return f"{n} photo{'s' if n != 1 else ''}"


def confirmation_text(count: int, size: int) -> str:
    """What the user agrees to before anything moves: how many files and how much space."""
    return (
        f"Move {photos(count)} ({file_size(size)}) to the trash?\n\n"
        "The photos you keep stay where they are. The others go to the system trash, "
        "from where you can restore them, and leave the library."
    )


class _Card(QFrame):
    """One photo of a group: its thumbnail, a Keep box, and its size, date and folder."""

    def __init__(self, copy: Copy, suggested: bool) -> None:
        super().__init__()
        self.copy = copy
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(THUMB + 40)
        self.picture = QLabel()
        self.picture.setFixedSize(THUMB, THUMB)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.keep = QCheckBox("Keep (suggested)" if suggested else "Keep")
        self.keep.setChecked(suggested)
        photo = copy.photo
        lines = [os.path.basename(photo.path)]
        dims = f"{photo.width} × {photo.height} pixels" if photo.width and photo.height else ""
        size = file_size(copy.size) if copy.size is not None else "file missing"
        lines.append(", ".join(x for x in (dims, size) if x))
        lines.append(photo_date(photo.taken_at, copy.mtime_ns))
        lines.append(os.path.dirname(photo.path))
        self.details = QLabel("\n".join(line for line in lines if line))
        self.details.setTextFormat(Qt.TextFormat.PlainText)  # a file name is text, not markup
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setToolTip(photo.path)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.keep)
        layout.addWidget(self.details)
        layout.addStretch(1)


class DuplicatesView(QWidget):
    """A window of its own; create and use it on the GUI thread."""

    scan_finished = Signal()  # groups (or why there are none) are on screen
    progress = Signal(int, int)  # older photos fingerprinted so far, of how many (from the writer)
    trash_finished = Signal(object)  # TrashReport: files moved, and those that stayed

    def __init__(
        self,
        service: Callable[[], ServiceWorker],
        loader: ThumbnailLoader,
        parent: QWidget | None = None,
        *,
        trash: TrashFn = system_trash,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Duplicates")
        self.setObjectName("duplicates")
        self._service = service  # the main window's, which is replaced when the model changes
        self.loader = loader
        self.trash = trash
        self.hidden: frozenset[int] = frozenset()
        # Asked once before anything moves; tests answer it themselves.
        self.confirm: Callable[[str], bool] = self._ask
        self.groups: list[Group] = []
        self.unfingerprinted = 0
        self._shown = 0
        self._cards: list[list[_Card]] = []  # per shown group
        self._keep: list[set[str]] = []  # per group: the paths to keep
        self._thumbs: dict[int, list[tuple[QLabel, str]]] = {}
        self._call: Call | None = None
        self._stop = threading.Event()
        self.busy = False
        loader.ready.connect(self._thumbnail_ready)
        self.progress.connect(self._show_progress)

        intro = QLabel(
            "Photos that are the same picture: identical files, and resized, re-saved or "
            "slightly edited copies. The suggested photo to keep is ticked; tick the ones you "
            "want to keep. The others go to the system trash, never deleted outright."
        )
        intro.setWordWrap(True)
        self.find_button = QPushButton("Look again")
        self.find_button.clicked.connect(self.look)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(200)
        self.bar.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        top = QHBoxLayout()
        for widget in (self.find_button, self.bar, self.status, self.cancel_button):
            top.addWidget(widget)
        top.setStretch(2, 1)
        self.notice = Notice()

        self.list_widget = QWidget()
        self.list_layout = QVBoxLayout(self.list_widget)
        self.list_layout.addStretch(1)
        self.more_button = QPushButton()
        self.more_button.clicked.connect(self.show_more)
        self.more_button.hide()
        self.list_layout.insertWidget(0, self.more_button)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.list_widget)

        self.summary = QLabel()
        self.trash_button = QPushButton("Move to trash…")
        self.trash_button.setEnabled(False)
        self.trash_button.clicked.connect(self.trash_unkept)
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(self.trash_button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(top)
        layout.addWidget(self.notice)
        layout.addWidget(scroll, 1)
        layout.addLayout(bottom)
        self.resize(1000, 700)

    # -- finding ------------------------------------------------------------------

    def look(self) -> None:
        """Look for duplicates in the whole library, off the GUI thread: first fingerprint
        photos indexed before fingerprints were kept (on the library's writer), then group."""
        if self.busy:
            return
        worker = self._service()
        # Fingerprinting writes to the library, which waits while indexing is paused.
        self._set_busy("Indexing is paused: looking for duplicates starts when you resume it." if worker.paused
                       else "Looking for duplicates…", cancellable=True)
        self.notice.hide()
        self._stop = stop = threading.Event()
        relay = self._relay_progress

        def fingerprint(library: Library, task: WriteContext) -> bool:
            return fingerprint_older(library, task, relay, stop)

        self._call = worker.write(fingerprint, self._fingerprinted, self._failed("Finding duplicates", False))

    def _relay_progress(self, done: int, total: int) -> None:
        """Called on the writer thread: only emit (queued to the GUI thread)."""
        with contextlib.suppress(RuntimeError):  # the window is already gone
            self.progress.emit(done, total)

    def _show_progress(self, done: int, total: int) -> None:
        if self.busy and self._call is not None:
            self.bar.setRange(0, max(1, total))
            self.bar.setValue(done)
            self.status.setText(f"Fingerprinting photos indexed by an older version: {done:,} of {total:,}…")

    def _fingerprinted(self, finished: bool) -> None:
        if not finished:
            self._call = None
            self._set_idle("Stopped looking for duplicates.")
            self.scan_finished.emit()
            return
        self.bar.setRange(0, 0)  # busy: how long grouping takes is not known ahead
        self.status.setText("Looking for duplicates…")
        self._call = self._service().call(scan_library, self._show_scan, self._failed("Finding duplicates", False))

    def cancel(self) -> None:
        """Stop looking for duplicates: fingerprinting ends after its batch, a grouping's answer is dropped."""
        self._stop.set()
        if self._call is not None:
            self._call.cancel()
            self._call = None
        self._set_idle("Stopped looking for duplicates.")
        self.scan_finished.emit()

    def _show_scan(self, scan: Scan) -> None:
        self._call = None
        self.groups = list(scan.groups)
        self.unfingerprinted = scan.unfingerprinted
        self.hidden = scan.hidden
        self._keep = [{g.copies[0].path} for g in self.groups]
        self._render()
        self._set_idle(self._found_text())
        self.scan_finished.emit()

    def _found_text(self) -> str:
        if not self.groups:
            text = "No duplicates found."
        else:
            spare = sum(len(g.copies) - 1 for g in self.groups)
            count = f"{len(self.groups)} group{'s' if len(self.groups) != 1 else ''}"
            text = f"{count} of duplicates; {photos(spare)} could go."
        if self.unfingerprinted:
            text += (
                f" {photos(self.unfingerprinted)} could not be fingerprinted (their files could not "
                "be read), so only identical copies of them are found."
            )
        return text

    # -- showing ------------------------------------------------------------------

    def _render(self) -> None:
        """Show the groups again from the first (after a search, or after a clean-up)."""
        for index in reversed(range(self.list_layout.count())):
            item = self.list_layout.itemAt(index)
            widget = item.widget() if item is not None else None
            if isinstance(widget, QGroupBox):
                self.list_layout.removeWidget(widget)
                widget.deleteLater()
        self._cards = []
        self._thumbs = {}
        self._shown = 0
        self.loader.clear_queue()
        self.show_more()

    def show_more(self) -> None:
        """Show the next page of groups."""
        end = min(len(self.groups), self._shown + PAGE)
        for number in range(self._shown, end):
            box = self._group_box(number)
            self.list_layout.insertWidget(self.list_layout.indexOf(self.more_button), box)
        self._shown = end
        left = len(self.groups) - self._shown
        self.more_button.setText(f"Show {min(left, PAGE)} more groups ({left} not shown yet)")
        self.more_button.setVisible(left > 0)
        self._update_summary()

    def _group_box(self, number: int) -> QGroupBox:
        group = self.groups[number]
        similarity = f"similarity {group.min_similarity:.2f}" + (" or more" if group.min_similarity < 1 else "")
        kind = "identical files" if group.exact else f"near copies, {similarity}"
        box = QGroupBox(f"{number + 1}. {photos(len(group.copies))}, {kind}")
        reason = QLabel(f"Suggested to keep: {os.path.basename(group.copies[0].path)} ({group.keep_reason})")
        reason.setTextFormat(Qt.TextFormat.PlainText)
        reason.setWordWrap(True)
        row = QHBoxLayout()
        cards: list[_Card] = []
        for copy in group.copies:
            card = _Card(copy, suggested=copy is group.copies[0])
            card.keep.setChecked(copy.path in self._keep[number])
            card.keep.toggled.connect(lambda on, n=number, c=card: self._keep_toggled(n, c, on))
            row.addWidget(card)
            cards.append(card)
            self._request_thumbnail(card)
        row.addStretch(1)
        layout = QVBoxLayout(box)
        layout.addWidget(reason)
        layout.addLayout(row)
        self._cards.append(cards)
        return box

    def _request_thumbnail(self, card: _Card) -> None:
        photo = card.copy.photo
        if photo.id in self.hidden:
            card.picture.setText("Hidden by\nsafe search")
            return
        self._thumbs.setdefault(photo.id, []).append((card.picture, photo.path))
        self._set_thumbnail(card.picture, photo.id, photo.path)

    def _set_thumbnail(self, label: QLabel, image_id: int, path: str) -> None:
        pixmap = self.loader.pixmap(image_id, path)
        if pixmap is not None and not pixmap.isNull():
            label.setPixmap(pixmap.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
        elif image_id in self.loader.failed:
            label.setText("Cannot be read")

    def _thumbnail_ready(self, image_id: int) -> None:
        for label, path in self._thumbs.get(image_id, []):
            self._set_thumbnail(label, image_id, path)

    # -- choosing -------------------------------------------------------------------

    def cards(self, number: int) -> list[_Card]:
        """The shown cards of group `number` (0-based), in keeping order."""
        return self._cards[number]

    def _keep_toggled(self, number: int, card: _Card, on: bool) -> None:
        keep = self._keep[number]
        if on:
            keep.add(card.copy.path)
        elif keep == {card.copy.path}:
            # Never empty a group: its last photo would go with the copies.
            card.keep.blockSignals(True)
            card.keep.setChecked(True)
            card.keep.blockSignals(False)
            self.status.setText("Each group keeps at least one photo.")
            return
        else:
            keep.discard(card.copy.path)
        self._update_summary()

    def set_keep(self, number: int, paths: set[str]) -> None:
        """Keep these photos of group `number` (at least one); the others are to go."""
        wanted = {c.path for c in self.groups[number].copies} & paths
        if not wanted:
            raise ValueError("a group keeps at least one photo")
        self._keep[number] = set(wanted)
        if number < len(self._cards):
            for card in self._cards[number]:
                card.keep.blockSignals(True)
                card.keep.setChecked(card.copy.path in wanted)
                card.keep.blockSignals(False)
        self._update_summary()

    def removals(self) -> list[Removal]:
        """Per group, what is kept and what would go to the trash."""
        plan = []
        for group, keep in zip(self.groups, self._keep):
            remove = tuple(c for c in group.copies if c.path not in keep)
            if remove:
                plan.append(Removal(tuple(sorted(keep)), remove))
        return plan

    def _totals(self) -> tuple[int, int]:
        going = [c for r in self.removals() for c in r.remove]
        return len(going), sum(c.size or 0 for c in going)

    def _update_summary(self) -> None:
        count, size = self._totals()
        if count:
            self.summary.setText(f"{photos(count)} ({file_size(size)}) to move to the trash.")
        else:
            self.summary.setText("Nothing to move: every photo is kept." if self.groups else "")
        self.trash_button.setEnabled(count > 0 and not self.busy)

    # -- cleaning up ------------------------------------------------------------------

    def confirmation(self) -> str:
        """The question asked before the photos not kept go to the trash."""
        return confirmation_text(*self._totals())

    def _ask(self, text: str) -> bool:
        answer = QMessageBox.question(
            self, "Move to trash", text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def trash_unkept(self) -> None:
        """After one confirmation, move every photo not kept to the trash (file-work thread)."""
        plan = self.removals()
        if self.busy or not plan:
            return
        if not self.confirm(self.confirmation()):
            return
        count = sum(len(r.remove) for r in plan)
        self._set_busy(f"Moving {photos(count)} to the trash…", cancellable=False)
        worker = self._service()
        trash = self.trash
        worker.run(
            lambda: trash_files(plan, trash, stop=lambda: worker.closing),
            self._trashed, self._failed("Moving photos to the trash", True),
        )

    def _trashed(self, report: TrashReport) -> None:
        if report.moved:
            self._service().files_removed(report.moved, self._failed("Updating the library", None))
        gone = set(report.moved)
        kept_groups: list[Group] = []
        kept_choice: list[set[str]] = []
        for group, keep in zip(self.groups, self._keep):
            copies = tuple(c for c in group.copies if c.path not in gone)
            if len(copies) > 1:
                kept_groups.append(Group(copies, group.exact, group.min_similarity, group.keep_reason))
                kept_choice.append(keep & {c.path for c in copies} or {copies[0].path})
        self.groups, self._keep = kept_groups, kept_choice
        self._render()
        text = (
            f"Moved {photos(len(report.moved))} ({file_size(report.freed)}) to the trash; "
            "the library no longer lists them."
        )
        self._set_idle(text)
        if report.failed:
            lines = [f"{path}: {why}" for path, why in report.failed[:5]]
            more = len(report.failed) - len(lines)
            if more:
                lines.append(f"and {more} more")
            self.notice.show_message(
                f"{photos(len(report.failed))} stayed where they were:\n" + "\n".join(lines)
            )
        self.trash_finished.emit(report)

    # -- state --------------------------------------------------------------------------

    def _set_busy(self, text: str, *, cancellable: bool) -> None:
        self.busy = True
        self.status.setText(text)
        self.bar.setRange(0, 0)  # busy: how long grouping takes is not known ahead
        self.bar.show()
        self.cancel_button.setVisible(cancellable)
        self.find_button.setEnabled(False)
        self.trash_button.setEnabled(False)

    def _set_idle(self, text: str) -> None:
        self.busy = False
        self.status.setText(text)
        self.bar.hide()
        self.cancel_button.hide()
        self.find_button.setEnabled(True)
        self._update_summary()

    def _failed(self, what: str, trashing: bool | None) -> Callable[[BaseException], None]:
        """Show why work stopped; `trashing`: which signal says it is over (None: neither)."""

        def errback(exc: BaseException) -> None:
            if isinstance(exc, ClipdeskError):
                text = str(exc)
            elif isinstance(exc, OSError):
                text = f"{what}: {exc.strerror or exc}"
            else:  # a bug: said plainly, the details go to the log
                log.error("%s failed", what, exc_info=exc)
                text = f"{what} failed unexpectedly (an internal error); details are in {log_path()}."
            self.notice.show_message(text)
            if trashing is None:
                return  # the photos moved; only the library's update failed, as the notice says
            self._call = None
            self._set_idle(f"{what} did not finish.")
            if trashing:
                self.trash_finished.emit(TrashReport())
            else:
                self.scan_finished.emit()

        return errback

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._call is not None:  # closing while looking: drop the answer
            self.cancel()
        super().closeEvent(event)
