"""``%http`` cells to pytest: request code, expected responses and the test_app.py text."""

from __future__ import annotations

import ast
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _emitted
from .._client import (
    form_file,
    form_items,
)
from .._http import read_view
from .cells import Request, _Cell
from .names import bound_names, used_names
from .source import (
    BUILTIN_NAMES,
    _dedent_block,
    _indent,
    _merge_imports,
    _parse_or_empty,
    _qualify,
    py,
)


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


def expectation(view: str, verbose: bool) -> list[str] | None:
    """Assertions (as source lines on ``response``) for a saved ``%http`` text view."""
    shown = read_view(view, verbose)
    if shown is None:
        return None
    asserts = [f"assert response.status_code == {shown.status}, response.text"]
    if shown.kind == "empty":
        asserts.append('assert response.content == b""')
    elif shown.kind == "rows":
        asserts.append(f"assert validation_rows(response) == {py(shown.value, 0, 84, 33)}")
    elif shown.kind == "json":
        asserts.append(f"assert response.json() == {py(shown.value, 0, 84, 26)}")
    elif shown.kind == "size":
        asserts.append(f"assert len(response.content) == {shown.value}")
    elif shown.kind == "prefix":
        asserts.append(f"assert response.text.startswith({py(shown.value)})")
    else:
        asserts.append(f"assert response.text == {py(shown.value)}")
    return asserts


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


@dataclass
class TestPlan:
    """What the exporter knows when it writes test_app.py."""

    name: str
    chunks: list[_TestChunk]
    app_bindings: list[int]  # chunk index after which `app` was (re)bound
    later: list[tuple[_Cell, set[str]]]  # names app functions read when called
    app_defined: set[str]
    import_names: dict[str, str]
    client_names: set[str]
    notebook_only: set[str]
    live_globals: set[str]
    response_names: set[str]
    changes: int
    route_changes: int


