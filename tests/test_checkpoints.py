"""Re-run warnings, ``%nbapi checkpoint``, ``%nbapi diff`` and ``%nbapi check`` in a real IPython shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from nbapi._checkpoints import Check
from nbapi._contract import Diff

SEARCH_OPTIONAL = "%%route GET /search\ndef search(q: str | None = None):\n    return q\n"
SEARCH_REQUIRED = "%%route GET /search\ndef search(q: str):\n    return q\n"


def cell(shell: Any, source: str, cell_id: str = "c1") -> None:
    result = shell.run_cell(source, cell_id=cell_id)
    result.raise_error()


def warnings_of(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("nbapi: ")]


def test_rerun_prints_one_line_per_breaking_change(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cell(shell, SEARCH_OPTIONAL)
    cell(shell, "%%route GET /other\ndef other():\n    return 1\n", "c2")
    assert warnings_of(capsys) == []
    cell(shell, SEARCH_REQUIRED.replace("q: str", "q: str, lang: str"))
    assert warnings_of(capsys) == [
        "nbapi: breaking change in GET /search: query parameter 'lang' added as required",
        "nbapi: breaking change in GET /search: query parameter 'q' is now required",
    ]
    cell(shell, SEARCH_OPTIONAL)  # back to optional: compatible, silent
    assert warnings_of(capsys) == []


def test_redefined_model_and_rerun(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell(
        "from pydantic import BaseModel\nclass Item(BaseModel):\n    name: str\n    price: float\n"
    )
    cell(
        shell,
        "%%route GET /items/<int:item_id>\ndef read(item_id) -> Item:\n    return Item(name='a', price=1)\n",
    )
    shell.run_cell("class Item(BaseModel):\n    name: str\n")
    assert warnings_of(capsys) == []  # the route still uses the old class until it is re-run
    cell(
        shell,
        "%%route GET /items/<int:item_id>\ndef read(item_id) -> Item:\n    return Item(name='a')\n",
    )
    assert warnings_of(capsys) == [
        "nbapi: breaking change in GET /items/{item_id}: 200 response property 'price' removed"
    ]


def test_moved_and_removed_routes(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cell(shell, "%%route GET /old\ndef b():\n    return 2\n")
    cell(shell, "%%route GET /new\ndef b():\n    return 2\n")
    assert warnings_of(capsys) == ["nbapi: breaking change in GET /old: operation removed"]
    shell.run_cell(
        "app.router.routes[:] = [r for r in app.router.routes if getattr(r, 'path', '') != '/new']"
    )
    assert warnings_of(capsys) == ["nbapi: breaking change in GET /new: operation removed"]


def test_breaking_changes_can_be_turned_off(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cell(shell, SEARCH_OPTIONAL)
    shell.run_line_magic("config", "NbAPI.breaking_changes = False")
    cell(shell, SEARCH_REQUIRED)
    assert warnings_of(capsys) == []
    shell.run_line_magic("config", "NbAPI.breaking_changes = True")
    cell(shell, SEARCH_OPTIONAL)
    cell(shell, SEARCH_REQUIRED)
    assert warnings_of(capsys) == [
        "nbapi: breaking change in GET /search: query parameter 'q' is now required"
    ]


def test_response_enum_policy(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    enum = "%%route GET /state\ndef state() -> Literal[{}]:\n    return 'a'\n"
    shell.run_cell("from typing import Literal")
    cell(shell, enum.format("'a'"))
    cell(shell, enum.format("'a', 'b'"))
    assert warnings_of(capsys) == [
        "nbapi: breaking change in GET /state: 200 response body may now be 'b'"
    ]
    shell.run_line_magic("config", "NbAPI.response_enum_added = 'compatible'")
    cell(shell, enum.format("'a', 'b', 'c'"))
    assert warnings_of(capsys) == []


def test_checkpoint_and_diff(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cell(shell, SEARCH_OPTIONAL)
    shell.run_line_magic("nbapi", "checkpoint v1")
    assert "checkpoint 'v1': 1 operation; %nbapi diff v1 lists changes" in capsys.readouterr().out
    cell(shell, SEARCH_REQUIRED)
    cell(shell, "%%route GET /health\ndef health():\n    return 'ok'\n", "c2")
    diff = shell.run_line_magic("nbapi", "diff v1")
    assert isinstance(diff, Diff)
    assert repr(diff).splitlines() == [
        "breaking change in GET /search: query parameter 'q' is now required [request-made-required]",
        "compatible change in GET /health: operation added [operation-added]",
        "2 changes since checkpoint 'v1', 1 breaking",
    ]
    assert not diff.ok
    assert [c.rule for c in diff.breaking] == ["request-made-required"]
    assert repr(shell.run_line_magic("nbapi", "diff")) == repr(diff)  # the last checkpoint
    shell.run_line_magic("nbapi", "checkpoint")
    assert "checkpoint 'cp2': 2 operations" in capsys.readouterr().out
    assert repr(shell.run_line_magic("nbapi", "diff")) == "no changes since checkpoint 'cp2'"


def test_diff_since_the_session_began(shell: Any) -> None:
    cell(shell, SEARCH_OPTIONAL)
    cell(shell, "%%route GET /old\ndef old():\n    return 1\n", "c2")
    cell(shell, SEARCH_REQUIRED)
    cell(shell, "%%route GET /new\ndef old():\n    return 1\n", "c2")
    assert repr(shell.run_line_magic("nbapi", "diff")).splitlines() == [
        "breaking change in GET /old: operation removed [operation-removed]",
        "breaking change in GET /search: query parameter 'q' is now required [request-made-required]",
        "2 changes since each operation's first version, 2 breaking",
    ]


def test_diff_against_a_file(shell: Any, tmp_path: Path) -> None:
    cell(shell, SEARCH_OPTIONAL)
    (tmp_path / "v1.json").write_text(json.dumps(shell.user_ns["app"].openapi()))
    cell(shell, SEARCH_REQUIRED)
    diff = shell.run_line_magic("nbapi", f"diff {tmp_path / 'v1.json'}")
    assert [c.line() for c in diff.changes] == [
        "breaking change in GET /search: query parameter 'q' is now required"
    ]


CONTRACT = {
    "openapi": "3.1.0",
    "info": {"title": "todo", "version": "1"},
    "paths": {
        "/todos": {
            "get": {
                "parameters": [{"name": "done", "in": "query", "schema": {"type": "boolean"}}],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Todo"},
                                }
                            }
                        },
                    }
                },
            },
        },
        "/todos/{todo_id}": {"delete": {"responses": {"204": {"description": "Deleted"}}}},
    },
    "components": {
        "schemas": {
            "Todo": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "title": {"type": "string"}},
                "required": ["id", "title"],
            },
        }
    },
}


def test_check_against_a_contract(shell: Any, tmp_path: Path) -> None:
    contract = tmp_path / "todo.json"
    contract.write_text(json.dumps(CONTRACT))
    shell.run_cell("from pydantic import BaseModel\nclass Todo(BaseModel):\n    id: int\n")
    cell(shell, "%%route GET /todos\ndef todos(done: bool) -> list[Todo]:\n    return []\n")
    check = shell.run_line_magic("nbapi", f"check {contract}")
    assert isinstance(check, Check)
    assert not check.ok
    assert repr(check).splitlines() == [
        "operation                problem                                   rule",
        "-----------------------  ----------------------------------------  -------------------------",
        "GET /todos               200 response property '[].title' removed  response-property-removed",
        "GET /todos               query parameter 'done' is now required    request-made-required",
        "DELETE /todos/{todo_id}  not implemented                           operation-removed",
        f"3 problems: the app does not implement {contract}",
    ]
    shell.run_cell("class Todo(BaseModel):\n    id: int\n    title: str\n    done: bool = False\n")
    cell(
        shell,
        "%%route GET /todos\ndef todos(done: bool | None = None) -> list[Todo]:\n    return []\n",
    )
    cell(
        shell,
        "%%route DELETE /todos/<int:todo_id> status_code=204\ndef delete(todo_id):\n    return None\n",
        "c2",
    )
    cell(shell, "%%route GET /stats\ndef stats():\n    return {}\n", "c3")
    check = shell.run_line_magic("nbapi", f"check {contract}")
    assert check.ok
    assert check.problems == []
    assert (
        repr(check)
        == f"the app implements {contract}: 2 operations, all compatible; 1 more not in the contract"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "diff nope",
            "no checkpoint 'nope' (checkpoints: none yet); record it with %nbapi checkpoint nope, or give an OpenAPI file (.json, .yaml)",
        ),
        (
            "diff a b",
            "%nbapi diff takes one checkpoint or file, got 'a b'; e.g. %nbapi diff v1, or %nbapi diff openapi.json",
        ),
        (
            "diff missing.yaml",
            "cannot read the OpenAPI file 'missing.yaml': No such file or directory; check the path",
        ),
        ("check", "%nbapi check takes one OpenAPI file, e.g. %nbapi check contracts/todo.json"),
        (
            "check missing.json",
            "cannot read the contract 'missing.json': No such file or directory; check the path",
        ),
        (
            "checkpoint a b",
            "%nbapi checkpoint takes one NAME, got 'a b'; e.g. %nbapi checkpoint v1",
        ),
    ],
    ids=[
        "unknown-checkpoint",
        "two-arguments",
        "missing-file",
        "check-no-file",
        "check-missing",
        "checkpoint-two",
    ],
)
def test_bad_input_is_one_line(shell: Any, line: str, message: str) -> None:
    cell(shell, SEARCH_OPTIONAL)
    routes = list(shell.user_ns["app"].router.routes)
    with pytest.raises(UsageError) as raised:
        shell.run_line_magic("nbapi", line)
    assert str(raised.value) == message
    assert shell.user_ns["app"].router.routes == routes


def test_not_openapi_file(shell: Any, tmp_path: Path) -> None:
    notes = tmp_path / "notes.json"
    notes.write_text('{"todo": 1}')
    with pytest.raises(
        UsageError,
        match=r"is not an OpenAPI document \(no 'openapi' or 'paths' key\); give the JSON",
    ):
        shell.run_line_magic("nbapi", f"check {notes}")


def test_a_failing_check_costs_one_line(
    shell: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbapi._openapi import Tracker

    cell(shell, SEARCH_OPTIONAL)

    def broken(*args: Any, **kwargs: Any) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(Tracker, "observe", broken)
    cell(shell, SEARCH_REQUIRED)
    assert warnings_of(capsys) == ["nbapi: the breaking-change check failed (RuntimeError: boom)"]
    monkeypatch.undo()
    r = shell.run_line_magic("http", "GET /search?q=x")
    assert r.json() == "x"  # the cell's other hooks ran: the app serves the new version
    cell(shell, SEARCH_OPTIONAL)
    assert warnings_of(capsys) == []
