"""The app's labels: applying a label set to the library (with progress, pause and cancel),
the Labels panel's counts, the preview's label chips, and the safe-search switch.

It connects the panels to the library through the service worker; the main window
only creates it and asks it for the search filter. GUI thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QMessageBox, QWidget

from .._filters import Filter
from .._labels import ImageLabel, LabelDefinition, SafeSearch, TagReport
from .._library import Library
from .._service import WriteContext
from .applylabels import ApplyLabelsDialog
from .classifypanel import ClassifyPanel
from .labelspanel import LabelsPanel
from .labelwork import (
    ApplyScope,
    LabelsState,
    RunControl,
    apply_labels,
    labels_state,
    moderation_preset,
    query_filter,
)
from .preview import PreviewPane
from .worker import Errback, ServiceWorker

SAFE_NEEDS_MODERATION = (
    "Safe search needs the moderation labels, which this library does not have yet. "
    "Label the whole library with them now? It runs in the background and takes moments; "
    "safe search starts when it is done."
)


def label_search_text(label: str) -> str:
    """What to type in the search box to see the photos carrying a label."""
    return f'label:"{label}"' if any(c.isspace() for c in label) else f"label:{label}"


class LabelsController(QObject):
    state_changed = Signal()  # the library's label sets or safe search changed (or were read)
    run_finished = Signal(object)  # TagReport of a label run, or None if it failed

    def __init__(
        self,
        service: Callable[[], ServiceWorker],
        *,
        classify: ClassifyPanel,
        preview: PreviewPane,
        panel: LabelsPanel,
        window: QWidget,
        folders: Callable[[], Sequence[str]],
        selected: Callable[[], Sequence[str]],
        results_changed: Callable[[], None],
        message: Callable[[str], None],
        failed: Callable[[str], Errback],
    ) -> None:
        super().__init__(window)
        self._service = service
        self.classify = classify
        self.preview = preview
        self.panel = panel
        self._window = window
        self._folders = folders
        self._selected = selected
        self._results_changed = results_changed
        self._message = message
        self._failed = failed
        self.state = LabelsState((), SafeSearch(), False)
        self.run: RunControl | None = None
        # Asked before labelling the library for safe search; tests answer it themselves.
        self.confirm: Callable[[str], bool] = self._ask
        classify.apply_requested.connect(self.request_apply)

    # -- what the library holds ---------------------------------------------------------

    def refresh(self) -> None:
        """Read the label sets, their counts and safe search again (interactive lane)."""
        self._service().call(labels_state, self._got_state, self._failed("Reading the labels"))

    def _got_state(self, state: LabelsState) -> None:
        self.state = state
        self.panel.set_sets(state.sets)
        self.state_changed.emit()

    def query_filter(self, labels: tuple[str, ...], keep: Filter | None = None) -> Filter | None:
        """The filter a search or browse uses for the labels typed (safe search is added on
        the worker, from the library's own setting)."""
        return query_filter(labels, keep)

    def show_labels_of(self, image_id: int) -> None:
        """Ask for a photo's labels; the preview shows them as chips when they come."""
        def show(labels: list[ImageLabel]) -> None:
            self.preview.show_labels(image_id, labels)

        self._service().call(lambda library: library.labels_of(image_id), show, lambda exc: None)

    # -- applying a label set ------------------------------------------------------------

    def request_apply(self, definition: LabelDefinition) -> None:
        """Ask where to apply the panel's labels, then apply them in the background."""
        if self.run is not None:
            self._message("Labels are being applied already; wait for that run or cancel it.")
            return
        dialog = ApplyLabelsDialog(definition, self._folders(), self._selected(), self._window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.start(dialog.definition(), dialog.scope())

    def start(self, definition: LabelDefinition, scope: ApplyScope,
              then: Callable[[TagReport], None] | None = None) -> None:
        """Apply a label set on the library's writer, with progress, Pause and Cancel."""
        control = self.run = RunControl()
        bar = self.classify.run_bar
        bar.start(definition.name, scope, control)
        relay = bar.relay

        def work(library: Library, task: WriteContext) -> TagReport:
            return apply_labels(library, task, definition, scope, control, relay)

        def done(report: TagReport) -> None:
            self._finish()
            if report.cancelled:
                self._message(f"Stopped applying \u201c{definition.name}\u201d; the labels are as they were.")
            else:
                counts = ", ".join(f"{label} {n:,}" for label, n in report.counts.items())
                self._message(f"Labelled {report.labelled:,} photos with \u201c{definition.name}\u201d: {counts}.")
                if then is not None:
                    then(report)
            self._results_changed()  # label filters may keep other photos now; counts changed
            self.run_finished.emit(report)

        failed = self._failed(f"Applying \u201c{definition.name}\u201d")

        def error(exc: BaseException) -> None:
            self._finish()
            failed(exc)
            self.run_finished.emit(None)

        self._service().write(work, done, error)

    def _finish(self) -> None:
        self.run = None
        self.classify.run_bar.finish()

    def stop(self) -> None:
        """At exit: a run ends at its next batch, writing nothing (never held by Pause)."""
        if self.run is not None:
            self.run.stop()

    # -- safe search ----------------------------------------------------------------------

    def set_safe_search(self, wanted: SafeSearch) -> None:
        """Switch safe search; switching it on first labels the library with the moderation
        preset if it has not been (after the user agrees)."""
        if wanted == self.state.safe:
            return
        if wanted.enabled and not self.state.moderation_applied:
            if self.run is not None:
                self._message("Safe search can be switched on once the labels being applied are done.")
                return
            if not self.confirm(SAFE_NEEDS_MODERATION):
                self._message("Safe search stays off.")
                return
            self.start(moderation_preset(), ApplyScope(), then=lambda report: self._save_safe(wanted))
            return
        self._save_safe(wanted)

    def _save_safe(self, wanted: SafeSearch) -> None:
        def save(library: Library, task: WriteContext) -> None:
            library.set_safe_search(wanted)

        def saved(_: None) -> None:
            self._message("Safe search is on: unsafe photos are hidden." if wanted.enabled
                          else "Safe search is off.")
            self._results_changed()  # search and browse again; this reads the new state too

        self._service().write(save, saved, self._failed("Saving safe search"))

    def _ask(self, text: str) -> bool:
        answer = QMessageBox.question(
            self._window, "Safe search", text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes

