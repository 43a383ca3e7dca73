"""What the explorer and the request builder share: CSS, escaping, response and operation HTML.

Also the routes fingerprint and ``_Live``, the mixin that redraws a widget after cells
that changed the app's routes (``session.route_listeners``).
"""

from __future__ import annotations

import html
import inspect
import json
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx2
import ipywidgets as widgets

from . import _forms
from ._checkpoints import app_document
from ._client import validation_rows
from ._forms import FormField, Operation
from ._registry import unreachable


def _wrap() -> widgets.Layout:
    """Rows wrap rather than scroll sideways: the builder fits JupyterLab's default width."""
    return widgets.Layout(flex_flow="row wrap", max_width="100%")


BODY_LIMIT = 100_000  # characters of a response body drawn in the widget
JSON_NODES = 2_000  # larger JSON bodies are drawn as plain text, not as a tree

CSS = """<style>
.nbapi-widget { font-size: var(--jp-ui-font-size1, 13px); }
.nbapi-badge { display: inline-block; min-width: 4.6em; text-align: center; color: #fff;
  font: bold 12px monospace; border-radius: 3px; padding: 1px 4px; margin-right: 6px; }
.nbapi-badge-GET { background: #1565c0; } .nbapi-badge-POST { background: #2e7d32; }
.nbapi-badge-PUT { background: #ef6c00; } .nbapi-badge-PATCH { background: #00838f; }
.nbapi-badge-DELETE { background: #c62828; } .nbapi-badge-other { background: #616161; }
.nbapi-path { font-family: monospace; font-weight: bold; }
.nbapi-muted { color: #666; }
.nbapi-deprecated .nbapi-path { text-decoration: line-through; }
.nbapi-flag { color: #b26a00; font-weight: bold; margin-left: 6px; }
.nbapi-table { border-collapse: collapse; margin: 4px 0; }
.nbapi-table th, .nbapi-table td { text-align: left; padding: 2px 8px; vertical-align: top;
  border-bottom: 1px solid #ddd; font-family: monospace; white-space: pre-wrap; }
.nbapi-pre { white-space: pre-wrap; word-break: break-word; font-family: monospace;
  max-height: 30em; overflow: auto; margin: 2px 0; }
.nbapi-json details { margin-left: 1.2em; } .nbapi-json summary { cursor: pointer; }
.nbapi-json { font-family: monospace; max-height: 30em; overflow: auto; }
.nbapi-status-ok { color: #2e7d32; font-weight: bold; }
.nbapi-status-error { color: #c62828; font-weight: bold; }
.nbapi-warned input, .nbapi-warned textarea, .nbapi-warned select {
  border: 2px solid #ef6c00 !important; }
.nbapi-invalid input, .nbapi-invalid textarea, .nbapi-invalid select,
.nbapi-invalid .widget-upload { border: 2px solid #d32f2f !important; background: #fff5f5; }
.nbapi-error-text { color: #c62828; } .nbapi-warning-text { color: #b26a00; }
</style>"""


def escape(text: object) -> str:
    """Text for HTML: nothing a route returns is ever markup or script."""
    return html.escape(str(text), quote=True)


def badge(method: str) -> str:
    known = method if method in ("GET", "POST", "PUT", "PATCH", "DELETE") else "other"
    return f'<span class="nbapi-badge nbapi-badge-{known}">{escape(method)}</span>'


