"""The explorer and the request builder: ipywidgets views of the kernel app's OpenAPI.

``Explorer`` lists every operation, grouped by tag, and redraws itself after any
cell that changed the app's routes (``session.route_listeners``). Each operation
opens a ``RequestBuilder``: a form made from the operation's OpenAPI (by
``nbapi._forms``), which sends in-process or to the live server, shows the
response as text (never as live HTML), marks the fields a 422 points at, keeps
a history to replay, and writes any request as curl, httpx or ``%%http``.

Widgets only use what a user has: the app's OpenAPI (what ``app.openapi()`` gives, put
together route by route by ``nbapi._openapi`` so a redraw generates only changed routes),
``session.client`` and the live server's ``client()``. Every widget's text/plain view is
short and stable.
"""

from __future__ import annotations

import contextlib
import html
import inspect
import json
import re
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import ipywidgets as widgets

from . import _forms
from ._checkpoints import app_document
from ._client import validation_rows
from ._errors import UserError
from ._forms import Auth, FormField, FormWarning, Operation, PreparedRequest
from ._registry import unreachable

HISTORY_SIZE = 50


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
        try:
            signature = str(inspect.signature(endpoint)) if endpoint is not None else ""
        except (TypeError, ValueError):
            signature = ""
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


def read_operations(session: Any) -> tuple[list[Operation], dict[str, Any], str]:
    """The app's operations and OpenAPI, or an error line when the schema cannot be built."""
    app = session.current_app()
    if app is None:
        return [], {}, "no app yet: run a %%route cell or app = FastAPI()"
    try:
        spec = app_document(session, app)  # only routes not seen before are generated
    except Exception as exc:  # a model FastAPI cannot describe: say so, keep the widget
        return [], {}, f"cannot build the OpenAPI schema: {type(exc).__name__}: {exc}"
    return _forms.operations(spec), spec, ""


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


# -- the request builder ---------------------------------------------------------------
@dataclass(frozen=True)
class HistoryEntry:
    """A request the builder sent, and what came back."""

    request: PreparedRequest
    target: str  # "in-process" or "live server"
    status: int | None
    reason: str = ""

    def line(self, number: int) -> str:
        result = f"{self.status} {self.reason}".strip() if self.status else "failed"
        return f"{number}. {self.request.label} -> {result} ({self.target})"


IN_PROCESS = "in-process"
LIVE_SERVER = "live server"


class FieldInput:
    """The widget for one form field, and its value as ``_forms`` wants it."""

    def __init__(self, item: FormField, initial: Any = None) -> None:
        self.item = item
        start = item.initial() if initial is None else initial
        layout = widgets.Layout(width="22em")
        self.widget: widgets.Widget
        if item.location == "file":
            self.widget = widgets.FileUpload(multiple=item.kind == "array")
        elif item.kind == "enum" or item.kind == "boolean":
            options = list(item.options) if item.kind == "enum" else ["true", "false"]
            choices = ["", *options] if not item.required or not start else options
            value = start if isinstance(start, str) and start in choices else choices[0]
            self.widget = widgets.Dropdown(options=choices, value=value, layout=layout)
        elif item.kind == "array" and item.options:
            chosen = [v for v in (start if isinstance(start, list) else []) if v in item.options]
            self.widget = widgets.SelectMultiple(
                options=list(item.options), value=chosen, layout=layout
            )
        elif item.kind == "array":
            lines = "\n".join(start) if isinstance(start, list) else str(start)
            self.widget = widgets.Textarea(
                value=lines, placeholder="one value per line", rows=3, layout=layout
            )
        else:
            self.widget = widgets.Text(value=str(start), placeholder=item.type_label, layout=layout)
        self.widget.add_class("nbapi-input")
        self.widget.add_class(f"nbapi-input-{css_name(item.key)}")

    @property
    def value(self) -> Any:
        widget = self.widget
        if isinstance(widget, widgets.FileUpload):
            return [(f["name"], bytes(f["content"])) for f in widget.value]
        if isinstance(widget, widgets.SelectMultiple):
            return list(widget.value)
        if self.item.kind == "array":
            return [line for line in str(widget.value).splitlines() if line.strip()]
        return widget.value

    @value.setter
    def value(self, value: Any) -> None:
        widget = self.widget
        if isinstance(widget, widgets.FileUpload):
            return  # browsers only let the user pick files
        if isinstance(widget, widgets.SelectMultiple):
            options = list(widget.options)
            widget.value = [v for v in (value or []) if v in options]
        elif self.item.kind == "array" and isinstance(widget, widgets.Textarea):
            widget.value = "\n".join(value) if isinstance(value, list) else str(value or "")
        elif isinstance(widget, widgets.Dropdown):
            text = str(value or "")
            if text not in widget.options:
                widget.options = [*widget.options, text]
            widget.value = text
        else:
            widget.value = str(value if value is not None else "")


