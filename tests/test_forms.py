"""OpenAPI -> form fields, example bodies, client-side checks, 422 mapping, requests, code.

The apps are FastAPI tutorial shapes; their real ``app.openapi()`` is read, and
requests are sent through nbapi's real in-process runner.
"""

from __future__ import annotations

import ast
import base64
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any

import httpx2
import pytest
from fastapi import (
    Body,
    Cookie,
    Depends,
    FastAPI,
    File,
    Form,
    Header,
    HTTPException,
    Path,
    Query,
    UploadFile,
)
from fastapi.security import (
    APIKeyCookie,
    APIKeyHeader,
    APIKeyQuery,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
    OAuth2PasswordBearer,
    OAuth2PasswordRequestForm,
)
from pydantic import BaseModel, Field

from nbapi import _forms
from nbapi._client import make_client, parse_http_cell
from nbapi._errors import UserError
from nbapi._forms import Auth, Operation
from nbapi._runner import AppRunner


class ModelName(str, Enum):
    alexnet = "alexnet"
    resnet = "resnet"
    lenet = "lenet"


class Image(BaseModel):
    url: str
    name: str


class Item(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    description: str | None = None
    price: float = Field(gt=0)
    tax: float | None = None
    tags: list[str] = []
    image: Image | None = None


class Node(BaseModel):
    label: str
    children: list[Node] = []


class Offer(BaseModel):
    name: str = Field(examples=["Spring sale"])
    items: list[Item]


def tutorial_app() -> FastAPI:
    """One operation per parameter kind of the FastAPI tutorial."""
    app = FastAPI(title="Tutorial", version="1.0")

    @app.get("/items/{item_id}", tags=["items"], summary="Read an item")
    def read_item(
        item_id: Annotated[int, Path(ge=1, le=1000)],
        q: Annotated[str | None, Query(min_length=3, max_length=10, pattern="^q")] = None,
        short: bool = False,
        limit: int = 10,
    ) -> dict[str, Any]:
        return {"item_id": item_id, "q": q, "short": short, "limit": limit}

    @app.get("/models/{model_name}", tags=["models"])
    def get_model(model_name: ModelName) -> dict[str, str]:
        return {"model_name": model_name.value}

    @app.get("/search", tags=["items"])
    def search(
        tag: Annotated[list[str] | None, Query()] = None,
        model: Annotated[list[ModelName], Query()] = [],  # noqa: B006 - FastAPI's own idiom
        sizes: Annotated[list[int], Query()] = [1, 2],  # noqa: B006
    ) -> dict[str, Any]:
        return {"tag": tag, "model": model, "sizes": sizes}

    @app.get("/files/{file_path:path}")
    def read_file(file_path: str) -> dict[str, str]:
        return {"file_path": file_path}

    @app.get("/headers")
    def headers(
        user_agent: Annotated[str | None, Header()] = None,
        x_token: Annotated[list[str], Header()] = [],  # noqa: B006
        x_count: Annotated[int, Header()] = 1,
        ads_id: Annotated[str | None, Cookie()] = None,
    ) -> dict[str, Any]:
        return {"user_agent": user_agent, "x_token": x_token, "x_count": x_count, "ads": ads_id}

    @app.put("/items/{item_id}", tags=["items"], deprecated=True)
    def update_item(item_id: int, item: Item, importance: Annotated[int, Body(gt=0)]) -> Item:
        return item

    @app.post("/items", tags=["items"], status_code=201)
    def create_item(item: Item) -> Item:
        return item

    @app.post("/nodes")
    def create_node(node: Node) -> Node:
        return node

    @app.post("/offers")
    def create_offer(offer: Offer) -> Offer:
        return offer

    @app.post("/login")
    def login(
        username: Annotated[str, Form()], password: Annotated[str, Form(min_length=4)]
    ) -> dict[str, str]:
        return {"username": username}

    @app.post("/upload")
    def upload(
        file: UploadFile,
        extra: Annotated[list[UploadFile], File()] = [],  # noqa: B006
        note: Annotated[str, Form()] = "",
    ) -> dict[str, Any]:
        return {
            "file": file.filename,
            "size": len(file.file.read()),
            "extra": [f.filename for f in extra],
            "note": note,
        }

    return app


# Module level: the endpoints' string annotations are resolved in this module's globals.
oauth2 = OAuth2PasswordBearer(tokenUrl="token")
basic = HTTPBasic()
bearer = HTTPBearer()
key_in_header = APIKeyHeader(name="X-API-Key")
key_in_query = APIKeyQuery(name="api_key")
key_in_cookie = APIKeyCookie(name="session")


def secured_app() -> FastAPI:
    app = FastAPI()

    @app.post("/token")
    def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
        if form.password != "secret":
            raise HTTPException(status_code=400, detail="Incorrect username or password")
        return {"access_token": f"token-of-{form.username}", "token_type": "bearer"}

    @app.get("/users/me")
    def me(token: Annotated[str, Depends(oauth2)]) -> dict[str, str]:
        return {"token": token}

    @app.get("/basic")
    def basic_me(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> dict[str, str]:
        return {"username": credentials.username, "password": credentials.password}

    @app.get("/bearer")
    def bearer_me(credentials: Annotated[Any, Depends(bearer)]) -> dict[str, str]:
        return {"token": credentials.credentials}

    @app.get("/key/header")
    def key_header(key: Annotated[str, Depends(key_in_header)]) -> str:
        return key

    @app.get("/key/query")
    def key_query(key: Annotated[str, Depends(key_in_query)]) -> str:
        return key

    @app.get("/key/cookie")
    def key_cookie(key: Annotated[str, Depends(key_in_cookie)]) -> str:
        return key

    return app


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return tutorial_app()


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


@pytest.fixture(scope="module")
def ops(spec: dict[str, Any]) -> list[Operation]:
    return _forms.operations(spec)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[httpx2.Client]:
    runner = AppRunner(lambda: app)
    with make_client(runner) as http_client:
        yield http_client
    runner.close()


def op_of(ops: list[Operation], label: str) -> Operation:
    method, path = label.split(" ", 1)
    return _forms.find_operation(ops, method, path)[0]


# -- operations and fields ----------------------------------------------------------------
def test_operations_in_route_order_with_tags_summary_and_deprecation(
    ops: list[Operation],
) -> None:
    assert [op.label for op in ops] == [
        "GET /items/{item_id}",
        "PUT /items/{item_id}",
        "GET /models/{model_name}",
        "GET /search",
        "GET /files/{file_path}",
        "GET /headers",
        "POST /items",
        "POST /nodes",
        "POST /offers",
        "POST /login",
        "POST /upload",
    ]
    read = op_of(ops, "GET /items/{item_id}")
    assert (read.tags, read.summary, read.deprecated) == (("items",), "Read an item", False)
    assert op_of(ops, "PUT /items/{item_id}").deprecated
    assert op_of(ops, "GET /models/{model_name}").summary == "Get Model"
    statuses = [status for status, _, _ in op_of(ops, "POST /items").responses]
    assert statuses == ["201", "422"]


@pytest.mark.parametrize(
    ("operation", "key", "kind", "type_label", "required", "initial", "options", "hint"),
    [
        (
            "GET /items/{item_id}",
            "path:item_id",
            "integer",
            "integer",
            True,
            "",
            (),
            ">= 1, <= 1000",
        ),
        (
            "GET /items/{item_id}",
            "query:q",
            "string",
            "string",
            False,
            "",
            (),
            "at least 3 characters, at most 10 characters, matches ^q",
        ),
        ("GET /items/{item_id}", "query:short", "boolean", "boolean", False, "false", (), ""),
        ("GET /items/{item_id}", "query:limit", "integer", "integer", False, "10", (), ""),
        (
            "GET /models/{model_name}",
            "path:model_name",
            "enum",
            "enum",
            True,
            "",
            ("alexnet", "resnet", "lenet"),
            "",
        ),
        ("GET /search", "query:tag", "array", "array[string]", False, [], (), ""),
        (
            "GET /search",
            "query:model",
            "array",
            "array[enum]",
            False,
            [],
            ("alexnet", "resnet", "lenet"),
            "",
        ),
        ("GET /search", "query:sizes", "array", "array[integer]", False, ["1", "2"], (), ""),
        ("GET /files/{file_path}", "path:file_path", "string", "string", True, "", (), ""),
        ("GET /headers", "header:user-agent", "string", "string", False, "", (), ""),
        ("GET /headers", "header:x-token", "array", "array[string]", False, [], (), ""),
        ("GET /headers", "header:x-count", "integer", "integer", False, "1", (), ""),
        ("GET /headers", "cookie:ads_id", "string", "string", False, "", (), ""),
        ("POST /login", "form:username", "string", "string", True, "", (), ""),
        ("POST /login", "form:password", "string", "string", True, "", (), "at least 4 characters"),
        ("POST /upload", "file:file", "file", "file", True, "", (), ""),
        ("POST /upload", "file:extra", "array", "array[file]", False, [], (), ""),
        ("POST /upload", "form:note", "string", "string", False, "", (), ""),
        ("POST /items", "body", "json", "json", True, "", (), ""),
    ],
)
def test_field_of_every_parameter_kind(
    ops: list[Operation],
    operation: str,
    key: str,
    kind: str,
    type_label: str,
    required: bool,
    initial: Any,
    options: tuple[str, ...],
    hint: str,
) -> None:
    field = op_of(ops, operation).field(key)
    assert field is not None, [f.key for f in op_of(ops, operation).all_fields()]
    assert (field.kind, field.type_label, field.required) == (kind, type_label, required)
    assert field.initial() == initial
    assert field.options == options
    assert field.hint() == hint


@pytest.mark.parametrize(
    ("operation", "content_type", "is_form"),
    [
        ("POST /items", "application/json", False),
        ("PUT /items/{item_id}", "application/json", False),
        ("POST /login", "application/x-www-form-urlencoded", True),
        ("POST /upload", "multipart/form-data", True),
        ("GET /search", None, False),
    ],
)
def test_body_media_type(
    ops: list[Operation], operation: str, content_type: str | None, is_form: bool
) -> None:
    body = op_of(ops, operation).body
    if content_type is None:
        assert body is None
        return
    assert body is not None
    assert (body.content_type, body.is_form, body.required) == (content_type, is_form, True)


def test_resolve_follows_refs_and_collapses_optional() -> None:
    spec = {"components": {"schemas": {"Color": {"type": "string", "enum": ["red", "blue"]}}}}
    schema = {"anyOf": [{"$ref": "#/components/schemas/Color"}, {"type": "null"}], "default": None}
    resolved = _forms.resolve(schema, spec)
    assert resolved == {
        "type": "string",
        "enum": ["red", "blue"],
        "default": None,
        "nullable": True,
    }
    assert _forms.resolve({"$ref": "#/components/schemas/Missing"}, spec) == {}
    assert _forms.resolve({"type": ["integer", "null"]}, spec) == {
        "type": "integer",
        "nullable": True,
    }


# -- example bodies -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        (
            "POST /items",
            {
                "name": "string",
                "description": "string",
                "price": 1,
                "tax": 0,
                "tags": ["string"],
                "image": {"url": "string", "name": "string"},
            },
        ),
        (
            "PUT /items/{item_id}",
            {
                "item": {
                    "name": "string",
                    "description": "string",
                    "price": 1,
                    "tax": 0,
                    "tags": ["string"],
                    "image": {"url": "string", "name": "string"},
                },
                "importance": 1,
            },
        ),
        ("POST /offers", {"name": "Spring sale", "items": [{"name": "string"}]}),
        ("POST /nodes", {"label": "string", "children": [{"label": "string"}]}),
    ],
)
def test_body_example_is_valid_for_its_schema(
    ops: list[Operation], spec: dict[str, Any], operation: str, expected: dict[str, Any]
) -> None:
    op = op_of(ops, operation)
    assert op.body is not None
    example = json.loads(_forms.example_text(op.body))
    # The skeleton fills every property; compare the parts the test names.
    assert _subset(expected, example), example
    values = {"path:item_id": "1", "body": json.dumps(example)}
    assert _forms.check_request(op, values, spec) == []


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(
            _subset(e, a) for e, a in zip(expected, actual, strict=False)
        )
    return bool(expected == actual)


