"""The package passes its own linters: ruff (lint and format) and mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "nbapi", "tests", "benchmarks", "tools"],
        ["ruff", "format", "--check", "nbapi", "tests", "benchmarks", "tools"],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_passes(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pure_modules_do_not_import_ipython() -> None:
    # Imports flow one way: only the magics layer knows IPython.
    code = (
        "import sys, nbapi._spec, nbapi._registry, nbapi._runner, nbapi._client, nbapi._session,"
        " nbapi._rules, nbapi._contract, nbapi._openapi, nbapi._checkpoints;"
        "print('IPython' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
