"""The routes each notebook cell owns on the kernel's FastAPI app.

A cell registers its function exactly as ``@app.api_route(...)`` (or
``@app.websocket(...)``) would; re-running the cell swaps its route in place.
Nothing here imports IPython.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import itertools
import operator
import typing
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute

from ._errors import UserError, error_line
from ._spec import RouteSpec, parse_route_line

Endpoint = Callable[..., Any]


def _parameters(func: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(func).parameters) - {"self", "path", "methods"}


HTTP_KEYWORDS = frozenset(_parameters(FastAPI.api_route))
WEBSOCKET_KEYWORDS = frozenset(_parameters(FastAPI.websocket))


class RouteError(UserError):
    """A route that FastAPI would not take; the app is left as it was."""


@dataclass
class OwnedRoute:
    """A route and the cell that registered it."""

    app: weakref.ref[FastAPI]
    route: BaseRoute
    spec: RouteSpec
    function_name: str


def apply_converters(endpoint: Endpoint, spec: RouteSpec) -> None:
    """Type unannotated path parameters from converters such as ``<int:item_id>``."""
    if not spec.converters:
        return
    signature = inspect.signature(endpoint)
    try:
        hints = typing.get_type_hints(endpoint)
    except Exception:  # unresolved forward references: FastAPI will report them itself
        hints = {}
    for name, wanted in spec.converters.items():
        parameter = signature.parameters.get(name)
        if parameter is None:
            continue
        if parameter.annotation is inspect.Parameter.empty:
            endpoint.__annotations__[name] = wanted
            continue
        given = hints.get(name, parameter.annotation)  # get_type_hints strips Annotated
        if typing.get_origin(given) is typing.Annotated:
            given = typing.get_args(given)[0]
        if given is not wanted:
            msg = (
                f"the path says {name!r} is {wanted.__name__} but "
                f"{endpoint.__name__}() annotates it as {getattr(given, '__name__', given)!r}; "
                "drop the converter or change the annotation"
            )
            raise RouteError(msg)


def check_keyword_names(spec: RouteSpec, keywords: dict[str, Any]) -> None:
    allowed = WEBSOCKET_KEYWORDS if spec.websocket else HTTP_KEYWORDS
    for name in keywords:
        if name not in allowed:
            kind = "a websocket route" if spec.websocket else "%%route"
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else "use a keyword of FastAPI's path-operation decorators (see %%route?)"
            )
            msg = f"unknown keyword {name!r} for {kind}; {hint}"
            raise RouteError(msg)


def check_openapi(app: FastAPI, route: BaseRoute, spec: RouteSpec) -> None:
    """Build ``route``'s own OpenAPI now: FastAPI takes some keyword values at decoration
    (``status_code='abc'``, ``response_class=int``) that later make ``/openapi.json`` and
    ``/docs`` answer 500 for the whole app."""
    if spec.websocket:
        return  # websockets are not in OpenAPI
    try:
        with warnings.catch_warnings():
            # Its warnings (a GET,POST route's duplicate operation id) are not errors, and
            # /openapi.json shows them when it is built.
            warnings.simplefilter("ignore")
            get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                routes=[route],
                separate_input_output_schemas=app.separate_input_output_schemas,
            )
    except Exception as exc:
        message = error_line(exc)
        given = f"its keywords {spec.keywords!r} or " if spec.keywords else ""
        msg = (
            f"{spec.describe()} would break the app's /openapi.json and /docs ({message}); "
            f"fix {given}the handler's annotations (no route was changed)"
        )
        raise RouteError(msg) from exc


def _documented(spec: RouteSpec, endpoint: Endpoint) -> tuple[Any, ...]:
    """What a keyword-less route's OpenAPI is built from: its line and its signature."""
    try:
        signature = inspect.signature(endpoint)
    except (TypeError, ValueError):
        return (spec, object())  # never equal: always checked
    parameters = tuple(
        (p.name, p.kind, p.annotation, p.default) for p in signature.parameters.values()
    )
    return (spec.describe(), parameters, signature.return_annotation)


def _equal(before: tuple[Any, ...] | None, now: tuple[Any, ...]) -> bool:
    if before is None:
        return False
    try:
        return bool(before == now)  # identity first, then ==: `str | None` equals itself
    except Exception:  # a default whose == is not a bool (an array): check again
        return False


def _methods(route: BaseRoute) -> set[str]:
    return set(getattr(route, "methods", None) or ())


