"""Parse the line of a ``%%route`` cell into a :class:`RouteSpec`.

Pure string work: nothing here knows about IPython or a running app, so every
syntax the magic accepts can be tested on its own.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ._errors import UserError

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
WEBSOCKET_METHODS = ("WS", "WEBSOCKET")

# Flask and Starlette converter names mapped to the Python type they give a parameter.
CONVERTER_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "path": str}

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_FLASK_PARAM = re.compile(rf"<(?:(?P<conv>{_NAME}):)?(?P<name>{_NAME})>")
_COLON_PARAM = re.compile(rf"(?<=/):(?P<name>{_NAME})(?=/|$)")
_BRACE_PARAM = re.compile(rf"\{{(?P<name>{_NAME})(?::(?P<conv>{_NAME}))?\}}")


class SpecError(UserError):
    """A ``%%route`` line that cannot be understood; the message is one line for the user."""


@dataclass(frozen=True)
class RouteSpec:
    """What a ``%%route`` line asks for.

    ``path`` is in FastAPI syntax (``/items/{item_id}``); ``converters`` maps the
    parameters whose type the path fixed (``<int:item_id>``) to that type.
    """

    methods: tuple[str, ...]
    path: str
    converters: dict[str, type] = field(default_factory=dict)
    keywords: str = ""
    websocket: bool = False

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(m.group("name") for m in _BRACE_PARAM.finditer(self.path))

    def describe(self) -> str:
        """``GET,POST /items/{item_id}``: how messages name this route."""
        return f"{'WS' if self.websocket else ','.join(self.methods)} {self.path}"


def parse_methods(text: str) -> tuple[tuple[str, ...], bool]:
    """``"get,Post"`` -> ``(("GET", "POST"), False)``; ``"ws"`` -> ``((), True)``."""
    names = [part.strip().upper() for part in text.split(",")]
    if any(name in WEBSOCKET_METHODS for name in names):
        if len(names) > 1:
            msg = f"a websocket route takes no other method, got {text!r}; write WS alone"
            raise SpecError(msg)
        return (), True
    methods: list[str] = []
    for name in names:
        if name not in HTTP_METHODS:
            known = " ".join((*HTTP_METHODS, "WS"))
            msg = f"unknown HTTP method {name or text!r}; use one of {known}"
            raise SpecError(msg)
        if name not in methods:
            methods.append(name)
    return tuple(methods), False


def convert_path(path: str) -> tuple[str, dict[str, type]]:
    """Rewrite Flask (``<int:id>``) and Express (``:id``) parameters in FastAPI syntax.

    Returns the FastAPI path and the types that converters in the path fix.
    """
    if not path.startswith("/"):
        msg = f"path {path!r} must start with '/', e.g. /items/{{item_id}}"
        raise SpecError(msg)
    if any(ch.isspace() for ch in path):
        msg = f"path {path!r} contains whitespace; remove it or percent-encode it"
        raise SpecError(msg)
    control = next((ch for ch in path if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
    if control is not None:
        msg = f"path {path!r} contains the control character {control!r}; remove it"
        raise SpecError(msg)
    converters: dict[str, type] = {}

    def flask(match: re.Match[str]) -> str:
        name, conv = match.group("name"), match.group("conv")
        if conv is None:
            return "{" + name + "}"
        if conv not in CONVERTER_TYPES:
            known = ", ".join(CONVERTER_TYPES)
            msg = f"unknown converter {conv!r} in {match.group(0)!r}; use one of {known}"
            raise SpecError(msg)
        converters[name] = CONVERTER_TYPES[conv]
        # Only path needs Starlette's converter (it lets the value contain '/');
        # the others are typed through the function's annotation, as FastAPI does.
        return "{" + name + (":path}" if conv == "path" else "}")

    converted = _FLASK_PARAM.sub(flask, path)
    converted = _COLON_PARAM.sub(lambda m: "{" + m.group("name") + "}", converted)

    names: list[str] = []
    for match in _BRACE_PARAM.finditer(converted):
        conv = match.group("conv")
        if conv is not None and conv not in CONVERTER_TYPES:
            known = ", ".join(CONVERTER_TYPES)
            msg = f"unknown converter {conv!r} in {match.group(0)!r}; use one of {known}"
            raise SpecError(msg)
        if conv == "path":
            converters.setdefault(match.group("name"), str)
        names.append(match.group("name"))
    leftover = _BRACE_PARAM.sub("", converted)
    if any(ch in leftover for ch in "{}<>"):
        msg = f"malformed path parameter in {path!r}; write it as {{name}}, <name> or <int:name>"
        raise SpecError(msg)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        msg = f"path parameter {duplicates[0]!r} appears twice in {path!r}; give each a new name"
        raise SpecError(msg)
    return converted, converters


def _keyword_call(source: str) -> ast.Call | None:
    """``source`` parsed as the arguments of a call, checked to be keywords only."""
    if not source.strip():
        return None
    try:
        call = ast.parse(f"f({source})", mode="eval").body
    except SyntaxError as exc:
        msg = f"cannot read the keywords {source!r}: {exc.msg}; write them as in the decorator call"
        raise SpecError(msg) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        msg = f"cannot read the keywords {source!r}: {exc}; write them as in the decorator call"
        raise SpecError(msg) from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "f"):
        # A ')' in the text closed the call early: `a=1), (2` reads as a tuple of two.
        msg = (
            f"the keywords {source!r} are not one keyword list (unbalanced brackets?); "
            "write NAME=VALUE, ... as inside the decorator's parentheses"
        )
        raise SpecError(msg)
    if call.args or any(kw.arg is None for kw in call.keywords):
        msg = (
            f"the keywords {source!r} must all be NAME=VALUE, e.g. status_code=201, tags=['items']"
        )
        raise SpecError(msg)
    return call


def check_keywords(source: str) -> None:
    """Check that ``source`` reads as decorator keywords (``status_code=201, tags=["a"]``)."""
    _keyword_call(source)


def keyword_names(source: str) -> tuple[str, ...]:
    """``"status_code=201, tags=['a']"`` -> ``("status_code", "tags")``."""
    call = _keyword_call(source)
    return () if call is None else tuple(kw.arg for kw in call.keywords if kw.arg is not None)


def parse_route_line(line: str) -> RouteSpec:
    """Parse ``METHOD[,METHOD...] PATH [KEYWORD=VALUE, ...]``."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        msg = (
            f"%%route needs a method and a path, got {line.strip()!r}; "
            "e.g. %%route GET /items/{item_id}"
        )
        raise SpecError(msg)
    methods, websocket = parse_methods(parts[0])
    path, converters = convert_path(parts[1])
    keywords = parts[2].strip() if len(parts) > 2 else ""
    check_keywords(keywords)
    return RouteSpec(methods, path, converters, keywords, websocket)
