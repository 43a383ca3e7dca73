"""What the explorer and the request builder share: CSS, escaping, response and operation HTML.

Also what the explorer lists (``OperationReader``) and ``_Live``, the mixin that redraws a
widget after cells that changed the app's routes (``session.route_listeners``).
"""

from __future__ import annotations

import html
import json
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import ipywidgets as widgets
from starlette.routing import BaseRoute

from . import _forms
from ._checkpoints import app_document, built_route_by_route, followed_routes
from ._client import validation_rows
from ._forms import FormField, Operation
from ._openapi import RouteOperations, Snapshot, UnitId
from ._registry import Reachability


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
def read_operations(session: Any) -> tuple[list[Operation], dict[str, Any], str]:
    """The app's operations and OpenAPI, or an error line when the schema cannot be built."""
    app = session.current_app()
    if app is None:
        return [], {}, NO_APP
    try:
        spec = app_document(session, app)  # only routes not seen before are generated
    except Exception as exc:  # a model FastAPI cannot describe: say so, keep the widget
        return [], {}, _cannot_build(exc)
    cache = _OPERATION_CACHES.setdefault(session, _forms.OperationCache())
    return _forms.operations(spec, cache), spec, ""


NO_APP = "no app yet: run a %%route cell or app = FastAPI()"


def _cannot_build(exc: Exception) -> str:
    return f"cannot build the OpenAPI schema: {type(exc).__name__}: {exc}"


# Per session: the builders re-read the document after every cell that changed routes,
# and only the changed routes' operations are new objects in it.
_OPERATION_CACHES: weakref.WeakKeyDictionary[Any, _forms.OperationCache] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class Listing:
    """What the explorer lists: operations in document order, and what marks them."""

    ops: list[Operation] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # the document's title and version
    unreachable: dict[str, str] = field(default_factory=dict)  # label -> why
    problem: str = ""


Entry = tuple[BaseRoute, list[Operation]]  # a route and the operations read from it


class OperationReader:
    """The app's operations for the explorer, read again only where routes changed.

    Each route's operations come from its own OpenAPI document, generated once by the
    session's contract tracker, so a redraw after a re-run reads that one route and puts
    the rest together from what it read before, in the order of FastAPI's document (paths
    as they first appear, methods in a fixed order, the last route winning a duplicate).
    An app whose document is not FastAPI's own (``built_route_by_route``) is read whole.
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self._units: dict[UnitId, Entry] = {}
        self._documents: dict[int, Mapping[str, Any]] = {}  # id(op) -> its document
        self._snapshot: Snapshot | None = None  # what the last listing was read from
        self._ops: list[Operation] = []
        self._position: dict[str, int] = {}  # label -> index in _ops
        self._whole = _forms.OperationCache()
        self._reachability = Reachability()

    def read(self) -> Listing:
        app = self.session.current_app()
        if app is None:
            return Listing(problem=NO_APP)
        try:
            snapshot, cache = followed_routes(self.session, app)
            if built_route_by_route(app):
                ops = self._by_route(snapshot, cache)
                info = {"title": app.title, "version": app.version}
            else:
                spec = app_document(self.session, app)
                self._snapshot, self._units = None, {}  # read route by route afresh later
                ops = _forms.operations(spec, self._whole)
                self._documents = {id(op): spec for op in ops}
                info = dict(spec.get("info") or {})
        except Exception as exc:  # a model FastAPI cannot describe: say so, keep the widget
            return Listing(problem=_cannot_build(exc))
        hidden = self._reachability.update(snapshot.routes)
        return Listing(ops, info, unreachable_operations(snapshot.routes, hidden))

    def document(self, op: Operation) -> Mapping[str, Any]:
        """The OpenAPI document ``op`` was read from (its ``$ref``s point into it)."""
        return self._documents.get(id(op), {})

    def _by_route(self, snapshot: Snapshot, cache: RouteOperations) -> list[Operation]:
        previous, self._snapshot = self._snapshot, None  # set again once read in full
        if previous is not None and not (previous.versions or snapshot.versions):
            replaced = self._replaced_in_place(previous, snapshot, cache)
            if replaced is not None:
                self._snapshot = snapshot
                return replaced
        units, versions = self._units, snapshot.versions
        kept: dict[UnitId, Entry] = {}
        paths: dict[str, dict[str, Operation]] = {}
        for route_id, route in zip(snapshot.ids, snapshot.routes, strict=True):
            unit = (route_id, versions.get(route_id) if versions else None)
            entry = units.get(unit)
            if entry is None or entry[0] is not route:
                entry = self._read(route, unit[1], cache)
            kept[unit] = entry
            for op in entry[1]:
                paths.setdefault(op.path, {})[op.method] = op
        alive = {id(op) for _, ops in kept.values() for op in ops}
        self._documents = {k: v for k, v in self._documents.items() if k in alive}
        self._units = kept
        ops: list[Operation] = []
        for methods in paths.values():
            if len(methods) == 1:
                ops += methods.values()
            else:
                ops += sorted(methods.values(), key=lambda op: _METHOD_RANK[op.method])
        self._ops, self._position = ops, {op.label: n for n, op in enumerate(ops)}
        self._snapshot = snapshot
        return ops

    def _replaced_in_place(
        self, previous: Snapshot, snapshot: Snapshot, cache: RouteOperations
    ) -> list[Operation] | None:
        """The operations when routes were only replaced, each by one giving the same
        operations at the same place (a re-run cell): the last list with the new ones in;
        None for any other change, which is read in full."""
        removed, added = previous.changed(snapshot)
        if not removed or len(removed) != len(added) or len(previous.ids) != len(snapshot.ids):
            return None
        ops = list(self._ops)
        replaced: list[UnitId] = []
        for (old_route, _), (new_route, _) in zip(removed, added, strict=True):
            if previous.ids.index(id(old_route)) != snapshot.ids.index(id(new_route)):
                return None
            old = self._units.get((id(old_route), None))
            entry = self._units[(id(new_route), None)] = self._read(new_route, None, cache)
            replaced.append((id(old_route), None))  # kept until the change is taken in full
            if old is None or [op.label for op in old[1]] != [op.label for op in entry[1]]:
                return None
            for was, now in zip(old[1], entry[1], strict=True):
                position = self._position.get(was.label)
                if position is None or ops[position] is not was:  # hidden by a later route
                    return None
                ops[position] = now
        for unit in replaced:
            for op in self._units.pop(unit)[1]:
                self._documents.pop(id(op), None)
        self._ops = ops
        return ops

    def _read(self, route: BaseRoute, version: int | None, cache: RouteOperations) -> Entry:
        if not cache.keys(route, version):
            return route, []
        document = cache.document(route, version)
        ops = _forms.operations(document)
        for op in ops:
            self._documents[id(op)] = document
        return route, ops


_METHOD_RANK = {method.upper(): rank for rank, method in enumerate(_forms.METHOD_ORDER)}


def unreachable_operations(routes: Sequence[Any], hidden: Mapping[int, str]) -> dict[str, str]:
    """ "METHOD /path" -> why no request reaches it, for operations an earlier route hides.

    ``hidden`` is ``unreachable(routes)``; an operation another route still serves is not
    listed.
    """
    if not hidden:
        return {}
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
        """Changes whenever a route is added, replaced or removed (FastAPI builds a new
        route for each): the tracker's snapshot of the routes, kept while they stay."""
        app = self.session.current_app()
        if app is None:
            return ()
        try:
            return (id(app), followed_routes(self.session, app)[0])
        except Exception:  # routes nbapi cannot follow: redraw, which names the problem
            return (object(),)

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