def test_valid_example_body_is_accepted_by_the_app(
    ops: list[Operation], client: httpx2.Client
) -> None:
    op = op_of(ops, "POST /items")
    assert op.body is not None
    request = _forms.build_request(op, {"body": _forms.example_text(op.body)})
    response = client.request(**request.httpx_kwargs())
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00Z"),
        ({"type": "string", "format": "email"}, "user@example.com"),
        ({"type": "string", "minLength": 10}, "stringxxxx"),
        ({"type": "string", "maxLength": 3}, "str"),
        ({"type": "integer", "minimum": 5}, 5),
        ({"type": "integer", "exclusiveMinimum": 5}, 6),
        ({"type": "number", "maximum": -2}, -2),
        ({"type": "boolean"}, True),
        ({"type": "string", "enum": ["b", "a"]}, "b"),
        ({"type": "integer", "default": 7}, 7),
        ({"type": "string", "examples": ["Foo"]}, "Foo"),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 2}, [0, 0]),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, 0),
        ({}, None),
    ],
)
def test_skeleton(schema: dict[str, Any], expected: Any) -> None:
    assert _forms.skeleton(schema, {}) == expected


def test_skeleton_of_a_self_referencing_model_stops() -> None:
    spec = {"components": {"schemas": {"N": {"type": "object", "properties": {}}}}}
    spec["components"]["schemas"]["N"]["properties"]["next"] = {"$ref": "#/components/schemas/N"}
    value = _forms.skeleton({"$ref": "#/components/schemas/N"}, spec)
    depth = 0
    while isinstance(value, dict):
        value, depth = value["next"], depth + 1
    assert depth == _forms.MAX_DEPTH


