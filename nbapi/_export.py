"""Export a notebook to a plain FastAPI project: ``app.py``, ``test_app.py``, ``requirements.txt``.

The notebook is read as it was saved, cell by cell in notebook order (what
"Restart & Run All" runs):

- ``%%route METHOD PATH KW...`` cells become their code with the decorator nbapi
  applied (``@app.get(PATH, KW...)``, ``@app.api_route(PATH, methods=[...], KW...)``
  or ``@app.websocket(PATH, KW...)``) on the cell's last top-level function; Flask
  and Express paths are rewritten and converters become annotations, as the
  registry does. ``app = FastAPI()`` is written where nbapi created the app.
- Other code cells are kept, minus notebook-only lines: magics, shell commands,
  ``display(...)``/``print(...)`` calls, values shown as output, and statements
  that use IPython, ipywidgets or nbapi. ``%time stmt`` and ``%env A=b`` become
  Python; ``%%writefile`` files are written into the export.
- Cells that send requests (``%http``, ``%%http``, ``r = %http ...``, nbapi's
  client, ``TestClient``) and top-level ``assert``s become pytest tests that run
  in notebook order against the exported app, asserting the status and body the
  saved outputs show. State changes between requests (data, ``os.environ``,
  ``dependency_overrides``) run in the tests at the same point, not in app.py.
  app.py is the notebook's final app: a response saved before a later cell changed
  the app is replayed but not asserted; requests to an app the notebook later
  replaced (``app = FastAPI(...)`` again) are not exported.

Tags: ``nbapi-skip`` (or nbval's ``raises-exception``) leaves a cell out;
``nbapi-export`` puts a cell into app.py whole.

A notebook that cannot be exported faithfully raises :class:`ExportError` naming
each cell (its index in the notebook, from 0, and first line) and the reason;
nothing is written. Pure: no IPython import.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ._client import (
    HttpCall,
    RequestError,
    form_file,
    form_items,
    parse_http_cell,
    parse_http_line,
)
from ._errors import UserError
from ._spec import RouteSpec, SpecError, keyword_names, parse_route_line

SKIP_TAGS = frozenset({"nbapi-skip", "raises-exception"})
"""Cells with one of these tags are left out (``raises-exception`` is nbval's tag for a
cell that is meant to fail)."""
FORCE_TAG = "nbapi-export"
"""A cell with this tag goes into app.py whole, even lines nbapi would leave out."""

NOTEBOOK_MODULES = frozenset(
    {"IPython", "ipywidgets", "ipykernel", "nbapi", "nbformat", "nbclient", "jupyter_client"}
)
NOTEBOOK_NAMES = frozenset(
    {"get_ipython", "display", "In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_ih", "_oh"}
    | {"_dh", "exit", "quit"}
)
MODULE_NAMES = frozenset({"__file__", "__name__", "__doc__", "__builtins__", "__annotations__"})
BUILTIN_NAMES = frozenset(dir(builtins)) | MODULE_NAMES
DISPLAY_CALLS = frozenset({"display", "print", "pprint", "Markdown", "HTML", "JSON", "Image"})

# Line magics with no effect on the app: left out of app.py and the tests.
_NOTEBOOK_ONLY_MAGICS = """
load_ext reload_ext unload_ext config nbapi matplotlib autoreload aimport pip conda who whos
who_ls lsmagic magic timeit history hist xmode precision pprint pinfo pinfo2 psearch psource
pdef pdoc pfile page ls pwd debug pdb tb colors doctest_mode notebook connect_info qtconsole
autoawait automagic autocall prun
"""
NOTEBOOK_ONLY_MAGICS = frozenset(_NOTEBOOK_ONLY_MAGICS.split())
# Cell magics whose body is plain Python that runs once.
PYTHON_CELL_MAGICS = frozenset({"time", "capture"})
# Cell magics that only show something in the notebook.
DISPLAY_CELL_MAGICS = frozenset(
    {"html", "HTML", "javascript", "js", "markdown", "latex", "svg", "timeit", "prun"}
)

_MAGIC_LINE = re.compile(
    r"^(?P<indent>[ \t]*)"
    r"(?:(?P<target>[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*)[ \t]*=[ \t]*)?"
    r"(?P<esc>%(?!%)|!!?)(?P<rest>.*)$"
)
_HELP_LINE = re.compile(r"^[ \t]*\??[A-Za-z_][\w.]*\?\??[ \t]*$")
_PLACEHOLDER = "_nbapi_magic_"
_STATUS_LINE = re.compile(r"^HTTP (\d{3})\b")
_TRACEBACK = "Traceback (most recent call last):\n"
_BYTES_VIEW = re.compile(r"^<(\d+) bytes of .*>$")
_TRUNCATED = re.compile(r"\n\.\.\. \(\d+ more characters\)$")
_APP_EXPR = re.compile(r"\b(?:nbapi\.)?get_app\(\)")
_CLIENT_EXPR = re.compile(r"\bnbapi\.get_client\(\)|\bnbapi\.client\b|(?<![.\w])get_client\(\)")


class ExportError(UserError):
    """A notebook that cannot be exported faithfully; ``problems`` has one line per cell."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)

    def report(self) -> str:
        """The one-line summary, then one line per cell."""
        return "\n".join([str(self), *(f"  {p}" for p in self.problems)])


@dataclass(frozen=True)
class Problem:
    """Why one cell cannot be exported."""

    index: int
    first_line: str
    reason: str
    number: int = 0  # the cell's In[N] as Jupyter shows it (0: unknown, show the index)

    @property
    def label(self) -> str:
        return f"In[{self.number}]" if self.number else str(self.index)

    def __str__(self) -> str:
        return f"cell {self.label} ({self.first_line!r}): {self.reason}"


@dataclass
class Magic:
    """A magic or shell line found in a cell."""

    line: int  # 1-based line in the cell source
    escape: str  # "%", "!" or "?"
    name: str
    args: str
    target: str | None
    indent: str


@dataclass
class Request:
    """An ``%http`` request and what the notebook got."""

    call: HttpCall
    raw: str
    expected: str | None = None  # the saved text view, when the notebook showed it


@dataclass
class Exported:
    """What an export writes, before it is written."""

    app_py: str
    test_py: str
    requirements: str
    files: dict[str, str] = field(default_factory=dict)
    routes: int = 0
    tests: int = 0
    last_app_cell: int = 0  # the last cell that put code other than imports in app.py
    notes: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, str]:
        return {
            "app.py": self.app_py,
            "test_app.py": self.test_py,
            "requirements.txt": self.requirements,
            **self.files,
        }


# -- reading cells -------------------------------------------------------------------
def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:60]
    return ""


def _mask(source: str, skip: frozenset[int] = frozenset()) -> tuple[str, dict[int, Magic]]:
    """Replace magic, shell and help lines by placeholder calls with the same line numbers."""
    lines = source.splitlines()
    magics: dict[int, Magic] = {}
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        number = index + 1
        match = _MAGIC_LINE.match(line)
        if number in skip or (match is None and not _HELP_LINE.match(line)):
            out.append(line)
            index += 1
            continue
        full = line
        extra = 0
        while full.endswith("\\") and index + 1 + extra < len(lines):
            extra += 1
            full = full[:-1] + " " + lines[index + extra].strip()
        if match is None:  # `name?` help
            indent = line[: len(line) - len(line.lstrip())]
            magics[number] = Magic(number, "?", "", "", None, indent)
            out.append(f"{indent}{_PLACEHOLDER}()")
        else:
            match = _MAGIC_LINE.match(full)
            assert match is not None
            rest = match.group("rest")
            esc = match.group("esc")
            name, _, args = rest.partition(" ") if esc == "%" else ("", "", rest)
            magic = Magic(number, esc[0], name, args.strip(), match.group("target"), "")
            magic.indent = match.group("indent")
            magics[number] = magic
            assign = f"{magic.target} = " if magic.target else ""
            out.append(f"{magic.indent}{assign}{_PLACEHOLDER}()")
        out.extend([""] * extra)
        index += 1 + extra
    return "\n".join(out), magics


def _is_placeholder(node: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == _PLACEHOLDER
        and not node.args
    )


def _parse(source: str) -> tuple[ast.Module, dict[int, Magic], str]:
    """Parse a cell whose lines may be magics; raise SyntaxError as Python would."""
    masked, magics = _mask(source)
    tree = ast.parse(masked)
    real = {
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, (ast.Expr, ast.Assign)) and _is_placeholder(node.value)
    }
    fake = frozenset(set(magics) - real)
    if fake:  # a magic-looking line inside a string: keep it as written
        masked, magics = _mask(source, fake)
        tree = ast.parse(masked)
    return tree, magics, masked


