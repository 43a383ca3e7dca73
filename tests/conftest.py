"""Shared fixtures: a real IPython shell with nbapi loaded and a clean namespace per test;
a real ipykernel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.testing.globalipapp import start_ipython
from jupyter_client.manager import KernelManager
from kernel_driver import start_kernel

# Notebooks that tests open themselves; nbval must not collect them.
collect_ignore_glob = ["resources/*"]


@pytest.fixture(scope="session")
def _global_shell() -> Any:
    return start_ipython()


@pytest.fixture
def shell(_global_shell: Any) -> Iterator[Any]:
    """IPython's test shell with nbapi freshly loaded and an empty namespace.

    Autostart is off: tests that want the live server start it themselves.
    """
    ip = _global_shell
    ip.user_ns.pop("app", None)
    ip.run_line_magic("load_ext", "nbapi")
    ip.run_line_magic("config", "NbAPI.autostart = False")
    yield ip
    ip.run_line_magic("unload_ext", "nbapi")
    # %config writes into the shell's config, which the next load would inherit.
    ip.config.pop("NbAPI", None)
    for name in [n for n in ip.user_ns if not n.startswith("_") and n not in ip.user_ns_hidden]:
        ip.user_ns.pop(name, None)


@pytest.fixture
def kernel() -> Iterator[tuple[KernelManager, Any]]:
    """A real python3 ipykernel importing nbapi from this checkout, and its client."""
    with start_kernel() as started:
        yield started
