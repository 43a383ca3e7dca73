"""%http parsing and the response view, plus the in-process transport, without IPython."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

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
    response = httpx.Response(200, headers={"content-type": content_type}, content=content)
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
