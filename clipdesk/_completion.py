"""Shell completion for bash, zsh and fish, written from the command-line parser itself.

`clipdesk completion SHELL` prints the script; nothing here is kept by hand, so a new
command or option completes as soon as the parser has it. `describe()` is also what the
man page (`_manpage.py`) is written from.
"""

from __future__ import annotations

import argparse
import enum
import re
import shlex
from dataclasses import dataclass, field

from ._paths import default_db_path

SHELLS = ("bash", "zsh", "fish")


class Kind(enum.Enum):
    """What an option's value, or a positional argument, is: how a shell completes it."""

    NONE = "none"  # a flag: no value
    TEXT = "text"  # free text: nothing to offer
    FILE = "file"
    FOLDER = "folder"
    CHOICE = "choice"


_FOLDER_METAVARS = {"FOLDER", "DIR"}
_FILE_METAVARS = {"PATH", "IMAGE", "OUT.png", "ID_OR_FOLDER"}


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    help: str
    kind: Kind
    metavar: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    usage: str
    options: tuple[Option, ...]
    positionals: tuple[Option, ...]
    groups: dict[str, tuple[Option, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandLine:
    prog: str
    description: str
    options: tuple[Option, ...]  # accepted before (and after) the command
    commands: tuple[Command, ...]


def _help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%(" in text:
        params = dict(vars(action), prog=prog)
        params = {k: (", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in params.items()}
        text = text % params
    # --help names this user's own library; scripts and the man page are for everyone.
    text = text.replace(str(default_db_path()), "library.db in your user data folder")
    return " ".join(text.split())


def _short(text: str) -> str:
    """An option's help cut for a completion menu: its first clause, without the default."""
    return text.split(". ")[0].split(" (default")[0].strip()


def _kind(action: argparse.Action) -> Kind:
    if action.nargs == 0:
        return Kind.NONE
    if action.choices:
        return Kind.CHOICE
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    if metavar in _FOLDER_METAVARS:
        return Kind.FOLDER
    if metavar in _FILE_METAVARS:
        return Kind.FILE
    return Kind.TEXT


def _option(action: argparse.Action, prog: str) -> Option:
    metavar = action.metavar if isinstance(action.metavar, str) else (action.dest.upper() if action.nargs != 0 else "")
    return Option(
        flags=tuple(action.option_strings) or (action.dest,),
        help=_help(action, prog),
        kind=_kind(action),
        metavar=metavar,
        choices=tuple(str(c) for c in action.choices) if action.choices else (),
    )


def _visible(action: argparse.Action) -> bool:
    return action.help is not argparse.SUPPRESS and not isinstance(action, argparse._SubParsersAction)


def describe(parser: argparse.ArgumentParser) -> CommandLine:
    """The parser's commands and options, as plain data for completion scripts and the man page."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    # The global options are accepted after the command too; they are listed once, as global.
    global_flags = {f for a in parser._actions for f in a.option_strings}
    commands = []
    for name, command in sub.choices.items():
        options = tuple(_option(a, command.prog) for a in command._actions
                        if a.option_strings and _visible(a) and not set(a.option_strings) & global_flags)
        positionals = tuple(_option(a, command.prog) for a in command._actions
                            if not a.option_strings and _visible(a))
        groups = {
            group.title: tuple(_option(a, command.prog) for a in group._group_actions if a.option_strings)
            for group in command._action_groups
            if group.title not in ("positional arguments", "options", "optional arguments") and group._group_actions
        }
        usage = " ".join(command.format_usage().split())
        commands.append(Command(name, " ".join(helps.get(name, "").split()), usage.removeprefix("usage: "),
                                options, positionals, groups))
    return CommandLine(
        prog=parser.prog,
        description=parser.description or "",
        options=tuple(_option(a, parser.prog) for a in parser._actions if a.option_strings and _visible(a)),
        commands=tuple(commands),
    )


# -- bash ---------------------------------------------------------------------------


def _bash_values(option: Option) -> str:
    if option.kind is Kind.CHOICE:
        return f'COMPREPLY=($(compgen -W {shlex.quote(" ".join(option.choices))} -- "$cur"))'
    if option.kind is Kind.FOLDER:
        return 'COMPREPLY=($(compgen -d -- "$cur"))'
    if option.kind is Kind.FILE:
        return 'COMPREPLY=($(compgen -f -- "$cur"))'
    return "COMPREPLY=()"


def bash(cli: CommandLine) -> str:
    """A bash completion script (`source` it, or put it in bash-completion's folder)."""
    fn = f"_{cli.prog}"
    names = " ".join(c.name for c in cli.commands)
    global_flags = " ".join(f for o in cli.options for f in o.flags)
    lines = [
        f"# bash completion for {cli.prog}; written by `{cli.prog} completion bash`",
        f"{fn}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        f'        case "${{COMP_WORDS[i]}}" in {"|".join(c.name for c in cli.commands)}) cmd="${{COMP_WORDS[i]}}"; break;; esac',
        "    done",
        '    case "$cmd" in',
    ]
    for command in (None, *cli.commands):
        options = cli.options + (command.options if command else ())
        lines.append(f'    "{command.name if command else ""}")')
        lines.append('        case "$prev" in')
        for option in options:
            if option.kind is not Kind.NONE:
                lines.append(f'            {"|".join(option.flags)}) {_bash_values(option)}; return;;')
        lines.append("        esac")
        flags = " ".join(f for o in options for f in o.flags) if command else global_flags
        lines.append('        if [[ "$cur" == -* ]]; then')
        lines.append(f'            COMPREPLY=($(compgen -W {shlex.quote(flags)} -- "$cur")); return')
        lines.append("        fi")
        if command is None:
            lines.append(f'        COMPREPLY=($(compgen -W {shlex.quote(names)} -- "$cur"));;')
        else:
            positional = next((p for p in command.positionals if p.kind is not Kind.TEXT), None)
            lines.append(f"        {_bash_values(positional) if positional else 'COMPREPLY=()'};;")
    lines += [
        "    esac",
        "}",
        f"complete -o filenames -o bashdefault -F {fn} {cli.prog}",
        "",
    ]
    return "\n".join(lines)


# -- zsh ----------------------------------------------------------------------------


def _zsh_text(text: str) -> str:
    # Inside '…' and inside _arguments' [description]: no quotes, brackets or colons.
    return re.sub(r"[\[\]:'\\`$]", " ", text).strip()


def _zsh_action(option: Option) -> str:
    if option.kind is Kind.CHOICE:
        return f":{_zsh_text(option.metavar or option.flags[-1])}:({' '.join(option.choices)})"
    if option.kind is Kind.FOLDER:
        return f":{_zsh_text(option.metavar)}:_files -/"
    if option.kind is Kind.FILE:
        return f":{_zsh_text(option.metavar)}:_files"
    if option.kind is Kind.TEXT:
        return f":{_zsh_text(option.metavar or 'value')}: "
    return ""


def _zsh_specs(options: tuple[Option, ...]) -> list[str]:
    specs = []
    for option in options:
        description = _zsh_text(_short(option.help))
        repeat = "*" if option.flags[-1] in ("--also", "--not", "--like", "--in", "--type", "--add") else ""
        if len(option.flags) > 1:
            exclusive = f"({' '.join(option.flags)})"
            specs.append(f"'{exclusive}'{{{','.join(option.flags)}}}'[{description}]{_zsh_action(option)}'")
        else:
            specs.append(f"'{repeat}{option.flags[0]}[{description}]{_zsh_action(option)}'")
    return specs


def zsh(cli: CommandLine) -> str:
    """A zsh completion function (save it as `_clipdesk` in a folder on $fpath)."""
    lines = [
        f"#compdef {cli.prog}",
        f"# zsh completion for {cli.prog}; written by `{cli.prog} completion zsh`",
        f"_{cli.prog}() {{",
        '    local curcontext="$curcontext" state line',
        "    typeset -A opt_args",
        "    _arguments -C \\",
        *(f"        {spec} \\" for spec in _zsh_specs(cli.options)),
        "        '1:command:->command' \\",
        "        '*::argument:->argument'",
        "    case $state in",
        "    command)",
        "        local -a commands",
        "        commands=(",
        *(f"            '{c.name}:{_zsh_text(c.help)}'" for c in cli.commands),
        "        )",
        "        _describe -t commands command commands;;",
        "    argument)",
        "        case $line[1] in",
    ]
    for command in cli.commands:
        specs = _zsh_specs(command.options)
        for positional in command.positionals:
            action = _zsh_action(positional) or ": : "
            specs.append(f"'*{action}'")
        lines.append(f"        {command.name})")
        lines.append("            _arguments \\")
        lines += [f"                {spec} \\" for spec in specs[:-1]]
        lines.append(f"                {specs[-1]};;" if specs else "                ;;")
    lines += [
        "        esac;;",
        "    esac",
        "}",
        f'_{cli.prog} "$@"',
        "",
    ]
    return "\n".join(lines)


# -- fish ---------------------------------------------------------------------------


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(prog: str, condition: str, option: Option) -> str:
    parts = [f"complete -c {prog}"]
    if condition:
        parts.append(f"-n {_fish_quote(condition)}")
    for flag in option.flags:
        parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
    if option.kind is Kind.CHOICE:
        parts.append(f"-x -a {_fish_quote(' '.join(option.choices))}")
    elif option.kind is Kind.FOLDER:
        parts.append("-x -a '(__fish_complete_directories)'")
    elif option.kind is Kind.FILE:
        parts.append("-r -F")
    elif option.kind is Kind.TEXT:
        parts.append("-x")
    parts.append(f"-d {_fish_quote(_short(option.help))}")
    return " ".join(parts)


def fish(cli: CommandLine) -> str:
    """A fish completion script (save it as ~/.config/fish/completions/clipdesk.fish)."""
    names = " ".join(c.name for c in cli.commands)
    lines = [
        f"# fish completion for {cli.prog}; written by `{cli.prog} completion fish`",
        f"complete -c {cli.prog} -f",
    ]
    lines += [_fish_option(cli.prog, "", o) for o in cli.options]
    for command in cli.commands:
        lines.append(f"complete -c {cli.prog} -n {_fish_quote(f'not __fish_seen_subcommand_from {names}')} "
                     f"-a {command.name} -d {_fish_quote(command.help)}")
    for command in cli.commands:
        seen = f"__fish_seen_subcommand_from {command.name}"
        lines += [_fish_option(cli.prog, seen, o) for o in command.options]
        for positional in command.positionals:
            if positional.kind is Kind.FILE:
                lines.append(f"complete -c {cli.prog} -n {_fish_quote(seen)} -F")
            elif positional.kind is Kind.FOLDER:
                lines.append(f"complete -c {cli.prog} -n {_fish_quote(seen)} -a '(__fish_complete_directories)'")
            elif positional.kind is Kind.CHOICE:
                lines.append(f"complete -c {cli.prog} -n {_fish_quote(seen)} -a {_fish_quote(' '.join(positional.choices))}")
    lines.append("")
    return "\n".join(lines)


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for one of SHELLS."""
    cli = describe(parser)
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](cli)