class _Names(ast.NodeVisitor):
    """Names a statement reads now, reads later (in function bodies) and binds."""

    def __init__(self) -> None:
        self.now: set[str] = set()
        self.later: set[str] = set()
        self.inner: set[str] = set()  # bound inside functions, comprehensions, classes
        self.depth = 0

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            (self.later if self.depth else self.now).add(node.id)
        else:
            self.inner.add(node.id)

    def visit_arg(self, node: ast.arg) -> None:
        self.inner.add(node.arg)
        if node.annotation is not None:
            self.visit(node.annotation)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        if not isinstance(node, ast.Lambda):
            for decorator in node.decorator_list:
                self.visit(decorator)
            if node.returns is not None:
                self.visit(node.returns)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        arguments = node.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            self.visit_arg(arg)
        for extra in (arguments.vararg, arguments.kwarg):
            if extra is not None:
                self.visit_arg(extra)
        if not isinstance(node, ast.Lambda):
            self.inner.add(node.name)
        self.depth += 1
        for child in node.body if isinstance(node.body, list) else [node.body]:
            self.visit(child)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.inner.add(node.name)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            self.inner.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import

    # Bindings that are not ast.Name stores: `except E as e`, and match captures
    # (`case {"a": a, **rest}`, `case [first, *others]`, `case Point() as p`).
    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.inner.add(node.name)
        self.generic_visit(node)

    def _capture(self, node: ast.MatchAs | ast.MatchStar | ast.MatchMapping) -> None:
        name = node.rest if isinstance(node, ast.MatchMapping) else node.name
        if name:
            self.inner.add(name)
        self.generic_visit(node)

    visit_MatchAs = visit_MatchStar = visit_MatchMapping = _capture


