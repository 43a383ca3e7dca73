"""Private mode end to end: a second OS user calls the kernel's live server and is refused.

Run as root: the tests create a system user (``nbapi-other``, no login shell, so it
does not make this machine look shared to nbapi's own detection) and run curl as
that user with ``runuser``. The kernel's server is real uvicorn on loopback, started
by ``%nbapi serve`` in a real IPython shell, or by a real ipykernel under a real
Jupyter server with jupyter-server-proxy.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import running_jupyter as helper
import websocket
from kernel_driver import execute
from support import free_port
from test_proxy_e2e import ROUTE, WS_ROUTE, Lab, lab  # noqa: F401

pytestmark = [pytest.mark.server, pytest.mark.timeout(240)]

OTHER = "nbapi-other"
REFUSED = "this nbapi server belongs to another user of this machine"
PATHS = ["/", "/items/1", "/docs", "/redoc", "/openapi.json", "/_nbapi/server"]
WS_HEADERS = [
    "--http1.1",
    "-H",
    "Connection: Upgrade",
    "-H",
    "Upgrade: websocket",
    "-H",
    "Sec-WebSocket-Version: 13",
    "-H",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
]

APP = """
from contextlib import asynccontextmanager
from fastapi import FastAPI, WebSocket
calls = []

@asynccontextmanager
async def lifespan(app):
    calls.append(("startup", None))
    yield

app = FastAPI(lifespan=lifespan)

@app.middleware("http")
async def count(request, call_next):
    calls.append(("middleware", request.url.path))
    return await call_next(request)

@app.get("/items/{item_id}")
def read_item(item_id: int):
    calls.append(("read_item", item_id))
    return {"item_id": item_id}

@app.websocket("/echo")
async def echo(websocket: WebSocket):
    calls.append(("echo", None))
    await websocket.accept()
    await websocket.send_text("echo: " + await websocket.receive_text())
    await websocket.close()
"""


@pytest.fixture(scope="module")
def other_user() -> Iterator[str]:
    """A second OS user (created here if missing, removed again if created here)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test creates a second OS user and runs curl as it")
    missing = [tool for tool in ("useradd", "userdel", "runuser", "curl") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} to act as a second OS user")
    created = subprocess.run(["id", "-u", OTHER], capture_output=True).returncode != 0
    if created:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        done = subprocess.run([*useradd, OTHER], capture_output=True, text=True)
        # Another run may have created it meanwhile: "already exists" (status 9) is fine.
        assert done.returncode in (0, 9), done.stderr
    yield OTHER
    if created:
        subprocess.run(["userdel", OTHER], capture_output=True)


def curl(url: str, *extra: str, user: str | None = None) -> tuple[str, str]:
    """(status code, body) of ``curl URL`` run as ``user`` (None: as this process)."""
    command = ["curl", "-s", "--max-time", "20", "-w", "\n%{http_code}", *extra, url]
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    body, _, code = out.rpartition("\n")
    return code, body


def serve(shell: Any, private: str, host: str = "127.0.0.1") -> str:
    """Run APP in the shell, set NbAPI.private, serve; return the base URL."""
    shell.run_cell(APP)
    if private:
        shell.run_line_magic("config", f"NbAPI.private = {private}")
    port = free_port()
    shell.run_line_magic("nbapi", f"serve --port {port} --host {host}")
    return f"http://{'[::1]' if host == '::1' else host}:{port}"


def owner_echo(base: str) -> str:
    ws = websocket.create_connection(base.replace("http", "ws", 1) + "/echo", timeout=30)
    try:
        ws.send("hi")
        return str(ws.recv())
    finally:
        ws.close()