# -- client-side checks: warnings, never errors -----------------------------------------
@pytest.mark.parametrize(
    ("operation", "values", "expected"),
    [
        ("GET /items/{item_id}", {"path:item_id": "5"}, []),
        ("GET /items/{item_id}", {}, ["path.item_id: is required"]),
        ("GET /items/{item_id}", {"path:item_id": "x"}, ["path.item_id: 'x' is not an integer"]),
        ("GET /items/{item_id}", {"path:item_id": "0"}, ["path.item_id: should be >= 1"]),
        (
            "GET /items/{item_id}",
            {"path:item_id": "1", "query:q": "ab"},
            ["query.q: should have at least 3 characters", "query.q: should match ^q"],
        ),
        (
            "GET /items/{item_id}",
            {"path:item_id": "1", "query:short": "maybe"},
            ["query.short: 'maybe' is not true or false"],
        ),
        (
            "GET /models/{model_name}",
            {"path:model_name": "vgg"},
            ["path.model_name: 'vgg' is not one of alexnet, resnet, lenet"],
        ),
        (
            "GET /search",
            {"query:sizes": ["1", "two"], "query:model": ["lenet", "vgg"]},
            [
                "query.model: 'vgg' is not one of alexnet, resnet, lenet",
                "query.sizes: 'two' is not an integer",
            ],
        ),
        ("GET /headers", {"header:x-count": "1.5"}, ["header.x-count: '1.5' is not an integer"]),
        ("POST /items", {"body": ""}, ["body: the body is required"]),
        (
            "POST /items",
            {"body": "{'name': 1}"},
            ["body: not valid JSON (Expecting property name enclosed in double quotes at line 1)"],
        ),
        (
            "POST /items",
            {"body": '{"name": "", "price": 0, "tags": ["a", 2], "image": {"url": "u"}}'},
            [
                "body.name: should have at least 1 character",
                "body.price: should be > 0",
                "body.tags.1: should be a string, got 2",
                "body.image.name: is required",
            ],
        ),
        (
            "POST /items",
            {"body": '{"price": "cheap"}'},
            [
                "body.name: is required",
                'body.price: should be a number, got "cheap"',
            ],
        ),
        ("POST /items", {"body": "[]"}, ["body: should be a object, got []"]),
        (
            "POST /login",
            {"form:username": "ann", "form:password": "abc"},
            ["form.password: should have at least 4 characters"],
        ),
        ("POST /upload", {}, ["file.file: is required"]),
    ],
)
def test_check_request(
    ops: list[Operation],
    spec: dict[str, Any],
    operation: str,
    values: dict[str, Any],
    expected: list[str],
) -> None:
    warnings = _forms.check_request(op_of(ops, operation), values, spec)
    assert [w.line() for w in warnings] == expected


