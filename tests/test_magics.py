"""%%route, %http and %nbapi in a real IPython shell, line by line of the core contract."""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI
from IPython.core.error import UsageError
from starlette.testclient import TestClient

import nbapi


def route(shell: Any, line: str, cell: str) -> None:
    shell.run_cell_magic("route", line, textwrap.dedent(cell))


def http(shell: Any, line: str, cell: str | None = None) -> Any:
    if cell is None:
        return shell.run_line_magic("http", line)
    return shell.run_cell_magic("http", line, textwrap.dedent(cell))


def paths(app: FastAPI) -> list[str]:
    return [
        f"{','.join(sorted(getattr(r, 'methods', None) or ['WS']))} {r.path}"
        for r in app.routes
        if r.path not in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
    ]


def state(app: FastAPI) -> tuple[list[Any], str]:
    """Everything a failed cell must leave untouched: the route objects and the schema."""
    app.openapi_schema = None
    return list(app.router.routes), json.dumps(app.openapi(), sort_keys=True)


READ_ITEM = """
def read_item(item_id, q: str | None = None):
    return {"item_id": item_id, "q": q}
"""


# -- loading ------------------------------------------------------------------------------
def test_load_twice_unload_and_reload(shell: Any) -> None:
    shell.run_line_magic("load_ext", "nbapi")  # already loaded by the fixture: harmless
    assert "route" in shell.magics_manager.magics["cell"]
    route(shell, "GET /ping", "def ping():\n    return 'pong'\n")
    assert http(shell, "GET /ping").json() == "pong"
    shell.run_line_magic("unload_ext", "nbapi")
    assert "route" not in shell.magics_manager.magics["cell"]
    assert "http" not in shell.magics_manager.magics["line"]
    assert not any(type(c).__name__ == "NbAPI" for c in shell.configurables)
    assert not [t for t in threading.enumerate() if t.name.startswith("nbapi")]
    assert not [
        callback
        for callbacks in shell.events.callbacks.values()
        for callback in callbacks
        if type(getattr(callback, "__self__", None)).__name__ == "NbAPIMagics"
    ]
    shell.run_line_magic("load_ext", "nbapi")
    shell.run_line_magic("reload_ext", "nbapi")
    assert http(shell, "GET /ping").json() == "pong"  # the app lives in the namespace


def test_the_kernel_comes_first_while_a_cell_runs(shell: Any) -> None:
    from nbapi._magics import KERNEL_FIRST_AT_END
    from nbapi._session import current_session

    runner = current_session().runner
    shell.run_cell(
        "import nbapi._session\nduring = nbapi._session.current_session().runner.kernel_first"
    )
    assert shell.user_ns["during"] is True
    time.sleep(KERNEL_FIRST_AT_END + 0.05)  # the window after the cell has passed
    assert runner.kernel_first is False


def test_app_is_created_once_and_announced(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    route(shell, "GET /a", "def a():\n    return 1\n")
    route(shell, "GET /b", "def b():\n    return 2\n")
    out = capsys.readouterr().out
    assert out.count("nbapi: created app = FastAPI() in the notebook namespace") == 1
    assert isinstance(shell.user_ns["app"], FastAPI)
    assert nbapi.get_app() is shell.user_ns["app"]


def test_rebinding_app_makes_it_the_kernel_app(shell: Any) -> None:
    shell.run_cell("from fastapi import FastAPI\napp = FastAPI(title='Shop')")
    route(shell, "GET /a", "def a():\n    return 1\n")
    assert nbapi.get_app().title == "Shop"
    assert http(shell, "GET /openapi.json").json()["info"]["title"] == "Shop"
    shell.run_cell("app = FastAPI(title='Bakery')")
    assert http(shell, "GET /a").status_code == 404  # the new app starts empty
    assert http(shell, "GET /openapi.json").json()["info"]["title"] == "Bakery"


def test_app_that_is_not_fastapi_is_a_clear_error(shell: Any) -> None:
    shell.user_ns["app"] = "not an app"
    with pytest.raises(UsageError, match=r"^'app' in the notebook is a str, not a FastAPI app"):
        route(shell, "GET /a", "def a():\n    return 1\n")


def test_config_is_a_configurable_named_nbapi(shell: Any) -> None:
    shell.run_line_magic("config", "NbAPI.autostart = False")
    config = next(c for c in shell.configurables if type(c).__name__ == "NbAPI")
    assert config.autostart is False
    shell.run_line_magic("config", "NbAPI.port = 8123")
    assert config.port == 8123


# -- %%route ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "cell", "request_path", "expected"),
    [
        ("GET /items/{item_id}", READ_ITEM, "/items/7?q=x", {"item_id": "7", "q": "x"}),
        ("GET /items/<item_id>", READ_ITEM, "/items/7", {"item_id": "7", "q": None}),
        ("GET /items/<int:item_id>", READ_ITEM, "/items/7", {"item_id": 7, "q": None}),
        ("GET /items/<float:item_id>", READ_ITEM, "/items/7.5", {"item_id": 7.5, "q": None}),
        ("GET /items/:item_id", READ_ITEM, "/items/abc", {"item_id": "abc", "q": None}),
        (
            "GET /items/<path:item_id>",
            READ_ITEM,
            "/items/a/b.txt",
            {"item_id": "a/b.txt", "q": None},
        ),
        ("GET /items/{item_id:path}", READ_ITEM, "/items/a/b", {"item_id": "a/b", "q": None}),
    ],
)
def test_path_syntaxes(
    shell: Any, line: str, cell: str, request_path: str, expected: dict[str, Any]
) -> None:
    route(shell, line, cell)
    response = http(shell, f"GET {request_path}")
    assert response.status_code == 200, response.text
    assert response.json() == expected


