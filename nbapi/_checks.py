"""Pure: a form's client-side checks (warnings, never errors) and a 422 pointed at its fields.

An invalid request must stay sendable: the checks only warn; the server has the last word.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._http import validation_rows
from ._schema import (
    MAX_DEPTH,
    PARAM_LOCATIONS,
    _number,
    resolve,
    scalar_text,
    schema_kind,
)

if TYPE_CHECKING:
    from ._forms import Operation


# -- client-side checks (warnings only) ---------------------------------------------
@dataclass(frozen=True)
class FormWarning:
    """A client-side check that failed; the request is still sent."""

    key: str  # the field's key, or "" for the whole request
    where: str  # "query.limit", "body.price"
    message: str

    def line(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


_TYPE_NAMES = {"integer": "an integer", "number": "a number", "boolean": "true or false"}


def _parse_scalar(kind: str, text: str) -> tuple[Any, str | None]:
    """Text from an input as the JSON value it stands for, or an error message."""
    if kind == "integer":
        try:
            return int(text), None
        except ValueError:
            return text, f"{text!r} is not an integer"
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return text, f"{text!r} is not a number"
        return number, None
    if kind == "boolean":
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True, None
        if lowered in ("false", "0", "no", "off"):
            return False, None
        return text, f"{text!r} is not true or false"
    return text, None


def check_value(value: Any, schema: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """Problems of one JSON value against the common JSON Schema keywords (not nested)."""
    schema = resolve(schema, spec)
    problems: list[str] = []
    if value is None:
        if schema.get("nullable") or schema.get("type") in (None, "null"):
            return []
        return ["is null"]
    kind = schema_kind(schema)
    if kind == "enum":
        if value not in schema.get("enum", ()):
            options = ", ".join(scalar_text(v) for v in schema["enum"])
            problems.append(f"{scalar_text(value)!r} is not one of {options}")
        return problems
    expected: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "array": list,
        "object": dict,
        "file": str,
    }
    wrong = kind in expected and not isinstance(value, expected[kind])
    if (kind in ("integer", "number") and isinstance(value, bool)) or wrong:
        return [f"should be {_TYPE_NAMES.get(kind, f'a {kind}')}, got {json.dumps(value)}"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, test, word in (
            ("minimum", lambda v, b: v >= b, ">="),
            ("maximum", lambda v, b: v <= b, "<="),
            ("exclusiveMinimum", lambda v, b: v > b, ">"),
            ("exclusiveMaximum", lambda v, b: v < b, "<"),
        ):
            if key in schema and not test(value, schema[key]):
                problems.append(f"should be {word} {_number(schema[key])}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"should have at least {_plural(schema['minLength'], 'character')}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"should have at most {_plural(schema['maxLength'], 'character')}")
        if "pattern" in schema:
            try:
                if re.search(str(schema["pattern"]), value) is None:
                    problems.append(f"should match {schema['pattern']}")
            except re.error:
                pass  # a pattern Python cannot read: leave it to the server
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"should have at least {_plural(schema['minItems'], 'item')}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"should have at most {_plural(schema['maxItems'], 'item')}")
    return problems


def _plural(count: Any, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def check_json(
    value: Any, schema: Mapping[str, Any] | None, spec: Mapping[str, Any], where: str = "body"
) -> list[tuple[str, str]]:
    """(location, problem) for a JSON value and everything nested in it."""
    resolved = resolve(schema, spec)
    problems = [(where, p) for p in check_value(value, resolved, spec)]
    if problems or depth_of(where) > MAX_DEPTH:
        return problems
    if isinstance(value, dict) and schema_kind(resolved) == "object":
        properties = resolved.get("properties") or {}
        for name in resolved.get("required", ()):
            if name not in value:
                problems.append((f"{where}.{name}", "is required"))
        for name, item in value.items():
            if name in properties:
                problems += check_json(item, properties[name], spec, f"{where}.{name}")
    elif isinstance(value, list) and resolved.get("items"):
        for index, item in enumerate(value):
            problems += check_json(item, resolved["items"], spec, f"{where}.{index}")
    return problems


def depth_of(where: str) -> int:
    return where.count(".")


def check_request(
    op: Operation, values: Mapping[str, Any], spec: Mapping[str, Any] | None = None
) -> list[FormWarning]:
    """Client-side warnings for form ``values`` (see :func:`build_request`); never raises."""
    spec = spec or {}
    warnings: list[FormWarning] = []
    for item in op.all_fields():
        value = values.get(item.key)
        where = f"{item.location}.{item.name}" if item.location != "body" else "body"
        if item.location == "body":
            text = str(value or "").strip()
            if not text:
                if item.required:
                    warnings.append(FormWarning(item.key, where, "the body is required"))
                continue
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                message = f"not valid JSON ({exc.msg} at line {exc.lineno})"
                warnings.append(FormWarning(item.key, where, message))
                continue
            schema = op.body.schema if op.body else {}
            warnings += [FormWarning(item.key, w, p) for w, p in check_json(parsed, schema, spec)]
            continue
        if _is_empty(value):
            if item.required:
                warnings.append(FormWarning(item.key, where, "is required"))
            continue
        if item.kind == "file" or item.location == "file":
            continue
        texts = value if isinstance(value, list) else [value]
        if item.kind == "array":
            items_schema = resolve(item.schema.get("items"), spec)
            for entry in texts:
                parsed, error = _parse_scalar(item.item_kind, str(entry))
                item_problems = [error] if error else check_value(parsed, items_schema, spec)
                warnings += [FormWarning(item.key, where, p) for p in item_problems]
            count = len(texts)
            schema_counts = {
                k: item.constraints[k] for k in ("minItems", "maxItems") if k in item.constraints
            }
            warnings += [
                FormWarning(item.key, where, p)
                for p in check_value(["x"] * count, {"type": "array", **schema_counts}, spec)
            ]
            continue
        parsed, error = _parse_scalar(item.kind, str(texts[0]))
        problems = [error] if error else check_value(parsed, item.schema, spec)
        warnings += [FormWarning(item.key, where, p) for p in problems]
    return warnings


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple)) and not value)


# -- 422 -> fields ------------------------------------------------------------------
def error_fields(op: Operation, payload: Any) -> dict[str, list[str]]:
    """Field key -> messages, for the errors of a FastAPI 422 body.

    Errors no field owns go under ``""``. Header names match FastAPI's aliases
    (``x_token`` is sent and reported as ``x-token``).
    """
    marked: dict[str, list[str]] = {}
    detail = payload.get("detail") if isinstance(payload, Mapping) else None
    if not isinstance(detail, list) or validation_rows(payload) is None:
        return marked
    fields = op.all_fields()
    for error in detail:
        loc = [str(part) for part in error.get("loc", ())]
        message = str(error.get("msg", ""))
        key = ""
        if len(loc) >= 2 and loc[0] in PARAM_LOCATIONS:
            wanted = _header_name(loc[1]) if loc[0] == "header" else loc[1]
            for item in fields:
                same = (
                    _header_name(item.name) == wanted if loc[0] == "header" else item.name == wanted
                )
                if item.location == loc[0] and same:
                    key = item.key
        elif loc and loc[0] == "body":
            if op.body is not None and op.body.is_form and len(loc) >= 2:
                key = next((f.key for f in op.body.fields if f.name == loc[1]), "")
            elif op.body is not None and not op.body.is_form:
                key = "body"
                if error.get("type") == "json_invalid" and len(loc) > 1:
                    message = f"{message} at character {loc[1]}"
                elif len(loc) > 1:
                    message = f"{'.'.join(loc[1:])}: {message}"
        marked.setdefault(key, []).append(message)
    return marked


def _header_name(name: str) -> str:
    return name.lower().replace("_", "-")
