"""The %nbapi command line: one grammar, one error style (nbapi/_commands.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from nbapi._commands import USAGES, Call, CommandError, parse, split
from nbapi._fuzz import FuzzOptions

ROUTE = "%%route GET /items/<int:item_id>\ndef read_item(item_id):\n    return {'id': item_id}\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", Call("status")),
        ("status", Call("status")),
        ("routes", Call("routes")),
        ("remove GET /items/{item_id}", Call("remove", {"words": ["GET", "/items/{item_id}"]})),
        ("serve", Call("serve", {"port": None, "host": None})),
        ("serve --port 8001 --host ::1", Call("serve", {"port": 8001, "host": "::1"})),
        ("serve -p 8001", Call("serve", {"port": 8001, "host": None})),
        ("restart --host 0.0.0.0", Call("restart", {"port": None, "host": "0.0.0.0"})),
        ("stop", Call("stop")),
        ("log", Call("log", {"full": False, "errors": False, "n": 20})),
        ("log --errors --full -n 5", Call("log", {"full": True, "errors": True, "n": 5})),
        ("explorer", Call("explorer")),
        ("try", Call("try")),
        ("try /items/42", Call("try", {"words": ["/items/42"]})),
        ("try GET /items/{item_id}", Call("try", {"words": ["GET", "/items/{item_id}"]})),
        ("export", Call("export", {"output": None, "force": False, "saved_outputs": False})),
        (
            "export shop.ipynb out --force --saved-outputs",
            Call(
                "export",
                {
                    "output": None,
                    "force": True,
                    "saved_outputs": True,
                    "words": ["shop.ipynb", "out"],
                },
            ),
        ),
        (
            "export shop.ipynb -o out",
            Call(
                "export",
                {
                    "output": Path("out"),
                    "force": False,
                    "saved_outputs": False,
                    "words": ["shop.ipynb"],
                },
            ),
        ),
        ("fuzz --help", Call("fuzz", {"show_help": True})),
        ("fuzz", Call("fuzz", {"options": FuzzOptions()})),
        ("checkpoint", Call("checkpoint")),
        ("checkpoint v1", Call("checkpoint", {"words": ["v1"]})),
        ("diff 'my api.json'", Call("diff", {"words": ["my api.json"]})),
        ("check contracts/todo.json", Call("check", {"words": ["contracts/todo.json"]})),
    ],
)
def test_a_line_parses_to_a_typed_call(line: str, expected: Call) -> None:
    assert parse(split(line)) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "serve --port x",
            "%nbapi serve: --port 'x' is not a port (1 to 65535); usage: " + USAGES["serve"],
        ),
        ("serve --port 0", "%nbapi serve: --port '0' is not a port (1 to 65535); usage: "),
        ("restart --port", "%nbapi restart: --port expected one argument; usage: "),
        ("serve --bogus", "%nbapi serve: unknown option '--bogus'; usage: " + USAGES["serve"]),
        ("serve 8001", "%nbapi serve: unknown argument '8001'; usage: " + USAGES["serve"]),
        ("serve --host ''", "--host '' is empty; use --host 127.0.0.1"),
        ("log -n many", "%nbapi log: -n 'many' is not a number; usage: " + USAGES["log"]),
        ("log --nope", "%nbapi log: unknown option '--nope'; usage: " + USAGES["log"]),
        ("stop now", "%nbapi stop takes no arguments, got 'now'"),
        ("status x", "%nbapi status takes no arguments, got 'x'"),
        ("routes x", "%nbapi routes takes no arguments, got 'x'"),
        ("explorer now", "%nbapi explorer takes no arguments, got 'now'; run %nbapi explorer"),
        ("try GET /a /b", "%nbapi try takes METHOD PATH, got 'GET /a /b'"),
        ("remove GET", "cannot read 'GET'; usage: %nbapi remove METHOD PATH"),
        ("export a.ipynb b c", "too many arguments ['a.ipynb', 'b', 'c']"),
        ("export --fast", "%nbapi export: unknown option '--fast'; usage: " + USAGES["export"]),
        ("export a.ipynb out -o other", "two directories, 'out' and -o 'other'; give one"),
        ("fuzz --fast", "unknown option '--fast'; usage: %nbapi fuzz [METHOD PATH]"),
        ("checkpoint a b", "%nbapi checkpoint takes one NAME, got 'a b'"),
        ("diff a b", "%nbapi diff takes one checkpoint or file, got 'a b'"),
        ("check", "%nbapi check takes one OpenAPI file"),
        (
            "serve 'unclosed",
            'cannot read "serve \'unclosed": No closing quotation; check its quotes',
        ),
        ("nope", "unknown %nbapi command 'nope'; use one of routes, remove, serve"),
    ],
)
def test_a_bad_line_is_one_usage_error_and_changes_nothing(
    shell: Any, line: str, message: str
) -> None:
    shell.run_cell(ROUTE).raise_error()
    app = shell.user_ns["app"]
    routes = list(app.router.routes)
    with pytest.raises(UsageError, match="^" + re.escape(message)) as caught:
        shell.run_line_magic("nbapi", line)
    assert len(str(caught.value).splitlines()) == 1
    assert shell.user_ns["app"] is app
    assert list(app.router.routes) == routes
    from nbapi._session import current_session

    assert current_session().server is None


def test_every_subcommand_has_a_usage_in_the_help(shell: Any) -> None:
    from nbapi._magics import NbAPIMagics

    help_text = NbAPIMagics.nbapi.__doc__ or ""
    for command in USAGES:
        assert re.search(rf"%nbapi (\w+ \| )*{command}\b", help_text), command


def test_command_errors_are_user_errors() -> None:
    with pytest.raises(ValueError, match="unknown %nbapi command"):
        parse(["nope"])
    assert issubclass(CommandError, ValueError)


def test_commands_run_their_features_through_the_shell(shell: Any) -> None:
    shell.run_cell(ROUTE).raise_error()
    routes = shell.run_line_magic("nbapi", "routes")
    assert "/items/{item_id}" in repr(routes)
    assert repr(shell.run_line_magic("nbapi", "status")).startswith("nbapi server: not started")
    assert repr(shell.run_line_magic("nbapi", "log")) == "nbapi log: no requests yet"
    assert "checks" in repr(shell.run_line_magic("nbapi", "fuzz --help"))
    removed = shell.run_line_magic("nbapi", "remove GET /items/{item_id}")
    assert "GET /items/{item_id}" in repr(removed)
    assert "/items/{item_id}" not in repr(shell.run_line_magic("nbapi", "routes"))