def test_converter_types_an_unannotated_parameter(shell: Any) -> None:
    route(shell, "GET /items/<int:item_id>", READ_ITEM)
    assert http(shell, "GET /items/abc").status_code == 422
    schema = http(shell, "GET /openapi.json").json()
    parameter = schema["paths"]["/items/{item_id}"]["get"]["parameters"][0]
    assert parameter["schema"] == {"type": "integer", "title": "Item Id"}


def test_converter_that_disagrees_with_the_annotation(shell: Any) -> None:
    cell = "def read_item(item_id: str):\n    return item_id\n"
    with pytest.raises(UsageError) as info:
        route(shell, "GET /items/<int:item_id>", cell)
    assert str(info.value) == (
        "the path says 'item_id' is int but read_item() annotates it as 'str'; "
        "drop the converter or change the annotation"
    )
    assert paths(shell.user_ns["app"]) == []


def test_converter_that_agrees_with_an_annotated_parameter(shell: Any) -> None:
    cell = """
    from typing import Annotated
    from fastapi import Path
    def read_item(item_id: Annotated[int, Path(ge=1)]):
        return item_id
    """
    route(shell, "GET /items/<int:item_id>", cell)
    assert http(shell, "GET /items/0").status_code == 422
    assert http(shell, "GET /items/3").json() == 3


def test_braces_in_the_line_are_not_expanded(shell: Any) -> None:
    shell.user_ns["item_id"] = 42
    route(shell, "GET /items/{item_id}", READ_ITEM)
    assert paths(shell.user_ns["app"]) == ["GET /items/{item_id}"]


def test_methods_any_case_and_several(shell: Any) -> None:
    route(shell, "get,Post,DELETE /things", "def things():\n    return 'ok'\n")
    for method in ("GET", "POST", "DELETE"):
        assert http(shell, f"{method} /things").json() == "ok"
    assert http(shell, "PUT /things").status_code == 405


def test_last_top_level_function_is_the_handler(shell: Any) -> None:
    cell = """
    def helper(x):
        return x * 2

    def handler(n: int):
        def inner():
            return 0
        return helper(n)
    """
    route(shell, "GET /double", cell)
    assert http(shell, "GET /double?n=4").json() == 8
    assert "helper" in shell.user_ns  # the cell ran as ordinary Python


def test_async_handler(shell: Any) -> None:
    route(shell, "GET /async", "async def handler():\n    return {'async': True}\n")
    assert http(shell, "GET /async").json() == {"async": True}


def test_keywords_are_evaluated_in_the_namespace(shell: Any) -> None:
    shell.run_cell("TAGS = ['shop']")
    cell = """
    from pydantic import BaseModel
    class Item(BaseModel):
        name: str
        price: float = 0
    def create_item(item: Item):
        return {"name": item.name, "price": item.price, "secret": 1}
    """
    route(shell, "POST /items status_code=201, response_model=Item, tags=TAGS", cell)
    response = http(shell, 'POST /items {"name": "lamp"}')
    assert response.status_code == 201
    assert response.json() == {"name": "lamp", "price": 0.0}  # response_model filtered
    operation = http(shell, "GET /openapi.json").json()["paths"]["/items"]["post"]
    assert operation["tags"] == ["shop"]


def test_websocket_route(shell: Any) -> None:
    cell = """
    from fastapi import WebSocket
    async def echo(websocket: WebSocket, room: str):
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"{room}: {text}")
        await websocket.close()
    """
    route(shell, "WS /echo/<room>", cell)
    with TestClient(nbapi.get_app()).websocket_connect("/echo/lobby") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "lobby: hi"


