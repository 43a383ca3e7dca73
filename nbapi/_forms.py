"""From an OpenAPI operation to a request form, and from a filled form to a request.

Pure data work (no IPython, no widgets), so every rule is testable on its own:
``operations(spec)`` reads the app's OpenAPI into :class:`Operation` s whose
:class:`FormField` s describe one input each; ``skeleton`` makes an example body;
``check_request`` gives client-side warnings (never errors: an invalid request
must stay sendable); ``error_fields`` points a 422 ``detail`` at the fields;
``build_request`` turns form values into a :class:`PreparedRequest`, which also
writes itself as curl, httpx code and an ``%%http`` cell.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

from ._errors import UserError
from ._http import validation_rows, write_http_cell

PARAM_LOCATIONS = ("path", "query", "header", "cookie")
METHOD_ORDER = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
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
JSON = "application/json"
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
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
_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


class OperationNotFound(UserError):
    """``%nbapi try METHOD PATH`` names no operation of the app."""


class TokenError(UserError):
    """The OAuth2 token endpoint gave no access token."""


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


@dataclass(frozen=True)
class FormField:
    """One input of a request form.

    ``key`` is unique within an operation (``query:q``, ``form:username``,
    ``body``); widgets and the 422 mapping use it.
    """

    key: str
    name: str
    location: str  # path, query, header, cookie, form, file (multipart) or body (JSON)
    kind: str
    required: bool = False
    default: Any = None
    has_default: bool = False
    options: tuple[str, ...] = ()  # enum values; for arrays, the items' enum values
    item_kind: str = ""  # kind of an array's items
    description: str = ""
    deprecated: bool = False
    constraints: Mapping[str, Any] = field(default_factory=dict)
    example: Any = None
    schema: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type_label(self) -> str:
        """``integer``, ``array[string]``, ``enum``, ``file``: how the form labels the type."""
        if self.kind == "array":
            return f"array[{self.item_kind or 'any'}]"
        return self.kind

    def initial(self) -> str | list[str]:
        """What the input starts with: the default (``[]``-defaults as a list of texts)."""
        if not self.has_default or self.default is None:
            return [] if self.kind == "array" else ""
        if self.kind == "array":
            values = self.default if isinstance(self.default, list) else [self.default]
            return [scalar_text(v) for v in values]
        return scalar_text(self.default)

    def hint(self) -> str:
        """Constraints in words: ``>= 1, at most 50 characters``."""
        words = {
            "minimum": ">= {}",
            "maximum": "<= {}",
            "exclusiveMinimum": "> {}",
            "exclusiveMaximum": "< {}",
            "multipleOf": "multiple of {}",
            "minLength": "at least {} characters",
            "maxLength": "at most {} characters",
            "pattern": "matches {}",
            "minItems": "at least {} items",
            "maxItems": "at most {} items",
        }
        return ", ".join(words[k].format(_number(v)) for k, v in self.constraints.items())


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


def make_field(
    name: str,
    location: str,
    schema: Mapping[str, Any] | None,
    spec: Mapping[str, Any],
    required: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> FormField:
    """A :class:`FormField` from a parameter's (or a form property's) schema."""
    extra = extra or {}
    resolved = resolve(schema, spec)
    kind = schema_kind(resolved)
    item_kind, options = "", cast("tuple[str, ...]", ())
    if kind == "array":
        items = resolve(resolved.get("items"), spec)
        item_kind = schema_kind(items)
        if item_kind == "enum":
            options = tuple(scalar_text(v) for v in items.get("enum", ()))
    elif kind == "enum":
        options = tuple(scalar_text(v) for v in resolved.get("enum", ()))
    if location in ("form", "file") and (kind == "file" or item_kind == "file"):
        location = "file"
    return FormField(
        key=f"{location}:{name}",
        name=name,
        location=location,
        kind=kind,
        required=required,
        default=resolved.get("default"),
        has_default="default" in resolved,
        options=options,
        item_kind=item_kind,
        description=str(extra.get("description") or resolved.get("description") or ""),
        deprecated=bool(extra.get("deprecated") or resolved.get("deprecated")),
        constraints={k: resolved[k] for k in CONSTRAINTS if k in resolved},
        example=_first_example(extra, resolved),
        schema=resolved,
    )


@dataclass(frozen=True)
class Body:
    """An operation's request body: its media type, schema and (for forms) fields."""

    content_type: str
    required: bool
    schema: Mapping[str, Any]
    fields: tuple[FormField, ...] = ()  # form and multipart properties
    example: Any = None  # JSON: the schema's example or a generated skeleton

    @property
    def is_form(self) -> bool:
        return self.content_type in (URLENCODED, MULTIPART)