def bound_names(statement: ast.stmt) -> set[str]:
    """Module-level names a top-level statement binds."""
    names: set[str] = set()
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(statement.name)
        for node in ast.walk(statement):
            if isinstance(node, ast.Global):
                names.update(node.names)
        return names
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in statement.names if a.name != "*"}
    for node in _walk_scope(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def _walk_scope(statement: ast.AST) -> Iterable[ast.AST]:
    """``ast.walk`` that does not enter nested scopes (their names are not the module's)."""
    todo: list[ast.AST] = [statement]
    while todo:
        node = todo.pop()
        yield node
        if node is statement or not isinstance(node, _SCOPES):
            todo.extend(ast.iter_child_nodes(node))


def used_names(statement: ast.AST) -> tuple[set[str], set[str]]:
    """(names read when the statement runs, names read later by the functions it defines)."""
    scan = _Names()
    scan.visit(statement)
    inner = scan.inner - bound_names(statement) if isinstance(statement, ast.stmt) else scan.inner
    return scan.now - inner, scan.later - scan.inner


def _imported_modules(statement: ast.stmt) -> dict[str, str]:
    """Names an import binds -> the top-level module they come from."""
    if isinstance(statement, ast.Import):
        return {(a.asname or a.name).split(".")[0]: a.name.split(".")[0] for a in statement.names}
    if isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
        root = statement.module.split(".")[0]
        return {a.asname or a.name: root for a in statement.names}
    return {}


def py(value: Any, indent: int = 0, width: int = 88, start: int | None = None) -> str:
    """A Python literal for JSON-like data, double-quoted and wrapped as black would.

    ``indent`` is the indentation of the line the literal is on; ``start`` the column
    where it begins (default: ``indent``).
    """
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            head = f"{py(key)}: "
            items.append(head + py(item, indent + 4, width, indent + 4 + len(head)))
        opening, closing = "{", "}"
    elif isinstance(value, (list, tuple)):
        items = [py(v, indent + 4, width) for v in value]
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        if isinstance(value, tuple) and len(value) == 1:
            items[0] += ","
    else:
        return repr(value)
    flat = opening + ", ".join(items) + closing
    if (indent if start is None else start) + len(flat) + 1 <= width and "\n" not in flat:
        return flat
    pad = " " * (indent + 4)
    return opening + "\n" + "".join(f"{pad}{item},\n" for item in items) + " " * indent + closing


# -- %http requests and their saved output ---------------------------------------------
def _expand(text: str, known: set[str]) -> tuple[str, bool]:
    """IPython's ``{expr}`` expansion of a magic line, as an f-string when it applies.

    IPython formats the whole line or nothing: any field that is not an expression
    over names the notebook defines (a JSON body, say) leaves the line as written.
    """
    fields = re.findall(r"(?<!\{)\{([^{}]*)\}(?!\})", text)
    if not fields:
        return text, False
    for expr in fields:
        try:
            tree = ast.parse(expr.strip(), mode="eval")
        except SyntaxError:
            return text, False
        if ":" in expr or "!" in expr:
            return text, False
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        if not names or not names <= known | BUILTIN_NAMES:
            return text, False
    return text, True


def _literal(text: str, fstring: bool) -> str:
    if not fstring:
        return py(text)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'f"{escaped}"'


def request_code(request: Request, known: set[str], base: Path | None) -> str:
    """``client.get("/items/1", ...)`` for a request (wrapped when long, as black would)."""
    call = request.call
    _, line_f = _expand(request.raw, known)  # IPython expands the whole magic line, or none
    url = _literal(call.url, line_f)
    headers = []
    for name, header in call.headers:
        expanded, is_f = _expand(header, known)
        # Non-ASCII text goes as UTF-8 bytes, as %http sends it (httpx would refuse str).
        encode = "" if expanded.isascii() else ".encode()"
        headers.append(f"({py(name)}, {_literal(expanded, is_f)}{encode})")
    body = call.body.strip()
    names = {name.lower() for name, _ in call.headers}
    literal = ""  # the keyword whose value is data: rendered for one line or for several
    value: Any = None
    files: list[str] = []
    content = ""
    if call.form:
        data, files = _form(body, base, line_f)
        if data:
            fields: dict[str, Any] = {}
            for key, item in data:
                fields.setdefault(key, []).append(item)
            literal, value = "data", {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
    elif body and "content-type" in names:
        content = f"content={body.encode()!r}"
    elif body:
        literal, value = "json", json.loads(body)
    method = call.method.lower()
    simple = method in {"get", "head", "options", "delete"} and not (literal or files or content)
    if simple or method in {"post", "put", "patch"}:
        opening, first = f"client.{method}(", [url]
    else:
        opening, first = "client.request(", [py(call.method), url]

    def arguments(indent: int, start: int) -> list[str]:
        parts = list(first)
        if headers:
            parts.append(f"headers=[{', '.join(headers)}]")
        if literal:
            parts.append(f"{literal}={py(value, indent, 84, start + len(literal) + 1)}")
        if files:
            parts.append(f"files=[{', '.join(files)}]")
        if content:
            parts.append(content)
        return parts

    # "response = " and the test function's indentation come before the call.
    one_line = opening + ", ".join(arguments(0, len("response = ") + len(opening))) + ")"
    if len("response = ") + len(one_line) <= 84 and "\n" not in one_line:
        return one_line
    return opening + "\n" + "".join(f"    {part},\n" for part in arguments(4, 4)) + ")"


def _form(body: str, base: Path | None, expand: bool) -> tuple[list[tuple[str, str]], list[str]]:
    """Form fields, and file fields as source: ``upload(...)`` reads them when the test runs."""
    data: list[tuple[str, str]] = []
    files: list[str] = []
    for name, value, is_file in form_items(body):
        if not is_file:
            data.append((name, value))
        elif expand and "{" in value:
            files.append(f"({py(name)}, upload({_literal(value, True)}))")
        else:
            # A file next to the notebook is not in the export: its bytes go in the test.
            path = form_file(name, value, base)
            files.append(f"({py(name)}, ({py(path.name)}, {path.read_bytes()!r}))")
    return data, files


def _table_rows(text: str) -> list[tuple[str, str, str]] | None:
    """Parse nbapi's 422 table (location, message, input) back into rows."""
    lines = text.split("\n")
    if len(lines) < 2 or lines[0].split() != ["location", "message", "input"]:
        return None
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    if len(spans) != 3:
        return None
    rows = []
    for line in lines[2:]:
        cells = [line[start : spans[i + 1][0]].rstrip() for i, (start, _) in enumerate(spans[:-1])]
        cells.append(line[spans[-1][0] :].rstrip())
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def expectation(view: str, verbose: bool) -> list[str] | None:
    """Assertions (as source lines on ``response``) for a saved ``%http`` text view."""
    lines = view.split("\n")
    status = _STATUS_LINE.match(lines[0])
    if status is None:
        return None
    code = int(status.group(1))
    asserts = [f"assert response.status_code == {code}, response.text"]
    rest = lines[1:]
    if verbose:
        while rest and rest[0].strip():
            rest = rest[1:]
    if not rest:
        asserts.append('assert response.content == b""')
        return asserts
    body = "\n".join(rest[1:])
    # %http shows what the app raised below the body (also after a 2xx, when a background
    # task failed): not part of the body.
    body = ("\n\n" + body).split(f"\n\n{_TRACEBACK}", 1)[0][2:]
    rows = _table_rows(body) if code == 422 else None
    if rows is not None:
        asserts.append(f"assert validation_rows(response) == {py(rows, 0, 84, 33)}")
        return asserts
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    else:
        if json.dumps(payload, indent=2, ensure_ascii=False) == body:
            asserts.append(f"assert response.json() == {py(payload, 0, 84, 26)}")
            return asserts
    size = _BYTES_VIEW.match(body)
    if size is not None:
        asserts.append(f"assert len(response.content) == {size.group(1)}")
    elif _TRUNCATED.search(body):
        shown = _TRUNCATED.sub("", body)
        asserts.append(f"assert response.text.startswith({py(shown)})")
    else:
        asserts.append(f"assert response.text == {py(body)}")
    return asserts


def _usage_error(outputs: Any) -> str | None:
    """The message of a ``UsageError`` the cell's saved output shows (IPython prints it
    on stderr, not as an error output), or None."""
    for output in outputs or []:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            for line in text.splitlines():
                if line.startswith("UsageError: "):
                    return line[len("UsageError: ") :].strip()[:200]
    return None


def _saved_result(cell: Any) -> tuple[str | None, str | None]:
    """(text/plain of the cell's execute_result, one line of its error) from saved outputs."""
    result = error = None
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "execute_result":
            text = output.get("data", {}).get("text/plain")
            result = "".join(text) if isinstance(text, list) else text
        elif kind == "error":
            error = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
            error = error.splitlines()[0] if error else "an error"
    return result, error


# -- the export ---------------------------------------------------------------------------
@dataclass
class _Cell:
    index: int
    source: str
    tags: set[str]
    outputs: Any
    number: int = 0  # In[N]: its execution count, else its place in a Restart & Run All

    @property
    def first(self) -> str:
        return _first_line(self.source)


class _Exporter:
    def __init__(self, name: str, base: Path | None) -> None:
        self.name = name
        self.base = base
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.app_chunks: list[str] = []
        self.test_chunks: list[_TestChunk] = []
        self.app_defined: set[str] = set()  # module-level names app.py binds, so far
        self.import_names: dict[str, str] = {}  # name -> import statement source
        self.later: list[tuple[_Cell, set[str]]] = []  # names function bodies read
        self.notebook_only: set[str] = set(NOTEBOOK_NAMES)
        self.client_names: set[str] = set()
        self.test_defined: set[str] = set()
        self.app_bindings: list[int] = []  # chunk index after which `app` was (re)bound
        self.files: dict[str, str] = {}
        self.routes = 0
        self.reset_openapi = False
        self.current = 0
        self.last_app_cell = 0
        self.live_globals: set[str] = set()  # module names app functions rebind
        self.app_reads: dict[int, set[str]] = {}  # cell -> names its app code reads (estimate)
        self.changes = 0  # app statements that change existing state (not new names)
        self.route_changes = 0  # statements that add routes
        self.tests_written = 0
        self.needs_os = False
        self.uses_validation_rows = False
        self.uses_asyncio = False
        self.uses_status_line = False
        self.response_names: set[str] = set()  # bound to what %http returned
        self.response_calls: dict[str, HttpCall] = {}

    def problem(self, cell: _Cell, reason: str) -> None:
        self.problems.append(Problem(cell.index, cell.first, reason, cell.number))

    # -- per cell ----------------------------------------------------------------
    def cell(self, cell: _Cell) -> None:
        self.current = cell.index
        if cell.tags & SKIP_TAGS:
            return
        _, error = _saved_result({"outputs": cell.outputs})
        if error is not None and not cell.source.lstrip().startswith("%%"):
            try:
                _parse(cell.source)
            except SyntaxError as exc:
                self.problem(cell, f"syntax error at line {exc.lineno or 0}: {exc.msg}")
                return
        if error is not None and FORCE_TAG not in cell.tags:
            self.problem(
                cell,
                f"its saved output is an error ({error}); fix the cell, or tag it "
                "raises-exception or nbapi-skip",
            )
            return
        lines = cell.source.lstrip("\n").splitlines()
        if lines and lines[0].startswith("%%"):
            magic, _, line = lines[0][2:].partition(" ")
            body = "\n".join(lines[1:])
            self.cell_magic(cell, magic.strip(), line.strip(), body)
            return
        self.code(cell, cell.source)
        self.fuzz_findings(cell)

    def cell_magic(self, cell: _Cell, magic: str, line: str, body: str) -> None:
        if magic == "route":
            self.route(cell, line, body)
        elif magic == "http":
            try:
                call = parse_http_cell(line, body)
                if (
                    call.body
                    and not call.form
                    and "content-type" not in {n.lower() for n, _ in call.headers}
                ):
                    json.loads(call.body)
            except (RequestError, ValueError) as exc:
                self.problem(cell, f"the %%http cell is not a valid request: {exc}")
                return
            result, _ = _saved_result({"outputs": cell.outputs})
            request = Request(call, f"%%http {line}", result)
            self.test(cell, [f"response = {self.request(cell, request)}"], request)
        elif magic in PYTHON_CELL_MAGICS:
            self.code(cell, body)
        elif magic in DISPLAY_CELL_MAGICS:
            return
        elif magic == "writefile":
            self.writefile(cell, line, body)
        else:
            self.problem(
                cell,
                f"%%{magic} has no plain-Python equivalent in app.py; "
                "tag the cell nbapi-skip if the app does not need it",
            )

    def writefile(self, cell: _Cell, line: str, body: str) -> None:
        words = shlex.split(line)
        append = bool(words) and words[0] in {"-a", "--append"}
        names = [w for w in words if not w.startswith("-")]
        if len(names) != 1:
            self.problem(cell, f"cannot read %%writefile {line!r}; give one file name")
            return
        path = Path(names[0])
        if path.is_absolute() or ".." in path.parts or path.name in {"app.py", "test_app.py"}:
            self.problem(
                cell,
                f"%%writefile {names[0]!r} writes outside the export (or over app.py); "
                "write a relative path, or tag the cell nbapi-skip",
            )
            return
        key = path.as_posix()
        text = body if body.endswith("\n") else body + "\n"
        self.files[key] = self.files.get(key, "") + text if append else text

    def route(self, cell: _Cell, line: str, body: str) -> None:
        from ._registry import RouteError, check_keyword_names  # imports FastAPI

        try:
            spec = parse_route_line(line)
            # What the kernel refuses before it runs anything: app.py must import.
            check_keyword_names(spec, dict.fromkeys(keyword_names(spec.keywords)))
        except (SpecError, RouteError) as exc:
            self.problem(cell, f"bad %%route line: {exc}")
            return
        refusal = _usage_error(cell.outputs)
        if refusal is not None:
            self.problem(cell, f"the kernel refused it ({refusal}); fix it and run it again")
            return
        try:
            tree, _, _ = _parse(body)
        except SyntaxError as exc:
            self.problem(cell, f"syntax error at line {(exc.lineno or 0) + 1}: {exc.msg}")
            return
        functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not functions:
            self.problem(cell, f"the %%route {spec.describe()} cell defines no function")
            return
        function = functions[-1]
        lines = body.splitlines()
        try:
            annotate(lines, function, spec)
        except SpecError as exc:
            self.problem(cell, str(exc))
            return
        self.ensure_app(cell)
        lines.insert(_first_lineno(function) - 1, route_decorator(spec))
        self.routes += 1
        self.code(cell, "\n".join(lines))

    def ensure_app(self, cell: _Cell) -> None:
        """nbapi binds ``app = FastAPI()`` when a route or request needs one and none exists."""
        if "app" in self.app_defined:
            return
        chunk = "from fastapi import FastAPI\n\napp = FastAPI()"
        if "FastAPI" in self.app_defined:
            chunk = "app = FastAPI()"
        self.app_chunks.append(f"# nbapi created the app here (cell In[{cell.number}])\n{chunk}")
        self.app_defined |= {"app", "FastAPI"}
        self.app_bindings.append(len(self.test_chunks))

    def request(self, cell: _Cell, request: Request) -> str:
        self.ensure_app(cell)
        known = self.app_defined | self.test_defined
        try:
            return request_code(request, known, self.base)
        except (RequestError, ValueError) as exc:
            self.problem(cell, f"cannot turn {request.raw!r} into a test: {exc}")
            return "None"

    def fuzz_findings(self, cell: _Cell) -> None:
        """Each ``%nbapi fuzz`` finding in the cell's saved output becomes a regression test."""
        from ._findings import saved_findings

        for call, status in saved_findings(cell.outputs):
            request = Request(call, f"%http {call.method} {call.url}")
            code = [f"response = {self.request(cell, request)}"]
            if status >= 500:  # the server error the fuzzer found stays fixed
                code.append(f"assert response.status_code < 500, response.text  # was {status}")
            self.test(cell, code, request)
            if status < 500:  # the status it got, unless later cells changed the app
                self.test_chunks[-1].expect = [f"assert response.status_code == {status}"]

    # -- plain code -------------------------------------------------------------------
    def code(self, cell: _Cell, source: str) -> None:
        if _CLIENT_EXPR.search(source):
            self.client_names.add("client")
        source = _CLIENT_EXPR.sub("client", _APP_EXPR.sub("app", source))
        if _APP_EXPR.search(cell.source):
            self.ensure_app(cell)
        try:
            tree, magics, masked = _parse(source)
        except SyntaxError as exc:
            self.problem(cell, f"syntax error at line {exc.lineno or 0}: {exc.msg}")
            return
        lines = masked.split("\n")
        forced = FORCE_TAG in cell.tags
        for magic in magics.values():
            if not self.magic_ok(cell, magic):
                return
        http = {n for n, m in magics.items() if m.escape == "%" and m.name == "http"}
        statements = tree.body
        is_async = any(_top_level_await(s) for s in statements)
        is_test = not forced and (is_async or any(self.is_request(s, http) for s in statements))
        shown = _saved_result({"outputs": cell.outputs})[0] is not None
        app_parts: list[str] = []
        test_parts: list[str] = []
        checks: list[str] = []
        last_request: Request | None = None
        previous_end = 0
        for position, statement in enumerate(statements):
            text = _segment(lines, statement, previous_end)
            previous_end = end_line = statement.end_lineno or statement.lineno
            is_last = position == len(statements) - 1
            if self.is_magic(statement):
                magic = magics[statement.lineno]
                if statement.lineno in http and not forced:
                    code, request = self.http_statement(cell, magic, is_last)
                    if is_test:
                        test_parts.extend(code)
                        last_request = request or last_request
                    else:
                        self.test(cell, code, request)
                    continue
                plain = self.plain_magic(magic)
                if plain is None:
                    continue
                text = plain
                statement = ast.parse(plain.strip()).body[0]
            if _top_level_await(statement) and not is_test:
                self.problem(
                    cell, "top-level await runs only in a notebook; move it into a function"
                )
                continue
            if is_test and self.test_side(statement):
                modules = set(_imported_modules(statement).values())
                if modules & NOTEBOOK_MODULES:
                    self.notebook_only |= bound_names(statement) - {"nbapi"}
                elif shown and is_last and self.shown_response(statement):
                    # `r` at the end of the cell: the notebook showed that response.
                    assert isinstance(statement, ast.Expr)
                    assert isinstance(statement.value, ast.Name)
                    name = statement.value.id
                    result, _ = _saved_result({"outputs": cell.outputs})
                    call = self.response_calls[name]
                    last_request = Request(call, f"{name} (%http {call.url})", result)
                    test_parts.append(f"response = {name}")
                elif not self.client_assignment(statement):
                    test_parts.append(_code_text(text, magics, end_line, self))
                self.test_defined |= bound_names(statement)
                continue
            if not forced and self.notebook_only_statement(cell, statement, is_last and shown):
                continue
            if not forced and isinstance(statement, ast.Assert):
                checks.append(text)
                continue
            if not forced and self.test_chunks and self.state_change(statement):
                # Between requests, like the notebook; at import it would change what
                # the earlier requests saw (and a production app has no such line).
                checks.append(_code_text(text, magics, end_line, self))
                continue
            if self.app_statement(cell, statement):
                app_parts.append(_code_text(text, magics, end_line, self))
        if app_parts:
            self.app_chunks.append("\n".join(app_parts).strip("\n"))
        if test_parts:
            self.test(cell, test_parts, last_request, is_async)
        if checks:
            self.test(cell, checks, None)

    def is_magic(self, statement: ast.stmt) -> bool:
        return isinstance(statement, (ast.Expr, ast.Assign)) and _is_placeholder(statement.value)

    def magic_ok(self, cell: _Cell, magic: Magic) -> bool:
        targets = set(re.split(r"\s*,\s*", magic.target)) if magic.target else set()
        if magic.escape in {"?", "!"} or magic.name in NOTEBOOK_ONLY_MAGICS:
            self.notebook_only |= targets
            return True
        if magic.name in {"http", "time", "env"}:
            return True
        self.problem(
            cell,
            f"%{magic.name} has no plain-Python equivalent in app.py; "
            "replace it with Python or tag the cell nbapi-skip",
        )
        return False

    def is_request(self, statement: ast.stmt, http: set[int]) -> bool:
        if self.is_magic(statement):
            return statement.lineno in http
        return self.uses_client(statement) or bool(self.reads(statement) & self.test_defined)

    def uses_client(self, statement: ast.AST) -> bool:
        names = self.client_names | {"TestClient"}
        return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(statement))

    def shown_response(self, statement: ast.stmt) -> bool:
        return (
            isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Name)
            and statement.value.id in self.response_calls
        )

    def client_assignment(self, statement: ast.stmt) -> bool:
        """``client = nbapi.get_client()`` (now ``client = client``) or ``TestClient(app)``:
        the test module has its own client; the name becomes an alias of it."""
        if not isinstance(statement, ast.Assign):
            return False
        value = statement.value
        is_client = (isinstance(value, ast.Name) and value.id in self.client_names) or (
            isinstance(value, ast.Call) and _callee(value) == "TestClient"
        )
        if is_client and all(isinstance(t, ast.Name) for t in statement.targets):
            self.client_names |= bound_names(statement)
            return True
        return False

    def reads(self, statement: ast.AST) -> set[str]:
        now, later = used_names(statement)
        return now | later

    def test_side(self, statement: ast.stmt) -> bool:
        """In a cell that sends requests: what runs as test code.

        Definitions, imports and new names bound from app code stay in app.py;
        the rest (requests, checks, state changes between requests) are the test.
        """
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return self.uses_client(statement) or bool(self.reads(statement) & self.test_defined)
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            modules = set(_imported_modules(statement).values())
            return bool(modules & NOTEBOOK_MODULES) or "TestClient" in bound_names(statement)
        if isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            reads = self.reads(statement)
            plain = all(isinstance(t, ast.Name) for t in targets)
            needed = self.app_reads_after(self.current)
            if (
                plain
                and bound_names(statement) & needed
                and not self.uses_client(statement)
                and not reads & self.test_defined
            ):
                return False  # a name later app code reads: it belongs to app.py
        return True

    def app_reads_after(self, index: int) -> set[str]:
        names: set[str] = set()
        for later, reads in self.app_reads.items():
            if later > index:
                names |= reads
        return names

    def notebook_only_statement(self, cell: _Cell, statement: ast.stmt, shown: bool) -> bool:
        """Leave out what only shows something or only works in a notebook."""
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            modules = _imported_modules(statement)
            if set(modules.values()) & NOTEBOOK_MODULES:
                self.notebook_only |= {n for n, m in modules.items() if m in NOTEBOOK_MODULES}
                return True
            return False
        if isinstance(statement, ast.Expr):
            value = statement.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return False  # a docstring
            if not isinstance(value, (ast.Call, ast.Await)) or shown:
                return True  # a value shown as the cell's output
            if isinstance(value, ast.Call) and _callee(value).split(".")[-1] in DISPLAY_CALLS:
                return True
        if _only_shows(statement):
            return True
        reads = self.reads(statement)
        if "get_ipython" in reads and re.search(r"run_(cell|line)_magic\(", ast.unparse(statement)):
            self.problem(
                cell,
                "it runs a magic built at run time (get_ipython().run_..._magic); "
                "write it as a %%route cell or plain Python",
            )
            return True
        if reads & self.notebook_only:
            if isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign)):
                self.notebook_only |= bound_names(statement)
                return True
            names = ", ".join(sorted(reads & self.notebook_only))
            self.problem(cell, f"it uses {names}, which only exist in the notebook")
            return True
        return False

    def state_change(self, statement: ast.stmt) -> bool:
        """Changes existing data, settings or overrides (not the app's routes or middleware)."""
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return False
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            return False
        bound = bound_names(statement)
        if _change_kind(statement, bound & self.app_defined) != "change" or "app" in bound:
            return False
        attributes = {n.attr for n in ast.walk(statement) if isinstance(n, ast.Attribute)}
        if attributes & {"dependency_overrides", "cache_clear"}:
            return True
        if attributes & _APP_STRUCTURE or "app" in self.reads(statement):
            return False
        if bound & self.runtime_names():
            return False
        if "environ" in attributes:
            return True  # settings the handlers read when called
        # In-place changes to data the handlers read: ITEMS.append(...), DB[1] = ...
        mutated = {_root_name(t) for t in _mutated(statement)}
        return bool(mutated & self.runtime_names())

    def runtime_names(self) -> set[str]:
        names: set[str] = set()
        for _, later in self.later:
            names |= later
        return names

    def app_statement(self, cell: _Cell, statement: ast.stmt) -> bool:
        now, later = used_names(statement)
        missing = now - self.app_defined - BUILTIN_NAMES
        if not isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr)):
            missing -= bound_names(statement)  # a loop or with target, bound before its body
        if missing & self.test_defined:
            names = ", ".join(sorted(missing & self.test_defined))
            self.problem(cell, f"app code uses {names}, which a request cell defined")
            return False
        if missing:
            names = ", ".join(sorted(missing))
            self.problem(
                cell,
                f"it uses {names}, which no exported cell defines before it "
                "(kernel state not in the notebook?)",
            )
            return False
        if later:
            self.later.append((cell, later))
        bound = bound_names(statement)
        if "app" in bound:
            self.app_bindings.append(len(self.test_chunks))
        kind = _change_kind(statement, bound & self.app_defined)
        self.changes += kind == "change"
        self.route_changes += kind == "routes"
        self.app_defined |= bound
        if not isinstance(statement, (ast.Import, ast.ImportFrom)):
            self.last_app_cell = self.current
        for node in ast.walk(statement):
            if isinstance(node, ast.Global):
                self.live_globals |= set(node.names)
        for name in _imported_modules(statement):
            self.import_names[name] = ast.unparse(_import_of(statement, name))
        calls = [n for n in ast.walk(statement) if isinstance(n, ast.Call)]
        if any(_callee(n).endswith(".openapi") for n in calls):
            self.reset_openapi = True
        return True

    def plain_magic(self, magic: Magic) -> str | None:
        """The Python a magic stands for, when it has one (``%time stmt``, ``%env A=b``)."""
        if magic.escape == "%" and magic.name == "time" and magic.args:
            return f"{magic.indent}{magic.args}"
        if magic.escape == "%" and magic.name == "env" and "=" in magic.args:
            key, _, value = magic.args.partition("=")
            self.needs_os = True
            self.app_defined.add("os")
            return f"{magic.indent}os.environ[{key.strip()!r}] = {value.strip()!r}"
        return None

    def http_statement(
        self, cell: _Cell, magic: Magic, is_last: bool
    ) -> tuple[list[str], Request | None]:
        try:
            call = parse_http_line(magic.args)
            if not call.form:
                call.request_kwargs()
        except RequestError as exc:
            self.problem(cell, f"%http {magic.args!r} is not a valid request: {exc}")
            return [], None
        result, _ = _saved_result({"outputs": cell.outputs})
        shown = result if is_last and not magic.target else None
        request = Request(call, f"%http {magic.args}", shown)
        indent = magic.indent
        code = self.request(cell, request).replace("\n", "\n" + indent)
        if magic.target:
            self.test_defined |= set(re.split(r"\s*,\s*", magic.target))
            self.response_names |= set(re.split(r"\s*,\s*", magic.target))
            self.response_calls[magic.target.strip()] = call
            return [f"{indent}{magic.target} = {code}"], None
        if request.expected is not None:
            return [f"{indent}response = {code}"], request
        return [f"{indent}{code}"], None

    # -- tests ------------------------------------------------------------------------
    def test(
        self, cell: _Cell, code: list[str], request: Request | None, is_async: bool = False
    ) -> None:
        chunk = _TestChunk(cell, list(code), [], request, self.changes, self.route_changes)
        chunk.is_async = is_async
        if request is not None and request.expected is not None:
            asserts = expectation(request.expected, request.call.verbose)
            if asserts is None:
                note = f"cell In[{cell.number}]: the saved output is not a response view"
                self.notes.append(note)
            else:
                chunk.expect = asserts
        self.test_chunks.append(chunk)

    def plain_responses(self, text: str) -> str:
        """What ``%http`` returned adds ``status_line`` and ``response`` to httpx's response."""
        for name in self.response_names:
            text, count = re.subn(rf"\b{name}\.status_line\b", f"status_line({name})", text)
            self.uses_status_line |= bool(count)
            text = re.sub(rf"\b{name}\.response\b", name, text)
        return text

    def expected_lines(self, chunk: _TestChunk) -> list[str]:
        """The assertions for the chunk's shown response, unless the app changed after it.

        app.py holds the notebook's final app. A response the notebook got before a later
        cell changed the app (moved routes, middleware, rebound names) may differ now; so
        may /openapi.json and a 404 or 405 once later cells added routes. Those requests
        are still sent (their effects on state count) but not asserted.
        """
        request = chunk.request
        if not chunk.expect or request is None:
            return []
        status = chunk.expect[0].split("==")[1].split(",")[0].strip()
        path = request.call.url.split("?")[0]
        schema_like = path in {"/openapi.json", "/docs", "/redoc"} or status in {"404", "405"}
        changed = self.changes > chunk.changes
        grown = self.route_changes > chunk.route_changes and schema_like
        if changed or grown:
            why = "changed the app" if changed else "added routes"
            return [f"# Not asserted: later cells {why}; the notebook got HTTP {status} here."]
        return chunk.expect

    # -- assembling ---------------------------------------------------------------------
    def finish(self) -> Exported:
        for cell, names in self.later:
            missing = names - self.app_defined - BUILTIN_NAMES
            if missing & self.notebook_only:
                only = ", ".join(sorted(missing & self.notebook_only))
                self.problem(cell, f"its functions use {only}, which only exist in the notebook")
                missing -= self.notebook_only
            if missing:
                # Only read when called (placeholders such as DBSession in FastAPI's own
                # examples): app.py still imports, so a warning, not a refusal.
                self.notes.append(
                    f"cell In[{cell.number}] ({cell.first!r}): its functions use "
                    f"{', '.join(sorted(missing))}, which no exported cell defines; app.py "
                    "imports, but calling them raises NameError until you define it"
                )
        if "app" not in self.app_defined and not self.problems:
            msg = f"{self.name!r} defines no FastAPI app and no %%route cell; nothing to export"
            raise ExportError(msg)
        tests = self.assemble_tests()
        if self.problems:
            self.problems.sort(key=lambda p: p.index)
            cells = ", ".join(dict.fromkeys(p.label for p in self.problems))
            msg = (
                f"cannot export {self.name!r} faithfully: {len(self.problems)} problem(s) in "
                f"cell {cells}; fix them or tag the cells nbapi-skip"
            )
            raise ExportError(msg, self.problems)
        header = f'"""The FastAPI app exported by nbapi from {self.name}."""'
        parts = [header]
        if self.needs_os:
            parts.append("import os")
        parts.extend(self.app_chunks)
        if self.reset_openapi:
            parts.append(
                "# The notebook cleared FastAPI's cached schema after every cell.\n"
                "app.openapi_schema = None"
            )
        app_py = "\n\n\n".join(parts) + "\n"
        return Exported(
            app_py=app_py,
            test_py=tests,
            requirements=requirements(app_py),
            files=self.files,
            routes=self.routes,
            tests=self.tests_written,
            last_app_cell=self.last_app_cell,
            notes=self.notes,
        )

    def assemble_tests(self) -> str:
        last_app = self.app_bindings[-1] if self.app_bindings else 0
        chunks = self.test_chunks[last_app:]
        dropped = len(self.test_chunks) - len(chunks)
        if dropped:
            self.notes.append(
                f"{dropped} request cell(s) before the notebook last rebound `app` were not "
                "exported as tests: they called an earlier app"
            )
        app_names: set[str] = set()
        imports: dict[str, str] = {}
        functions: list[str] = []
        defined: set[str] = set()
        assigned_later: list[set[str]] = []
        for chunk in chunks:
            assigned: set[str] = set()
            for text in chunk.body:
                try:
                    tree = ast.parse(_dedent_block(text))
                except SyntaxError:
                    continue
                for statement in tree.body:
                    assigned |= bound_names(statement)
            assigned_later.append(assigned)
        seen_names: list[str] = []
        runtime_reads: set[str] = set()
        for _, names in self.later:
            runtime_reads |= names
        for chunk in chunks:  # app names the tests read: imported, unless the tests bind them
            for text in chunk.body:
                for node in ast.walk(_parse_or_empty(_dedent_block(text))):
                    if isinstance(node, ast.Name) and node.id in self.app_defined:
                        app_names.add(node.id)
        app_names -= set(self.import_names) | self.client_names
        for number, chunk in enumerate(chunks):
            source = "\n".join(chunk.body)
            try:
                tree = ast.parse(source)
            except SyntaxError as exc:
                self.problem(chunk.cell, f"its test code does not parse: {exc.msg}")
                continue
            reads: set[str] = set()
            for statement in tree.body:
                now, later = used_names(statement)
                reads |= now | later
            reads.discard("response")
            reads.discard("client")
            reads.discard("validation_rows")
            assigned = assigned_later[number] - {"response"}
            for name in sorted(reads - defined - assigned - BUILTIN_NAMES - self.client_names):
                if name in self.import_names:
                    imports[name] = self.import_names[name]
                elif name in self.app_defined:
                    app_names.add(name)
                elif name in self.notebook_only:
                    self.problem(
                        chunk.cell, f"its checks use {name}, which only exists in the notebook"
                    )
                else:
                    self.problem(
                        chunk.cell,
                        f"its checks use {name}, which no exported cell defines "
                        "(kernel state not in the notebook?)",
                    )
            rebound = assigned & runtime_reads - set(self.import_names)
            if "app" in rebound:
                rebound.discard("app")
                self.problem(
                    chunk.cell,
                    "it binds a new app while sending requests (nbapi switches the kernel's "
                    "app and its lifespan; app.py has one app); put `app = ...` in its own cell",
                )
            if rebound:
                self.problem(
                    chunk.cell,
                    f"it rebinds {', '.join(sorted(rebound))}, which app.py's functions read, "
                    "while sending requests; move the assignment to its own cell",
                )
            later_reads: set[str] = set()
            for other in chunks[number + 1 :]:
                try:
                    other_tree = ast.parse("\n".join(other.body))
                except SyntaxError:
                    continue
                for statement in other_tree.body:
                    now, later = used_names(statement)
                    later_reads |= now | later
            shared = sorted((assigned - self.client_names) & (later_reads | app_names))
            defined |= assigned
            name = _test_name(chunk, number, seen_names)
            seen_names.append(name)
            lines = [f"def {name}() -> None:"]
            doc = chunk.cell.first.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'    """Cell In[{chunk.cell.number}]: {doc}"""')
            if shared:
                lines.append(f"    global {', '.join(shared)}")
            body = [*chunk.body, *self.expected_lines(chunk)]
            if chunk.is_async:  # top-level await in the cell: run it on a fresh event loop
                lines.append("    async def cell() -> None:")
                if shared:
                    lines.append(f"        global {', '.join(shared)}")
                body = [_indent(text, "    ") for text in body]
                body.append("asyncio.run(cell())")
                self.uses_asyncio = True
            for text in body:
                lines.append(_indent(text, "    "))
            text = self.plain_responses("\n".join(lines))
            functions.append(_qualify(text, self.live_globals & app_names, "app_module"))
        self.tests_written = len(functions)
        self.uses_validation_rows = any("validation_rows(" in f for f in functions)
        app_names.add("app")
        header = [
            f'"""Tests exported by nbapi from {self.name}: its requests and checks, in notebook',
            "order, against app.py. They share the app's state as the notebook's cells did,",
            'so run them in file order (the default)."""',
            "",
        ]
        uses_upload = any("upload(" in f for f in functions)
        stdlib = ["import asyncio"] if self.uses_asyncio else []
        stdlib += ["import json"] if self.uses_validation_rows else []
        stdlib += ["import os"] if uses_upload else []
        third = ["import pytest", "from fastapi.testclient import TestClient"]
        extra = _merge_imports(imports.values())  # after app.py: it may set up sys.path
        live = self.live_globals & app_names
        app_names -= live
        import_lines = [
            *stdlib,
            "",
            *third,
            "",
            *(["import app as app_module  # app.py rebinds these names"] if live else []),
            f"from app import {', '.join(sorted(app_names))}",
            *extra,
        ]
        if not stdlib:
            import_lines = import_lines[1:]
        preamble = [
            "# As nbapi's client: a handler error is the 500 it sends; no redirects followed.",
            "client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)",
            "",
            "",
            '@pytest.fixture(autouse=True, scope="module")',
            "def _lifespan():",
            '    """Run the app lifespan around the tests, as nbapi did on first use."""',
            "    with client:",
            "        yield",
        ]
        for alias in sorted(self.client_names - {"client"}):
            preamble.insert(1, f"{alias} = client")
        helper = []
        if self.uses_validation_rows:
            helper = [
                "def validation_rows(response):",
                '    """A 422 body as the (location, message, input) rows nbapi showed."""',
                "    rows = []",
                '    for error in response.json()["detail"]:',
                '        location = ".".join(str(part) for part in error.get("loc", ()))',
                '        given = error.get("input", "")',
                '        shown = json.dumps(given, ensure_ascii=False) if "input" in error else ""',
                '        rows.append((location, str(error["msg"]), shown))',
                "    return rows",
            ]
        blocks = ["\n".join(header + import_lines), "\n".join(preamble)]
        if helper:
            blocks.append("\n".join(helper))
        if uses_upload:
            blocks.append(
                "def upload(path):\n"
                '    """A file for a multipart form, as ``%http -f ... name@path`` sent it."""\n'
                '    with open(path, "rb") as file:  # closed: pytest -W error fails on a leak\n'
                "        return (os.path.basename(path), file.read())"
            )
        if self.uses_status_line:
            blocks.append(
                "def status_line(response):\n"
                '    """``HTTP 200 OK``, as nbapi showed a response."""\n'
                '    return f"HTTP {response.status_code} {response.reason_phrase}"'
            )
        blocks.extend(functions)
        return "\n\n\n".join(blocks) + "\n"


