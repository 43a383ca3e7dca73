"""The live API through Jupyter, as on JupyterHub/Binder: a real Jupyter server with
jupyter-server-proxy and a base_url, a kernel started through its REST API, nbapi in it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import httpx2
import pytest
import running_jupyter as helper
import websocket
from browser_support import CHROMIUM, KERNEL_IDLE, LAUNCH_ARGS, loopback_only, write_notebook
from jupyter_client.blocking import BlockingKernelClient
from kernel_driver import execute

pytestmark = [pytest.mark.kernel, pytest.mark.server, pytest.mark.timeout(240)]

BASE_URL = "/user/learner/"


@dataclass
class Lab:
    server: Any  # the helper's JupyterServer
    client: BlockingKernelClient
    origin: str  # http://127.0.0.1:JUPYTER_PORT

    def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        """GET a path-absolute URL (as a link in the notebook page) on the Jupyter server."""
        return httpx2.get(self.origin + path, headers=self.server.headers, timeout=30, **kwargs)


def _hub_free_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("JUPYTERHUB_", "BINDER_", "CODESPACE", "GITHUB_CODESPACES")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("NBAPI_PUBLIC_URL", raising=False)


@pytest.fixture(params=["jupyterhub", "jupyter-server"])
def lab(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """A Jupyter server at /user/learner/ and a python3 kernel it started.

    "jupyterhub": the server has the environment a JupyterHub spawner gives it.
    "jupyter-server": no hub variables; nbapi must find its server's base_url itself.
    """
    _hub_free_environment(monkeypatch)
    env: dict[str, str] = {}
    if request.param == "jupyterhub":
        env = {"JUPYTERHUB_SERVICE_PREFIX": BASE_URL, "JUPYTERHUB_USER": "learner"}
    root = tmp_path / "root"
    root.mkdir()
    home = tmp_path / "home"
    with helper.jupyter_server(root, home, app="server", base_url=BASE_URL, env=env) as server:
        assert "jupyter_server_proxy" in server.log()
        response = httpx2.post(
            server.api("api/kernels"), headers=server.headers, json={"name": "python3"}, timeout=60
        )
        assert response.status_code == 201, response.text
        kernel_id = response.json()["id"]
        client = BlockingKernelClient()
        client.load_connection_file(str(home / "runtime" / f"kernel-{kernel_id}.json"))
        client.start_channels()
        try:
            wait_for_kernel(client, server)
            origin = server.url[: -len(BASE_URL)]
            yield Lab(server, client, origin)
        finally:
            client.stop_channels()
            httpx2.delete(
                server.api(f"api/kernels/{kernel_id}"), headers=server.headers, timeout=30
            )


def wait_for_kernel(client: BlockingKernelClient, server: Any, timeout: float = 90) -> None:
    """Wait until the kernel answers on shell and iopub is connected.

    Unlike ``wait_for_ready`` this does not give up on one late heartbeat, which a
    busy two-core machine produces.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.kernel_info()
        try:
            reply = client.get_shell_msg(timeout=2)
        except Empty:
            continue
        if reply["msg_type"] != "kernel_info_reply":
            continue
        try:  # kernel_info makes the kernel publish its status: iopub is connected
            client.get_iopub_msg(timeout=1)
        except Empty:
            continue
        while time.monotonic() < deadline:  # drop the rest of those status messages
            try:
                client.get_iopub_msg(timeout=0.2)
            except Empty:
                return
    raise RuntimeError(f"the kernel did not answer in {timeout} s\n{server.log()}")


ROUTE = """%%route GET /items/<int:item_id>
def read_item(item_id, request: Request):
    return {"item_id": item_id, "url": str(request.url)}"""


WS_ROUTE = """%%route WS /echo
async def echo(websocket: WebSocket):
    await websocket.accept()
    await websocket.send_text("echo: " + await websocket.receive_text())
    await websocket.close()"""