def route_rows(
    routes: list[BaseRoute], owned: set[int], prefix: str = ""
) -> list[tuple[str, str, str, str]]:
    """(method, path, name, "%%route" or "") for every route, routers included."""
    rows: list[tuple[str, str, str, str]] = []
    for route in routes:
        router = getattr(route, "original_router", None)
        if router is not None:  # FastAPI >= 0.160 keeps an included router as one entry
            context = getattr(route, "include_context", None)
            rows += route_rows(router.routes, owned, prefix + getattr(context, "prefix", ""))
            continue
        if isinstance(route, WebSocketRoute) or type(route).__name__ == "APIWebSocketRoute":
            kind = "WS"
        elif isinstance(route, Mount):
            kind = "MOUNT"
        else:
            kind = ",".join(sorted(getattr(route, "methods", None) or ())) or "-"
        origin = "%%route" if id(route) in owned else ""
        path = prefix + str(getattr(route, "path", ""))
        rows.append((kind, path, str(getattr(route, "name", "") or ""), origin))
    return rows


def _index(routes: list[BaseRoute], route: BaseRoute) -> int | None:
    """``routes.index(route)`` by identity, or None.

    ``list.index`` and ``in`` call Starlette's ``Route.__eq__``, which compares
    fields; ``map(operator.is_, ...)`` compares identities at C speed, which keeps
    re-running a cell cheap with 1000 routes registered.
    """
    matches = map(operator.is_, routes, itertools.repeat(route))
    return next(itertools.compress(itertools.count(), matches), None)


def _holds(routes: list[BaseRoute], route: BaseRoute) -> bool:
    """``route in routes`` by identity (see ``_index``)."""
    return any(map(operator.is_, routes, itertools.repeat(route)))


def _declared_path_params(dependant: Dependant) -> set[str]:
    names = {param.alias or param.name for param in dependant.path_params}
    for sub in dependant.dependencies:
        names |= _declared_path_params(sub)
    return names