def mark_field(
    box: widgets.Box, message: widgets.HTML, errors: Sequence[str], warnings: Sequence[str]
) -> None:
    """Outline a field red (the server's errors) or amber (warnings, said under it).

    The server's errors are not repeated under the field: the 422 table says them.
    """
    for css, on in (("nbapi-invalid", bool(errors)), ("nbapi-warned", bool(warnings))):
        if on:
            box.add_class(css)
        else:
            box.remove_class(css)
    box.tooltip = "; ".join(errors) or None
    lines = [f'<div class="nbapi-warning-text">⚠ {escape(w)}</div>' for w in warnings]
    message.value = f'<div data-nbapi="field-message">{"".join(lines)}</div>'


class FieldRow:
    """Label, input and message line of one field; the row carries the marks."""

    def __init__(self, item: FormField, initial: Any = None) -> None:
        self.item = item
        self.input = FieldInput(item, initial)
        required = (
            ' <span class="nbapi-error-text" title="required">*</span>' if item.required else ""
        )
        notes = _field_notes(item)
        note_html = f'<div class="nbapi-muted">{escape(notes)}</div>' if notes else ""
        self.label = widgets.HTML(
            f'<span class="nbapi-path">{escape(item.name)}</span>{required} '
            f'<span class="nbapi-muted">{escape(item.type_label)} · {escape(item.location)}</span>'
            f"{note_html}",
            layout=widgets.Layout(width="18em"),
        )
        self.message = widgets.HTML("")
        self.box = widgets.HBox([self.label, self.input.widget, self.message], layout=_wrap())
        self.box.add_class("nbapi-field")
        self.box.add_class(f"nbapi-field-{css_name(item.key)}")
        self.invalid = False

    def close(self) -> None:
        for widget in (self.input.widget, self.label, self.message, self.box):
            widget.close()

    def mark(self, errors: Sequence[str], warnings: Sequence[str]) -> None:
        self.invalid = bool(errors)
        mark_field(self.box, self.message, errors, warnings)


