"""The `clipdesk` command line: index, search, similar, list, classify, tag, labels, safe-search, status,
forget, watch, gui, duplicates, export, import, doctor, completion, desktop."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from ._completion import SHELLS
from ._errors import ClipdeskError, UsageError
from ._paths import default_db_path, display, printable
from ._logfile import PrintableFormatter
from ._safefile import require_photo_path

if TYPE_CHECKING:
    from ._events import ServiceEvent
    from ._filters import Filter
    from ._library import Library
    from ._store import ImageRecord

Handler = Callable[[argparse.Namespace], int]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # The options are accepted before or after the command; only the main
    # parser sets defaults, so a value given after the command wins.
    kw: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--db", type=Path, metavar="PATH", help=f"library database (default: {default_db_path()})",
        **({"default": default_db_path()} if defaults else kw),
    )
    parser.add_argument(
        "--model", metavar="ID_OR_FOLDER",
        help="Hugging Face model id or local model folder (default: the library's model, "
        "else openai/clip-vit-base-patch32)",
        **({"default": None} if defaults else kw),
    )
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda", "mps"],
        help="where the model runs (default: auto: CUDA, then MPS, then CPU)",
        **({"default": "auto"} if defaults else kw),
    )
    parser.add_argument(
        "--allow-pickle", action="store_true",
        help="allow loading pickle (.bin) weights, which can run code; only for models you trust",
        **({"default": False} if defaults else kw),
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="also print clipdesk's log on the terminal, with debugging detail (the log file gets it too)",
        **({"default": False} if defaults else kw),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clipdesk",
        description="Private, offline photo search: find photos by describing them.",
    )
    parser.add_argument("--version", action="version", version=f"clipdesk {__version__}")
    _add_global_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, defaults=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", parents=[common], help="index photo folders (remembered in the library)")
    p.add_argument("paths", nargs="*", metavar="FOLDER", help="folders to index (default: all known folders)")
    p.add_argument("--reindex", action="store_true", help="rebuild all vectors (e.g. with a new --model)")
    p.add_argument("--batch-size", type=_positive_int, help="images per model batch")
    p.add_argument("--workers", type=_positive_int, help="decoding threads")
    p.add_argument("--int8", action="store_true",
                   help="faster CPU indexing with 8-bit weights in the image model; vectors agree "
                   "with the normal ones to a cosine of ~0.999 (see benchmarks/README.md)")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=cmd_index)

    p = sub.add_parser("search", parents=[common], help="find photos by words and example images")
    p.add_argument("text", nargs="*", metavar="TEXT",
                   help='what to look for, as in the app\'s search box: -word or not:word pushes '
                   'photos down, quotes keep a phrase together (green -white, beach -"people swimming")')
    p.add_argument("--also", action="append", default=[], metavar="TEXT", help="another description to match")
    p.add_argument("--not", dest="negatives", action="append", default=[], metavar="TEXT", help="push down photos matching this")
    p.add_argument("--like", action="append", default=[], metavar="IMAGE", help="an example image to match")
    _add_result_options(p)
    _add_filter_options(p)
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser("similar", parents=[common], help="find photos like an image")
    p.add_argument("image", metavar="IMAGE")
    _add_result_options(p)
    _add_filter_options(p)
    p.set_defaults(handler=cmd_similar)

    p = sub.add_parser("list", parents=[common], help="list the photos the filters keep, by date taken")
    p.add_argument("-n", "--limit", type=_positive_int, default=None, help="at most this many (default: all)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: a list of {path, taken_at, taken_from, camera, width, height, type, size}")
    _add_filter_options(p)
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("classify", parents=[common], help="zero-shot label probabilities for images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--labels", help='comma-separated labels, e.g. "cat,dog,bird"')
    group.add_argument("--preset", choices=_preset_names(), help="a built-in label set")
    p.add_argument("--template", default=None, help='prompt for each label (default: "a photo of {}")')
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_classify)

    p = sub.add_parser("status", parents=[common], help="what the library holds, and whether it is healthy")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("forget", parents=[common], help="drop a folder and its images from the library")
    p.add_argument("path", metavar="FOLDER")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_forget)

    p = sub.add_parser("gui", parents=[common], help="open the desktop app")
    _add_gui_arguments(p)
    p.set_defaults(handler=cmd_gui)

    p = sub.add_parser("watch", parents=[common], help="keep the library in step with its folders (runs until Ctrl-C)")
    p.add_argument("paths", nargs="*", metavar="FOLDER", help="folders to add and watch (default: the library's folders)")
    p.add_argument("--debounce", type=float, default=1.0, metavar="SECONDS",
                   help="how long a file must stay unchanged before it is indexed (default: %(default)s)")
    p.add_argument("--poll", action="store_true", help="check folders by polling instead of change events")
    p.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS",
                   help="seconds between checks of polled folders (default: %(default)s)")
    p.add_argument("--reconcile-interval", type=float, default=600.0, metavar="SECONDS",
                   help="seconds between full checks for missed changes (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, help="images per model batch")
    p.add_argument("--workers", type=_positive_int, help="decoding threads")
    p.set_defaults(handler=cmd_watch)

    p = sub.add_parser("rebuild", parents=[common], help="start a new, empty library, keeping the old file as a backup")
    p.set_defaults(handler=cmd_rebuild)

    p = sub.add_parser("duplicates", parents=[common], help="groups of photos that are the same picture (copies, resized or re-saved)")
    p.add_argument("--threshold", type=float, default=None, metavar="S",
                   help="how alike (0..1) near copies must be; higher finds fewer (default: the level "
                   "measured to find resized and re-saved copies without grouping different photos)")
    p.add_argument("--in", dest="within", action="append", default=[], metavar="FOLDER",
                   help="only photos in this folder (may be repeated)")
    p.add_argument("--json", action="store_true", help="print JSON: {groups: [{paths, exact, min_similarity}]}")
    p.set_defaults(handler=cmd_duplicates)

    _add_label_commands(sub, common)
    _add_interchange_commands(sub, common)

    p = sub.add_parser("doctor", parents=[common],
                       help="check this installation and library, saying what to do about each problem")
    p.add_argument("--json", action="store_true",
                   help="print JSON: {versions, paths, device, model, library, problems: [{problem, what_to_do}]}")
    p.set_defaults(handler=cmd_doctor)

    p = sub.add_parser(
        "completion", help="print a shell completion script: bash, zsh or fish",
        description="Print a completion script for your shell. bash: add `eval \"$(clipdesk completion bash)\"` "
        "to ~/.bashrc. zsh: `clipdesk completion zsh > ~/.zfunc/_clipdesk` with ~/.zfunc on $fpath. "
        "fish: `clipdesk completion fish > ~/.config/fish/completions/clipdesk.fish`.",
    )
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(handler=cmd_completion)

    p = sub.add_parser("desktop", help="add clipdesk to (or remove it from) this user's desktop menus (Linux)")
    p.add_argument("action", choices=["install", "uninstall"],
                   help="install: the launcher, icons and AppStream data under $XDG_DATA_HOME; "
                   "uninstall: remove them again")
    p.set_defaults(handler=cmd_desktop)

    return parser


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _add_label_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tag", parents=[common],
                       help="label the library's photos with a label set, kept for search (see docs/labels.md)")
    p.add_argument("photos", nargs="*", metavar="PHOTO", help="only these photos of the library")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--labels", help='comma-separated labels, e.g. "beach, mountains, city"')
    group.add_argument("--preset", choices=_preset_names(), help="a built-in label set (moderation: for --safe)")
    p.add_argument("--name", help="keep the set under this name (default: the labels themselves); "
                   "running a name again replaces its results")
    p.add_argument("--template", default=None, help='prompt for each label (default: "a photo of {}")')
    p.add_argument("--in", dest="within", action="append", default=[], metavar="FOLDER",
                   help="only photos in this folder (repeatable; default: the whole library)")
    p.add_argument("--min-probability", type=_probability, default=0.0, metavar="P",
                   help="a photo carries its most likely label only if at least this likely (default: 0)")
    p.add_argument("--once", action="store_true",
                   help="do not give this set to photos indexed later (default: they get it)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: {name, labelled, not_indexed, cancelled, seconds, counts}")
    p.set_defaults(handler=cmd_tag)

    p = sub.add_parser("labels", parents=[common], help="the library's label sets and photos per label; export as CSV")
    p.add_argument("--json", action="store_true", help="print JSON: a list of {name, kind, labels, counts, ...}")
    p.add_argument("--csv", metavar="FILE", help="write path,set,label,probability of every label photos carry")
    p.add_argument("--set", dest="set_name", metavar="NAME", help="with --csv: only this set")
    change = p.add_mutually_exclusive_group()
    change.add_argument("--activate", metavar="NAME", help="photos indexed later get this set")
    change.add_argument("--deactivate", metavar="NAME", help="photos indexed later no longer get this set")
    change.add_argument("--remove", metavar="NAME", help="drop this set and its labels (photos are not touched)")
    p.set_defaults(handler=cmd_labels)

    p = sub.add_parser("safe-search", parents=[common],
                       help="hide photos the moderation preset judges unsafe, in every search and list")
    p.add_argument("state", nargs="?", choices=["on", "off", "status"], default="status")
    p.add_argument("--threshold", type=float, metavar="T",
                   help="hide a photo when the chance it is anything but safe is at least T "
                   "(0 < T <= 1; default: 0.5)")
    p.add_argument("--json", action="store_true", help="print JSON: {enabled, threshold, moderation_applied}")
    p.set_defaults(handler=cmd_safe_search)



def _add_interchange_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", parents=[common],
                       help="write paths, photo facts, model and vectors for other tools (Parquet, npz, FAISS, Chroma)")
    p.add_argument("directory", metavar="DIR", help="folder to write into (created if needed)")
    p.add_argument("--format", required=True, choices=["parquet", "npz", "faiss", "chroma"],
                   help="parquet or npz: one file; faiss: an index plus an id-to-path table; "
                   "chroma: a persistent Chroma collection")
    p.add_argument("--json", action="store_true", help="print JSON: {photos, files, seconds}")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("import", parents=[common],
                       help="restore a library from a Parquet or npz export, without re-encoding")
    p.add_argument("source", metavar="FILE", help="clipdesk.parquet or clipdesk.npz (or the folder holding it)")
    p.add_argument("--map", dest="maps", action="append", default=[], metavar="OLD=NEW",
                   help="photos under OLD in the export are under NEW here (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON: {photos, folders, missing_folders, seconds}")
    p.set_defaults(handler=cmd_import)


def _add_gui_arguments(p: argparse.ArgumentParser) -> None:
    # Here rather than in clipdesk._gui, so building the parser never imports the GUI package;
    # `cmd_gui` imports it when the window is asked for.
    p.add_argument("folders", nargs="*", metavar="FOLDER",
                   help="folders to add (and index) and show on start; the desktop launcher passes these")
    p.add_argument("--screenshot", metavar="OUT.png", type=Path,
                   help="start, wait until idle, save a picture of the window, and exit")
    p.add_argument("--add", action="append", default=[], metavar="FOLDER",
                   help="add (and index) a folder on start")
    p.add_argument("--query", metavar="TEXT", help="search for this on start")
    p.add_argument("--classify", nargs="+", default=[], metavar="IMAGE",
                   help="classify these images on start (with --labels or --preset)")
    p.add_argument("--labels", help='comma-separated labels for --classify, e.g. "cat,dog"')
    p.add_argument("--preset", help="a built-in label set for --classify")
    p.add_argument("--size", default="1280x800", metavar="WxH", help="window size (default 1280x800)")
    _add_filter_options(p, window=True)


def _preset_names() -> list[str]:
    from ._presets import PRESETS

    return list(PRESETS)


def _add_result_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--limit", type=_positive_int, default=20, help="how many results (default: 20)")
    p.add_argument("--min-score", type=float, default=None, help="hide results scoring below this (cosine, -1..1)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: a list of {path, score, taken_at, taken_from, camera, width, height, type, size}")


def _add_filter_options(p: argparse.ArgumentParser, *, window: bool = False) -> None:
    """The filter options; for the window, those its filter row has, which it opens with."""
    from ._facts import TYPE_NAMES, Orientation

    g = p.add_argument_group(
        "filters the window opens with (kept in its filter row)" if window
        else "filters (applied before -n: every photo they keep can be found)"
    )
    g.add_argument("--after", metavar="DATE", help="taken on or after DATE: 2019, 2019-07 or 2019-07-14")
    g.add_argument("--before", metavar="DATE", help="taken on or before DATE (the whole year, month or day)")
    g.add_argument("--in", dest="in_folders", action="append", default=[], metavar="FOLDER",
                   help="only photos in FOLDER, any folder inside the library (repeatable)")
    g.add_argument("--type", dest="types", action="append", default=[], metavar="TYPES",
                   help=f"only these file types, e.g. jpeg,png ({', '.join(sorted(set(TYPE_NAMES.values())))})")
    g.add_argument("--camera", metavar="TEXT", help="camera make or model contains TEXT (any case)")
    g.add_argument("--orientation", choices=[o.value for o in Orientation], help="the photo's shape as shown")
    if window:
        return
    g.add_argument("--min-pixels", type=_positive_int, metavar="N", help="at least N pixels (width × height)")
    g.add_argument("--has-gps", action="store_true", help="only photos that record where they were taken")
    g.add_argument("--label", dest="with_labels", action="append", default=[], metavar="LABEL",
                   help="only photos carrying this label from `clipdesk tag` (repeatable: any of them)")
    g.add_argument("--safe", action="store_true",
                   help="hide photos the moderation preset judges unsafe (see `clipdesk safe-search`)")


def _filter(args: argparse.Namespace) -> Filter:
    """The filter the options ask for, as typed (folders are checked once the library is open)."""
    from ._facts import Orientation
    from ._filters import Filter, parse_date, parse_types

    return Filter(
        after=parse_date(args.after, end=False, option="--after") if args.after else None,
        before=parse_date(args.before, end=True, option="--before") if args.before else None,
        folders=tuple(args.in_folders),
        types=parse_types(args.types),
        camera=args.camera or None,
        orientation=Orientation(args.orientation) if args.orientation else None,
        min_pixels=getattr(args, "min_pixels", None),
        has_gps=getattr(args, "has_gps", False),
        labels=tuple(dict.fromkeys(label.strip() for label in getattr(args, "with_labels", []) if label.strip())),
    )


def _prepare_filter(library: Library, typed: Filter, *, safe: bool = False) -> Filter:
    """Check the filter's folders and labels, add safe search (asked for, or on in the library),
    and first read the facts of photos indexed before they
    were kept: a filter that silently skipped them would give a wrong answer, and reading
    them takes file headers only (239 photos in 0.014 s from a warm disk cache), once."""
    from ._labels import SafeSearchUnavailable


    for folder in typed.folders:
        if os.path.isfile(folder):
            raise UsageError(f"--in {folder} is a file; give a folder.")
    keep = library.resolve_filter(typed)
    stored = library.safe_search().enabled
    if safe or stored:
        try:
            keep = library.safe_filter(keep)
        except SafeSearchUnavailable as exc:
            if safe:
                raise
            raise SafeSearchUnavailable(
                f"{exc} Safe search is on for this library; `clipdesk safe-search off` turns it off."
            ) from None
    missing = library.undescribed(keep)
    if missing:
        print(
            f"clipdesk: reading the camera, place and file type of {missing} photo"
            f"{'s' if missing != 1 else ''} indexed by an earlier clipdesk (once; nothing is re-encoded)…",
            file=sys.stderr, flush=True,
        )
        bar = _CountBar("reading headers")  # a pipe gets the one line above
        try:
            library.describe(bar.update)
            bar.finish()
        finally:
            bar.close()
    return keep


def _photo_json(record: ImageRecord | None, path: str) -> dict[str, Any]:
    """What `--json` says about a photo besides its score."""
    from ._facts import date_taken

    if record is None:
        return {"path": display(path)}
    taken, source = date_taken(record.taken_at, record.facts.taken_offset if record.facts else None,
                               record.mtime_ns)
    facts = record.facts
    return {
        "path": display(record.path),
        "taken_at": taken,
        "taken_from": source.value,
        "camera": facts.camera if facts else None,
        "width": record.width,
        "height": record.height,
        "type": facts.file_type if facts else None,
        "size": record.size,
    }


def _options(args: argparse.Namespace, *, memory_index: bool = True) -> Any:
    from ._library import LibraryOptions

    return LibraryOptions(
        memory_index=memory_index,
        db_path=args.db,
        model=args.model,
        device=args.device,
        batch_size=getattr(args, "batch_size", None),
        allow_pickle=args.allow_pickle,
        workers=getattr(args, "workers", None),
        int8=getattr(args, "int8", False),
    )


JSON_DIGITS = 6  # every float in --json output: scores, probabilities, similarities, seconds


def _rounded(data: Any) -> Any:
    if isinstance(data, float):
        return round(data, JSON_DIGITS)
    if isinstance(data, dict):
        return {k: _rounded(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_rounded(v) for v in data]
    return data


def _print_json(data: Any) -> None:
    """Every command's --json output: floats rounded alike, so outputs compare and diff cleanly."""
    json.dump(_rounded(data), sys.stdout, indent=2)
    sys.stdout.write("\n")


