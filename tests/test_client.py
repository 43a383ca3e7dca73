"""%http parsing and the response view, plus the in-process transport, without IPython."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx2
import pytest
from fastapi import Cookie, FastAPI, Form, Request, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import RedirectResponse, StreamingResponse
from fastapi.testclient import TestClient
from IPython.core.error import UsageError

from nbapi._client import (
    HttpCall,
    HttpResponse,
    RequestError,
    format_body,
    make_client,
    parse_form,
    parse_http_cell,
    parse_http_line,
    validation_rows,
)
from nbapi._runner import AppRunner


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /", HttpCall("GET", "/")),
        ("get /items/1?q=a b", HttpCall("GET", "/items/1?q=a", body="b")),
        ('POST /items {"a": 1}', HttpCall("POST", "/items", body='{"a": 1}')),
        ("-v DELETE /x", HttpCall("DELETE", "/x", verbose=True)),
        ("--form --server PUT /x", HttpCall("PUT", "/x", form=True, server=True)),
        ("-s -v GET /x", HttpCall("GET", "/x", server=True, verbose=True)),
    ],
)
def test_parse_http_line(line: str, expected: HttpCall) -> None:
    assert parse_http_line(line) == expected


@pytest.mark.parametrize(
    ("cell", "headers", "body"),
    [
        ('{"a": 1}', [], '{"a": 1}'),
        ("X-A: 1\nX-B: two words\n\n[1, 2]", [("X-A", "1"), ("X-B", "two words")], "[1, 2]"),
        ("Authorization: Bearer t\n", [("Authorization", "Bearer t")], ""),
        ("\n\n{}\n\n", [], "{}"),
    ],
)
def test_parse_http_cell(cell: str, headers: list[tuple[str, str]], body: str) -> None:
    call = parse_http_cell("POST /x", cell)
    assert (call.headers, call.body) == (headers, body)


def test_header_values_are_expanded_but_not_the_body() -> None:
    call = parse_http_cell("POST /x", "X-Token: {t}\n\n{t}", expand=lambda s: s.replace("{t}", "T"))
    assert call.headers == [("X-Token", "T")]
    assert call.body == "{t}"


def test_form_content_type_switches_to_form() -> None:
    call = parse_http_cell("POST /x", "Content-Type: multipart/form-data\n\na=1\nb=2")
    assert call.form
    assert call.headers == []
    assert call.request_kwargs()["data"] == {"a": "1", "b": "2"}


def test_parse_form(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"\x00\x01")
    data, files = parse_form(f"a=1&a=2\nname=x=y\nupload@{tmp_path / 'f.bin'}")
    assert data == [("a", "1"), ("a", "2"), ("name", "x=y")]
    assert files == [("upload", ("f.bin", b"\x00\x01"))]
    assert HttpCall("POST", "/", body="a=1&a=2", form=True).request_kwargs()["data"] == {
        "a": ["1", "2"]
    }


def test_json_body_gets_a_content_type_unless_given() -> None:
    kwargs = HttpCall("POST", "/", body="[1]").request_kwargs()
    assert kwargs["headers"] == [("Content-Type", "application/json")]
    assert kwargs["content"] == b"[1]"
    kwargs = HttpCall(
        "POST", "/", headers=[("Content-Type", "text/csv")], body="a,b"
    ).request_kwargs()
    assert kwargs["headers"] == [("Content-Type", "text/csv")]


@pytest.mark.parametrize(
    ("content_type", "content", "shown"),
    [
        ("application/json", b'{"b":1,"a":[1,2]}', '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ]\n}'),
        ("text/html; charset=utf-8", b"<p>hi</p>", "<p>hi</p>"),
        ("image/png", b"\x89PNG\r\n\x1a\n\xff", "<9 bytes of image/png>"),
        ("application/octet-stream", b"plain", "plain"),
        ("application/json", b"", ""),
    ],
)
def test_format_body(content_type: str, content: bytes, shown: str) -> None:
    response = httpx2.Response(200, headers={"content-type": content_type}, content=content)
    assert format_body(response) == shown


def test_validation_rows() -> None:
    payload = {"detail": [{"loc": ["body", "price"], "msg": "Field required", "input": {"a": 1}}]}
    assert validation_rows(payload) == [("body.price", "Field required", '{"a": 1}')]
    assert validation_rows({"detail": "Not found"}) is None


@pytest.fixture
def runner() -> Iterator[tuple[AppRunner, FastAPI]]:
    app = FastAPI()

    @app.get("/hi")
    def hi() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    runner = AppRunner(lambda: app)
    yield runner, app
    runner.close()


def test_in_process_client(runner: tuple[AppRunner, FastAPI]) -> None:
    app_runner, _ = runner
    client = make_client(app_runner)
    response = HttpResponse(client.get("/hi"))
    assert repr(response) == 'HTTP 200 OK\n\n{\n  "hello": "world"\n}'
    crashed = client.get("/boom")
    assert crashed.status_code == 500
    assert [entry.line() for entry in app_runner.log] == [
        "200 GET /hi (in-process)",
        "500 GET /boom (in-process)  RuntimeError: kaput",
    ]
    assert app_runner.log[-1].traceback is not None
    assert 'raise RuntimeError("kaput")' in app_runner.log[-1].traceback


def test_request_errors_are_user_errors() -> None:
    with pytest.raises(
        RequestError, match=r"^the body is not valid JSON \(Expecting value at line 1\)"
    ):
        HttpCall("POST", "/", body="nope").request_kwargs()


@pytest.fixture
def reference_app() -> FastAPI:
    """An app whose answers depend on cookies, redirects, streaming, forms and gzip."""
    app = FastAPI()
    app.add_middleware(GZipMiddleware, minimum_size=10)

    @app.post("/login")
    def login(response: Response) -> dict[str, bool]:
        response.set_cookie("session", "abc")
        return {"ok": True}

    @app.get("/me")
    def me(session: Annotated[str | None, Cookie()] = None) -> dict[str, str | None]:
        return {"session": session}

    @app.get("/old")
    def old() -> RedirectResponse:
        return RedirectResponse("/new", status_code=307)

    @app.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        async def chunks():  # type: ignore[no-untyped-def]
            for n in range(3):
                if await request.is_disconnected():
                    return
                yield f"chunk {n}\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.post("/form")
    def form(name: Annotated[str, Form()], tags: Annotated[list[str], Form()]) -> dict[str, object]:
        return {"name": name, "tags": tags}

    @app.get("/big")
    def big(n: int = 100) -> dict[str, str]:
        return {"text": "x" * n}

    @app.get("/headers")
    def headers(request: Request) -> dict[str, str]:
        return dict(request.headers)

    return app


REQUESTS = [
    pytest.param([("POST", "/login", {}), ("GET", "/me", {})], id="cookie-kept"),
    pytest.param([("GET", "/old", {})], id="redirect-not-followed"),
    pytest.param([("GET", "/stream", {})], id="streaming-not-cut-short"),
    pytest.param([("HEAD", "/big", {})], id="head-has-no-body"),
    pytest.param(
        [("POST", "/form", {"data": {"name": "Ann", "tags": ["a", "b"]}})], id="form-fields"
    ),
    pytest.param([("GET", "/big", {"params": {"n": 500}})], id="params-gzip"),
]


@pytest.mark.parametrize("calls", REQUESTS)
def test_in_process_client_answers_like_test_client(
    reference_app: FastAPI, calls: list[tuple[str, str, dict[str, object]]]
) -> None:
    app_runner = AppRunner(lambda: reference_app)
    client = make_client(app_runner)
    try:
        with TestClient(reference_app, follow_redirects=False) as reference:
            for method, url, kwargs in calls:
                got = client.request(method, url, **kwargs)  # type: ignore[arg-type]
                want = reference.request(method, url, **kwargs)  # type: ignore[arg-type]
                assert (got.status_code, got.content) == (want.status_code, want.content)
                skip = {"user-agent"}  # TestClient names itself
                got_headers = {k: v for k, v in got.headers.items() if k not in skip}
                want_headers = {k: v for k, v in want.headers.items() if k not in skip}
                assert got_headers == want_headers
                assert dict(client.cookies) == dict(reference.cookies)
                assert got.elapsed.total_seconds() >= 0
                assert (got.next_request and str(got.next_request.url)) == (
                    want.next_request and str(want.next_request.url)
                )
    finally:
        client.close()
        app_runner.close()


def test_in_process_client_sends_httpx_default_headers(reference_app: FastAPI) -> None:
    app_runner = AppRunner(lambda: reference_app)
    client = make_client(app_runner)
    try:
        sent = client.get("/headers", headers={"X-Token": "t"}).json()
        fallback = client.get("/headers", headers={"X-Token": "t"}, params={"a": "1"}).json()
    finally:
        client.close()
        app_runner.close()
    assert sent == fallback  # the plain path and httpx's own path send the same request
    assert sent["x-token"] == "t"
    assert sent["user-agent"].startswith("python-httpx2/")
    assert sent["host"] == "testserver"


# -- issue 12, items 3, 7 and 11: one rule for URLs and headers; linear parsing ---------------
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("GET //example.com/x", r"starts with '//', which names a host.*write /example.com/x"),
        ("GET /x\x1b", r"control character '\\x1b'; percent-encode it \(%1B\)"),
        ("GET /x\x00y", r"control character '\\x00'"),
        ("GET /x\ud800", "not valid text"),
        ("--bogus GET /x", "unknown option '--bogus'"),
    ],
)
def test_bad_urls_and_options_are_one_line(line: str, reason: str) -> None:
    with pytest.raises(RequestError, match=reason) as caught:
        parse_http_line(line)
    assert len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("plain", "plain"),
        ("Jos\u00e9", b"Jos\xc3\xa9"),  # UTF-8 bytes, as curl sends them
        ("a\tb", "a\tb"),
        ("a\r\nX-Injected: 1", None),
        ("a\nb", None),
        ("a\x00b", None),
        ("a\x1bb", None),
    ],
)
def test_header_values_one_rule(value: str, sent: str | bytes | None) -> None:
    call = parse_http_cell(
        "GET /x", "X-Name: {v}\n", expand=lambda text: text.replace("{v}", value)
    )
    if sent is None:
        with pytest.raises(RequestError, match="contains the control character") as caught:
            call.request_kwargs()
        assert len(str(caught.value).splitlines()) == 1
        return
    assert call.request_kwargs()["headers"] == [("X-Name", sent)]


def test_five_megabyte_json_body_on_the_line_is_read_whole() -> None:
    body = '{"text": "' + "x" * 5_000_000 + '"}'  # quadratic before: minutes (see benchmarks)
    call = parse_http_line(f"-v POST /echo {body}")
    assert (call.method, call.url, call.verbose, call.body) == ("POST", "/echo", True, body)
    assert call.request_kwargs()["content"] == body.encode()


ECHO_RAW = """
from fastapi import Request

