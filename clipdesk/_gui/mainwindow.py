"""The main window: search box, results grid, preview, folders and classification panels.

Everything slow (the model, the database, decoding) happens on the service's
threads or the thumbnail workers; this module only asks and shows answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace

from PySide6.QtCore import QByteArray, QModelIndex, QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QWidget,
)

from .._classify import LabelSet
from .. import _events as ev
from .._encoder import Encoder
from .._events import FolderStatus, ServiceEvent
from .._library import ClassifiedImage, Library, LibraryOptions
from .._paths import cache_dir
from .._search import Hit, Query
from .._sorting import Placement, SortReport, apply_sort, plan_sort
from .._store import MAX_KNN
from . import desktop, helpactions, modelsetup
from . import settings as settings_io
from .classifypanel import ClassifyPanel
from .duplicatesview import DuplicatesView
from .filterbar import FilterBar
from .folderspanel import FoldersPanel
from .labelscontroller import LabelsController, label_search_text
from .labelspanel import LabelsPanel
from .labelwork import browse
from .labelwork import search as search_within
from .preview import PreviewPane
from .progress import ProgressDisplay
from .._querytext import parse_query
from .resultsmodel import ResultsModel
from .resultspage import ResultsPage
from .settings import AppSettings
from .settingsdialog import SettingsDialog
from .thumbnails import ThumbnailLoader, thumbnail_dir
from .worker import Call, Errback, ServiceWorker

SEARCH_DEBOUNCE_MS = 250
WARM_UP_DELAY_MS = 1000
SEARCH_LIMIT = MAX_KNN  # the store's most neighbours per query; the relevance control trims


def options_for(base: LibraryOptions, s: AppSettings) -> LibraryOptions:
    """The library options the settings ask for (an explicit --model wins over the settings)."""
    return replace(
        base,
        model=base.model or s.model or None,
        device=s.device if base.device == "auto" else base.device,
        batch_size=s.batch_size or base.batch_size,
    )


def search_library(library: Library, query: Query) -> list[Hit]:
    """A search; none while nothing is indexed yet (typing before the first folder is normal)."""
    if library.store.count_images() == 0:
        return []
    return search_within(library, query)


def warm_up(library: Library) -> None:
    """Run one small search so the model's text tower is loaded (worker thread)."""
    search_library(library, Query(texts=("a photo",), limit=1))


def sort_photos(plan: Sequence[Placement], *, move: bool, stop: Callable[[], bool]) -> SortReport:
    """Copy or move photos one by one (file-work thread), ending early once stop() says so."""
    report = SortReport()
    for item in plan:
        if stop():
            break  # the window is closing: what is done stays done
        step = apply_sort([item], move=move)
        report.done += step.done
        report.failed.extend(step.failed)
    return report


def copy_image(path: str) -> QImage:
    """Decode a photo upright for the clipboard (worker thread: QImage is thread-safe)."""
    from .._imaging import open_image
    from .thumbnails import _to_qimage

    image, _ = open_image(path)
    return _to_qimage(image)


