"""The ``%http`` language: reading request lines and cells, writing cells, and the
response view (rendering it for the notebook and reading it back for the export).

Pure: strings and httpx responses only, no IPython, no runner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2

from . import _emitted
from ._errors import UserError

BODY_LIMIT = 20_000  # characters of body shown; the full body is on the response object

_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_HEADER_LINE = re.compile(rf"^({_HEADER_NAME.pattern}):(.*)$")


class RequestError(UserError):
    """An ``%http`` request that cannot be built; the message is one line for the user."""


# -- %http parsing ------------------------------------------------------------
@dataclass
class HttpCall:
    """A request as ``%http`` / ``%%http`` describe it."""

    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    form: bool = False
    verbose: bool = False
    server: bool = False

    def request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx2.Client.request``."""
        headers = list(self.headers)
        names = {name.lower() for name, _ in headers}
        kwargs: dict[str, Any] = {"method": self.method, "url": self.url}
        body = self.body.strip()
        if self.form:
            data, files = parse_form(body)
            fields: dict[str, list[str]] = {}
            for name, value in data:  # a repeated name is a list, as httpx expects
                fields.setdefault(name, []).append(value)
            kwargs["data"] = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
            if files:
                kwargs["files"] = files
        elif body:
            if "content-type" not in names:
                try:
                    json.loads(body)
                except json.JSONDecodeError as exc:
                    msg = (
                        f"the body is not valid JSON ({exc.msg} at line {exc.lineno}); "
                        "fix it, or add a Content-Type header to send it as is"
                    )
                    raise RequestError(msg) from None
                except RecursionError:
                    msg = "the body's JSON is nested too deeply to read; flatten it"
                    raise RequestError(msg) from None
                headers.append(("Content-Type", "application/json"))
            try:
                kwargs["content"] = body.encode()
            except UnicodeEncodeError as exc:
                msg = f"the body holds {body[exc.start]!r}, which is not valid text; remove it"
                raise RequestError(msg) from None
        kwargs["headers"] = [header_value(name, value) for name, value in headers]
        return kwargs


def _control(text: str, allowed: str = "") -> str | None:
    """The first C0 control character or DEL in ``text`` (other than ``allowed``), or None."""
    for ch in text:
        if (ord(ch) < 0x20 or ord(ch) == 0x7F) and ch not in allowed:
            return ch
    return None


def check_url(url: str) -> None:
    """Refuse what is not a path of the kernel's app (the same rule in-process and --server)."""
    if not url.startswith("/"):
        msg = f"path {url!r} must start with '/', e.g. /items/1?q=shoes"
        raise RequestError(msg)
    if url.startswith("//"):
        # httpx (like a browser) reads //example.com/x as host example.com, path /x.
        msg = (
            f"path {url!r} starts with '//', which names a host, not a path; %http only "
            f"sends to the kernel's app: write /{url.lstrip('/')}"
        )
        raise RequestError(msg)
    control = _control(url)
    if control is not None:
        code = f"%{ord(control):02X}"
        msg = f"path {url!r} contains the control character {control!r}; percent-encode it ({code})"
        raise RequestError(msg)
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        msg = f"path {url!r} is not valid text (a lone surrogate); fix the value it came from"
        raise RequestError(msg) from None


def header_value(name: str, value: str) -> tuple[str, str | bytes]:
    """A header as sent: CR, LF, NUL and other controls (but tab) refused, as browsers
    refuse them; any other text sent as UTF-8 bytes, as curl sends it."""
    if not _HEADER_NAME.fullmatch(name):
        msg = f"header name {name!r} is not a token; use letters, digits and - only"
        raise RequestError(msg)
    control = _control(value, allowed="\t")
    if control is not None:
        msg = (
            f"header {name} value {value!r} contains the control character {control!r}; "
            "remove it (a header value is one line)"
        )
        raise RequestError(msg)
    if value.isascii():
        return name, value
    try:
        return name, value.encode("utf-8")
    except UnicodeEncodeError:
        msg = f"header {name} value {value!r} is not valid text (a lone surrogate); fix it"
        raise RequestError(msg) from None


_FLAGS = {"-v": "verbose", "--verbose": "verbose", "--form": "form", "-f": "form"}
_FLAGS |= {"--server": "server", "-s": "server"}