def test_another_user_is_refused_before_any_code_runs(
    shell: Any, other_user: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = serve(shell, "True")
    calls = shell.user_ns["calls"]

    for path in PATHS:
        code, body = curl(base + path, user=other_user)
        assert (path, code) == (path, "403")
        assert REFUSED in body
    code, _ = curl(base + "/items/1", "-X", "POST", "-d", "{}", user=other_user)
    assert code == "403"
    code, _ = curl(base + "/echo", *WS_HEADERS, user=other_user)
    assert code == "403"
    # A forged X-Forwarded-For changes nothing: the socket's owner is what counts.
    code, _ = curl(base + "/items/1", "-H", "X-Forwarded-For: 127.0.0.1", user=other_user)
    assert code == "403"
    assert calls == []  # no lifespan, middleware, handler or websocket endpoint ran

    # The owner notices nothing: curl, %http --server, websockets, /docs.
    assert curl(base + "/items/7") == ("200", '{"item_id":7}')
    assert curl(base + "/docs")[0] == "200"
    served = shell.run_line_magic("http", "--server GET /items/8")
    assert served.status_code == 200, served.text
    assert owner_echo(base) == "echo: hi"
    assert calls[0] == ("startup", None)
    assert ("read_item", 7) in calls
    assert ("read_item", 8) in calls
    assert ("echo", None) in calls

    status = repr(shell.run_line_magic("nbapi", "status"))
    assert status.endswith(
        "access: private, only this kernel's user may call it (NbAPI.private = True); "
        "refused 9 connections of other users"
    ), status
    assert "nbapi warning" not in capsys.readouterr().err


def test_turning_it_off_warns_and_serves_everybody(
    shell: Any, other_user: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = serve(shell, "True")
    assert curl(base + "/items/1", user=other_user)[0] == "403"
    capsys.readouterr()

    shell.run_line_magic("config", "NbAPI.private = False")  # the running server follows
    err = capsys.readouterr().err
    assert err.startswith("nbapi warning: NbAPI.private = False: every user of this machine")
    assert err.count("\n") == 1
    assert curl(base + "/items/1", user=other_user) == ("200", '{"item_id":1}')
    assert curl(base + "/docs", user=other_user)[0] == "200"
    assert ("read_item", 1) in shell.user_ns["calls"]
    status = repr(shell.run_line_magic("nbapi", "status"))
    assert "access: open to every user of this machine (NbAPI.private = False)" in status

    shell.run_line_magic("config", "NbAPI.private = True")  # and back, for new connections
    assert curl(base + "/items/2", user=other_user)[0] == "403"


def test_on_by_default_on_a_hub(
    shell: Any, other_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "learner")  # the links stay direct: no hub prefix
    base = serve(shell, "")
    assert curl(base + "/docs", user=other_user)[0] == "403"
    assert curl(base + "/items/3")[0] == "200"
    status = repr(shell.run_line_magic("nbapi", "status"))
    assert "access: private, only this kernel's user may call it (JupyterHub)" in status


@pytest.mark.kernel
@pytest.mark.parametrize("lab", ["jupyterhub"], indirect=True)
def test_served_through_jupyter_server_proxy_refused_direct(
    lab: Lab,  # noqa: F811
    other_user: str,
) -> None:
    port = helper.free_port()
    setup = execute(
        lab.client,
        f"%load_ext nbapi\n%config NbAPI.port = {port}\nfrom fastapi import Request, WebSocket",
    )
    assert setup.status == "ok", setup.transcript
    first = execute(lab.client, ROUTE + "\n")
    assert first.status == "ok", first.transcript
    served = re.search(r"(/user/learner/proxy/(\d+)/)", first.transcript)
    assert served is not None, first.transcript
    base, served_port = served.group(1), int(served.group(2))
    echo = execute(lab.client, WS_ROUTE)
    assert echo.status == "ok", echo.transcript

    # The printed links, through the Jupyter server's proxy (same user as the kernel).
    item = lab.get(f"{base}items/1")
    assert item.status_code == 200, item.text
    assert lab.get(f"{base}docs").status_code == 200
    ws = websocket.create_connection(
        f"ws://{lab.origin.split('://', 1)[1]}{base}echo",
        header=[f"Authorization: token {lab.server.token}"],
        timeout=30,
    )
    try:
        ws.send("hello")
        assert ws.recv() == "echo: hello"
    finally:
        ws.close()

    # Straight to the kernel's port: the owner is served, the other user is not.
    direct = f"http://127.0.0.1:{served_port}"
    assert httpx2.get(f"{direct}/items/2", timeout=30).status_code == 200
    for path in ("/items/2", "/docs", "/openapi.json"):
        assert curl(direct + path, user=other_user)[0] == "403"
    assert curl(direct + "/echo", *WS_HEADERS, user=other_user)[0] == "403"
    # Through the proxy the other user needs the owner's Jupyter token, as before.
    assert curl(f"{lab.origin}{base}items/1", user=other_user)[0] in ("302", "403")

    status = execute(lab.client, "%nbapi status")
    assert "access: private, only this kernel's user may call it (JupyterHub)" in status.transcript


def test_ipv6_loopback_too(shell: Any, other_user: str) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        base = serve(shell, "True", host="::1")
    except Exception as exc:  # a machine without ::1 configured
        pytest.skip(f"cannot serve on ::1: {exc}")
    assert curl(base + "/openapi.json", "-g", user=other_user)[0] == "403"
    assert curl(base + "/items/4", "-g") == ("200", '{"item_id":4}')
    assert shell.user_ns["calls"] == [
        ("startup", None),
        ("middleware", "/items/4"),
        ("read_item", 4),
    ]


def test_a_port_taken_by_another_users_kernel_says_so(shell: Any, other_user: str) -> None:
    from nbapi._server import _servers, port_owner
    from nbapi._session import current_session

    base = serve(shell, "True")
    server = current_session().server
    # As far as its gate knows, this server now runs another user's kernel.
    server.gate.owner = int(subprocess.run(["id", "-u", other_user], capture_output=True).stdout)
    del _servers[server.port]  # and this kernel forgets it is its own
    try:
        assert port_owner("127.0.0.1", server.port) == "another user's nbapi kernel"
    finally:
        _servers[server.port] = server
    # ... and root (this process) is refused like anyone else: owner only, as Jupyter does.
    assert curl(base + "/items/1")[0] == "403"
