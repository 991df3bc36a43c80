"""The clipdesk(1) man page is written from the parser and is valid roff."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from clipdesk._cli import build_parser
from clipdesk._completion import describe
from clipdesk._manpage import main, render


def test_the_man_page_documents_every_command_and_option():
    cli = describe(build_parser())
    page = render(cli)
    for command in cli.commands:
        assert f".SS {command.name}" in page
        for option in command.options:
            assert option.flags[-1].replace("-", "\\-") in page
    assert ".SH EXIT STATUS" in page and "\\fB70\\fR" in page


def test_make_man_writes_the_page(tmp_path, capsys):
    target = tmp_path / "man" / "clipdesk.1"
    assert main([str(target)]) == 0
    assert target.read_text().startswith(".TH CLIPDESK 1")


@pytest.mark.skipif(not shutil.which("groff"), reason="groff is not installed")
def test_groff_reads_the_page_without_a_warning(tmp_path):
    target = tmp_path / "clipdesk.1"
    main([str(target)])
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(target)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
