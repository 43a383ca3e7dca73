"""%nbapi fuzz in a real IPython shell: planted bugs found, shrunk, replayed, reproducible."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from fastapi import FastAPI
from IPython.core.error import UsageError

from nbapi import _fuzz
from nbapi._commands import CommandError, fuzz_options
from nbapi._export import export_notebook, write_export
from nbapi._findings import FUZZ_MIME, SentRequest
from nbapi._fuzz import FuzzOptions, run_fuzz
from nbapi._fuzz_widgets import FindingsWidget
from nbapi._session import current_session

SETUP = """
from fastapi import HTTPException
from pydantic import BaseModel

class Item(BaseModel):
    name: str
    price: float

items = {}
"""

# Three planted bugs: a crash on a negative number, a response that breaks its
# response_model for a negative price, and a 404 the schema does not document.
ROUTES = [
    (
        "GET /root/<int:number>",
        """
        import math

        def root(number):
            return {"root": math.isqrt(number)}
        """,
    ),
    (
        "POST /items response_model=Item",
        """
        def create_item(item: Item):
            if item.price < 0:
                return {"name": item.name}
            items[len(items)] = item
            return item
        """,
    ),
    (
        "GET /items/<int:item_id>",
        """
        def read_item(item_id):
            if item_id not in items:
                raise HTTPException(404, "no such item")
            return items[item_id]
        """,
    ),
]


def route(shell: Any, line: str, cell: str) -> None:
    shell.run_cell_magic("route", line, textwrap.dedent(cell))


def state(app: FastAPI) -> tuple[list[Any], str]:
    app.openapi_schema = None
    return list(app.router.routes), json.dumps(app.openapi(), sort_keys=True)


@pytest.fixture
def buggy(shell: Any) -> Any:
    shell.run_cell(SETUP)
    for line, cell in ROUTES:
        route(shell, line, cell)
    return shell


def fuzz(shell: Any, line: str) -> Any:
    return shell.run_line_magic("nbapi", f"fuzz {line}")


# -- arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], FuzzOptions()),
        (["GET", "/items/{item_id}"], FuzzOptions(method="GET", path="/items/{item_id}")),
        (["get", "/x", "--examples", "5"], FuzzOptions(method="GET", path="/x", examples=5)),
        (["/x", "--seed=7"], FuzzOptions(path="/x", seed=7)),
        (
            ["--checks", "not_a_server_error,status_code_conformance"],
            FuzzOptions(checks=("not_a_server_error", "status_code_conformance")),
        ),
        (["--checks", "all", "--stateful"], FuzzOptions(checks=tuple(_fuzz.CHECKS), stateful=True)),
    ],
)
def test_fuzz_options(argv: list[str], expected: FuzzOptions) -> None:
    assert fuzz_options(argv) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "--examples many",
            "--examples 'many' is not a number from 1 to 100000; e.g. --examples 20",
        ),
        ("--examples 0", "--examples '0' is not a number from 1 to 100000; e.g. --examples 20"),
        ("--examples", "--examples None is not a number from 1 to 100000; e.g. --examples 20"),
        ("--seed -1", "--seed '-1' is not a number from 0 to 9223372036854775807; e.g. --seed 20"),
        ("--checks bogus", "unknown check 'bogus'; use all, or some of not_a_server_error, "),
        ("--fast", "unknown option '--fast'; usage: %nbapi fuzz [METHOD PATH]"),
        ("GET /a /b", "%nbapi fuzz takes one operation, got 'GET /a /b'"),
        (
            "GET /nowhere",
            "%nbapi fuzz: no operation 'GET /nowhere'; use one of GET /root/{number}, ",
        ),
        ("DELETE /root/{number}", "%nbapi fuzz: no operation 'DELETE /root/{number}'"),
        ("--checks use_after_free", "--checks: those checks only run with --stateful"),
    ],
)
def test_bad_arguments_are_one_line(buggy: Any, line: str, message: str) -> None:
    app = buggy.user_ns["app"]
    before = state(app)
    with pytest.raises(UsageError) as info:
        fuzz(buggy, line)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert state(app) == before


def test_help_names_every_check(shell: Any) -> None:
    text = repr(fuzz(shell, "--help"))
    for name in _fuzz.CHECKS:
        assert name in text
    assert "changes the app's in-memory data" in text


# -- findings -----------------------------------------------------------------------------
def test_finds_the_planted_bugs_shrunk(buggy: Any) -> None:
    report = fuzz(buggy, "--seed 1 --examples 100")
    found = {(f.operation, f.kind, f.status_code) for f in report}
    assert ("GET /root/{number}", "not_a_server_error", 500) in found
    assert ("POST /items", "not_a_server_error", 500) in found
    assert ("GET /items/{item_id}", "status_code_conformance", 404) in found
    assert not report.ok
    crash = next(f for f in report if f.operation == "GET /root/{number}")
    assert crash.http == "%http GET /root/-1"  # shrunk to the smallest failing value
    assert crash.error == "ValueError: isqrt() argument must be nonnegative"
    assert "in root" in (crash.traceback or "")
    assert "math.isqrt(number)" in (crash.traceback or "")
    invalid = next(f for f in report if f.operation == "POST /items")
    # Shrunk: the smallest failing body has the shortest name and a negative price.
    assert invalid.http.startswith("%%http POST /items\n\n")
    body = json.loads(invalid.http.split("\n\n", 1)[1])
    assert body["name"] == ""
    assert body["price"] < 0
    assert "ResponseValidationError" in (invalid.error or "")
    text = repr(report)
    assert text.splitlines()[0].startswith("nbapi fuzz: 3 operations, ")
    assert "seed 1: 3 findings" in text.splitlines()[0]


def test_same_seed_same_text(buggy: Any) -> None:
    # POST /items adds to `items`, so the 404 finding depends on the data: start clean each time.
    texts = []
    for _ in range(2):
        buggy.user_ns["items"].clear()
        texts.append(repr(fuzz(buggy, "--seed 5 --examples 30")))
    assert texts[0] == texts[1]
    for volatile in ("0x", " ms", "ipython-input"):
        assert volatile not in texts[0]


def test_routes_and_openapi_unchanged(buggy: Any) -> None:
    app = buggy.user_ns["app"]
    before = state(app)
    fuzz(buggy, "--seed 2 --examples 20 --checks all")
    assert state(app) == before


def test_one_operation_and_replay(buggy: Any) -> None:
    report = fuzz(buggy, "GET /root/{number} --seed 3 --examples 100")
    assert report.operations == ["GET /root/{number}"]
    (finding,) = list(report)
    assert finding.curl == "curl -X GET http://127.0.0.1:8000/root/-1"  # no live server running
    replayed = finding.replay()
    assert replayed.status_code == 500
    assert replayed.text_view().startswith("HTTP 500 Internal Server Error")
    # The request went through the runner, as %http does: its log has the error.
    log = current_session().runner.log
    assert (log[-1].method, log[-1].path) == ("GET", "/root/-1")
    assert log[-1].error


def test_clean_app_is_ok(shell: Any) -> None:
    route(shell, "GET /hello", "def hello(name: str = 'x'):\n    return {'hello': name}\n")
    report = fuzz(shell, "--seed 0 --examples 20")
    assert report.ok
    assert list(report) == []
    assert repr(report).endswith("seed 0: no findings")


def test_negative_data_on_request(shell: Any) -> None:
    # A handler that reads the raw query accepts what its schema forbids.
    route(
        shell,
        "GET /page",
        """
        from fastapi import Query, Request

        def page(request: Request, size: int = Query(10, ge=1, le=50)):
            return {"size": size}
        """,
    )
    assert fuzz(shell, "--seed 0 --examples 30").ok
    report = fuzz(shell, "--seed 0 --examples 30 --checks negative_data_rejection")
    assert report.checks == ("negative_data_rejection",)
    assert report.requests > 30  # the negative phase ran too


def test_interrupt_keeps_findings(buggy: Any) -> None:
    calls = []

    def progress(done: int, total: int, requests: int, findings: int) -> None:
        calls.append(done)
        if done == 1:
            raise KeyboardInterrupt

    options = FuzzOptions(seed=1, examples=100)
    report = run_fuzz(current_session(), options, progress)
    assert report.interrupted
    assert not report.ok
    assert [f.operation for f in report] == ["GET /root/{number}"]
    assert "(interrupted: findings so far)" in repr(report).splitlines()[0]


def test_missing_schemathesis_is_one_line(shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    route(shell, "GET /hello", "def hello():\n    return 1\n")
    monkeypatch.setitem(sys.modules, "schemathesis", None)  # makes `import schemathesis` fail
    with pytest.raises(UsageError, match=r"pip install nbapi\[fuzz\]$"):
        fuzz(shell, "")


@pytest.mark.parametrize(
    ("request_", "http"),
    [
        (SentRequest("GET", "/items/0?q="), "%http GET /items/0?q="),
        (
            SentRequest("POST", "/items", [("Content-Type", "application/json")], b'{"a":1}'),
            '%%http POST /items\n\n{"a":1}',
        ),
        (
            SentRequest("GET", "/me", [("x-token", "")]),
            "%%http GET /me\nx-token: ",
        ),
        (
            SentRequest("POST", "/f", [("Content-Type", "text/plain")], b"hi"),
            "%%http POST /f\nContent-Type: text/plain\n\nhi",
        ),
    ],
)
def test_request_as_http(request_: SentRequest, http: str) -> None:
    assert request_.http == http


def test_findings_widget_replays(buggy: Any) -> None:
    report = fuzz(buggy, "GET /root/{number} --seed 3 --examples 100")
    widget = report.widget()
    assert isinstance(widget, FindingsWidget)
    assert repr(widget) == "<nbapi fuzz findings: 1>"
    row = widget.children[1]
    replay, as_http, as_curl = row.children[1:]
    replay.click()
    assert "HTTP 500 Internal Server Error" in widget.output.value
    as_http.click()
    assert "%http GET /root/-1" in widget.output.value
    as_curl.click()
    assert "curl -X GET" in widget.output.value


def test_report_keeps_requests_for_export(buggy: Any) -> None:
    report = fuzz(buggy, "GET /root/{number} --seed 3 --examples 100")
    bundle = report._repr_mimebundle_()
    assert bundle["text/plain"] == repr(report)
    assert bundle["application/vnd.nbapi.fuzz+json"] == {
        "version": 1,
        "findings": [
            {
                "operation": "GET /root/{number}",
                "kind": "not_a_server_error",
                "status_code": 500,
                "request": {"method": "GET", "url": "/root/-1", "headers": [], "body": ""},
            }
        ],
    }


def test_missing_option_value_is_user_error() -> None:
    with pytest.raises(CommandError, match=r"^--checks needs check names"):
        fuzz_options(["--checks", ""])


# -- export ---------------------------------------------------------------------------------
FIXED_ROOT = """
import math
from fastapi import HTTPException

