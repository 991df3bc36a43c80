"""What to put in a bug report, and what is wrong here: `clipdesk doctor` and Help ▸ Copy diagnostics.

One collection (versions, where files live, device, model, library, problems), two
readers: the terminal and the clipboard get `as_text()`, `doctor --json` gets `as_json()`.
Each problem carries what to do about it. Qt-free; touches no network.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__
from ._errors import ClipdeskError
from ._paths import cache_dir, data_dir, display, printable, thumbnail_dir

# Distributions whose versions a bug report needs (name shown, distribution names to try).
_PACKAGES = (
    ("torch", ("torch",)),
    ("transformers", ("transformers",)),
    ("PySide6", ("PySide6-Essentials", "PySide6")),
    ("pillow", ("pillow",)),
    ("pillow-heif", ("pillow-heif",)),
    ("rawpy", ("rawpy",)),
    ("numpy", ("numpy",)),
    ("apsw", ("apsw",)),
    ("sqlite-vec", ("sqlite-vec",)),
    ("huggingface-hub", ("huggingface-hub",)),
    ("watchdog", ("watchdog",)),
)
LOW_DISK_BYTES = 1_000_000_000


@dataclass(frozen=True)
class Problem:
    """Something wrong here, and what the user can do about it."""

    what: str
    todo: str


@dataclass(frozen=True)
class Diagnostics:
    versions: dict[str, str | None]
    paths: dict[str, str]
    device: str
    model: dict[str, Any]
    library: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """Plain data for `doctor --json`."""
        return {
            "versions": self.versions,
            "paths": self.paths,
            "device": self.device,
            "model": self.model,
            "library": self.library,
            "problems": [{"problem": p.what, "what_to_do": p.todo} for p in self.problems],
        }

    def as_text(self) -> str:
        """The report as lines for a terminal or a bug report (control characters escaped)."""
        lines = [f"clipdesk {self.versions['clipdesk']} on {self.versions['system']}, "
                 f"Python {self.versions['python']}"]
        lines.append("Versions:  " + ", ".join(
            f"{name} {version}" for name, version in self.versions.items()
            if name not in ("clipdesk", "system", "python") and version))
        lines.append("Where clipdesk keeps its files:")
        width = max(len(k) for k in self.paths)
        lines += [f"  {name:<{width}}  {where}" for name, where in self.paths.items()]
        lines.append(f"Device:    {self.device}")
        model = self.model
        state = {True: "downloaded", False: "not downloaded yet", None: "built in"}[model["available"]]
        lines.append(f"Model:     {model['id']} ({model['source']}; {state}"
                     + (f": {model['where']}" if model.get("where") else "") + ")")
        lib = self.library
        if lib.get("error"):
            lines.append(f"Library:   cannot be read ({lib['error']})")
        elif not lib["exists"]:
            lines.append("Library:   none yet (add a folder to start one)")
        else:
            lines.append(f"Library:   {lib['images']} photo{'s' if lib['images'] != 1 else ''} in {lib['folders']} folder"
                         f"{'s' if lib['folders'] != 1 else ''}, {lib['size_bytes'] / 1e6:.1f} MB, "
                         f"integrity {lib['integrity']}")
        if not self.problems:
            lines.append("Problems:  none found")
        else:
            lines.append("Problems:")
            for number, problem in enumerate(self.problems, 1):
                lines.append(f"  {number}. {problem.what}")
                lines.append(f"     What to do: {problem.todo}")
        return "\n".join(printable(line) for line in lines)


def versions() -> dict[str, str | None]:
    """clipdesk's, Python's, the system's and each dependency's version (None: not installed)."""
    found: dict[str, str | None] = {
        "clipdesk": __version__,
        "python": platform.python_version(),
        "system": platform.platform(terse=True),
    }
    for name, distributions in _PACKAGES:
        found[name] = None
        for dist in distributions:
            with contextlib.suppress(metadata.PackageNotFoundError):
                found[name] = metadata.version(dist)
                break
    with contextlib.suppress(ImportError):
        import apsw

        found["sqlite"] = apsw.sqlite_lib_version()
    return found


def settings_location() -> str:
    """Where the app's preferences live (QSettings' native place for organisation and app "clipdesk")."""
    if sys.platform == "win32":
        return r"registry: HKEY_CURRENT_USER\Software\clipdesk\clipdesk"
    if sys.platform == "darwin":
        return str(Path.home() / "Library" / "Preferences" / "com.clipdesk.clipdesk.plist")
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if os.path.isabs(config) else Path.home() / ".config"
    return str(base / "clipdesk" / "clipdesk.conf")


def model_cache_dir() -> str:
    """Where downloaded models are kept (the Hugging Face cache, shared with other apps)."""
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return str(Path.home() / ".cache" / "huggingface" / "hub")


def paths(db_path: Path) -> dict[str, str]:
    from ._logfile import log_path

    found = {
        "library": db_path,
        "data": data_dir(),
        "thumbnails": thumbnail_dir(),
        "cache": cache_dir(),
        "settings": settings_location(),
        "logs": log_path().parent,
        "models": model_cache_dir(),
    }
    return {name: display(str(where)) for name, where in found.items()}


def _device(probe: bool, requested: str = "auto") -> str:
    """Where the model runs; probing imports torch (a second or two), so the GUI asks only once it has."""
    if not probe and "torch" not in sys.modules:
        return f"{requested} (not checked: the model is not loaded yet)"
    try:
        import torch

        from ._encoder import pick_device

        chosen = pick_device(requested)
        if chosen.startswith("cuda"):
            return f"{chosen} ({torch.cuda.get_device_name(0)})"
        return chosen
    except Exception as exc:  # a broken torch install is exactly what a report must show
        return f"unknown ({type(exc).__name__}: {exc})"


def _model(library_model: str | None, requested: str | None) -> tuple[dict[str, Any], list[Problem]]:
    from ._models import DEFAULT_MODEL, TEST_PREFIX, cached, parse

    chosen = requested or library_model or DEFAULT_MODEL
    source = "asked for" if requested else ("the library's" if library_model else "the default")
    info: dict[str, Any] = {"id": chosen, "source": source, "available": None, "where": None}
    problems: list[Problem] = []
    if chosen.startswith(TEST_PREFIX):
        return info, problems
    try:
        spec = parse(chosen)
    except ClipdeskError as exc:
        info["available"] = False
        problems.append(Problem(str(exc), "Choose another model (Settings in the app, or --model), or "
                                          "put the model folder back."))
        return info, problems
    if spec.folder is not None:
        info.update(available=True, where=str(spec.folder))
        return info, problems
    folder = None
    with contextlib.suppress(ClipdeskError):
        folder = cached(spec.model_id)
    info.update(available=folder is not None, where=str(folder) if folder else None)
    if folder is None:
        problems.append(Problem(
            f"The model {spec.model_id} is not downloaded yet.",
            "clipdesk downloads it the first time it is needed (about 600 MB for the default model), "
            "so connect to the internet once; or choose a folder holding a CLIP model "
            "(Settings in the app, or --model FOLDER).",
        ))
    return info, problems


def _library(db_path: Path) -> tuple[dict[str, Any], str | None, list[Problem]]:
    from ._store import Store, rebuild_advice

    info: dict[str, Any] = {"exists": db_path.exists()}
    if not info["exists"]:
        return info, None, []
    problems: list[Problem] = []
    try:
        with Store(db_path, create=False, read_only=True) as store:
            model = store.model()
            folders = store.folders()
            info.update(
                images=store.count_images(),
                folders=len(folders),
                size_bytes=sum(p.stat().st_size for p in (db_path, Path(f"{db_path}-wal")) if p.exists()),
                integrity=store.integrity(),
            )
    except ClipdeskError as exc:
        info["error"] = str(exc)
        return info, None, [Problem(f"The library cannot be read: {exc}", rebuild_advice(str(db_path)))]
    if info["integrity"] != "ok":
        problems.append(Problem(f"The library has a problem: {info['integrity']}.",
                                "Run `clipdesk index` to repair what it can; if this stays, "
                                + rebuild_advice(str(db_path))))
    for folder in folders:
        if not os.path.isdir(folder.path):
            problems.append(Problem(
                f"The folder {folder.path} is not there (its {folder.image_count} photos are kept).",
                "Plug its drive in or mount its share again; if it is gone for good, remove it "
                f"in the app's Folders panel or with `clipdesk forget {folder.path}`.",
            ))
    return info, model.model_id if model else None, problems


def _environment(db_path: Path, check_display: bool) -> list[Problem]:
    from ._logfile import log_path

    problems = []
    folder = db_path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < LOW_DISK_BYTES:
            problems.append(Problem(f"Only {free / 1e6:.0f} MB are free where the library is kept ({folder}).",
                                    "Free some disk space: indexing and thumbnails need room to grow."))
    logs = log_path().parent
    probe = logs
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        problems.append(Problem(f"The log folder {logs} cannot be written, so errors are not recorded.",
                                "Make the folder writable by your user (or remove it so clipdesk creates it)."))
    if check_display:
        from ._gui.displaycheck import problem as display_problem

        reason = display_problem()
        if reason:
            problems.append(Problem("The desktop app cannot open its window here.", reason))
    return problems


def collect(db_path: Path, model: str | None = None, *, device: str = "auto", probe_device: bool = True,
            check_display: bool = True) -> Diagnostics:
    """Everything a bug report needs about this installation and this library."""
    library, library_model, problems = _library(db_path)
    model_info, model_problems = _model(library_model, model)
    return Diagnostics(
        versions=versions(),
        paths=paths(db_path),
        device=_device(probe_device, device),
        model=model_info,
        library=library,
        problems=problems + model_problems + _environment(db_path, check_display),
    )
