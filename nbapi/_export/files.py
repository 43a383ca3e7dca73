"""Reading the notebook, writing the export (manifest, --force), ``%nbapi export``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cells import Exported, ExportError
from .exporter import export_notebook


def read_notebook(path: Path) -> Any:
    """The notebook at ``path`` as nbformat reads it; a UserError for a missing or bad file."""
    import nbformat

    if path.suffix != ".ipynb":
        msg = f"{str(path)!r} is not a notebook; give a .ipynb file"
        raise ExportError(msg)
    try:
        found = path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL
        found = False
    if not found:
        msg = f"notebook {str(path)!r} does not exist; check the path"
        raise ExportError(msg)
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = f"cannot read {str(path)!r} as a notebook ({first}); save it again from Jupyter"
        raise ExportError(msg) from None


def default_directory(notebook: Path) -> Path:
    return notebook.with_name(f"{notebook.stem}-export")


MANIFEST = ".nbapi-export.json"  # what the last export wrote: relative path -> sha256


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(directory: Path) -> dict[str, str]:
    try:
        files = json.loads((directory / MANIFEST).read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def check_overwrite(outputs: dict[str, str], directory: Path, force: bool) -> None:
    """Refuse to replace a file unless the previous export wrote exactly it (or ``force``)."""
    written = _manifest(directory)
    for relative, text in outputs.items():
        target = directory / relative
        if not target.exists() and not target.is_symlink():
            continue
        if not target.is_file():
            msg = f"{str(target)!r} is not a file; move it away, then export again"
            raise ExportError(msg)
        current = _digest(target.read_bytes())
        if force or current in (written.get(relative), _digest(text.encode("utf-8"))):
            continue
        msg = (
            f"{str(target)!r} differs from what nbapi last exported there (hand edits?); "
            "move it away, or export again with --force to overwrite it"
        )
        raise ExportError(msg)


def write_export(exported: Exported, directory: Path, force: bool = False) -> list[Path]:
    """Write every file into a temporary directory, then move them into ``directory``.

    A file the previous export did not write exactly as it is now is never replaced
    unless ``force``: hand edits are not lost.
    """
    directory = Path(directory)
    outputs = exported.outputs()
    try:
        if directory.exists() and not directory.is_dir():
            msg = f"{str(directory)!r} exists and is not a directory; choose another output"
            raise ExportError(msg)
        if directory.is_dir():
            check_overwrite(outputs, directory, force)
        return _move_into(outputs, directory)
    except ExportError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, bad text
        why = getattr(exc, "strerror", None) or exc
        msg = f"cannot write the export into {str(directory)!r} ({why}); choose another output"
        raise ExportError(msg) from None


def _move_into(outputs: dict[str, str], directory: Path) -> list[Path]:
    parent = directory.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".nbapi-export-", dir=parent))
    try:
        for relative, text in outputs.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        directory.mkdir(exist_ok=True)
        written = []
        for relative in outputs:
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, target)
            written.append(target)
        digests = {rel: _digest(text.encode("utf-8")) for rel, text in outputs.items()}
        manifest = json.dumps({"files": digests}, indent=1, sort_keys=True) + "\n"
        (directory / MANIFEST).write_text(manifest, encoding="utf-8")
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class ExportResult:
    """What ``%nbapi export`` shows: a short deterministic summary."""

    notebook: str
    directory: str
    exported: Exported

    def __repr__(self) -> str:
        e = self.exported
        lines = [
            f"exported {self.notebook} to {self.directory}: app.py ({e.routes} %%route cells), "
            f"test_app.py ({e.tests} tests), requirements.txt"
            + (", README.md" if "README.md" in e.files else "")
        ]
        lines += [f"  extra file: {name}" for name in e.files if name != "README.md"]
        lines += [f"  note: {note}" for note in e.notes]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def export_path(
    notebook: Path | str,
    directory: Path | str | None = None,
    *,
    force: bool = False,
    fresh: bool = False,
    history: Sequence[str] | None = None,
) -> ExportResult:
    """Export the notebook file at ``notebook`` into ``directory`` (default NOTEBOOK-export).

    ``force`` replaces files that differ from what the previous export wrote there.
    ``fresh``: take the expected responses from a run in a fresh kernel (see _rerun),
    else from the saved outputs. ``history``: the kernel's inputs (``_ih``), to warn
    about cells run after the last save.
    """
    from .._readme import readme_text
    from .._rerun import clean_run_note, fresh_run, unsaved_note

    path = Path(notebook)
    nb = read_notebook(path)
    notes = [note for note in [unsaved_note(nb, history)] if note]
    if fresh:
        nb, failed = fresh_run(nb, path.resolve().parent)
        notes += failed
    elif (note := clean_run_note(nb)) is not None:
        notes.append(note)
    exported = export_notebook(nb, path.name, path.resolve().parent)
    exported.notes[:0] = notes
    readme = readme_text(path.name, exported.app_py, exported.tests, fresh)
    exported.files.setdefault("README.md", readme)
    target = Path(directory) if directory is not None else default_directory(path)
    write_export(exported, target, force=force)
    shown = target
    if target.is_absolute() and target.resolve().is_relative_to(Path.cwd().resolve()):
        shown = target.resolve().relative_to(Path.cwd().resolve())  # no machine paths shown
    return ExportResult(path.name, str(shown), exported)


def current_notebook(environ: dict[str, str] | None = None) -> Path | None:
    """The kernel's notebook, from JPY_SESSION_NAME (set by jupyter_server for its kernels)."""
    env = os.environ if environ is None else environ
    name = env.get("JPY_SESSION_NAME", "")
    if not name.endswith(".ipynb"):
        return None
    path = Path(name)
    for candidate in (path, Path.cwd() / path, Path.cwd() / path.name):
        if candidate.is_file():
            return candidate
    return None