# -- 422 -> fields ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("operation", "values", "expected"),
    [
        (
            "GET /items/{item_id}",
            {"path:item_id": "abc", "query:limit": "many"},
            {
                "path:item_id": [
                    "Input should be a valid integer, unable to parse string as an integer"
                ],
                "query:limit": [
                    "Input should be a valid integer, unable to parse string as an integer"
                ],
            },
        ),
        (
            "GET /models/{model_name}",
            {"path:model_name": "vgg"},
            {"path:model_name": ["Input should be 'alexnet', 'resnet' or 'lenet'"]},
        ),
        (
            "GET /headers",
            {"header:x-count": "many"},
            {
                "header:x-count": [
                    "Input should be a valid integer, unable to parse string as an integer"
                ]
            },
        ),
        (
            "POST /items",
            {"body": '{"name": "", "price": -1}'},
            {
                "body": [
                    "name: String should have at least 1 character",
                    "price: Input should be greater than 0",
                ]
            },
        ),
        ("POST /items", {"body": "{oops"}, {"body": ["JSON decode error at character 1"]}),
        (
            "POST /login",
            {"form:username": "ann"},
            {"form:password": ["Field required"]},
        ),
        ("POST /upload", {"form:note": "x"}, {"file:file": ["Field required"]}),
    ],
)
def test_422_points_at_the_fields(
    ops: list[Operation],
    client: httpx2.Client,
    operation: str,
    values: dict[str, Any],
    expected: dict[str, list[str]],
) -> None:
    op = op_of(ops, operation)
    response = client.request(**_forms.build_request(op, values).httpx_kwargs())
    assert response.status_code == 422, response.text
    assert _forms.error_fields(op, response.json()) == expected