def test_the_live_api_is_reachable_through_jupyter_server_proxy(lab: Lab) -> None:
    port = helper.free_port()
    setup = execute(
        lab.client,
        f"%load_ext nbapi\n%config NbAPI.port = {port}\nfrom fastapi import Request, WebSocket",
    )
    assert setup.status == "ok", setup.transcript
    first = execute(lab.client, ROUTE)  # the first route starts the live server
    assert first.status == "ok", first.transcript

    # The links nbapi printed go through the proxy, not to the kernel's 127.0.0.1.
    served = re.search(r"(/user/learner/proxy/(\d+)/)", first.transcript)
    assert served is not None, first.transcript
    base, served_port = served.group(1), int(served.group(2))
    assert served_port >= port
    assert "127.0.0.1" not in first.transcript, first.transcript
    assert f"{base}docs" in first.transcript
    assert any(f'href="{base}docs"' in html for html in first.html), first.html

    # Through the Jupyter server (token and all): the route, the schema, the docs page.
    item = lab.get(f"{base}items/1")
    assert item.status_code == 200, item.text
    assert item.json() == {"item_id": 1, "url": f"{lab.origin}{base}items/1"}
    schema = lab.get(f"{base}openapi.json")
    assert schema.status_code == 200, schema.text
    assert "/items/{item_id}" in schema.json()["paths"]
    assert schema.json()["servers"] == [{"url": base.rstrip("/")}]
    docs = lab.get(f"{base}docs")
    assert docs.status_code == 200, docs.text
    assert f"url: '{base}openapi.json'" in docs.text
    # Swagger UI's "Try it out" sends to the schema's server: through the proxy.
    assert lab.get(f"{base}items/abc").status_code == 422

    # Without the token the proxy refuses: the API is as private as the notebook.
    anonymous = httpx2.get(f"{lab.origin}{base}items/1", timeout=30, follow_redirects=False)
    assert anonymous.status_code in (302, 403), anonymous.text

    # Direct access on 127.0.0.1 keeps working at the same time.
    direct = f"http://127.0.0.1:{served_port}/"
    assert httpx2.get(f"{direct}items/2", timeout=30).json() == {
        "item_id": 2,
        "url": f"{direct}items/2",
    }
    direct_docs = httpx2.get(f"{direct}docs", timeout=30).text
    assert "url: '/openapi.json'" in direct_docs
    assert "servers" not in httpx2.get(f"{direct}openapi.json", timeout=30).json()

    # Websocket routes work through the proxy too (it forwards them without the prefix).
    echo = execute(lab.client, WS_ROUTE)
    assert echo.status == "ok", echo.transcript
    ws_url = f"ws://{lab.origin.split('://', 1)[1]}{base}echo"
    connection = websocket.create_connection(
        ws_url, header=[f"Authorization: token {lab.server.token}"], timeout=30
    )
    try:
        connection.send("hello")
        assert connection.recv() == "echo: hello"
    finally:
        connection.close()

    # %http in the kernel is untouched; status shows the proxied address.
    in_process = execute(lab.client, "%http GET /items/3")
    assert in_process.status == "ok", in_process.transcript
    assert '"item_id": 3' in in_process.transcript
    status = execute(lab.client, "%nbapi status")
    assert f"running at {base}" in status.transcript, status.transcript


@pytest.mark.parametrize("lab", ["jupyterhub"], indirect=True)
def test_public_url_override_wins_in_the_kernel(lab: Lab) -> None:
    port = helper.free_port()
    code = (
        "%load_ext nbapi\n"
        "%config NbAPI.autostart = False\n"
        "%config NbAPI.public_url = 'https://workshop.example.org/api/{port}/'\n"
        f"%nbapi serve --port {port}"
    )
    served = execute(lab.client, code)
    assert served.status == "ok", served.transcript
    assert f"https://workshop.example.org/api/{port}/docs" in served.transcript
    # A bad value is refused when it is set (one logged line); the links stay as they were.
    bad = execute(lab.client, "%config NbAPI.public_url = 'workshop'\n%nbapi status")
    assert "NbAPI.public_url 'workshop' is not a base URL" in bad.transcript
    assert f"https://workshop.example.org/api/{port}/" in bad.transcript


# -- in a real browser: JupyterLab, the printed link, Swagger UI through the proxy -------------


@pytest.mark.browser
@pytest.mark.timeout(300)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no browser: /usr/bin/chromium is missing")
def test_docs_link_in_jupyterlab_opens_swagger_ui_through_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    _hub_free_environment(monkeypatch)
    root = tmp_path / "root"
    root.mkdir()
    port = helper.free_port()
    write_notebook(
        root / "workshop.ipynb",
        [f"%load_ext nbapi\n%config NbAPI.port = {port}\nfrom fastapi import Request", ROUTE],
    )
    hub = {"JUPYTERHUB_SERVICE_PREFIX": BASE_URL, "JUPYTERHUB_USER": "learner"}

    with (
        helper.jupyter_server(root, tmp_path / "home", base_url=BASE_URL, env=hub) as server,
        sync_api.sync_playwright() as playwright,
    ):
        sync_api.expect.set_options(timeout=60_000)
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            blocked = loopback_only(context)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{server.url}lab/tree/workshop.ipynb?token={server.token}")
            page.wait_for_function(KERNEL_IDLE, timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            # The link nbapi printed is the proxied one, and JupyterLab leaves it as it is.
            link = page.locator(".jp-OutputArea-output a", has_text="/docs").first
            sync_api.expect(link).to_be_visible(timeout=120_000)
            href = link.get_attribute("href")
            assert href is not None
            assert re.fullmatch(r"/user/learner/proxy/\d+/docs", href), href
            with context.expect_page() as opened:
                link.click()
            docs = opened.value
            docs.set_default_timeout(60_000)
            docs.wait_for_load_state()
            assert docs.url == f"{server.url[: -len(BASE_URL)]}{href}"

            # Swagger UI loaded the schema through the proxy and lists the route...
            operation = docs.locator(".opblock-summary-path", has_text="/items/{item_id}")
            sync_api.expect(operation).to_be_visible()
            # ... and "Try it out" sends its request through the proxy too.
            operation.click()
            docs.locator("button.try-out__btn").click()
            docs.locator('input[placeholder="item_id"]').fill("5")
            docs.locator("button.execute").click()
            status = docs.locator(".live-responses-table tr.response .response-col_status").first
            sync_api.expect(status).to_have_text(re.compile(r"^\s*200"))
            request_url = docs.locator(".request-url pre").first.inner_text()
            assert request_url.endswith(f"{href[: -len('docs')]}items/5"), request_url
            assert blocked == [], f"the page left loopback: {blocked}"
        finally:
            browser.close()
