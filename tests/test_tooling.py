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


# The IPython layer: the magics, and the widgets (ipywidgets itself imports IPython).
IPYTHON_LAYER = {
    "nbapi._magics",
    "nbapi._widgets",
    "nbapi._views",
    "nbapi._fields",
    "nbapi._builder",
    "nbapi._explorer",
    "nbapi._fuzz_widgets",
}
MODULES = sorted(  # subpackages too: nbapi._export and its modules
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in (ROOT / "nbapi").rglob("*.py")
    if path != ROOT / "nbapi" / "__init__.py"
)


@pytest.mark.parametrize("module", sorted(set(MODULES) - IPYTHON_LAYER))
def test_pure_modules_do_not_import_ipython(module: str) -> None:
    # Imports flow one way: only the magics layer knows IPython.
    code = f"import sys, {module}; print('IPython' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_the_ipython_layer_is_what_the_purity_guard_exempts() -> None:
    assert set(MODULES) >= IPYTHON_LAYER


def test_public_api_is_pinned() -> None:
    import nbapi

    assert nbapi.__all__ == [
        "__version__",
        "explorer",
        "get_app",
        "get_client",
        "load_ipython_extension",
        "request_builder",
        "unload_ipython_extension",
    ]
    assert nbapi.__all__ == sorted(nbapi.__all__)
    assert all(hasattr(nbapi, name) for name in nbapi.__all__)


def test_version_has_one_source() -> None:
    # pyproject.toml reads it from nbapi/__init__.py (hatch's dynamic version).
    from importlib import metadata

    import nbapi

    assert metadata.version("nbapi") == nbapi.__version__
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()


def test_package_is_marked_typed() -> None:
    assert (ROOT / "nbapi" / "py.typed").exists()
