"""The exporter: notebook cells to app.py code and test chunks."""

from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._client import (
    RequestError,
    parse_http_cell,
    parse_http_line,
)
from .._spec import SpecError, keyword_names, parse_route_line
from .cells import Exported, ExportError, Request, _Cell, _saved_result, _usage_error
from .names import (
    _callee,
    _change_kind,
    _first_lineno,
    _import_of,
    _imported_modules,
    _top_level_await,
    app_reads,
    bound_names,
    used_names,
)
from .requirements import requirements
from .source import (
    _APP_EXPR,
    _CLIENT_EXPR,
    _PLACEHOLDER,
    BUILTIN_NAMES,
    DISPLAY_CELL_MAGICS,
    FORCE_TAG,
    NOTEBOOK_MODULES,
    PYTHON_CELL_MAGICS,
    SKIP_TAGS,
    Magic,
    _parse,
    _segment,
    annotate,
    route_decorator,
)
from .state import _State
from .testfile import TestPlan, _TestChunk, expectation, request_code, write_tests


@dataclass
class _Source:
    """A top-level statement's text in its cell, for :func:`_code_text`."""

    text: str
    magics: dict[int, Magic]
    end: int


class _Exporter(_State):
    """Reads each cell into app.py chunks and test chunks, then writes the files."""

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
        from .._registry import RouteError, check_keyword_names  # imports FastAPI

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
        from .._findings import saved_findings

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
                part, request = self.test_statement(
                    cell, statement, shown and is_last, _Source(text, magics, end_line)
                )
                test_parts += [part] if part is not None else []
                last_request = request or last_request
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

    def test_statement(
        self, cell: _Cell, statement: ast.stmt, shown_last: bool, source: _Source
    ) -> tuple[str | None, Request | None]:
        """A statement of a cell that sends requests: its test code (None when it has
        none) and the request whose response the cell showed, if it is that one."""
        part = request = None
        modules = set(_imported_modules(statement).values())
        if modules & NOTEBOOK_MODULES:
            self.notebook_only |= bound_names(statement) - {"nbapi"}
        elif shown_last and self.shown_response(statement):
            # `r` at the end of the cell: the notebook showed that response.
            assert isinstance(statement, ast.Expr)
            assert isinstance(statement.value, ast.Name)
            name = statement.value.id
            result, _ = _saved_result({"outputs": cell.outputs})
            call = self.response_calls[name]
            request = Request(call, f"{name} (%http {call.url})", result)
            part = f"response = {name}"
        elif not self.client_assignment(statement):
            part = _code_text(source.text, source.magics, source.end, self)
        self.test_defined |= bound_names(statement)
        return part, request

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
        plan = TestPlan(
            self.name,
            self.test_chunks,
            self.app_bindings,
            self.later,
            self.app_defined,
            self.import_names,
            self.client_names,
            self.notebook_only,
            self.live_globals,
            self.response_names,
            self.changes,
            self.route_changes,
        )
        tests = write_tests(plan)
        self.notes.extend(tests.notes)
        for cell, reason in tests.problems:
            self.problem(cell, reason)
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
            test_py=tests.text,
            requirements=requirements(app_py),
            files=self.files,
            routes=self.routes,
            tests=tests.count,
            last_app_cell=self.last_app_cell,
            notes=self.notes,
        )


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
