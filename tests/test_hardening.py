"""Generated hostile and clumsy input: it works, or it is one line and changes nothing.

Each test draws inputs from the grammar of one surface (``%%route`` lines and cell
bodies, ``%http`` / ``%%http`` lines, headers and URLs, ``%nbapi`` arguments,
``%config NbAPI.*`` values, the ``nbapi`` command line), mutates them with garbage
(unicode, control characters, unbalanced brackets, huge sizes) and checks, in a real
IPython shell, the promise of README's "Bad input": the call works, or it raises
one ``UsageError`` whose message is one line, and the app's routes and
``/openapi.json`` are exactly as they were. Seeded (``derandomize``) and bounded,
so each test runs in seconds and finds the same cases every run; a case found
here becomes a named regression test in the test file of its module.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
import support
from fastapi import FastAPI
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

import nbapi.__main__ as cli

# A failing example with a huge argument would otherwise be reported as this warning.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")

SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one shell for all examples, on purpose
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ],
)

# -- garbage ---------------------------------------------------------------------------------
_NASTY = "()[]{}<>'\"\\,=:;/?#%&@ \t\x00\x01\x1b\x7f\r\n\u200b\u00e9\u2028\ufeff\U0001f600"
_LARGE = ["x" * 40_000, "(" * 500, "[" * 300 + "]" * 300, "\u00e9" * 20_000]


def garbage(exclude: str = "", large: bool = True) -> st.SearchStrategy[str]:
    """Short runs of nasty characters, any unicode, or (``large``) something huge."""
    nasty = "".join(ch for ch in _NASTY if ch not in exclude)
    characters = st.characters(blacklist_categories=("Cs",), blacklist_characters=exclude)
    kinds = [
        st.text(st.sampled_from(nasty), min_size=1, max_size=6),
        st.text(characters, min_size=1, max_size=6),
    ]
    if large:
        kinds.append(st.sampled_from([t for t in _LARGE if not set(t) & set(exclude)]))
    return st.one_of(kinds)


def mutated(
    base: st.SearchStrategy[str], exclude: str = "", large: bool = True
) -> st.SearchStrategy[str]:
    """``base`` as is, or with garbage inserted at some position."""

    def insert(text: str, junk: str, at: int) -> str:
        at %= len(text) + 1
        return text[:at] + junk + text[at:]

    junk = garbage(exclude, large)
    # Two parts in three as the grammar has it, so that enough cases get far enough.
    return st.one_of(base, base, st.builds(insert, base, junk, st.integers(0, 10_000)))


@pytest.fixture(name="free_port")
def free_port_fixture() -> int:
    return support.free_port()


# -- the invariant ---------------------------------------------------------------------------
def snapshot(shell: Any) -> tuple[list[int], str]:
    """The app's route objects and its whole /openapi.json, as bytes to compare."""
    app = shell.user_ns.get("app")
    if not isinstance(app, FastAPI):
        return [], repr(app)
    app.openapi_schema = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a GET,POST route's duplicate operation id
        schema = json.dumps(app.openapi(), sort_keys=True)
    return [id(route) for route in app.router.routes], schema


def works_or_one_line(shell: Any, action: Callable[[], Any]) -> str:
    """Run ``action``: "ok", or "refused" after checking the message and the app."""
    before = snapshot(shell)
    try:
        action()
    except UsageError as exc:
        message = str(exc)
        assert message.strip(), "an empty UsageError"
        assert len(message.splitlines()) == 1, message
        assert snapshot(shell) == before, f"the app changed although {message!r}"
        _event("refused in one line")
        return "refused"
    _event("worked")
    return "ok"


def _event(outcome: str) -> None:
    if currently_in_test_context():  # --hypothesis-show-statistics shows the mix
        event(outcome)


# -- %%route ---------------------------------------------------------------------------------
_SEGMENTS = st.one_of(
    st.from_regex(r"[a-z]{1,6}", fullmatch=True),
    st.sampled_from(
        ["{item_id}", "<int:item_id>", "<float:x>", ":name", "{p:path}", "<bad:x>", "{", "<>"]
    ),
)
_PATHS = st.lists(_SEGMENTS, max_size=4).map(lambda parts: "/" + "/".join(parts))
_KEYWORDS = st.lists(
    st.sampled_from(
        [
            "status_code=201",
            "tags=['a']",
            "summary='s'",
            "status_code='abc'",
            "response_class=int",
            "response_model=None",
            "responses={404: {}}",
            "bogus=1",
            "a=1), (2",
            "status_code=201), print('x'",
            "include_in_schema=False",
            "deprecated=True",
            "name=",
            "**kw",
            "1",
            "dependencies=[undefined]",
        ]
    ),
    max_size=2,
).map(", ".join)
_METHODS = st.sampled_from(["GET", "GET", "post", "PUT,PATCH", "GET,POST", "WS", "FETCH", "GET,WS"])
ROUTE_LINES = mutated(st.builds(lambda m, p, k: f"{m} {p} {k}", _METHODS, _PATHS, _KEYWORDS))

