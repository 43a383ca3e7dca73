"""What every real-browser test shares: Debian's chromium, its flags, a loopback-only guard.

Playwright drives the system chromium through ``executable_path``; it never downloads one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"  # screenshots, kept by CI; gitignored
TIMEOUT_MS = 60_000
# Without the background-networking flags chromium keeps calling out to Google's hosts.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--no-default-browser-check",
]
# JupyterLab's execution indicator turns idle too early; the kernel's own status does not.
KERNEL_IDLE = """() => {
  const w = window.jupyterapp?.shell.currentWidget;
  return w?.context?.isReady && w.sessionContext?.session?.kernel?.status === 'idle';
}"""

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no browser: /usr/bin/chromium is missing (apt-get install chromium)",
)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname
    return url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost", "::1")


def loopback_only(context: Any) -> list[str]:
    """Abort, and record in the returned list, every request that would leave loopback."""
    blocked: list[str] = []

    def guard(route: Any) -> None:
        if is_loopback(route.request.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    return blocked


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code cells with a kernelspec (else JupyterLab asks for a kernel)."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, str(path))
