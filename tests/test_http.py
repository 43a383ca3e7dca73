"""The %http language: every response view the client renders reads back to the same
expectation, and the cells the request builder writes parse to the same request."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient

from nbapi import _emitted
from nbapi._client import HttpResponse
from nbapi._export import expectation
from nbapi._http import (
    BODY_LIMIT,
    HttpCall,
    ShownResponse,
    parse_http_cell,
    read_view,
    write_http_cell,
)

TRACEBACK = 'Traceback (most recent call last):\n  File "<cell>", line 3\nValueError: boom'


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/json")
    def json_body() -> dict[str, Any]:
        return {"a": [1, "é"], "b": None}

    @app.get("/text")
    def text() -> PlainTextResponse:
        return PlainTextResponse("hello\nworld")

    @app.get("/long")
    def long() -> PlainTextResponse:
        return PlainTextResponse("x" * (BODY_LIMIT + 5))

    @app.get("/items/{item_id}")
    def item(item_id: int) -> int:
        return item_id

    @app.get("/boom")
    def boom() -> None:
        raise ValueError("boom")

    @app.delete("/empty", status_code=204)
    def empty() -> Response:
        return Response(status_code=204)

    @app.get("/bytes")
    def raw() -> Response:
        return Response(b"\xff\x00\xfe", media_type="application/octet-stream")

    return app


ROWS = [
    (
        "path.item_id",
        "Input should be a valid integer, unable to parse string as an integer",
        '"abc"',
    )
]

# (method, path, verbose, the handler's error shown, what the view shows)
CASES = [
    ("GET", "/json", False, "", ShownResponse(200, "json", {"a": [1, "é"], "b": None})),
    ("GET", "/text", False, "", ShownResponse(200, "text", "hello\nworld")),
    ("GET", "/long", False, "", ShownResponse(200, "prefix", "x" * BODY_LIMIT)),
    ("GET", "/items/abc", False, "", ShownResponse(422, "rows", ROWS)),
    ("GET", "/boom", False, TRACEBACK, ShownResponse(500, "text", "Internal Server Error")),
    ("GET", "/json", True, "", ShownResponse(200, "json", {"a": [1, "é"], "b": None})),
    ("DELETE", "/empty", False, "", ShownResponse(204, "empty")),
    ("DELETE", "/empty", True, "", ShownResponse(204, "empty")),
    ("GET", "/bytes", False, "", ShownResponse(200, "size", 3)),
]


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


@pytest.mark.parametrize(("method", "path", "verbose", "error", "shown"), CASES)
def test_every_view_reads_back_to_what_it_shows(
    client: TestClient, method: str, path: str, verbose: bool, error: str, shown: ShownResponse
) -> None:
    response = client.request(method, path)
    view = HttpResponse(response, verbose=verbose, error=error).text_view()
    assert read_view(view, verbose) == shown
    # The assertions the exporter writes from the view hold for the response.
    lines = expectation(view, verbose)
    assert lines is not None
    namespace = {"response": response, "validation_rows": _emitted.validation_rows}
    exec("\n".join(lines), namespace)


def test_a_verbose_view_shows_headers_the_reader_skips(client: TestClient) -> None:
    view = HttpResponse(client.get("/json"), verbose=True).text_view()
    assert "\ncontent-type: application/json\n" in view
    read_as_plain = read_view(view, verbose=False)  # the headers would count as body
    assert read_as_plain is not None
    assert read_as_plain.kind == "text"


@pytest.mark.parametrize("view", ["", "200 OK", "HTTP/1.1 200 OK", "<HttpResponse>"])
def test_what_is_not_a_view_reads_as_none(view: str) -> None:
    assert read_view(view, False) is None
    assert expectation(view, False) is None


@pytest.mark.parametrize(
    ("cell", "call"),
    [
        (
            write_http_cell("POST", "/items", [("X-Token", "a b")], '{"a": 1}'),
            HttpCall("POST", "/items", [("X-Token", "a b")], '{"a": 1}'),
        ),
        (write_http_cell("GET", "/items?q=1", []), HttpCall("GET", "/items?q=1")),
        (
            write_http_cell("POST", "/upload", [], form=([("name", "x")], ["file@a.txt"])),
            HttpCall("POST", "/upload", [], "name=x\nfile@a.txt", form=True),
        ),
    ],
)
def test_written_cells_parse_to_the_same_request(cell: str, call: HttpCall) -> None:
    line, _, body = cell.partition("\n")
    assert parse_http_cell(line.removeprefix("%%http "), body) == call


def test_status_line_without_a_reason_phrase() -> None:
    response = httpx2.Response(299)
    assert HttpResponse(response).text_view() == "HTTP 299"
    assert read_view("HTTP 299", False) == ShownResponse(299, "empty")
