"""Refresh the pinned environments: re-lock, re-execute the tutorials, run every test.

Usage, from the repository root, in the test environment (the README's second command)::

    python tools/refresh.py              # newest releases that pyproject.toml allows
    python tools/refresh.py --keep       # keep the current pins; only resolve what changed

It writes ``requirements/tutorial.txt`` and ``requirements/test.txt`` with uv for every
Python nbapi supports (``--universal``), installs the test lock into this environment,
re-executes the tutorial notebooks with ``notebooks/run_all.py`` so their saved outputs
match the new packages, and runs ``python -m pytest``. Review ``git diff`` and commit.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {
    "tutorial": ROOT / "requirements" / "tutorial.txt",
    "test": ROOT / "requirements" / "test.txt",
}
LOWEST_PYTHON = "3.10"  # pyproject.toml's requires-python


def uv() -> list[str]:
    """How to call uv: the one on PATH, else the one installed into this environment."""
    if shutil.which("uv"):
        return ["uv"]
    run([sys.executable, "-m", "pip", "install", "-q", "uv"])
    return [sys.executable, "-m", "uv"]


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def lock(extra: str, upgrade: bool) -> list[str]:
    command = [*uv(), "pip", "compile", "--quiet", "--universal"]
    command += ["--python-version", LOWEST_PYTHON, "pyproject.toml", "--extra", extra]
    command += ["-o", str(LOCKS[extra].relative_to(ROOT))]
    command += ["--custom-compile-command", "python tools/refresh.py"]
    return [*command, "--upgrade"] if upgrade else command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep current pins where possible")
    parser.add_argument("--no-tests", action="store_true", help="stop after the notebooks")
    args = parser.parse_args(argv)
    try:
        for extra in LOCKS:
            run(lock(extra, upgrade=not args.keep))
        run(
            [sys.executable, "-m", "pip", "install", "-q", "-r", "requirements/test.txt", "-e", "."]
        )
        run([sys.executable, "notebooks/run_all.py", "-j", "2"])
        if not args.no_tests:
            run([sys.executable, "-m", "pytest"])
    except subprocess.CalledProcessError as exc:
        print(f"refresh: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})")
        return 1
    print("refresh: done; review `git diff requirements notebooks` and commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