@dataclass
class _TestChunk:
    cell: _Cell
    body: list[str]
    expect: list[str]
    request: Request | None
    changes: int  # the exporter's counters when the request was sent
    route_changes: int
    is_async: bool = False


def _test_name(chunk: _TestChunk, number: int, seen: list[str]) -> str:
    words = re.findall(r"[a-z0-9]+", chunk.cell.first.lower().replace("%", ""))[:5]
    words = [w for w in words if w not in {"http", "r", "assert"}][:4]
    name = f"test_cell_{chunk.cell.number:02d}" + ("_" + "_".join(words) if words else "")
    while name in seen:
        name += "_again"
    return name


def _indent(text: str, prefix: str) -> str:
    """Indent code, but not the continuation lines of its multi-line strings."""
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(_dedent_block(text)).readline):
            if token.type == tokenize.STRING or token.type == getattr(tokenize, "FSTRING_END", -1):
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return "\n".join(
        line if number in inside or not line.strip() else prefix + line
        for number, line in enumerate(text.split("\n"), start=1)
    )


def _qualify(text: str, names: set[str], module: str) -> str:
    """Read ``names`` as ``module.name`` (their value now, not at import)."""
    if not names:
        return text
    lines = text.split("\n")
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    edits = []
    for i, token in enumerate(tokens):
        if token.type != tokenize.NAME or token.string not in names:
            continue
        before = tokens[i - 1].string if i else ""
        if before in {".", "global", "def", "class"}:
            continue
        edits.append(token.start)
    for row, col in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + f"{module}." + line[col:]
    text = "\n".join(lines)
    return re.sub(r"\n(\s*)global ([^\n]*)", lambda m: _drop_globals(m, names), text)


