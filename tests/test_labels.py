"""Labels that stay: label sets applied to the library, searched, kept for new photos, exported; safe search."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest

from clipdesk._errors import UsageError
from clipdesk._filters import Filter
from clipdesk._labels import (
    LabelDefinition,
    LabelSetKind,
    SafeSearch,
    SafeSearchUnavailable,
    TagPhase,
    TagProgress,
)
from clipdesk._library import Library, LibraryOptions
from clipdesk._search import Query
from conftest import COLOUR_MODEL, make_photo

COLOURS = LabelDefinition.typed(["red", "green", "blue", "yellow"], name="colours")


def _library(db: Path) -> Library:
    return Library(LibraryOptions(db, model=COLOUR_MODEL, memory_index=False))


def _names(paths: list[str]) -> set[str]:
    return {Path(p).name for p in paths}


def _carrying(library: Library, label: str) -> set[str]:
    keep = library.resolve_filter(Filter(labels=(label,)))
    return {Path(r.path).name for r in library.list_photos(keep)}


@pytest.fixture
def indexed(photos: Path, db_path: Path) -> Path:
    with _library(db_path) as library:
        library.index([str(photos)])
    return photos


def test_labels_applied_to_a_folder_are_found_by_label_and_survive_reopening(indexed: Path, db_path: Path) -> None:
    with _library(db_path) as library:
        report = library.apply_labels(COLOURS, within=[str(indexed / "trip")])
        assert report.labelled == 2 and not report.cancelled
        assert report.counts == {"red": 1, "green": 1, "blue": 0, "yellow": 0}
    with _library(db_path) as library:  # a restart
        assert _carrying(library, "red") == {"red3.jpg"}  # only the folder it was applied to
        assert _carrying(library, "GREEN") == {"green2.webp"}  # case is ignored
        [info] = library.label_sets()
        assert (info.name, info.kind, info.labels, info.photos) == (
            "colours", LabelSetKind.SAVED, ("red", "green", "blue", "yellow"), 2
        )
        assert info.model_id == COLOUR_MODEL and info.active
        # Combined with words and with other filters, before the limit.
        keep = library.resolve_filter(Filter(labels=("red",)))
        hits = library.search(Query(texts=("green",), limit=1, filter=keep))
        assert _names([h.path for h in hits]) == {"red3.jpg"}
        chips = library.labels_of(hits[0].image_id)
        assert [c.label for c in chips if c.carried] == ["red"]
        assert len(chips) == 4 and abs(sum(c.probability for c in chips) - 1.0) < 1e-6


def test_an_unknown_label_is_a_clear_error(indexed: Path, db_path: Path) -> None:
    with _library(db_path) as library:
        library.apply_labels(COLOURS)
        with pytest.raises(UsageError, match="'redd'.*red"):
            library.resolve_filter(Filter(labels=("redd",)))


def test_re_running_a_set_replaces_its_results(indexed: Path, db_path: Path) -> None:
    with _library(db_path) as library:
        library.apply_labels(COLOURS)
        assert _carrying(library, "red") == {"red1.jpg", "red2.png", "red3.jpg"}
        # The same name with other labels: the old results all go.
        library.apply_labels(LabelDefinition.typed(["blue", "purple"], name="colours"))
        [info] = library.label_sets()
        assert info.labels == ("blue", "purple") and info.photos == 8
        with pytest.raises(UsageError):
            _carrying(library, "red")
        assert {"blue1.jpg", "blue2.bmp"} <= _carrying(library, "blue")
        # The same set again over one folder: that folder's results are replaced, the rest stay.
        library.apply_labels(LabelDefinition.typed(["blue", "purple"], name="colours"), within=[str(indexed / "trip")])
        assert library.label_sets()[0].photos == 8


def test_a_minimum_probability_leaves_uncertain_photos_unlabelled(indexed: Path, db_path: Path) -> None:
    with _library(db_path) as library:
        sure = LabelDefinition.typed(["red", "green"], name="rg", min_probability=0.99)
        report = library.apply_labels(sure)
        # Blue and yellow photos are neither red nor green with any confidence.
        assert report.counts == {"red": 3, "green": 2}
        assert library.label_sets()[0].photos == 8  # every photo still has its probabilities


def test_a_selection_of_photos_and_paths_not_in_the_library(indexed: Path, db_path: Path, tmp_path: Path) -> None:
    stranger = make_photo(tmp_path / "elsewhere" / "x.jpg", "red")
    with _library(db_path) as library:
        report = library.apply_labels(COLOURS, paths=[str(indexed / "red1.jpg"), str(stranger)])
        assert report.labelled == 1 and report.not_indexed == [str(stranger)]
        assert _carrying(library, "red") == {"red1.jpg"}


def test_progress_and_cancel(indexed: Path, db_path: Path) -> None:
    seen: list[TagProgress] = []
    with _library(db_path) as library:
        library.apply_labels(COLOURS, progress=seen.append)
        assert seen[0] == TagProgress(TagPhase.LABELLING, 0, 8)
        assert seen[-1] == TagProgress(TagPhase.DONE, 8, 8)
        cancel = threading.Event()
        cancel.set()
        report = library.apply_labels(LabelDefinition.typed(["red", "white"], name="colours"), cancel=cancel)
        assert report.cancelled
        # Nothing was written: the old results stay.
        assert library.label_sets()[0].labels == ("red", "green", "blue", "yellow")


def test_new_photos_get_the_active_sets_and_deleted_ones_lose_their_labels(indexed: Path, db_path: Path) -> None:
    with _library(db_path) as library:
        library.apply_labels(COLOURS)
        library.apply_labels(LabelDefinition.typed(["red", "black"], name="once", active=False))
        make_photo(indexed / "later" / "yellow2.jpg", "yellow")
        (indexed / "red1.jpg").unlink()
        library.index([str(indexed)])
        assert _carrying(library, "yellow") == {"yellow1.gif", "yellow2.jpg"}
        assert "red1.jpg" not in _carrying(library, "red")
        sets = {s.name: s for s in library.label_sets()}
        assert sets["colours"].photos == 8  # one gone, one new
        assert sets["once"].photos == 7  # not active: the new photo did not get it
        # Deactivated, a set stops following new photos.
        library.set_label_set_active("colours", False)
        make_photo(indexed / "later" / "yellow3.jpg", "yellow")
        library.index([str(indexed)])
        assert "yellow3.jpg" not in _carrying(library, "yellow")
        library.remove_label_set("once")
        assert [s.name for s in library.label_sets()] == ["colours"]


def test_a_photo_whose_content_changes_is_labelled_again(indexed: Path, db_path: Path) -> None:
    with _library(db_path) as library:
        library.apply_labels(COLOURS)
        make_photo(indexed / "blue1.jpg", "red", size=(60, 40))
        library.index([str(indexed)])
        assert "blue1.jpg" in _carrying(library, "red")
        assert "blue1.jpg" not in _carrying(library, "blue")


def test_labels_export_as_valid_neutralised_csv(tmp_path: Path, db_path: Path) -> None:
    root = tmp_path / "odd"
    names = ['a, "quoted" red.jpg', "line\nbreak green.png", "=cmd red.jpg", "-1 blue.jpg", "@x.jpg", "+y.jpg"]
    for name, colour in zip(names, ["red", "green", "red", "blue", "yellow", "red"]):
        make_photo(root / name, colour)
    with _library(db_path) as library:
        library.index([str(root)])
        library.apply_labels(COLOURS)
        library.apply_labels(LabelDefinition.typed(["=SUM(A1)", "+plain", "-x", "@y"], name="=evil"))
        target = tmp_path / "labels.csv"
        assert library.export_labels(str(target)) == 12
        only = tmp_path / "colours.csv"
        assert library.export_labels(str(only), "colours") == 6
        with pytest.raises(UsageError, match="no label set 'nope'"):
            library.export_labels(str(tmp_path / "x.csv"), "nope")
    with open(target, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "set", "label", "probability"]
    body = rows[1:]
    assert all(len(r) == 4 for r in body)
    for row in body:
        assert not row[0].startswith(("=", "+", "-", "@")) and not row[1].startswith("=")
        assert not row[2].startswith(("=", "+", "-", "@"))
        assert 0.0 <= float(row[3]) <= 1.0
    paths = {r[0] for r in body}
    assert str(root / names[0]) in paths and str(root / names[1]) in paths
    by_path = {(r[0], r[1]): r[2] for r in body}
    assert by_path[(str(root / names[0]), "colours")] == "red"
    with open(only, newline="", encoding="utf-8") as handle:
        assert {r[1] for r in list(csv.reader(handle))[1:]} == {"colours"}


def test_safe_search_hides_and_unhides(indexed: Path, db_path: Path) -> None:
    with _library(db_path) as library:
        assert library.safe_search() == SafeSearch(False, 0.5)  # off by default
        with pytest.raises(SafeSearchUnavailable, match="clipdesk tag --preset moderation"):
            library.safe_filter(Filter())
        # The colour model sees no moderation word in any photo: all five labels are
        # equally likely, so each photo is 80% "not safe" by the preset's measure.
        library.apply_labels(LabelDefinition.preset("moderation"), within=[str(indexed / "trip")])
        hidden = library.safe_filter(Filter())
        assert {Path(r.path).name for r in library.list_photos(hidden)} == {
            "red1.jpg", "red2.png", "green1.jpg", "blue1.jpg", "blue2.bmp", "yellow1.gif"
        }
        browsed = library.all_photos("newest", hidden).paths  # browsing, unsearched, hides them too
        assert len(browsed) == 6 and "red3.jpg" not in _names(browsed)
        hits = library.search(Query(texts=("red",), limit=3, filter=hidden))
        assert "red3.jpg" not in _names([h.path for h in hits]) and len(hits) == 3
        # A higher threshold shows them again.
        shown = library.safe_filter(Filter(), threshold=0.9)
        assert len(library.list_photos(shown)) == 8
        library.set_safe_search(SafeSearch(True, 0.9))
    with _library(db_path) as library:
        assert library.safe_search() == SafeSearch(True, 0.9)


def test_a_preset_name_is_reserved_for_the_preset() -> None:
    with pytest.raises(UsageError, match="built-in preset"):
        LabelDefinition.typed(["a", "b"], name="moderation")


def test_photos_the_watch_service_indexes_get_the_active_sets(photos: Path, tmp_path: Path) -> None:
    from clipdesk._events import Idle, ServiceEvent
    from clipdesk._service import IndexService
    from watchutil import wait_for

    db = tmp_path / "watched.db"
    with _library(db) as library:
        library.index([str(photos)])
        library.apply_labels(COLOURS)
    events: list[ServiceEvent] = []
    service = IndexService(LibraryOptions(db_path=db, model=COLOUR_MODEL), on_event=events.append,
                           debounce=0.2, poll_interval=0.2)
    try:
        service.start()
        wait_for(lambda: any(isinstance(e, Idle) for e in events), what=f"idle: {events}")
        make_photo(photos / "new" / "blue3.png", "blue")

        def labelled() -> bool:
            with _library(db) as library:
                return "blue3.png" in _carrying(library, "blue")

        wait_for(labelled, what="the new photo labelled")
    finally:
        service.stop()


def test_the_service_applies_a_label_set_on_its_writer_thread(photos: Path, tmp_path: Path) -> None:
    from clipdesk._events import Idle, ServiceEvent
    from clipdesk._labels import TagReport
    from clipdesk._service import IndexService, WriteContext
    from watchutil import wait_for

    db = tmp_path / "service.db"
    events: list[ServiceEvent] = []
    service = IndexService(LibraryOptions(db_path=db, model=COLOUR_MODEL), on_event=events.append,
                           debounce=0.2, poll_interval=0.2)
    try:
        service.start()
        service.add_folder(str(photos))
        wait_for(lambda: any(isinstance(e, Idle) for e in events), what=f"idle: {events}")
        threads: list[str] = []

        def apply(library: Library, context: WriteContext) -> TagReport:
            threads.append(threading.current_thread().name)
            return library.apply_labels(COLOURS, cancel=context.cancel, between_batches=context.between_batches)

        report = service.submit_write(apply).future.result(30)
        assert report.labelled == 8 and threads == ["clipdesk-index"]
        found = service.submit(lambda lib: lib.list_photos(lib.resolve_filter(Filter(labels=("blue",))))).result(10)
        assert _names([r.path for r in found]) == {"blue1.jpg", "blue2.bmp"}

        # Cancelled before it runs (the service is paused): nothing changes.
        service.pause()
        job = service.submit_write(
            lambda lib, ctx: lib.apply_labels(LabelDefinition.typed(["red", "white"], name="colours"),
                                              cancel=ctx.cancel)
        )
        job.cancel.set()
        service.resume()
        assert job.future.result(30).cancelled
        # A job still waiting when the service stops is cancelled, not left hanging.
        service.pause()
        waiting = service.submit_write(lambda lib, ctx: lib.apply_labels(COLOURS))
    finally:
        service.stop()
    assert waiting.future.cancelled()
    with _library(db) as library:
        assert library.label_sets()[0].labels == ("red", "green", "blue", "yellow")
    assert service.submit_write(lambda lib, ctx: None).future.exception() is not None