def test_422_without_fastapi_detail_marks_nothing(ops: list[Operation]) -> None:
    op = op_of(ops, "POST /items")
    assert _forms.error_fields(op, {"detail": "Not allowed"}) == {}
    assert _forms.error_fields(op, ["x"]) == {}
    unknown = {"detail": [{"loc": ["query", "nope"], "msg": "bad", "type": "x"}]}
    assert _forms.error_fields(op, unknown) == {"": ["bad"]}


# -- building and sending requests ----------------------------------------------------------
@pytest.mark.parametrize(
    ("operation", "values", "url", "expected_json"),
    [
        (
            "GET /items/{item_id}",
            {"path:item_id": "42", "query:q": "qqq", "query:short": "true", "query:limit": ""},
            "/items/42?q=qqq&short=true",
            {"item_id": 42, "q": "qqq", "short": True, "limit": 10},
        ),
        (
            "GET /search",
            {"query:tag": ["a b", "c&d"], "query:model": ["lenet"], "query:sizes": ["3"]},
            "/search?tag=a+b&tag=c%26d&model=lenet&sizes=3",
            {"tag": ["a b", "c&d"], "model": ["lenet"], "sizes": [3]},
        ),
        (
            "GET /files/{file_path}",
            {"path:file_path": "home/ann/notes 1.txt"},
            "/files/home/ann/notes%201.txt",
            {"file_path": "home/ann/notes 1.txt"},
        ),
        (
            "GET /headers",
            {
                "header:user-agent": "nbapi-test",
                "header:x-token": ["a", "b"],
                "header:x-count": "3",
                "cookie:ads_id": "xyz",
            },
            "/headers",
            {"user_agent": "nbapi-test", "x_token": ["a, b"], "x_count": 3, "ads": "xyz"},
        ),
        (
            "POST /login",
            {"form:username": "ann", "form:password": "pass word"},
            "/login",
            {"username": "ann"},
        ),
        (
            "POST /upload",
            {
                "file:file": [("a.txt", b"hello")],
                "file:extra": [("b.txt", b"1"), ("c.txt", b"2")],
                "form:note": "hi",
            },
            "/upload",
            {"file": "a.txt", "size": 5, "extra": ["b.txt", "c.txt"], "note": "hi"},
        ),
    ],
)
def test_build_request_is_what_the_app_receives(
    ops: list[Operation],
    client: httpx2.Client,
    operation: str,
    values: dict[str, Any],
    url: str,
    expected_json: dict[str, Any],
) -> None:
    request = _forms.build_request(op_of(ops, operation), values)
    assert request.url == url
    response = client.request(**request.httpx_kwargs())
    assert response.status_code == 200, response.text
    assert response.json() == expected_json


