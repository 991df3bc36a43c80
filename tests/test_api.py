"""The public Python API (`import clipdesk`): what a programmer relies on, end to end."""

from __future__ import annotations

import collections.abc
import datetime
import inspect
import os
import pathlib
import threading
import typing
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import COLOUR_MODEL, make_photo
from gui.test_gui_startup import modules_imported
from PIL import Image

import clipdesk


@pytest.fixture
def library(db_path: Path, photos: Path) -> Iterator[clipdesk.Library]:
    """The `photos` folder (3 red, 2 green, 2 blue, 1 yellow) indexed with the colour model."""
    with clipdesk.Library(db_path, model=COLOUR_MODEL) as lib:
        lib.index(photos)
        yield lib


def names(matches: list[clipdesk.Match] | list[clipdesk.Photo]) -> list[str]:
    return [Path(m.path).name for m in matches]


# -- the surface ----------------------------------------------------------------


def test_importing_clipdesk_loads_neither_the_model_nor_the_database_nor_qt():
    heavy = ("torch", "transformers", "PySide6", "apsw", "numpy", "PIL")
    assert modules_imported("import clipdesk", heavy) == []


def test_the_public_names_are_exactly_all():
    public = {name for name in dir(clipdesk) if not name.startswith("_")}
    assert public == {name for name in clipdesk.__all__ if not name.startswith("_")}
    assert all(hasattr(clipdesk, name) for name in clipdesk.__all__)
    assert "__version__" in clipdesk.__all__


def _public_members() -> Iterator[tuple[str, object]]:
    for name in clipdesk.__all__:
        obj = getattr(clipdesk, name)
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            yield name, obj
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in ("__init__", "__len__"):
                    continue
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    yield f"{name}.{attr}", member


def _classes_in(hint: object) -> Iterator[type]:
    if isinstance(hint, type):
        yield hint
    for arg in typing.get_args(hint):
        if isinstance(arg, list):  # Callable's parameters
            for inner in arg:
                yield from _classes_in(inner)
        else:
            yield from _classes_in(arg)


def test_public_classes_and_signatures_name_only_public_types():
    # Names the API's annotations use but imports only for type checkers (so `import clipdesk` stays cheap).
    namespace = dict(vars(clipdesk))
    namespace.update(
        np=np, Image=Image, os=os, threading=threading, date=datetime.date, Path=pathlib.Path,
        Callable=collections.abc.Callable, Iterable=collections.abc.Iterable,
        Mapping=collections.abc.Mapping, Sequence=collections.abc.Sequence, Literal=typing.Literal,
        PathLike=str | os.PathLike[str], ImageInput=str | os.PathLike[str] | Image.Image,
    )
    allowed_modules = {"builtins", "typing", "collections.abc", "os", "pathlib", "datetime", "threading",
                       "numpy", "PIL.Image", "types"}
    public = {getattr(clipdesk, name) for name in clipdesk.__all__ if inspect.isclass(getattr(clipdesk, name))}
    seen = 0
    for where, obj in _public_members():
        assert getattr(obj, "__module__", "clipdesk") == "clipdesk", where  # shown as clipdesk.X
        for hint in typing.get_type_hints(obj, globalns=namespace).values():
            for cls in _classes_in(hint):
                seen += 1
                assert cls in public or cls.__module__ in allowed_modules, f"{where} exposes {cls}"
    assert seen > 50


def test_results_are_frozen(library: clipdesk.Library):
    match = library.search("red", limit=1)[0]
    with pytest.raises(AttributeError):
        match.score = 1.0  # type: ignore[misc]
    vectors = library.vectors()
    with pytest.raises(ValueError):
        vectors.array[0, 0] = 2.0


# -- opening and indexing -------------------------------------------------------