def css_name(text: str) -> str:
    """A CSS-class-safe spelling of a field key: ``path:item_id`` -> ``path-item_id``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


# -- the live update ------------------------------------------------------------------
def routes_fingerprint(app: Any) -> tuple[Any, ...]:
    """Cheap to compute, and changes whenever a route is added, replaced or removed."""
    items = []
    for route in getattr(app, "routes", ()):
        endpoint = getattr(route, "endpoint", None)
        signature = _signature_text(endpoint) if endpoint is not None else ""
        items.append(
            (
                id(route),
                type(route).__name__,
                getattr(route, "path", ""),
                tuple(sorted(getattr(route, "methods", None) or ())),
                getattr(route, "name", ""),
                signature,
                repr(getattr(route, "response_model", None)),
                tuple(str(t) for t in getattr(route, "tags", ()) or ()),
                getattr(route, "summary", None),
                getattr(route, "deprecated", None),
                getattr(route, "status_code", None),
                getattr(route, "include_in_schema", True),
            )
        )
    return (id(app), tuple(items))


def _signature_text(endpoint: Any) -> str:
    """``str(inspect.signature(endpoint))``, computed again only when what it is made of
    changed: the fingerprint runs after every cell, over every route."""
    code = getattr(endpoint, "__code__", None)
    if code is None or hasattr(endpoint, "__wrapped__") or hasattr(endpoint, "__signature__"):
        return _signature_now(endpoint)
    parts = (code, endpoint.__defaults__, endpoint.__kwdefaults__)
    annotations = tuple(getattr(endpoint, "__annotations__", {}).items())
    try:
        cached = _SIGNATURES.get(endpoint)
    except TypeError:  # not weakly referable
        return _signature_now(endpoint)
    if cached is not None and _same(cached[0], parts) and _same(cached[1], annotations):
        return cached[2]
    text = _signature_now(endpoint)
    _SIGNATURES[endpoint] = (parts, annotations, text)
    return text


def _signature_now(endpoint: Any) -> str:
    try:
        return str(inspect.signature(endpoint))
    except (TypeError, ValueError):
        return ""


def _same(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    """The same objects (``is``, not ``==``: defaults such as ``Query()`` compare oddly)."""
    return len(old) == len(new) and all(
        a is b or (isinstance(a, tuple) and isinstance(b, tuple) and _same(a, b))
        for a, b in zip(old, new, strict=True)
    )


_SIGNATURES: weakref.WeakKeyDictionary[Any, tuple[Any, Any, str]] = weakref.WeakKeyDictionary()


def read_operations(session: Any) -> tuple[list[Operation], dict[str, Any], str]:
    """The app's operations and OpenAPI, or an error line when the schema cannot be built."""
    app = session.current_app()
    if app is None:
        return [], {}, "no app yet: run a %%route cell or app = FastAPI()"
    try:
        spec = app_document(session, app)  # only routes not seen before are generated
    except Exception as exc:  # a model FastAPI cannot describe: say so, keep the widget
        return [], {}, f"cannot build the OpenAPI schema: {type(exc).__name__}: {exc}"
    cache = _OPERATION_CACHES.setdefault(session, _forms.OperationCache())
    return _forms.operations(spec, cache), spec, ""


# Per session: the explorer and the builders re-read the document after every cell that
# changed routes, and only the changed routes' operations are new objects in it.
_OPERATION_CACHES: weakref.WeakKeyDictionary[Any, _forms.OperationCache] = (
    weakref.WeakKeyDictionary()
)


def unreachable_operations(app: Any) -> dict[str, str]:
    """ "METHOD /path" -> why no request reaches it, for operations an earlier route hides."""
    routes = list(getattr(getattr(app, "router", None), "routes", ()))
    hidden = unreachable(routes)
    found: dict[str, str] = {}
    served: set[str] = set()
    for route in routes:
        path = getattr(route, "path_format", "")  # as OpenAPI names it
        for method in getattr(route, "methods", None) or ():
            label = f"{method} {path}"
            if id(route) in hidden:
                found.setdefault(label, hidden[id(route)])
            else:
                served.add(label)
    return {label: why for label, why in found.items() if label not in served}