def _drop_globals(match: re.Match[str], names: set[str]) -> str:
    kept = [n.strip() for n in match.group(2).split(",") if n.strip() not in names]
    return f"\n{match.group(1)}global {', '.join(kept)}" if kept else ""


def _merge_imports(statements: Iterable[str]) -> list[str]:
    """``from m import a`` and ``from m import b`` as ``from m import a, b``; sorted."""
    merged: dict[str, list[str]] = {}
    plain: set[str] = set()
    for text in statements:
        match = re.fullmatch(r"from (\S+) import (.+)", text)
        if match is None:
            plain.add(text)
        else:
            merged.setdefault(match.group(1), []).append(match.group(2))
    lines = {f"from {m} import {', '.join(sorted(set(names)))}" for m, names in merged.items()}
    return sorted(plain | lines)


def _parse_or_empty(text: str) -> ast.Module:
    try:
        return ast.parse(text)
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


def _dedent_block(text: str) -> str:
    lines = text.split("\n")
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(x[indent:] for x in lines)


def _callee(call: ast.AST) -> str:
    node = call.func if isinstance(call, ast.Call) else call
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - every parsed node unparses
        return ""


def _import_of(statement: ast.stmt, name: str) -> ast.stmt:
    assert isinstance(statement, (ast.Import, ast.ImportFrom))
    aliases = [a for a in statement.names if (a.asname or a.name).split(".")[0] == name]
    if isinstance(statement, ast.Import):
        return ast.Import(names=aliases)
    return ast.ImportFrom(module=statement.module, names=aliases, level=statement.level)