# -- commands ---------------------------------------------------------------


def cmd_index(args: argparse.Namespace) -> int:
    from ._library import Library, check_folders

    check_folders(args.paths)
    with Library(_options(args)) as library:
        if not args.paths and not library.folders():
            raise ClipdeskError("No folders to index: give one, e.g. `clipdesk index ~/Pictures`.")
        bar = _CountBar()
        try:
            report = library.index(args.paths, reindex=args.reindex, progress=bar.indexing)
            bar.finish()
        finally:
            bar.close()
    if args.json:
        _print_json(report.to_json())
    else:
        rate = report.encoded / report.seconds if report.seconds and report.encoded else 0.0
        print(
            f"{report.indexed} indexed, {report.unchanged} unchanged, {report.moved} moved, "
            f"{report.removed} removed, {len(report.failed)} failed"
            + (f", {report.skipped} skipped (failed before, unchanged since)" if report.skipped else "")
            + _unsupported_summary(report.unsupported)
            + f" ({report.seconds:.1f} s" + (f", {rate:.1f} images/s)" if rate else ")")
        )
        for failure in report.failed:
            print(f"  skipped {printable(failure.path)}: {printable(failure.error)}", file=sys.stderr)
        from ._rawphoto import INSTALL_HINT, RAW_SUFFIXES

        if RAW_SUFFIXES & set(report.unsupported):
            print(f"clipdesk: {INSTALL_HINT}", file=sys.stderr)
    return 0