class MainWindow(QMainWindow):
    results_shown = Signal()  # a search (or the photo list) has answered and is on screen

    def __init__(
        self,
        options: LibraryOptions,
        *,
        qsettings: QSettings | None = None,
        encoder: Encoder | None = None,
        start: bool = True,
    ) -> None:
        super().__init__()
        self.setWindowTitle("clipdesk")
        self.setAcceptDrops(True)
        self.qsettings = qsettings or settings_io.open_settings()
        self.settings = settings_io.load(self.qsettings)
        self.base_options = options
        self._encoder = encoder
        self.worker = self._make_worker()
        self._folders: list[FolderStatus] = []
        self._folders_known = False
        self._like_paths: list[str] = []
        self._like_ids: list[int] = []
        self._search_call: Call | None = None
        self._choices_call: Call | None = None
        self._search_serial = 0
        self._browsing = True
        self._indexing = False
        self._dirty = False
        self._seen_idle = False
        self._failed = 0
        self._images = 0
        self._closing = False
        self.last_error: str | None = None
        self._query_error = False  # the notice shows why a search or listing failed
        self.duplicates_view: DuplicatesView | None = None

        ratio = max(1.0, QGuiApplication.primaryScreen().devicePixelRatio()) if QGuiApplication.primaryScreen() else 1.0
        self.loader = ThumbnailLoader(
            min(512, int(256 * ratio)), disk_cache=thumbnail_dir(),
            cache_limit_mb=self.settings.thumbnail_cache_mb, parent=self,
        )
        self.model = ResultsModel(self)
        self.loader.ready.connect(self.model.thumbnail_ready)

        self._build_central()
        self._build_docks()
        self._build_status_bar()
        self._build_menus()

        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.run_search)
        self._folders_timer = QTimer(self, singleShot=True, interval=300)
        self._folders_timer.timeout.connect(self.refresh_folders)
        self.resize(1200, 780)
        self._restore_layout()
        if start:
            self.start()

    # -- construction -------------------------------------------------------------

    def _make_worker(self, *, reindex: bool = False) -> ServiceWorker:
        worker = ServiceWorker(
            options_for(self.base_options, self.settings),
            encoder=self._encoder,
            start_watching=self.settings.start_watching,
            reindex=reindex,
            parent=self,
        )
        worker.service_event.connect(self._on_event)
        return worker

    def _build_central(self) -> None:
        page = ResultsPage(
            self.model, self.loader,
            relevance=self.settings.relevance, thumbnail_size=self.settings.thumbnail_size,
            order=self.settings.photo_order,
        )
        # Short names for the parts (tests, benchmarks and the screenshot mode use them).
        self.search_box, self.examples_button = page.search_box, page.examples_button
        self.relevance, self.size_slider, self.count_label = page.relevance, page.size_slider, page.count_label
        self.view, self.delegate, self.pages = page.view, page.delegate, page.pages
        self.empty, self.notice = page.empty, page.notice
        self.page = page
        self.filter_bar = FilterBar(self.settings.filters)
        self.filter_bar.changed.connect(self._filters_changed)
        page.set_filter_row(self.filter_bar)

        self.search_box.textChanged.connect(lambda _: self._search_timer.start())
        self.search_box.returnPressed.connect(self.run_search)
        self.search_box.images_dropped.connect(self.add_examples)
        self.examples_button.clicked.connect(self.clear_examples)
        page.empty_add.clicked.connect(self.choose_folder)
        page.order.currentIndexChanged.connect(lambda _: self.run_search())
        self.view.customContextMenuRequested.connect(self._context_menu)
        # activated: a double-click (or the platform's single click) and Enter; both open.
        self.view.activated.connect(self._open_index)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.model.modelReset.connect(self._results_changed)
        self.setCentralWidget(page)

    def _build_docks(self) -> None:
        self.preview = PreviewPane()
        self.preview_dock = self._dock("Preview", self.preview, Qt.DockWidgetArea.RightDockWidgetArea)
        self.classify_panel = ClassifyPanel(self.settings.label_sets, self.settings.labels)
        self.classify_panel.classify_requested.connect(self.classify)
        self.classify_panel.sort_requested.connect(self.sort_into_folders)
        self.classify_panel.label_sets_changed.connect(self._label_sets_changed)
        self.classify_panel.message.connect(self.show_message)
        self.classify_dock = self._dock("Classify", self.classify_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.preview_dock, self.classify_dock)
        self.preview_dock.raise_()
        self.folders_panel = FoldersPanel()
        self.folders_panel.add_requested.connect(self.choose_folder)
        self.folders_panel.remove_requested.connect(self.remove_folder)
        self.folders_panel.reindex_requested.connect(self.reindex_folder)
        self.folders_dock = self._dock("Folders", self.folders_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.labels_panel = LabelsPanel()
        self.labels_panel.label_clicked.connect(self.search_label)
        self.preview.label_clicked.connect(self.search_label)
        self.labels_dock = self._dock("Labels", self.labels_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.labels = LabelsController(
            lambda: self.worker, classify=self.classify_panel, preview=self.preview, panel=self.labels_panel,
            window=self, folders=lambda: [f.path for f in self._folders],
            selected=lambda: [h.path for h in self.selected_hits()], results_changed=self.refresh_results,
            message=self.show_message, failed=self._failed_call,
        )
        self._docks_sized = False

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._docks_sized:
            # Docks can only be sized once the window has its size; the grid gets the rest.
            self._docks_sized = True
            QTimer.singleShot(0, self._size_docks)

    def _size_docks(self) -> None:
        width = self.width()
        self.resizeDocks([self.folders_dock, self.preview_dock],
                         [max(220, width // 6), max(300, width // 4)], Qt.Orientation.Horizontal)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower())
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        self.indexing = ProgressDisplay()
        self.indexing.pause_toggled.connect(self._pause_toggled)
        # Short names for the parts (tests and the screenshot mode look at them).
        self.progress, self.progress_label = self.indexing.bar, self.indexing.label
        self.pause_button = self.indexing.pause_button
        self.library_label = QLabel()
        self.statusBar().addPermanentWidget(self.indexing)
        self.statusBar().addPermanentWidget(self.library_label)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Add folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        self._action(file_menu, "&Settings…", self.open_settings, QKeySequence.StandardKey.Preferences)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = self.menuBar().addMenu("&Edit")
        find = self._action(edit, "&Find", self.focus_search, QKeySequence.StandardKey.Find)
        find.setShortcuts([QKeySequence(QKeySequence.StandardKey.Find), QKeySequence("Ctrl+L")])
        self._action(edit, "&Copy path", self.copy_paths, QKeySequence.StandardKey.Copy)
        self._action(edit, "Find &similar", self.find_similar, QKeySequence("Ctrl+M"))
        view = self.menuBar().addMenu("&View")
        for dock in (self.folders_dock, self.labels_dock, self.preview_dock, self.classify_dock):
            view.addAction(dock.toggleViewAction())
        tools = self.menuBar().addMenu("&Tools")
        self.duplicates_action = self._action(tools, "Find &duplicates…", self.show_duplicates, QKeySequence("Ctrl+D"))
        self.duplicates_action.setToolTip("Find copies of the same picture and move the extra ones to the trash")
        toolbar = self.addToolBar("Tools")
        toolbar.setObjectName("tools")
        toolbar.addAction(self.duplicates_action)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "Search &syntax", self._show_syntax)
        help_menu.addSeparator()
        self._action(help_menu, "Open &log folder", lambda: helpactions.open_log_folder(self))
        self._action(help_menu, "Copy &diagnostics",
                     lambda: helpactions.copy_diagnostics(self, options_for(self.base_options, self.settings)))
        help_menu.addSeparator()
        self._action(help_menu, "&About clipdesk", self._about)

    def _action(self, menu: QMenu, text: str, slot: Callable[[], object],
                shortcut: QKeySequence | QKeySequence.StandardKey | None = None) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(shortcut)
        return action

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the service (off the GUI thread) and ask for the folder list."""
        self.worker.start()
        self.refresh_folders()
        self.focus_search()

    def _restore_layout(self) -> None:
        """Window size and panel layout as the user left them (QSettings, like the preferences)."""
        geometry = self.qsettings.value("window/geometry")
        state = self.qsettings.value("window/state")
        if isinstance(state, (bytes, bytearray, QByteArray)):
            self.restoreState(QByteArray(state))
            self._docks_sized = True  # the saved state has the user's own dock sizes
        if isinstance(geometry, (bytes, bytearray, QByteArray)):
            self.restoreGeometry(QByteArray(geometry))

    def focus_search(self) -> None:
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_box.selectAll()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.hide()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Save settings and stop cleanly: indexing commits its work; every thread is joined."""
        if self._closing:
            return
        self._closing = True
        self.settings.thumbnail_size = self.size_slider.value()
        self.settings.relevance = self.relevance.value()
        self.settings.photo_order = self.page.photo_order()
        self.settings.labels = self.classify_panel.labels_edit.text()
        self.settings.filters = self.filter_bar.inputs()
        settings_io.save(self.qsettings, self.settings)
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/state", self.saveState())
        self.qsettings.sync()
        self._search_timer.stop()
        self._folders_timer.stop()
        self.labels.stop()
        self.worker.stop()
        self.loader.stop()
        self.preview.loader.stop()
        self.classify_panel.loader.stop()
        if self.duplicates_view is not None:
            self.duplicates_view.close()
            self.duplicates_view.loader.stop()

    def is_idle(self) -> bool:
        """Nothing left to show: indexing done, searches answered, visible thumbnails loaded."""
        return (
            self._folders_known
            and not self._indexing
            and (self._seen_idle or not self._folders)
            and self.worker.in_flight == 0
            and not self._search_timer.isActive()
            and not self.filter_bar.is_pending()
            and not self._folders_timer.isActive()
            and self.loader.pending == 0
            and self.classify_panel.loader.pending == 0
            and self.preview.loader.pending == 0
            and self.labels.run is None
        )

    # -- service events -------------------------------------------------------------

    def _on_event(self, event: ServiceEvent) -> None:
        if self._closing:
            return
        if isinstance(event, (ev.Idle, ev.Indexed, ev.Moved, ev.PhotosRemoved, ev.FolderRemoved)) and event.images:
            self._images = event.images
        match event:
            case ev.Progress():
                if not self._indexing:
                    self._indexing = True
                    self._failed = 0
                self._dirty = True
                self._show_progress(event)
            case ev.FileSkipped():
                self._failed += 1
                self.statusBar().showMessage(f"Skipped {event.path}: {event.message}", 8000)
            case ev.Idle():
                self._on_idle()
            case ev.Indexed() | ev.Moved() | ev.PhotosRemoved() | ev.FolderRemoved():
                # A piece of work finished (progress is throttled, so say so); show the
                # new, moved or forgotten photos once the service is idle again.
                self.indexing.finish()
                self._dirty = True
                self._folders_timer.start()
            case ev.FolderChanged():
                self._folders_timer.start()
            case ev.ModelLoading() | ev.ModelDownloading() | ev.ModelReady() | ev.ModelFailed():
                self._on_model_event(event)
            case ev.ServiceError():
                self._indexing = False
                self._hide_progress()
                self.show_error(event.message)
            case ev.Started() | ev.Stopped() | ev.ChangesQueued():
                pass  # progress and idle say what follows
        self._update_library_label()

    def _on_idle(self) -> None:
        was_indexing = self._indexing
        self._indexing = False
        self._seen_idle = True
        self._hide_progress()
        self._folders_timer.start()
        if was_indexing:
            done = f"Indexing done: {self._images:,} photos" if self._images else "Indexing done"
            skipped = f", {self._failed} files skipped" if self._failed else ""
            self.statusBar().showMessage(done + skipped + ".", 10000)
        if self._dirty:
            self._dirty = False
            self.refresh_results()
            # Edited photos keep their ids: have their thumbnails made again.
            self.loader.revalidate()
            self.preview.loader.revalidate()

    def _on_model_event(
        self, event: ev.ModelLoading | ev.ModelDownloading | ev.ModelReady | ev.ModelFailed
    ) -> None:
        if isinstance(event, ev.ModelLoading):
            self.statusBar().showMessage("Loading the model…")
        elif isinstance(event, ev.ModelDownloading):
            if event.total:
                self.indexing.show_download(event)
            self.statusBar().showMessage(event.description or "Downloading the model (once)…")
        else:
            self._hide_progress()  # the download bar, if any; indexing progress shows it again
        if isinstance(event, ev.ModelReady):
            modelsetup.dismiss(self)
            self.statusBar().showMessage("Model ready.", 3000)
            # Load the text side of the model now, off the GUI thread, so the first search
            # answers as fast as the rest; a moment later, so start-up itself stays quick.
            QTimer.singleShot(WARM_UP_DELAY_MS, self._warm_up)
        elif isinstance(event, ev.ModelFailed):
            self.show_error(
                modelsetup.plain_reason(event.message)
                + "\nDownload it, or choose a model folder you have in File ▸ Settings ▸ Model. "
                "Folders, browsing and settings still work; search and classification need the model.",
                status="The model is not available: see the notice above the results.",
            )
            modelsetup.offer(self, event.message)

    def retry_model(self) -> None:
        """Load the model again (downloading it if need be): the service restarts and tries once more."""
        self._restart_service(reindex=False)

    def use_model_folder(self, folder: str) -> None:
        """Use a model folder the user has (what choosing it in Settings does)."""
        self.apply_settings(replace(self.settings, model=folder), confirm=False)

    def _warm_up(self) -> None:
        if not self._closing:
            self.worker.call(warm_up, None, lambda exc: None)  # a real search reports problems

    def _show_progress(self, event: ev.Progress) -> None:
        self.indexing.show_indexing(event)

    def _hide_progress(self) -> None:
        self.indexing.hide()

    def _update_library_label(self) -> None:
        images = sum(f.images for f in self._folders) or self._images
        n = len(self._folders)
        self.library_label.setText(f"{images:,} photos in {n} folder{'s' if n != 1 else ''}" if n else "")

    def toggle_pause(self) -> None:
        self.pause_button.click()

    def _pause_toggled(self, pause: bool) -> None:
        if pause:
            self.worker.pause()
        else:
            self.worker.resume()

    def show_error(self, text: str, status: str | None = None) -> None:
        """Errors are shown, never raised: a notice above the grid and the status bar."""
        self._query_error = False
        self.last_error = text
        self.notice.show_message(text)
        self.statusBar().showMessage(status or text.splitlines()[0], 10000)

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _query_failed(self, what: str) -> Errback:
        """A search or listing failed (e.g. label:name with a label no set has): the next one
        that works, browsing included, takes the notice away."""
        failed = self._failed_call(what)

        def errback(exc: BaseException) -> None:
            failed(exc)
            self._query_error = True

        return errback

    def _failed_call(self, what: str) -> Errback:
        def errback(exc: BaseException) -> None:
            from .._errors import ClipdeskError

            if isinstance(exc, ClipdeskError):
                self.show_error(str(exc))
            elif isinstance(exc, OSError):
                self.show_error(f"{what}: {exc.strerror or exc}")
            else:  # a bug: still shown, not a crash, with enough to report it
                self.show_error(f"{what} failed unexpectedly ({type(exc).__name__}: {exc}).")

        return errback

    # -- folders -----------------------------------------------------------------

    def refresh_folders(self) -> None:
        self.worker.folders(self._got_folders, self._failed_call("Listing folders"))

    def _got_folders(self, folders: Sequence[FolderStatus]) -> None:
        first = not self._folders_known
        self._folders = list(folders)
        self._folders_known = True
        self.folders_panel.model.set_folders(self._folders)
        self._update_library_label()
        self._update_page()
        if first:
            self.refresh_results()

    def _update_page(self) -> None:
        self.page.show_empty_state(self._folders_known and not self._folders and self.model.rowCount() == 0)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos")
        if folder:
            self.add_folder(folder)

    def add_folder(self, path: str) -> None:
        if not os.path.isdir(path):
            self.show_error(f"{path} is not a folder.")
            return
        self._indexing = True  # until the service says it is idle (or fails)
        self._dirty = True
        self.statusBar().showMessage(f"Adding {path}…", 5000)
        self.worker.add_folder(path, self._failed_call(f"Adding {path}"))
        self.pages.setCurrentWidget(self.view)
        self._folders_timer.start()

    def remove_folder(self, path: str, forget: bool) -> None:
        self.worker.remove_folder(path, forget=forget, errback=self._failed_call(f"Removing {path}"))
        self._folders_timer.start()

    def reindex_folder(self, path: str) -> None:
        self.worker.reindex_folder(path, self._failed_call(f"Re-indexing {path}"))
        self._folders_timer.start()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.isLocalFile() and os.path.isdir(u.toLocalFile()) for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folders = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        folders = [f for f in folders if os.path.isdir(f)]
        for folder in folders:
            self.add_folder(folder)
        if folders:
            event.acceptProposedAction()

    # -- search ---------------------------------------------------------------------

    def current_query(self) -> Query:
        parsed = parse_query(self.search_box.text())
        return Query(
            texts=(parsed.text,) if parsed.text else (),
            negatives=parsed.negatives,
            like=tuple(self._like_paths),
            like_ids=tuple(self._like_ids),
            limit=SEARCH_LIMIT,
            filter=self.labels.query_filter(parsed.labels, self.filter_bar.current_filter()),
        )

    def run_search(self, *, keep_place: bool = False) -> None:
        """Search for what is typed and dropped; an empty box shows every photo.

        keep_place: a refresh after background changes keeps the selection and scroll position.
        """
        self._search_timer.stop()
        if self._search_call is not None:
            self._search_call.cancel()
        query = self.current_query()
        self._search_serial += 1
        serial = self._search_serial
        browsing = query.is_empty()

        def show(hits: Sequence[Hit]) -> None:
            self._show_hits(serial, hits, browsing, keep_place)

        if browsing:
            order, keep = self.page.photo_order(), query.filter
            self._search_call = self.worker.call(
                lambda library: browse(library, order, keep), show, self._query_failed("Listing photos")
            )
        else:
            self._search_call = self.worker.call(
                lambda library: search_library(library, query), show, self._query_failed("Search")
            )

    def refresh_results(self) -> None:
        """Search again, in place (new photos were indexed, or a folder was forgotten)."""
        if not self._closing:
            self.run_search(keep_place=True)
            self.labels.refresh()  # new photos got the active label sets: counts change
            self.refresh_filter_counts()

    def _filters_changed(self) -> None:
        self.run_search()
        self.refresh_filter_counts()

    def refresh_filter_counts(self) -> None:
        """Count the filter row's choices again, on the worker (a pass over the library)."""
        if self._choices_call is not None:
            self._choices_call.cancel()
        self._choices_call = self.worker.call(
            self.filter_bar.counting_job(), self.filter_bar.set_choices, self._failed_call("Counting photos")
        )

    def _show_hits(self, serial: int, hits: Sequence[Hit], browsing: bool, keep_place: bool) -> None:
        if serial != self._search_serial:
            return  # an older search answered late
        if (not browsing or self._query_error) and self.notice.isVisible() and self.last_error:
            self.notice.hide()  # a search worked, so whatever went wrong before is over
        self._browsing = browsing
        current = self.model.hit(self.view.currentIndex().row()) if keep_place else None
        scroll = self.view.verticalScrollBar().value()
        if not self.model.set_hits(hits):
            self.results_shown.emit()  # nothing changed: leave the grid alone
            return
        if keep_place:
            row = self.model.row_of(current.image_id) if current is not None else None
            if row is not None:
                self.view.setCurrentIndex(self.model.index(row, 0))
            self.view.verticalScrollBar().setValue(scroll)
        elif self.model.rowCount():
            self.view.scrollToTop()
        self._update_page()
        self.results_shown.emit()

    def _results_changed(self) -> None:
        self.loader.clear_queue()
        self.page.show_count(browsing=self._browsing, has_photos=bool(self._images or self._folders))

    def add_examples(self, paths: Sequence[str]) -> None:
        """Photos dropped on the search box: find more like them (with the words, if any)."""
        files = [p for p in paths if os.path.isfile(p)]
        if not files:
            self.show_message("Drop photo files on the search box to find more like them.")
            return
        self._like_paths.extend(p for p in files if p not in self._like_paths)
        self._update_examples()
        self.run_search()

    def find_similar(self) -> None:
        hits = self.selected_hits()
        if not hits:
            return
        self._like_paths = []
        self._like_ids = [h.image_id for h in hits]
        self._update_examples()
        self.run_search()

    def clear_examples(self) -> None:
        self._like_paths, self._like_ids = [], []
        self._update_examples()
        self.run_search()

    def _update_examples(self) -> None:
        self.page.show_examples(len(self._like_paths) + len(self._like_ids))

    # -- results -------------------------------------------------------------------

    def selected_hits(self) -> list[Hit]:
        return [h for h in (self.model.hit(r) for r in self.page.selected_rows()) if h is not None]

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        hit = self.model.hit(current.row()) if current.isValid() else None
        if hit is not None and self._browsing:
            hit = replace(hit, score=float("nan"))
        self.preview.show_hit(hit)
        if hit is not None:
            image_id = hit.image_id
            self.worker.call(lambda library: library.store.image(image_id), self.preview.show_record)
            self.labels.show_labels_of(image_id)

    def search_label(self, label: str) -> None:
        """Show the photos carrying a label (a Labels panel row or a preview chip was clicked)."""
        self.search_box.setText(label_search_text(label))
        self.run_search()

    def _open_index(self, index: QModelIndex) -> None:
        hit = self.model.hit(index.row())
        if hit is not None:
            self.open_paths([hit.path])

    def open_paths(self, paths: Sequence[str]) -> None:
        for path in paths[:20]:  # a slip of Ctrl+A must not launch a thousand viewers
            if not desktop.open_file(path):
                self.show_error(f"No application is set up to open {path}.")

    def show_in_folder(self, path: str) -> None:
        if not desktop.show_in_folder(path):
            self.show_error(f"Could not open a file manager for {path}.")

    def copy_paths(self) -> None:
        hits = self.selected_hits()
        if hits:
            QGuiApplication.clipboard().setText("\n".join(h.path for h in hits))
            self.show_message("Copied the path." if len(hits) == 1 else f"Copied {len(hits)} paths.")

    def copy_image(self, path: str) -> None:
        def done(image: QImage) -> None:
            QGuiApplication.clipboard().setImage(image)
            self.show_message("Copied the image.")

        self.worker.run(lambda: copy_image(path), done, self._failed_call(f"Copying {path}"))

    def classify_selected(self) -> None:
        hits = self.selected_hits()
        if hits:
            self.classify_dock.show()
            self.classify_dock.raise_()
            self.classify_panel.add_files([h.path for h in hits])

    def _context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        if not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        hits = self.selected_hits()
        if not hits:
            return
        first = hits[0]
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_paths([h.path for h in hits]))
        menu.addAction("Show in folder", lambda: self.show_in_folder(first.path))
        menu.addSeparator()
        menu.addAction("Copy path", self.copy_paths)
        menu.addAction("Copy image", lambda: self.copy_image(first.path))
        menu.addSeparator()
        menu.addAction("Find similar", self.find_similar)
        menu.addAction("Classify", self.classify_selected)
        menu.popup(self.view.viewport().mapToGlobal(pos))

    # -- classification ------------------------------------------------------------

    def classify(self, paths: list[str], labels: LabelSet) -> None:
        self.statusBar().showMessage(f"Classifying {len(paths)} photo{'s' if len(paths) != 1 else ''}…")

        def done(results: list[ClassifiedImage]) -> None:
            self.classify_panel.show_results(results)
            bad = [r for r in results if r.result is None]
            text = f"Classified {len(results) - len(bad)} photos"
            self.statusBar().showMessage(text + (f"; {len(bad)} could not be read." if bad else "."), 8000)

        self.worker.call(lambda library: library.classify(paths, labels), done, self._failed_call("Classifying"))

    def sort_into_folders(self, winners: list[tuple[str, str]], destination: str, move: bool) -> None:
        def done(report: SortReport) -> None:
            verb = "Moved" if move else "Copied"
            text = f"{verb} {report.done} photos into {destination}."
            if report.failed:
                path, why = report.failed[0]
                self.show_error(f"{text} {len(report.failed)} failed, e.g. {path}: {why}")
            else:
                self.show_message(text)
            if move:
                self.classify_panel.clear()

        worker = self.worker
        plan = plan_sort(winners, destination)
        worker.run(lambda: sort_photos(plan, move=move, stop=lambda: worker.closing), done,
                   self._failed_call("Sorting"))

    def _label_sets_changed(self, sets: dict[str, list[str]]) -> None:
        self.settings.label_sets = sets
        settings_io.save(self.qsettings, self.settings)

    # -- duplicates ------------------------------------------------------------------

    def show_duplicates(self) -> None:
        """Open the Duplicates window; it looks for duplicates each time it opens."""
        view = self.duplicates_view
        if view is None:
            loader = ThumbnailLoader(
                self.loader.size, disk_cache=thumbnail_dir(), workers=1,
                cache_limit_mb=self.settings.thumbnail_cache_mb, parent=self,
            )
            view = self.duplicates_view = DuplicatesView(lambda: self.worker, loader, self)
        if view.isVisible():  # already open: bring it to the front, keep the user's choices
            view.raise_()
            view.activateWindow()
            return
        view.show()
        view.look()

    # -- settings and help -----------------------------------------------------------

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self, safe_search=self.labels.state.safe)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        self.apply_settings(dialog.result_settings())
        self.labels.set_safe_search(dialog.result_safe_search())

    def apply_settings(self, new: AppSettings, *, confirm: bool = True) -> None:
        """Save settings; a new model (after the user agrees) restarts the service and re-indexes."""
        old = self.settings
        model_changed = new.model != old.model and not self.base_options.model
        if model_changed and confirm:
            answer = QMessageBox.question(
                self, "Change the model",
                "A different model means re-indexing every photo once (search works again when it "
                "is done). Re-index now?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                new = replace(new, model=old.model)
                model_changed = False
        self.settings = new
        settings_io.save(self.qsettings, new)
        if new.thumbnail_cache_mb != old.thumbnail_cache_mb:
            self.loader.set_cache_limit(new.thumbnail_cache_mb)
        if model_changed:
            self._restart_service(reindex=True)
        elif (new.device, new.batch_size, new.start_watching) != (old.device, old.batch_size, old.start_watching):
            self.show_message("Device, batch size and watching apply the next time clipdesk starts.")

    def _restart_service(self, *, reindex: bool) -> None:
        """Stop the service and start it on the new model; it re-encodes the library's photos."""
        old = self.worker
        self.statusBar().showMessage("Switching the model…")

        def stopped() -> None:
            if self._closing:
                return
            self.worker = self._make_worker(reindex=reindex)
            self._seen_idle = False
            self._dirty = True
            self.start()
            old.deleteLater()

        old.service_event.disconnect(self._on_event)
        old.stop_later(stopped)

    def _show_syntax(self) -> None:
        QMessageBox.information(
            self, "Search syntax",
            "Type what you are looking for: dog on a beach\n\n"
            "Push photos down with -word or not:word:  beach -people\n"
            'Quote a phrase:  beach -"people swimming"\n\n'
            "Only photos with a label:  label:beach sunset  (label photos with Apply to library "
            "in the Classify panel; the Labels panel lists the labels)\n\n"
            "Drop a photo on the search box, or right-click a result and choose Find similar, to "
            "find more like it; words and example photos combine.\n\n"
            "The Relevance slider hides weaker matches.",
        )

    def _about(self) -> None:
        from .. import __version__

        QMessageBox.about(
            self, "About clipdesk",
            f"clipdesk {__version__}\nPrivate, offline photo search with CLIP.\n"
            f"Thumbnails are cached in {cache_dir() / 'thumbnails'}.",
        )

