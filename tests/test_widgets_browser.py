"""The widgets in a real browser: JupyterLab and Notebook 7 in headless Chromium.

A real Jupyter server on loopback runs tests/resources/widgets/widgets.ipynb in a
real kernel; Debian's chromium, driven by Playwright, clicks the widgets. Every
request the page makes must stay on loopback. Screenshots go to artifacts/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_support import ARTIFACTS, CHROMIUM, KERNEL_IDLE, LAUNCH_ARGS, TIMEOUT_MS, loopback_only
from running_jupyter import JupyterServer, jupyter_server

NOTEBOOK = Path(__file__).resolve().parent / "resources" / "widgets" / "widgets.ipynb"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no browser: /usr/bin/chromium is missing (apt-get install chromium)",
    ),
]


ADD_AND_RUN_CELL = """async (source) => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget.content;
  notebook.activeCellIndex = notebook.widgets.length - 1;
  await app.commands.execute('notebook:insert-cell-below');
  notebook.activeCell.model.sharedModel.setSource(source);
  await app.commands.execute('notebook:run-cell');
}"""

# Starlette's reason phrase for 422 changed name ("Entity", then "Content").
UNPROCESSABLE = re.compile(r"^HTTP 422 Unprocessable (Entity|Content)$")

NEW_ROUTE = "%%route DELETE /items/<int:item_id>\ndef delete_item(item_id):\n    return None"


@pytest.fixture(scope="module")
def playwright_api() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        yield sync_api, playwright


@pytest.fixture(scope="module")
def browser(playwright_api: Any) -> Iterator[Any]:
    sync_api, playwright = playwright_api
    sync_api.expect.set_options(timeout=TIMEOUT_MS)
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
    )
    yield chromium
    chromium.close()


class Page:
    """A browser page on one Jupyter server, with a loopback-only guard."""

    def __init__(self, browser: Any, expect: Any, name: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.blocked = loopback_only(self.context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.expect = expect
        self.name = name

    def shot(self, step: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(
            path=str(ARTIFACTS / f"widgets-{self.name}-{step}.png"), full_page=True
        )

    def close(self) -> None:
        self.context.close()


def start_page(browser: Any, server: JupyterServer, url: str, name: str) -> Page:
    from playwright.sync_api import expect

    page = Page(browser, expect, name)
    page.page.goto(url)
    page.page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    page.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return page


def builder_of(page: Any, label: str) -> Any:
    return page.locator(".nbapi-builder").filter(
        has=page.locator(f'[data-nbapi="builder-title"][data-nbapi-op="{label}"]')
    )


@pytest.fixture
def notebook_dir(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    return root


@dataclass(frozen=True)
class FrontEnd:
    app: str  # the server running_jupyter starts
    opens: str  # the path of a notebook's page, before its name
    own_errors: tuple[str, ...] = ()  # thrown by the front end's own code, nbapi or not


FRONT_ENDS = {
    "jupyterlab": FrontEnd("lab", "lab/tree/"),
    # Notebook 7 throws this from its notebook_core bundle while the notebook loads.
    "notebook7": FrontEnd(
        "notebook", "notebooks/", ("Cannot read properties of undefined (reading 'schema')",)
    ),
}


@pytest.mark.parametrize("name", list(FRONT_ENDS))
def test_widgets_in_the_front_end(
    browser: Any, notebook_dir: Path, tmp_path: Path, name: str
) -> None:
    front_end = FRONT_ENDS[name]
    with jupyter_server(notebook_dir, tmp_path / "home", app=front_end.app) as server:
        url = f"{server.url}{front_end.opens}{NOTEBOOK.name}?token={server.token}"
        view = start_page(browser, server, url, name)
        page, expect = view.page, view.expect
        try:
            # The explorer lists the two operations, grouped by tag.
            explorer = page.locator(".nbapi-explorer")
            expect(explorer.locator('[data-nbapi="op-count"]')).to_have_text("2 operations")
            expect(explorer.locator('[data-nbapi-tag="items"]')).to_be_visible()
            expect(explorer.locator('[data-nbapi-op="PUT /items/{item_id}"]')).to_be_visible()
            expect(explorer.locator('[data-nbapi-op="GET /page"]')).to_be_visible()

            # A valid request.
            put = builder_of(page, "PUT /items/{item_id}")
            expect(put).to_be_visible()
            put.locator(".nbapi-input-path-item_id input").fill("3")
            put.locator(".nbapi-field-body textarea").fill('{"name": "Lamp", "price": 12.5}')
            put.locator("button.nbapi-send").click()
            expect(put.locator('[data-nbapi="status"]')).to_have_text("HTTP 200 OK")
            expect(put.locator('[data-nbapi="body"]')).to_contain_text('"Lamp"')
            expect(put.locator('[data-nbapi="warnings"]')).to_have_count(0)
            view.shot("1-valid")

            # An invalid one: warned about, sent anyway, answered with a 422 table, field marked.
            put.locator(".nbapi-input-path-item_id input").fill("abc")
            put.locator(".nbapi-field-body textarea").fill('{"name": "", "price": -1}')
            warnings = put.locator('[data-nbapi="warnings"]')
            expect(warnings).to_contain_text("(Send still sends it)")  # warned while typing
            expect(put.locator(".nbapi-field-path-item_id.nbapi-warned")).to_be_visible()
            put.locator("button.nbapi-send").click()
            expect(put.locator('[data-nbapi="status"]')).to_have_text(UNPROCESSABLE)
            # Said once: the table and the outlined fields; the warnings step aside.
            expect(warnings).to_have_count(0)
            table = put.locator('[data-nbapi="validation"]')
            expect(table.locator("tr")).to_have_count(4)
            expect(table.locator('tr[data-nbapi-loc="path.item_id"]')).to_contain_text(
                "Input should be a valid integer"
            )
            expect(table.locator('tr[data-nbapi-loc="body.price"]')).to_contain_text(
                "greater than 0"
            )
            marked = put.locator(".nbapi-field-path-item_id.nbapi-invalid")
            expect(marked).to_be_visible()
            expect(marked).not_to_contain_text("Input should be a valid integer")
            expect(
                page.get_by_text("Input should be a valid integer").filter(visible=True)
            ).to_have_count(1)
            border = marked.locator("input").evaluate("e => getComputedStyle(e).borderTopColor")
            assert border == "rgb(211, 47, 47)"
            expect(put.locator(".nbapi-field-body.nbapi-invalid")).to_be_visible()
            expect(page.locator(".nbapi-invalid")).to_have_count(2)
            expect(put.locator(".nbapi-history select")).to_contain_text("2. PUT /items/abc")
            view.shot("2-validation-error")
            table.scroll_into_view_if_needed()
            view.shot("2-validation-table")

            # Copy as curl: the code of the form's request, ready to select and copy.
            put.locator("button.nbapi-copy-curl").click()
            code = put.locator(".nbapi-code textarea")
            expect(code).to_have_value(
                re.compile(r"^curl -X PUT http://127\.0\.0\.1:\d+/items/abc ")
            )

            # Fixed and sent again: answered.
            put.locator(".nbapi-input-path-item_id input").fill("4")
            put.locator(".nbapi-field-body textarea").fill('{"name": "Lamp", "price": 12.5}')
            put.locator("button.nbapi-send").click()
            expect(put.locator('[data-nbapi="status"]')).to_have_text("HTTP 200 OK")
            view.shot("2-sent-again")

            # Markup in a response is text: shown literally and never run.
            html_page = builder_of(page, "GET /page")
            html_page.locator("button.nbapi-send").click()
            body = html_page.locator('[data-nbapi="body"]')
            expect(body).to_contain_text('<script>window.__pwned = 1</script><img src="x"')
            assert (
                html_page.locator('[data-nbapi="body"] script, [data-nbapi="body"] img').count()
                == 0
            )
            page.wait_for_timeout(500)  # give a broken image's onerror the chance to fire
            assert page.evaluate("() => window.__pwned") is None
            view.shot("3-script-as-text")

            # A new %%route cell: the explorer updates without re-running its cell.
            page.evaluate(ADD_AND_RUN_CELL, NEW_ROUTE)
            expect(explorer.locator('[data-nbapi="op-count"]')).to_have_text("3 operations")
            new_op = explorer.locator(".nbapi-operation").filter(
                has=page.locator('[data-nbapi-op="DELETE /items/{item_id}"]')
            )
            expect(new_op).to_be_visible()
            # Its "Try it" opens a builder inside the explorer.
            new_op.locator(".nbapi-try button, button.nbapi-try").first.click()
            delete = builder_of(page, "DELETE /items/{item_id}")
            expect(delete).to_be_visible()
            delete.locator(".nbapi-input-path-item_id input").fill("7")
            delete.locator("button.nbapi-send").click()
            expect(delete.locator('[data-nbapi="status"]')).to_have_text("HTTP 200 OK")
            view.shot("4-explorer-updated")

            assert view.blocked == [], view.blocked
            errors = [error for error in view.errors if error not in front_end.own_errors]
            assert errors == [], view.errors
        except Exception:
            view.shot("failure")
            raise
        finally:
            view.close()


# The learner's builder cells, in JupyterLab at its default layout (file browser open).
BUILDER_CELLS = [
    "%load_ext nbapi\n%config NbAPI.autostart = False",
    "from typing import Annotated\nfrom fastapi import Depends\n"
    "from fastapi.security import OAuth2PasswordBearer\nfrom pydantic import BaseModel, Field\n"
    "oauth2_scheme = OAuth2PasswordBearer(tokenUrl='token', auto_error=False)\n"
    "class Item(BaseModel):\n    name: str = Field(min_length=1)\n    price: float = Field(gt=0)",
    "%%route PUT /items/<int:item_id>\n"
    "def update_item(item_id, item: Item, token: Annotated[str | None, Depends(oauth2_scheme)],"
    " q: str | None = None, x_request_id: str | None = None):\n"
    "    return {'item_id': item_id, **item.model_dump()}",
    "%nbapi try /items/42",
]


def builder_notebook(root: Path) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in BUILDER_CELLS]
    nbformat.write(nb, root / "builder.ipynb")
    return "builder.ipynb"


NO_SIDEWAYS_SCROLL = """(builder) => {
  const wide = [];
  for (let node = builder; node && node !== document.body; node = node.parentElement) {
    if (node.scrollWidth > node.clientWidth + 1 && getComputedStyle(node).overflowX !== 'visible')
      wide.push(node.className + ' ' + node.scrollWidth + '>' + node.clientWidth);
  }
  for (const node of builder.querySelectorAll('*')) {
    if (node.getBoundingClientRect().right > builder.getBoundingClientRect().right + 1)
      wide.push('overflows: ' + node.className);
  }
  return wide;
}"""


def test_builder_as_measured_in_jupyterlab(browser: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    name = builder_notebook(root)
    with jupyter_server(root, tmp_path / "home", app="lab") as server:
        url = f"{server.url}lab/tree/{name}?token={server.token}"
        from playwright.sync_api import expect

        # JupyterLab's default layout on a laptop screen: the file browser open beside it.
        view = Page(browser, expect, "builder")
        view.context.close()
        view.context = browser.new_context(viewport={"width": 1280, "height": 800})
        view.blocked = loopback_only(view.context)
        view.page = view.context.new_page()
        view.page.set_default_timeout(TIMEOUT_MS)
        view.page.on("pageerror", lambda exc: view.errors.append(str(exc)))
        page = view.page
        page.goto(url)
        page.wait_for_function(KERNEL_IDLE, timeout=120_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            put = builder_of(page, "PUT /items/{item_id}")
            expect(put).to_be_visible()
            # %nbapi try /items/42 filled in item_id.
            expect(put.locator(".nbapi-input-path-item_id input")).to_have_value("42")
            # The auth choice shows the one scheme it uses, not a blank box.
            select = put.locator(".widget-dropdown select").filter(
                has=page.locator("option", has_text="OAuth2")
            )
            expect(select).to_have_count(1)
            chosen = select.evaluate("e => e.options[e.selectedIndex]?.text ?? ''")
            assert chosen.startswith("OAuth2"), chosen
            view.shot("1-filled")
            # It fits: nothing scrolls sideways, nothing sticks out.
            assert put.evaluate(NO_SIDEWAYS_SCROLL) == []

            # A 422 is shown once: the table, the fields outlined, no repeated notes.
            put.locator(".nbapi-input-path-item_id input").fill("abc")
            put.locator(".nbapi-field-body textarea").fill('{"name": "", "price": -1}')
            put.locator("button.nbapi-send").click()
            expect(put.locator('[data-nbapi="status"]')).to_have_text(UNPROCESSABLE)
            expect(put.locator('[data-nbapi="warnings"]')).to_have_count(0)
            expect(
                put.get_by_text("Input should be a valid integer").filter(visible=True)
            ).to_have_count(1)
            expect(put.locator(".nbapi-invalid")).to_have_count(2)
            put.locator('[data-nbapi="validation"]').scroll_into_view_if_needed()
            view.shot("2-422-once")
            assert put.evaluate(NO_SIDEWAYS_SCROLL) == []
            assert view.blocked == [], view.blocked
            assert view.errors == [], view.errors
        except Exception:
            view.shot("failure")
            raise
        finally:
            view.close()
