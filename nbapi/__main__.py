"""The ``nbapi`` command line: ``nbapi export NOTEBOOK.ipynb [-o DIR]``.

Exit status: 0 exported; 1 the notebook cannot be exported faithfully (the report
names each cell and why, and nothing was written); 2 bad arguments or an
unreadable notebook (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ._export import ExportError, export_path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage block: the problem and where to look.
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


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
    export.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory to write (default: NOTEBOOK-export next to the notebook)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = export_path(args.notebook, args.output)
    except ExportError as exc:
        if exc.problems:
            print(exc.report(), file=sys.stderr)
            return 1
        print(f"nbapi: error: {exc}", file=sys.stderr)
        return 2
    print(repr(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