def test_a_library_is_created_and_remembers_its_folders_and_model(db_path: Path, photos: Path):
    with clipdesk.Library(db_path, model=COLOUR_MODEL) as lib:
        assert len(lib) == 0 and lib.model_id is None
        lib.index(photos)
    with clipdesk.Library(db_path) as again:  # no model needed the second time
        assert len(again) == 8 and again.model_id == COLOUR_MODEL
        assert again.folders() == [os.path.realpath(photos)]
        assert again.index().unchanged == 8  # no folder: every known one


def test_without_a_path_it_is_the_commands_library(data_dir: Path):
    with clipdesk.Library(model=COLOUR_MODEL) as lib:
        assert lib.path == data_dir / "library.db"


def test_index_calls_progress_on_the_calling_thread_and_reports_bad_files(db_path: Path, photos: Path):
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    seen: list[tuple[clipdesk.IndexProgress, int]] = []
    with clipdesk.Library(db_path, model=COLOUR_MODEL) as lib:
        report = lib.index([photos], progress=lambda p: seen.append((p, threading.get_ident())))
    assert isinstance(report, clipdesk.IndexReport)
    assert (report.indexed, report.encoded) == (8, 8)
    assert [Path(f.path).name for f in report.failed] == ["broken.jpg"]
    assert all(isinstance(p, clipdesk.IndexProgress) for p, _ in seen)
    assert {thread for _, thread in seen} == {threading.get_ident()}
    phases = [p.phase for p, _ in seen]
    assert phases[0] == "scanning" and "indexing" in phases and phases[-1] == "done"
    last = seen[-1][0]
    assert (last.done, last.total, last.encoded, last.failed) == (9, 9, 8, 1)


def test_cancel_before_start_indexes_nothing(db_path: Path, photos: Path):
    cancel = threading.Event()
    cancel.set()
    with clipdesk.Library(db_path, model=COLOUR_MODEL) as lib:
        report = lib.index(photos, cancel=cancel)
    assert report.cancelled and report.encoded == 0


# -- searching ------------------------------------------------------------------


def test_search_by_text_finds_the_matching_photos_first(library: clipdesk.Library):
    matches = library.search("red", limit=3)
    assert sorted(names(matches)) == ["red1.jpg", "red2.png", "red3.jpg"]
    assert matches[0].score >= matches[-1].score
    assert matches[0].photo.path == matches[0].path and matches[0].photo.width == 64


def test_negatives_push_what_they_describe_down(library: clipdesk.Library):
    plain = names(library.search("red green", limit=5))
    assert sorted(n[:3] for n in plain) == ["gre", "gre", "red", "red", "red"]
    pushed = names(library.search("red green", negatives="green", limit=5))
    assert [n[:3] for n in pushed[:3]] == ["red", "red", "red"] and "green1.jpg" not in pushed[:4]


def test_search_by_example_image_in_the_library_or_not(library: clipdesk.Library, tmp_path: Path):
    outside = make_photo(tmp_path / "elsewhere" / "query.png", "blue")
    assert sorted(names(library.search(like=outside, limit=2))) == ["blue1.jpg", "blue2.bmp"]
    similar = library.similar(library.search("green", limit=1)[0].path, limit=1)
    assert names(similar) in (["green1.jpg"], ["green2.webp"])  # itself left out
    assert len(names(library.similar(outside, limit=20))) == 8


def test_filters_choose_what_is_ranked_before_the_limit(library: clipdesk.Library, photos: Path):
    trip = clipdesk.Filter(folders=[photos / "trip"])
    assert sorted(names(library.search("blue", filter=trip))) == ["green2.webp", "red3.jpg"]
    assert names(library.search("blue", filter=clipdesk.Filter(types=["png"]), limit=1)) == ["red2.png"]
    assert library.search("red", filter=clipdesk.Filter(has_gps=True)) == []
    assert sorted(names(library.photos(clipdesk.Filter(types=["jpg"])))) == [
        "blue1.jpg", "green1.jpg", "red1.jpg", "red3.jpg"
    ]


