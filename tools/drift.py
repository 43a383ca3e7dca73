"""What the newest releases would change: the test suite against them, in a scratch venv.

Usage, from the repository root (not part of CI; run it weekly, or before a refresh)::

    python tools/drift.py [PYTEST ARGS...]

It installs nbapi with its test extras, unpinned, into a new virtual environment in a
temporary folder, prints every package whose newest allowed release differs from
``requirements/test.txt`` (and the ones the lock does not know), then runs the test suite
there and prints its summary. Exit status: 0 when the suite passes against the newest
releases, 1 when it fails (a breaking upstream release: see the failures before it reaches
the lock), 2 when the scratch environment cannot be built.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "test.txt"
# The project itself, and what every new venv brings: not in the lock, not drift.
UNLOCKED = frozenset({"nbapi", "pip", "setuptools", "wheel"})
TEST_TIMEOUT = 90 * 60  # seconds; the whole suite takes about 10 minutes on 2 cores


def locked(text: str) -> dict[str, str]:
    """``name -> version`` of the lock's pins that apply to this Python."""
    environment = default_environment()
    found = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            found[canonicalize_name(requirement.name)] = next(iter(requirement.specifier)).version
    return found


def installed(freeze: str) -> dict[str, str]:
    """``name -> version`` from ``pip list --format=freeze``."""
    pairs = (line.partition("==") for line in freeze.splitlines())
    return {canonicalize_name(name): version for name, _, version in pairs if version}


def drift(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """One line per package whose version differs, sorted by name."""
    lines = []
    for name in sorted(old.keys() | new.keys()):
        if name in UNLOCKED or old.get(name) == new.get(name):
            continue
        lines.append(f"{name}: {old.get(name, '(not locked)')} -> {new.get(name, '(gone)')}")
    return lines


def main(argv: list[str] | None = None) -> int:
    pytest_args = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="nbapi-drift-") as scratch:
        env_dir = Path(scratch) / "venv"
        venv.create(env_dir, with_pip=True)
        python = str(env_dir / "bin" / "python")
        install = [python, "-m", "pip", "install", "-q", "--upgrade", "-e", ".[test]"]
        if subprocess.run(install, cwd=ROOT).returncode != 0:
            print("drift: the newest releases do not install together (see pip's message)")
            return 2
        freeze = subprocess.run(
            [python, "-m", "pip", "list", "--format=freeze"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        changes = drift(locked(LOCK.read_text()), installed(freeze))
        print(f"drift: {len(changes)} package(s) differ from {LOCK.relative_to(ROOT)}")
        for line in changes:
            print("  " + line)
        # The scratch venv as if activated: tests start kernels and tools from PATH.
        env = {**os.environ, "VIRTUAL_ENV": str(env_dir)}
        env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        tests = subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=TEST_TIMEOUT,
        )  # fmt: skip
        lines = tests.stdout.strip().splitlines()
        failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
        print(*failed, sep="\n")
        print("drift: tests against the newest releases:", lines[-1] if lines else "no output")
        return 0 if tests.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
