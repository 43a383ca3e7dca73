"""One form field of the request builder: its input widget, its label, its marks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from ._forms import FormField
from ._views import _field_notes, _wrap, css_name, escape


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
