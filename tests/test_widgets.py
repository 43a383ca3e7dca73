"""The explorer and the request builder in IPython's real test shell, against real apps.

Cells run through ``shell.run_cell`` so the post-cell event (and with it the
live update) fires exactly as in a notebook.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import ipywidgets as widgets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from support import free_port

import nbapi
from nbapi import _widgets
from nbapi._session import Session, current_session
from nbapi._widgets import Explorer, RequestBuilder

MODELS = """
from typing import Annotated
from fastapi import Form, Header, HTTPException, Depends, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")
"""


def run(shell: Any, code: str) -> Any:
    result = shell.run_cell(textwrap.dedent(code))
    assert result.success, result.error_in_exec or result.error_before_exec
    return result.result


def session() -> Session:
    return current_session()


@pytest.fixture
def api(shell: Any) -> Iterator[Any]:
    """The test shell with a small item API defined by %%route cells."""
    run(shell, MODELS)
    run(
        shell,
        """
        %%route PUT /items/<int:item_id> tags=["items"], summary="Replace an item"
        def update_item(item_id, item: Item, q: int | None = None):
            return {"item_id": item_id, **item.model_dump(), "q": q}
        """,
    )
    run(
        shell,
        """
        %%route GET /page tags=["pages"], deprecated=True
        def page():
            return HTMLResponse('<script>window.__pwned = 1</script><img src=x onerror="x()">')
        """,
    )
    yield shell
    widgets.Widget.close_all()


def route_count(shell: Any) -> int:
    return len(session().runner.log)


# -- the explorer ---------------------------------------------------------------------------
def test_explorer_magic_lists_operations_with_a_stable_text_view(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    assert isinstance(explorer, Explorer)
    assert repr(explorer) == "<nbapi explorer: 2 operations>"
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == (
        "<nbapi explorer: 2 operations>\n"
        "  PUT  /items/{item_id}  Replace an item\n"
        "  GET  /page  Page (deprecated)"
    )
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert re.search(r"0x[0-9a-f]+|model_id", bundle["text/plain"]) is None
    html = "".join(getattr(w, "value", "") for w in explorer.list.children)
    assert 'data-nbapi-tag="items"' in html
    assert 'data-nbapi-tag="pages"' in html
    assert 'data-nbapi-count="2"' not in html  # the count is in the header
    assert 'data-nbapi="op-count">2 operations<' in explorer.header.value
    page = explorer.views["GET /page"]
    assert "nbapi-deprecated" in page.header.value
    assert "deprecated" in page.header.value


def test_explorer_marks_unreachable_operations_and_follows_their_cells(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    api.run_cell(
        "%%route GET /items/{item_id}\ndef read_item(item_id: int):\n    return item_id",
        cell_id="pattern",
    )
    api.run_cell("@app.get('/items/latest')\ndef latest():\n    return 0", cell_id="fixed")
    assert explorer.text_view().splitlines()[-1] == "  GET  /items/latest  Latest (unreachable)"
    view = explorer.views["GET /items/latest"]
    assert 'data-nbapi="unreachable"' in view.header.value
    assert "is shadowed by /items/{item_id} of read_item()" in view.header.value
    # The pattern's cell is re-run without %%route: its route goes, the mark with it.
    api.run_cell("x = 1", cell_id="pattern")
    assert "unreachable" not in explorer.text_view()
    assert 'data-nbapi="unreachable"' not in explorer.views["GET /items/latest"].header.value


def test_python_call_is_the_same_explorer(api: Any) -> None:
    explorer = nbapi.explorer()
    assert repr(explorer) == "<nbapi explorer: 2 operations>"
    builder = nbapi.request_builder("GET", "/page")
    assert repr(builder) == "<nbapi request builder: GET /page>"
    chooser = nbapi.request_builder()
    assert repr(chooser) == "<nbapi request builder: PUT /items/{item_id}>"
    assert chooser.chooser.options == ("PUT /items/{item_id}", "GET /page")


def test_details_show_parameters_body_and_responses(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    view = explorer.views["PUT /items/{item_id}"]
    view.details_button.value = True
    details = view.details.value
    assert 'data-nbapi="parameters"' in details
    assert "item_id *" in details
    assert "application/json (required)" in details
    assert "&quot;minLength&quot;: 1" in details  # the $ref is expanded and escaped
    assert 'data-nbapi-response="200"' in details
    assert 'data-nbapi-response="422"' in details
    assert view.details in view.extra.children


def test_filter(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    explorer.filter.value = "page"
    shown = [c for c in explorer.list.children if isinstance(c, widgets.VBox)]
    assert shown == [explorer.views["GET /page"].box]
    explorer.filter.value = ""
    assert len([c for c in explorer.list.children if isinstance(c, widgets.VBox)]) == 2


def test_live_update_on_add_replace_move_and_plain_decorator(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    redraws = explorer.redraws
    run(api, "x = 1")  # nothing changed: no redraw
    assert explorer.redraws == redraws

    run(api, "%%route DELETE /items/<int:item_id>\ndef delete_item(item_id):\n    return None\n")
    assert repr(explorer) == "<nbapi explorer: 3 operations>"
    assert "DELETE /items/{item_id}" in explorer.views
    assert explorer.redraws == redraws + 1

    # Re-running the cell with a new parameter replaces the operation in place.
    run(
        api,
        "%%route DELETE /items/<int:item_id>\n"
        "def delete_item(item_id, hard: bool = False):\n    return None\n",
    )
    op = explorer.views["DELETE /items/{item_id}"].op
    assert [f.key for f in op.fields] == ["path:item_id", "query:hard"]

    # The same function on a new path: the old operation disappears.
    run(api, "%%route DELETE /things/<int:item_id>\ndef delete_item(item_id):\n    return None\n")
    assert "DELETE /items/{item_id}" not in explorer.views
    assert "DELETE /things/{item_id}" in explorer.views

    # Plain FastAPI decorators count too, and so does removing a route by hand.
    run(api, "@app.get('/plain')\ndef plain():\n    return 1\n")
    assert "GET /plain" in explorer.views
    run(api, "app.router.routes[:] = [r for r in app.router.routes if r.path != '/plain']")
    assert "GET /plain" not in explorer.views
    assert repr(explorer) == "<nbapi explorer: 3 operations>"


def test_live_update_when_app_is_rebound(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    run(api, "from fastapi import FastAPI\napp = FastAPI(title='Fresh')")
    assert repr(explorer) == "<nbapi explorer: 0 operations>"
    assert "Fresh" in explorer.header.value
    run(api, "del app")
    assert repr(explorer) == "<nbapi explorer: 0 operations>"
    assert "no app yet" in explorer.header.value


def test_a_broken_schema_is_reported_not_raised(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    run(
        api,
        """
        @app.get('/broken', response_model=None)
        def broken():
            return 1
        app.openapi = lambda: 1 / 0
        """,
    )
    assert "ZeroDivisionError" in explorer.header.value
    assert "ZeroDivisionError" in explorer._repr_mimebundle_()["text/plain"]


def test_closed_widgets_stop_listening(api: Any) -> None:
    listeners = session().route_listeners
    before = len(listeners)
    explorer = run(api, "%nbapi explorer")
    builder = run(api, "%nbapi try GET /page")
    assert len(listeners) == before + 2
    explorer.close()
    builder.close()
    assert len(listeners) == before
    run(api, "%%route GET /late\ndef late():\n    return 1\n")  # no error from closed widgets


# -- the request builder ------------------------------------------------------------------
def test_try_builds_a_form_from_the_operation(api: Any) -> None:
    builder = run(api, "%nbapi try PUT /items/{item_id}")
    assert isinstance(builder, RequestBuilder)
    assert repr(builder) == "<nbapi request builder: PUT /items/{item_id}>"
    assert builder._repr_mimebundle_()["text/plain"] == repr(builder)
    assert list(builder.rows) == ["path:item_id", "query:q"]
    assert builder.body_editor is not None
    assert builder.values() == {
        "path:item_id": "",
        "query:q": "",
        "body": '{\n  "name": "string",\n  "price": 1.0\n}',
    }
    schema = builder.body_box.children[2].children[1].value
    assert 'data-nbapi="body-schema"' in schema
    assert "&quot;exclusiveMinimum&quot;: 0.0" in schema
    row = builder.rows["path:item_id"]
    assert "nbapi-field-path-item_id" in row.box._dom_classes
    assert 'title="required"' in row.label.value
    assert isinstance(row.input.widget, widgets.Text)


def test_concrete_path_prefills_path_parameters(api: Any) -> None:
    builder = run(api, "%nbapi try PUT /items/42")
    assert builder.values()["path:item_id"] == "42"


def test_valid_request(api: Any) -> None:
    builder = run(api, "%nbapi try PUT /items/{item_id}")
    builder.set_value("path:item_id", "3")
    builder.set_value("query:q", "7")
    builder.set_value("body", '{"name": "Lamp", "price": 12.5}')
    response = builder.send_request()
    assert response is not None
    assert response.status_code == 200
    assert response.json() == {"item_id": 3, "name": "Lamp", "price": 12.5, "q": 7}
    html = builder.response_html.value
    assert 'data-nbapi="status">HTTP 200 OK<' in html
    assert 'data-nbapi="time">' in html
    assert "in-process" in html
    assert "&quot;Lamp&quot;" in html  # the JSON tree, escaped
    assert builder.marked == set()
    assert builder.warnings_html.value == ""


def test_invalid_request_is_sent_and_its_422_shown_once(api: Any) -> None:
    builder = run(api, "%nbapi try PUT /items/{item_id}")
    builder.set_value("path:item_id", "abc")
    builder.set_value("body", '{"name": "", "price": -1}')
    # While typing, the client-side checks warn (and never block).
    assert "Client-side checks found 3 problems" in builder.warnings_html.value
    served = route_count(api)
    response = builder.send_request()
    assert route_count(api) == served + 1  # the client-side checks did not block it
    assert response is not None
    assert response.status_code == 422
    # The 422 is said once: the table, and the fields it names outlined. No warning list,
    # no notes under the fields repeating the table.
    assert builder.warnings_html.value == ""
    html = builder.response_html.value
    assert 'data-nbapi="validation"' in html
    table = html.split("<details><summary>body</summary>")[0]  # the raw body stays collapsed
    assert table.count("Input should be a valid integer") == 1
    for loc in ("path.item_id", "body.name", "body.price"):
        assert f'data-nbapi-loc="{loc}"' in html
    assert builder.marked == {"path:item_id", "body"}
    row = builder.rows["path:item_id"]
    assert "nbapi-invalid" in row.box._dom_classes
    assert "Input should be a valid integer" not in row.message.value
    assert (
        row.box.tooltip == "Input should be a valid integer, unable to parse string as an integer"
    )
    assert "nbapi-invalid" not in builder.rows["query:q"].box._dom_classes
    assert "String should have at least 1 character" not in builder.body_message.value

    # Fixed and sent again: the marks go away.
    builder.set_value("path:item_id", "1")
    builder.set_value("body", '{"name": "A", "price": 1}')
    response = builder.send_request()
    assert response is not None
    assert response.status_code == 200
    assert builder.marked == set()
    assert "nbapi-invalid" not in row.box._dom_classes


def test_html_body_is_shown_as_text(api: Any) -> None:
    builder = run(api, "%nbapi try GET /page")
    response = builder.send_request()
    assert response is not None
    assert response.status_code == 200
    html = builder.response_html.value
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()


def test_json_body_with_markup_is_escaped(api: Any) -> None:
    run(api, "%%route GET /evil\ndef evil():\n    return {'<b>key</b>': '<script>x()</script>'}\n")
    builder = run(api, "%nbapi try GET /evil")
    builder.send_request()
    html = builder.response_html.value
    assert "&lt;b&gt;key&lt;/b&gt;" in html
    assert "<script" not in html
    assert "<b>key" not in html


@pytest.mark.parametrize(
    ("body", "media", "expected"),
    [
        (b"", "text/plain", "(empty body)"),
        (
            b"\xff\xfe\x00",
            "application/octet-stream",
            "&lt;3 bytes of application/octet-stream&gt;",
        ),
        (b'{"a": [1, 2]}', "application/json", "[ 2 items ]"),
        (b"not json", "application/json", "not json"),
        (b"<p>hi</p>", "text/html", "&lt;p&gt;hi&lt;/p&gt;"),
    ],
)
def test_body_html(body: bytes, media: str, expected: str) -> None:
    response = httpx2.Response(200, content=body, headers={"content-type": media})
    html = _widgets.body_html(response)
    assert expected in html
    assert 'data-nbapi="body"' in html


def test_large_json_is_drawn_as_text() -> None:
    payload = b"[" + b",".join([b"1"] * 5000) + b"]"
    response = httpx2.Response(200, content=payload, headers={"content-type": "application/json"})
    html = _widgets.body_html(response)
    assert html.startswith('<pre class="nbapi-pre" data-nbapi="body">')


def test_history_replay_and_edit(api: Any) -> None:
    builder = run(api, "%nbapi try PUT /items/{item_id}")
    builder.set_value("path:item_id", "1")
    builder.set_value("query:q", "5")
    builder.set_value("body", '{"name": "A", "price": 1}')
    builder.send_request()
    builder.set_value("path:item_id", "nope")
    builder.send_request()
    assert [e.line(i + 1) for i, e in enumerate(builder.history)] == [
        "1. PUT /items/1?q=5 -> 200 OK (in-process)",
        "2. PUT /items/nope?q=5 -> 422 Unprocessable Content (in-process)",
    ]
    assert builder.history_select.options[0] == ("1. PUT /items/1?q=5 -> 200 OK (in-process)", 0)
    served = route_count(api)
    response = builder.replay(0)
    assert response is not None
    assert response.status_code == 200
    assert route_count(api) == served + 1
    assert len(builder.history) == 3
    builder.set_value("query:q", "")
    builder.set_value("body", "{}")
    builder.load_history(0)
    assert builder.values()["query:q"] == "5"
    assert builder.values()["body"] == '{"name": "A", "price": 1}'
    builder.history_select.value = 1
    builder.show_history_code()
    assert builder.code.value.startswith("curl -X PUT 'http://127.0.0.1:8000/items/nope?q=5'")
    assert "%%http PUT /items/nope?q=5" in builder.code.value


@pytest.mark.parametrize(
    ("kind", "start"),
    [
        ("curl", "curl -X PUT 'http://127.0.0.1:8000/items/2?q=1' -H 'Content-Type: application"),
        ("httpx2", "import httpx2\n\nresponse = httpx2.request(\n    'PUT',"),
        ("http", '%%http PUT /items/2?q=1\n\n{"name": "A", "price": 1}'),
    ],
)
def test_copy_as_code(api: Any, kind: str, start: str) -> None:
    builder = run(api, "%nbapi try PUT /items/{item_id}")
    builder.set_value("path:item_id", "2")
    builder.set_value("query:q", "1")
    builder.set_value("body", '{"name": "A", "price": 1}')
    builder.show_code(kind)
    assert builder.code.value.startswith(start)
    assert builder.code.layout.display == "flex"


def test_http_cell_from_the_builder_runs(api: Any) -> None:
    builder = run(api, "%nbapi try PUT /items/{item_id}")
    builder.set_value("path:item_id", "2")
    builder.set_value("body", '{"name": "A", "price": 1}')
    response = run(api, builder.code_for("http"))
    assert response.status_code == 200
    assert response.json()["item_id"] == 2


def test_form_and_file_upload(api: Any) -> None:
    run(
        api,
        """
        %%route POST /upload
        def upload(file: UploadFile, note: Annotated[str, Form()] = "", kind: Annotated[str, Form()] = "a"):
            return {"name": file.filename, "size": len(file.file.read()), "note": note}
        """,
    )
    builder = run(api, "%nbapi try POST /upload")
    assert list(builder.rows) == ["file:file", "form:note", "form:kind"]
    upload = builder.rows["file:file"].input.widget
    assert isinstance(upload, widgets.FileUpload)
    assert builder.values()["form:kind"] == "a"
    builder.set_value("form:note", "hello")
    response = builder.send_request()
    assert response is not None
    assert response.status_code == 422
    assert builder.marked == {"file:file"}
    upload.value = (
        {
            "name": "a.txt",
            "type": "text/plain",
            "size": 5,
            "content": memoryview(b"hello"),
            "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        },
    )
    response = builder.send_request()
    assert response is not None
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "a.txt", "size": 5, "note": "hello"}
    assert builder.code_for("curl").endswith("-F note=hello -F kind=a -F file=@a.txt")


def test_enum_and_list_inputs(api: Any) -> None:
    run(
        api,
        """
        from enum import Enum
        from fastapi import Query
        class Size(str, Enum):
            s = "s"
            m = "m"
        """,
    )
    run(
        api,
        """
        %%route GET /shirts
        def shirts(size: Size, tags: Annotated[list[str], Query()] = [], sizes: Annotated[list[Size], Query()] = [], wide: bool = False):
            return {"size": size, "tags": tags, "sizes": sizes, "wide": wide}
        """,
    )
    builder = run(api, "%nbapi try GET /shirts")
    inputs = {key: row.input.widget for key, row in builder.rows.items()}
    assert isinstance(inputs["query:size"], widgets.Dropdown)
    assert inputs["query:size"].options == ("", "s", "m")  # required: the user must pick
    assert isinstance(inputs["query:tags"], widgets.Textarea)
    assert isinstance(inputs["query:sizes"], widgets.SelectMultiple)
    assert isinstance(inputs["query:wide"], widgets.Dropdown)
    assert inputs["query:wide"].options == ("", "true", "false")
    builder.set_value("query:size", "m")
    builder.set_value("query:tags", ["a", "b"])
    builder.set_value("query:sizes", ["s", "m"])
    builder.set_value("query:wide", "true")
    response = builder.send_request()
    assert response is not None
    assert response.json() == {"size": "m", "tags": ["a", "b"], "sizes": ["s", "m"], "wide": True}
    # A value outside the enum can still be sent on purpose.
    builder.set_value("query:size", "xl")
    response = builder.send_request()
    assert response is not None
    assert response.status_code == 422
    assert builder.marked == {"query:size"}


def test_oauth2_password_flow_in_the_form(api: Any) -> None:
    run(
        api,
        """
        %%route POST /token
        def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]):
            if form.password != "secret":
                raise HTTPException(400, "Incorrect username or password")
            return {"access_token": "tok-" + form.username, "token_type": "bearer"}
        """,
    )
    run(
        api,
        """
        %%route GET /users/me
        def me(token: Annotated[str, Depends(oauth2_scheme)]):
            return {"token": token}
        """,
    )
    builder = run(api, "%nbapi try GET /users/me")
    assert builder.auth_scheme.options == (("OAuth2 password", "OAuth2PasswordBearer"),)
    assert builder.token_button in builder.auth_box.children
    response = builder.send_request()
    assert response is not None
    assert response.status_code == 401
    builder.auth_user.value = "ann"
    builder.auth_password.value = "wrong"
    assert builder.fetch_token() is None
    assert "Incorrect username or password" in builder.auth_message.value
    builder.auth_password.value = "secret"
    assert builder.fetch_token() == "tok-ann"
    response = builder.send_request()
    assert response is not None
    assert response.json() == {"token": "tok-ann"}
    assert "Authorization: Bearer tok-ann" in builder.code_for("http")


def test_builder_follows_its_operation(api: Any) -> None:
    builder = run(api, "%nbapi try PUT /items/{item_id}")
    builder.set_value("body", '{"name": "kept", "price": 1}')
    run(
        api,
        """
        %%route PUT /items/<int:item_id> tags=["items"], summary="Replace an item"
        def update_item(item_id, item: Item, q: int | None = None, dry: bool = False):
            return {"item_id": item_id}
        """,
    )
    assert list(builder.rows) == ["path:item_id", "query:q", "query:dry"]
    assert builder.values()["body"] == '{"name": "kept", "price": 1}'  # what was typed stays
    run(
        api,
        """
        %%route PUT /goods/<int:item_id>
        def update_item(item_id, item: Item):
            return {"item_id": item_id}
        """,
    )
    assert 'data-nbapi="gone"' in builder.title.value
    assert builder.chooser.options == ("PUT /goods/{item_id}", "GET /page")


def test_choose_an_operation(api: Any) -> None:
    builder = run(api, "%nbapi try")
    assert builder.chooser in builder.children
    builder.chooser.value = "GET /page"
    assert repr(builder) == "<nbapi request builder: GET /page>"
    assert builder.rows == {}
    assert builder.body_editor is None
    builder.chooser.value = "PUT /items/{item_id}"
    assert builder.values()["body"] == '{\n  "name": "string",\n  "price": 1.0\n}'
    builder.set_value("body", "{}")
    builder.chooser.value = "GET /page"
    builder.chooser.value = "PUT /items/{item_id}"
    assert builder.values()["body"].startswith('{\n  "name"')  # not the other form's value


def test_open_builder_of_a_removed_operation_closes_quietly(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    builder = explorer.builder("GET", "/page")
    listeners = session().route_listeners
    assert builder._listener in listeners
    run(api, "%%route GET /other\ndef page():\n    return 1\n")  # moves page() off /page
    assert "GET /page" not in explorer.views
    assert builder._listener is None
    assert builder.comm is None  # closed, and its listener did not run after closing
    assert 'data-nbapi="gone"' not in builder.title.value


def test_live_server_target_without_a_server(api: Any) -> None:
    builder = run(api, "%nbapi try GET /page")
    builder.target.value = _widgets.LIVE_SERVER
    assert builder.send_request() is None
    assert "the live server is not running; start it with %nbapi serve" in (
        builder.response_html.value
    )


@pytest.mark.server
def test_send_to_the_live_server(api: Any) -> None:
    api.run_line_magic("config", f"NbAPI.port = {free_port()}")
    api.run_line_magic("nbapi", "serve")
    try:
        builder = run(api, "%nbapi try PUT /items/{item_id}")
        builder.target.value = _widgets.LIVE_SERVER
        builder.set_value("path:item_id", "9")
        builder.set_value("body", '{"name": "Lamp", "price": 3}')
        response = builder.send_request()
        assert response is not None
        assert response.status_code == 200
        assert response.json()["item_id"] == 9
        assert str(response.request.url).startswith(session().server.url.rstrip("/"))
        assert "live server" in builder.response_html.value
        assert builder.code_for("curl").startswith(f"curl -X PUT {session().server.url}items/9")
    finally:
        api.run_line_magic("nbapi", "stop")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("try GET /nowhere", "no operation GET '/nowhere' in the app; use one of PUT /items/"),
        ("try GET /a /b", "%nbapi try takes METHOD PATH, got 'GET /a /b'"),
        ("try /nowhere", "%nbapi try '/nowhere': no operation on that path; use one of PUT"),
        ("explorer now", "%nbapi explorer takes no arguments, got 'now'"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(api: Any, line: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        api.run_line_magic("nbapi", line)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_try_with_only_a_path(api: Any) -> None:
    builder = api.run_line_magic("nbapi", "try /page")
    assert repr(builder) == "<nbapi request builder: GET /page>"
    run(api, "%%route DELETE /page\ndef drop_page():\n    return None\n")
    with pytest.raises(UsageError, match=r"needs a method \(methods on it: GET, DELETE\); e\.g\."):
        api.run_line_magic("nbapi", "try /page")


def test_builder_in_the_explorer(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    builder = explorer.builder("GET", "/page")
    assert builder in explorer.views["GET /page"].extra.children
    response = builder.send_request()
    assert response is not None
    assert response.status_code == 200
    explorer.views["GET /page"].try_button.value = False
    assert builder not in explorer.views["GET /page"].extra.children


def test_widgets_do_not_import_the_magics_layer() -> None:
    # Widgets use the session and the public app API, never the magics.
    code = "import sys, nbapi._widgets; print('nbapi._magics' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_checks_warn_while_typing_and_never_send(api: Any) -> None:
    builder = run(api, "%nbapi try PUT /items/{item_id}")
    assert builder.warnings_html.value == ""  # a fresh form is not scolded
    served = route_count(api)
    builder.set_value("path:item_id", "x")
    assert route_count(api) == served
    assert "Client-side checks found 1 problem (Send still sends it)" in builder.warnings_html.value
    row = builder.rows["path:item_id"]
    assert "nbapi-warned" in row.box._dom_classes
    assert "⚠ &#x27;x&#x27; is not an integer" in row.message.value
    builder.send_request()
    assert "nbapi-invalid" in row.box._dom_classes
    # Editing the field drops the server's now stale complaint; other marks stay.
    builder.set_value("body", "{}")
    assert builder.marked == {"path:item_id"}
    builder.set_value("path:item_id", "5")
    assert builder.marked == set()
    assert "nbapi-warned" not in row.box._dom_classes
    assert "body.name: is required" in builder.warnings_html.value


NOTEBOOK = Path(__file__).resolve().parent / "resources" / "widgets" / "widgets.ipynb"


@pytest.mark.kernel
def test_notebook_outputs_are_stable_text_for_nbval(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    shown = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                shown[cell.source] = data["text/plain"]
    assert shown == {
        "%nbapi explorer": (
            "<nbapi explorer: 2 operations>\n"
            "  PUT  /items/{item_id}  Replace an item\n"
            "  GET  /page  Page"
        ),
        "%nbapi try PUT /items/{item_id}": "<nbapi request builder: PUT /items/{item_id}>",
        "%nbapi try GET /page": "<nbapi request builder: GET /page>",
    }


def test_json_tree_opens_two_levels() -> None:
    html = _widgets.json_html({"a": {"b": {"c": [1]}}})
    assert html.count("<details open>") == 2
    assert html.count("<details>") == 2
    assert '<summary><span class="nbapi-muted">b:</span> { 1 key }</summary>' in html


def test_auth_choice_shows_the_scheme_in_use(shell: Any) -> None:
    run(shell, MODELS)
    run(
        shell,
        """
        %%route GET /me
        def me(token: Annotated[str, Depends(oauth2_scheme)]):
            return token
        """,
    )
    builder = run(shell, "%nbapi try GET /me")
    assert len(builder.auth_scheme.options) == 1
    assert builder.auth_scheme.value == "OAuth2PasswordBearer"
    assert builder.auth_scheme.label  # not blank in the front end
    widgets.Widget.close_all()


@pytest.mark.parametrize(
    ("line", "values"),
    [
        ("%nbapi try /items/42", {"path:item_id": "42"}),
        ("%nbapi try PUT /items/7", {"path:item_id": "7"}),
    ],
)
def test_try_a_concrete_path_fills_its_parameters(
    api: Any, line: str, values: dict[str, str]
) -> None:
    builder = run(api, line)
    assert builder.op is not None
    assert builder.op.label == "PUT /items/{item_id}"
    for key, value in values.items():
        assert str(builder.rows[key].input.value) == value


def test_try_a_path_no_operation_serves_is_one_line(api: Any) -> None:
    with pytest.raises(UsageError, match=r"^%nbapi try '/nothing/1': no operation on that path"):
        api.run_line_magic("nbapi", "try /nothing/1")


@pytest.mark.parametrize(
    ("code", "redraws", "listed"),
    [
        ("x = 1", 0, ["PUT /items/{item_id}", "GET /page"]),
        ("app.title = 'Shop'", 0, ["PUT /items/{item_id}", "GET /page"]),
        (
            "@app.api_route('/both', methods=['GET', 'POST'])\ndef both():\n    return 1",
            1,
            ["PUT /items/{item_id}", "GET /page", "GET /both", "POST /both"],
        ),
        ("app.router.routes.pop()", 1, ["PUT /items/{item_id}"]),
        ("app.router.routes.reverse()", 1, ["GET /page", "PUT /items/{item_id}"]),
        ("app = FastAPI()", 1, []),
    ],
    ids=["unrelated", "title", "added", "removed", "reordered", "new-app"],
)
def test_explorer_redraws_exactly_when_routes_change(
    api: Any, code: str, redraws: int, listed: list[str]
) -> None:
    """Routes are followed by identity (FastAPI builds a new route for every change)."""
    explorer = run(api, "%nbapi explorer")
    before = explorer.redraws
    run(api, "from fastapi import FastAPI\n" + code)
    assert explorer.redraws == before + redraws
    assert [op.label for op in explorer.ops] == listed


def test_removing_one_method_of_a_route_redraws_the_explorer(api: Any) -> None:
    run(api, "@app.api_route('/both', methods=['GET', 'POST'])\ndef both():\n    return 1")
    explorer = run(api, "%nbapi explorer")
    run(api, "%nbapi remove POST /both")
    assert "POST /both" not in explorer.views
    assert "GET /both" in explorer.views


def test_a_moved_route_is_shown_in_the_widgets_of_the_one_it_replaced(api: Any) -> None:
    explorer = run(api, "%nbapi explorer")
    assert api.run_cell("%%route GET /old\ndef moved():\n    return 1", cell_id="m").success
    view = explorer.views["GET /old"]
    view.details_button.value = view.try_button.value = True
    builder = view.builder
    assert builder is not None
    assert view.extra.children == (view.details, builder)
    assert api.run_cell("%%route POST /new\ndef moved():\n    return 1", cell_id="m").success
    assert "GET /old" not in explorer.views
    assert explorer.views["POST /new"] is view  # no widgets built for it
    assert 'data-nbapi-op="POST /new"' in view.header.value
    assert "nbapi-operation-POST" in view.box._dom_classes
    assert "nbapi-operation-GET" not in view.box._dom_classes
    # What was open belonged to the old operation: closed, as for a view built anew.
    assert (view.details_button.value, view.try_button.value) == (False, False)
    assert view.extra.children == ()
    assert view.builder is None
    assert builder.comm is None


# One cell's content: a %%route cell (method, path, a parameter), a plain decorator, or
# plain code (which takes the cell's routes away).
CELL_CONTENTS = [
    "%%route GET /items/<int:item_id>\ndef h_{cell}(item_id, q: str | None = None):\n    return 1",
    "%%route GET /items/<int:item_id>\ndef h_{cell}(item_id, q: str):\n    return 1",
    "%%route POST /items\ndef h_{cell}(item: Item):\n    return item",
    "%%route GET /items/latest tags=['items']\ndef h_{cell}():\n    return 2",
    "%%route DELETE /items/<int:item_id> deprecated=True\ndef h_{cell}(item_id):\n    return 1",
    "@app.get('/users/{{user_id}}')\ndef h_{cell}(user_id: int):\n    return user_id",
    "@app.get('/users/me')\ndef h_{cell}():\n    return 'me'",
    "x_{cell} = 1",
]


@settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.sampled_from("abcd"), st.integers(0, len(CELL_CONTENTS) - 1)),
        min_size=1,
        max_size=12,
    )
)
def test_explorer_listing_equals_the_whole_document_after_any_cells(
    shell: Any, cells: list[tuple[str, int]]
) -> None:
    """Read route by route, the explorer lists what FastAPI's whole document holds."""
    from nbapi import _forms
    from nbapi._registry import unreachable
    from nbapi._views import unreachable_operations

    run(shell, "from fastapi import FastAPI\nfrom pydantic import BaseModel\napp = FastAPI()")
    run(shell, "class Item(BaseModel):\n    name: str\n    price: float = 0")
    explorer = run(shell, "%nbapi explorer")
    for cell, content in cells:
        result = shell.run_cell(CELL_CONTENTS[content].format(cell=cell), cell_id=cell)
        assert result.success, result.error_in_exec
        app = shell.user_ns["app"]
        app.openapi_schema = None
        assert explorer.ops == _forms.operations(app.openapi())
        routes = app.router.routes
        assert explorer.unreachable == unreachable_operations(routes, unreachable(routes))
        shown = [view.op for view in explorer.views.values()]
        assert sorted(op.label for op in shown) == sorted(op.label for op in explorer.ops)
    explorer.close()
