"""Pure: JSON Schema inside an OpenAPI document: ``$ref`` lookup, resolving, kinds, examples.

What the request form (``nbapi._forms``) and its checks (``nbapi._checks``) read schemas with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

PARAM_LOCATIONS = ("path", "query", "header", "cookie")
CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
)
MAX_DEPTH = 8  # self-referencing models stop expanding here

_STRING_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "duration": "P1D",
    "email": "user@example.com",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "uri": "http://127.0.0.1/",
    "ipv4": "127.0.0.1",
}


# -- reading the OpenAPI ------------------------------------------------------------
def lookup(spec: Mapping[str, Any], ref: str) -> dict[str, Any]:
    """The schema a local ``$ref`` (``#/components/schemas/Item``) points at, or {}."""
    node: Any = spec
    for part in ref.lstrip("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return {}
        node = node[part]
    return dict(node) if isinstance(node, Mapping) else {}


def resolve(schema: Mapping[str, Any] | None, spec: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with its top ``$ref`` followed and ``X | None`` collapsed to X.

    Keys next to a ``$ref`` (``default``, ``description``) win over the target's;
    a collapsed optional gets ``nullable: True``.
    """
    current = dict(schema or {})
    for _ in range(MAX_DEPTH):
        if "$ref" in current:
            ref = current.pop("$ref")
            current = {**lookup(spec, str(ref)), **current}
            continue
        for key in ("anyOf", "oneOf"):
            options = current.get(key)
            if isinstance(options, list):
                real = [
                    o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")
                ]
                if len(real) == 1 and isinstance(real[0], Mapping):
                    rest = {k: v for k, v in current.items() if k != key}
                    if len(real) < len(options):
                        rest["nullable"] = True
                    current = {**real[0], **rest}
                    break
        else:
            all_of = current.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
                rest = {k: v for k, v in current.items() if k != "allOf"}
                current = {**all_of[0], **rest}
                continue
            types = current.get("type")
            if isinstance(types, list):
                real_types = [t for t in types if t != "null"]
                if len(real_types) == 1:
                    current["type"] = real_types[0]
                    if len(real_types) < len(types):
                        current["nullable"] = True
            return current
    return current


def schema_kind(schema: Mapping[str, Any]) -> str:
    """One word for an input: string, integer, number, boolean, enum, array, object, file, any."""
    if "enum" in schema:
        return "enum"
    kind = schema.get("type")
    if kind == "string" and (
        schema.get("format") == "binary"
        or str(schema.get("contentMediaType", "")).startswith(("application/octet", "image/"))
    ):
        return "file"
    if kind in ("string", "integer", "number", "boolean", "array", "object", "null"):
        return str(kind)
    if "properties" in schema:
        return "object"
    return "any"


def scalar_text(value: Any) -> str:
    """A JSON value as the text an input shows: ``true``, ``3``, ``red``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _number(value: Any) -> str:
    return scalar_text(value) if isinstance(value, (int, float)) else str(value)


def _first_example(*sources: Mapping[str, Any]) -> Any:
    for source in sources:
        if "example" in source:
            return source["example"]
        examples = source.get("examples")
        if isinstance(examples, list) and examples:
            return examples[0]
        if isinstance(examples, Mapping) and examples:
            first = next(iter(examples.values()))
            if isinstance(first, Mapping) and "value" in first:
                return first["value"]
    return None


# -- example bodies ---------------------------------------------------------------
def skeleton(schema: Mapping[str, Any] | None, spec: Mapping[str, Any], depth: int = 0) -> Any:
    """An example value for ``schema``: its example or default, else a valid-looking guess."""
    resolved = resolve(schema, spec)
    example = _first_example(resolved)
    if example is not None:
        return example
    if "default" in resolved:
        return resolved["default"]
    if "const" in resolved:
        return resolved["const"]
    if resolved.get("enum"):
        return resolved["enum"][0]
    kind = schema_kind(resolved)
    if depth >= MAX_DEPTH:
        return None
    if kind == "object":
        return {
            name: skeleton(prop, spec, depth + 1)
            for name, prop in (resolved.get("properties") or {}).items()
        }
    if kind == "array":
        items = resolved.get("items")
        count = max(1, int(resolved.get("minItems", 1)))
        return [skeleton(items, spec, depth + 1) for _ in range(count)] if items else []
    if kind in ("integer", "number"):
        return _number_example(resolved, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "string":
        text = _STRING_FORMATS.get(str(resolved.get("format", "")), "string")
        low, high = int(resolved.get("minLength", 0)), resolved.get("maxLength")
        text = text.ljust(low, "x")
        return text[: int(high)] if high is not None else text
    if kind == "any":
        options = resolved.get("anyOf") or resolved.get("oneOf")
        if isinstance(options, list) and options:
            return skeleton(options[0], spec, depth + 1)
    return None


def _number_example(schema: Mapping[str, Any], integer: bool) -> int | float:
    value: float = 0
    if "minimum" in schema:
        value = float(schema["minimum"])
    elif "exclusiveMinimum" in schema:
        value = float(schema["exclusiveMinimum"]) + 1
    elif "maximum" in schema and float(schema["maximum"]) < 0:
        value = float(schema["maximum"])
    elif "exclusiveMaximum" in schema and float(schema["exclusiveMaximum"]) <= 0:
        value = float(schema["exclusiveMaximum"]) - 1
    if integer:
        return math.ceil(value)
    return value