class Registry:
    """Which cell owns which route, on whichever app is the kernel's now."""

    def __init__(self) -> None:
        self._owned: dict[str, OwnedRoute] = {}
        # owner -> what its route's OpenAPI was built from when it last passed check_openapi
        self._documented: dict[str, tuple[Any, ...] | None] = {}
        # cell id -> (app, routes the cell added with plain code), see settle_cell
        self._plain: dict[str, tuple[weakref.ref[FastAPI], list[BaseRoute]]] = {}

    def owned(self, app: FastAPI) -> dict[str, OwnedRoute]:
        """The routes that cells registered on ``app`` and that are still in it."""
        present = {id(route) for route in app.router.routes}  # a set: O(n), not O(n^2)
        return {
            owner: entry
            for owner, entry in self._owned.items()
            if entry.app() is app and id(entry.route) in present
        }

    def entry(self, app: FastAPI, owner: str) -> OwnedRoute | None:
        """``owner``'s route on ``app``, if it registered one that is still there."""
        entry = self._owned.get(owner)
        if entry is None or entry.app() is not app or not _holds(app.router.routes, entry.route):
            return None
        return entry

    def owner_of(self, route: BaseRoute) -> str | None:
        for owner, entry in self._owned.items():
            if entry.route is route:
                return owner
        return None

    def owner_of_request(self, app: FastAPI | None, method: str, path: str) -> str | None:
        """The cell whose route answers ``METHOD path`` (a query string is ignored)."""
        if app is None:
            return None
        scope = {"type": "http", "path": path.split("?", 1)[0], "method": method, "root_path": ""}
        for route in list(app.router.routes):
            try:
                match, _ = route.matches(scope)
            except Exception:  # a route whose matching fails answers nothing
                continue
            if match is Match.FULL:
                return self.owner_of(route)
        return None

    def register(
        self,
        app: FastAPI,
        owner: str,
        spec: RouteSpec,
        endpoint: Endpoint,
        keywords: dict[str, Any],
    ) -> tuple[BaseRoute, list[str]]:
        """Add or replace ``owner``'s route; return it and any warnings for the user.

        On any error the app's routes are exactly as they were.
        """
        check_keyword_names(spec, keywords)
        routes = app.router.routes
        before = list(routes)
        previous = self.entry(app, owner)
        old_route = previous.route if previous is not None else None
        annotations = dict(getattr(endpoint, "__annotations__", {}))
        try:
            apply_converters(endpoint, spec)
            if spec.websocket:
                app.websocket(spec.path, **keywords)(endpoint)
            else:
                app.api_route(spec.path, methods=list(spec.methods), **keywords)(endpoint)
        except Exception as exc:
            routes[:] = before
            endpoint.__annotations__.clear()
            endpoint.__annotations__.update(annotations)
            if isinstance(exc, RouteError):
                raise
            msg = f"FastAPI refused {spec.describe()}: {error_line(exc)}"
            raise RouteError(msg) from exc
        added = routes[len(before) :]  # FastAPI appends the route it builds
        if len(added) != 1:  # pragma: no cover - FastAPI adds exactly one route per decorator
            routes[:] = before
            msg = f"FastAPI added {len(added)} routes for {spec.describe()}, expected one"
            raise RouteError(msg)
        new_route = added[0]
        documented = _documented(spec, endpoint)
        try:
            # A schema build costs about 1 ms: a re-run of an unchanged cell (same route,
            # no keywords, equal annotations and defaults) was checked already.
            if keywords or not _equal(self._documented.get(owner), documented):
                check_openapi(app, new_route, spec)
        except RouteError:
            routes[:] = before
            endpoint.__annotations__.clear()
            endpoint.__annotations__.update(annotations)
            raise
        if old_route is not None:
            index = _index(before, old_route)
            assert index is not None  # entry() found it there
            rebuilt = list(before)
            rebuilt[index] = new_route
            # One slice assignment: a server thread iterating the routes sees old or new.
            routes[:] = rebuilt
        self._owned[owner] = OwnedRoute(weakref.ref(app), new_route, spec, endpoint.__name__)
        self._documented[owner] = None if keywords else documented
        app.openapi_schema = None
        return new_route, self._warnings(app, new_route, spec, endpoint)

    def _warnings(
        self, app: FastAPI, new_route: BaseRoute, spec: RouteSpec, endpoint: Endpoint
    ) -> list[str]:
        routes = app.router.routes
        index = _index(routes, new_route)
        if index is None:  # another thread removed it already: nothing to warn about
            return []
        return route_warnings(routes, index)

    # -- routes that cells add with plain decorators ---------------------------
    def owns_any(self, owner: str | None) -> bool:
        """Whether ``owner`` registered any route (with %%route or plain code)."""
        return owner is not None and (owner in self._owned or owner in self._plain)

    def settle_cell(
        self,
        app: FastAPI,
        owner: str | None,
        before: set[int],
        ran_route: bool,
        failed: bool = False,
    ) -> tuple[list[BaseRoute], list[BaseRoute]]:
        """After a cell ran: give it the routes it added; drop those it no longer makes.

        ``before`` holds the ids of the app's routes when the cell started. Routes
        the cell added with plain code (``@app.get``, ``include_router``, ...) are
        owned by the cell; when it runs again, they replace its earlier ones in
        place, as a ``%%route`` cell's route is replaced. A cell that owned a
        ``%%route`` route and ran without ``%%route`` (``ran_route`` False) loses
        it. A cell that raised (``failed``) loses nothing, as a failed ``%%route``
        cell changes no route. Returns (removed routes, added routes); ``owner``
        None (no cell id) only reports what was added.
        """
        routes = app.router.routes
        entry = self._owned.get(owner) if owner is not None else None
        mine = entry.route if entry is not None and entry.app() is app else None
        added = [r for r in routes if id(r) not in before and r is not mine]
        if owner is None:
            return [], added
        old: list[BaseRoute] = []
        ref, previous = self._plain.pop(owner, (None, []))
        if ref is not None and ref() is app:
            old = [r for r in previous if _holds(routes, r)]
        if failed:
            if old or added:
                self._plain[owner] = (weakref.ref(app), old + added)
            return [], added
        if not ran_route and mine is not None and _holds(routes, mine):
            old.append(mine)
            del self._owned[owner]
        if added:
            self._plain[owner] = (weakref.ref(app), added)
        if not old:
            return [], added
        gone = {id(r) for r in old} | {id(r) for r in added}
        at = min(_index(routes, r) or 0 for r in old)
        kept_before = [r for r in routes[:at] if id(r) not in gone]
        kept_after = [r for r in routes[at:] if id(r) not in gone]
        routes[:] = kept_before + added + kept_after  # one assignment, as in register()
        app.openapi_schema = None
        return old, added


def _pattern(route: BaseRoute) -> tuple[str, set[str]] | None:
    """(path, methods or {"WS"}) of a plain route or websocket, else None."""
    if isinstance(route, WebSocketRoute):
        return route.path, {"WS"}
    if isinstance(route, Route):
        return route.path, _methods(route) or {"GET"}
    return None


