"""The comparison rules, one table row each, on hand-written and FastAPI-generated OpenAPI,
and ``nbapi diff OLD NEW`` run as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

from nbapi._contract import ContractError, Diff, diff_documents, load_document
from nbapi._rules import RULES, Policy

ROOT = Path(__file__).resolve().parent.parent


def doc(
    op: dict[str, Any] | None = None, *, path: str = "/items", method: str = "get", **schemas: Any
) -> dict[str, Any]:
    """A document with one operation (or none) and named component schemas."""
    paths = {path: {method: op}} if op is not None else {}
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas}}


def param(
    name: str, schema: dict[str, Any], required: bool = False, where: str = "query"
) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema}


def op(
    *parameters: dict[str, Any], body: Any = None, responses: Any = None, **extra: Any
) -> dict[str, Any]:
    found: dict[str, Any] = {"parameters": list(parameters), **extra}
    if body is not None:
        found["requestBody"] = body
    found["responses"] = responses if responses is not None else {"200": {"description": "OK"}}
    return found


def body(
    schema: dict[str, Any], media: str = "application/json", required: bool = True
) -> dict[str, Any]:
    return {"required": required, "content": {media: {"schema": schema}}}


def returns(
    schema: dict[str, Any], status: str = "200", media: str = "application/json"
) -> dict[str, Any]:
    return {status: {"description": "OK", "content": {media: {"schema": schema}}}}


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


STRING, INTEGER, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "number"}
NULLABLE_NUMBER = {"anyOf": [NUMBER, {"type": "null"}]}
ITEM_REF = {"$ref": "#/components/schemas/Item"}
OAUTH = [{"OAuth2PasswordBearer": []}]

# rule, old document, new document, the one change line expected
RULE_TABLE: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (
        "operation-removed",
        doc(op(), path="/items/{item_id}"),
        doc(),
        "breaking change in GET /items/{item_id}: operation removed",
    ),
    (
        "operation-added",
        doc(),
        doc(op(), path="/health"),
        "compatible change in GET /health: operation added",
    ),
    (
        "request-required-added",
        doc(op()),
        doc(op(param("lang", STRING, required=True))),
        "breaking change in GET /items: query parameter 'lang' added as required",
    ),
    (
        "request-required-added",
        doc(op(), method="post"),
        doc(
            op(
                body=body(obj()),
            ),
            method="post",
        ),
        "breaking change in POST /items: request body added as required",
    ),
    (
        "request-required-added",
        doc(op(param("x-token", STRING, where="header")), method="post"),
        doc(
            op(param("X-Token", STRING, where="header"), param("session", STRING, True, "cookie")),
            method="post",
        ),
        "breaking change in POST /items: cookie 'session' added as required",
    ),
    (
        "request-optional-added",
        doc(op()),
        doc(op(param("limit", INTEGER))),
        "compatible change in GET /items: query parameter 'limit' added (optional)",
    ),
    (
        "request-made-required",
        doc(op(param("q", {"anyOf": [STRING, {"type": "null"}]}))),
        doc(op(param("q", STRING, required=True))),
        "breaking change in GET /items: query parameter 'q' is now required",
    ),
    (
        "request-made-required",
        doc(op(body=body(obj(("name",), name=STRING, email=STRING))), method="post"),
        doc(op(body=body(obj(("name", "email"), name=STRING, email=STRING))), method="post"),
        "breaking change in POST /items: request body property 'email' is now required",
    ),
    (
        "request-made-optional",
        doc(op(param("q", STRING, True))),
        doc(op(param("q", STRING))),
        "compatible change in GET /items: query parameter 'q' is now optional",
    ),
    (
        "request-removed",
        doc(op(param("page", INTEGER))),
        doc(op()),
        "compatible change in GET /items: query parameter 'page' removed (no longer read)",
    ),
    (
        "request-type-changed",
        doc(op(param("limit", INTEGER))),
        doc(op(param("limit", STRING))),
        "breaking change in GET /items: query parameter 'limit' type changed from integer to string",
    ),
    (
        "request-type-changed",
        doc(op(body=body(obj(price=NULLABLE_NUMBER))), method="put"),
        doc(op(body=body(obj(price=NUMBER))), method="put"),
        "breaking change in PUT /items: request body property 'price' type changed from number or null to number",
    ),
    (
        "request-type-widened",
        doc(op(param("limit", INTEGER))),
        doc(op(param("limit", NUMBER))),
        "compatible change in GET /items: query parameter 'limit' type widened from integer to number",
    ),
    (
        "request-constraint-narrowed",
        doc(op(body=body(obj(name={"type": "string", "maxLength": 50}))), method="post"),
        doc(op(body=body(obj(name={"type": "string", "maxLength": 20}))), method="post"),
        "breaking change in POST /items: request body property 'name' maxLength narrowed from 50 to 20",
    ),
    (
        "request-constraint-narrowed",
        doc(op(param("q", STRING))),
        doc(op(param("q", {"type": "string", "pattern": "^[a-z]+$"}))),
        "breaking change in GET /items: query parameter 'q' pattern '^[a-z]+$' added",
    ),
    (
        "request-constraint-narrowed",
        doc(op(param("n", {"type": "integer", "minimum": 0}))),
        doc(op(param("n", {"type": "integer", "minimum": 1}))),
        "breaking change in GET /items: query parameter 'n' minimum narrowed from 0 to 1",
    ),
    (
        "request-constraint-narrowed",
        doc(op(param("sort", STRING))),
        doc(op(param("sort", {"type": "string", "enum": ["name", "price"]}))),
        "breaking change in GET /items: query parameter 'sort' now only accepts 'name', 'price'",
    ),
    (
        "request-constraint-widened",
        doc(op(body=body(obj(name={"type": "string", "maxLength": 20}))), method="post"),
        doc(op(body=body(obj(name={"type": "string", "maxLength": 50}))), method="post"),
        "compatible change in POST /items: request body property 'name' maxLength widened from 20 to 50",
    ),
    (
        "request-enum-value-removed",
        doc(op(param("sort", {"enum": ["name", "price"], "type": "string"}))),
        doc(op(param("sort", {"enum": ["name"], "type": "string"}))),
        "breaking change in GET /items: query parameter 'sort' no longer accepts 'price'",
    ),
    (
        "request-enum-value-added",
        doc(op(param("sort", {"enum": ["name"], "type": "string"}))),
        doc(op(param("sort", {"enum": ["name", "date"], "type": "string"}))),
        "compatible change in GET /items: query parameter 'sort' now also accepts 'date'",
    ),
    (
        "request-media-type-removed",
        doc(
            op(
                body={
                    "content": {
                        "application/json": {"schema": STRING},
                        "application/xml": {"schema": STRING},
                    }
                }
            ),
            method="post",
        ),
        doc(op(body={"content": {"application/json": {"schema": STRING}}}), method="post"),
        "breaking change in POST /items: request body no longer accepts application/xml",
    ),
    (
        "request-media-type-added",
        doc(op(body=body(STRING)), method="post"),
        doc(
            op(
                body={
                    "required": True,
                    "content": {
                        "application/json": {"schema": STRING},
                        "application/xml": {"schema": STRING},
                    },
                }
            ),
            method="post",
        ),
        "compatible change in POST /items: request body now also accepts application/xml",
    ),
    (
        "response-property-removed",
        doc(op(responses=returns(ITEM_REF)), Item=obj(("price",), price=NUMBER)),
        doc(op(responses=returns(ITEM_REF)), Item=obj()),
        "breaking change in GET /items: 200 response property 'price' removed",
    ),
    (
        "response-property-added",
        doc(op(responses=returns(obj()))),
        doc(op(responses=returns(obj(tax=NUMBER)))),
        "compatible change in GET /items: 200 response property 'tax' added",
    ),
    (
        "response-property-made-optional",
        doc(op(responses=returns(obj(("price",), price=NUMBER)))),
        doc(op(responses=returns(obj(price=NUMBER)))),
        "breaking change in GET /items: 200 response property 'price' is now optional",
    ),
    (
        "response-property-made-required",
        doc(op(responses=returns(obj(tax=NUMBER)))),
        doc(op(responses=returns(obj(("tax",), tax=NUMBER)))),
        "compatible change in GET /items: 200 response property 'tax' is now always present",
    ),
    (
        "response-type-changed",
        doc(op(responses=returns(obj(price=NUMBER)))),
        doc(op(responses=returns(obj(price=NULLABLE_NUMBER)))),
        "breaking change in GET /items: 200 response property 'price' type changed from number to number or null",
    ),
    (
        "response-type-changed",
        doc(op(responses=returns({"type": "array", "items": obj(id=INTEGER)}))),
        doc(op(responses=returns({"type": "array", "items": obj(id=STRING)}))),
        "breaking change in GET /items: 200 response property '[].id' type changed from integer to string",
    ),
    (
        "response-type-narrowed",
        doc(op(responses=returns(obj(tax=NULLABLE_NUMBER)))),
        doc(op(responses=returns(obj(tax=NUMBER)))),
        "compatible change in GET /items: 200 response property 'tax' type narrowed from number or null to number",
    ),
    (
        "response-constraint-widened",
        doc(op(responses=returns(obj(name={"type": "string", "maxLength": 20})))),
        doc(op(responses=returns(obj(name={"type": "string", "maxLength": 50})))),
        "breaking change in GET /items: 200 response property 'name' maxLength widened from 20 to 50",
    ),
    (
        "response-constraint-narrowed",
        doc(op(responses=returns(obj(name={"type": "string", "maxLength": 50})))),
        doc(op(responses=returns(obj(name={"type": "string", "maxLength": 20})))),
        "compatible change in GET /items: 200 response property 'name' maxLength narrowed from 50 to 20",
    ),
    (
        "response-enum-value-added",
        doc(op(responses=returns(obj(status={"enum": ["new", "sent"]})))),
        doc(op(responses=returns(obj(status={"enum": ["new", "sent", "lost"]})))),
        "breaking change in GET /items: 200 response property 'status' may now be 'lost'",
    ),
    (
        "response-enum-value-removed",
        doc(op(responses=returns(obj(status={"enum": ["new", "lost"]})))),
        doc(op(responses=returns(obj(status={"enum": ["new"]})))),
        "compatible change in GET /items: 200 response property 'status' is no longer 'lost'",
    ),
    (
        "response-success-removed",
        doc(op(responses={"201": {"description": "Created"}}), method="post"),
        doc(op(responses={}), method="post"),
        "breaking change in POST /items: response 201 removed",
    ),
    (
        "response-status-removed",
        doc(op(responses={"200": {"description": "OK"}, "404": {"description": "Not found"}})),
        doc(op()),
        "compatible change in GET /items: response 404 removed",
    ),
    (
        "response-status-added",
        doc(op()),
        doc(op(responses={"200": {"description": "OK"}, "404": {"description": "Not found"}})),
        "compatible change in GET /items: response 404 added",
    ),
    (
        "response-media-type-removed",
        doc(
            op(
                responses={
                    "200": {
                        "description": "OK",
                        "content": {"text/csv": {}, "application/json": {}},
                    }
                }
            )
        ),
        doc(op(responses=returns({}))),
        "breaking change in GET /items: response 200 no longer returns text/csv",
    ),
    (
        "response-media-type-added",
        doc(op(responses=returns({}))),
        doc(
            op(
                responses={
                    "200": {
                        "description": "OK",
                        "content": {"text/csv": {}, "application/json": {}},
                    }
                }
            )
        ),
        "compatible change in GET /items: response 200 now also returns text/csv",
    ),
    (
        "security-added",
        doc(op()),
        doc(op(security=OAUTH)),
        "breaking change in GET /items: security requirement added: OAuth2PasswordBearer",
    ),
    (
        "security-removed",
        doc(op(security=OAUTH)),
        doc(op()),
        "compatible change in GET /items: security requirement removed: OAuth2PasswordBearer",
    ),
    (
        "operation-deprecated",
        doc(op()),
        doc(op(deprecated=True)),
        "compatible change in GET /items: operation deprecated",
    ),
    (
        "description-changed",
        doc(op(summary="Items")),
        doc(op(summary="All items")),
        "compatible change in GET /items: summary changed",
    ),
    (
        "operation-id-changed",
        doc(op(operationId="a")),
        doc(op(operationId="b")),
        "compatible change in GET /items: operationId changed from 'a' to 'b'",
    ),
]


@pytest.mark.parametrize(
    ("rule", "old", "new", "line"), RULE_TABLE, ids=[row[0] for row in RULE_TABLE]
)
def test_rule(rule: str, old: dict[str, Any], new: dict[str, Any], line: str) -> None:
    diff = diff_documents(old, new)
    assert [change.line() for change in diff.changes] == [line]
    assert diff.changes[0].rule == rule
    assert diff.ok is not RULES[rule]


def test_every_rule_has_a_row() -> None:
    assert {row[0] for row in RULE_TABLE} == set(RULES)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # Path parameters compare by position: a rename is no change.
        (
            doc(op(param("id", INTEGER, True, "path")), path="/items/{id}"),
            doc(op(param("item_id", INTEGER, True, "path")), path="/items/{item_id}"),
        ),
        # A $ref and the schema it names compare equal, as FastAPI's Item-Input and Item.
        (
            doc(op(responses=returns(ITEM_REF)), Item=obj(("a",), a=STRING)),
            doc(
                op(responses=returns({"$ref": "#/components/schemas/Item-Output"})),
                **{"Item-Output": obj(("a",), a=STRING)},
            ),
        ),
        # A header's name is case-insensitive; descriptions and titles are not compared.
        (
            doc(op(param("X-Token", {"type": "string", "title": "A"}, where="header"))),
            doc(
                op(
                    param(
                        "x-token",
                        {"type": "string", "title": "B", "description": "d"},
                        where="header",
                    )
                )
            ),
        ),
        # A query parameter made nullable in FastAPI's anyOf form changes nothing on the wire.
        (doc(op(param("q", STRING))), doc(op(param("q", {"anyOf": [STRING, {"type": "null"}]})))),
    ],
    ids=["path-parameter-renamed", "refs-resolved", "header-case", "nullable-parameter"],
)
def test_no_change(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert diff_documents(old, new).changes == []


def test_recursive_schemas_terminate() -> None:
    node = {
        "type": "object",
        "properties": {
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
        },
    }
    wider = {
        "type": "object",
        "properties": {"children": node["properties"]["children"], "name": STRING},
    }
    diff = diff_documents(
        doc(op(responses=returns({"$ref": "#/components/schemas/Node"})), Node=node),
        doc(op(responses=returns({"$ref": "#/components/schemas/Node"})), Node=wider),
    )
    assert [c.line() for c in diff.changes] == [
        "compatible change in GET /items: 200 response property 'name' added"
    ]


def test_response_enum_policy() -> None:
    old = doc(op(responses=returns({"enum": ["a"]})))
    new = doc(op(responses=returns({"enum": ["a", "b"]})))
    assert not diff_documents(old, new).ok
    relaxed = diff_documents(old, new, Policy(response_enum_added_breaks=False))
    assert relaxed.ok
    assert [c.line() for c in relaxed.changes] == [
        "compatible change in GET /items: 200 response body may now be 'b'"
    ]


class ItemV1(BaseModel):
    name: str = Field(max_length=50)
    price: float
    status: Literal["new", "sold"] = "new"


class ItemV2(BaseModel):
    name: str = Field(max_length=20)
    price: float | None = None
    status: Literal["new", "sold", "lost"] = "new"


def _fastapi_v1() -> FastAPI:
    app = FastAPI()

    @app.get("/search")
    def search(q: str | None = None) -> list[ItemV1]:
        return []

    @app.post("/items", status_code=201)
    def create(item: ItemV1) -> ItemV1:
        return item

    return app


def _fastapi_v2() -> FastAPI:
    app = FastAPI()

    @app.get("/search")
    def search(q: str = Query(min_length=2)) -> list[ItemV2]:
        return []

    @app.post("/items")
    def create(item: ItemV2) -> ItemV2:
        return item

    return app


def test_fastapi_generated_documents() -> None:
    diff = diff_documents(_fastapi_v1().openapi(), _fastapi_v2().openapi())
    assert repr(diff).splitlines() == [
        "breaking change in POST /items: request body property 'name' maxLength narrowed from 50 to 20 [request-constraint-narrowed]",
        "breaking change in POST /items: response 201 removed [response-success-removed]",
        "breaking change in GET /search: 200 response property '[].price' is now optional [response-property-made-optional]",
        "breaking change in GET /search: 200 response property '[].price' type changed from number to number or null [response-type-changed]",
        "breaking change in GET /search: 200 response property '[].status' may now be 'lost' [response-enum-value-added]",
        "breaking change in GET /search: query parameter 'q' is now required [request-made-required]",
        "breaking change in GET /search: query parameter 'q' minLength 2 added [request-constraint-narrowed]",
        "compatible change in POST /items: request body property 'price' is now optional [request-made-optional]",
        "compatible change in POST /items: request body property 'price' type widened from number to number or null [request-type-widened]",
        "compatible change in POST /items: request body property 'status' now also accepts 'lost' [request-enum-value-added]",
        "compatible change in POST /items: response 200 added [response-status-added]",
        "compatible change in GET /search: 200 response property '[].name' maxLength narrowed from 50 to 20 [response-constraint-narrowed]",
        "12 changes, 7 breaking",
    ]
    assert isinstance(diff, Diff)
    assert len(diff.breaking) == 7
    assert not diff.ok
    assert diff_documents(_fastapi_v1().openapi(), _fastapi_v1().openapi()).ok
    assert repr(diff_documents({"paths": {}}, {"paths": {}})) == "no changes"


# -- reading documents ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "missing.json",
            None,
            "cannot read the OpenAPI file '{path}': No such file or directory; check the path",
        ),
        (
            "bad.json",
            "{",
            "'{path}' is not valid JSON (line 1: Expecting property name enclosed in double quotes); fix the file, or name YAML files .yaml",
        ),
        (
            "bad.yaml",
            "a: [",
            "'{path}' is not valid YAML at line 1; fix the file or export it again",
        ),
        (
            "list.json",
            "[1]",
            "'{path}' is not an OpenAPI document (no 'openapi' or 'paths' key); give the JSON FastAPI serves at /openapi.json, or its YAML",
        ),
        (
            "swagger.json",
            '{"swagger": "2.0", "paths": {}}',
            "'{path}' is not an OpenAPI 3 document (Swagger 2.0 or 'paths' not a mapping); convert it to OpenAPI 3, e.g. with swagger2openapi",
        ),
    ],
    ids=["missing", "bad-json", "bad-yaml", "not-openapi", "swagger"],
)
def test_load_document_errors(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ContractError) as raised:
        load_document(path)
    assert str(raised.value) == message.format(path=path)


def test_load_yaml(tmp_path: Path) -> None:
    document = _fastapi_v1().openapi()
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(document))
    assert load_document(tmp_path / "a.yaml") == json.loads(json.dumps(document))


# -- nbapi diff OLD NEW ---------------------------------------------------------------------
def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbapi", "diff", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture
def documents(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old.json", tmp_path / "new.yaml"
    old.write_text(json.dumps(doc(op(param("q", STRING)), sort={"enum": ["a"]})))
    new.write_text(yaml.safe_dump(doc(op(param("q", STRING, True), param("limit", INTEGER)))))
    return old, new


def test_cli_breaking_exits_1(documents: tuple[Path, Path]) -> None:
    result = _cli(*documents)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "breaking change in GET /items: query parameter 'q' is now required [request-made-required]",
        "compatible change in GET /items: query parameter 'limit' added (optional) [request-optional-added]",
    ]
    assert result.stderr == ""


def test_cli_compatible_exits_0(documents: tuple[Path, Path]) -> None:
    old, new = documents
    result = _cli(new, old)  # the other way round: q made optional, limit removed
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "compatible change in GET /items: query parameter 'limit' removed (no longer read) [request-removed]",
        "compatible change in GET /items: query parameter 'q' is now optional [request-made-optional]",
    ]
    assert _cli(old, old).stdout == ""


def test_cli_response_enum_policy(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(doc(op(responses=returns({"enum": ["a"]})))))
    new.write_text(json.dumps(doc(op(responses=returns({"enum": ["a", "b"]})))))
    assert _cli(old, new).returncode == 1
    assert _cli(old, new, "--response-enum-added", "compatible").returncode == 0


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (
            ("missing.json", "old.json"),
            "nbapi: error: cannot read the OpenAPI file 'missing.json': No such file or directory; check the path",
        ),
        (
            ("old.json",),
            "nbapi diff: error: the following arguments are required: new; see nbapi diff --help",
        ),
        (
            ("old.json", "old.json", "--response-enum-added", "maybe"),
            "nbapi diff: error: argument --response-enum-added: invalid choice: 'maybe' (choose from 'breaking', 'compatible'); see nbapi diff --help",
        ),
    ],
    ids=["unreadable", "missing-argument", "bad-option"],
)
def test_cli_bad_arguments_exit_2(
    documents: tuple[Path, Path], args: tuple[str, ...], stderr: str
) -> None:
    folder = documents[0].parent
    result = subprocess.run(
        [sys.executable, "-m", "nbapi", "diff", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=60,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [stderr]