@dataclass(frozen=True)
class SecurityScheme:
    """A security scheme an operation accepts, reduced to what a form asks for."""

    name: str
    kind: str  # bearer, basic, oauth2-password, apikey or other
    token_url: str = ""
    param_name: str = ""  # apikey: the header, query or cookie name
    location: str = "header"  # apikey: header, query or cookie

    @property
    def label(self) -> str:
        labels = {
            "bearer": "Bearer token",
            "basic": "HTTP basic",
            "oauth2-password": "OAuth2 password",
            "apikey": f"API key ({self.location} {self.param_name})",
        }
        return labels.get(self.kind, self.name)


@dataclass(frozen=True)
class Operation:
    """One method on one path of the app's OpenAPI."""

    method: str
    path: str
    operation_id: str = ""
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    deprecated: bool = False
    fields: tuple[FormField, ...] = ()  # path, query, header and cookie parameters
    body: Body | None = None
    security: tuple[SecurityScheme, ...] = ()
    responses: tuple[tuple[str, str, Mapping[str, Any] | None], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def all_fields(self) -> tuple[FormField, ...]:
        body_fields: tuple[FormField, ...] = ()
        if self.body is not None:
            if self.body.is_form:
                body_fields = self.body.fields
            else:
                body_fields = (
                    FormField("body", "body", "body", "json", required=self.body.required),
                )
        return self.fields + body_fields

    def field(self, key: str) -> FormField | None:
        return next((f for f in self.all_fields() if f.key == key), None)


def _security(spec: Mapping[str, Any], operation: Mapping[str, Any]) -> tuple[SecurityScheme, ...]:
    requirements = operation.get("security", spec.get("security", []))
    schemes = spec.get("components", {}).get("securitySchemes", {})
    found: list[SecurityScheme] = []
    for requirement in requirements or []:
        for name in requirement:
            raw = schemes.get(name, {})
            kind, token_url, param, where = "other", "", "", "header"
            if raw.get("type") == "http" and str(raw.get("scheme", "")).lower() == "bearer":
                kind = "bearer"
            elif raw.get("type") == "http" and str(raw.get("scheme", "")).lower() == "basic":
                kind = "basic"
            elif raw.get("type") == "oauth2":
                flows = raw.get("flows", {})
                if "password" in flows:
                    kind, token_url = "oauth2-password", str(flows["password"].get("tokenUrl", ""))
                else:
                    kind = "bearer"  # other flows: paste a token you got elsewhere
            elif raw.get("type") == "openIdConnect":
                kind = "bearer"
            elif raw.get("type") == "apiKey":
                kind, param, where = "apikey", str(raw.get("name", "")), str(raw.get("in", ""))
            scheme = SecurityScheme(name, kind, token_url, param, where or "header")
            if scheme not in found:
                found.append(scheme)
    return tuple(found)


def _body(raw: Mapping[str, Any], spec: Mapping[str, Any]) -> Body | None:
    content = raw.get("content") or {}
    if not content:
        return None
    content_type = next(
        (t for t in (JSON, MULTIPART, URLENCODED) if t in content), next(iter(content))
    )
    schema = resolve(content[content_type].get("schema"), spec)
    required = bool(raw.get("required", False))
    if content_type in (URLENCODED, MULTIPART):
        needed = set(schema.get("required", ()))
        fields = tuple(
            make_field(name, "form", prop, spec, required=name in needed)
            for name, prop in (schema.get("properties") or {}).items()
        )
        return Body(content_type, required, schema, fields)
    example = _first_example(content[content_type])
    if example is None:
        example = skeleton(schema, spec)
    return Body(content_type, required, schema, (), example)


def operations(spec: Mapping[str, Any]) -> list[Operation]:
    """Every operation of an OpenAPI document, in path order then method order."""
    found: list[Operation] = []
    for path, item in (spec.get("paths") or {}).items():
        shared = item.get("parameters", [])
        for method in METHOD_ORDER:
            raw = item.get(method)
            if not isinstance(raw, Mapping):
                continue
            params: dict[tuple[str, str], FormField] = {}
            for param in [*shared, *raw.get("parameters", [])]:
                param = resolve(param, spec)
                where = str(param.get("in", ""))
                if where not in PARAM_LOCATIONS:
                    continue
                name = str(param.get("name", ""))
                required = bool(param.get("required", where == "path"))
                made = make_field(name, where, param.get("schema"), spec, required, param)
                params[(where, name)] = made
            body = raw.get("requestBody")
            responses = tuple(
                (
                    str(status),
                    str(resp.get("description", "")),
                    _response_schema(resolve(resp, spec), spec),
                )
                for status, resp in (raw.get("responses") or {}).items()
            )
            found.append(
                Operation(
                    method=method.upper(),
                    path=str(path),
                    operation_id=str(raw.get("operationId", "")),
                    summary=str(raw.get("summary", "")),
                    description=str(raw.get("description", "")),
                    tags=tuple(str(t) for t in raw.get("tags", ())),
                    deprecated=bool(raw.get("deprecated", False)),
                    fields=tuple(params.values()),
                    body=_body(resolve(body, spec), spec) if body else None,
                    security=_security(spec, raw),
                    responses=responses,
                )
            )
    return found


def _response_schema(response: Mapping[str, Any], spec: Mapping[str, Any]) -> Any:
    content = response.get("content") or {}
    for media in content.values():
        if isinstance(media, Mapping) and "schema" in media:
            return media["schema"]
    return None


def _template_regex(path: str, slashes: bool = False) -> re.Pattern[str]:
    # OpenAPI drops Starlette's ":path" converter, so a value with slashes is a second try.
    value = ".+" if slashes else "[^/]+"
    parts, last = [], 0
    for match in _PATH_PARAM.finditer(path):
        parts.append(re.escape(path[last : match.start()]))
        parts.append(f"(?P<{match.group(1)}>{value})")
        last = match.end()
    parts.append(re.escape(path[last:]))
    return re.compile("".join(parts))


def find_operation(
    ops: Sequence[Operation], method: str, path: str
) -> tuple[Operation, dict[str, str]]:
    """The operation ``METHOD PATH`` names, and path values when PATH is concrete.

    PATH is the template (``/items/{item_id}``) or a concrete path
    (``/items/42`` gives ``{"item_id": "42"}``).
    """
    method = method.upper()
    for op in ops:
        if op.method == method and op.path == path:
            return op, {}
    for slashes in (False, True):
        for op in ops:
            if op.method == method:
                match = _template_regex(op.path, slashes).fullmatch(path)
                if match:
                    return op, match.groupdict()
    known = ", ".join(op.label for op in ops[:8]) + (", ..." if len(ops) > 8 else "")
    hint = f"use one of {known}" if ops else "the app has no operations yet; add a %%route cell"
    msg = f"no operation {method} {path!r} in the app; {hint}"
    raise OperationNotFound(msg)


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


def example_text(body: Body) -> str:
    """The JSON editor's starting text."""
    if body.example is None and not body.required:
        return ""
    return json.dumps(body.example, indent=2, ensure_ascii=False)


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


# -- building the request -------------------------------------------------------------
@dataclass(frozen=True)
class Auth:
    """Credentials the form collected for one security scheme."""

    kind: str = ""  # "", bearer, basic, apikey (oauth2-password sends its token as bearer)
    token: str = ""
    username: str = ""
    password: str = ""
    param_name: str = ""
    location: str = "header"


@dataclass(frozen=True)
class PreparedRequest:
    """A request ready to send, and to write down as curl, httpx code or ``%%http``."""

    method: str
    path: str  # path parameters filled in, percent-encoded
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()
    body_kind: str = ""  # "", json, form, multipart
    content: str = ""  # json: the text as typed (sent even when it is not valid JSON)
    data: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str, bytes], ...] = ()  # (field, filename, content)

    @property
    def url(self) -> str:
        return self.path + (f"?{urlencode(self.query)}" if self.query else "")

    @property
    def label(self) -> str:
        return f"{self.method} {self.url}"

    def all_headers(self) -> list[tuple[str, str]]:
        headers = list(self.headers)
        if self.cookies:
            headers.append(("Cookie", "; ".join(f"{n}={v}" for n, v in self.cookies)))
        if self.body_kind == "json" and not _has(headers, "content-type"):
            headers.append(("Content-Type", JSON))
        return headers

    def httpx_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx2.Client.request``."""
        kwargs: dict[str, Any] = {
            "method": self.method,
            "url": self.url,
            "headers": self.all_headers(),
        }
        if self.body_kind == "json":
            kwargs["content"] = self.content.encode()
        elif self.body_kind in ("form", "multipart"):
            if self.data:
                kwargs["data"] = _grouped(self.data)
            if self.files:
                kwargs["files"] = [(name, (fname, body)) for name, fname, body in self.files]
            elif self.body_kind == "multipart":
                # httpx sends multipart only with files; an empty part keeps the media type.
                kwargs["files"] = {}
        return kwargs

    # -- as code ----------------------------------------------------------------
    def curl(self, base_url: str) -> str:
        """A curl command line for the request against ``base_url``."""
        parts = ["curl", "-X", self.method, _sh(_join(base_url, self.url))]
        for name, value in self.headers:
            parts += ["-H", _sh(f"{name}: {value}")]
        if self.cookies:
            parts += ["-b", _sh("; ".join(f"{n}={v}" for n, v in self.cookies))]
        if self.body_kind == "json":
            if not _has(list(self.headers), "content-type"):
                parts += ["-H", _sh(f"Content-Type: {JSON}")]
            parts += ["-d", _sh(self.content)]
        elif self.body_kind == "form":
            for name, value in self.data:
                parts += ["--data-urlencode", _sh(f"{name}={value}")]
        elif self.body_kind == "multipart":
            for name, value in self.data:
                parts += ["-F", _sh(f"{name}={value}")]
            for name, filename, _ in self.files:
                parts += ["-F", _sh(f"{name}=@{filename}")]
        return " ".join(parts)

    def httpx_code(self, base_url: str) -> str:
        """Python code that sends the request with httpx against ``base_url``."""
        lines = [
            "import httpx2",
            "",
            "response = httpx2.request(",
            f"    {self.method!r},",
            f"    {_join(base_url, self.path)!r},",
        ]
        if self.query:
            lines.append(f"    params={list(self.query)!r},")
        if self.headers:
            lines.append(f"    headers={dict(self.headers)!r},")
        if self.cookies:
            lines.append(f"    cookies={dict(self.cookies)!r},")
        if self.body_kind == "json":
            try:
                lines.append(f"    json={json.loads(self.content)!r},")
            except json.JSONDecodeError:
                lines.append(f"    content={self.content!r},")
        elif self.body_kind in ("form", "multipart"):
            if self.data:
                lines.append(f"    data={_grouped(self.data)!r},")
            if self.files:
                files = [(n, (f, f"<contents of {f}>")) for n, f, _ in self.files]
                lines.append(f"    files={files!r},  # replace with open(...) calls")
        lines += [")", "print(response.status_code, response.text)"]
        return "\n".join(lines)

    def http_cell(self) -> str:
        """The same request as an ``%%http`` cell (sent in-process to the kernel's app)."""
        headers = list(self.headers)
        if self.cookies:
            headers.append(("Cookie", "; ".join(f"{n}={v}" for n, v in self.cookies)))
        form = None
        if self.body_kind in ("form", "multipart"):
            form = (self.data, [f"{name}@{filename}" for name, filename, _ in self.files])
        json_body = self.content if self.body_kind == "json" else ""
        return write_http_cell(self.method, self.url, headers, json_body, form)


def _has(headers: Sequence[tuple[str, str]], name: str) -> bool:
    return any(n.lower() == name for n, _ in headers)


def _grouped(pairs: Sequence[tuple[str, str]]) -> dict[str, str | list[str]]:
    grouped: dict[str, str | list[str]] = {}
    for name, value in pairs:
        if name in grouped:
            previous = grouped[name]
            grouped[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            grouped[name] = value
    return grouped


def _join(base_url: str, url: str) -> str:
    return base_url.rstrip("/") + url


def _sh(text: str) -> str:
    """Single-quote for a POSIX shell (what curl users paste into)."""
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _texts(value: Any) -> list[str]:
    if _is_empty(value):
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if str(v) != ""]
    return [str(value)]


def build_request(
    op: Operation, values: Mapping[str, Any], auth: Auth | None = None
) -> PreparedRequest:
    """The request a filled form describes; it never refuses (that is the server's job).

    ``values`` maps field keys to text (``"42"``), lists of texts for arrays,
    ``(filename, bytes)`` pairs for files, and ``"body"`` to the JSON text.
    Empty optional fields are left out; an empty path parameter stays as its
    ``{name}`` placeholder, so the server's answer says what is missing.
    """

    def fill(match: re.Match[str]) -> str:
        texts = _texts(values.get(f"path:{match.group(1)}"))
        if not texts:
            return quote(match.group(0), safe="")
        # "/" stays: servers decode %2F before routing anyway, and {path:path} wants it.
        return quote(texts[0], safe="/")

    path = _PATH_PARAM.sub(fill, op.path)
    query: list[tuple[str, str]] = []
    headers: list[tuple[str, str]] = []
    cookies: list[tuple[str, str]] = []
    for item in op.fields:
        texts = _texts(values.get(item.key))
        if item.location == "query":
            query += [(item.name, t) for t in texts]
        elif item.location == "header" and texts:
            headers.append((item.name, ", ".join(texts)))
        elif item.location == "cookie" and texts:
            cookies.append((item.name, texts[0]))
    if auth is not None and auth.kind:
        if auth.kind in ("bearer", "oauth2-password") and auth.token:
            headers.append(("Authorization", f"Bearer {auth.token}"))
        elif auth.kind == "basic" and (auth.username or auth.password):
            pair = f"{auth.username}:{auth.password}".encode()
            headers.append(("Authorization", f"Basic {base64.b64encode(pair).decode()}"))
        elif auth.kind == "apikey" and auth.token and auth.param_name:
            target = {"query": query, "cookie": cookies}.get(auth.location, headers)
            target.append((auth.param_name, auth.token))
    body_kind, content = "", ""
    data: list[tuple[str, str]] = []
    files: list[tuple[str, str, bytes]] = []
    if op.body is not None:
        if op.body.is_form:
            body_kind = "multipart" if op.body.content_type == MULTIPART else "form"
            for item in op.body.fields:
                raw = values.get(item.key)
                if item.location == "file":
                    for upload in raw or []:
                        filename, payload = upload
                        files.append((item.name, str(filename), bytes(payload)))
                else:
                    data += [(item.name, t) for t in _texts(raw)]
            if not data and not files and not op.body.required:
                body_kind = ""
        else:
            content = str(values.get("body") or "")
            body_kind = "json" if content.strip() else ""
    return PreparedRequest(
        method=op.method,
        path=path,
        query=tuple(query),
        headers=tuple(headers),
        cookies=tuple(cookies),
        body_kind=body_kind,
        content=content,
        data=tuple(data),
        files=tuple(files),
    )


def token_request(scheme: SecurityScheme, username: str, password: str) -> PreparedRequest:
    """The OAuth2 password-flow request to the scheme's token URL."""
    path = urlsplit(scheme.token_url).path or "/token"
    if not path.startswith("/"):
        path = "/" + path
    data = (("grant_type", "password"), ("username", username), ("password", password))
    return PreparedRequest("POST", path, body_kind="form", data=data)


def read_token(status: int, payload: Any, path: str = "the token endpoint") -> str:
    """The ``access_token`` of a token endpoint's answer; else why there is none, and what to do."""
    if status == 200 and isinstance(payload, Mapping) and payload.get("access_token"):
        return str(payload["access_token"])
    detail = payload.get("detail") if isinstance(payload, Mapping) else payload
    answered = f"{path} answered {status} {detail!r}"
    if status in (404, 405):
        fix = f"the app has no POST {path} route; add the token route the scheme's tokenUrl names"
    elif status == 422:
        fix = "it must read the form fields username and password (OAuth2PasswordRequestForm)"
    elif status >= 500:
        fix = "the token route failed; see %nbapi log --errors"
    elif status < 300:
        fix = 'the route must return {"access_token": ..., "token_type": "bearer"}'
    else:
        fix = "check the username and password"
    msg = f"{answered}; {fix}"
    raise TokenError(msg)
