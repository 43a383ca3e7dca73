"""Name analysis over a cell's AST: what a statement binds, reads, changes. Pure."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from .source import _CLIENT_EXPR, DISPLAY_CALLS, _parse


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