def test_date_and_orientation_filters(db_path: Path, tmp_path: Path):
    folder = tmp_path / "roll"
    for name, colour, size, day in [("july.jpg", "red", (48, 64), datetime.datetime(2019, 7, 14, 12)),
                                    ("august.jpg", "red", (64, 48), datetime.datetime(2019, 8, 1, 12)),
                                    ("later.jpg", "red", (64, 64), datetime.datetime(2021, 1, 1, 12))]:
        stamp = day.timestamp()
        os.utime(make_photo(folder / name, colour, size), (stamp, stamp))
    with clipdesk.Library(db_path, model=COLOUR_MODEL) as lib:
        lib.index(folder)
        assert names(lib.photos(clipdesk.Filter(after="2019-07", before="2019-07"))) == ["july.jpg"]
        summer = clipdesk.Filter(after=datetime.date(2019, 7, 1), before="2019")
        assert names(lib.search("red", filter=summer)) in (["july.jpg", "august.jpg"], ["august.jpg", "july.jpg"])
        evening = clipdesk.Filter(after=datetime.datetime(2019, 7, 14, 18), before=datetime.date(2019, 7, 14))
        assert names(lib.photos(evening)) == ["july.jpg"]  # whole days, even from a datetime
        assert names(lib.photos(clipdesk.Filter(orientation="square"))) == ["later.jpg"]
        assert names(lib.photos(clipdesk.Filter(min_pixels=64 * 64))) == ["later.jpg"]
        assert names(lib.photos()) == ["july.jpg", "august.jpg", "later.jpg"]  # oldest first


def test_vectors_are_aligned_with_their_paths(library: clipdesk.Library, photos: Path):
    vectors = library.vectors()
    assert len(vectors) == 8 and vectors.array.shape == (8, vectors.dim) and vectors.array.dtype == np.float32
    assert list(vectors.paths) == sorted(vectors.paths)
    assert vectors.model_id == COLOUR_MODEL
    fresh = library.model().encode_images(list(vectors.paths))
    np.testing.assert_allclose(vectors.array, fresh, atol=1e-6)
    trip = library.vectors(clipdesk.Filter(folders=[photos / "trip"]))
    assert [Path(p).name for p in trip.paths] == ["green2.webp", "red3.jpg"]
    np.testing.assert_allclose(trip.array, vectors.array[[vectors.paths.index(p) for p in trip.paths]])


def test_an_empty_library_has_no_vectors(db_path: Path):
    with clipdesk.Library(db_path, model=COLOUR_MODEL) as lib:
        vectors = lib.vectors()
    assert len(vectors) == 0 and vectors.array.shape[0] == 0 and vectors.model_id == COLOUR_MODEL
    assert repr(lib) == f"<clipdesk.Library {str(db_path)!r}>"  # closed, and still says which


# -- models, encoding, classification -------------------------------------------


def test_encoding_images_and_texts_gives_unit_rows_in_order(photos: Path):
    model = clipdesk.Model(COLOUR_MODEL)
    files = [photos / "red1.jpg", photos / "blue1.jpg", str(photos / "green1.jpg")]
    images = model.encode_images([*files, Image.new("RGB", (20, 10), (245, 245, 245))])
    texts = model.encode_texts(["red", "blue", "green", "white"])
    assert images.shape == (4, model.dim) and texts.shape == (4, model.dim)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, rtol=1e-5)
    assert list((images @ texts.T).argmax(axis=1)) == [0, 1, 2, 3]
    assert model.encode_images(files[0]).shape == (1, model.dim)  # one image: one row
    assert model.encode_texts("red").shape == (1, model.dim)
    assert model.encode_images([]).shape == (0, model.dim)


def test_encoding_an_unreadable_file_names_it(photos: Path):
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    model = clipdesk.Model(COLOUR_MODEL)
    with pytest.raises(clipdesk.ImageUnreadable, match="broken.jpg"):
        model.encode_images([photos / "red1.jpg", photos / "broken.jpg"])
    with pytest.raises(clipdesk.ClipdeskError, match="No image at"):
        model.encode_images([photos / "missing.jpg"])


