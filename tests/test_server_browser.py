"""The live server seen from a real browser: JupyterLab in Debian's headless Chromium.

A handler's error shows up in the output of the ``%%route`` cell that owns the
route (nbapi updates that cell's display from the server thread), and /docs and
/redoc render with every request the page makes kept on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    KERNEL_IDLE,
    LAUNCH_ARGS,
    TIMEOUT_MS,
    loopback_only,
    write_notebook,
)
from running_jupyter import free_port, jupyter_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.server,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no browser: /usr/bin/chromium is missing"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield chromium
        chromium.close()


def write_server_notebook(path: Path, port: int) -> None:
    cells = [
        f"%load_ext nbapi\n%config NbAPI.port = {port}",
        "%%route GET /boom\ndef boom():\n    return 1 / 0",
        "import httpx2\nfrom nbapi._session import current_session\n"
        "httpx2.get(current_session().server.url + 'boom').status_code",
    ]
    write_notebook(path, cells)


def test_route_cell_shows_its_handler_error_and_docs_render_offline(
    browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "root"
    root.mkdir()
    port = free_port()
    write_server_notebook(root / "server.ipynb", port)
    with jupyter_server(root, tmp_path / "home", app="lab") as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        blocked = loopback_only(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(f"{server.url}lab/tree/server.ipynb?token={server.token}")
            page.wait_for_function(KERNEL_IDLE, timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            cells = page.locator(".jp-NotebookPanel .jp-Cell")
            expect(cells.nth(2).locator(".jp-OutputArea-output")).to_contain_text("500")
            route_output = (
                cells.nth(1).locator(".jp-OutputArea-output").filter(has_text="GET /boom -> boom()")
            )
            expect(route_output).to_contain_text(
                "last error: 500 GET /boom: ZeroDivisionError: division by zero"
            )
            expect(route_output).to_contain_text("in boom")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "server-route-error.png"), full_page=True)

            docs = context.new_page()
            docs.goto(f"http://127.0.0.1:{port}/docs")
            expect(docs.locator(".opblock-summary-path")).to_have_text("/boom")
            docs.screenshot(path=str(ARTIFACTS / "server-docs.png"))
            docs.goto(f"http://127.0.0.1:{port}/redoc")
            expect(docs.get_by_text("/boom").first).to_be_visible()
            docs.screenshot(path=str(ARTIFACTS / "server-redoc.png"))
            assert blocked == []
        finally:
            context.close()
