"""`clipdesk completion bash|zsh|fish`: scripts written from the parser, that the shells accept and use."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from clipdesk._cli import build_parser, main
from clipdesk._completion import SHELLS, describe


def _script(shell, capsys):
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def test_every_command_and_option_is_described():
    cli = describe(build_parser())
    names = {c.name for c in cli.commands}
    assert {"index", "search", "gui", "doctor", "completion", "desktop"} <= names
    search = next(c for c in cli.commands if c.name == "search")
    assert {"--like", "--not", "--in", "--after"} <= {f for o in search.options for f in o.flags}
    assert "--db" not in {f for o in search.options for f in o.flags}  # a global option, listed once


@pytest.mark.parametrize("shell", SHELLS)
def test_scripts_name_every_command_and_no_users_path(shell, capsys):
    text = _script(shell, capsys)
    for command in describe(build_parser()).commands:
        assert command.name in text
    from clipdesk._paths import default_db_path

    assert str(default_db_path()) not in text  # the script is the same for every user


@pytest.mark.parametrize("shell", SHELLS)
def test_the_shell_accepts_the_script(shell, capsys, tmp_path):
    if not shutil.which(shell):
        pytest.skip(f"{shell} is not installed")
    path = tmp_path / f"clipdesk.{shell}"
    path.write_text(_script(shell, capsys))
    result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _bash_complete(script, words, cword):
    code = (f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={cword}; "
            '_clipdesk; printf "%s\\n" "${COMPREPLY[@]}"')
    return subprocess.run(["bash", "-c", code], capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.skipif(not shutil.which("bash"), reason="bash is not installed")
def test_bash_completes_commands_choices_and_folders(capsys, tmp_path):
    script = tmp_path / "clipdesk.bash"
    script.write_text(_script("bash", capsys))
    assert _bash_complete(script, ["clipdesk", "ind"], 1) == ["index"]
    assert _bash_complete(script, ["clipdesk", "search", "--device", "c"], 3) == ["cpu", "cuda"]
    assert _bash_complete(script, ["clipdesk", "desktop", ""], 2) == ["install", "uninstall"]
    (tmp_path / "Pictures").mkdir()
    (tmp_path / "Pic.txt").write_text("")
    assert _bash_complete(script, ["clipdesk", "index", str(tmp_path / "Pic")], 2) == [str(tmp_path / "Pictures")]


@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed")
def test_fish_completes_commands_and_choices(capsys, tmp_path):
    script = tmp_path / "clipdesk.fish"
    script.write_text(_script("fish", capsys))

    def complete(line):
        out = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
                             capture_output=True, text=True, check=True).stdout
        return [row.split("\t")[0] for row in out.splitlines()]

    assert complete("clipdesk ind") == ["index"]
    assert complete("clipdesk --device c") == ["cpu", "cuda"]
    assert "--like" in complete("clipdesk search --li")