class RequestBuilder(_Live, widgets.VBox):
    """A form for one operation of the kernel app: fill, send, read, replay, copy."""

    def __init__(
        self,
        session: Any,
        method: str | None = None,
        path: str | None = None,
        *,
        choose: bool = False,
        live: bool = True,
    ) -> None:
        super().__init__()
        self.session = session
        self.add_class("nbapi-widget")
        self.add_class("nbapi-builder")
        self.ops, self.spec, problem = read_operations(session)
        self.op: Operation | None = None
        path_values: dict[str, str] = {}
        if method is not None and path is not None:
            if problem:
                raise UserError(problem)
            self.op, path_values = _forms.find_operation(self.ops, method, path)
        elif self.ops:
            self.op = self.ops[0]
        self.choose = choose
        self.history: list[HistoryEntry] = []
        self.last_response: httpx2.Response | None = None
        self.last_warnings: list[FormWarning] = []
        self.rows: dict[str, FieldRow] = {}
        self.body_editor: widgets.Textarea | None = None
        self.body_message = widgets.HTML("")
        self._gone = False
        self._errors: dict[str, list[str]] = {}

        self.title = widgets.HTML()
        self.chooser = widgets.Dropdown(
            options=[op.label for op in self.ops],
            value=self.op.label if self.op else None,
            description="operation",
        )
        self.chooser.add_class("nbapi-chooser")
        self.chooser.observe(self._chose, names="value")
        self.target = widgets.ToggleButtons(options=[IN_PROCESS, LIVE_SERVER], value=IN_PROCESS)
        self.target.add_class("nbapi-target")
        self.form = widgets.VBox()
        self.auth_box = widgets.VBox()
        self.auth_scheme = widgets.Dropdown(description="auth")
        self.auth_token = widgets.Text(description="token", placeholder="token")
        self.auth_user = widgets.Text(description="username")
        self.auth_password = widgets.Password(description="password")
        self.token_button = widgets.Button(description="Get token")
        self.token_button.add_class("nbapi-get-token")
        self.token_button.on_click(lambda _: self.fetch_token())
        self.auth_message = widgets.HTML("")
        self.auth_scheme.observe(lambda _: self._draw_auth(), names="value")
        self.send_button = widgets.Button(description="Send", button_style="primary", icon="play")
        self.send_button.add_class("nbapi-send")
        self.send_button.on_click(lambda _: self.send_request())
        copy_buttons = []
        for kind, text in (("curl", "curl"), ("httpx2", "httpx2"), ("http", "%%http")):
            button = widgets.Button(description=text, tooltip=f"show the request as {text}")
            button.add_class(f"nbapi-copy-{kind}")
            button.on_click(lambda _, k=kind: self.show_code(k))
            copy_buttons.append(button)
        self.code = widgets.Textarea(rows=6, layout=widgets.Layout(width="100%", display="none"))
        self.code.add_class("nbapi-code")
        self.warnings_html = widgets.HTML("")
        self.response_html = widgets.HTML("")
        self.response_html.add_class("nbapi-response")
        self.history_select = widgets.Dropdown(options=[], description="history")
        self.history_select.add_class("nbapi-history")
        self.replay_button = widgets.Button(description="Replay", icon="repeat")
        self.replay_button.add_class("nbapi-replay")
        self.replay_button.on_click(lambda _: self.replay())
        self.load_button = widgets.Button(description="Edit", tooltip="load into the form")
        self.load_button.on_click(lambda _: self.load_history())
        self.history_code_button = widgets.Button(
            description="Code", tooltip="as curl, httpx, %%http"
        )
        self.history_code_button.add_class("nbapi-history-code")
        self.history_code_button.on_click(lambda _: self.show_history_code())
        self.history_box = widgets.HBox(
            [self.history_select, self.replay_button, self.load_button, self.history_code_button],
            layout=widgets.Layout(display="none", flex_flow="row wrap"),
        )
        top = [widgets.HTML(CSS), self.title]
        if choose:
            top.append(self.chooser)
        self.children = [
            *top,
            self.form,
            self.auth_box,
            widgets.HBox([self.send_button, self.target, *copy_buttons], layout=_wrap()),
            self.code,
            self.warnings_html,
            self.response_html,
            self.history_box,
        ]
        self._draw({f"path:{name}": value for name, value in path_values.items()})
        if live:
            self._subscribe()

    # -- text views -------------------------------------------------------------------
    def __repr__(self) -> str:
        if self.op is None:
            return "<nbapi request builder: no operations>"
        return f"<nbapi request builder: {self.op.label}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)
        return bundle

    # -- drawing ----------------------------------------------------------------------
    def _draw(self, values: Mapping[str, Any] | None = None) -> None:
        op = self.op
        old_rows = self.rows
        old_body = self.body_editor.value if self.body_editor is not None else None
        self.rows = {}
        self.body_editor = None
        self.code.layout.display = "none"
        if op is None:
            self.title.value = (
                '<div data-nbapi="builder-title">The app has no operations yet.</div>'
            )
            self.form.children = []
            self.auth_box.children = []
            return
        flags = ' <span class="nbapi-flag">deprecated</span>' if op.deprecated else ""
        gone = (
            ' <span class="nbapi-flag" data-nbapi="gone">no longer in the app</span>'
            if self._gone
            else ""
        )
        summary = f' <span class="nbapi-muted">{escape(op.summary)}</span>' if op.summary else ""
        self.title.value = (
            f'<div data-nbapi="builder-title" data-nbapi-op="{escape(op.label)}">'
            f'{badge(op.method)}<span class="nbapi-path">{escape(op.path)}</span>'
            f"{summary}{flags}{gone}</div>"
        )
        values = dict(values or {})
        if old_body is not None:
            values.setdefault("body", old_body)
        for key, row in old_rows.items():  # keep what the user typed when the form is redrawn
            values.setdefault(key, row.input.value)
        sections: list[widgets.Widget] = []
        titles = {
            "path": "Path parameters",
            "query": "Query parameters",
            "header": "Headers",
            "cookie": "Cookies",
        }
        for location, heading in titles.items():
            items = [f for f in op.fields if f.location == location]
            if not items:
                continue
            sections.append(widgets.HTML(f"<b>{heading}</b>"))
            for item in items:
                sections.append(self._add_row(item, values.get(item.key)))
        if op.body is not None:
            required = " (required)" if op.body.required else ""
            sections.append(
                widgets.HTML(f"<b>Body</b> {escape(op.body.content_type)}{escape(required)}")
            )
            if op.body.is_form:
                for item in op.body.fields:
                    sections.append(self._add_row(item, values.get(item.key)))
            else:
                text = values.get("body")
                self.body_editor = widgets.Textarea(
                    value=str(text) if text is not None else _forms.example_text(op.body),
                    rows=8,
                    layout=widgets.Layout(width="95%"),
                )
                self.body_editor.add_class("nbapi-input")
                self.body_editor.observe(lambda _: self._edited("body"), names="value")
                reset = widgets.Button(description="Reset to example")
                reset.add_class("nbapi-reset-body")
                reset.on_click(lambda _: self._reset_body())
                schema = json.dumps(expand_refs(op.body.schema, self.spec), indent=2)
                schema_html = widgets.HTML(
                    f'<details><summary>schema</summary><pre class="nbapi-pre" '
                    f'data-nbapi="body-schema">{escape(schema)}</pre></details>'
                )
                body_box = widgets.VBox(
                    [self.body_editor, self.body_message, widgets.HBox([reset, schema_html])]
                )
                body_box.add_class("nbapi-field")
                body_box.add_class("nbapi-field-body")
                self.body_box = body_box
                sections.append(body_box)
        self.form.children = sections
        for row in old_rows.values():
            row.close()
        self._errors, self.last_warnings = {}, []
        self._refresh_marks()
        self.warnings_html.value = ""
        names = [s.name for s in op.security]
        chosen = self.auth_scheme.value
        self.auth_scheme.options = [(s.label, s.name) for s in op.security]
        if names:  # ipywidgets 8 leaves a new dropdown blank: show the scheme in use
            self.auth_scheme.value = chosen if chosen in names else names[0]
        self._draw_auth()

    def _add_row(self, item: FormField, initial: Any) -> widgets.Widget:
        row = FieldRow(item, initial)
        self.rows[item.key] = row
        row.input.widget.observe(lambda _, key=item.key: self._edited(key), names="value")
        return row.box

    def _edited(self, key: str) -> None:
        """Re-run the client-side checks as the user types; they warn, never block."""
        if self.op is None:
            return
        self.last_warnings = _forms.check_request(self.op, self.values(), self.spec)
        self._errors.pop(key, None)  # the server's complaint was about the old value
        self._refresh_marks()
        self._show_warnings(self.last_warnings, sent=False)

    def _draw_auth(self) -> None:
        scheme = self._scheme()
        if scheme is None:
            self.auth_box.children = []
            return
        parts: list[widgets.Widget] = [widgets.HTML("<b>Authorization</b>"), self.auth_scheme]
        if scheme.kind in ("basic", "oauth2-password"):
            parts += [self.auth_user, self.auth_password]
        if scheme.kind == "oauth2-password":
            parts.append(self.token_button)
        if scheme.kind in ("bearer", "oauth2-password", "apikey"):
            self.auth_token.description = "key" if scheme.kind == "apikey" else "token"
            parts.append(self.auth_token)
        parts.append(self.auth_message)
        self.auth_box.children = parts

    def _scheme(self) -> _forms.SecurityScheme | None:
        if self.op is None or not self.op.security:
            return None
        chosen = self.auth_scheme.value
        return next((s for s in self.op.security if s.name == chosen), self.op.security[0])

    def _reset_body(self) -> None:
        if self.body_editor is not None and self.op is not None and self.op.body is not None:
            self.body_editor.value = _forms.example_text(self.op.body)

    def _chose(self, change: Mapping[str, Any]) -> None:
        label = change.get("new")
        op = next((o for o in self.ops if o.label == label), None)
        if op is not None and op != self.op:
            self.op = op
            self._gone = False
            # Another operation: start from its defaults, not from the last one's values.
            for row in self.rows.values():
                row.close()
            self.rows = {}
            if self.body_editor is not None:
                self.body_editor.close()
                self.body_editor = None
            self._draw()

    # -- live update ------------------------------------------------------------------
    def routes_changed(self) -> None:
        self.ops, self.spec, problem = read_operations(self.session)
        if problem:
            self.show_problem(problem)
            return
        labels = [op.label for op in self.ops]
        current = self.op.label if self.op else None
        with self.chooser.hold_trait_notifications():
            self.chooser.unobserve(self._chose, names="value")
            self.chooser.options = labels
            self.chooser.value = current if current in labels else None
            self.chooser.observe(self._chose, names="value")
        fresh = next((op for op in self.ops if op.label == current), None)
        if fresh is None:
            if self.op is None and self.ops:
                self.op = self.ops[0]
                self.chooser.value = self.op.label
                self._draw()
            elif not self._gone:
                self._gone = True
                self._draw()
            return
        if fresh != self.op or self._gone:
            self.op, self._gone = fresh, False
            self._draw()

    def show_problem(self, text: str) -> None:
        self.warnings_html.value = f'<div class="nbapi-error-text">{escape(text)}</div>'

    # -- values -------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The form's values by field key (``body`` is the JSON text)."""
        found = {key: row.input.value for key, row in self.rows.items()}
        if self.body_editor is not None:
            found["body"] = self.body_editor.value
        return found

    def set_value(self, key: str, value: Any) -> None:
        """Fill one field: ``set_value("path:item_id", "42")``, ``set_value("body", "{}")``."""
        if key == "body" and self.body_editor is not None:
            self.body_editor.value = str(value)
            return
        if key not in self.rows:
            known = ", ".join([*self.rows, *(["body"] if self.body_editor else [])])
            msg = f"this form has no field {key!r}; use one of {known}"
            raise UserError(msg)
        self.rows[key].input.value = value

    def auth(self) -> Auth | None:
        scheme = self._scheme()
        if scheme is None:
            return None
        return Auth(
            kind=scheme.kind,
            token=self.auth_token.value,
            username=self.auth_user.value,
            password=self.auth_password.value,
            param_name=scheme.param_name,
            location=scheme.location,
        )

    def prepared(self) -> PreparedRequest | None:
        """The request the form describes now."""
        if self.op is None:
            return None
        return _forms.build_request(self.op, self.values(), self.auth())

    # -- sending ------------------------------------------------------------------------
    def _client(self) -> tuple[httpx2.Client | None, str]:
        if self.target.value == LIVE_SERVER:
            server = self.session.server
            if server is None or not getattr(server, "running", False):
                return None, "the live server is not running; start it with %nbapi serve"
            return server.client(), ""
        self.session.app  # noqa: B018 - binds app = FastAPI() when there is none
        return self.session.client, ""

    def base_url(self) -> str:
        """Where curl and httpx code send the request: the live server, or where it would be."""
        server = self.session.server
        if server is not None and getattr(server, "running", False):
            return str(server.url).rstrip("/")
        config = self.session.config
        return f"http://{config.host}:{config.port}"

    def send_request(self) -> httpx2.Response | None:
        """Check the form (warnings only), send the request and show the response."""
        if self.op is None:
            return None
        values = self.values()
        self.last_warnings = _forms.check_request(self.op, values, self.spec)
        self._clear_marks()
        self._show_warnings(self.last_warnings, sent=True)
        request = _forms.build_request(self.op, values, self.auth())
        return self._dispatch(request)

    def _dispatch(self, request: PreparedRequest) -> httpx2.Response | None:
        client, problem = self._client()
        target = str(self.target.value)
        if client is None:
            self.response_html.value = (
                f'<div class="nbapi-error-text" data-nbapi="status">{escape(problem)}</div>'
            )
            return None
        started = time.perf_counter()
        try:
            response = client.request(**request.httpx_kwargs())
        except httpx2.HTTPError as exc:
            self._remember(HistoryEntry(request, target, None))
            self.response_html.value = (
                f'<div class="nbapi-error-text" data-nbapi="status">request failed: '
                f"{escape(type(exc).__name__)}: {escape(exc)}</div>"
            )
            return None
        elapsed = (time.perf_counter() - started) * 1000
        self.last_response = response
        self._remember(HistoryEntry(request, target, response.status_code, response.reason_phrase))
        self.response_html.value = response_html(response, elapsed, target)
        if response.status_code == 422 and self.op is not None:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            # Said once: the response's table says what is wrong and the fields it names
            # are outlined; the client-side warnings about the same values step aside.
            self.last_warnings = []
            self.warnings_html.value = ""
            self.mark_errors(_forms.error_fields(self.op, payload))
        return response

    def _remember(self, entry: HistoryEntry) -> None:
        self.history.append(entry)
        del self.history[:-HISTORY_SIZE]
        options = [(e.line(i + 1), i) for i, e in enumerate(self.history)]
        self.history_select.options = options
        self.history_select.value = len(self.history) - 1
        self.history_box.layout.display = "flex"

    def replay(self, index: int | None = None) -> httpx2.Response | None:
        """Send a request from the history again, exactly as it was sent."""
        if not self.history:
            return None
        chosen = self.history_select.value if index is None else index
        entry = self.history[chosen if chosen is not None else -1]
        self._clear_marks()
        self.warnings_html.value = ""
        return self._dispatch(entry.request)

    def load_history(self, index: int | None = None) -> None:
        """Put a past request's query and body back into the form."""
        if not self.history or self.op is None:
            return
        chosen = self.history_select.value if index is None else index
        request = self.history[chosen if chosen is not None else -1].request
        if request.body_kind == "json" and self.body_editor is not None:
            self.body_editor.value = request.content
        queries: dict[str, list[str]] = {}
        for name, value in request.query:
            queries.setdefault(name, []).append(value)
        for row in self.rows.values():
            if row.item.location == "query" and row.item.name in queries:
                texts = queries[row.item.name]
                row.input.value = texts if row.item.kind == "array" else texts[0]

    # -- marks ---------------------------------------------------------------------------
    @property
    def marked(self) -> set[str]:
        """Keys of the fields the last 422 pointed at."""
        keys = {key for key, row in self.rows.items() if row.invalid}
        if self.body_editor is not None and "nbapi-invalid" in self.body_box._dom_classes:
            keys.add("body")
        return keys

    def mark_errors(self, errors: Mapping[str, Sequence[str]]) -> None:
        """Mark the fields a 422 pointed at (red), next to the client-side warnings (orange)."""
        self._errors = {key: list(messages) for key, messages in errors.items()}
        self._refresh_marks()

    def _refresh_marks(self) -> None:
        warned = _by_key(self.last_warnings)
        for key, row in self.rows.items():
            row.mark(self._errors.get(key, ()), warned.get(key, ()))
        if self.body_editor is not None:
            self._mark_body(self._errors.get("body", ()), warned.get("body", ()))

    def _mark_body(self, errors: Sequence[str], warnings: Sequence[str]) -> None:
        mark_field(self.body_box, self.body_message, errors, warnings)

    def _clear_marks(self) -> None:
        self.mark_errors({})

    def _show_warnings(self, warnings: Sequence[FormWarning], sent: bool) -> None:
        if not warnings:
            self.warnings_html.value = ""
            return
        items = "".join(f"<li>{escape(w.line())}</li>" for w in warnings)
        note = "sent anyway" if sent else "Send still sends it"
        self.warnings_html.value = (
            '<div class="nbapi-warning-text" data-nbapi="warnings">'
            f"Client-side checks found {len(warnings)} problem"
            f"{'s' if len(warnings) != 1 else ''} ({note}):<ul>{items}</ul></div>"
        )

    # -- code -------------------------------------------------------------------------------
    def code_for(self, kind: str, request: PreparedRequest | None = None) -> str:
        """The current request (or ``request``) as ``curl``, ``httpx2`` or ``http`` (a cell)."""
        request = request or self.prepared()
        if request is None:
            return ""
        if kind == "curl":
            return request.curl(self.base_url())
        if kind == "httpx2":
            return request.httpx_code(self.base_url())
        if kind == "http":
            return request.http_cell()
        msg = f"unknown code kind {kind!r}; use curl, httpx or http"
        raise UserError(msg)

    def show_code(self, kind: str, request: PreparedRequest | None = None) -> None:
        """Show the form's request (or a past one) as code, ready to copy."""
        self.code.value = self.code_for(kind, request)
        self.code.layout.display = "flex"

    def show_history_code(self) -> None:
        """The selected history entry as curl, httpx and ``%%http``, one after the other."""
        if not self.history or self.history_select.value is None:
            return
        request = self.history[self.history_select.value].request
        parts = [self.code_for(kind, request) for kind in ("curl", "httpx2", "http")]
        self.code.value = "\n\n".join(parts)
        self.code.layout.display = "flex"

    # -- OAuth2 -----------------------------------------------------------------------------
    def fetch_token(self) -> str | None:
        """Run the OAuth2 password flow with the form's username and password."""
        scheme = self._scheme()
        if scheme is None or scheme.kind != "oauth2-password":
            return None
        request = _forms.token_request(scheme, self.auth_user.value, self.auth_password.value)
        client, problem = self._client()
        if client is None:
            self.auth_message.value = f'<span class="nbapi-error-text">{escape(problem)}</span>'
            return None
        response = client.request(**request.httpx_kwargs())
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        try:
            token = _forms.read_token(response.status_code, payload, request.path)
        except UserError as exc:
            self.auth_message.value = (
                f'<span class="nbapi-error-text" data-nbapi="token">{escape(exc)}</span>'
            )
            return None
        self.auth_token.value = token
        self.auth_message.value = (
            f'<span class="nbapi-status-ok" data-nbapi="token">got a token from '
            f"{escape(request.path)}</span>"
        )
        return token

    def close(self) -> None:
        self._unsubscribe()
        super().close()