def _unsupported_summary(unsupported: dict[str, int]) -> str:
    """', 3 other files skipped (2 .mov, 1 .txt)': files in the folders that are not photos clipdesk reads."""
    total = sum(unsupported.values())
    if not total:
        return ""
    kinds = sorted(unsupported.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{count} {suffix or 'without extension'}" for suffix, count in kinds[:4])
    more = ", …" if len(kinds) > 4 else ""
    return f", {total} other file{'s' if total != 1 else ''} skipped ({printable(shown)}{more})"


def _print_hits(hits: Sequence[Any], as_json: bool) -> None:
    if as_json:
        _print_json([
            {"path": display(h.path), "score": h.score, **_photo_json(h.record, h.path)}
            for h in hits
        ])
        return
    if not hits:
        print("No matches.", file=sys.stderr)
    for hit in hits:
        print(f"{hit.score:6.3f}  {printable(hit.path)}")


def cmd_search(args: argparse.Namespace) -> int:
    from ._library import Library
    from ._querytext import from_words, parse_query
    from ._search import Query

    # The same parser as the search box, so the window and the terminal rank alike.
    parsed = parse_query(from_words(args.text))
    texts = ([parsed.text] if parsed.text else []) + list(args.also)
    for path in args.like:
        require_photo_path(path)
    typed = _filter(args)
    if parsed.labels:  # `label:beach` in the words is --label beach, as in the search box
        typed = replace(typed, labels=tuple(dict.fromkeys([*typed.labels, *parsed.labels])))
    query = Query(
        texts=tuple(texts),
        negatives=tuple(dict.fromkeys([*parsed.negatives, *args.negatives])),
        like=tuple(args.like),
        limit=args.limit,
        min_score=args.min_score,
    )
    if query.is_empty():
        raise ClipdeskError("Nothing to search for: give some words, or --like IMAGE.")
    # One query per process: searching the database directly beats building an index.
    with Library(_options(args, memory_index=False), create=False) as library:
        query = replace(query, filter=_prepare_filter(library, typed, safe=args.safe))
        _print_hits(library.search(query), args.json)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from ._library import Library
    from ._search import Query

    require_photo_path(args.image)
    typed = _filter(args)
    with Library(_options(args, memory_index=False), create=False) as library:
        keep = _prepare_filter(library, typed, safe=args.safe)
        hits = library.search(Query(like=(args.image,), limit=args.limit, min_score=args.min_score, filter=keep))
        _print_hits(hits, args.json)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ._facts import date_taken
    from ._library import Library

    typed = _filter(args)
    with Library(_options(args, memory_index=False), create=False) as library:
        photos = library.list_photos(_prepare_filter(library, typed, safe=args.safe), args.limit)
    if args.json:
        _print_json([_photo_json(p, p.path) for p in photos])
        return 0
    if not photos:
        print("No photos match.", file=sys.stderr)
    for photo in photos:
        taken, _ = date_taken(photo.taken_at, photo.facts.taken_offset if photo.facts else None, photo.mtime_ns)
        print(f"{taken[:16].replace('T', ' ')}  {printable(photo.path)}")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from ._classify import LabelSet
    from ._library import Library
    from ._presets import DEFAULT_TEMPLATE, parse_labels

    if args.preset:
        labels = LabelSet.preset(args.preset)
    else:
        labels = LabelSet.from_labels(parse_labels(args.labels), args.template or DEFAULT_TEMPLATE)
    with Library(_options(args)) as library:
        results = library.classify(args.images, labels)
    failed = 0
    if args.json:
        payload: list[dict[str, Any]] = []
        for item in results:
            if item.result is None:
                failed += 1
                payload.append({"path": display(item.path), "error": item.error})
            else:
                payload.append({"path": display(item.path), "labels": item.result.probabilities})
        _print_json(payload)
    for item in results:
        if item.result is None:
            if not args.json:
                failed += 1
            print(f"clipdesk: {printable(item.error or '')}", file=sys.stderr)
        elif not args.json:
            print(printable(item.path))
            for label, p in item.result.ranked():
                print(f"  {p * 100:5.1f}%  {'█' * round(p * 20):<20}  {printable(label)}")
    return 1 if failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from ._store import Store

    with Store(args.db, create=False) as store:
        model = store.model()
        folders = store.folders()
        data: dict[str, Any] = {
            "images": store.count_images(),
            "folders": [{"path": display(f.path), "images": f.image_count} for f in folders],
            "model": model.model_id if model else None,
            "database": display(str(args.db)),
            "size_bytes": _db_size(args.db),
            "integrity": store.integrity(),
        }
    if args.json:
        _print_json(data)
    else:
        print(f"Library:   {printable(str(args.db))} ({data['size_bytes'] / 1e6:.1f} MB)")
        print(f"Model:     {printable(data['model'] or 'none yet')}")
        print(f"Images:    {data['images']}")
        print(f"Integrity: {printable(data['integrity'])}")
        print("Folders:" + ("" if folders else "   none"))
        for f in folders:
            print(f"  {f.image_count:8d}  {printable(f.path)}")
    return 0 if data["integrity"] == "ok" else 1


def cmd_forget(args: argparse.Namespace) -> int:
    from ._library import Library, check_folders

    if os.path.isfile(args.path):  # (a folder that is gone can still be forgotten)
        check_folders([args.path])
    with Library(_options(args), create=False) as library:
        removed = library.forget(args.path)
    if args.json:
        _print_json({"folder": display(args.path), "removed": removed})
    else:
        print(
            f"Forgot {printable(args.path)} ({removed} images). "
            "The photos themselves were not touched."
        )
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    from ._gui.app import run

    _filter(args)  # a date that cannot be is refused here, in the options' own words

    return run(args)


def cmd_completion(args: argparse.Namespace) -> int:
    from ._completion import script

    sys.stdout.write(script(args.shell, build_parser()))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from ._diagnostics import collect

    report = collect(Path(args.db), args.model, device=args.device)
    if args.json:
        _print_json(report.as_json())
    else:
        print(report.as_text())
    return 1 if report.problems else 0


def cmd_desktop(args: argparse.Namespace) -> int:
    from . import _desktopentry as desktop

    home = desktop.data_home()
    if args.action == "install":
        written = desktop.install(home)
        launcher = next(p for p in written if p.suffix == ".desktop")
        print(f"Added clipdesk to your desktop's menus ({len(written)} files under {printable(str(home))}; "
              f"launcher: {printable(str(launcher))}).")
        print("Remove them with `clipdesk desktop uninstall`.")
    else:
        removed = desktop.uninstall(home)
        if removed:
            print(f"Removed clipdesk from your desktop's menus ({len(removed)} files under {printable(str(home))}).")
        else:
            print(f"clipdesk was not in your desktop's menus (nothing under {printable(str(home))}).")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ._service import IndexService
    from ._store import Store
    from ._watcher import check_poll_interval

    from ._library import check_folders

    check_poll_interval(args.poll_interval)
    check_folders(args.paths)
    if not args.paths:
        no_folders = ClipdeskError("No folders to watch: give one, e.g. `clipdesk watch ~/Pictures`.")
        if not Path(args.db).exists():
            raise no_folders
        with Store(args.db, create=False) as store:
            if not store.folders():
                raise no_folders
    stop = threading.Event()
    log = _EventLog()
    service = IndexService(
        _options(args),
        on_event=log,
        force_polling=args.poll,
        debounce=args.debounce,
        poll_interval=args.poll_interval,
        reconcile_interval=args.reconcile_interval,
    )

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():
            # Asked twice: leave now. Each batch is one transaction, so the
            # library stays whole; the batch in progress is redone next time.
            raise KeyboardInterrupt
        stop.set()

    # Ctrl-C and SIGTERM end the loop below; the service then stops cleanly.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    # The service's own warnings go to the terminal too, escaped like the event lines.
    log_handler = logging.StreamHandler(sys.stderr)
    log_handler.setLevel(logging.WARNING)  # the log file has the rest
    log_handler.setFormatter(PrintableFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logging.getLogger("clipdesk").addHandler(log_handler)
    try:
        service.start()
        for path in args.paths:
            service.add_folder(path)
        log.line(f"watching {display(str(args.db))}; press Ctrl-C to stop")
        while not stop.wait(0.5):
            if not service.running or log.fatal:
                break  # the library cannot be opened, or there is no model: said above
        log.line("stopping…")
        service.stop()
    finally:
        logging.getLogger("clipdesk").removeHandler(log_handler)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # Ended by a signal: a clean stop. Ended by itself: it could not go on (logged above).
    return 0 if stop.is_set() else 1


class _EventLog:
    """Prints service events to stderr, one line each (called from service threads)."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._last_progress = 0.0
        self.fatal = False

    def line(self, text: str) -> None:
        with self._lock:
            print(f"{time.strftime('%H:%M:%S')} {printable(text)}", file=sys.stderr, flush=True)

    def __call__(self, e: ServiceEvent) -> None:
        from . import _events as ev

        def where(path: str | None = None, folder: str | None = None) -> str:
            return f" {display(path)}" if path else (f" {display(folder)}" if folder else "")

        def images(n: int) -> str:
            return f"{n} image{'s' if n != 1 else ''}"

        match e:
            case ev.Progress():
                now = time.monotonic()
                # Big jobs get a line every few seconds, and one at the end.
                if e.done == 0 or (e.done < e.total and now - self._last_progress < 5.0):
                    return
                if e.done == e.total and e.total < 20:
                    return
                self._last_progress = now
                rate = f", {e.rate:.1f} images/s" if e.rate else ""
                self.line(f"indexing {e.done}/{e.total}{rate}{where(e.path, e.folder)}")
            case ev.ChangesQueued():
                self.line(f"changed: {e.count} path{'s' if e.count != 1 else ''}{where(e.path, e.folder)}")
            case ev.Indexed():
                self.line(f"indexed {images(e.count)} ({e.encoded} encoded){where(e.path, e.folder)}; library: {e.images}")
            case ev.Moved():
                self.line(f"moved {images(e.count)} (vectors kept){where(e.path, e.folder)}")
            case ev.PhotosRemoved():
                self.line(f"removed {images(e.count)}{where(e.path, e.folder)}")
            case ev.FolderRemoved():
                self.line(f"folder {display(e.folder)}: removed ({e.message})")
            case ev.FileSkipped():
                self.line(f"skipped{where(e.path, e.folder)}: {e.message}")
            case ev.FolderChanged():
                s = e.status
                self.line(f"folder {display(s.path)}: {s.state.value}" + (f" ({s.message})" if s.message else ""))
            case ev.ModelLoading():
                self.line("model: loading")
            case ev.ModelReady():
                self.line(f"model: ready ({e.model_id})")
            case ev.ModelFailed():
                self.line(f"model: unavailable ({e.message})")
                self.fatal = True
            case ev.Idle():
                self.line(f"up to date: {e.images} images")
            case ev.ServiceError():
                self.line(f"error{where(None, e.folder)}: {e.message}")
                self.fatal = self.fatal or e.fatal
            case ev.Started() | ev.Stopped():
                self.line(type(e).__name__.lower())
            case ev.ModelDownloading():
                pass  # a line per chunk would drown the log


def cmd_export(args: argparse.Namespace) -> int:
    from ._interchange import export_library
    from ._library import Library

    with Library(_options(args, memory_index=False), create=False) as library:
        bar = _CountBar("exporting")
        try:
            report = export_library(library, args.directory, args.format, progress=bar.update)
        finally:
            bar.close()
    files = [os.path.join(args.directory, name) for name in report.files]
    if args.json:
        _print_json({"photos": report.photos, "files": [display(f) for f in files], "seconds": round(report.seconds, 3)})
    else:
        print(f"Exported {report.photos} photos to {', '.join(printable(f) for f in files)} ({report.seconds:.1f} s).")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ._interchange import PathMap, check_export, import_library
    from ._library import Library

    # A bad --map or export is refused before a library is created or opened.
    maps = [PathMap.parse(m) for m in args.maps]
    check_export(args.source, args.model)
    with Library(_options(args, memory_index=False)) as library:
        bar = _CountBar("importing")
        try:
            report = import_library(library, args.source, maps, progress=bar.update)
        finally:
            bar.close()
    if args.json:
        _print_json({
            "photos": report.photos,
            "folders": [display(f) for f in report.folders],
            "missing_folders": [display(f) for f in report.missing_folders],
            "seconds": round(report.seconds, 3),
        })
        return 0
    print(f"Imported {report.photos} photos into {printable(str(args.db))} ({report.seconds:.1f} s); nothing was re-encoded.")
    for folder in report.missing_folders:
        print(
            f"  not on this disk (yet): {printable(folder)}; its photos are kept. "
            "Copy them there, or `clipdesk forget` it and import again with the right --map OLD=NEW.",
            file=sys.stderr,
        )
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from ._library import rebuild

    db: Path = args.db
    backup = rebuild(db)
    if backup is not None:
        print(f"Moved the old library to {printable(str(backup))}.")
    print(f"Created an empty library at {printable(str(db))}; run `clipdesk index PATH` to fill it.")
    return 0


# -- helpers ----------------------------------------------------------------


def cmd_duplicates(args: argparse.Namespace) -> int:
    from ._library import Library

    with Library(_options(args, memory_index=False), create=False) as library:
        bar = _CountBar("fingerprinting older photos")
        try:
            groups = library.duplicates(args.threshold, args.within, progress=bar.update)
            bar.finish()
        finally:
            bar.close()
    if args.json:
        _print_json({"groups": [g.to_json(display) for g in groups]})
        return 0
    if not groups:
        print("No duplicates found.")
        return 0
    spare = sum(len(g.photos) - 1 for g in groups)
    print(f"{len(groups)} group{'s' * (len(groups) != 1)} of duplicates; {spare} photo{'s' * (spare != 1)} could go.")
    for number, group in enumerate(groups, 1):
        kind = "identical files" if group.exact else f"near copies, similarity {group.min_similarity:.2f} or more"
        print(f"\n{number}. {kind}")
        print(f"  keep  {printable(group.photos[0].path)}  ({printable(group.keep_reason)})")
        for photo in group.photos[1:]:
            print(f"        {printable(photo.path)}")
    return 0

def cmd_tag(args: argparse.Namespace) -> int:
    from ._labels import LabelDefinition
    from ._library import Library
    from ._presets import parse_labels

    if args.preset:
        if args.name or args.template:
            raise UsageError("A preset keeps its own name and prompts: leave out --name and --template.")
        definition = LabelDefinition.preset(args.preset, min_probability=args.min_probability, active=not args.once)
    else:
        definition = LabelDefinition.typed(
            parse_labels(args.labels), name=args.name, template=args.template,
            min_probability=args.min_probability, active=not args.once,
        )
    if args.photos and args.within:
        raise UsageError("Give photos or --in folders, not both.")
    for path in args.photos:
        require_photo_path(path)
    with Library(_options(args, memory_index=False), create=False) as library:
        bar = _CountBar("labelling")
        try:
            report = library.apply_labels(
                definition, within=args.within, paths=args.photos or None,
                progress=lambda p: bar.update(p.done, p.total),
            )
        except KeyboardInterrupt:  # before the one transaction that saves, or rolled back with it
            print("clipdesk: interrupted; the library's labels were not changed.", file=sys.stderr)
            return 130
        finally:
            bar.close()
    if args.json:
        _print_json({**report.to_json(), "not_indexed": [display(p) for p in report.not_indexed]})
    else:
        counts = ", ".join(f"{printable(label)} {count}" for label, count in report.counts.items())
        print(
            f"Labelled {report.labelled} photo{'s' * (report.labelled != 1)} with "
            f"'{printable(report.name)}': {counts} ({report.seconds:.1f} s)."
        )
        if definition.active:
            print("Photos indexed later get this set too (`clipdesk labels --deactivate NAME` stops that).")
    for path in report.not_indexed:
        print(f"clipdesk: {printable(path)} is not in the library; index its folder first.", file=sys.stderr)
    return 1 if report.not_indexed else 0


def cmd_labels(args: argparse.Namespace) -> int:
    from ._library import Library

    if args.set_name and not args.csv:
        raise UsageError("--set chooses the set to export: use it with --csv FILE.")
    with Library(_options(args, memory_index=False), create=False) as library:
        if args.activate or args.deactivate:
            library.set_label_set_active(args.activate or args.deactivate, bool(args.activate))
        elif args.remove:
            library.remove_label_set(args.remove)
        if args.csv:
            rows = library.export_labels(args.csv, args.set_name)
            print(f"Wrote {rows} label{'s' * (rows != 1)} to {printable(args.csv)}.", file=sys.stderr)
            return 0
        sets = library.label_sets()
    if args.json:
        _print_json([s.to_json() for s in sets])
        return 0
    if not sets:
        print("No label sets yet: apply one with `clipdesk tag --labels \"beach, mountains, city\"`.")
        return 0
    for info in sets:
        state = "active" if info.active else "not applied to new photos"
        floor = f", minimum {info.min_probability:g}" if info.min_probability else ""
        print(f"{printable(info.name)} ({info.kind.value}, {info.photos} photos, {state}{floor})")
        for label, count in info.counts.items():
            print(f"  {count:8d}  {printable(label)}")
    return 0


def cmd_safe_search(args: argparse.Namespace) -> int:
    from ._labels import SafeSearch, unavailable_message
    from ._library import Library

    with Library(_options(args, memory_index=False), create=False) as library:
        setting = library.safe_search()
        if args.state != "status" or args.threshold is not None:
            enabled = setting.enabled if args.state == "status" else args.state == "on"
            setting = SafeSearch(enabled, setting.threshold if args.threshold is None else args.threshold)
            library.set_safe_search(setting)
        applied = library.moderation_applied()
    if args.json:
        _print_json({"enabled": setting.enabled, "threshold": setting.threshold, "moderation_applied": applied})
        return 0
    print(
        f"Safe search is {'on' if setting.enabled else 'off'}: "
        f"{'hiding' if setting.enabled else 'it would hide'} photos at least {setting.threshold:g} likely "
        "to be anything but safe, by the moderation preset."
    )
    if not applied:
        print(unavailable_message(), file=sys.stderr)
    return 0


def _db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


class _CountBar:
    """A tqdm bar on stderr counting photos, for terminals only; silent when output is piped."""

    def __init__(self, what: str | None = None) -> None:
        self.what = what
        self.enabled = sys.stderr.isatty()
        self._bar: Any = None

    def update(self, done: int, total: int, failed: int | None = None) -> None:
        if not self.enabled or total == 0:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.what, unit="img", file=sys.stderr, dynamic_ncols=True)
        self._bar.n = done
        if failed is not None:
            self._bar.set_postfix(failed=failed, refresh=False)
        self._bar.refresh()

    def indexing(self, progress: Any) -> None:
        """An indexer progress callback: the bar follows the indexing phase."""
        if progress.phase == "indexing":
            self.update(progress.done, progress.total, progress.failed)

    def finish(self) -> None:
        """The work is done: the bar says 100 % (its last report may have come a batch early)."""
        if self._bar is not None and self._bar.total:
            self._bar.n = self._bar.total
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()



def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _search_terms_kept(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`clipdesk search green -white`: a -word that is not one of search's options is a search term.

    argparse would take `-white` for an option (or `-night` for `-n ight`); as `not:white`
    it reaches the query parser, which reads both forms alike.
    """
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    global_values = {s for a in parser._actions if a.nargs != 0 for s in a.option_strings}
    at = 0
    while at < len(argv) and argv[at].startswith("-"):
        at += 2 if argv[at] in global_values else 1
    if at >= len(argv) or argv[at] != "search":
        return argv
    options = {s: a for a in commands["search"]._actions for s in a.option_strings}
    kept = argv[:at + 1]
    rest = iter(argv[at + 1:])
    for word in rest:
        action = options.get(word.split("=", 1)[0])
        if word == "--":
            kept += [word, *rest]
        elif action is not None:
            kept.append(word)
            value = next(rest, None) if action.nargs != 0 and "=" not in word else None
            if value is not None:
                kept.append(value)
        elif word.startswith("-") and not word.startswith("--") and len(word) > 1 and not _is_number(word) \
                and not (word[:2] in options and word[2:].isdigit()):
            kept.append("not:" + word[1:])
        else:
            kept.append(word)
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_search_terms_kept(list(sys.argv[1:] if argv is None else argv), parser))
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    from . import _logfile as logfile

    logfile.install(verbose=bool(getattr(args, "verbose", False)))
    try:
        return handler(args)
    except UsageError as exc:  # like a bad option: status 2
        print(f"clipdesk: {printable(str(exc))}", file=sys.stderr)
        return 2
    except ClipdeskError as exc:
        print(f"clipdesk: {printable(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clipdesk: interrupted; everything indexed so far is saved.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error.
        sys.stderr.close()
        return 0
    except MemoryError:
        print("clipdesk: out of memory; close other programs and try again.", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line for the user, the traceback for the log
        logging.getLogger("clipdesk").exception("internal error in `clipdesk %s`", args.command)
        print(
            f"clipdesk: internal error ({type(exc).__name__}); this is a bug in clipdesk, not a "
            f"problem with your photos or library. Details are in {printable(str(logfile.log_path()))}.",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
