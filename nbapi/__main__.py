"""The ``nbapi`` command line: ``nbapi export NOTEBOOK.ipynb [-o DIR]``, ``nbapi tutorial``,
``nbapi diff OLD NEW``.

Exit status of ``export``: 0 exported; 1 the notebook cannot be exported faithfully (the
report names each cell and why, and nothing was written); 2 bad arguments or an
unreadable notebook (one line on stderr). ``tutorial`` becomes JupyterLab. ``diff``: 0 no
change breaks clients, 1 some change does, 2 bad arguments or an unreadable document.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._commands import add_export_options, port_number
from ._errors import UserError, one_line
from ._export import ExportError, export_path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage block: the problem and where to look.
        self.exit(2, one_line(f"{self.prog}: error: {message}; see {self.prog} --help") + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nbapi", description="Tools for nbapi notebooks.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    export = commands.add_parser(
        "export",
        help="write app.py, test_app.py and requirements.txt from a notebook",
        description=(
            "Export a notebook built with nbapi to a plain FastAPI app (app.py), its tests "
            "(test_app.py: the notebook's %%http requests and checks) and requirements.txt. "
            "Cells tagged nbapi-skip or raises-exception are left out; a cell tagged "
            "nbapi-export goes into app.py whole."
        ),
    )
    export.add_argument("notebook", type=Path, help="the .ipynb file, as last saved")
    add_export_options(export)  # the same options as %nbapi export
    tutorial = commands.add_parser(
        "tutorial",
        help="open the tutorial notebooks in JupyterLab",
        description=(
            "Serve the tutorial notebooks with JupyterLab on 127.0.0.1, opened at the "
            "quickstart. It works as root (containers, CI boxes) and on a machine with no "
            "display: then no browser is started; open the printed URL."
        ),
    )
    tutorial.add_argument(
        "directory",
        type=Path,
        nargs="?",
        default=Path("notebooks"),
        help="the folder of notebooks (default: ./notebooks, as in a clone of nbapi)",
    )
    tutorial.add_argument("--port", type=port_number, default=8888, help="first port to try (8888)")
    _add_diff(commands)
    return parser


def _add_diff(commands: Any) -> None:
    diff = commands.add_parser(
        "diff",
        help="list the changes between two OpenAPI documents; exit 1 when one breaks clients",
        description=(
            "Compare two OpenAPI documents (.json, or .yaml/.yml) operation by operation and "
            "print one line per change, breaking ones first, each with its rule. Exit status: "
            "0 when no change breaks clients, 1 when one does, 2 on bad arguments or an "
            "unreadable document, so CI can gate a deployment on it."
        ),
    )
    diff.add_argument("old", type=Path, help="the published contract (e.g. the last release)")
    diff.add_argument("new", type=Path, help="the candidate (e.g. this build's /openapi.json)")
    diff.add_argument(
        "--response-enum-added",
        choices=("breaking", "compatible"),
        default="breaking",
        help="how a new value in a response enum counts (default: breaking)",
    )


def run_diff(old: Path, new: Path, response_enum_added: str) -> int:
    from ._contract import ContractError, diff_documents, load_document
    from ._rules import Policy

    try:
        before = load_document(old)
        after = load_document(new)
    except ContractError as exc:
        print(f"nbapi: error: {exc}", file=sys.stderr)
        return 2
    rules = Policy(response_enum_added_breaks=response_enum_added == "breaking")
    diff = diff_documents(before, after, rules)
    for line in diff.lines():
        print(line)
    return 0 if diff.ok else 1


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL
        return False


def jupyter_lab_argv(directory: Path, port: int) -> list[str]:
    """The JupyterLab command ``nbapi tutorial`` runs: as root and headless where needed."""
    argv = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={directory}"]
    argv += ["--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}"]
    if (directory / "00-quickstart.ipynb").exists():
        argv.append("--LabApp.default_url=/lab/tree/00-quickstart.ipynb")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # JupyterLab refuses root without it
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        argv.append("--no-browser")  # nothing to open a browser on: the URL is printed
    return argv


def open_tutorial(directory: Path, port: int) -> NoReturn:
    argv = jupyter_lab_argv(directory.resolve(), port)
    sys.stdout.flush()
    os.execv(argv[0], argv)  # JupyterLab takes over this process, its signals and its exit


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "diff":
        return run_diff(args.old, args.new, args.response_enum_added)
    if args.command == "tutorial":
        if not _is_dir(args.directory):
            print(
                f"nbapi: error: no notebook folder {str(args.directory)!r}; run nbapi tutorial "
                "from a clone of nbapi, or name the folder: nbapi tutorial PATH",
                file=sys.stderr,
            )
            return 2
        open_tutorial(args.directory, args.port)
    try:
        result = export_path(
            args.notebook, args.output, force=args.force, fresh=not args.saved_outputs
        )
    except UserError as exc:
        if isinstance(exc, ExportError) and exc.problems:
            print(exc.report(), file=sys.stderr)
            return 1
        print(one_line(f"nbapi: error: {exc}"), file=sys.stderr)
        return 2
    print(repr(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
