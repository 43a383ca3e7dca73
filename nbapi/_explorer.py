"""The explorer: every operation of the kernel app, grouped by tag, live as cells run."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from . import _forms
from ._builder import RequestBuilder
from ._forms import Operation
from ._views import (
    CSS,
    OperationReader,
    _Live,
    badge,
    escape,
    operation_details_html,
)


class OperationView:
    """One operation in the explorer: its summary line, details and a builder on demand."""

    def __init__(self, explorer: Explorer, op: Operation) -> None:
        self.explorer = explorer
        self.op = op
        self.shown_unreachable = self._unreachable()
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

    def _unreachable(self) -> str | None:
        return self.explorer.unreachable.get(self.op.label)

    def _header_html(self) -> str:
        op = self.op
        deprecated = " nbapi-deprecated" if op.deprecated else ""
        flag = ' <span class="nbapi-flag">deprecated</span>' if op.deprecated else ""
        hidden = self._unreachable()
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
            self.details.value = self._details_html()
            children.append(self.details)
        if self.try_button.value:
            if self.builder is None:
                self.builder = RequestBuilder(self.explorer.session, self.op.method, self.op.path)
            children.append(self.builder)
        self.extra.children = children

    def _details_html(self) -> str:
        return operation_details_html(self.op, self.explorer.reader.document(self.op))

    def update(self, op: Operation) -> None:
        if op is self.op and self.shown_unreachable == self._unreachable():
            return  # the same operation object (read from a cache): nothing to redraw
        self.op = op
        self.shown_unreachable = self._unreachable()
        self.header.value = self._header_html()
        if self.details_button.value:
            self.details.value = self._details_html()

    def rebind(self, op: Operation) -> None:
        """Show another operation (one that took this one's place) in these widgets."""
        self.details_button.value = self.try_button.value = False  # closes what was open
        if self.builder is not None:
            self.builder.close()
            self.builder = None
        self.box.remove_class(f"nbapi-operation-{self.op.method}")
        self.box.add_class(f"nbapi-operation-{op.method}")
        self.op = op
        self.shown_unreachable = self._unreachable()
        self.header.value = self._header_html()

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
        self.reader = OperationReader(session)
        self.ops: list[Operation] = []
        self.info: dict[str, Any] = {}  # the document's title and version
        self.problem = ""
        self.unreachable: dict[str, str] = {}  # operation label -> why no request reaches it
        self.views: dict[str, OperationView] = {}
        self.headings: dict[str, widgets.HTML] = {}  # one per tag, kept across redraws
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
        listing = self.reader.read()
        self.ops, self.info, self.problem = listing.ops, listing.info, listing.problem
        self.unreachable = listing.unreachable
        self.redraws += 1
        views, labels = self.views, [op.label for op in self.ops]
        spare: list[OperationView] = []  # views of operations gone, to show new ones in
        if len(views) != len(labels) or not all(map(views.__contains__, labels)):
            kept = set(labels)
            spare = [views.pop(label) for label in [k for k in views if k not in kept]]
        for op in self.ops:  # with 1000 operations, most are the same objects as before
            view = views.get(op.label)
            if view is None:
                if spare:  # a moved route: its widgets show the new path, none are built
                    view = spare.pop()
                    view.rebind(op)
                else:
                    view = OperationView(self, op)
                views[op.label] = view
            elif view.op is not op or view.shown_unreachable != self.unreachable.get(op.label):
                view.update(op)
        for view in spare:
            view.close()
        self._draw()

    def show_problem(self, text: str) -> None:
        self.problem = text
        self._draw_header()

    def _draw_header(self) -> None:
        info = self.info
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
            text = " ".join([op.method, op.path, op.summary, *op.tags]) if needle else ""
            if needle not in text.lower():
                continue
            for tag in op.tags or ("default",):
                groups.setdefault(tag, []).append(op)
        children: list[widgets.Widget] = []
        for tag, ops in groups.items():
            children.append(self._heading(tag))
            children += [self.views[op.label].box for op in ops]
        if not self.ops and not self.problem:
            children.append(
                widgets.HTML(
                    '<div class="nbapi-muted">No operations yet: run a %%route cell.</div>'
                )
            )
        if tuple(children) != self.list.children:  # compared by identity, in C
            self.list.children = children

    def _heading(self, tag: str) -> widgets.HTML:
        heading = self.headings.get(tag)
        if heading is None:
            heading = self.headings[tag] = widgets.HTML(
                f'<h4 data-nbapi-tag="{escape(tag)}" style="margin:6px 0 2px">{escape(tag)}</h4>'
            )
        return heading

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
        for heading in self.headings.values():
            heading.close()
        super().close()