def test_empty_path_parameter_stays_a_placeholder_and_the_server_says_why(
    ops: list[Operation], client: httpx2.Client
) -> None:
    op = op_of(ops, "GET /items/{item_id}")
    request = _forms.build_request(op, {})
    assert request.path == "/items/%7Bitem_id%7D"
    response = client.request(**request.httpx_kwargs())
    assert response.status_code == 422
    assert _forms.error_fields(op, response.json())["path:item_id"]


def test_invalid_json_is_still_sent_as_typed(ops: list[Operation]) -> None:
    op = op_of(ops, "POST /items")
    request = _forms.build_request(op, {"body": "{not json"})
    kwargs = request.httpx_kwargs()
    assert kwargs["content"] == b"{not json"
    assert ("Content-Type", "application/json") in kwargs["headers"]


# -- security ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def secured() -> Iterator[tuple[list[Operation], httpx2.Client]]:
    app = secured_app()
    runner = AppRunner(lambda: app)
    with make_client(runner) as http_client:
        yield _forms.operations(app.openapi()), http_client
    runner.close()


@pytest.mark.parametrize(
    ("operation", "kind", "token_url", "param", "location"),
    [
        ("GET /users/me", "oauth2-password", "token", "", "header"),
        ("GET /basic", "basic", "", "", "header"),
        ("GET /bearer", "bearer", "", "", "header"),
        ("GET /key/header", "apikey", "", "X-API-Key", "header"),
        ("GET /key/query", "apikey", "", "api_key", "query"),
        ("GET /key/cookie", "apikey", "", "session", "cookie"),
    ],
)
def test_security_schemes(
    secured: tuple[list[Operation], httpx2.Client],
    operation: str,
    kind: str,
    token_url: str,
    param: str,
    location: str,
) -> None:
    ops, _ = secured
    (scheme,) = op_of(ops, operation).security
    assert (scheme.kind, scheme.token_url, scheme.param_name, scheme.location) == (
        kind,
        token_url,
        param,
        location,
    )
    assert op_of(ops, "POST /token").security == ()


@pytest.mark.parametrize(
    ("operation", "auth", "expected"),
    [
        ("GET /bearer", Auth("bearer", token="abc"), {"token": "abc"}),
        ("GET /users/me", Auth("oauth2-password", token="t1"), {"token": "t1"}),
        (
            "GET /basic",
            Auth("basic", username="ann", password="p:w"),
            {"username": "ann", "password": "p:w"},
        ),
        ("GET /key/header", Auth("apikey", token="k1", param_name="X-API-Key"), "k1"),
        (
            "GET /key/query",
            Auth("apikey", token="k2", param_name="api_key", location="query"),
            "k2",
        ),
        (
            "GET /key/cookie",
            Auth("apikey", token="k3", param_name="session", location="cookie"),
            "k3",
        ),
    ],
)
def test_auth_is_sent(
    secured: tuple[list[Operation], httpx2.Client], operation: str, auth: Auth, expected: Any
) -> None:
    ops, http_client = secured
    op = op_of(ops, operation)
    assert http_client.request(**_forms.build_request(op, {}).httpx_kwargs()).status_code in (
        401,
        403,
    )
    response = http_client.request(**_forms.build_request(op, {}, auth).httpx_kwargs())
    assert response.status_code == 200, response.text
    assert response.json() == expected


def test_basic_auth_header_encoding(ops: list[Operation]) -> None:
    request = _forms.build_request(
        op_of(ops, "GET /headers"), {}, Auth("basic", username="a", password="b")
    )
    assert request.headers == (("Authorization", "Basic " + base64.b64encode(b"a:b").decode()),)