def conflict(earlier: BaseRoute, later: BaseRoute) -> str | None:
    """Why ``later`` is never reached because ``earlier`` comes first, or None."""
    first, second = _pattern(earlier), _pattern(later)
    if first is None or second is None:
        return None
    path = second[0]
    # Cheapest test first (re-running a cell with 1000 routes must stay cheap): a
    # route's regex can only match a path that starts with its literal part.
    path_format = getattr(earlier, "path_format", "")
    if not path.startswith(path_format.partition("{")[0]):
        return None
    if ("WS" in first[1]) != ("WS" in second[1]):
        return None
    overlap = first[1] & second[1]
    if not overlap:
        return None
    same = path_format == getattr(later, "path_format", path) or first[0] == path
    if not same and not earlier.path_regex.match(path):  # type: ignore[attr-defined]
        return None
    name = f"{getattr(later, 'name', '?')}()"
    earlier_name = f"{getattr(earlier, 'name', '?')}()"
    shown = f"{','.join(sorted(overlap))} {path}"
    if same:
        return (
            f"{shown} by {name} is unreachable: {earlier_name} registered the same "
            "route earlier and FastAPI uses the first; remove one or change its path"
        )
    return (
        f"{shown} by {name} is shadowed by {first[0]} of {earlier_name}, "
        "which was registered earlier and matches first; register the fixed path first"
    )


def route_warnings(routes: list[BaseRoute], index: int) -> list[str]:
    """Warnings for ``routes[index]``: routes it cannot reach or be reached past, bad params."""
    route = routes[index]
    path = str(getattr(route, "path", ""))
    # A route hides only paths its regex matches: that test (in C) first, as re-running
    # a cell with 1000 routes registered must stay cheap.
    earlier = [
        e for e in routes[:index] if (rx := getattr(e, "path_regex", None)) and rx.match(path)
    ]
    mine = getattr(route, "path_regex", None)
    later = [r for r in routes[index + 1 :] if mine and mine.match(getattr(r, "path", "\0"))]
    warnings = [w for e in earlier if (w := conflict(e, route))]
    warnings += [w for r in later if (w := conflict(route, r))]
    dependant = getattr(route, "dependant", None)
    convertors = getattr(route, "param_convertors", None) or {}
    if dependant is not None:
        declared = _declared_path_params(dependant)
        name = f"{getattr(route, 'name', '?')}()"
        for param in convertors:
            if param not in declared:
                warnings.append(
                    f"path parameter {param!r} in {route.path} is not a parameter of "  # type: ignore[attr-defined]
                    f"{name} or its dependencies; add `{param}` to its signature"
                )
    return warnings


def added_warnings(routes: list[BaseRoute], added: list[BaseRoute]) -> list[str]:
    """``route_warnings`` for each of ``added`` that is still in ``routes``."""
    warnings: list[str] = []
    for route in added:
        index = _index(routes, route)
        if index is not None:
            warnings += route_warnings(routes, index)
    return warnings


def unreachable(routes: list[BaseRoute]) -> dict[int, str]:
    """id(route) -> why it is never reached, for every route an earlier one hides.

    An earlier route can only hide a path that starts with its literal part, so each
    route is compared with the earlier routes filed under a prefix of its path: the
    explorer calls this on every redraw, with any number of routes.
    """
    found: dict[int, str] = {}
    by_literal: dict[str, list[BaseRoute]] = {}
    for route in routes:
        pattern = _pattern(route)
        if pattern is None:
            continue
        path = pattern[0]
        for cut in range(len(path) + 1):
            reason = next(
                (r for e in by_literal.get(path[:cut], ()) if (r := conflict(e, route))), None
            )
            if reason is not None:
                found[id(route)] = reason
                break
        literal = str(getattr(route, "path_format", path)).partition("{")[0]
        by_literal.setdefault(literal, []).append(route)
    return found