def root(number):
    if number < 0:
        raise HTTPException(422, "number must be nonnegative")
    return {"root": math.isqrt(number)}
"""


def _exported_notebook(shell: Any, root_source: str) -> Any:
    """A notebook whose fuzz cell kept the findings of the buggy app; its route is ``root_source``."""
    route(shell, *ROUTES[0])
    report = fuzz(shell, "GET /root/{number} --seed 3 --examples 100")
    bundle = {k: v for k, v in report._repr_mimebundle_().items() if "widget" not in k}
    nb = nbformat.v4.new_notebook()
    sources = [f"%%route GET /root/<int:number>\n{root_source.strip()}", "%nbapi fuzz --seed 3"]
    nb.cells = [nbformat.v4.new_code_cell(s, id=f"c{i}") for i, s in enumerate(sources)]
    nb.cells[1].outputs = [nbformat.v4.new_output("execute_result", bundle, execution_count=2)]
    return nb


@pytest.mark.parametrize(("source", "passes"), [(FIXED_ROOT, True), (ROUTES[0][1], False)])
def test_export_keeps_findings_as_regression_tests(
    shell: Any, tmp_path: Path, source: str, passes: bool
) -> None:
    exported = export_notebook(_exported_notebook(shell, textwrap.dedent(source)))
    assert 'response = client.get("/root/-1")' in exported.test_py
    assert "assert response.status_code < 500, response.text  # was 500" in exported.test_py
    assert "schemathesis" not in exported.test_py
    write_export(exported, tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:nbval",
            "-o",
            "addopts=",
            "test_app.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode == 0) is passes, result.stdout + result.stderr


def test_export_asserts_the_status_of_other_findings(shell: Any) -> None:
    nb = nbformat.v4.new_notebook()
    data = {
        "version": 1,
        "findings": [
            {
                "operation": "GET /items/{item_id}",
                "kind": "status_code_conformance",
                "status_code": 404,
                "request": {"method": "GET", "url": "/items/0", "headers": [], "body": ""},
            },
            {
                "operation": "POST /items",
                "kind": "not_a_server_error",
                "status_code": 500,
                "request": {
                    "method": "POST",
                    "url": "/items",
                    "headers": [["Content-Type", "application/json"]],
                    "body": '{"name":"","price":-1.0}',
                },
            },
        ],
    }
    nb.cells = [
        nbformat.v4.new_code_cell(
            "%%route GET /items/<int:item_id>\ndef f(item_id):\n    return 1", id="a"
        ),
        nbformat.v4.new_code_cell("%nbapi fuzz", id="b"),
    ]
    nb.cells[1].outputs = [
        nbformat.v4.new_output(
            "execute_result", {"text/plain": "...", FUZZ_MIME: data}, execution_count=1
        )
    ]
    test_py = export_notebook(nb).test_py
    assert 'response = client.get("/items/0")\n    assert response.status_code == 404' in test_py
    assert 'client.post("/items", json={"name": "", "price": -1.0})' in test_py


def test_nothing_to_fuzz_is_one_line(shell: Any) -> None:
    with pytest.raises(
        UsageError, match=r"^there is no app to fuzz yet; run a %%route cell first$"
    ):
        fuzz(shell, "")
    shell.run_cell("from fastapi import FastAPI\napp = FastAPI()")
    with pytest.raises(UsageError, match=r"^the app has no operations in its OpenAPI yet"):
        fuzz(shell, "")


def test_path_parameter_with_converter(shell: Any) -> None:
    # A ":" in the path must not merge findings of different kinds on one operation.
    route(
        shell,
        "GET /files/<path:name>",
        """
        def read_file(name):
            if name.startswith("."):
                raise RuntimeError("hidden file")
            return {"name": name}
        """,
    )
    report = fuzz(shell, "--seed 0 --examples 100")
    assert [(f.operation, f.kind) for f in report] == [
        ("GET /files/{name}", "not_a_server_error"),
        ("GET /files/{name}", "status_code_conformance"),  # a 404 for a name with a "/"
    ]
    assert report[0].error == "RuntimeError: hidden file"
    assert report[0].http.startswith("%http GET /files/.")
    assert report[1].status_code == 404


def test_modules_need_neither_schemathesis_nor_ipython_to_import() -> None:
    # Schemathesis is an extra (nbapi[fuzz]); it is imported when a run starts.
    code = (
        "import sys, nbapi._fuzz, nbapi._findings, nbapi._export;"
        "print('schemathesis' in sys.modules, 'hypothesis' in sys.modules, 'IPython' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False False False", result.stderr


STATEFUL_SETUP = """
from fastapi import HTTPException
from pydantic import BaseModel

