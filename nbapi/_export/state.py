"""What the exporter knows so far, and the questions it asks about a statement."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .._client import (
    HttpCall,
)
from .cells import Problem, _Cell
from .names import (
    _APP_STRUCTURE,
    _callee,
    _change_kind,
    _imported_modules,
    _mutated,
    _only_shows,
    _root_name,
    bound_names,
    used_names,
)
from .source import (
    DISPLAY_CALLS,
    NOTEBOOK_MODULES,
    NOTEBOOK_NAMES,
    NOTEBOOK_ONLY_MAGICS,
    Magic,
    _is_placeholder,
)
from .testfile import _TestChunk


class _State:
    """The exporter's state: names app.py and the tests bind, chunks, counters; and
    what a statement is (a request, test code, a notebook-only line, a state change)."""

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
        self.needs_os = False
        self.response_names: set[str] = set()  # bound to what %http returned
        self.response_calls: dict[str, HttpCall] = {}

    def problem(self, cell: _Cell, reason: str) -> None:
        self.problems.append(Problem(cell.index, cell.first, reason, cell.number))

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