def test_oauth2_password_flow(secured: tuple[list[Operation], httpx2.Client]) -> None:
    ops, http_client = secured
    (scheme,) = op_of(ops, "GET /users/me").security
    request = _forms.token_request(scheme, "ann", "secret")
    assert (request.method, request.path, request.body_kind) == ("POST", "/token", "form")
    response = http_client.request(**request.httpx_kwargs())
    assert _forms.read_token(response.status_code, response.json()) == "token-of-ann"
    bad = http_client.request(**_forms.token_request(scheme, "ann", "nope").httpx_kwargs())
    with pytest.raises(_forms.TokenError, match="400 'Incorrect username or password'") as info:
        _forms.read_token(bad.status_code, bad.json())
    assert "\n" not in str(info.value)


# -- finding an operation ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "label", "path_values"),
    [
        ("GET", "/items/{item_id}", "GET /items/{item_id}", {}),
        ("get", "/items/42", "GET /items/{item_id}", {"item_id": "42"}),
        ("PUT", "/items/7", "PUT /items/{item_id}", {"item_id": "7"}),
        ("GET", "/files/a/b/c.txt", "GET /files/{file_path}", {"file_path": "a/b/c.txt"}),
    ],
)
def test_find_operation(
    ops: list[Operation], method: str, path: str, label: str, path_values: dict[str, str]
) -> None:
    op, values = _forms.find_operation(ops, method, path)
    assert (op.label, values) == (label, path_values)


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("DELETE", "/items/1", "no operation DELETE '/items/1' in the app; use one of GET /items/"),
        ("GET", "/nowhere", "no operation GET '/nowhere' in the app; use one of"),
    ],
)
def test_find_operation_unknown(ops: list[Operation], method: str, path: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        _forms.find_operation(ops, method, path)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_find_operation_in_an_empty_app() -> None:
    with pytest.raises(UserError, match="the app has no operations yet; add a %%route cell"):
        _forms.find_operation([], "GET", "/")


# -- the request as code --------------------------------------------------------------------
@pytest.fixture
def put_request(ops: list[Operation]) -> _forms.PreparedRequest:
    op = op_of(ops, "GET /headers")
    values = {"header:x-count": "2", "cookie:ads_id": "z"}
    base = _forms.build_request(op, values, Auth("bearer", token="t0k"))
    body = '{"name": "Lamp\'s", "price": 2}'
    return _forms.PreparedRequest(
        "PUT",
        "/items/1",
        query=(("q", "a b"),),
        headers=base.headers,
        cookies=base.cookies,
        body_kind="json",
        content=body,
    )


def test_curl(put_request: _forms.PreparedRequest) -> None:
    command = put_request.curl("http://127.0.0.1:8000/")
    assert shlex.split(command) == [
        "curl",
        "-X",
        "PUT",
        "http://127.0.0.1:8000/items/1?q=a+b",
        "-H",
        "x-count: 2",
        "-H",
        "Authorization: Bearer t0k",
        "-b",
        "ads_id=z",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"name": "Lamp\'s", "price": 2}',
    ]


def test_curl_form_and_files(ops: list[Operation]) -> None:
    request = _forms.build_request(
        op_of(ops, "POST /upload"), {"file:file": [("a b.txt", b"x")], "form:note": "hi there"}
    )
    assert shlex.split(request.curl("http://h")) == [
        "curl",
        "-X",
        "POST",
        "http://h/upload",
        "-F",
        "note=hi there",
        "-F",
        "file=@a b.txt",
    ]
    login = _forms.build_request(op_of(ops, "POST /login"), {"form:username": "a&b"})
    assert "--data-urlencode 'username=a&b'" in login.curl("http://h")


def test_httpx_code_is_python_with_the_request(put_request: _forms.PreparedRequest) -> None:
    code = put_request.httpx_code("http://127.0.0.1:8000")
    ast.parse(code)
    assert code == "\n".join(
        [
            "import httpx2",
            "",
            "response = httpx2.request(",
            "    'PUT',",
            "    'http://127.0.0.1:8000/items/1',",
            "    params=[('q', 'a b')],",
            "    headers={'x-count': '2', 'Authorization': 'Bearer t0k'},",
            "    cookies={'ads_id': 'z'},",
            "    json={'name': \"Lamp's\", 'price': 2},",
            ")",
            "print(response.status_code, response.text)",
        ]
    )