class _Live:
    """Mixin: call ``self.routes_changed()`` after cells that changed the app's routes."""

    session: Any
    _fingerprint: tuple[Any, ...] | None = None
    _listener: Callable[[], None] | None = None

    def _subscribe(self) -> None:
        listeners = getattr(self.session, "route_listeners", None)
        if listeners is None:
            return
        ref = weakref.ref(self)

        def listener() -> None:
            target = ref()
            if target is None:
                if listener in listeners:
                    listeners.remove(listener)
                return
            target.check_routes()

        self._listener = listener
        listeners.append(listener)
        self._fingerprint = self._current_fingerprint()

    def _unsubscribe(self) -> None:
        listeners = getattr(self.session, "route_listeners", None)
        if listeners is not None and self._listener in listeners:
            listeners.remove(self._listener)
        self._listener = None

    def _current_fingerprint(self) -> tuple[Any, ...]:
        app = self.session.current_app()
        return routes_fingerprint(app) if app is not None else ()

    def check_routes(self) -> bool:
        """Redraw if the routes changed since the last look; True when it redrew."""
        if self._listener is None:  # closed (perhaps earlier in this very round)
            return False
        fingerprint = self._current_fingerprint()
        if fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        try:
            self.routes_changed()
        except Exception as exc:  # never break the user's cell over a widget
            self.show_problem(f"nbapi could not update this widget: {type(exc).__name__}: {exc}")
        return True

    def routes_changed(self) -> None:
        raise NotImplementedError

    def show_problem(self, text: str) -> None:
        raise NotImplementedError


# -- drawing responses --------------------------------------------------------------
def json_html(value: Any, budget: list[int] | None = None, key: str = "", depth: int = 0) -> str:
    """A JSON value as nested, collapsible ``<details>`` (open two levels deep), all escaped."""
    budget = budget if budget is not None else [JSON_NODES]
    budget[0] -= 1
    label = f'<span class="nbapi-muted">{escape(key)}:</span> ' if key else ""
    is_open = " open" if depth < 2 else ""
    if isinstance(value, dict) and value:
        inner = "".join(json_html(v, budget, str(k), depth + 1) for k, v in value.items())
        size = f"{len(value)} key{'s' if len(value) != 1 else ''}"
        return f"<details{is_open}><summary>{label}{{ {size} }}</summary>{inner}</details>"
    if isinstance(value, list) and value:
        inner = "".join(json_html(v, budget, str(i), depth + 1) for i, v in enumerate(value))
        size = f"{len(value)} item{'s' if len(value) != 1 else ''}"
        return f"<details{is_open}><summary>{label}[ {size} ]</summary>{inner}</details>"
    text = json.dumps(value, ensure_ascii=False)
    return f"<div>{label}{escape(text)}</div>"


def _count_nodes(value: Any, limit: int) -> int:
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def body_html(response: httpx2.Response) -> str:
    """The body as text: JSON as a collapsible tree, anything else (HTML too) escaped."""
    if not response.content:
        return '<div class="nbapi-muted" data-nbapi="body">(empty body)</div>'
    content_type = response.headers.get("content-type", "")
    if "json" in content_type:
        try:
            payload = response.json()
        except ValueError:
            pass
        else:
            if _count_nodes(payload, JSON_NODES) <= JSON_NODES and isinstance(
                payload, (dict, list)
            ):
                return f'<div class="nbapi-json" data-nbapi="body">{json_html(payload)}</div>'
            text = json.dumps(payload, indent=2, ensure_ascii=False)
            return f'<pre class="nbapi-pre" data-nbapi="body">{escape(_clip(text))}</pre>'
    try:
        text = response.content.decode(response.encoding or "utf-8")
    except (UnicodeDecodeError, LookupError):
        kind = content_type.split(";")[0] or "binary data"
        text = f"<{len(response.content)} bytes of {kind}>"
    return f'<pre class="nbapi-pre" data-nbapi="body">{escape(_clip(text))}</pre>'


def _clip(text: str) -> str:
    if len(text) <= BODY_LIMIT:
        return text
    return text[:BODY_LIMIT] + f"\n... ({len(text) - BODY_LIMIT} more characters)"


def validation_html(rows: Sequence[tuple[str, str, str]]) -> str:
    head = "<tr><th>location</th><th>message</th><th>input</th></tr>"
    cells = "".join(
        f'<tr data-nbapi-loc="{escape(loc)}"><td>{escape(loc)}</td><td>{escape(msg)}</td>'
        f"<td>{escape(given)}</td></tr>"
        for loc, msg, given in rows
    )
    return f'<table class="nbapi-table" data-nbapi="validation">{head}{cells}</table>'


