"""The rules: how one version of an operation differs from another, and whether it breaks clients.

Pure dictionary work (no FastAPI, no IPython). ``$ref``s are resolved, so FastAPI's
``Item-Input`` / ``Item-Output`` schemas compare by content, and ``anyOf`` with
``{"type": "null"}`` reads as a nullable type.

"Breaking" means: a request valid under the old version may be refused by the new one, or a
response the new version gives may be invalid under the old one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # ("GET", "/items/{}"): path parameters compare by position, not name
Doc = Mapping[str, Any]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM = re.compile(r"\{[^}/]+\}")


# Every rule and whether it breaks clients (README.md has the table with an example each).
RULES: dict[str, bool] = {
    "operation-removed": True,
    "request-required-added": True,
    "request-made-required": True,
    "request-type-changed": True,
    "request-constraint-narrowed": True,
    "request-enum-value-removed": True,
    "request-media-type-removed": True,
    "response-property-removed": True,
    "response-property-made-optional": True,
    "response-type-changed": True,
    "response-constraint-widened": True,
    "response-enum-value-added": True,
    "response-success-removed": True,
    "response-media-type-removed": True,
    "security-added": True,
    "operation-added": False,
    "operation-deprecated": False,
    "description-changed": False,
    "operation-id-changed": False,
    "request-optional-added": False,
    "request-made-optional": False,
    "request-removed": False,
    "request-type-widened": False,
    "request-constraint-widened": False,
    "request-enum-value-added": False,
    "request-media-type-added": False,
    "response-property-added": False,
    "response-property-made-required": False,
    "response-type-narrowed": False,
    "response-constraint-narrowed": False,
    "response-enum-value-removed": False,
    "response-status-added": False,
    "response-status-removed": False,
    "response-media-type-added": False,
    "security-removed": False,
}


@dataclass(frozen=True)
class Policy:
    """Choices where published policies disagree.

    A new value in a response enum breaks clients that switch over the values they know
    (Zalando's and Microsoft's API guidelines); oasdiff and Google's AIP-180 call it
    compatible. nbapi reports it as breaking unless ``response_enum_added_breaks`` is False.
    """

    response_enum_added_breaks: bool = True


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Change:
    """One difference between two versions of an operation."""

    rule: str
    breaking: bool
    method: str
    path: str
    detail: str

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path}"

    def line(self) -> str:
        kind = "breaking" if self.breaking else "compatible"
        return f"{kind} change in {self.operation}: {self.detail}"

    def __str__(self) -> str:
        return self.line()

    def sort_key(self) -> tuple[Any, ...]:
        return (not self.breaking, self.path, _method_order(self.method), self.detail)


def _method_order(method: str) -> int:
    lower = method.lower()
    return METHODS.index(lower) if lower in METHODS else len(METHODS)


@dataclass(frozen=True)
class Operation:
    """An operation object with what it needs around it: its document (for ``$ref``s)."""

    method: str
    path: str
    spec: Mapping[str, Any]
    document: Doc = field(repr=False)
    shared_parameters: Sequence[Any] = ()  # the path item's parameters


def operation_key(method: str, path: str) -> Key:
    return (method.upper(), _PARAM.sub("{}", path))


def compare(old: Operation, new: Operation, policy: Policy) -> list[Change]:
    """The changes from ``old`` to ``new``, two versions of the same operation."""
    return _OperationDiff(old, new, policy).changes()


def key_label(operation: Operation) -> tuple[str, str]:
    return operation.method, operation.path


# -- reading schemas ---------------------------------------------------------------------
def resolve(document: Doc, value: Any, depth: int = 0) -> Any:
    """Follow ``$ref`` (local ones, ``#/...``) until a value that is not a reference."""
    while isinstance(value, dict) and isinstance(value.get("$ref"), str) and depth < 50:
        ref: str = value["$ref"]
        target: Any = document
        for part in ref.lstrip("#").strip("/").split("/") if ref.startswith("#") else [None]:
            if part is None or not isinstance(target, dict):
                return {}
            target = target.get(part.replace("~1", "/").replace("~0", "~"))
        value, depth = target if target is not None else {}, depth + 1
    return value


_NUMERIC = {"integer", "number"}


@dataclass(frozen=True)
class Shape:
    """A schema read for comparison: its types (empty: anything) and its one concrete variant."""

    types: frozenset[str]
    main: Mapping[str, Any]  # the non-null variant, allOf merged; {} when several

    def describe(self) -> str:
        if not self.types:
            return "any"
        named = sorted(self.types - {"null"}) + (["null"] if "null" in self.types else [])
        return " or ".join(named)


def shape(document: Doc, schema: Any) -> Shape:
    schema = _merge_all_of(document, resolve(document, schema))
    if not isinstance(schema, dict):
        return Shape(frozenset(), {})
    variants = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(variants, list):
        shapes = [shape(document, variant) for variant in variants]
        if any(not s.types for s in shapes):
            return Shape(frozenset(), {})
        types = frozenset().union(*(s.types for s in shapes))
        concrete = [s.main for s in shapes if s.types != {"null"}]
        main = concrete[0] if len(concrete) == 1 else {}
        return Shape(types, main)
    types = _types(schema)
    return Shape(types, schema)


def _types(schema: Mapping[str, Any]) -> frozenset[str]:
    kind = schema.get("type")
    names = {kind} if isinstance(kind, str) else set(kind) if isinstance(kind, list) else set()
    if not names:
        if "properties" in schema:
            names = {"object"}
        elif "items" in schema:
            names = {"array"}
        elif "enum" in schema or "const" in schema:
            values = schema.get("enum", [schema.get("const")])
            names = {_json_type(value) for value in values}
    if schema.get("nullable") is True:
        names.add("null")
    return frozenset(names)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


def _merge_all_of(document: Doc, schema: Any) -> Any:
    parts = schema.get("allOf") if isinstance(schema, dict) else None
    if not isinstance(parts, list):
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in parts:
        part = _merge_all_of(document, resolve(document, part))
        if not isinstance(part, dict):
            continue
        for name, value in part.items():
            if name == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif name == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(name, value)
    return merged


def _covers(wide: frozenset[str], narrow: frozenset[str]) -> bool:
    """Does a schema of types ``wide`` accept every value of types ``narrow``?"""
    if not wide:
        return True
    if not narrow:
        return False
    return all(t in wide or (t == "integer" and "number" in wide) for t in narrow)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value)


