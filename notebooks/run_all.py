"""Execute tutorial notebooks in place with nbclient and save their outputs.

Usage (from anywhere)::

    python notebooks/run_all.py                       # every NN-*.ipynb in notebooks/
    python notebooks/run_all.py notebooks/03-*.ipynb  # just these
    python notebooks/run_all.py -j 2 --timeout 60 ...

Each notebook runs in a fresh ``python3`` kernel with ``notebooks/`` as its working
directory, like nbval runs it, and is written back with its new outputs, execution
counts and a clean kernelspec, without widget state (it changes on every run). Cells
tagged ``nbval-skip`` are left unrun and without outputs, as nbval leaves them. A
notebook whose cell raises is NOT saved (the old file stays) and the script exits
with status 1 after running the others.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def run(path: Path, timeout: int) -> tuple[Path, str | None, float]:
    """Run one notebook; return (path, error or None, seconds)."""
    start = time.monotonic()
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(HERE)}},
        record_timing=False,  # no dates in the saved metadata
    )
    # Cells tagged nbval-skip (an exercise's check, for the learner to run once they have
    # answered) are not run here either: they are saved without outputs.
    skipped = {i: c for i, c in enumerate(nb.cells) if "nbval-skip" in c.metadata.get("tags", [])}
    nb.cells = [c for i, c in enumerate(nb.cells) if i not in skipped]
    try:
        client.execute()
    except CellExecutionError as exc:
        return path, str(exc).strip().splitlines()[-1], time.monotonic() - start
    for index, cell in sorted(skipped.items()):
        cell.outputs, cell.execution_count = [], None
        nb.cells.insert(index, cell)
    for cell in nb.cells:
        # nbclient may leave execution metadata behind; keep diffs to what changed.
        cell.metadata.pop("execution", None)
    # Widget state is thousands of lines with random model ids, new on every run; the
    # widgets only work with a live kernel anyway, and nbval compares their text/plain.
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path, None, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9]*.ipynb")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell (default 120)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="notebooks run at once")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted(HERE.glob("[0-9]*.ipynb"))
    if not paths:
        print("no notebooks to run", file=sys.stderr)
        return 1
    failed = 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for path, error, seconds in pool.map(lambda p: run(p, args.timeout), paths):
            status = "ok" if error is None else f"FAILED: {error}"
            print(f"{path.name}: {status} ({seconds:.1f} s)", flush=True)
            failed += error is not None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