def test_classify_any_images_against_labels_or_a_preset(library: clipdesk.Library, photos: Path):
    pictures = [photos / "red1.jpg", Image.new("RGB", (8, 8), (30, 60, 220)), photos / "not-there.jpg"]
    results = library.classify(pictures, "red, blue")
    assert [r.best for r in results] == ["red", "blue", None]
    assert results[0].path == str(photos / "red1.jpg") and results[1].path is None
    assert results[2].error and "not-there.jpg" in results[2].error and not results[2].probabilities
    assert list(results[0].probabilities) == ["red", "blue"]  # in the order given
    moderation = clipdesk.Model(COLOUR_MODEL).classify(photos / "red1.jpg", preset="moderation")
    assert list(moderation[0].probabilities) == list(clipdesk.presets()["moderation"])
    assert moderation[0].ranked()[0][0] == moderation[0].best


def test_classification_probabilities_sum_to_one_with_a_real_clip(tiny_clip: Path, db_path: Path, photos: Path):
    with clipdesk.Library(db_path, model=str(tiny_clip), device="cpu") as lib:
        lib.index(photos)
        pictures = [photos / "red1.jpg", Image.new("RGB", (40, 30), (30, 180, 40))]
        from_library = lib.classify(pictures, ["a cat", "a dog", "a bird"])
        direct = lib.model().classify(pictures, ["a cat", "a dog", "a bird"])
    for result in from_library + direct:
        assert result.error is None
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # An indexed photo's stored vector gives what encoding it again gives.
    for stored, fresh in zip(from_library, direct):
        for label in stored.probabilities:
            assert stored.probabilities[label] == pytest.approx(fresh.probabilities[label], abs=1e-4)


# -- errors ---------------------------------------------------------------------


def test_errors_are_the_public_classes(db_path: Path, photos: Path, tmp_path: Path, library: clipdesk.Library):
    with pytest.raises(clipdesk.LibraryError, match="No library at"):
        clipdesk.Library(tmp_path / "none.db", create=False)
    with pytest.raises(clipdesk.ModelUnavailable):
        clipdesk.Model("clipdesk-test:nothing")
    with clipdesk.Library(db_path, model="clipdesk-test:other") as other, pytest.raises(clipdesk.ModelMismatch):
        other.search("red")
    with pytest.raises(clipdesk.UsageError, match="not a date that exists"):
        clipdesk.Filter(after="2019-02-30")
    with pytest.raises(clipdesk.UsageError, match="later than"):
        clipdesk.Filter(after="2020", before="2019")
    with pytest.raises(clipdesk.UsageError, match="orientation"):
        clipdesk.Filter(orientation="round")  # type: ignore[arg-type]
    with pytest.raises(clipdesk.UsageError, match="not inside the library"):
        library.search("red", filter=clipdesk.Filter(folders=[tmp_path]))
    with pytest.raises(clipdesk.UsageError, match="Nothing to search for"):
        library.search()
    with pytest.raises(clipdesk.UsageError, match="limit"):
        library.search("red", limit=0)
    with pytest.raises(clipdesk.UsageError, match="labels .* or a preset"):
        library.classify(photos / "red1.jpg")
    with pytest.raises(clipdesk.ClipdeskError, match="at least two labels"):
        library.classify(photos / "red1.jpg", ["red"])
    with pytest.raises(clipdesk.ClipdeskError, match="Unknown preset"):
        library.classify(photos / "red1.jpg", preset="nope")
    with pytest.raises(clipdesk.ClipdeskError, match="No folder at"):
        library.index(tmp_path / "nowhere")
    library.close()
    library.close()  # twice is fine
    with pytest.raises(clipdesk.UsageError, match="closed"):
        library.search("red")
    assert clipdesk.UsageError.__module__ == "clipdesk" and issubclass(clipdesk.ModelMismatch, clipdesk.LibraryError)