def _first_lineno(statement: ast.stmt) -> int:
    decorators = getattr(statement, "decorator_list", [])
    return min([statement.lineno, *(d.lineno for d in decorators)])


def _segment(lines: list[str], statement: ast.stmt, previous_end: int) -> str:
    """A top-level statement's lines, with the comments between it and the one before."""
    end = statement.end_lineno or statement.lineno
    chunk = lines[previous_end:end]
    while chunk and not chunk[0].strip() and previous_end == 0:
        chunk = chunk[1:]
    return "\n".join(chunk)


def _code_text(text: str, magics: dict[int, Magic], end: int, exporter: _Exporter) -> str:
    """Source text with magic lines nested in it made plain (or ``pass``)."""
    lines = text.split("\n")
    first = end - len(lines) + 1
    out = []
    for number, line in enumerate(lines, start=first):
        magic = magics.get(number)
        if magic is None or not line.strip().endswith(f"{_PLACEHOLDER}()"):
            out.append(line)
        else:
            out.append(exporter.plain_magic(magic) or f"{magic.indent}pass")
    return "\n".join(out)


_APP_STRUCTURE = frozenset(
    {"add_middleware", "add_exception_handler", "exception_handler", "middleware"}
    | {"include_router", "mount", "add_api_route", "add_route", "add_api_websocket_route"}
    | {"add_event_handler", "on_event", "routes", "router", "openapi_schema", "state"}
)
_ROUTE_CALLS = ("include_router", "mount", "add_api_route", "add_route", "add_api_websocket_route")