def _by_key(warnings: Sequence[FormWarning]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for warning in warnings:
        where = warning.where
        prefix = f"{where}: " if warning.key == "body" and where != "body" else ""
        found.setdefault(warning.key, []).append(f"{prefix.removeprefix('body.')}{warning.message}")
    return found


# -- the explorer ---------------------------------------------------------------------------
class OperationView:
    """One operation in the explorer: its summary line, details and a builder on demand."""

    def __init__(self, explorer: Explorer, op: Operation) -> None:
        self.explorer = explorer
        self.op = op
        self.header = widgets.HTML(self._header_html(), layout=widgets.Layout(flex="1 1 auto"))
        self.details_button = widgets.ToggleButton(description="Details", value=False)
        self.details_button.add_class("nbapi-details")
        self.try_button = widgets.ToggleButton(description="Try it", value=False)
        self.try_button.add_class("nbapi-try")
        self.details = widgets.HTML("")
        self.builder: RequestBuilder | None = None
        self.extra = widgets.VBox()
        self.details_button.observe(lambda _: self._toggle(), names="value")
        self.try_button.observe(lambda _: self._toggle(), names="value")
        self.box = widgets.VBox(
            [widgets.HBox([self.header, self.details_button, self.try_button]), self.extra]
        )
        self.box.add_class("nbapi-operation")
        self.box.add_class(f"nbapi-operation-{op.method}")

    def _header_html(self) -> str:
        op = self.op
        deprecated = " nbapi-deprecated" if op.deprecated else ""
        flag = ' <span class="nbapi-flag">deprecated</span>' if op.deprecated else ""
        hidden = self.explorer.unreachable.get(op.label)
        if hidden:  # an earlier route answers first: say so where the operation is listed
            flag += (
                f' <span class="nbapi-flag nbapi-unreachable" data-nbapi="unreachable" '
                f'title="{escape(hidden)}">unreachable</span>'
            )
        summary = f' <span class="nbapi-muted">{escape(op.summary)}</span>' if op.summary else ""
        lock = ' <span title="needs authorization">🔒</span>' if op.security else ""
        return (
            f'<div class="nbapi-op{deprecated}" data-nbapi-op="{escape(op.label)}">'
            f'{badge(op.method)}<span class="nbapi-path">{escape(op.path)}</span>'
            f"{summary}{lock}{flag}</div>"
        )

    def _toggle(self) -> None:
        children: list[widgets.Widget] = []
        if self.details_button.value:
            self.details.value = operation_details_html(self.op, self.explorer.spec)
            children.append(self.details)
        if self.try_button.value:
            if self.builder is None:
                self.builder = RequestBuilder(self.explorer.session, self.op.method, self.op.path)
            children.append(self.builder)
        self.extra.children = children

    def update(self, op: Operation) -> None:
        self.op = op
        self.header.value = self._header_html()
        if self.details_button.value:
            self.details.value = operation_details_html(op, self.explorer.spec)

    def close(self) -> None:
        if self.builder is not None:
            self.builder.close()
        self.box.close()


class Explorer(_Live, widgets.VBox):
    """Every operation of the kernel app, grouped by tag; redraws when routes change."""

    def __init__(self, session: Any, *, live: bool = True) -> None:
        super().__init__()
        self.session = session
        self.add_class("nbapi-widget")
        self.add_class("nbapi-explorer")
        self.ops: list[Operation] = []
        self.spec: dict[str, Any] = {}
        self.problem = ""
        self.unreachable: dict[str, str] = {}  # operation label -> why no request reaches it
        self.views: dict[str, OperationView] = {}
        self.redraws = 0
        self.header = widgets.HTML()
        self.filter = widgets.Text(placeholder="filter by path, method, tag or summary")
        self.filter.add_class("nbapi-filter")
        self.filter.observe(lambda _: self._draw(), names="value")
        self.list = widgets.VBox()
        self.children = [widgets.HTML(CSS), self.header, self.filter, self.list]
        self.routes_changed()
        if live:
            self._subscribe()

    def __repr__(self) -> str:
        count = len(self.ops)
        return f"<nbapi explorer: {count} operation{'s' if count != 1 else ''}>"

    def text_view(self) -> str:
        """The explorer as plain text, for front ends that draw no widgets."""
        lines = [repr(self)]
        width = max((len(op.method) for op in self.ops), default=0)
        for op in self.ops:
            extra = " (deprecated)" if op.deprecated else ""
            extra += " (unreachable)" if op.label in self.unreachable else ""
            summary = f"  {op.summary}" if op.summary else ""
            lines.append(f"  {op.method.ljust(width)}  {op.path}{summary}{extra}")
        if self.problem:
            lines.append(f"  {self.problem}")
        return "\n".join(lines)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = self.text_view()
        return bundle

    def routes_changed(self) -> None:
        self.ops, self.spec, self.problem = read_operations(self.session)
        self.unreachable = unreachable_operations(self.session.current_app())
        self.redraws += 1
        labels = {op.label for op in self.ops}
        for label in [k for k in self.views if k not in labels]:
            self.views.pop(label).close()
        for op in self.ops:
            view = self.views.get(op.label)
            if view is None:
                self.views[op.label] = OperationView(self, op)
            else:
                view.update(op)
        self._draw()

    def show_problem(self, text: str) -> None:
        self.problem = text
        self._draw_header()

    def _draw_header(self) -> None:
        info = self.spec.get("info", {}) if self.spec else {}
        title = f"{info.get('title', '')} {info.get('version', '')}".strip()
        count = len(self.ops)
        problem = (
            f'<div class="nbapi-error-text" data-nbapi="problem">{escape(self.problem)}</div>'
            if self.problem
            else ""
        )
        self.header.value = (
            f"<div><b>nbapi explorer</b> "
            f'<span class="nbapi-muted">{escape(title)}</span> · '
            f'<span data-nbapi="op-count">{count} operation{"s" if count != 1 else ""}</span>'
            f"</div>{problem}"
        )

    def _draw(self) -> None:
        self._draw_header()
        needle = self.filter.value.strip().lower()
        groups: dict[str, list[Operation]] = {}
        for op in self.ops:
            text = " ".join([op.method, op.path, op.summary, *op.tags]).lower()
            if needle and needle not in text:
                continue
            for tag in op.tags or ("default",):
                groups.setdefault(tag, []).append(op)
        children: list[widgets.Widget] = []
        for tag, ops in groups.items():
            children.append(
                widgets.HTML(
                    f'<h4 data-nbapi-tag="{escape(tag)}" style="margin:6px 0 2px">'
                    f"{escape(tag)}</h4>"
                )
            )
            children += [self.views[op.label].box for op in ops]
        if not self.ops and not self.problem:
            children.append(
                widgets.HTML(
                    '<div class="nbapi-muted">No operations yet: run a %%route cell.</div>'
                )
            )
        self.list.children = children

    def builder(self, method: str, path: str) -> RequestBuilder:
        """Open (and return) the request builder of one operation."""
        op, _ = _forms.find_operation(self.ops, method, path)
        view = self.views[op.label]
        view.try_button.value = True
        assert view.builder is not None
        return view.builder

    def close(self) -> None:
        self._unsubscribe()
        for view in self.views.values():
            view.close()
        super().close()


# -- entry points -----------------------------------------------------------------------------
class WidgetArgsError(UserError):
    """``%nbapi explorer`` / ``%nbapi try`` got arguments it does not take."""


def explorer(session: Any = None) -> Explorer:
    """A live explorer of the kernel app's operations."""
    session = session if session is not None else _session()
    session.app  # noqa: B018 - binds app = FastAPI() when there is none
    return Explorer(session)


def request_builder(
    method: str | None = None, path: str | None = None, session: Any = None
) -> RequestBuilder:
    """A request builder for ``METHOD PATH``, or one that lets you choose the operation."""
    session = session if session is not None else _session()
    session.app  # noqa: B018 - binds app = FastAPI() when there is none
    if (method is None) != (path is None):
        msg = "give both a method and a path, e.g. request_builder('GET', '/items/{item_id}')"
        raise WidgetArgsError(msg)
    return RequestBuilder(session, method, path, choose=method is None)


def _session() -> Any:
    from ._session import current_session

    return current_session()


def explorer_command(session: Any, argv: list[str]) -> Explorer:
    """``%nbapi explorer``."""
    if argv:
        msg = f"%nbapi explorer takes no arguments, got {' '.join(argv)!r}; run %nbapi explorer"
        raise WidgetArgsError(msg)
    return explorer(session)


def try_command(session: Any, argv: list[str]) -> RequestBuilder:
    """``%nbapi try [METHOD PATH]`` (or ``%nbapi try PATH`` when one method serves it)."""
    if not argv:
        return request_builder(session=session)
    if len(argv) == 1:
        ops, _, problem = read_operations(session)
        if problem:
            raise WidgetArgsError(problem)
        matches = [op for op in ops if op.path == argv[0]]
        if not matches:  # a concrete path: /items/42 fills in item_id
            for method in dict.fromkeys(op.method for op in ops):
                with contextlib.suppress(_forms.OperationNotFound):
                    matches.append(_forms.find_operation(ops, method, argv[0])[0])
        if not matches:
            known = ", ".join(op.label for op in ops[:8]) or "none yet"
            msg = f"%nbapi try {argv[0]!r}: no operation on that path; use one of {known}"
            raise WidgetArgsError(msg)
        if len(matches) != 1:
            methods = ", ".join(op.method for op in matches) or "none"
            msg = (
                f"%nbapi try {argv[0]!r} needs a method (methods on it: {methods}); "
                f"e.g. %nbapi try GET {argv[0]}"
            )
            raise WidgetArgsError(msg)
        return request_builder(matches[0].method, argv[0], session=session)
    if len(argv) > 2:
        msg = (
            f"%nbapi try takes METHOD PATH, got {' '.join(argv)!r}; "
            "quote nothing, e.g. %nbapi try GET /items/{item_id}"
        )
        raise WidgetArgsError(msg)
    return request_builder(argv[0], argv[1], session=session)


__all__ = [
    "Explorer",
    "HistoryEntry",
    "RequestBuilder",
    "explorer",
    "explorer_command",
    "request_builder",
    "try_command",
]