@dataclass
class TestFile:
    """test_app.py's text, with what the exporter reports about it."""

    text: str = ""
    count: int = 0
    problems: list[tuple[_Cell, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_tests(plan: TestPlan) -> TestFile:
    """test_app.py: one test function per chunk since the app was last bound."""
    result = TestFile()
    last_app = plan.app_bindings[-1] if plan.app_bindings else 0
    chunks = plan.chunks[last_app:]
    dropped = len(plan.chunks) - len(chunks)
    if dropped:
        result.notes.append(
            f"{dropped} request cell(s) before the notebook last rebound `app` were not "
            "exported as tests: they called an earlier app"
        )
    assigned_later = [_assigned(chunk) for chunk in chunks]
    runtime_reads: set[str] = set()
    for _, names in plan.later:
        runtime_reads |= names
    app_names: set[str] = set()
    for chunk in chunks:  # app names the tests read: imported, unless the tests bind them
        for text in chunk.body:
            for node in ast.walk(_parse_or_empty(_dedent_block(text))):
                if isinstance(node, ast.Name) and node.id in plan.app_defined:
                    app_names.add(node.id)
    app_names -= set(plan.import_names) | plan.client_names
    imports: dict[str, str] = {}
    functions: list[str] = []
    defined: set[str] = set()
    seen_names: list[str] = []
    uses: set[str] = set()  # helpers and modules the test functions use
    for number, chunk in enumerate(chunks):
        try:
            tree = ast.parse("\n".join(chunk.body))
        except SyntaxError as exc:
            result.problems.append((chunk.cell, f"its test code does not parse: {exc.msg}"))
            continue
        assigned = assigned_later[number] - {"response"}
        reads = _reads(tree.body)
        reads -= {"response", "client", "validation_rows"}
        for name in sorted(reads - defined - assigned - BUILTIN_NAMES - plan.client_names):
            if name in plan.import_names:
                imports[name] = plan.import_names[name]
            elif name in plan.app_defined:
                app_names.add(name)
            else:
                result.problems.append((chunk.cell, _unknown_name(plan, name)))
        rebound = assigned & runtime_reads - set(plan.import_names)
        result.problems.extend((chunk.cell, why) for why in _rebinding_problems(rebound))
        later_reads: set[str] = set()
        for other in chunks[number + 1 :]:
            try:
                later_reads |= _reads(ast.parse("\n".join(other.body)).body)
            except SyntaxError:
                continue
        shared = sorted((assigned - plan.client_names) & (later_reads | app_names))
        defined |= assigned
        name = _test_name(chunk, number, seen_names)
        seen_names.append(name)
        function, status_lines = _test_function(plan, chunk, name, shared)
        uses |= {"asyncio"} if chunk.is_async else set()
        uses |= {"status_line"} if status_lines else set()
        functions.append(_qualify(function, plan.live_globals & app_names, "app_module"))
    result.count = len(functions)
    uses |= {h for h in ("validation_rows", "upload") if any(f"{h}(" in f for f in functions)}
    result.text = _test_module(plan, functions, imports, app_names | {"app"}, uses)
    return result


def _assigned(chunk: _TestChunk) -> set[str]:
    assigned: set[str] = set()
    for text in chunk.body:
        try:
            tree = ast.parse(_dedent_block(text))
        except SyntaxError:
            continue
        for statement in tree.body:
            assigned |= bound_names(statement)
    return assigned


def _reads(statements: list[ast.stmt]) -> set[str]:
    reads: set[str] = set()
    for statement in statements:
        now, later = used_names(statement)
        reads |= now | later
    return reads


def _unknown_name(plan: TestPlan, name: str) -> str:
    if name in plan.notebook_only:
        return f"its checks use {name}, which only exists in the notebook"
    return (
        f"its checks use {name}, which no exported cell defines (kernel state not in the notebook?)"
    )


def _rebinding_problems(rebound: set[str]) -> list[str]:
    problems = []
    if "app" in rebound:
        rebound = rebound - {"app"}
        problems.append(
            "it binds a new app while sending requests (nbapi switches the kernel's "
            "app and its lifespan; app.py has one app); put `app = ...` in its own cell"
        )
    if rebound:
        problems.append(
            f"it rebinds {', '.join(sorted(rebound))}, which app.py's functions read, "
            "while sending requests; move the assignment to its own cell"
        )
    return problems


def _test_function(
    plan: TestPlan, chunk: _TestChunk, name: str, shared: list[str]
) -> tuple[str, bool]:
    """The test function for a chunk, and whether it uses ``status_line``."""
    lines = [f"def {name}() -> None:"]
    doc = chunk.cell.first.replace("\\", "\\\\").replace('"', '\\"')
    lines.append(f'    """Cell In[{chunk.cell.number}]: {doc}"""')
    if shared:
        lines.append(f"    global {', '.join(shared)}")
    body = [*chunk.body, *expected_lines(plan, chunk)]
    if chunk.is_async:  # top-level await in the cell: run it on a fresh event loop
        lines.append("    async def cell() -> None:")
        if shared:
            lines.append(f"        global {', '.join(shared)}")
        body = [_indent(text, "    ") for text in body]
        body.append("asyncio.run(cell())")
    for text in body:
        lines.append(_indent(text, "    "))
    return plain_responses(plan.response_names, "\n".join(lines))


def plain_responses(response_names: set[str], text: str) -> tuple[str, bool]:
    """What ``%http`` returned adds ``status_line`` and ``response`` to httpx's response;
    also whether the text now calls ``status_line``."""
    uses_status_line = False
    for name in response_names:
        text, count = re.subn(rf"\b{name}\.status_line\b", f"status_line({name})", text)
        uses_status_line |= bool(count)
        text = re.sub(rf"\b{name}\.response\b", name, text)
    return text, uses_status_line


def expected_lines(plan: TestPlan, chunk: _TestChunk) -> list[str]:
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
    changed = plan.changes > chunk.changes
    grown = plan.route_changes > chunk.route_changes and schema_like
    if changed or grown:
        why = "changed the app" if changed else "added routes"
        return [f"# Not asserted: later cells {why}; the notebook got HTTP {status} here."]
    return chunk.expect


_PREAMBLE = [
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


def _test_module(
    plan: TestPlan,
    functions: list[str],
    imports: dict[str, str],
    app_names: set[str],
    uses: set[str],
) -> str:
    """The module around the test functions: imports, client, lifespan, helpers."""
    header = [
        f'"""Tests exported by nbapi from {plan.name}: its requests and checks, in notebook',
        "order, against app.py. They share the app's state as the notebook's cells did,",
        'so run them in file order (the default)."""',
        "",
    ]
    emitted = (_emitted.validation_rows, _emitted.upload, _emitted.status_line)
    helpers = [helper for helper in emitted if helper.__name__ in uses]
    stdlib = ["import asyncio"] if "asyncio" in uses else []
    stdlib += ["import json"] if "validation_rows" in uses else []
    stdlib += ["import os"] if "upload" in uses else []
    third = ["import pytest", "from fastapi.testclient import TestClient"]
    extra = _merge_imports(imports.values())  # after app.py: it may set up sys.path
    live = plan.live_globals & app_names
    import_lines = [
        *stdlib,
        "",
        *third,
        "",
        *(["import app as app_module  # app.py rebinds these names"] if live else []),
        f"from app import {', '.join(sorted(app_names - live))}",
        *extra,
    ]
    if not stdlib:
        import_lines = import_lines[1:]
    preamble = list(_PREAMBLE)
    for alias in sorted(plan.client_names - {"client"}):
        preamble.insert(1, f"{alias} = client")
    blocks = ["\n".join(header + import_lines), "\n".join(preamble)]
    blocks += [inspect.getsource(helper).rstrip("\n") for helper in helpers]
    blocks.extend(functions)
    return "\n\n\n".join(blocks) + "\n"
