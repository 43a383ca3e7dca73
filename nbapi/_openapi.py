"""The OpenAPI of one route at a time, and the changes between two states of an app's routes.

FastAPI generates the whole document at once, about 2.5 ms a route; re-running one cell
must not cost that for every route. Here a route's operations are generated on their own
(with only the schemas they reference), cached per route object, and two lists of routes
are compared by identity first: only the operations of routes that were replaced, added
or removed are generated and compared. ``/openapi.json`` is left to FastAPI.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
import weakref
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, routing
from fastapi._compat import v2
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.constants import REF_TEMPLATE
from fastapi.openapi.models import OpenAPI
from fastapi.openapi.utils import get_fields_from_routes, get_openapi_path
from starlette.routing import BaseRoute

from ._contract import diff_operations, operations
from ._rules import Change, Key, Operation, Policy, operation_key

Display = tuple[str, str]  # ("GET", "/items/{item_id}")
UnitId = tuple[int, int | None]  # (id(route), version of an included router's routes)


def _api_routes(route: BaseRoute) -> Iterable[Any]:
    """The path operations a route entry holds: itself, or an included router's routes."""
    if isinstance(route, routing.APIRoute):
        yield route
        return
    if getattr(route, "original_router", None) is None:
        return  # Mount, websocket and plain Starlette routes are not in the OpenAPI
    for context in routing.iter_route_contexts([route]):
        if isinstance(context.original_route, routing.APIRoute):
            yield context


def _version(route: BaseRoute) -> int | None:
    router = getattr(route, "original_router", None)
    version = getattr(router, "_get_routes_version", None)
    return version() if version is not None else None


def route_document(
    route: BaseRoute, *, separate_input_output_schemas: bool = True
) -> dict[str, Any]:
    """An OpenAPI document holding only ``route``'s operations and the schemas they use.

    The steps of FastAPI's ``get_openapi`` for these routes, without what serves the whole
    document only: the model name map (``$ref`` names do not matter to a comparison that
    resolves them) and the validation of the result through FastAPI's ``OpenAPI`` model.
    """
    contexts = list(_api_routes(route))
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {}
    if not contexts:
        return {"openapi": "3.1.0", "paths": paths}
    fields = get_fields_from_routes(contexts)
    separate = separate_input_output_schemas
    inputs = [
        (
            item,
            item.mode if separate or v2._has_computed_fields(item) else "validation",
            item._type_adapter.core_schema,
        )
        for item in fields
    ]
    generator = v2.GenerateJsonSchema(ref_template=REF_TEMPLATE)
    field_mapping, definitions = generator.generate_definitions(inputs=inputs)
    schemas: dict[str, Any] = {str(name): value for name, value in definitions.items()}
    for context in contexts:
        with warnings.catch_warnings():
            # FastAPI warns of a duplicate operationId (a route with several methods) when
            # it generates /openapi.json; once there is enough, not on every re-run.
            warnings.simplefilter("ignore")
            path, security, extra = get_openapi_path(
                route=context,
                operation_ids=set(),
                model_name_map={},
                field_mapping=field_mapping,
                separate_input_output_schemas=separate,
            )
        if path:
            paths.setdefault(context.path_format, {}).update(path)
        if security:
            components.setdefault("securitySchemes", {}).update(security)
        schemas.update(extra)
    components["schemas"] = schemas
    return {"openapi": "3.1.0", "paths": paths, "components": components}


