"""One search syntax for the app's search box and `clipdesk search`."""

from __future__ import annotations

import json

import pytest

from clipdesk._cli import main
from clipdesk._library import Library, LibraryOptions
from clipdesk._querytext import ParsedQuery, from_words, parse_query
from clipdesk._search import Query

COLOURS = "clipdesk-test:colours"


@pytest.mark.parametrize(("words", "parsed"), [
    (["green", "-white"], ParsedQuery("green", ("white",))),
    (["green", "not:white"], ParsedQuery("green", ("white",))),
    (["beach", "-people swimming"], ParsedQuery("beach", ("people swimming",))),  # the shell took the quotes
    (['beach -"people swimming"'], ParsedQuery("beach", ("people swimming",))),  # one quoted argument
    (["dog on a beach"], ParsedQuery("dog on a beach", ())),
])
def test_command_line_words_mean_what_they_mean_in_the_search_box(words, parsed):
    assert parse_query(from_words(words)) == parsed


def test_the_query_parser_imports_no_qt():
    import subprocess
    import sys

    code = "import clipdesk._querytext, sys; print([m for m in sys.modules if m.startswith('PySide6')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("words", [["green", "-white"], ["green", "not:white"], ['green -"white"']])
def test_clipdesk_search_ranks_like_the_app(words, data_dir, photos, capsys):
    db = data_dir / "lib.db"
    with Library(LibraryOptions(db_path=db, model=COLOURS)) as library:
        library.index([str(photos)])
        typed = parse_query("green -white")  # what the window builds from its search box
        window = library.search(Query(texts=(typed.text,), negatives=typed.negatives, limit=20))
    assert main(["search", *words, "--json", "--db", str(db)]) == 0
    terminal = json.loads(capsys.readouterr().out)
    # Equal scores (photos of one colour) may come in either order.
    assert sorted((-h["score"], h["path"]) for h in terminal) == sorted((-round(h.score, 6), h.path) for h in window)
    assert terminal[0]["path"].endswith(("green1.jpg", "green2.webp"))


def test_a_minus_word_is_a_term_not_an_option(data_dir, photos, capsys):
    db = data_dir / "lib.db"
    with Library(LibraryOptions(db_path=db, model=COLOURS)) as library:
        library.index([str(photos)])
    # -night would otherwise be read as -n ight; -n 3 stays the limit.
    assert main(["search", "red", "-night", "-n", "3", "--json", "--db", str(db)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
