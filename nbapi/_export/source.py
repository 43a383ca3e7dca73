"""Cell source as text: masking magic lines, literals, indentation and rewriting names. Pure."""

from __future__ import annotations

import ast
import builtins
import io
import json
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._spec import RouteSpec, SpecError

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
_APP_EXPR = re.compile(r"\b(?:nbapi\.)?get_app\(\)")
_CLIENT_EXPR = re.compile(r"\bnbapi\.get_client\(\)|\bnbapi\.client\b|(?<![.\w])get_client\(\)")


@dataclass
class Magic:
    """A magic or shell line found in a cell."""

    line: int  # 1-based line in the cell source
    escape: str  # "%", "!" or "?"
    name: str
    args: str
    target: str | None
    indent: str


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


def _segment(lines: list[str], statement: ast.stmt, previous_end: int) -> str:
    """A top-level statement's lines, with the comments between it and the one before."""
    end = statement.end_lineno or statement.lineno
    chunk = lines[previous_end:end]
    while chunk and not chunk[0].strip() and previous_end == 0:
        chunk = chunk[1:]
    return "\n".join(chunk)


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