def _change_kind(statement: ast.stmt, rebound: set[str]) -> str:
    """ "new" (binds new names only), "routes" (adds routes) or "change" (changes state)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return "new"
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        decorated = any(isinstance(d, ast.Call) for d in statement.decorator_list)
        hooks = {_callee(d).split(".")[-1] for d in statement.decorator_list}
        if rebound or hooks & {"middleware", "exception_handler", "on_event"}:
            return "change"
        return "routes" if decorated else "new"
    if isinstance(statement, (ast.Assign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if all(isinstance(t, ast.Name) for t in targets) and not rebound:
            return "new"
        return "change"
    value = statement.value if isinstance(statement, ast.Expr) else None
    if isinstance(value, ast.Call) and _callee(value).endswith(_ROUTE_CALLS):
        return "routes"
    if isinstance(value, ast.Call) and _callee(value).split(".")[-1] in DISPLAY_CALLS:
        return "new"
    return "change"


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _mutated(statement: ast.stmt) -> list[ast.AST]:
    """What a statement changes in place: call receivers, subscript and attribute targets."""
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        func = statement.value.func
        return [func.value] if isinstance(func, ast.Attribute) else []
    targets: list[ast.AST] = []
    if isinstance(statement, ast.Assign):
        targets = list(statement.targets)
    elif isinstance(statement, (ast.AugAssign, ast.AnnAssign)):
        targets = [statement.target]
    elif isinstance(statement, ast.Delete):
        targets = list(statement.targets)
    return [t for t in targets if isinstance(t, (ast.Subscript, ast.Attribute))]


def _only_shows(statement: ast.stmt) -> bool:
    """A loop, ``with`` or ``if`` whose statements only print or show values."""
    if isinstance(statement, ast.Expr):
        value = statement.value
        return not isinstance(value, (ast.Call, ast.Await)) or (
            isinstance(value, ast.Call) and _callee(value).split(".")[-1] in DISPLAY_CALLS
        )
    if isinstance(statement, (ast.For, ast.While, ast.If, ast.With)):
        inner = [*statement.body, *getattr(statement, "orelse", [])]
        return all(_only_shows(s) for s in inner)
    return False


def _top_level_await(statement: ast.stmt) -> bool:
    if isinstance(statement, (ast.AsyncFor, ast.AsyncWith)):
        return True
    scan: list[ast.AST] = [statement]
    while scan:
        node = scan.pop()
        if isinstance(node, ast.Await):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        scan.extend(ast.iter_child_nodes(node))
    return False


def annotate(
    lines: list[str], function: ast.FunctionDef | ast.AsyncFunctionDef, spec: RouteSpec
) -> None:
    """Type unannotated path parameters from converters, as the registry does."""
    arguments = function.args
    params = {a.arg: a for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]}
    edits: list[tuple[int, int, str]] = []
    for name, wanted in spec.converters.items():
        arg = params.get(name)
        if arg is None:
            continue
        if arg.annotation is None:
            assert arg.end_lineno is not None
            assert arg.end_col_offset is not None
            edits.append((arg.end_lineno, arg.end_col_offset, f": {wanted.__name__}"))
            continue
        given = ast.unparse(arg.annotation)
        inner = given
        if isinstance(arg.annotation, ast.Subscript) and ast.unparse(arg.annotation.value).endswith(
            "Annotated"
        ):
            sub = arg.annotation.slice
            first = sub.elts[0] if isinstance(sub, ast.Tuple) else sub
            inner = ast.unparse(first)
        if inner != wanted.__name__:
            msg = (
                f"the path says {name!r} is {wanted.__name__} but {function.name}() "
                f"annotates it as {given!r}; drop the converter or change the annotation"
            )
            raise SpecError(msg)
    for lineno, col, text in sorted(edits, reverse=True):
        raw = lines[lineno - 1].encode()
        lines[lineno - 1] = (raw[:col] + text.encode() + raw[col:]).decode()


def route_decorator(spec: RouteSpec) -> str:
    """``@app.get("/items/{item_id}", status_code=201)``: what nbapi's registry did."""
    args = [py(spec.path)]
    if spec.websocket:
        kind = "websocket"
    elif len(spec.methods) == 1:
        # app.get() is app.api_route(methods=["GET"]): the same route and OpenAPI.
        kind = spec.methods[0].lower()
    else:
        kind = "api_route"
        args.append(f"methods={py(list(spec.methods))}")
    if spec.keywords:
        args.append(spec.keywords)
    return f"@app.{kind}({', '.join(args)})"


# -- requirements -------------------------------------------------------------------------
# Packages FastAPI needs at run time for what a name from it does, though nobody imports them.
RUNTIME_EXTRAS = {
    ("fastapi", "Form"): "python-multipart",
    ("fastapi", "File"): "python-multipart",
    ("fastapi", "UploadFile"): "python-multipart",
    ("fastapi.security", "OAuth2PasswordRequestForm"): "python-multipart",
    ("pydantic", "EmailStr"): "email-validator",
    ("pwdlib", "PasswordHash"): "argon2-cffi",
}


