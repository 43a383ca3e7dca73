"""A %%route cell gives byte for byte the /openapi.json of the same app written with decorators."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from fastapi.testclient import TestClient

PRELUDE = """
from enum import Enum
from typing import Annotated
from fastapi import Depends, FastAPI, Header, Path, Query, Body, Cookie, status
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field

class Item(BaseModel):
    name: str = Field(examples=["lamp"])
    price: float = Field(gt=0)
    tags: list[str] = []

class Color(str, Enum):
    red = "red"
    blue = "blue"

def pagination(skip: int = 0, limit: Annotated[int, Query(le=100)] = 10):
    return {"skip": skip, "limit": limit}

app = FastAPI(title="Parity", version="1.2.3")
"""

# (magic line, equivalent decorator, function source)
CASES = [
    (
        "GET /items/<int:item_id>",
        "@app.api_route('/items/{item_id}', methods=['GET'])",
        "def read_item(item_id: int, q: str | None = None):\n    return {'item_id': item_id}",
    ),
    (
        "GET /items/<int:item_id>",
        "@app.get('/items/{item_id}')",
        "def read_item(item_id: int, q: str | None = None):\n    return {'item_id': item_id}",
    ),
    (
        "POST /items status_code=201, response_model=Item, tags=['items'], summary='Create', "
        "description='Makes one', response_description='The item'",
        "@app.api_route('/items', methods=['POST'], status_code=201, response_model=Item, "
        "tags=['items'], summary='Create', description='Makes one', response_description='The item')",
        "def create_item(item: Item, x_token: Annotated[str, Header()] = 'none'):\n    return item",
    ),
    (
        "GET,POST /colors/:color deprecated=True, operation_id='color_op', "
        "responses={404: {'description': 'No such color'}}",
        "@app.api_route('/colors/{color}', methods=['GET', 'POST'], deprecated=True, "
        "operation_id='color_op', responses={404: {'description': 'No such color'}})",
        "async def color(color: Color, page=Depends(pagination)):\n    return {'color': color}",
    ),
    (
        "GET /files/<path:file_path> response_class=PlainTextResponse, name='files', "
        "openapi_extra={'x-kind': 'file'}",
        "@app.api_route('/files/{file_path:path}', methods=['GET'], response_class=PlainTextResponse, "
        "name='files', openapi_extra={'x-kind': 'file'})",
        "def files(file_path: str, session: Annotated[str | None, Cookie()] = None):\n    return file_path",
    ),
    (
        "DELETE /items/{item_id} status_code=status.HTTP_204_NO_CONTENT, "
        "dependencies=[Depends(pagination)]",
        "@app.api_route('/items/{item_id}', methods=['DELETE'], status_code=status.HTTP_204_NO_CONTENT, "
        "dependencies=[Depends(pagination)])",
        "def delete_item(item_id: Annotated[int, Path(ge=1)]) -> None:\n    return None",
    ),
    (
        "GET /hidden include_in_schema=False",
        "@app.api_route('/hidden', methods=['GET'], include_in_schema=False)",
        "def hidden():\n    return 1",
    ),
    (
        "PUT /page/<float:ratio> response_class=HTMLResponse",
        "@app.api_route('/page/{ratio}', methods=['PUT'], response_class=HTMLResponse)",
        "def page(ratio: float, body: Annotated[dict, Body()] = {}):\n    return '<p>ok</p>'",
    ),
]


def plain_openapi(decorator: str, function: str) -> bytes:
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(PRELUDE) + f"\n{decorator}\n{function}\n", namespace)
    return TestClient(namespace["app"]).get("/openapi.json").content


# FastAPI gives both methods of a multi-method route one operation id, and warns about it
# (fastapi/openapi/utils.py, "Duplicate Operation ID"): the plain decorator does the same.
@pytest.mark.filterwarnings("ignore:Duplicate Operation ID:UserWarning")
@pytest.mark.parametrize(
    ("line", "decorator", "function"),
    CASES,
    ids=[c[0].split()[1] + f"-{i}" for i, c in enumerate(CASES)],
)
def test_openapi_identical_to_plain_decorator(
    shell: Any, line: str, decorator: str, function: str
) -> None:
    assert shell.run_cell(textwrap.dedent(PRELUDE)).success
    shell.run_cell_magic("route", line, function + "\n")
    served = shell.run_line_magic("http", "GET /openapi.json").content
    assert served == plain_openapi(decorator, function)


# The app holds a multi-method route: FastAPI warns that its methods share an operation id.
@pytest.mark.filterwarnings("ignore:Duplicate Operation ID:UserWarning")
def test_whole_app_identical(shell: Any) -> None:
    """Several cells in a row give the app the decorators give, in the same order."""
    assert shell.run_cell(textwrap.dedent(PRELUDE)).success
    plain = []
    for line, decorator, function in CASES[2:]:  # the first two share a path
        shell.run_cell_magic("route", line, function + "\n")
        plain.append(f"{decorator}\n{function}\n")
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(PRELUDE) + "\n" + "\n".join(plain), namespace)
    expected = TestClient(namespace["app"]).get("/openapi.json").content
    assert shell.run_line_magic("http", "GET /openapi.json").content == expected


def test_unannotated_converter_equals_annotated_plain(shell: Any) -> None:
    """``<int:item_id>`` on an unannotated parameter is ``item_id: int`` in plain FastAPI."""
    assert shell.run_cell(textwrap.dedent(PRELUDE)).success
    shell.run_cell_magic("route", "GET /items/<int:item_id>", "def read(item_id):\n    return 1\n")
    expected = plain_openapi(
        "@app.get('/items/{item_id}')", "def read(item_id: int):\n    return 1"
    )
    assert shell.run_line_magic("http", "GET /openapi.json").content == expected