UPPER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
LOWER = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
EXACT = ("pattern", "format", "multipleOf")


def _bound_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[bool, str]]:
    """(narrowed?, text) for each validation keyword that differs."""
    found: list[tuple[bool, str]] = []
    for name in (*UPPER, *LOWER, *EXACT, "uniqueItems"):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if after is None:
            found.append((False, f"{name} {_show(before)} removed"))
        elif before is None:
            found.append((after is not False, f"{name} {_show(after)} added"))
        elif name in UPPER or name in LOWER:
            try:
                narrowed = after < before if name in UPPER else after > before
            except TypeError:
                narrowed = True
            verb = "narrowed" if narrowed else "widened"
            found.append((narrowed, f"{name} {verb} from {_show(before)} to {_show(after)}"))
        else:
            found.append((True, f"{name} changed from {_show(before)} to {_show(after)}"))
    return found


def _enum(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    values = schema.get("enum")
    if values is None and "const" in schema:
        values = [schema["const"]]
    if not isinstance(values, list):
        return None
    return {json.dumps(value, sort_keys=True): value for value in values}


# -- comparing operations ----------------------------------------------------------------
@dataclass
class _Place:
    """Where in the operation a schema sits, for messages."""

    root: str  # "query parameter 'q'", "request body", "200 response body"
    owner: str  # prefix for properties: "request body", "200 response"
    path: tuple[str, ...] = ()
    parameter: bool = False

    def child(self, name: str) -> _Place:
        return _Place(self.root, self.owner, (*self.path, name), self.parameter)

    def __str__(self) -> str:
        if not self.path:
            return self.root
        text = ""
        for part in self.path:
            text += part if part == "[]" or not text else f".{part}"
        return f"{self.owner} property {text!r}"


class _OperationDiff:
    """The changes between two versions of one operation."""

    def __init__(self, old: Operation, new: Operation, policy: Policy) -> None:
        self.old, self.new, self.policy = old, new, policy
        self.found: list[Change] = []
        self.stack: set[tuple[int, int]] = set()  # schema pairs being compared

    def add(self, rule: str, detail: str, breaking: bool | None = None) -> None:
        flag = RULES[rule] if breaking is None else breaking
        self.found.append(Change(rule, flag, self.new.method, self.new.path, detail))

    def changes(self) -> list[Change]:
        old, new = self.old.spec, self.new.spec
        if old == new and self.old.document.get("components") == self.new.document.get(
            "components"
        ):
            return []  # a cell run again unchanged: equal dicts, compared at C speed
        if new.get("deprecated") and not old.get("deprecated"):
            self.add("operation-deprecated", "operation deprecated")
        for name in ("summary", "description"):
            if old.get(name) != new.get(name):
                self.add("description-changed", f"{name} changed")
        before, after = old.get("operationId"), new.get("operationId")
        if before and after and before != after:
            self.add("operation-id-changed", f"operationId changed from {before!r} to {after!r}")
        self._security()
        self._parameters()
        self._request_body()
        self._responses()
        return self.found

    # -- security ----------------------------------------------------------------------
    def _requirements(self, operation: Operation) -> list[dict[str, frozenset[str]]]:
        raw = operation.spec.get("security", operation.document.get("security")) or [{}]
        return [
            {name: frozenset(scopes or ()) for name, scopes in alternative.items()}
            for alternative in raw
            if isinstance(alternative, dict)
        ] or [{}]

    def _security(self) -> None:
        old, new = self._requirements(self.old), self._requirements(self.new)
        if old == new:
            return
        old_names = {name for alternative in old for name in alternative}
        new_names = {name for alternative in new for name in alternative}

        def satisfies(given: dict[str, frozenset[str]]) -> bool:
            return any(
                all(name in given and scopes <= given[name] for name, scopes in wanted.items())
                for wanted in new
            )

        if not all(satisfies(alternative) for alternative in old):
            added = ", ".join(sorted(new_names - old_names)) or "narrowed scopes"
            self.add("security-added", f"security requirement added: {added}")
        else:
            removed = ", ".join(sorted(old_names - new_names)) or "wider scopes"
            self.add("security-removed", f"security requirement removed: {removed}")

    # -- parameters --------------------------------------------------------------------
    def _params(self, operation: Operation) -> dict[tuple[str, str], dict[str, Any]]:
        order = [m.group(0)[1:-1].split(":")[0] for m in _PARAM.finditer(operation.path)]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*operation.shared_parameters, *(operation.spec.get("parameters") or ())]:
            param = resolve(operation.document, raw)
            if not isinstance(param, dict) or "name" not in param:
                continue
            where, name = str(param.get("in", "query")), str(param["name"])
            if where == "path":
                name = str(order.index(name)) if name in order else name
            elif where == "header":
                name = name.lower()
            found[(where, name)] = dict(param)
        return found

    def _parameters(self) -> None:
        old, new = self._params(self.old), self._params(self.new)
        for key, param in new.items():
            place = _param_place(param)
            required = bool(param.get("required")) or key[0] == "path"
            before = old.get(key)
            if before is None and key[0] == "path":
                continue  # in the path either way: every client already sends it
            if before is None:
                if required:
                    self.add("request-required-added", f"{place} added as required")
                else:
                    self.add("request-optional-added", f"{place} added (optional)")
                continue
            was_required = bool(before.get("required")) or key[0] == "path"
            if required and not was_required:
                self.add("request-made-required", f"{place} is now required")
            elif was_required and not required:
                self.add("request-made-optional", f"{place} is now optional")
            self._schema(
                _Place(place, place, parameter=True),
                before.get("schema"),
                param.get("schema"),
                request=True,
            )
        for key, param in old.items():
            if key not in new and key[0] != "path":
                self.add("request-removed", f"{_param_place(param)} removed (no longer read)")

    # -- request body ------------------------------------------------------------------
    def _request_body(self) -> None:
        old = resolve(self.old.document, self.old.spec.get("requestBody"))
        new = resolve(self.new.document, self.new.spec.get("requestBody"))
        if not old and not new:
            return
        if not old:
            if new.get("required"):
                self.add("request-required-added", "request body added as required")
            else:
                self.add("request-optional-added", "request body added (optional)")
            return
        if not new:
            self.add("request-removed", "request body removed (no longer read)")
            return
        if new.get("required") and not old.get("required"):
            self.add("request-made-required", "request body is now required")
        elif old.get("required") and not new.get("required"):
            self.add("request-made-optional", "request body is now optional")
        old_media, new_media = old.get("content") or {}, new.get("content") or {}
        for media in old_media:
            if media not in new_media:
                self.add("request-media-type-removed", f"request body no longer accepts {media}")
        for media in new_media:
            if media not in old_media:
                self.add("request-media-type-added", f"request body now also accepts {media}")
                continue
            self._schema(
                _Place("request body", "request body"),
                (old_media[media] or {}).get("schema"),
                (new_media[media] or {}).get("schema"),
                request=True,
            )

    # -- responses ---------------------------------------------------------------------
    def _responses(self) -> None:
        old = self.old.spec.get("responses") or {}
        new = self.new.spec.get("responses") or {}
        for status in old:
            if status not in new:
                success = str(status).startswith("2")
                rule = "response-success-removed" if success else "response-status-removed"
                self.add(rule, f"response {status} removed")
        for status in new:
            if status not in old:
                self.add("response-status-added", f"response {status} added")
                continue
            before = resolve(self.old.document, old[status]) or {}
            after = resolve(self.new.document, new[status]) or {}
            old_media, new_media = before.get("content") or {}, after.get("content") or {}
            for media in old_media:
                if media not in new_media:
                    text = f"response {status} no longer returns {media}"
                    success = str(status).startswith("2")
                    self.add("response-media-type-removed", text, breaking=success)
            for media in new_media:
                if media not in old_media:
                    self.add(
                        "response-media-type-added", f"response {status} now also returns {media}"
                    )
                    continue
                self._schema(
                    _Place(f"{status} response body", f"{status} response"),
                    (old_media[media] or {}).get("schema"),
                    (new_media[media] or {}).get("schema"),
                    request=False,
                )

    # -- schemas -----------------------------------------------------------------------
    def _schema(self, place: _Place, old_raw: Any, new_raw: Any, *, request: bool) -> None:
        if _same(resolve(self.old.document, old_raw), resolve(self.new.document, new_raw)):
            return
        old, new = shape(self.old.document, old_raw), shape(self.new.document, new_raw)
        self._types(place, old, new, request=request)
        if not (old.main and new.main):
            return
        # A recursive model refers to itself: stop where a pair of schemas is compared
        # inside itself (and at a depth no hand-written model reaches).
        pair = (id(old.main), id(new.main))
        if pair in self.stack or len(place.path) > 32:
            return
        self.stack.add(pair)
        try:
            self._constraints(place, old.main, new.main, request=request)
            self._enums(place, old.main, new.main, request=request)
            if _props(old.main) or _props(new.main):
                self._properties(place, old.main, new.main, request=request)
            if "array" in old.types and "array" in new.types:
                items = old.main.get("items"), new.main.get("items")
                self._schema(place.child("[]"), *items, request=request)
        finally:
            self.stack.discard(pair)

    def _types(self, place: _Place, old: Shape, new: Shape, *, request: bool) -> None:
        if place.parameter and not place.path:
            # A parameter left out is None to the handler; no client sends a JSON null in a
            # query string or header, so FastAPI's anyOf-with-null changes nothing there.
            old = Shape(old.types - {"null"} if old.types != {"null"} else old.types, old.main)
            new = Shape(new.types - {"null"} if new.types != {"null"} else new.types, new.main)
        if old.types == new.types:
            return
        change = f"from {old.describe()} to {new.describe()}"
        if request:
            if _covers(new.types, old.types):
                self.add("request-type-widened", f"{place} type widened {change}")
            else:
                self.add("request-type-changed", f"{place} type changed {change}")
        elif _covers(old.types, new.types):
            self.add("response-type-narrowed", f"{place} type narrowed {change}")
        else:
            self.add("response-type-changed", f"{place} type changed {change}")

    def _constraints(
        self, place: _Place, old: Mapping[str, Any], new: Mapping[str, Any], *, request: bool
    ) -> None:
        for narrowed, text in _bound_changes(old, new):
            if request:
                rule = "request-constraint-narrowed" if narrowed else "request-constraint-widened"
            else:
                rule = "response-constraint-narrowed" if narrowed else "response-constraint-widened"
            self.add(rule, f"{place} {text}")

    def _enums(
        self, place: _Place, old: Mapping[str, Any], new: Mapping[str, Any], *, request: bool
    ) -> None:
        before, after = _enum(old), _enum(new)
        if before == after:
            return
        if before is None or after is None:
            narrowed = after is not None
            values = ", ".join(_show(v) for v in (after or before or {}).values())
            text = f"{place} now only accepts {values}" if narrowed else f"{place} enum removed"
            self._constraints_text(place, narrowed, text, request=request)
            return
        removed = [_show(v) for k, v in before.items() if k not in after]
        added = [_show(v) for k, v in after.items() if k not in before]
        if request:
            if removed:
                self.add(
                    "request-enum-value-removed", f"{place} no longer accepts {', '.join(removed)}"
                )
            if added:
                self.add("request-enum-value-added", f"{place} now also accepts {', '.join(added)}")
            return
        if added:
            breaks = self.policy.response_enum_added_breaks
            self.add("response-enum-value-added", f"{place} may now be {', '.join(added)}", breaks)
        if removed:
            self.add("response-enum-value-removed", f"{place} is no longer {', '.join(removed)}")

    def _constraints_text(self, place: _Place, narrowed: bool, text: str, *, request: bool) -> None:
        if request:
            rule = "request-constraint-narrowed" if narrowed else "request-constraint-widened"
        else:
            rule = "response-constraint-narrowed" if narrowed else "response-constraint-widened"
        self.add(rule, text)

    def _properties(
        self, place: _Place, old: Mapping[str, Any], new: Mapping[str, Any], *, request: bool
    ) -> None:
        old_props, new_props = _props(old), _props(new)
        old_required = set(old.get("required") or ())
        new_required = set(new.get("required") or ())
        for name, schema in new_props.items():
            child = place.child(name)
            if name not in old_props:
                if request and name in new_required:
                    self.add("request-required-added", f"{child} added as required")
                elif request:
                    self.add("request-optional-added", f"{child} added (optional)")
                else:
                    self.add("response-property-added", f"{child} added")
                continue
            was, now = name in old_required, name in new_required
            if request and now and not was:
                self.add("request-made-required", f"{child} is now required")
            elif request and was and not now:
                self.add("request-made-optional", f"{child} is now optional")
            elif not request and was and not now:
                self.add("response-property-made-optional", f"{child} is now optional")
            elif not request and now and not was:
                self.add("response-property-made-required", f"{child} is now always present")
            self._schema(child, old_props[name], schema, request=request)
        for name in old_props:
            if name not in new_props:
                if request:
                    self.add("request-removed", f"{place.child(name)} removed (no longer read)")
                else:
                    self.add("response-property-removed", f"{place.child(name)} removed")


def _same(old: Any, new: Any) -> bool:
    """Equal schemas that refer to nothing else: nothing in them can differ."""
    return bool(old == new and "'$ref'" not in repr(old))


def _props(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def _param_place(param: Mapping[str, Any]) -> str:
    where, name = param.get("in", "query"), param.get("name")
    if where in ("header", "cookie"):
        return f"{where} {name!r}"
    return f"{where} parameter {name!r}"
