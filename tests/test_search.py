"""Ranking end to end with the deterministic colour encoder: the right photos come first."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipdesk._classify import LabelSet
from clipdesk._errors import ClipdeskError
from clipdesk._library import Library, LibraryOptions
from clipdesk._search import Query
from conftest import COLOUR_MODEL, make_photo


@pytest.fixture
def library(db_path: Path, photos: Path):  # type: ignore[no-untyped-def]
    with Library(LibraryOptions(db_path, model=COLOUR_MODEL)) as lib:
        lib.index([str(photos)])
        yield lib


def names(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [Path(h.path).stem for h in hits]


def test_text_search_ranks_matching_photos_first(library: Library) -> None:
    hits = library.search(Query(texts=("red",), limit=8))
    assert sorted(names(hits)[:3]) == ["red1", "red2", "red3"]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_limit_and_min_score(library: Library) -> None:
    assert len(library.search(Query(texts=("blue",), limit=2))) == 2
    strong = library.search(Query(texts=("blue",), limit=20, min_score=0.5))
    assert sorted(names(strong)) == ["blue1", "blue2"]


def test_negative_text_pushes_matches_down(library: Library) -> None:
    plain = library.search(Query(texts=("a photo",), limit=8))
    avoided = library.search(Query(texts=("a photo",), negatives=("red",), limit=8))
    assert set(names(avoided)[-3:]) == {"red1", "red2", "red3"}
    assert names(plain) != names(avoided)


def test_several_positive_texts_combine(library: Library) -> None:
    hits = library.search(Query(texts=("red", "yellow"), limit=8))
    assert set(names(hits)[:4]) == {"red1", "red2", "red3", "yellow1"}


def test_similar_returns_same_colour_first_and_not_itself(library: Library, photos: Path) -> None:
    hits = library.search(Query(like=(str(photos / "red1.jpg"),), limit=3))
    assert sorted(names(hits)[:2]) == ["red2", "red3"]
    assert "red1" not in names(hits)


def test_example_image_outside_the_library(library: Library, tmp_path: Path) -> None:
    outside = make_photo(tmp_path / "elsewhere" / "query.png", "green")
    hits = library.search(Query(like=(str(outside),), limit=2))
    assert sorted(names(hits)) == ["green1", "green2"]


def test_text_and_example_image_combine(library: Library, tmp_path: Path) -> None:
    example = make_photo(tmp_path / "q.png", "blue")
    hits = library.search(Query(texts=("blue",), like=(str(example),), limit=2))
    assert sorted(names(hits)) == ["blue1", "blue2"]


def test_repeated_text_queries_hit_the_cache(library: Library) -> None:
    library.search(Query(texts=("green",)))
    before = library.text_cache.hits
    library.search(Query(texts=("green",)))
    assert library.text_cache.hits == before + 1


def test_empty_query_is_a_clear_error(library: Library) -> None:
    with pytest.raises(ClipdeskError, match="Nothing to search"):
        library.search(Query())


def test_classify_gives_the_right_label_the_highest_probability(library: Library, photos: Path, tmp_path: Path) -> None:
    outside = make_photo(tmp_path / "new.png", "green")
    labels = LabelSet.from_labels(["red", "green", "blue"])
    results = library.classify([str(photos / "red1.jpg"), str(outside), str(photos / "blue2.bmp")], labels)
    assert [r.result.best() for r in results if r.result] == ["red", "green", "blue"]
    for r in results:
        assert r.result is not None
        assert sum(r.result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_classify_reports_a_bad_file_and_continues(library: Library, photos: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    results = library.classify([str(bad), str(photos / "red1.jpg"), str(tmp_path / "missing.jpg")], LabelSet.from_labels(["red", "blue"]))
    assert results[0].result is None and "bad.jpg" in (results[0].error or "")
    assert results[1].result is not None and results[1].result.best() == "red"
    assert results[2].result is None and "No image" in (results[2].error or "")


def test_moderation_preset_has_the_required_labels() -> None:
    labels = LabelSet.preset("moderation").labels
    for required in ("safe", "not safe for work", "violent", "graphic"):
        assert required in labels


def test_label_sets_need_two_labels() -> None:
    with pytest.raises(ClipdeskError):
        LabelSet.from_labels(["cat"])