# -- re-running cells ---------------------------------------------------------------------
def test_rerun_replaces_in_place_keeping_order(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    route(shell, "GET /a", "def a():\n    return 1\n")
    route(shell, "GET /b", "def b():\n    return 2\n")
    route(shell, "GET /c", "def c():\n    return 3\n")
    route(shell, "GET /b", "def b():\n    return 'two'\n")
    assert paths(shell.user_ns["app"]) == ["GET /a", "GET /b", "GET /c"]
    assert http(shell, "GET /b").json() == "two"
    assert "GET /b -> b() (replaced)" in capsys.readouterr().out


def test_rerun_with_new_method_or_path_moves_the_route(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    route(shell, "GET /a", "def a():\n    return 1\n")
    route(shell, "GET /old", "def b():\n    return 2\n")
    route(shell, "GET /c", "def c():\n    return 3\n")
    route(shell, "POST /new", "def b():\n    return 2\n")
    assert paths(shell.user_ns["app"]) == ["GET /a", "POST /new", "GET /c"]
    assert http(shell, "GET /old").status_code == 404
    assert "POST /new -> b() (moved from GET /old)" in capsys.readouterr().out


def test_cells_are_recognised_by_cell_id(shell: Any) -> None:
    shell.run_cell("%%route GET /x\ndef first():\n    return 1\n", cell_id="cell-1")
    # Same cell, the function renamed: still the same route.
    shell.run_cell("%%route GET /x\ndef renamed():\n    return 2\n", cell_id="cell-1")
    assert paths(shell.user_ns["app"]) == ["GET /x"]
    assert http(shell, "GET /x").json() == 2
    # Another cell with the same function name does not replace it.
    shell.run_cell("%%route GET /y\ndef renamed():\n    return 3\n", cell_id="cell-2")
    assert paths(shell.user_ns["app"]) == ["GET /x", "GET /y"]


def test_same_route_from_another_cell_warns_and_first_stays(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    route(shell, "GET /items/{item_id}", "def read_item(item_id):\n    return 'first'\n")
    route(shell, "GET /items/{item_id}", "def other(item_id):\n    return 'second'\n")
    assert http(shell, "GET /items/1").json() == "first"
    err = capsys.readouterr().err
    assert (
        "nbapi warning: GET /items/{item_id} by other() is unreachable: read_item() registered "
        "the same route earlier and FastAPI uses the first; remove one or change its path"
    ) in err


def test_shadowed_route_warns(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    route(shell, "GET /users/{user_id}", "def read_user(user_id):\n    return {'id': user_id}\n")
    route(shell, "GET /users/me", "def read_me():\n    return {'me': True}\n")
    assert http(shell, "GET /users/me").json() == {"id": "me"}  # as in FastAPI: first match wins
    assert (
        "nbapi warning: GET /users/me by read_me() is shadowed by /users/{user_id} of "
        "read_user(), which was registered earlier and matches first; register the fixed path first"
    ) in capsys.readouterr().err


def test_openapi_cache_is_invalidated_on_every_change(shell: Any) -> None:
    route(shell, "GET /one", "def one():\n    return 1\n")
    assert list(http(shell, "GET /openapi.json").json()["paths"]) == ["/one"]
    route(shell, "GET /two", "def one():\n    return 1\n")
    assert list(http(shell, "GET /openapi.json").json()["paths"]) == ["/two"]
    shell.run_cell("@app.get('/plain')\ndef plain():\n    return 0\n")
    assert list(http(shell, "GET /openapi.json").json()["paths"]) == ["/two", "/plain"]


def test_undeclared_path_parameter_warns(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    route(shell, "GET /items/{item_id}", "def read_item():\n    return 1\n")
    assert (
        "nbapi warning: path parameter 'item_id' in /items/{item_id} is not a parameter of "
        "read_item() or its dependencies; add `item_id` to its signature"
    ) in capsys.readouterr().err


def test_path_parameter_declared_by_a_dependency_does_not_warn(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = """
    from fastapi import Depends
    def item_of(item_id: int):
        return {"id": item_id}
    def read_item(item=Depends(item_of)):
        return item
    """
    route(shell, "GET /items/{item_id}", cell)
    assert "nbapi warning" not in capsys.readouterr().err
    assert http(shell, "GET /items/5").json() == {"id": 5}


# -- errors leave everything as it was ------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("FETCH /x", READ_ITEM, "unknown HTTP method 'FETCH'; use one of GET POST PUT"),
        ("GET x", READ_ITEM, "path 'x' must start with '/', e.g. /items/{item_id}"),
        ("GET /x/{a", READ_ITEM, "malformed path parameter in '/x/{a'"),
        (
            "GET /x",
            "x = 1\n",
            "the %%route GET /x cell defines no function; "
            "define the handler at the top level with def or async def",
        ),
        (
            "GET /x",
            "def broken(:\n    pass\n",
            "syntax error in the %%route cell at line 2: invalid syntax; "
            "fix the cell and run it again (no route was changed)",
        ),
        (
            "GET /x",
            "def handler():\n    return 1\n1 / 0\n",
            "the %%route cell raised ZeroDivisionError: division by zero at line 4; "
            "fix the cell and run it again (no route was changed)",
        ),
        ("GET /x status_code=", READ_ITEM, "cannot read the keywords 'status_code='"),
        (
            "GET /x response_model=Missing",
            "def handler():\n    return 1\n",
            "cannot evaluate the keywords 'response_model=Missing': "
            "NameError: name 'Missing' is not defined; define what they use before this cell",
        ),
        (
            "GET /x statuscode=201",
            "def handler():\n    return 1\n",
            "unknown keyword 'statuscode' for %%route; did you mean 'status_code'?",
        ),
        (
            "GET /x response_model=3",
            "def handler():\n    return 1\n",
            "FastAPI refused GET /x: AttributeError: 'int' object has no attribute '__module__'",
        ),
        (
            "POST /x status_code=204",
            "def handler() -> dict:\n    return {}\n",
            "FastAPI refused POST /x: AssertionError: Status code 204 must not have a response body",
        ),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    shell: Any, line: str, cell: str, message: str
) -> None:
    route(shell, "GET /keep", "def keep():\n    return 'kept'\n")
    app = shell.user_ns["app"]
    before = state(app)
    with pytest.raises(UsageError) as info:
        route(shell, line, cell)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert state(app) == before
    assert shell.user_ns["app"] is app
    assert http(shell, "GET /keep").json() == "kept"


def test_failed_rerun_keeps_the_old_route(shell: Any) -> None:
    shell.run_cell("%%route GET /x\ndef x():\n    return 1\n", cell_id="c1")
    result = shell.run_cell("%%route GET /x\ndef x(:\n", cell_id="c1")
    assert isinstance(result.error_in_exec, UsageError)
    assert http(shell, "GET /x").json() == 1


def test_usage_error_shows_no_traceback(shell: Any, capfd: pytest.CaptureFixture[str]) -> None:
    shell.run_cell("%%route BREW /coffee\ndef coffee():\n    return 1\n")
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert "UsageError: unknown HTTP method 'BREW'" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("magic", ["route", "http", "nbapi"])
def test_help_has_examples(shell: Any, magic: str) -> None:
    kind = "cell" if magic == "route" else "line"
    doc = shell.magics_manager.magics[kind][magic].__doc__
    assert "Examples::" in doc
    assert "Usage::" in doc


# -- plain FastAPI in cells -----------------------------------------------------------------
def test_plain_fastapi_code_keeps_working(shell: Any) -> None:
    code = textwrap.dedent(
        """
        from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Security
        from fastapi.responses import JSONResponse
        from fastapi.security import APIKeyHeader

        app = FastAPI()
        router = APIRouter(prefix="/shop", tags=["shop"])
        api_key = APIKeyHeader(name="X-Key")

        def current_user(key: str = Security(api_key)):
            if key != "secret":
                raise HTTPException(status_code=403, detail="bad key")
            return "ada"

        def db():
            return {"lamp": 12}

        @router.get("/items/{name}")
        def item(name: str, prices=Depends(db), user=Depends(current_user)):
            if name not in prices:
                raise LookupError(name)
            return {"name": name, "price": prices[name], "user": user}

        app.include_router(router)

        @app.exception_handler(LookupError)
        async def not_found(request: Request, exc: LookupError):
            return JSONResponse(status_code=404, content={"missing": str(exc)})
        """
    )
    assert shell.run_cell(code).success
    assert http(shell, "GET /shop/items/lamp").status_code == 401  # no key
    headers = "X-Key: secret\n\n"
    assert http(shell, "GET /shop/items/lamp", headers).json() == {
        "name": "lamp",
        "price": 12,
        "user": "ada",
    }
    assert http(shell, "GET /shop/items/sofa", headers).json() == {"missing": "sofa"}
    assert http(shell, "GET /shop/items/lamp", "X-Key: nope\n\n").status_code == 403
    # dependency_overrides take effect on the next request.
    shell.run_cell("app.dependency_overrides[db] = lambda: {'lamp': 1}")
    assert http(shell, "GET /shop/items/lamp", headers).json()["price"] == 1
    # Middleware added after requests were served.
    middleware = textwrap.dedent(
        """
        @app.middleware("http")
        async def stamp(request, call_next):
            response = await call_next(request)
            response.headers["X-Stamp"] = "yes"
            return response
        """
    )
    result = shell.run_cell(middleware)
    assert result.success, result.error_in_exec
    assert http(shell, "GET /shop/items/lamp", headers).headers["x-stamp"] == "yes"


# -- %http ----------------------------------------------------------------------------------
def test_http_line_shows_status_and_pretty_json(shell: Any) -> None:
    route(shell, "GET /items/<int:item_id>", READ_ITEM)
    response = http(shell, "GET /items/3?q=lamp")
    assert repr(response) == 'HTTP 200 OK\n\n{\n  "item_id": 3,\n  "q": "lamp"\n}'
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"item_id": 3, "q": "lamp"}
    assert response.text == '{"item_id":3,"q":"lamp"}'


def test_http_verbose_shows_headers(shell: Any) -> None:
    route(shell, "GET /x", "def x():\n    return 1\n")
    assert repr(http(shell, "-v GET /x")) == (
        "HTTP 200 OK\ncontent-length: 1\ncontent-type: application/json\n\n1"
    )


def test_http_422_is_a_table(shell: Any) -> None:
    route(shell, "GET /items/<int:item_id>", READ_ITEM)
    assert repr(http(shell, "GET /items/abc")) == textwrap.dedent(
        """\
        HTTP 422 Unprocessable Content

        location      message                                                                input
        ------------  ---------------------------------------------------------------------  -----
        path.item_id  Input should be a valid integer, unable to parse string as an integer  "abc\""""
    )


def test_http_line_body_and_cell_with_headers(shell: Any) -> None:
    cell = """
    from fastapi import Header
    from pydantic import BaseModel
    class Item(BaseModel):
        name: str
    def create(item: Item, x_token: str = Header()):
        return {"name": item.name, "token": x_token}
    """
    route(shell, "POST /items", cell)
    shell.user_ns["token"] = "t0k"
    response = http(shell, "POST /items", 'X-Token: {token}\n\n{"name": "lamp"}')
    assert response.json() == {"name": "lamp", "token": "t0k"}
    response = http(shell, 'POST /items {"name": "sofa"}', None)
    assert response.status_code == 422  # no X-Token header
    # A cell whose first line is not a header is all body.
    response = http(shell, "POST /items", '{"name": "desk"}')
    assert response.status_code == 422
    assert repr(response).splitlines()[-1].startswith("header.x-token")


def test_http_form_and_file(shell: Any, tmp_path: Any) -> None:
    cell = """
    from typing import Annotated
    from fastapi import File, Form, UploadFile
    async def upload(title: Annotated[str, Form()], doc: UploadFile = File()):
        return {"title": title, "name": doc.filename, "size": len(await doc.read())}
    """
    route(shell, "POST /upload", cell)
    (tmp_path / "notes.txt").write_text("hello")
    body = f"title=Notes\ndoc@{tmp_path / 'notes.txt'}"
    assert http(shell, "-f POST /upload", body).json() == {
        "title": "Notes",
        "name": "notes.txt",
        "size": 5,
    }
    route(
        shell,
        "POST /login",
        "from fastapi import Form\ndef login(username: str = Form()):\n    return username\n",
    )
    assert (
        http(
            shell, "POST /login", "Content-Type: application/x-www-form-urlencoded\n\nusername=ada"
        ).json()
        == "ada"
    )


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("GET", None, "%http needs a method and a path, got 'GET'; e.g. %http GET /items/1"),
        ("GET items", None, "path 'items' must start with '/', e.g. /items/1?q=shoes"),
        ("G3T /x", None, "unknown HTTP method 'G3T'"),
        (
            "--nope GET /x",
            None,
            "unknown option '--nope'; use -v/--verbose, -f/--form or -s/--server",
        ),
        ("POST /x {bad", None, "the body is not valid JSON (Expecting property name"),
        ("POST /x", "X-A: 1\nnot a header\n\n{}", "line 2 'not a header' is not a header"),
        ("-f POST /x", "doc@/nonexistent/file", "file '/nonexistent/file' for form field 'doc'"),
        ("-s GET /x", None, "the live server is not running; start it with %nbapi serve"),
    ],
)
def test_http_bad_input(shell: Any, line: str, cell: str | None, message: str) -> None:
    with pytest.raises(UsageError) as info:
        http(shell, line, cell)
    assert str(info.value).startswith(message)


def test_handler_crash_gives_500_and_the_kernel_goes_on(shell: Any) -> None:
    route(shell, "GET /boom", "def boom():\n    return 1 / 0\n")
    response = http(shell, "GET /boom")
    assert response.status_code == 500
    assert repr(response).startswith("HTTP 500 Internal Server Error")
    route(shell, "GET /fine", "def fine():\n    return 'ok'\n")
    assert http(shell, "GET /fine").json() == "ok"


def test_python_client_is_httpx_compatible(shell: Any) -> None:
    route(shell, "GET /items/<int:item_id>", READ_ITEM)
    client = nbapi.get_client()
    assert client.get("/items/2").json() == {"item_id": 2, "q": None}
    assert nbapi.client.get("/items/2", params={"q": "z"}).json()["q"] == "z"


def test_lifespan_runs_for_in_process_requests(shell: Any) -> None:
    code = textwrap.dedent(
        """
        from contextlib import asynccontextmanager
        from fastapi import FastAPI, Request
        events = []
        @asynccontextmanager
        async def lifespan(app):
            events.append("startup")
            yield {"greeting": "hello"}
            events.append("shutdown")
        app = FastAPI(lifespan=lifespan)
        @app.get("/hi")
        def hi(request: Request):
            return request.state.greeting
        """
    )
    assert shell.run_cell(code).success
    assert http(shell, "GET /hi").json() == "hello"
    assert shell.user_ns["events"] == ["startup"]
    shell.run_cell("app = FastAPI()")
    assert shell.user_ns["events"] == ["startup", "shutdown"]


def test_text_output_is_deterministic(shell: Any) -> None:
    route(shell, "GET /x", "def x():\n    return {'a': [1, 2]}\n")
    shown = repr(http(shell, "GET /x")) + repr(shell.run_line_magic("nbapi", "routes"))
    assert not re.search(r"0x[0-9a-f]{6,}|\d+\.\d+ ?m?s\b", shown)


def test_routes_listing(shell: Any) -> None:
    route(shell, "GET /a", "def a():\n    return 1\n")
    shell.run_cell("@app.post('/b')\ndef b():\n    return 2\n")
    text = repr(shell.run_line_magic("nbapi", "routes"))
    assert text.splitlines()[0].split() == ["method", "path", "name", "from"]
    assert "GET       /a                     a                    %%route" in text
    assert "POST      /b                     b" in text


def test_bad_public_url_is_refused_when_set(shell: Any, caplog: pytest.LogCaptureFixture) -> None:
    config = next(c for c in shell.configurables if type(c).__name__ == "NbAPI")
    shell.run_line_magic("config", "NbAPI.public_url = '/user/ada/proxy/{port}/'")
    shell.run_line_magic("config", "NbAPI.public_url = 'ftp:/nowhere'")
    assert config.public_url == "/user/ada/proxy/{port}/"
    # %config reports a refused value through logging, as one line.
    assert "NbAPI.public_url 'ftp:/nowhere' is not a base URL" in caplog.text


def test_compressed_responses_are_decoded_once(shell: Any) -> None:
    code = textwrap.dedent(
        """
        from fastapi.middleware.gzip import GZipMiddleware
        app.add_middleware(GZipMiddleware, minimum_size=10)
        """
    )
    route(shell, "GET /big", "def big():\n    return {'text': 'lamp ' * 100}\n")
    assert shell.run_cell(code).success
    response = http(shell, "GET /big", "Accept-Encoding: gzip\n\n")
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == {"text": "lamp " * 100}


def test_routes_listing_shows_included_routers_and_websockets(shell: Any) -> None:
    code = textwrap.dedent(
        """
        from fastapi import APIRouter, FastAPI, WebSocket
        app = FastAPI()
        shop = APIRouter(prefix="/shop")
        v1 = APIRouter(prefix="/v1")
        @shop.get("/items")
        def items():
            return []
        @v1.post("/orders")
        def order():
            return 1
        shop.include_router(v1)
        app.include_router(shop)
        """
    )
    assert shell.run_cell(code).success
    route(
        shell, "WS /echo", "async def echo(websocket: WebSocket):\n    await websocket.accept()\n"
    )
    rows = [line.split() for line in repr(shell.run_line_magic("nbapi", "routes")).splitlines()[6:]]
    assert rows == [
        ["GET", "/shop/items", "items"],
        ["POST", "/shop/v1/orders", "order"],
        ["WS", "/echo", "echo", "%%route"],
    ]


def test_exception_handler_added_after_requests_takes_effect(shell: Any) -> None:
    route(shell, "GET /x", "def x():\n    raise KeyError('lamp')\n")
    assert http(shell, "GET /x").status_code == 500
    handler = textwrap.dedent(
        """
        from fastapi.responses import JSONResponse
        @app.exception_handler(KeyError)
        async def missing(request, exc):
            return JSONResponse(status_code=404, content={"missing": str(exc)})
        """
    )
    assert shell.run_cell(handler).success
    response = http(shell, "GET /x")
    assert response.status_code == 404
    assert response.json() == {"missing": "'lamp'"}


# -- issue 12, items 4 and 8 ----------------------------------------------------------------------
def test_routes_with_app_that_is_not_fastapi_is_one_line(shell: Any) -> None:
    shell.user_ns["app"] = 3
    with pytest.raises(UsageError, match=r"'app' in the notebook is a int, not a FastAPI app") as e:
        shell.run_line_magic("nbapi", "routes")
    assert "\n" not in str(e.value)
    assert shell.user_ns["app"] == 3


@pytest.mark.parametrize("how", ["reload_ext", "unload_ext then load_ext"])
def test_cell_ownership_survives_reloading_the_extension(shell: Any, how: str) -> None:
    route(shell, "GET /version", "def version():\n    return 1\n")
    app = shell.user_ns["app"]
    for magic in how.split(" then "):
        shell.run_line_magic(magic, "nbapi")
    shell.run_line_magic("config", "NbAPI.autostart = False")
    route(shell, "GET /version", "def version():\n    return 2\n")  # the user's edit
    assert shell.user_ns["app"] is app
    assert paths(app).count("GET /version") == 1
    assert http(shell, "GET /version").json() == 2


@pytest.mark.parametrize(
    "body",
    [
        "x = " + "(" * 500 + ")" * 500 + "\ndef f():\n    return 1\n",
        "def f():\n    return '\x00'\n",
    ],
    ids=["deep-nesting", "nul"],
)
def test_route_cell_python_cannot_read_is_one_line(shell: Any, body: str) -> None:
    with pytest.raises(UsageError, match="no route was changed") as caught:
        shell.run_cell_magic("route", "GET /x", body)
    assert "\n" not in str(caught.value)
    assert "app" not in shell.user_ns or paths(shell.user_ns["app"]) == []


def test_route_cell_with_odd_line_breaks_registers(shell: Any) -> None:
    route(shell, "GET /odd", "x = 1\x0c\ndef odd():\n    return x\n")
    assert http(shell, "GET /odd").json() == 1


# -- cells own their routes in every direction ---------------------------------------------
def test_a_route_cell_run_again_without_route_removes_its_route(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("%%route GET /x\ndef x():\n    return 1\n", cell_id="c1")
    shell.run_cell("%%route GET /y\ndef y():\n    return 2\n", cell_id="c2")
    capsys.readouterr()
    shell.run_cell("def x():\n    return 1\n", cell_id="c1")
    assert capsys.readouterr().out == (
        "nbapi: removed GET /x -> x(): this cell no longer defines it\n"
    )
    assert paths(shell.user_ns["app"]) == ["GET /y"]
    assert http(shell, "GET /x").status_code == 404
    assert "/x" not in http(shell, "GET /openapi.json").json()["paths"]
    # A failing %%route cell keeps its route ("no route was changed").
    shell.run_cell("%%route GET /y\ndef y(:\n", cell_id="c2")
    assert paths(shell.user_ns["app"]) == ["GET /y"]


def test_a_plain_decorator_cell_run_again_replaces_its_routes_in_place(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    route(shell, "GET /first", "def first():\n    return 0\n")
    shell.run_cell("@app.get('/a')\ndef a():\n    return 1\n", cell_id="plain")
    route(shell, "GET /last", "def last():\n    return 0\n")
    shell.run_cell("@app.get('/a')\ndef a():\n    return 2\n", cell_id="plain")
    assert paths(shell.user_ns["app"]) == ["GET /first", "GET /a", "GET /last"]
    assert http(shell, "GET /a").json() == 2
    assert "nbapi warning" not in capsys.readouterr().err
    shell.run_cell("@app.get('/b')\ndef b():\n    return 3\n", cell_id="plain")
    assert paths(shell.user_ns["app"]) == ["GET /first", "GET /b", "GET /last"]
    assert "nbapi: removed GET /a -> a(): this cell no longer defines it" in capsys.readouterr().out


def test_plain_decorator_routes_get_the_route_warnings(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    route(shell, "GET /users/{user_id}", "def read_user(user_id):\n    return user_id\n")
    capsys.readouterr()
    shell.run_cell("@app.get('/users/me')\ndef read_me():\n    return 'me'\n", cell_id="me")
    assert capsys.readouterr().err == (
        "nbapi warning: GET /users/me by read_me() is shadowed by /users/{user_id} of "
        "read_user(), which was registered earlier and matches first; register the fixed path first\n"
    )
    # A cell that changes no route warns about nothing.
    shell.run_cell("x = 1", cell_id="other")
    assert capsys.readouterr().err == ""


def test_nbapi_remove_takes_out_any_route(shell: Any) -> None:
    shell.run_cell("from fastapi import FastAPI\napp = FastAPI()")
    shell.run_cell("@app.get('/items/{item_id}')\ndef read(item_id: int):\n    return item_id\n")
    route(shell, "POST /items", "def create():\n    return 1\n")
    removed = shell.run_line_magic("nbapi", "remove GET /items/<item_id>")
    assert repr(removed) == "removed GET /items/{item_id} -> read()"
    assert paths(shell.user_ns["app"]) == ["POST /items"]
    assert repr(shell.run_line_magic("nbapi", "remove post /items")) == (
        "removed POST /items -> create()"
    )
    with pytest.raises(UsageError, match=r"^no GET /items route in the app; "):
        shell.run_line_magic("nbapi", "remove GET /items")
    with pytest.raises(UsageError, match=r"usage: %nbapi remove METHOD PATH"):
        shell.run_line_magic("nbapi", "remove /items")


# -- errors where you look --------------------------------------------------------------
def test_http_to_a_failing_handler_shows_its_traceback_below_the_500(shell: Any) -> None:
    cell = "%%route GET /boom\ndef boom():\n    x = 0\n    return 1 / x\n"
    shell.run_cell(cell, store_history=True, cell_id="b")
    number = shell.execution_count - 1  # the In[N] the %%route cell ran as
    result = shell.run_cell("%http GET /boom", store_history=True)
    lines = repr(result.result).splitlines()
    # Lines counted from the cell's first line (%%route), as Jupyter shows them.
    assert lines[:6] == [
        "HTTP 500 Internal Server Error",
        "",
        "Internal Server Error",
        "",
        "Traceback (most recent call last):",
        f"  Cell In[{number}], line 4, in boom",
    ]
    assert lines[6] == "    return 1 / x"
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert not [line for line in lines if "starlette" in line or "nbapi" in line]
    assert result.result.error.endswith("ZeroDivisionError: division by zero")
    # The next request that works shows no stale traceback.
    shell.run_cell("%%route GET /boom\ndef boom():\n    return 1\n", cell_id="b")
    assert repr(shell.run_cell("%http GET /boom").result) == "HTTP 200 OK\n\n1"


def test_live_server_errors_no_cell_shows_are_announced_before_the_next_cell(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from nbapi._runner import LogEntry
    from nbapi._session import current_session

    shell.run_cell("@app.get('/boom')\ndef boom():\n    return 1 / 0\n")
    entry = LogEntry("server", "GET", "/boom", 500, "ZeroDivisionError: division by zero", "tb")
    for listener in current_session().runner.listeners:
        listener(entry)
    capsys.readouterr()
    shell.run_cell("print('next')")
    captured = capsys.readouterr()
    assert captured.err == (
        "nbapi: the live server's handlers raised an error since the last cell "
        "(last: 500 GET /boom: ZeroDivisionError: division by zero); see %nbapi log --errors\n"
    )
    assert captured.out == "next\n"
    shell.run_cell("print('again')")
    assert capsys.readouterr().err == ""  # announced once


def test_log_errors_with_no_errors_says_so(shell: Any) -> None:
    route(shell, "GET /fine", "def fine():\n    return 1\n")
    http(shell, "GET /fine")
    assert repr(shell.run_line_magic("nbapi", "log --errors")) == "nbapi log: no handler errors"


def test_a_cell_that_raises_loses_none_of_its_routes(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("%%route GET /x\ndef x():\n    return 1\n", cell_id="c1")
    shell.run_cell("@app.get('/p')\ndef p():\n    return 2\n", cell_id="c2")
    capsys.readouterr()
    # The %%route line taken out, and a typo: nothing is removed until the cell runs clean.
    shell.run_cell("def x():\n    return 1 / undefined_name\nx()\n", cell_id="c1")
    shell.run_cell("1 / 0\n@app.get('/p')\ndef p():\n    return 3\n", cell_id="c2")
    assert "nbapi: removed" not in capsys.readouterr().out
    assert paths(shell.user_ns["app"]) == ["GET /x", "GET /p"]
    assert http(shell, "GET /p").json() == 2
    shell.run_cell("@app.get('/p')\ndef p():\n    return 3\n", cell_id="c2")
    assert paths(shell.user_ns["app"]) == ["GET /x", "GET /p"]
    assert http(shell, "GET /p").json() == 3