def parse_http_line(line: str) -> HttpCall:
    """``[-v] [--form] [--server] METHOD PATH [BODY]``; BODY is JSON and optional.

    Plain ``str.split`` only: the body may be megabytes, and ``shlex`` grows a token
    one character at a time (quadratic in its length).
    """
    options: dict[str, bool] = {}
    rest = line.strip()
    while rest.startswith("-"):
        words = rest.split(None, 1)
        flag, rest = words[0], words[1] if len(words) > 1 else ""
        if flag not in _FLAGS:
            msg = f"unknown option {flag!r}; use -v/--verbose, -f/--form or -s/--server"
            raise RequestError(msg)
        options[_FLAGS[flag]] = True
    parts = rest.split(None, 2)
    if len(parts) < 2:
        msg = f"%http needs a method and a path, got {line.strip()!r}; e.g. %http GET /items/1"
        raise RequestError(msg)
    method = parts[0].upper()
    if not re.fullmatch(r"[A-Z]+", method):
        msg = f"unknown HTTP method {parts[0]!r}; e.g. GET, POST, PUT, PATCH or DELETE"
        raise RequestError(msg)
    url = parts[1]
    check_url(url)
    body = parts[2] if len(parts) > 2 else ""
    return HttpCall(
        method,
        url,
        body=body,
        form=options.get("form", False),
        verbose=options.get("verbose", False),
        server=options.get("server", False),
    )


def parse_http_cell(line: str, cell: str, expand: Callable[[str], str] = str) -> HttpCall:
    """``%%http`` cell: optional ``Name: value`` header lines, a blank line, the body.

    ``expand`` is applied to each header value (the magic fills in ``{name}``).
    """
    call = parse_http_line(line)
    if call.body:
        msg = "put the body of %%http in the cell, not on the magic line"
        raise RequestError(msg)
    lines = cell.strip("\n").splitlines()
    headers: list[tuple[str, str]] = []
    index = 0
    if lines and _HEADER_LINE.match(lines[0]) and not lines[0].lstrip().startswith("{"):
        while index < len(lines) and lines[index].strip():
            match = _HEADER_LINE.match(lines[index])
            if match is None:
                msg = (
                    f"line {index + 1} {lines[index]!r} is not a header 'Name: value'; "
                    "leave a blank line between the headers and the body"
                )
                raise RequestError(msg)
            headers.append((match.group(1), expand(match.group(2).strip())))
            index += 1
    call.headers = headers
    call.body = "\n".join(lines[index:]).strip()
    if any(n.lower() == "content-type" and "form" in v.lower() for n, v in headers):
        # The transport sets the right content type (with the multipart boundary) itself.
        call.form = True
        call.headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
    return call


def form_items(body: str) -> Iterator[tuple[str, str, bool]]:
    """``(name, value, is_file)`` for each form line: ``name=value`` or a file ``name@path``.

    Lines may also be joined with ``&`` (``a=1&b=2``).
    """
    for raw in re.split(r"[\n&]", body):
        item = raw.strip()
        if not item:
            continue
        eq, at = item.find("="), item.find("@")
        if at > 0 and (eq < 0 or at < eq):
            yield item[:at], item[at + 1 :], True
        elif eq > 0:
            yield item[:eq], item[eq + 1 :], False
        else:
            msg = f"form line {item!r} is neither name=value nor name@file; fix it"
            raise RequestError(msg)


def form_file(name: str, filename: str, base: Path | None = None) -> Path:
    """The file a ``name@path`` form line names (relative to ``base`` when given)."""
    path = Path(filename).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        found = path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL
        found = False
    if not found:
        msg = f"file {filename!r} for form field {name!r} does not exist; check the path"
        raise RequestError(msg)
    return path


def parse_form(body: str) -> tuple[list[tuple[str, str]], list[tuple[str, Any]]]:
    """Form fields, and files as ``(name, (filename, bytes))``, from ``%http -f`` lines."""
    data: list[tuple[str, str]] = []
    files: list[tuple[str, Any]] = []
    for name, value, is_file in form_items(body):
        if is_file:
            path = form_file(name, value)
            files.append((name, (path.name, path.read_bytes())))
        else:
            data.append((name, value))
    return data, files


