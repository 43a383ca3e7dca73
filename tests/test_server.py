"""The live server: real uvicorn on loopback, real HTTP, IPython's real test shell."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import httpx2
import pytest
from IPython.core.error import UsageError
from support import free_port

from nbapi._commands import route_error_text, user_traceback
from nbapi._docs_assets import ASSET_PREFIX, rewrite_html
from nbapi._server import LiveServer, _host_warning, bind_port
from nbapi._session import Session

pytestmark = pytest.mark.server


@pytest.fixture
def served(shell: Any) -> Iterator[Any]:
    """The test shell with the live server started on a free port."""
    shell.run_line_magic("config", f"NbAPI.port = {free_port()}")
    shell.run_line_magic("nbapi", "serve")
    yield shell
    shell.run_line_magic("nbapi", "stop")


def session_of(shell: Any) -> Session:
    from nbapi._session import current_session

    return current_session()


def base(shell: Any) -> str:
    return str(session_of(shell).server.url)


def settle(condition: Callable[[], bool]) -> None:
    """Wait (at most 10 s) for the loop thread to record what a client already received."""
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def run(shell: Any, code: str) -> None:
    result = shell.run_cell(code)
    assert result.success, result.error_in_exec or result.error_before_exec


def route(shell: Any, line: str, body: str) -> None:
    run(shell, f"%%route {line}\n{body}")


# -- starting, stopping, status --------------------------------------------------------
def test_serve_prints_links_once_and_serves_over_http(shell: Any, capsys: Any) -> None:
    port = free_port()
    shell.run_line_magic("config", f"NbAPI.port = {port}")
    route(shell, "GET /hello", "def hello():\n    return {'hi': 1}")
    view = shell.run_line_magic("nbapi", "serve")
    try:
        assert repr(view) == (
            f"nbapi: serving the kernel's app at http://127.0.0.1:{port}/\n"
            f"  docs: http://127.0.0.1:{port}/docs\n"
            f"  redoc: http://127.0.0.1:{port}/redoc"
        )
        assert f'href="http://127.0.0.1:{port}/docs"' in view._repr_html_()
        assert httpx2.get(f"http://127.0.0.1:{port}/hello").json() == {"hi": 1}
        # Serving again is a no-op that shows the status, not a second server.
        again = shell.run_line_magic("nbapi", "serve")
        assert repr(again).startswith(f"nbapi server: running at http://127.0.0.1:{port}/")
        settle(lambda: session_of(shell).server.requests_served == 1)
        status = repr(shell.run_line_magic("nbapi", "status")).splitlines()
        assert status[:2] == [
            f"nbapi server: running at http://127.0.0.1:{port}/",
            "requests served: 1, errors: 0",
        ]
        assert status[2].startswith("access: "), status  # as on this machine: test_access*.py
    finally:
        stopped = shell.run_line_magic("nbapi", "stop")
    assert repr(stopped) == f"nbapi server: stopped; http://127.0.0.1:{port}/ is free"
    bind_port("127.0.0.1", port, exact=True).close()  # free at once
    assert repr(shell.run_line_magic("nbapi", "status")).startswith("nbapi server: stopped")
    assert repr(shell.run_line_magic("nbapi", "stop")) == "nbapi server: not running"
    assert "uvicorn" not in capsys.readouterr().err  # no log records spilled


def test_status_before_any_server(shell: Any) -> None:
    view = shell.run_line_magic("nbapi", "status")
    first, access = repr(view).splitlines()
    assert first == "nbapi server: not started; start it with %nbapi serve"
    assert access.startswith("access: ")


def test_restart_keeps_port_and_counters(served: Any) -> None:
    route(served, "GET /n", "def n():\n    return 1")
    url = base(served)
    assert httpx2.get(url + "n").status_code == 200
    shell_view = served.run_line_magic("nbapi", "restart")
    assert url in repr(shell_view)
    assert httpx2.get(url + "n").status_code == 200
    settle(lambda: session_of(served).server.requests_served == 2)
    assert "requests served: 2, errors: 0" in repr(served.run_line_magic("nbapi", "status"))


def test_restart_moves_to_another_port(served: Any) -> None:
    new_port = free_port()
    served.run_line_magic("nbapi", f"restart --port {new_port}")
    assert session_of(served).server.port == new_port
    route(served, "GET /m", "def m():\n    return 2")
    assert httpx2.get(f"http://127.0.0.1:{new_port}/m").json() == 2


def test_serving_when_already_running_elsewhere_says_how_to_move(served: Any) -> None:
    other = free_port()
    with pytest.raises(UsageError, match=r"already runs at .*%nbapi restart --port N"):
        served.run_line_magic("nbapi", f"serve --port {other}")


def test_next_free_port_when_the_default_is_taken(shell: Any) -> None:
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        taken = foreign.getsockname()[1]
        shell.run_line_magic("config", f"NbAPI.port = {taken}")
        shell.run_line_magic("nbapi", "serve")
        try:
            port = session_of(shell).server.port
            assert port > taken
            # No app yet: the server says how to make one.
            reply = httpx2.get(f"http://127.0.0.1:{port}/openapi.json")
            assert reply.status_code == 503
            assert "run a %%route cell" in reply.text
        finally:
            shell.run_line_magic("nbapi", "stop")


def test_taken_port_is_a_one_line_error_naming_a_foreign_process(shell: Any) -> None:
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        taken = foreign.getsockname()[1]
        with pytest.raises(UsageError) as info:
            shell.run_line_magic("nbapi", f"serve --port {taken}")
    message = str(info.value)
    assert message == (
        f"port {taken} on 127.0.0.1 is taken by another process; pick a free one with "
        "--port N, or leave --port out to take the next free"
    )
    assert session_of(shell).server is None  # nothing half-started


def test_taken_port_names_this_kernels_own_server(served: Any) -> None:
    port = session_of(served).server.port
    other = Session({})
    try:
        from nbapi._commands import run

        with pytest.raises(ValueError, match=f"port {port} .* this kernel's nbapi server"):
            run(other, ["serve", "--port", str(port)])
    finally:
        other.close()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "serve --port abc",
            "%nbapi serve: --port 'abc' is not a port (1 to 65535); "
            "usage: %nbapi serve [--port N] [--host H]",
        ),
        ("serve --port 70000", r"%nbapi serve: --port '70000' is not a port (1 to 65535)"),
        ("serve --bogus", r"unknown option '--bogus'; usage: %nbapi serve"),
        ("stop now", r"%nbapi stop takes no arguments, got 'now'"),
        ("status x", r"%nbapi status takes no arguments"),
        ("log --nope", r"usage: %nbapi log"),
        ("serve --host 203.0.113.1", r"cannot bind host '203.0.113.1'"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(shell: Any, line: str, expected: str) -> None:
    with pytest.raises(UsageError, match=re.escape(expected) if "%" in expected else expected) as e:
        shell.run_line_magic("nbapi", line)
    assert "\n" not in str(e.value)
    assert session_of(shell).server is None


@pytest.mark.parametrize(
    ("host", "warned"),
    [("127.0.0.1", False), ("::1", False), ("localhost", False), ("0.0.0.0", True)],
)
def test_non_loopback_host_prints_a_warning(host: str, warned: bool) -> None:
    said: list[str] = []
    session = Session({}, say=said.append)
    _host_warning(session, host)
    assert bool(said) is warned
    if warned:
        assert said[0].startswith(f"nbapi warning: serving on {host}, not loopback")
    said.clear()
    _host_warning(session, host, private=True)
    assert bool(said) is warned
    if warned:
        assert "in private mode: only this user's processes on this machine" in said[0]


def test_ipv6_loopback(shell: Any) -> None:
    port = free_port()
    shell.run_line_magic("nbapi", f"serve --host ::1 --port {port}")
    try:
        route(shell, "GET /six", "def six():\n    return 6")
        assert httpx2.get(f"http://[::1]:{port}/six").json() == 6
    finally:
        shell.run_line_magic("nbapi", "stop")


# -- issue 14, move 4: the printed link connects, whatever form the host takes ----------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "::", "0.0.0.0", "127.0.0.2"])
def test_printed_link_connects(shell: Any, host: str) -> None:
    port = free_port()
    view = shell.run_line_magic("nbapi", f"serve --host {host} --port {port}")
    try:
        route(shell, "GET /six", "def six():\n    return 6")
        link = re.search(r"serving the kernel's app at (\S+)", repr(view))
        assert link is not None, repr(view)
        assert link.group(1).endswith(f":{port}/"), link.group(1)
        response = httpx2.get(link.group(1) + "six", timeout=5)
        assert response.status_code == 200, response.text
        assert response.json() == 6
    finally:
        shell.run_line_magic("nbapi", "stop")


def test_autostart_on_first_route(shell: Any, capsys: Any) -> None:
    port = free_port()
    shell.run_line_magic("config", f"NbAPI.port = {port}")
    shell.run_line_magic("config", "NbAPI.autostart = True")
    capsys.readouterr()
    route(shell, "GET /auto", "def auto():\n    return 'on'")
    try:
        out = capsys.readouterr().out
        assert out == (
            "nbapi: created app = FastAPI() in the notebook namespace\n"
            "GET /auto -> auto()\n"
            f"nbapi: serving the kernel's app at http://127.0.0.1:{port}/\n"
            f"  docs: http://127.0.0.1:{port}/docs\n"
            f"  redoc: http://127.0.0.1:{port}/redoc\n"
        )
        assert httpx2.get(f"http://127.0.0.1:{port}/auto").json() == "on"
        route(shell, "GET /two", "def two():\n    return 2")
        assert "serving" not in capsys.readouterr().out  # links are printed once
    finally:
        shell.run_line_magic("nbapi", "stop")
    route(shell, "GET /three", "def three():\n    return 3")  # a stopped server stays stopped
    assert not session_of(shell).server.running


def test_autostart_off_leaves_the_server_alone(shell: Any) -> None:
    route(shell, "GET /quiet", "def quiet():\n    return 0")
    assert session_of(shell).server is None


# -- live through every change -----------------------------------------------------------
def test_routes_added_replaced_removed_take_effect_at_once(served: Any) -> None:
    url = base(served)
    route(served, "GET /items/<int:item_id>", "def read(item_id):\n    return {'v': 1}")
    assert httpx2.get(url + "items/1").json() == {"v": 1}
    route(served, "GET /items/<int:item_id>", "def read(item_id):\n    return {'v': 2}")
    assert httpx2.get(url + "items/1").json() == {"v": 2}
    paths = httpx2.get(url + "openapi.json").json()["paths"]
    assert list(paths) == ["/items/{item_id}"]
    run(served, "@app.get('/plain')\ndef plain():\n    return 'plain'")
    assert httpx2.get(url + "plain").json() == "plain"
    assert "/plain" in httpx2.get(url + "openapi.json").json()["paths"]
    run(served, "app.router.routes[:] = [r for r in app.router.routes if r.path != '/plain']")
    assert httpx2.get(url + "plain").status_code == 404
    assert "/plain" not in httpx2.get(url + "openapi.json").json()["paths"]


def test_middleware_added_after_requests_were_served(served: Any) -> None:
    url = base(served)
    route(served, "GET /mw", "def mw():\n    return 'ok'")
    assert httpx2.get(url + "mw").status_code == 200
    run(
        served,
        "@app.middleware('http')\n"
        "async def tag(request, call_next):\n"
        "    response = await call_next(request)\n"
        "    response.headers['x-tag'] = 'yes'\n"
        "    return response\n",
    )
    response = httpx2.get(url + "mw")
    assert response.status_code == 200
    assert response.headers["x-tag"] == "yes"


def test_exception_handlers_routers_mounts_and_overrides(served: Any) -> None:
    url = base(served)
    run(
        served,
        "from fastapi import APIRouter, Depends, FastAPI\n"
        "from fastapi.responses import JSONResponse\n"
        "app = FastAPI()\n"
        "class Teapot(Exception):\n    pass\n"
        "@app.exception_handler(Teapot)\n"
        "async def teapot(request, exc):\n"
        "    return JSONResponse({'brewing': True}, status_code=418)\n"
        "def user():\n    return 'real'\n"
        "router = APIRouter(prefix='/r')\n"
        "@router.get('/who')\n"
        "def who(u: str = Depends(user)):\n    return u\n"
        "@router.get('/tea')\n"
        "def tea():\n    raise Teapot()\n"
        "app.include_router(router)\n"
        "sub = FastAPI()\n"
        "@sub.get('/ping')\n"
        "def ping():\n    return 'pong'\n"
        "app.mount('/sub', sub)\n",
    )
    assert httpx2.get(url + "r/who").json() == "real"
    assert httpx2.get(url + "r/tea").status_code == 418
    assert httpx2.get(url + "sub/ping").json() == "pong"
    run(served, "app.dependency_overrides[user] = lambda: 'fake'")
    assert httpx2.get(url + "r/who").json() == "fake"
    run(served, "app.dependency_overrides.clear()")
    assert httpx2.get(url + "r/who").json() == "real"


def test_rebound_app_runs_lifespans_and_is_served(served: Any) -> None:
    url = base(served)
    run(
        served,
        "from contextlib import asynccontextmanager\n"
        "from fastapi import FastAPI\n"
        "events = []\n"
        "def make(name):\n"
        "    @asynccontextmanager\n"
        "    async def life(a):\n"
        "        events.append(f'{name} up')\n"
        "        yield {'name': name}\n"
        "        events.append(f'{name} down')\n"
        "    return life\n"
        "app = FastAPI(lifespan=make('one'))\n",
    )
    route(
        served,
        "GET /name",
        "from fastapi import Request\ndef name(request: Request):\n    return request.state.name",
    )
    assert httpx2.get(url + "name").json() == "one"
    run(served, "app = FastAPI(lifespan=make('two'))")
    route(served, "GET /name2", "def name2(request: Request):\n    return request.state.name")
    assert httpx2.get(url + "name2").json() == "two"
    assert httpx2.get(url + "name").status_code == 404  # the old app's route went with it
    assert served.user_ns["events"] == ["one up", "one down", "two up"]


def test_handler_error_gives_500_keeps_serving_and_is_logged(served: Any) -> None:
    url = base(served)
    route(served, "GET /boom", "def boom():\n    return 1 / 0")
    route(served, "GET /fine", "def fine():\n    return 'fine'")
    response = httpx2.get(url + "boom")
    assert response.status_code == 500
    assert httpx2.get(url + "fine").json() == "fine"
    # The runner records a request just after its response went out.
    settle(lambda: len(session_of(served).runner.log) == 2)
    status = repr(served.run_line_magic("nbapi", "status"))
    assert status.splitlines()[1] == "requests served: 2, errors: 1"
    log = repr(served.run_line_magic("nbapi", "log"))
    lines = log.splitlines()
    assert lines[0] == "nbapi log: 2 recent requests, newest last"
    assert lines[1] == "500 GET /boom (server)  ZeroDivisionError: division by zero"
    assert "    Traceback (most recent call last):" in lines
    # Only the user's frame is shown, named after its cell, not starlette's or nbapi's.
    frames = [line for line in lines if line.startswith("      ") and ", line " in line]
    assert len(frames) == 1
    assert re.fullmatch(r"      Cell In\[\d+\], line 3, in boom", frames[0])
    assert lines[-1] == "200 GET /fine (server)"
    full = repr(served.run_line_magic("nbapi", "log --full"))
    assert "starlette" in full
    errors_only = repr(served.run_line_magic("nbapi", "log --errors"))
    assert "/fine" not in errors_only


# -- issue 14, move 5: an exception's message in one line -------------------------------------------
def test_validation_error_in_a_handler_is_one_log_line(served: Any) -> None:
    # pydantic's ValidationError says one thing per line; the log entry keeps the first.
    url = base(served)
    run(served, "from pydantic import BaseModel\nclass Item(BaseModel):\n    name: str")
    route(served, "GET /invalid", "def invalid():\n    return Item.model_validate({})")
    assert httpx2.get(url + "invalid").status_code == 500
    settle(lambda: len(session_of(served).runner.log) == 1)
    entry = session_of(served).runner.log[-1]
    assert entry.error == "ValidationError: 1 validation error for Item"
    assert route_error_text(entry) == (
        "last error: 500 GET /invalid: ValidationError: 1 validation error for Item "
        "(traceback: %nbapi log)"
    )
    lines = repr(served.run_line_magic("nbapi", "log")).splitlines()
    assert lines[1] == "500 GET /invalid (server)  ValidationError: 1 validation error for Item"
    assert lines[2] == "    Traceback (most recent call last):"


def test_user_traceback_keeps_user_frames_only() -> None:
    text = (
        "Traceback (most recent call last):\n"
        f'  File "{httpx2.__file__}", line 10, in lib\n'
        "    lib()\n"
        '  File "/tmp/ipykernel_1/123.py", line 2, in boom\n'
        "    return 1 / 0\n"
        "ZeroDivisionError: division by zero\n"
    )
    labelled = user_traceback(text, lambda f: "Cell In[7]" if "ipykernel" in f else None)
    assert labelled == (
        "Traceback (most recent call last):\n"
        "  Cell In[7], line 2, in boom\n"
        "    return 1 / 0\n"
        "ZeroDivisionError: division by zero"
    )


def test_http_server_flag_and_in_process_with_server_stopped(shell: Any) -> None:
    route(shell, "GET /where", "def where():\n    return 'here'")
    with pytest.raises(UsageError, match="the live server is not running"):
        shell.run_line_magic("http", "-s GET /where")
    shell.run_line_magic("config", f"NbAPI.port = {free_port()}")
    shell.run_line_magic("nbapi", "serve")
    try:
        response = shell.run_line_magic("http", "--server GET /where")
        assert response.status_code == 200
        assert response.json() == "here"
        settle(lambda: len(session_of(shell).runner.log) == 1)
        assert session_of(shell).runner.log[-1].source == "server"
    finally:
        shell.run_line_magic("nbapi", "stop")
    assert shell.run_line_magic("http", "GET /where").json() == "here"
    assert session_of(shell).runner.log[-1].source == "in-process"


def test_websocket_route_over_the_live_server(served: Any) -> None:
    route(
        served,
        "WS /echo",
        "from fastapi import WebSocket\n"
        "async def echo(websocket: WebSocket):\n"
        "    await websocket.accept()\n"
        "    await websocket.send_text('got ' + await websocket.receive_text())\n"
        "    await websocket.close()",
    )
    port = session_of(served).server.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 101")
        payload = b"hi"
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        frame = sock.recv(4096)
        assert frame[0] == 0x81
        assert frame[2 : 2 + frame[1]] == b"got hi"


# -- /docs and /redoc with no internet -----------------------------------------------------
class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append(value)


def _refs(page: str) -> list[str]:
    parser = _Refs()
    parser.feed(page)
    return parser.refs


@pytest.mark.parametrize(
    ("docs", "expected_types"),
    [
        ("docs", {"swagger-ui-bundle.js": "javascript", "swagger-ui.css": "text/css"}),
        ("redoc", {"redoc.standalone.js": "javascript"}),
    ],
)
def test_docs_pages_load_everything_from_loopback(
    served: Any, docs: str, expected_types: dict[str, str]
) -> None:
    url = base(served)
    route(served, "GET /items", "def items():\n    return []")
    page = httpx2.get(url + docs)
    assert page.status_code == 200
    assert "cdn.jsdelivr" not in page.text
    assert "fonts.googleapis" not in page.text
    refs = _refs(page.text)
    assert refs
    for ref in refs:
        assert "://" not in ref, ref  # relative: served by this server, nothing else
        asset = httpx2.get(httpx2.URL(url + docs).join(ref))
        assert asset.status_code == 200, ref
        assert len(asset.content) > 1000
        name = ref.rsplit("/", 1)[-1]
        if name.endswith(".js"):
            assert b"https://cdn." not in asset.content  # the bundle fetches nothing either
        if name in expected_types:
            assert expected_types[name] in asset.headers["content-type"]
    # The app's own schema is untouched.
    app = served.user_ns["app"]
    assert httpx2.get(url + "openapi.json").json() == app.openapi()
    assert not any(ASSET_PREFIX in getattr(r, "path", "") for r in app.router.routes)


def test_custom_docs_url_and_in_process_docs(served: Any) -> None:
    run(served, "from fastapi import FastAPI\napp = FastAPI(docs_url='/api/docs')")
    url = base(served)
    page = httpx2.get(url + "api/docs").text
    assert '<script src="../_nbapi/static/swagger-ui-bundle.js">' in page
    asset = httpx2.get(url + "_nbapi/static/swagger-ui-bundle.js")
    assert asset.status_code == 200
    in_process = served.run_line_magic("http", "GET /api/docs")
    assert "../_nbapi/static/swagger-ui.css" in in_process.text
    assert "cdn.jsdelivr" not in in_process.text
    assert httpx2.get(url + "_nbapi/static/nope.js").status_code == 404


def test_rewrite_html_relative_to_the_page() -> None:
    page = (
        b'<link href="https://fonts.googleapis.com/css?family=Roboto" rel="stylesheet">\n'
        b'<script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js">'
        b'<link rel="shortcut icon" href="https://fastapi.tiangolo.com/img/favicon.png">'
    )
    assert rewrite_html(page, "/a/b/redoc") == (
        b'<script src="../../_nbapi/static/redoc.standalone.js">'
        b'<link rel="shortcut icon" href="../../_nbapi/static/favicon.png">'
    )


# -- load and leaks --------------------------------------------------------------------------
def test_bounded_load_with_routes_replaced_concurrently(served: Any) -> None:
    url = base(served)
    route(served, "GET /load/<int:n>", "async def load(n):\n    return {'n': n, 'v': 0}")
    failures: list[str] = []
    done = threading.Event()
    counts = [0, 0, 0, 0]
    deadline = time.monotonic() + 20

    def hammer(worker: int) -> None:
        with httpx2.Client(base_url=url, timeout=10) as client:
            for i in range(300):  # bounded in count ...
                if time.monotonic() > deadline:  # ... and in time
                    break
                try:
                    response = client.get(f"load/{i}")
                    if response.status_code != 200 or response.json()["n"] != i:
                        failures.append(f"{response.status_code} {response.text[:80]}")
                except httpx2.HTTPError as exc:
                    failures.append(repr(exc))
                counts[worker] += 1
        done.set()

    workers = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for worker in workers:
        worker.start()
    version = 0
    while not done.is_set() and version < 200:
        version += 1
        route(
            served,
            "GET /load/<int:n>",
            f"async def load(n):\n    return {{'n': n, 'v': {version}}}",
        )
    for worker in workers:
        worker.join(30)
    assert failures == []
    assert sum(counts) > 0
    assert version > 0
    paths = httpx2.get(url + "openapi.json").json()["paths"]
    assert list(paths) == ["/load/{n}"]  # replaced in place, never duplicated
    assert httpx2.get(url + "load/1").json()["v"] == version


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_thread_or_fd_leak_across_100_stop_start_cycles(served: Any) -> None:
    route(served, "GET /ping", "async def ping():\n    return 'pong'")
    url = base(served)
    with httpx2.Client() as client:
        assert client.get(url + "ping").json() == "pong"
    served.run_line_magic("nbapi", "restart")  # warm up
    threads, fds = threading.active_count(), _fds()
    for _ in range(100):
        served.run_line_magic("nbapi", "stop")
        served.run_line_magic("nbapi", "serve")
        with httpx2.Client() as client:
            assert client.get(url + "ping").json() == "pong"
    assert base(served) == url  # the same port every time: it is freed at once
    served.run_line_magic("nbapi", "stop")  # closes the last request's connection too
    # No growth (threads of an earlier test's runner may still be finishing meanwhile).
    settle(lambda: threading.active_count() <= threads and _fds() <= fds)
    assert threading.active_count() <= threads
    assert _fds() <= fds


def test_no_leak_across_500_route_reruns(served: Any) -> None:
    url = base(served)
    route(served, "GET /again", "async def again():\n    return 0")
    app = served.user_ns["app"]
    threads, fds, count = threading.active_count(), _fds(), len(app.router.routes)
    session = session_of(served)
    for i in range(1, 501):
        route(served, "GET /again", f"async def again():\n    return {i}")
    assert len(app.router.routes) == count
    assert len(session.registry.owned(app)) == 1
    assert threading.active_count() <= threads
    assert _fds() <= fds
    assert httpx2.get(url + "again").json() == 500


def test_live_server_object_directly() -> None:
    session = Session({})
    session.app  # noqa: B018 - create the app
    server = LiveServer(session.runner, "127.0.0.1", free_port())
    server.start(exact_port=True)
    try:
        assert server.running
        assert server.client().get("/openapi.json").status_code == 200
        identity = server.client().get("/_nbapi/server").json()
        assert identity == {"nbapi": os.getpid()}
    finally:
        server.stop()
        session.close()
    assert not server.running
    assert server.state == "stopped"


def test_no_signal_handlers_installed(shell: Any) -> None:
    import signal

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    shell.run_line_magic("config", f"NbAPI.port = {free_port()}")
    shell.run_line_magic("nbapi", "serve")
    try:
        during = {sig: signal.getsignal(sig) for sig in before}
    finally:
        shell.run_line_magic("nbapi", "stop")
    assert during == before
    assert {sig: signal.getsignal(sig) for sig in before} == before


# -- issue 12, item 5: every bind failure is one line -----------------------------------------------
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("::ffff:1.2.3.4", "cannot bind '::ffff:1.2.3.4' port"),  # EINVAL on an IPv6-only socket
        ("203.0.113.1", "cannot bind host '203.0.113.1'"),  # EADDRNOTAVAIL
        ("x\x00y", "host name must not contain null character"),
    ],
)
def test_bind_failures_are_one_line(shell: Any, host: str, expected: str) -> None:
    with pytest.raises(UsageError, match=re.escape(expected)) as caught:
        shell.run_line_magic("nbapi", f"serve --host {host} --port {free_port()}")
    assert "\n" not in str(caught.value)
    assert session_of(shell).server is None


@pytest.mark.parametrize(
    "host", ["127.0.0.2", "127.255.255.254", "::ffff:127.0.0.1", "[::1]", "LOCALHOST"]
)
def test_all_of_loopback_is_loopback(host: str) -> None:
    said: list[str] = []
    _host_warning(Session({}, say=said.append), host)
    assert said == []


@pytest.mark.parametrize("junk", ["\x0c--port", "a\u2028b", "x\x1cy"])
def test_argument_with_a_line_break_is_quoted_on_one_line(shell: Any, junk: str) -> None:
    # Found by tests/test_hardening.py: argparse quotes a bad argument raw.
    with pytest.raises(UsageError, match=r"unknown (option|argument)") as caught:
        shell.run_line_magic("nbapi", f"serve {junk}")
    assert len(str(caught.value).splitlines()) == 1
    assert session_of(shell).server is None
