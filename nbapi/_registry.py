"""The routes each notebook cell owns on the kernel's FastAPI app.

A cell registers its function exactly as ``@app.api_route(...)`` (or
``@app.websocket(...)``) would; re-running the cell swaps its route in place.
Nothing here imports IPython.
"""

from __future__ import annotations

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
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from ._errors import UserError
from ._spec import RouteSpec

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
        text = str(exc).strip()
        message = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
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
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            msg = f"FastAPI refused {spec.describe()}: {type(exc).__name__}: {message}"
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

    def remove(self, app: FastAPI, owner: str) -> bool:
        """Remove ``owner``'s route from ``app``; False when it had none there."""
        entry = self._owned.pop(owner, None)
        if entry is None or entry.app() is not app or not _holds(app.router.routes, entry.route):
            return False
        app.router.routes[:] = [r for r in app.router.routes if r is not entry.route]
        app.openapi_schema = None
        return True

    def _warnings(
        self, app: FastAPI, new_route: BaseRoute, spec: RouteSpec, endpoint: Endpoint
    ) -> list[str]:
        warnings: list[str] = []
        routes = app.router.routes
        index = _index(routes, new_route)
        if index is None:  # another thread removed it already: nothing to warn about
            return []
        name = f"{endpoint.__name__}()"
        wanted = {"WS"} if spec.websocket else set(spec.methods)
        for earlier in routes[:index]:
            # Cheapest test first, as re-running a cell with 1000 routes registered must
            # stay cheap: a route's regex can only match a path that starts with the
            # route's literal part (its path up to the first parameter).
            path_format = getattr(earlier, "path_format", None)
            if path_format is None or not spec.path.startswith(path_format.partition("{")[0]):
                continue
            if spec.websocket != isinstance(earlier, WebSocketRoute):
                continue
            if not isinstance(earlier, (Route, WebSocketRoute)):
                continue
            # Then a bare regex match (what Route.matches does before it looks at methods).
            same = earlier.path_format == spec.path or earlier.path == spec.path
            if not same and not earlier.path_regex.match(spec.path):
                continue
            overlap = wanted if spec.websocket else _methods(earlier) & wanted
            if not overlap:
                continue
            earlier_name = f"{getattr(earlier, 'name', '?')}()"
            shown = f"{','.join(sorted(overlap))} {spec.path}"
            if same:
                warnings.append(
                    f"{shown} by {name} is unreachable: {earlier_name} registered the same "
                    "route earlier and FastAPI uses the first; remove one or change its path"
                )
            else:
                warnings.append(
                    f"{shown} by {name} is shadowed by {earlier.path} of {earlier_name}, "
                    "which was registered earlier and matches first; "
                    "register the fixed path first"
                )
        dependant = getattr(new_route, "dependant", None)
        if dependant is not None:
            declared = _declared_path_params(dependant)
            for param in spec.path_params:
                if param not in declared:
                    warnings.append(
                        f"path parameter {param!r} in {spec.path} is not a parameter of "
                        f"{name} or its dependencies; add `{param}` to its signature"
                    )
        return warnings