def response_html(response: httpx2.Response, elapsed_ms: float, target: str) -> str:
    """Status, time, headers (collapsed), the 422 table and the body."""
    status = response.status_code
    reason = response.reason_phrase or ""
    css = "nbapi-status-ok" if status < 400 else "nbapi-status-error"
    parts = [
        f'<div><span class="{css}" data-nbapi="status">HTTP {status} {escape(reason)}</span>'
        f' <span class="nbapi-muted" data-nbapi="time">{elapsed_ms:.0f} ms, {escape(target)}'
        "</span></div>"
    ]
    header_rows = "".join(
        f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in response.headers.items()
    )
    parts.append(
        f"<details><summary>headers ({len(response.headers)})</summary>"
        f'<table class="nbapi-table" data-nbapi="headers">{header_rows}</table></details>'
    )
    rows = None
    if status == 422:
        try:
            rows = validation_rows(response.json())
        except ValueError:
            rows = None
    if rows:
        parts.append(validation_html(rows))
        parts.append(f"<details><summary>body</summary>{body_html(response)}</details>")
    else:
        parts.append(body_html(response))
    return "".join(parts)


# -- describing an operation (the explorer's details) ------------------------------------
def operation_details_html(op: Operation, spec: Mapping[str, Any]) -> str:
    parts = []
    if op.description:
        parts.append(f'<pre class="nbapi-pre">{escape(op.description)}</pre>')
    if op.fields:
        rows = "".join(
            f"<tr><td>{escape(f.name)}{' *' if f.required else ''}</td><td>{escape(f.location)}"
            f"</td><td>{escape(f.type_label)}</td><td>{escape(_default_text(f))}</td>"
            f"<td>{escape(_field_notes(f))}</td></tr>"
            for f in op.fields
        )
        parts.append(
            "<b>Parameters</b>"
            '<table class="nbapi-table" data-nbapi="parameters"><tr><th>name</th><th>in</th>'
            f"<th>type</th><th>default</th><th>notes</th></tr>{rows}</table>"
        )
    if op.body is not None:
        schema = json.dumps(expand_refs(op.body.schema, spec), indent=2, ensure_ascii=False)
        required = " (required)" if op.body.required else ""
        parts.append(
            f"<details><summary><b>Request body</b> {escape(op.body.content_type)}{required}"
            f'</summary><pre class="nbapi-pre" data-nbapi="body-schema">{escape(schema)}</pre>'
            "</details>"
        )
    if op.security:
        names = ", ".join(s.label for s in op.security)
        parts.append(f"<div><b>Security</b> {escape(names)}</div>")
    for status, description, response_schema in op.responses:
        shown = (
            json.dumps(expand_refs(response_schema, spec), indent=2)
            if response_schema
            else "(no schema)"
        )
        parts.append(
            f'<details data-nbapi-response="{escape(status)}"><summary><b>{escape(status)}</b> '
            f"{escape(description)}</summary>"
            f'<pre class="nbapi-pre">{escape(shown)}</pre></details>'
        )
    return "".join(parts)


def _default_text(item: FormField) -> str:
    return _forms.scalar_text(item.default) if item.has_default else ""


def _field_notes(item: FormField) -> str:
    notes = [n for n in (item.hint(), item.description) if n]
    if item.options:
        notes.insert(0, "one of " + ", ".join(item.options))
    if item.deprecated:
        notes.insert(0, "deprecated")
    return "; ".join(notes)


def expand_refs(schema: Any, spec: Mapping[str, Any], depth: int = 0) -> Any:
    """``schema`` with local ``$ref`` s replaced by what they point at (bounded depth)."""
    if isinstance(schema, list):
        return [expand_refs(s, spec, depth) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    if "$ref" in schema:
        if depth >= 6:
            return {"$ref": schema["$ref"]}
        target = _forms.lookup(spec, str(schema["$ref"]))
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return expand_refs({**target, **rest}, spec, depth + 1)
    return {k: expand_refs(v, spec, depth) for k, v in schema.items()}