def test_http_cell_sends_the_same_request(ops: list[Operation], client: httpx2.Client) -> None:
    op = op_of(ops, "GET /headers")
    values = {"header:x-token": ["a"], "header:x-count": "4", "cookie:ads_id": "c1"}
    request = _forms.build_request(op, values)
    cell = request.http_cell()
    assert cell == "%%http GET /headers\nx-token: a\nx-count: 4\nCookie: ads_id=c1"
    line, body = cell.split("\n", 1)
    call = parse_http_cell(line.removeprefix("%%http "), body)
    direct = client.request(**request.httpx_kwargs())
    via_cell = client.request(**call.request_kwargs())
    assert (
        via_cell.json()
        == direct.json()
        == {
            "user_agent": "python-httpx2/" + httpx2.__version__,
            "x_token": ["a"],
            "x_count": 4,
            "ads": "c1",
        }
    )


def test_http_cell_with_json_and_form_bodies(ops: list[Operation], client: httpx2.Client) -> None:
    post = _forms.build_request(op_of(ops, "POST /items"), {"body": '{"name": "A", "price": 1}'})
    assert post.http_cell() == '%%http POST /items\n\n{"name": "A", "price": 1}'
    login = _forms.build_request(
        op_of(ops, "POST /login"), {"form:username": "ann", "form:password": "pass"}
    )
    cell = login.http_cell()
    assert cell == "%%http -f POST /login\n\nusername=ann\npassword=pass"
    line, body = cell.split("\n", 1)
    call = parse_http_cell(line.removeprefix("%%http "), body)
    assert client.request(**call.request_kwargs()).json() == {"username": "ann"}


def test_forms_is_pure() -> None:
    code = (
        "import sys, nbapi._forms;"
        "print(sorted(m for m in ('IPython', 'ipywidgets', 'nbapi._magics') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


# -- issue 12, item 12: what a token endpoint's answer means ---------------------------------------
@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (404, {"detail": "Not Found"}, "the app has no POST /token route"),
        (405, {"detail": "Method Not Allowed"}, "the app has no POST /token route"),
        (422, {"detail": []}, "form fields username and password"),
        (500, "Internal Server Error", "the token route failed; see %nbapi log --errors"),
        (200, {"token": "x"}, 'must return {"access_token": ..., "token_type": "bearer"}'),
        (400, {"detail": "Incorrect username or password"}, "check the username and password"),
        (401, {"detail": "Not authenticated"}, "check the username and password"),
    ],
)
def test_token_endpoint_answers_say_what_to_fix(status: int, payload: Any, expected: str) -> None:
    with pytest.raises(_forms.TokenError) as caught:
        _forms.read_token(status, payload, "/token")
    message = str(caught.value)
    assert message.startswith(f"/token answered {status} ")
    assert expected in message
    assert "\n" not in message
    if status in (404, 405, 500):
        assert "check the username and password" not in message


def test_operation_cache_reads_only_new_operation_objects() -> None:
    app = FastAPI()

    @app.get("/a/{n}")
    def a(n: int, q: str = "x") -> dict[str, int]:
        return {"n": n}

    @app.post("/b")
    def b(body: dict[str, int]) -> dict[str, int]:
        return body

    spec = app.openapi()
    cache = _forms.OperationCache()
    first = _forms.operations(spec, cache)
    assert first == _forms.operations(spec)  # a cache changes nothing read
    again = _forms.operations(spec, cache)
    assert all(x is y for x, y in zip(first, again, strict=True))  # same objects: not re-read
    changed = {**spec, "paths": {**spec["paths"], "/b": {"post": {**spec["paths"]["/b"]["post"]}}}}
    changed["paths"]["/b"]["post"]["summary"] = "now documented"
    third = _forms.operations(changed, cache)
    assert third[0] is first[0]
    assert third[1] is not first[1]
    assert third[1].summary == "now documented"
    assert third == _forms.operations(changed)
