"""The %%route line: methods, every path syntax, keywords, and the errors for bad lines."""

from __future__ import annotations

import pytest

from nbapi._errors import UserError
from nbapi._spec import RouteSpec, SpecError, convert_path, parse_route_line


@pytest.mark.parametrize(
    ("line", "methods", "path", "converters", "keywords"),
    [
        ("GET /", ("GET",), "/", {}, ""),
        ("get /items/{item_id}", ("GET",), "/items/{item_id}", {}, ""),
        ("GET,post /items", ("GET", "POST"), "/items", {}, ""),
        ("GET,GET /x", ("GET",), "/x", {}, ""),
        ("put /items/<item_id>", ("PUT",), "/items/{item_id}", {}, ""),
        ("PATCH /items/<int:item_id>", ("PATCH",), "/items/{item_id}", {"item_id": int}, ""),
        ("DELETE /price/<float:value>", ("DELETE",), "/price/{value}", {"value": float}, ""),
        (
            "GET /files/<path:file_path>",
            ("GET",),
            "/files/{file_path:path}",
            {"file_path": str},
            "",
        ),
        (
            "GET /files/{file_path:path}",
            ("GET",),
            "/files/{file_path:path}",
            {"file_path": str},
            "",
        ),
        (
            "GET /users/:user_id/items/:item_id",
            ("GET",),
            "/users/{user_id}/items/{item_id}",
            {},
            "",
        ),
        ("head,options,trace /x", ("HEAD", "OPTIONS", "TRACE"), "/x", {}, ""),
        (
            "POST /items status_code=201, tags=['items']",
            ("POST",),
            "/items",
            {},
            "status_code=201, tags=['items']",
        ),
        ("GET /a/<str:name>", ("GET",), "/a/{name}", {"name": str}, ""),
    ],
)
def test_parse_route_line(
    line: str, methods: tuple[str, ...], path: str, converters: dict[str, type], keywords: str
) -> None:
    spec = parse_route_line(line)
    assert spec == RouteSpec(methods, path, converters, keywords, websocket=False)


@pytest.mark.parametrize("method", ["WS", "ws", "websocket", "WebSocket"])
def test_websocket_method(method: str) -> None:
    spec = parse_route_line(f"{method} /echo/<room>")
    assert spec.websocket
    assert spec.methods == ()
    assert spec.path == "/echo/{room}"
    assert spec.describe() == "WS /echo/{room}"


def test_path_params_and_describe() -> None:
    spec = parse_route_line("GET,POST /users/<int:user_id>/items/{item_id}")
    assert spec.path_params == ("user_id", "item_id")
    assert spec.describe() == "GET,POST /users/{user_id}/items/{item_id}"


def test_colon_inside_a_segment_is_literal() -> None:
    # Only a whole segment starting with ':' is a parameter (Express style).
    assert convert_path("/v1:beta/items") == ("/v1:beta/items", {})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "%%route needs a method and a path, got ''; e.g. %%route GET /items/{item_id}"),
        ("GET", "%%route needs a method and a path, got 'GET'; e.g. %%route GET /items/{item_id}"),
        ("FETCH /x", "unknown HTTP method 'FETCH'; use one of GET POST PUT PATCH DELETE HEAD"),
        ("GET,FOO /x", "unknown HTTP method 'FOO'"),
        ("WS,GET /x", "a websocket route takes no other method, got 'WS,GET'; write WS alone"),
        ("GET items", "path 'items' must start with '/', e.g. /items/{item_id}"),
        ("GET /items/<uuid:x>", "unknown converter 'uuid' in '<uuid:x>'; use one of int, float"),
        ("GET /items/{x:uuid}", "unknown converter 'uuid' in '{x:uuid}'"),
        ("GET /items/{item_id", "malformed path parameter in '/items/{item_id'"),
        ("GET /items/<item_id", "malformed path parameter in '/items/<item_id'"),
        ("GET /a/{x}/b/<x>", "path parameter 'x' appears twice in '/a/{x}/b/<x>'"),
        ("POST /items status_code=", "cannot read the keywords 'status_code='"),
        ("POST /items 201", "the keywords '201' must all be NAME=VALUE"),
        ("POST /items **extra", "the keywords '**extra' must all be NAME=VALUE"),
    ],
)
def test_bad_lines_name_the_problem(line: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_route_line(line)
    text = str(info.value)
    assert text.startswith(message) or message in text
    assert "\n" not in text
    assert isinstance(info.value, UserError)


# -- issue 12, item 1: a keyword part that is not one keyword list ----------------------------
@pytest.mark.parametrize(
    "keywords",
    [
        "a=1), (2",
        "status_code=201), print('x'",
        "a=1)(b=2",
        "a=1).x(b=2",
        "a=1) or f(b=2",
        "a=\x00",
        "a=" + "-" * 100_000 + "1",
    ],
)
def test_keywords_that_are_not_one_keyword_list_are_one_line(keywords: str) -> None:
    with pytest.raises(SpecError, match="keywords") as caught:
        parse_route_line(f"GET /x {keywords}")
    assert len(str(caught.value).splitlines()) == 1


def test_control_character_in_path_is_refused() -> None:
    with pytest.raises(SpecError, match=r"control character '\\x1b'"):
        parse_route_line("GET /x\x1b")