_PARAMS = st.lists(
    st.sampled_from(
        [
            *("item_id", "item_id: int", "q: str | None = None", "x: float", "name", "p"),
            *("*args", "**kw", "item_id: str", "body: dict", "websocket", "x: Undefined"),
        ]
    ),
    max_size=3,
    unique=True,
).map(", ".join)
_RETURNS = st.sampled_from(["{'ok': 1}", "item_id", "None", "1 / 0", "undefined_name"])
_DECORATORS = st.sampled_from(["", "@(lambda f: 3)\n", "@staticmethod\n", "@no_such_decorator\n"])
_PRELUDES = st.sampled_from(["", "x = 1\n", "raise ValueError('boom')\n", "import no_such_mod\n"])
CELL_BODIES = mutated(
    st.builds(
        lambda pre, deco, params, ret: f"{pre}{deco}def f({params}):\n    return {ret}\n",
        _PRELUDES,
        _DECORATORS,
        _PARAMS,
        _RETURNS,
    )
)


@SETTINGS
@given(line=ROUTE_LINES, body=CELL_BODIES)
def test_route_cells_work_or_are_one_line(shell: Any, line: str, body: str) -> None:
    works_or_one_line(shell, lambda: shell.run_cell_magic("route", line, body))


# -- %http and %%http ------------------------------------------------------------------------
ECHO = """
from fastapi import Request

async def echo(request: Request, rest: str):
    return {"path": request.url.path, "headers": dict(request.headers)}
"""
_URLS = mutated(
    st.builds(
        lambda base, tail: base + tail,
        st.sampled_from(["/echo/", "/echo/", "/", "//example.com/x", "/echo/é"]),
        st.sampled_from(["", "a", "?q=1", "a/b", "?q=%zz", "#frag", "/%00", "?a=[", "/../x"]),
    )
)
# Repeated entries weigh more: enough requests are valid to reach the app.
_FLAGS = st.sampled_from(["", "", "", "-v ", "-s ", "--bogus ", "-f ", "--verbose -v "])
_HTTP_METHODS = st.sampled_from(["GET", "GET", "post", "PUT", "FETCH", "G3T", ""])
_BODIES = mutated(
    st.sampled_from(["", "", "", '{"a": 1}', '{"a": 1}', "[1, 2", "{" * 50, "a=1&b=2", "x@no_file"])
)
HTTP_LINES = st.builds(
    lambda flags, method, url, body: f"{flags}{method} {url} {body}".rstrip(),
    _FLAGS,
    _HTTP_METHODS,
    _URLS,
    _BODIES,
)
_HEADER_NAMES = st.sampled_from(["X-Name", "Accept", "Content-Type", "X-A", "Bad Name", ""])
_HEADER_VALUES = mutated(st.sampled_from(["Jos\u00e9", "text/plain", "{v}", "a, b", ""]))
HEADER_BLOCKS = st.lists(
    st.builds(lambda name, value: f"{name}: {value}", _HEADER_NAMES, _HEADER_VALUES), max_size=4
).map("\n".join)


def _echo_route(shell: Any) -> None:
    shell.run_cell_magic("route", "GET,POST,PUT /echo/{rest:path}", ECHO)


@SETTINGS
@given(line=HTTP_LINES, value=garbage())
def test_http_lines_work_or_are_one_line(shell: Any, line: str, value: str) -> None:
    _echo_route(shell)
    shell.user_ns["v"] = value  # {v} in the line: the magic expands it, as IPython does
    works_or_one_line(shell, lambda: shell.run_line_magic("http", line))


@SETTINGS
@given(
    line=st.builds(lambda m, u: f"{m} {u}", _HTTP_METHODS, _URLS),
    headers=HEADER_BLOCKS,
    body=_BODIES,
    value=garbage(),
)
def test_http_cells_work_or_are_one_line(
    shell: Any, line: str, headers: str, body: str, value: str
) -> None:
    _echo_route(shell)
    shell.user_ns["v"] = value  # {v} in a header value: CR, LF, NUL arrive this way
    cell = f"{headers}\n\n{body}" if headers else body
    works_or_one_line(shell, lambda: shell.run_cell_magic("http", line, cell))


# -- %nbapi ----------------------------------------------------------------------------------
# Hosts are literals that fail without a DNS query, or loopback: nothing leaves the machine.
_HOSTS = ["127.0.0.1", "::1", "127.0.0.2", "::ffff:1.2.3.4", "203.0.113.1", "x\x00y", "''"]
_WORDS = ["--port", "0", "-1", "70000", "abc", "--errors", "--full", "GET", "/x", "'", '"']
_WORDS += ["--force", "now", "{item_id}", "a.ipynb", "out"]


def _nbapi_line(command: str, words: list[str], host: str | None) -> str:
    # A host goes in as one clean token: garbage never turns it into a name to look up.
    tail = [*words, "--host", host] if host is not None else words
    return " ".join([command, *tail])


NBAPI_LINES = st.builds(
    _nbapi_line,
    st.sampled_from(
        ["routes", "status", "log", "stop", "serve", "restart", "try", "export", "bogus", ""]
    ),
    st.lists(mutated(st.sampled_from(_WORDS), exclude="-="), max_size=3),
    st.one_of(st.none(), st.sampled_from(_HOSTS)),
)


