"""The request builder: a form for one operation that sends, shows, replays and copies.

The form comes from the operation's OpenAPI (by ``nbapi._forms``); it sends in-process
or to the live server, shows the response as text (never as live HTML), marks the
fields a 422 points at, keeps a history to replay, and writes any request as curl,
httpx or ``%%http``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import ipywidgets as widgets

from . import _forms
from ._errors import UserError
from ._fields import FieldRow, mark_field
from ._forms import Auth, FormField, FormWarning, Operation, PreparedRequest
from ._session import NOT_RUNNING
from ._views import (
    CSS,
    _Live,
    _wrap,
    badge,
    escape,
    expand_refs,
    read_operations,
    response_html,
)

HISTORY_SIZE = 50


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
        copy_buttons = self._build_controls()
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

    def _build_controls(self) -> list[widgets.Button]:
        """The auth, send, copy, response and history widgets; returns the copy buttons."""
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
        return copy_buttons

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
            sections.extend(self._body_section(op.body, values))
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

    def _body_section(self, body: _forms.Body, values: Mapping[str, Any]) -> list[widgets.Widget]:
        """The body's heading and its form rows or JSON editor."""
        rows: list[widgets.Widget] = []
        required = " (required)" if body.required else ""
        rows.append(widgets.HTML(f"<b>Body</b> {escape(body.content_type)}{escape(required)}"))
        if body.is_form:
            for item in body.fields:
                rows.append(self._add_row(item, values.get(item.key)))
        else:
            text = values.get("body")
            self.body_editor = widgets.Textarea(
                value=str(text) if text is not None else _forms.example_text(body),
                rows=8,
                layout=widgets.Layout(width="95%"),
            )
            self.body_editor.add_class("nbapi-input")
            self.body_editor.observe(lambda _: self._edited("body"), names="value")
            reset = widgets.Button(description="Reset to example")
            reset.add_class("nbapi-reset-body")
            reset.on_click(lambda _: self._reset_body())
            schema = json.dumps(expand_refs(body.schema, self.spec), indent=2)
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
            rows.append(body_box)
        return rows

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
            server = self.session.running_server()
            if server is None:
                return None, NOT_RUNNING
            return server.client(), ""
        self.session.bind_app()
        return self.session.client, ""

    def base_url(self) -> str:
        """Where curl and httpx code send the request: the live server, or where it would be."""
        server = self.session.running_server()
        if server is not None:
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