class Reachability:
    """``unreachable(routes)`` kept up to date from one list of routes to the next.

    The explorer asks after every cell that changed routes. A route's status depends only
    on the earlier routes that could hide it, so after a few routes were added or removed
    only the routes those could hide (or be hidden by) are looked at again, found with
    C-speed scans over the rest; many changes, or routes reordered, compute it all again.
    """

    MAX_CHANGES = 16

    def __init__(self) -> None:
        self.routes: list[BaseRoute] = []  # held, so that their ids are not reused
        self.ids: list[int] = []
        self.found: dict[int, str] = {}
        self._parts: dict[int, tuple[str, Any, str]] = {}  # id -> path, format, literal

    def update(self, routes: list[BaseRoute]) -> dict[int, str]:
        """id(route) -> why it is never reached, as ``unreachable(routes)`` gives it."""
        ids = list(map(id, routes))
        if ids == self.ids:
            return self.found
        old, new = set(self.ids), set(ids)
        gone, came = old - new, new - old
        if (
            not self.ids
            or len(gone) + len(came) > self.MAX_CHANGES
            or [i for i in self.ids if i not in gone] != [i for i in ids if i not in came]
        ):
            found = unreachable(routes)
            self._parts = {}
        else:
            changed = [r for r in self.routes if id(r) in gone]
            changed += [r for r in routes if id(r) in came]
            found = {i: why for i, why in self.found.items() if i not in gone}
            parts = self._parts_of(routes, ids)
            for index in _could_change(routes, parts, changed):
                found.pop(ids[index], None)
                reason = _hidden_by(routes, [p[2] for p in parts[:index]], index)
                if reason is not None:
                    found[ids[index]] = reason
            self._parts = dict(zip(ids, parts, strict=True))
        self.routes, self.ids, self.found = list(routes), ids, found
        return found

    def _parts_of(self, routes: list[BaseRoute], ids: list[int]) -> list[tuple[str, Any, str]]:
        parts = list(map(self._parts.get, ids))
        for index in [i for i, part in enumerate(parts) if part is None]:
            route = routes[index]
            path_format = getattr(route, "path_format", None)
            literal = str(path_format if path_format is not None else "").partition("{")[0]
            parts[index] = (str(getattr(route, "path", "\0")), path_format, literal)
        return parts  # type: ignore[return-value]


def _could_change(
    routes: list[BaseRoute], parts: list[tuple[str, Any, str]], changed: list[BaseRoute]
) -> set[int]:
    """Indexes of the routes whose status ``changed`` (added or removed) may alter."""
    paths = [part[0] for part in parts]
    formats = [part[1] for part in parts]
    found: set[int] = set()
    for route in changed:
        if _pattern(route) is None:
            continue
        index = _index(routes, route)
        if index is not None:
            found.add(index)
        regex = route.path_regex  # type: ignore[attr-defined]
        for hits in (
            map(regex.match, paths),
            map(operator.eq, formats, itertools.repeat(route.path_format)),  # type: ignore[attr-defined]
            map(operator.eq, paths, itertools.repeat(route.path)),  # type: ignore[attr-defined]
        ):
            found.update(itertools.compress(itertools.count(), hits))
    return found


def _hidden_by(routes: list[BaseRoute], literals: list[str], index: int) -> str | None:
    """Why ``routes[index]`` is never reached, as ``unreachable`` words it, or None.

    ``literals`` are the literal parts of the earlier routes' paths: a route can only
    hide a path that starts with it (tested first, in C).
    """
    route = routes[index]
    pattern = _pattern(route)
    if pattern is None:
        return None
    path = pattern[0]
    candidates = itertools.compress(enumerate(literals), map(path.startswith, literals))
    best: tuple[int, int, str] | None = None
    for position, literal in candidates:
        reason = conflict(routes[position], route)
        # ``unreachable`` files routes by their literal part and tries the shortest first
        if reason is not None and (best is None or len(literal) < best[0]):
            best = (len(literal), position, reason)
    return best[2] if best is not None else None


def remove_route(app: FastAPI, method: str, path: str) -> list[str]:
    """Remove ``method`` at ``path`` from ``app`` (any route, however it was made).

    Returns a line per route changed. A route that also answers other methods
    keeps them. Raises RouteError when nothing matches.
    """
    spec = parse_route_line(f"{method} {path}")
    wanted = {"WS"} if spec.websocket else set(spec.methods)
    routes = app.router.routes
    kept: list[BaseRoute] = []
    done: list[str] = []
    for route in routes:
        pattern = _pattern(route)
        if pattern is None or pattern[0] != spec.path or not pattern[1] & wanted:
            kept.append(route)
            continue
        name = f"{getattr(route, 'name', '?')}()"
        rest = pattern[1] - wanted
        if rest and isinstance(route, Route) and route.methods is not None:
            # A new route object, as for every other change: widgets and the contract
            # check follow routes by identity.
            narrowed = copy.copy(route)
            narrowed.methods = route.methods - wanted
            done.append(f"removed {','.join(sorted(pattern[1] & wanted))} {spec.path} from {name}")
            kept.append(narrowed)
            continue
        done.append(f"removed {','.join(sorted(pattern[1]))} {spec.path} -> {name}")
    if not done:
        paths = sorted({p[0] for r in routes if (p := _pattern(r)) and p[1] & wanted})
        near = difflib.get_close_matches(spec.path, paths, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        msg = (
            f"no {spec.describe()} route in the app; {hint}%nbapi routes lists them "
            "(routes inside an included router are removed from the router)"
        )
        raise RouteError(msg)
    routes[:] = kept
    app.openapi_schema = None
    return done