def echo(request: Request, rest: str):
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
    return {"raw_path": request.scope["raw_path"].decode("latin-1"),
            "x_name": headers.get("x-name")}
"""


@pytest.mark.parametrize(
    ("url", "cell", "value", "expected"),
    [
        # Starlette reads header bytes as latin-1: UTF-8 "é" arrives as "Ã©", both ways.
        ("/echo/a", "X-Name: {v}\n", "Jos\u00e9", {"raw_path": "/echo/a", "x_name": "JosÃ©"}),
        ("/echo/a", "X-Name: {v}\n", "a\r\nX-Injected: 1", "control character '\\r'"),
        ("/echo/a", "X-Name: {v}\n", "a\x00b", "control character '\\x00'"),
        ("/echo/{v}", "", "\u00e9", {"raw_path": "/echo/%C3%A9", "x_name": None}),
        ("/echo/{v}", "", "\x1b", "control character '\\x1b'"),
    ],
)
def test_in_process_and_server_apply_the_same_rule(
    shell: Any, url: str, cell: str, value: str, expected: dict[str, Any] | str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    shell.run_line_magic("config", f"NbAPI.port = {port}")
    shell.run_cell_magic("route", "GET /echo/<path:rest>", ECHO_RAW)
    shell.run_line_magic("nbapi", "serve")
    shell.user_ns["v"] = value
    try:
        outcomes: list[Any] = []
        for flag in ("", "-s "):
            try:
                line = f"{flag}GET {url}"
                if cell:
                    response = shell.run_cell_magic("http", line, cell)
                else:
                    response = shell.run_line_magic("http", line)
                outcomes.append(response.json())
            except UsageError as exc:
                outcomes.append(str(exc))
    finally:
        shell.run_line_magic("nbapi", "stop")
    assert outcomes[0] == outcomes[1]
    if isinstance(expected, str):
        assert expected in outcomes[0]
        assert len(outcomes[0].splitlines()) == 1
    else:
        assert outcomes[0] == expected


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\x00b", "a\x1bb", "a\x7f"])
def test_in_process_client_refuses_what_h11_refuses_on_the_wire(
    runner: tuple[AppRunner, FastAPI], value: str
) -> None:
    app_runner, _ = runner
    client = make_client(app_runner)
    with pytest.raises(httpx2.LocalProtocolError, match="a header value is one line"):
        client.get("/hi", headers={"X-Value": value})
    assert list(app_runner.log) == []  # it never reached the app
    assert client.get("/hi", headers={"X-Value": "tab\tis fine"}).status_code == 200


@pytest.mark.parametrize("name", ["x" * 5000, "a\x00b"])
def test_form_file_that_cannot_exist_is_one_line(name: str) -> None:
    with pytest.raises(RequestError, match="does not exist; check the path") as caught:
        parse_form(f"upload@{name}")
    assert len(str(caught.value).splitlines()) == 1