def requirements(app_py: str) -> str:
    """``dist==version`` lines for what app.py imports, plus uvicorn to serve it."""
    tree = ast.parse(app_py)
    roots: set[str] = set()
    wanted: set[str] = {"uvicorn"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
            for alias in node.names:
                extra = RUNTIME_EXTRAS.get((node.module, alias.name))
                if extra:
                    wanted.add(extra)
    mapping = metadata.packages_distributions()
    lines: list[str] = []
    for root in sorted(roots):
        if root in sys.stdlib_module_names or root == "__future__":
            continue
        dists = sorted(mapping.get(root, []))
        if not dists:
            lines.append(f"# {root}: not an installed distribution (a local module?)")
            continue
        wanted.add(dists[0])
    pins = [_pin(dist) for dist in sorted(wanted, key=str.lower)]
    # TestClient runs on httpx2 (Starlette asks for it); test_app.py needs both.
    tests = [_pin("pytest"), _pin("httpx2")]
    header = "# Exported by nbapi: what app.py imports, pinned to the versions the notebook ran."
    return "\n".join([header, *pins, *lines, "# test_app.py runs with:", *tests]) + "\n"


def _pin(dist: str) -> str:
    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:  # pytest, say, need not be installed beside nbapi
        return dist


# -- the public functions ---------------------------------------------------------------------
def export_notebook(
    notebook: Any, name: str = "notebook.ipynb", base: Path | None = None
) -> Exported:
    """Export an nbformat notebook (or its dict); raise ExportError when it is not faithful.

    ``base`` is the notebook's directory (form files in ``%%http`` cells are read from it).
    """
    exporter = _Exporter(name, base)
    cells = []
    client_vars: set[str] = set()
    ordinal = 0  # Restart & Run All numbers the code cells that are not empty
    for index, raw in enumerate(notebook.get("cells", [])):
        if raw.get("cell_type") != "code":
            continue
        source = raw.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        ordinal += bool(source.strip())
        count = raw.get("execution_count")
        number = count if isinstance(count, int) else ordinal
        tags = set(raw.get("metadata", {}).get("tags", []))
        cells.append(_Cell(index, source, tags, raw.get("outputs", []), number))
        if not tags & SKIP_TAGS:
            exporter.app_reads[index] = app_reads(source, client_vars)
    for cell in cells:
        exporter.cell(cell)
    return exporter.finish()


def app_reads(source: str, client_vars: set[str]) -> set[str]:
    """A first guess at the names a cell's app code reads, before the cells are exported.

    Cells that send requests count only for their definitions; a request cell can then
    keep ``payload = {...}`` in its test while ``prefix = "/v1"`` read by a later
    route stays in app.py.
    """
    lines = source.lstrip("\n").splitlines()
    is_route = bool(lines) and lines[0].startswith("%%route")
    if lines and lines[0].startswith("%%"):
        if not is_route:
            return set()
        source = "\n".join(lines[1:])
        names = {"app", *re.findall(r"[A-Za-z_]\w*", lines[0][len("%%route") :])}
    else:
        names = set()
    try:
        tree, magics, _ = _parse(source)
    except SyntaxError:
        return names
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and re.search(
            rf"{_CLIENT_EXPR.pattern}|\bTestClient\(", ast.unparse(statement.value)
        ):
            client_vars |= bound_names(statement)
    requests = (
        any(m.name == "http" for m in magics.values())
        or bool(_CLIENT_EXPR.search(source))
        or any(isinstance(n, ast.Name) and n.id in client_vars for n in ast.walk(tree))
    )
    for statement in tree.body:
        if requests and not isinstance(
            statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        ):
            continue
        now, later = used_names(statement)
        names |= now | later
    return names


def read_notebook(path: Path) -> Any:
    """The notebook at ``path`` as nbformat reads it; a UserError for a missing or bad file."""
    import nbformat

    if path.suffix != ".ipynb":
        msg = f"{str(path)!r} is not a notebook; give a .ipynb file"
        raise ExportError(msg)
    try:
        found = path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL
        found = False
    if not found:
        msg = f"notebook {str(path)!r} does not exist; check the path"
        raise ExportError(msg)
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = f"cannot read {str(path)!r} as a notebook ({first}); save it again from Jupyter"
        raise ExportError(msg) from None


def default_directory(notebook: Path) -> Path:
    return notebook.with_name(f"{notebook.stem}-export")


MANIFEST = ".nbapi-export.json"  # what the last export wrote: relative path -> sha256


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(directory: Path) -> dict[str, str]:
    try:
        files = json.loads((directory / MANIFEST).read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def check_overwrite(outputs: dict[str, str], directory: Path, force: bool) -> None:
    """Refuse to replace a file unless the previous export wrote exactly it (or ``force``)."""
    written = _manifest(directory)
    for relative, text in outputs.items():
        target = directory / relative
        if not target.exists() and not target.is_symlink():
            continue
        if not target.is_file():
            msg = f"{str(target)!r} is not a file; move it away, then export again"
            raise ExportError(msg)
        current = _digest(target.read_bytes())
        if force or current in (written.get(relative), _digest(text.encode("utf-8"))):
            continue
        msg = (
            f"{str(target)!r} differs from what nbapi last exported there (hand edits?); "
            "move it away, or export again with --force to overwrite it"
        )
        raise ExportError(msg)


def write_export(exported: Exported, directory: Path, force: bool = False) -> list[Path]:
    """Write every file into a temporary directory, then move them into ``directory``.

    A file the previous export did not write exactly as it is now is never replaced
    unless ``force``: hand edits are not lost.
    """
    directory = Path(directory)
    outputs = exported.outputs()
    try:
        if directory.exists() and not directory.is_dir():
            msg = f"{str(directory)!r} exists and is not a directory; choose another output"
            raise ExportError(msg)
        if directory.is_dir():
            check_overwrite(outputs, directory, force)
        return _move_into(outputs, directory)
    except ExportError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, bad text
        why = getattr(exc, "strerror", None) or exc
        msg = f"cannot write the export into {str(directory)!r} ({why}); choose another output"
        raise ExportError(msg) from None


def _move_into(outputs: dict[str, str], directory: Path) -> list[Path]:
    parent = directory.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".nbapi-export-", dir=parent))
    try:
        for relative, text in outputs.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        directory.mkdir(exist_ok=True)
        written = []
        for relative in outputs:
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, target)
            written.append(target)
        digests = {rel: _digest(text.encode("utf-8")) for rel, text in outputs.items()}
        manifest = json.dumps({"files": digests}, indent=1, sort_keys=True) + "\n"
        (directory / MANIFEST).write_text(manifest, encoding="utf-8")
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class ExportResult:
    """What ``%nbapi export`` shows: a short deterministic summary."""

    notebook: str
    directory: str
    exported: Exported

    def __repr__(self) -> str:
        e = self.exported
        lines = [
            f"exported {self.notebook} to {self.directory}: app.py ({e.routes} %%route cells), "
            f"test_app.py ({e.tests} tests), requirements.txt"
            + (", README.md" if "README.md" in e.files else "")
        ]
        lines += [f"  extra file: {name}" for name in e.files if name != "README.md"]
        lines += [f"  note: {note}" for note in e.notes]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def export_path(
    notebook: Path | str,
    directory: Path | str | None = None,
    *,
    force: bool = False,
    fresh: bool = False,
    history: Sequence[str] | None = None,
) -> ExportResult:
    """Export the notebook file at ``notebook`` into ``directory`` (default NOTEBOOK-export).

    ``force`` replaces files that differ from what the previous export wrote there.
    ``fresh``: take the expected responses from a run in a fresh kernel (see _rerun),
    else from the saved outputs. ``history``: the kernel's inputs (``_ih``), to warn
    about cells run after the last save.
    """
    from ._readme import readme_text
    from ._rerun import clean_run_note, fresh_run, unsaved_note

    path = Path(notebook)
    nb = read_notebook(path)
    notes = [note for note in [unsaved_note(nb, history)] if note]
    if fresh:
        nb, failed = fresh_run(nb, path.resolve().parent)
        notes += failed
    elif (note := clean_run_note(nb)) is not None:
        notes.append(note)
    exported = export_notebook(nb, path.name, path.resolve().parent)
    exported.notes[:0] = notes
    readme = readme_text(path.name, exported.app_py, exported.tests, fresh)
    exported.files.setdefault("README.md", readme)
    target = Path(directory) if directory is not None else default_directory(path)
    write_export(exported, target, force=force)
    shown = target
    if target.is_absolute() and target.resolve().is_relative_to(Path.cwd().resolve()):
        shown = target.resolve().relative_to(Path.cwd().resolve())  # no machine paths shown
    return ExportResult(path.name, str(shown), exported)


def current_notebook(environ: dict[str, str] | None = None) -> Path | None:
    """The kernel's notebook, from JPY_SESSION_NAME (set by jupyter_server for its kernels)."""
    env = os.environ if environ is None else environ
    name = env.get("JPY_SESSION_NAME", "")
    if not name.endswith(".ipynb"):
        return None
    path = Path(name)
    for candidate in (path, Path.cwd() / path, Path.cwd() / path.name):
        if candidate.is_file():
            return candidate
    return None


def export_command(session: Any, argv: list[str]) -> ExportResult:
    """``%nbapi export [NOTEBOOK.ipynb] [DIR] [--saved-outputs] [--force]``: export the saved
    notebook.

    Expected responses come from a fresh run of it, or with ``--saved-outputs`` from
    its saved outputs. ``--force`` replaces files that differ from the last export's.
    """
    parser = _Parser(prog="%nbapi export", add_help=False)
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--saved-outputs", action="store_true")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    paths: list[str] = list(args.paths)
    if len(paths) > 2:
        msg = f"too many arguments {paths!r}; use %nbapi export [NOTEBOOK.ipynb] [DIR]"
        raise ExportError(msg)
    given = paths and paths[0].endswith(".ipynb")
    notebook = Path(paths.pop(0)) if given else current_notebook()
    if notebook is None:
        msg = (
            "cannot tell which notebook this kernel runs (no JPY_SESSION_NAME); "
            "use %nbapi export NOTEBOOK.ipynb [DIR]"
        )
        raise ExportError(msg)
    directory = paths[0] if paths else None
    history = session.namespace.get("_ih") if hasattr(session, "namespace") else None
    return export_path(
        notebook, directory, force=args.force, fresh=not args.saved_outputs, history=history
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel
        msg = f"{message}; use %nbapi export [NOTEBOOK.ipynb] [DIR] [--saved-outputs] [--force]"
        raise ExportError(msg)