def write_http_cell(
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    json_body: str = "",
    form: tuple[Sequence[tuple[str, str]], Sequence[str]] | None = None,
) -> str:
    """An ``%%http`` cell for a request: headers, then a JSON body or ``form`` lines
    (``(fields, file fields)``, the files as ``name@path``)."""
    flag = "-f " if form is not None else ""
    lines = [f"%%http {flag}{method} {url}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if form is None and json_body.strip():
        lines += ["", json_body.strip()]
    elif form is not None:
        fields, files = form
        lines.append("")
        lines += [f"{name}={value}" for name, value in fields]
        lines += list(files)
    return "\n".join(lines)


# -- the response view: rendered for the notebook -----------------------------
TRACEBACK = "Traceback (most recent call last):\n"  # how the handler's error starts
_TRUNCATION = "\n... ({} more characters)"
_BYTES = "<{} bytes of {}>"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def validation_rows(payload: Any) -> list[tuple[str, str, str]] | None:
    """FastAPI's 422 ``detail`` list as (location, message, input) rows, else None."""
    if not isinstance(payload, dict) or not isinstance(payload.get("detail"), list):
        return None
    if not all(isinstance(error, dict) and "msg" in error for error in payload["detail"]):
        return None
    # The rows test_app.py asserts are computed by the same code.
    rows: list[tuple[str, str, str]] = _emitted.validation_rows(
        SimpleNamespace(json=lambda: payload)
    )
    return rows


def format_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """Rows as left-aligned text columns under a header and a rule."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def format_body(response: httpx2.Response) -> str:
    content_type = response.headers.get("content-type", "")
    if not response.content:
        return ""
    if "json" in content_type:
        try:
            payload = response.json()
        except ValueError:
            pass
        else:
            if response.status_code == 422:
                rows = validation_rows(payload)
                if rows is not None:
                    return format_table(("location", "message", "input"), rows)
            return json.dumps(payload, indent=2, ensure_ascii=False)
    if content_type.startswith("text/") or "xml" in content_type or "javascript" in content_type:
        text = response.text
    else:
        try:
            text = response.content.decode("utf-8")
        except UnicodeDecodeError:
            kind = content_type.split(";")[0] or "binary data"
            return _BYTES.format(len(response.content), kind)
    if len(text) > BODY_LIMIT:
        return text[:BODY_LIMIT] + _TRUNCATION.format(len(text) - BODY_LIMIT)
    return text


def status_line(response: httpx2.Response) -> str:
    """``HTTP 200 OK``: the first line of the view."""
    reason = response.reason_phrase or _reason(response.status_code)
    return f"HTTP {response.status_code} {reason}".rstrip()


def text_view(response: httpx2.Response, verbose: bool = False, error: str = "") -> str:
    """What ``%http`` shows: status line, headers when verbose, body, the handler's error."""
    parts = [status_line(response)]
    if verbose:
        parts += [f"{name}: {value}" for name, value in response.headers.items()]
    body = format_body(response)
    if body:
        parts += ["", body]
    if error:
        parts += ["", error.rstrip()]
    return "\n".join(parts)


# -- the response view: read back (the export asserts what the notebook showed) ----
_STATUS_LINE = re.compile(r"^HTTP (\d{3})\b")
# Built from the formats above: what the view writes is what is read back.
_BYTES_VIEW = re.compile(
    "^" + re.escape(_BYTES).replace(r"\{\}", r"(\d+)", 1).replace(r"\{\}", ".*") + "$"
)
_TRUNCATED = re.compile(re.escape(_TRUNCATION).replace(r"\{\}", r"\d+") + "$")


@dataclass(frozen=True)
class ShownResponse:
    """A response as its view shows it.

    ``kind``: "empty" (no body), "rows" (a 422 table), "json", "size" (a binary body of
    ``value`` bytes), "prefix" (a truncated text body) or "text".
    """

    status: int
    kind: str
    value: Any = None


def _table_rows(text: str) -> list[tuple[str, str, str]] | None:
    """Parse nbapi's 422 table (location, message, input) back into rows."""
    lines = text.split("\n")
    if len(lines) < 2 or lines[0].split() != ["location", "message", "input"]:
        return None
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    if len(spans) != 3:
        return None
    rows = []
    for line in lines[2:]:
        cells = [line[start : spans[i + 1][0]].rstrip() for i, (start, _) in enumerate(spans[:-1])]
        cells.append(line[spans[-1][0] :].rstrip())
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def read_view(view: str, verbose: bool) -> ShownResponse | None:
    """Read a saved ``%http`` text view back; None when it is not one."""
    lines = view.split("\n")
    status = _STATUS_LINE.match(lines[0])
    if status is None:
        return None
    code = int(status.group(1))
    rest = lines[1:]
    if verbose:
        while rest and rest[0].strip():
            rest = rest[1:]
    if not rest:
        return ShownResponse(code, "empty")
    body = "\n".join(rest[1:])
    # %http shows what the app raised below the body (also after a 2xx, when a background
    # task failed): not part of the body.
    body = ("\n\n" + body).split(f"\n\n{TRACEBACK}", 1)[0][2:]
    rows = _table_rows(body) if code == 422 else None
    if rows is not None:
        return ShownResponse(code, "rows", rows)
    try:
        payload = json.loads(body)
    except ValueError:
        pass
    else:
        if json.dumps(payload, indent=2, ensure_ascii=False) == body:
            return ShownResponse(code, "json", payload)
    size = _BYTES_VIEW.match(body)
    if size is not None:
        return ShownResponse(code, "size", int(size.group(1)))
    if _TRUNCATED.search(body):
        return ShownResponse(code, "prefix", _TRUNCATED.sub("", body))
    return ShownResponse(code, "text", body)
