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

This module holds the entry points (``explorer``, ``request_builder`` and the
``%nbapi explorer`` / ``%nbapi try`` commands); the widgets live in ``_explorer``,
``_builder`` and ``_fields``, what they share in ``_views``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from . import _forms
from ._builder import IN_PROCESS as IN_PROCESS
from ._builder import LIVE_SERVER as LIVE_SERVER
from ._builder import HistoryEntry, RequestBuilder
from ._errors import UserError
from ._explorer import Explorer
from ._views import body_html as body_html  # re-exported: tests draw bodies directly
from ._views import json_html as json_html
from ._views import read_operations


# -- entry points -----------------------------------------------------------------------------
class WidgetArgsError(UserError):
    """``%nbapi explorer`` / ``%nbapi try`` got arguments it does not take."""


def explorer(session: Any = None) -> Explorer:
    """A live explorer of the kernel app's operations."""
    session = session if session is not None else _session()
    session.bind_app()
    return Explorer(session)


def request_builder(
    method: str | None = None, path: str | None = None, session: Any = None
) -> RequestBuilder:
    """A request builder for ``METHOD PATH``, or one that lets you choose the operation."""
    session = session if session is not None else _session()
    session.bind_app()
    if (method is None) != (path is None):
        msg = "give both a method and a path, e.g. request_builder('GET', '/items/{item_id}')"
        raise WidgetArgsError(msg)
    return RequestBuilder(session, method, path, choose=method is None)


def _session() -> Any:
    from ._session import current_session

    return current_session()


def resolve_path(session: Any, path: str) -> str:
    """The one method serving ``path`` (a template, or a concrete /items/42), for
    ``%nbapi try PATH``."""
    ops, _, problem = read_operations(session)
    if problem:
        raise WidgetArgsError(problem)
    matches = [op for op in ops if op.path == path]
    if not matches:  # a concrete path: /items/42 fills in item_id
        for method in dict.fromkeys(op.method for op in ops):
            with contextlib.suppress(_forms.OperationNotFound):
                matches.append(_forms.find_operation(ops, method, path)[0])
    if not matches:
        known = ", ".join(op.label for op in ops[:8]) or "none yet"
        msg = f"%nbapi try {path!r}: no operation on that path; use one of {known}"
        raise WidgetArgsError(msg)
    if len(matches) != 1:
        methods = ", ".join(op.method for op in matches) or "none"
        msg = (
            f"%nbapi try {path!r} needs a method (methods on it: {methods}); "
            f"e.g. %nbapi try GET {path}"
        )
        raise WidgetArgsError(msg)
    return matches[0].method


__all__ = [
    "Explorer",
    "HistoryEntry",
    "RequestBuilder",
    "explorer",
    "request_builder",
    "resolve_path",
]
