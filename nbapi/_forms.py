"""From an OpenAPI operation to a request form, and from a filled form to a request.

Pure data work (no IPython, no widgets), so every rule is testable on its own:
``operations(spec)`` reads the app's OpenAPI into :class:`Operation` s whose
:class:`FormField` s describe one input each; ``skeleton`` makes an example body;
``check_request`` gives client-side warnings (never errors: an invalid request
must stay sendable); ``error_fields`` points a 422 ``detail`` at the fields;
``build_request`` turns form values into a :class:`PreparedRequest`, which also
writes itself as curl, httpx code and an ``%%http`` cell.

Schemas are read by ``nbapi._schema`` (``skeleton`` lives there); the checks and
``error_fields`` live in ``nbapi._checks``; both are re-exported here.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

from ._checks import FormWarning as FormWarning  # re-exported: the form's public names
from ._checks import _is_empty
from ._checks import check_request as check_request
from ._checks import error_fields as error_fields
from ._errors import UserError
from ._http import write_http_cell
from ._schema import (
    CONSTRAINTS,
    PARAM_LOCATIONS,
    _first_example,
    _number,
    resolve,
    schema_kind,
    skeleton,
)
from ._schema import MAX_DEPTH as MAX_DEPTH
from ._schema import lookup as lookup
from ._schema import scalar_text as scalar_text

METHOD_ORDER = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON = "application/json"
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


class OperationNotFound(UserError):
    """``%nbapi try METHOD PATH`` names no operation of the app."""


class TokenError(UserError):
    """The OAuth2 token endpoint gave no access token."""


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


@dataclass
class OperationCache:
    """Operations read before, by the identity of their OpenAPI object (see ``operations``)."""

    context: Any = None  # what an operation's reading depends on beyond its own object
    entries: dict[int, tuple[Mapping[str, Any], Operation]] = field(default_factory=dict)


def operations(spec: Mapping[str, Any], cache: OperationCache | None = None) -> list[Operation]:
    """Every operation of an OpenAPI document, in path order then method order.

    With a ``cache`` kept between calls, an operation object seen before is not read again:
    nbapi's per-route documents keep an unchanged route's operation as the same object, so
    a redraw after a re-run reads only what changed.
    """
    context = (spec.get("security"), (spec.get("components") or {}).get("securitySchemes"))
    if cache is not None and cache.context != context:
        cache.context, cache.entries = context, {}
    seen: dict[int, tuple[Mapping[str, Any], Operation]] = {}
    found: list[Operation] = []
    for path, item in (spec.get("paths") or {}).items():
        shared = item.get("parameters", [])
        for method in METHOD_ORDER:
            raw = item.get(method)
            if not isinstance(raw, Mapping):
                continue
            hit = cache.entries.get(id(raw)) if cache is not None and not shared else None
            if (
                hit is not None
                and hit[0] is raw
                and (hit[1].method, hit[1].path)
                == (
                    method.upper(),
                    str(path),
                )
            ):
                operation = hit[1]
            else:
                operation = _operation(spec, str(path), method, raw, shared)
            seen[id(raw)] = (raw, operation)  # holding raw: its id is not reused meanwhile
            found.append(operation)
    if cache is not None:
        cache.entries = seen
    return found


def _operation(
    spec: Mapping[str, Any], path: str, method: str, raw: Mapping[str, Any], shared: Any
) -> Operation:
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
    return Operation(
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


def example_text(body: Body) -> str:
    """The JSON editor's starting text."""
    if body.example is None and not body.required:
        return ""
    return json.dumps(body.example, indent=2, ensure_ascii=False)


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
