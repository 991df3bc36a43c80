"""The clipdesk(1) man page, written from the command-line parser (`make man`).

    python -m clipdesk._manpage build/man/clipdesk.1
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import __version__
from ._completion import Command, CommandLine, Option, describe

EXIT_STATUS = (
    ("0", "Done. Also for index when some files could not be read: the rest is indexed, and the "
          "summary line (and failed in --json output) says how many and which."),
    ("1", "A problem you can fix, said in one line starting clipdesk: (a missing path, a file "
          "where a folder belongs or the reverse, a damaged library, no model), or status or "
          "doctor finding a problem."),
    ("2", "A usage error: an unknown option, a malformed value, --in naming a file or a folder "
          "outside the library."),
    ("70", "An internal error: a bug in clipdesk; the details are in the log file."),
    ("130", "Interrupted with Ctrl-C; what was indexed so far is kept."),
)


def _text(text: str) -> str:
    """Running text, escaped for roff: backslashes, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    # groff reads plain ASCII unless preconv runs first: name other characters by code point.
    text = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)
    return "\\&" + text if text.startswith((".", "'")) else text


def _option(option: Option) -> list[str]:
    flags = ", ".join(f"\\fB{_text(f)}\\fR" for f in option.flags)
    if option.flags[0].startswith("-") and option.metavar:
        flags += f" \\fI{_text(option.metavar)}\\fR"
    elif not option.flags[0].startswith("-"):
        flags = f"\\fI{_text(option.metavar or option.flags[0])}\\fR"
    help_text = option.help
    if option.choices:
        help_text = f"{help_text} (one of: {', '.join(option.choices)})".strip()
    return [".TP", flags, _text(help_text)]


def _command(command: Command) -> list[str]:
    lines = [f".SS {command.name}", _text(command.help[:1].upper() + command.help[1:] + "."),
             ".PP", f"\\fB{_text(command.usage)}\\fR"]
    grouped = {f for options in command.groups.values() for o in options for f in o.flags}
    for positional in command.positionals:
        lines += _option(positional)
    for option in command.options:
        if option.flags[0] not in grouped and option.flags[0] not in ("-h", "--help"):
            lines += _option(option)
    for title, options in command.groups.items():
        lines += [".PP", f"\\fI{_text(title[:1].upper() + title[1:])}:\\fR"]
        for option in options:
            lines += _option(option)
    return lines


def render(cli: CommandLine, version: str = __version__) -> str:
    """The man page as roff (man macros)."""
    lines = [
        f'.TH {cli.prog.upper()} 1 "" "{cli.prog} {version}" "User Commands"',
        ".SH NAME",
        f"{cli.prog} \\- {_text(cli.description[:1].lower() + cli.description[1:].rstrip('.'))}",
        ".SH SYNOPSIS",
        f"\\fB{cli.prog}\\fR [\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]",
        ".br",
        f"\\fB{cli.prog}\\-gui\\fR [\\fIFOLDER\\fR...]",
        ".SH DESCRIPTION",
        _text(f"{cli.description} Photos are indexed with a CLIP model that runs on this computer; "
              "nothing is uploaded. Add folders with index (or in the app), then search them by "
              "describing what you look for. clipdesk-gui opens the desktop app, like clipdesk gui."),
        ".SH GLOBAL OPTIONS",
        "Accepted before or after the command.",
    ]
    for option in cli.options:
        lines += _option(option)
    lines.append(".SH COMMANDS")
    for command in cli.commands:
        lines += _command(command)
    lines += [".SH SEARCH SYNTAX",
              _text("Words describe what to find. -word or not:word pushes matching photos down; "
                    "quotes keep a phrase together: clipdesk search beach -\"people swimming\". "
                    "The app's search box reads the same syntax.")]
    lines.append(".SH EXIT STATUS")
    for code, meaning in EXIT_STATUS:
        lines += [".TP", f"\\fB{code}\\fR", _text(meaning)]
    lines += [
        ".SH FILES",
        _text("clipdesk doctor prints where this installation keeps the library, thumbnails, "
              "settings, logs and downloaded models, and how each can be removed is in the README."),
        ".SH ENVIRONMENT",
        ".TP", "\\fBHF_HUB_OFFLINE\\fR", _text("Set to 1: never touch the network for models."),
        ".TP", "\\fBXDG_DATA_HOME\\fR, \\fBXDG_CACHE_HOME\\fR, \\fBXDG_STATE_HOME\\fR",
        _text("Move the library, the thumbnail cache and the logs (Linux)."),
        ".SH SEE ALSO",
        _text("clipdesk completion bash|zsh|fish prints shell completion."),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ._cli import build_parser

    args = sys.argv[1:] if argv is None else argv
    text = render(describe(build_parser()))
    if not args or args[0] == "-":
        sys.stdout.write(text)
        return 0
    target = Path(args[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"Wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