@SETTINGS
@given(line=NBAPI_LINES)
def test_nbapi_arguments_work_or_are_one_line(
    shell: Any, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_port: int
) -> None:
    monkeypatch.chdir(tmp_path)  # %nbapi export writes relative to the working directory
    shell.run_line_magic("config", f"NbAPI.port = {free_port}")
    shell.run_cell_magic("route", "GET /x", "def x():\n    return 1\n")
    try:
        works_or_one_line(shell, lambda: shell.run_line_magic("nbapi", line))
    finally:
        shell.run_line_magic("nbapi", "stop")


def test_app_that_is_not_fastapi_is_one_line_for_every_subcommand(shell: Any) -> None:
    shell.user_ns["app"] = 3
    outcomes = {
        command: works_or_one_line(shell, lambda c=command: shell.run_line_magic("nbapi", c))
        for command in ["routes", "status", "log", "explorer", "try"]
    }
    assert outcomes["routes"] == "refused"
    assert shell.user_ns["app"] == 3


# -- %config NbAPI.* -------------------------------------------------------------------------
_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 8000, 65535, 65536, -1, True, None, 1.5, [], "8000"]),
    # Short strings: IPython expands a %config line with a quadratic $name pass.
    mutated(
        st.sampled_from(["127.0.0.1", "0.0.0.0", "http://x/{port}/", "/p/{port}/", ""]),
        large=False,
    ),
)


@SETTINGS
@given(option=st.sampled_from(["port", "host", "public_url", "autostart"]), value=_VALUES)
def test_config_values_are_taken_or_refused_in_one_line(
    shell: Any, option: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from nbapi._session import current_session

    before = getattr(current_session().config, option)
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        shell.run_line_magic("config", f"NbAPI.{option} = {value!r}")
    now = getattr(current_session().config, option)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    if errors:  # refused: one line, and the option kept its value
        assert len(errors) == 1
        assert len(errors[0].splitlines()) == 1, errors[0]
        assert now == before
    else:
        assert now == value or (option == "host" and now == str(value))
    # The refused value stays in the shell's config; loading again must not trip on it.
    shell.run_line_magic("reload_ext", "nbapi")
    shell.run_line_magic("config", "NbAPI.autostart = False")


# -- the nbapi command line ------------------------------------------------------------------
def _notebooks(directory: Path) -> None:
    def write(name: str, *sources: str) -> None:
        cells = [nbformat.v4.new_code_cell(source) for source in sources]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), directory / name)

    write("good.ipynb", "%%route GET /x\ndef x():\n    return 1", "%http GET /x")
    write("bad.ipynb", "%%route GET /x a=1), (2\ndef x():\n    return 1")
    write("bogus.ipynb", "%%route GET /x bogus=1\ndef x():\n    return 1")
    (directory / "plain.ipynb").write_text("not json")


# Output directories start with "out-" and lose "/": they stay inside tmp_path.
_OUT = mutated(st.just("out-"), exclude="/\x00").map(lambda t: "out-" + t.replace("/", "_"))
_EXPORT = st.builds(
    lambda nb, out, extra: ["export", nb, *out, *extra],
    mutated(st.sampled_from(["good.ipynb", "bad.ipynb", "bogus.ipynb", "plain.ipynb", "x.py"])),
    st.one_of(st.just([]), st.builds(lambda d: ["-o", d], _OUT), st.just(["-o", "good.ipynb"])),
    st.lists(st.sampled_from(["--force", "-o", "--bogus", "extra"]), max_size=2),
)
# `nbapi tutorial DIR` with an existing DIR replaces the process with JupyterLab:
# only directories that do not exist are generated.
_TUTORIAL = st.builds(
    lambda directory, port: ["tutorial", directory, *port],
    mutated(st.just("no-such-dir"), exclude="/.").map(lambda t: "no-such-" + t),
    st.one_of(st.just([]), st.builds(lambda p: ["--port", p], mutated(st.just("8888")))),
)
CLI_ARGV = st.one_of(
    _EXPORT,
    _TUTORIAL,
    st.lists(mutated(st.sampled_from(["export", "--bogus", "-o", "help", "--force"])), max_size=3),
)


@SETTINGS
@given(argv=CLI_ARGV)
def test_command_line_exits_2_with_one_line_or_works(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    if not (tmp_path / "good.ipynb").exists():
        _notebooks(tmp_path)

    def no_jupyter(directory: Path, port: int) -> Any:  # a guard, never reached by design
        raise AssertionError(f"would start JupyterLab in {directory}")

    monkeypatch.setattr(cli, "open_tutorial", no_jupyter)
    capsys.readouterr()
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # argparse: --help exits 0, a usage error 2
        status = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    event(f"exit {status}")
    assert "Traceback" not in out + err
    assert status in (0, 1, 2), (argv, status)
    if status == 2:
        assert len(err.strip().splitlines()) == 1, err
    if status == 1:  # the faithfulness report: a summary, then one line per cell
        assert err.startswith("cannot export"), err