def validated(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` after FastAPI's last step: through its ``OpenAPI`` model and
    ``jsonable_encoder`` (numbers typed as the model types them, no None values). Widgets
    show what /openapi.json serves; the comparison does not need it (0.5 ms a route)."""
    model = OpenAPI(**{"info": {"title": "", "version": ""}, **document})
    found = dict(jsonable_encoder(model, by_alias=True, exclude_none=True))
    found.pop("info", None)
    return found


class RouteOperations:
    """Each route's operation keys (cheap) and operations (generated once), cached per route."""

    def __init__(self, separate_input_output_schemas: bool = True) -> None:
        self.separate = separate_input_output_schemas
        self._keys: dict[UnitId, tuple[BaseRoute, dict[Key, Display]]] = {}
        self._operations: dict[UnitId, tuple[BaseRoute, dict[Key, Operation]]] = {}
        self._documents: dict[UnitId, dict[str, Any]] = {}
        self._validated: dict[UnitId, tuple[BaseRoute, dict[str, Any]]] = {}
        self.generated = 0  # how many routes were generated (the benchmark reads it)

    def keys(self, route: BaseRoute, version: int | None) -> dict[Key, Display]:
        unit = (id(route), version)
        cached = self._keys.get(unit)
        if cached is not None and cached[0] is route:
            return cached[1]
        found: dict[Key, Display] = {}
        for api in _api_routes(route):
            if api.include_in_schema:
                for method in sorted(api.methods or ()):
                    found[operation_key(method, api.path_format)] = (method, api.path_format)
        self._keys[unit] = (route, found)
        return found

    def operations(self, route: BaseRoute, version: int | None) -> dict[Key, Operation]:
        unit = (id(route), version)
        cached = self._operations.get(unit)
        if cached is not None and cached[0] is route:
            return cached[1]
        document = route_document(route, separate_input_output_schemas=self.separate)
        self.generated += 1
        found = operations(document)
        self._operations[unit] = (route, found)
        self._documents[unit] = document
        return found

    def document(self, route: BaseRoute, version: int | None) -> dict[str, Any]:
        """The OpenAPI document of ``route`` alone, as FastAPI would serve it; cached."""
        unit = (id(route), version)
        cached = self._validated.get(unit)
        if cached is not None and cached[0] is route:
            return cached[1]
        self.operations(route, version)
        found = validated(self._documents[unit])
        self._validated[unit] = (route, found)
        return found

    def keep_only(self, routes: Iterable[BaseRoute]) -> None:
        """Forget every route but ``routes`` (the cache holds routes, and so their models)."""
        kept = {id(route) for route in routes}
        self._keys = {u: v for u, v in self._keys.items() if u[0] in kept}
        self._operations = {u: v for u, v in self._operations.items() if u[0] in kept}
        self._documents = {u: v for u, v in self._documents.items() if u in self._operations}
        self._validated = {u: v for u, v in self._validated.items() if u in self._operations}

    def size(self) -> int:
        return len(self._keys) + len(self._operations)


Unit = tuple[BaseRoute, int | None]  # a route entry and, for an included router, its version
Providers = dict[Key, Unit]


class Snapshot:
    """An app's route entries at one moment, with the versions of included routers.

    Built on every cell, so only C-speed work over all routes: their ids, as a list and a set.
    """

    def __init__(self, routes: list[BaseRoute], versions: dict[int, int] | None = None) -> None:
        self.routes = routes
        self.ids = list(map(id, routes))
        self.id_set = set(self.ids)
        self.versions = versions or {}

    @classmethod
    def of(cls, app: FastAPI) -> Snapshot:
        routes = list(app.router.routes)
        versions: dict[int, int] = {}
        for route in [r for r in routes if type(r) is not routing.APIRoute]:
            version = _version(route)
            if version is not None:
                versions[id(route)] = version
        return cls(routes, versions)

    def same_as(self, other: Snapshot) -> bool:
        return self.ids == other.ids and self.versions == other.versions

    def units(self, ids: Iterable[int]) -> list[Unit]:
        """The (route, version) of each id, in the order of the routes."""
        wanted = set(ids)
        if len(wanted) > 8:
            return [(r, self.versions.get(id(r))) for r in self.routes if id(r) in wanted]
        indexes = sorted(self.ids.index(i) for i in wanted)  # C-speed scans
        return [(self.routes[i], self.versions.get(self.ids[i])) for i in indexes]

    def changed(self, new: Snapshot) -> tuple[list[Unit], list[Unit]]:
        """The route entries only this snapshot holds, and those only ``new`` holds."""
        routers = {
            i for i, version in new.versions.items() if self.versions.get(i, version) != version
        }
        removed = self.units((self.id_set - new.id_set) | routers)
        added = new.units((new.id_set - self.id_set) | routers)
        return removed, added


def providers(snapshot: Snapshot, cache: RouteOperations, wanted: set[Key] | None) -> Providers:
    """Which route gives each key's operation: the last one, as in FastAPI's document."""
    found: Providers = {}
    for route in reversed(snapshot.routes):
        version = snapshot.versions.get(id(route))
        for key in cache.keys(route, version):
            if (wanted is None or key in wanted) and key not in found:
                found[key] = (route, version)
        if wanted is not None and len(found) == len(wanted):
            break
    return found


def compare_providers(
    before: Providers, after: Providers, cache: RouteOperations, policy: Policy
) -> list[Change]:
    """The changes between two assignments of operations to routes; unchanged routes are skipped."""
    changes: list[Change] = []
    old: dict[Key, Operation] = {}
    new: dict[Key, Operation] = {}
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was is not None and now is not None:
            if was[0] is now[0] and was[1] == now[1]:
                continue
            try:
                old_op = cache.operations(*was).get(key)
                new_op = cache.operations(*now).get(key)
            except Exception:
                # FastAPI cannot generate this route's schema; /docs and %nbapi check say
                # so. Comparing what cannot be generated is not this check's job.
                continue
            if old_op is not None and new_op is not None:
                old[key], new[key] = old_op, new_op
        elif was is not None:
            method, path = cache.keys(*was)[key]
            changes.append(Change("operation-removed", True, method, path, "operation removed"))
        elif now is not None:
            method, path = cache.keys(*now)[key]
            changes.append(Change("operation-added", False, method, path, "operation added"))
    return changes + diff_operations(old, new, policy)


def diff_snapshots(
    old: Snapshot, new: Snapshot, cache: RouteOperations, policy: Policy
) -> list[Change]:
    """The changes from ``old`` to ``new``, generating only the routes that differ."""
    if new.same_as(old):
        return []
    removed, added = old.changed(new)
    affected = {key for unit in removed + added for key in cache.keys(*unit)}
    if not affected:
        return []
    before = providers(old, cache, affected)
    after = providers(new, cache, affected)
    return compare_providers(before, after, cache, policy)


def merged_document(app: FastAPI, snapshot: Snapshot, cache: RouteOperations) -> dict[str, Any]:
    """The app's OpenAPI put together from its routes' own documents, generated once each.

    Paths, operations and schemas as in ``app.openapi()``; a schema name two routes use for
    different schemas (a model redefined, one route not re-run) gets a suffix in the second.
    """
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    security: dict[str, Any] = {}
    for route in snapshot.routes:
        version = snapshot.versions.get(id(route))
        if not cache.keys(route, version):
            continue
        document = cache.document(route, version)
        components = document.get("components", {})
        renames: dict[str, str] = {}
        for name, schema in components.get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                number = 2
                while f"{name}-{number}" in schemas:
                    number += 1
                renames[name] = f"{name}-{number}"
        if renames:
            document = _renamed(document, renames)
            components = document.get("components", {})
        for name, schema in components.get("schemas", {}).items():
            schemas.setdefault(renames.get(name, name), schema)
        security.update(components.get("securitySchemes", {}))
        for path, item in document.get("paths", {}).items():
            paths.setdefault(path, {}).update(item)
    info: dict[str, Any] = {"title": app.title, "version": app.version}
    for key, value in (
        ("summary", app.summary),
        ("description", app.description),
        ("termsOfService", app.terms_of_service),
        ("contact", app.contact),
        ("license", app.license_info),
    ):
        if value:
            info[key] = jsonable_encoder(value, by_alias=True, exclude_none=True)
    found: dict[str, Any] = {"openapi": app.openapi_version, "info": info, "paths": paths}
    if schemas or security:
        found["components"] = {"schemas": dict(sorted(schemas.items()))}
        if security:
            found["components"]["securitySchemes"] = security
    return found


def _renamed(value: Any, renames: dict[str, str]) -> Any:
    """A copy of ``value`` whose ``$ref``s to renamed schemas point to their new names."""
    if isinstance(value, dict):
        copied: dict[Any, Any] = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith(SCHEMA_REF):
                name = item[len(SCHEMA_REF) :]
                copied[key] = SCHEMA_REF + renames.get(name, name)
            else:
                copied[key] = _renamed(item, renames)
        return copied
    if isinstance(value, list):
        return [_renamed(item, renames) for item in value]
    return value


SCHEMA_REF = "#/components/schemas/"


class _KeyIndex:
    """Key -> the routes of the last snapshot that give it, kept up to date change by change,
    so that a re-run finds an operation's route without a walk over every route."""

    def __init__(self) -> None:
        self._routes: dict[Key, list[Unit]] = {}

    def update(self, removed: list[Unit], added: list[Unit], cache: RouteOperations) -> None:
        for unit in removed:
            for key in cache.keys(*unit):
                self._routes[key] = [u for u in self._routes.get(key, ()) if u[0] is not unit[0]]
        for unit in added:
            for key in cache.keys(*unit):
                self._routes.setdefault(key, []).append(unit)

    def providers(self, snapshot: Snapshot, keys: set[Key]) -> Providers:
        found: Providers = {}
        for key in keys:
            units = [u for u in self._routes.get(key, ()) if id(u[0]) in snapshot.id_set]
            if len(units) == 1:
                found[key] = units[0]
            elif units:
                # Several routes give the key: FastAPI's document holds the last one's.
                found[key] = max(units, key=lambda unit: snapshot.ids.index(id(unit[0])))
        return found


class Tracker:
    """One app's routes over a session: the last state seen, checkpoints, first versions."""

    def __init__(self) -> None:
        self._app: weakref.ref[FastAPI] | None = None
        self.last = Snapshot([])
        self.cache = RouteOperations()
        self.index = _KeyIndex()
        self.first_seen: Providers = {}
        self.checkpoints: dict[str, Snapshot] = {}
        self.latest: str | None = None  # the checkpoint %nbapi diff compares with by default

    def observe(self, app: FastAPI, policy: Policy, *, compare: bool = True) -> list[Change]:
        """The changes since the last call (none on the first call or for a new app)."""
        current = Snapshot.of(app)
        if self._app is None or self._app() is not app:
            # A new app (``app = FastAPI()`` run again): its routes are not changes of the
            # old app's. Checkpoints and first versions stay, to compare against later.
            self._app = weakref.ref(app)
            if self.cache.separate != app.separate_input_output_schemas:
                self.cache = RouteOperations(app.separate_input_output_schemas)
            self.last, self.index = Snapshot([]), _KeyIndex()
            compare = False
        if current.same_as(self.last):
            return []
        removed, added = self.last.changed(current)
        affected = {key for unit in removed + added for key in self.cache.keys(*unit)}
        before = self.index.providers(self.last, affected) if compare else {}
        self.index.update(removed, added, self.cache)
        after = self.index.providers(current, affected) if compare else {}
        self._remember_first(added)
        self.last = current
        changes = compare_providers(before, after, self.cache, policy) if compare else []
        if self.cache.size() > 4 * len(current.routes) + 64:
            self.cache.keep_only(self.pinned())
        return changes

    def _remember_first(self, added: list[Unit]) -> None:
        for route, version in added:
            for key in self.cache.keys(route, version):
                self.first_seen.setdefault(key, (route, version))
            if version is not None:
                # An included router changes in place: its operations can only be
                # generated while this version of it is the current one.
                with contextlib.suppress(Exception):  # see compare_providers
                    self.cache.operations(route, version)

    def pinned(self) -> list[BaseRoute]:
        held = [*self.last.routes, *(route for route, _ in self.first_seen.values())]
        held += itertools.chain.from_iterable(s.routes for s in self.checkpoints.values())
        return held

    def since_first(self, app: FastAPI, policy: Policy) -> list[Change]:
        """Each operation against its first version in the session; removed ones too."""
        self.observe(app, policy, compare=False)
        after = providers(self.last, self.cache, None)
        return compare_providers(self.first_seen, after, self.cache, policy)

    def since(self, name: str, app: FastAPI, policy: Policy) -> list[Change]:
        self.observe(app, policy, compare=False)
        return diff_snapshots(self.checkpoints[name], self.last, self.cache, policy)

    def document(self, app: FastAPI, policy: Policy) -> dict[str, Any]:
        """The app's OpenAPI, generating only the routes not seen before (for widgets)."""
        self.observe(app, policy, compare=False)
        return merged_document(app, self.last, self.cache)

    def checkpoint(self, name: str, app: FastAPI, policy: Policy) -> int:
        """Record the app's routes as ``name``; the number of operations."""
        self.observe(app, policy, compare=False)
        self.checkpoints[name] = self.last
        self.latest = name
        return len(providers(self.last, self.cache, None))
