"""The kernel app's contract over a session.

Re-run warnings after each cell, ``%nbapi checkpoint [NAME]``, ``%nbapi diff [NAME | FILE]``
and ``%nbapi check CONTRACT``. One ``Tracker`` per session follows the app's routes; nothing
here imports IPython.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ._config import NbAPI
from ._contract import ContractError, Diff, diff_documents, load_document, operations
from ._errors import error_line
from ._openapi import RouteOperations, Snapshot, Tracker
from ._rules import Change, Policy
from ._session import Session

_trackers: weakref.WeakKeyDictionary[Session, Tracker] = weakref.WeakKeyDictionary()

DOCUMENT_SUFFIXES = (".json", ".yaml", ".yml")


def tracker(session: Session) -> Tracker:
    found = _trackers.get(session)
    if found is None:
        found = _trackers[session] = Tracker()
    return found


def policy(config: NbAPI) -> Policy:
    return Policy(response_enum_added_breaks=config.response_enum_added.lower() == "breaking")


def rerun_lines(session: Session) -> list[str]:
    """After a cell: one line per breaking change to the operations the cell changed."""
    app = session.current_app()
    if app is None:
        return []
    check = bool(session.config.breaking_changes)
    try:
        changes = tracker(session).observe(app, policy(session.config), compare=check)
    except Exception as exc:  # the check must never cost the user their cell's other hooks
        _trackers.pop(session, None)  # start again from the next cell
        return [f"nbapi: the breaking-change check failed ({type(exc).__name__}: {exc})"]
    return [f"nbapi: {change.line()}" for change in Diff(changes).breaking]


def app_openapi(app: FastAPI) -> dict[str, Any]:
    """The document /openapi.json serves, or a one-line error naming what FastAPI refused."""
    try:
        return app.openapi()
    except Exception as exc:
        msg = (
            f"FastAPI cannot generate the app's OpenAPI ({error_line(exc)}); "
            "fix the route it names, then run this again"
        )
        raise ContractError(msg) from None


def app_document(session: Session, app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI for nbapi's own views: built route by route when FastAPI builds it.

    An app whose ``openapi`` is replaced (FastAPI's "extending OpenAPI"), or that has tags
    metadata, servers or webhooks, gets ``app.openapi()`` itself.
    """
    if not built_route_by_route(app):
        app.openapi_schema = None  # routes may have changed behind FastAPI's cache
        return app.openapi()
    return tracker(session).document(app, policy(session.config))


def built_route_by_route(app: FastAPI) -> bool:
    """Whether the app's OpenAPI is FastAPI's own, the sum of its routes' documents."""
    own = "openapi" not in vars(app) and type(app).openapi is FastAPI.openapi
    return own and not (app.openapi_tags or app.servers or app.webhooks.routes)


def followed_routes(session: Session, app: FastAPI) -> tuple[Snapshot, RouteOperations]:
    """The app's routes as the session's tracker follows them, and its per-route cache.

    The snapshot is the same object for as long as the routes stay the same, so a widget
    can tell at once whether anything changed since it last looked.
    """
    found = tracker(session)
    found.observe(app, policy(session.config), compare=False)
    return found.last, found.cache


def checkpoint(session: Session, name: str | None = None) -> None:
    """``%nbapi checkpoint [NAME]``: remember the app's operations as they are now."""
    found = tracker(session)
    name = name if name is not None else f"cp{len(found.checkpoints) + 1}"
    count = found.checkpoint(name, session.app, policy(session.config))
    plural = "s" * (count != 1)
    session.say(f"checkpoint {name!r}: {count} operation{plural}; %nbapi diff {name} lists changes")


def diff(session: Session, target: str | None = None) -> Diff:
    """``%nbapi diff [NAME | FILE]``: every change since a checkpoint, the session or a file."""
    found, app, rules = tracker(session), session.app, policy(session.config)
    target = target if target is not None else found.latest
    if target is None:
        return Diff(found.since_first(app, rules), "since each operation's first version")
    if target in found.checkpoints:
        return Diff(found.since(target, app, rules), f"since checkpoint {target!r}")
    if Path(target).suffix.lower() in DOCUMENT_SUFFIXES or Path(target).exists():
        document = load_document(target)
        return Diff(diff_documents(document, app_openapi(app), rules).changes, f"from {target}")
    known = ", ".join(sorted(found.checkpoints)) or "none yet"
    msg = (
        f"no checkpoint {target!r} (checkpoints: {known}); record it with "
        f"%nbapi checkpoint {target}, or give an OpenAPI file (.json, .yaml)"
    )
    raise ContractError(msg)


class Check:
    """``%nbapi check``: does the app implement a contract? ``.ok``, ``.problems``."""

    def __init__(self, contract: str, diff: Diff, operation_count: int) -> None:
        self.contract = contract
        self.diff = diff
        self.operation_count = operation_count
        self.problems: list[Change] = diff.breaking
        self.extra = sum(change.rule == "operation-added" for change in diff.changes)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        from ._client import format_table

        if self.ok:
            more = f"; {self.extra} more not in the contract" if self.extra else ""
            count = self.operation_count
            return (
                f"the app implements {self.contract}: {count} operation{'s' * (count != 1)}, "
                f"all compatible{more}"
            )
        rows = [
            (
                change.operation,
                "not implemented" if change.rule == "operation-removed" else change.detail,
                change.rule,
            )
            for change in self.problems
        ]
        count = len(self.problems)
        summary = f"{count} problem{'s' * (count != 1)}: the app does not implement {self.contract}"
        return format_table(("operation", "problem", "rule"), rows) + "\n" + summary

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def check(session: Session, path: str) -> Check:
    """``%nbapi check CONTRACT``: every operation present, and compatible with the contract."""
    contract = load_document(path, what="contract")
    changes = diff_documents(contract, app_openapi(session.app), policy(session.config))
    return Check(path, changes, len(operations(contract)))