class Item(BaseModel):
    name: str

class Stored(Item):
    id: int

items = {}
by_id = {"item_id": "$response.body#/id"}
LINKS = {201: {"links": {
    "GetItem": {"operationId": "read_item", "parameters": by_id},
    "DeleteItem": {"operationId": "delete_item", "parameters": by_id},
}}}
"""


def test_stateful_follows_links(shell: Any) -> None:
    shell.run_cell(STATEFUL_SETUP)
    route(
        shell,
        "POST /items status_code=201, response_model=Stored, responses=LINKS",
        """
        def create_item(item: Item):
            items[len(items)] = Stored(id=len(items), name=item.name)
            return items[len(items) - 1]
        """,
    )
    route(
        shell,
        "GET /items/<int:item_id> operation_id='read_item', responses={404: {}}",
        """
        def read_item(item_id):
            if item_id not in items:
                raise HTTPException(404)
            return items[item_id]
        """,
    )
    route(
        shell,
        "DELETE /items/<int:item_id> operation_id='delete_item', status_code=204, responses={404: {}}",
        """
        def delete_item(item_id):
            if item_id not in items:
                raise HTTPException(404)  # the planted bug: found, but never deleted
        """,
    )
    assert fuzz(shell, "--seed 3 --examples 10").ok
    report = fuzz(shell, "--seed 3 --examples 10 --stateful")
    assert "use_after_free" in report.checks
    (found,) = [f for f in report if f.kind == "use_after_free"]
    assert found.operation == "GET /items/{item_id}"
    assert found.status_code == 200
    assert "was deleted with `DELETE /items/" in found.message


def test_stateful_without_links_says_so(shell: Any) -> None:
    route(shell, "GET /hello", "def hello():\n    return 1\n")
    report = fuzz(shell, "--seed 0 --examples 5 --stateful")
    assert report.errors == [
        "--stateful: the OpenAPI has no links to follow; add them to a response, "
        'e.g. responses={201: {"links": {...}}}'
    ]
    assert not report.ok
