"""In-process requests to the kernel's app, and how their responses are shown.

``InProcessTransport`` sends an httpx request through the whole ASGI stack of the
kernel's app on the runner's loop: no server, no socket. ``HttpResponse`` wraps
the httpx response with a deterministic text view for notebooks.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx2

from ._errors import UserError
from ._runner import AppRunner, Message, Scope

BASE_URL = "http://testserver"
BODY_LIMIT = 20_000  # characters of body shown; the full body is on the response object

_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_HEADER_LINE = re.compile(rf"^({_HEADER_NAME.pattern}):(.*)$")


_RAW_HEADER_NAME = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_RAW_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class RequestError(UserError):
    """An ``%http`` request that cannot be built; the message is one line for the user."""


class InProcessTransport(httpx2.BaseTransport):
    """A sync httpx transport that calls the kernel's app on the runner's loop.

    It speaks ASGI itself, as ``httpx2.ASGITransport`` does, in one hand-off to
    the loop: the whole body is sent, the whole response is collected, and
    ``http.disconnect`` is only reported once the response is complete (so a
    streaming response is not cut short). An exception the app raises after it
    answered (Starlette sends the 500, then re-raises) is in the runner's log.
    """

    def __init__(self, runner: AppRunner) -> None:
        self.runner = runner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        for name, value in request.headers.raw:
            # What h11 refuses on the wire, refused here too: in-process is not a way
            # to smuggle a CR/LF header into the app (nbapi.client, %http alike).
            if not _RAW_HEADER_NAME.fullmatch(name) or _RAW_BAD_VALUE.search(value):
                msg = f"illegal header {name!r}: {value!r}; a header value is one line of text"
                raise httpx2.LocalProtocolError(msg)
        status, headers, content = self.runner.run(self._exchange(request, request.read()))
        # The raw bytes as a stream: reading the response decodes them (gzip, ...) once.
        stream = httpx2.ByteStream(content)
        return httpx2.Response(status, headers=headers, stream=stream, request=request)

    async def _exchange(
        self, request: httpx2.Request, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        url = request.url
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
            "nbapi.source": "in-process",
        }
        status = 500  # when the app raises before it answers
        headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []
        request_sent = False
        complete = asyncio.Event()

        async def receive() -> Message:
            nonlocal request_sent
            if request_sent:
                await complete.wait()
                return {"type": "http.disconnect"}
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                if request.method != "HEAD":
                    parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    complete.set()

        try:
            await self.runner(scope, receive, send)
        except Exception:  # the client gets the 500; the runner logged the error
            pass
        finally:
            complete.set()
        return status, headers, b"".join(parts)


class InProcessClient(httpx2.Client):
    """The httpx client for the kernel's app, as ``TestClient`` is for a plain app.

    A plain request (a path; headers, a body, form fields or files; no per-call
    auth, cookies, params or redirect options, and none set on the client) skips
    httpx's general send pipeline, which costs more than the app itself: it is
    built with the client's headers and cookies, sent, and the cookies the app
    sets are kept, as httpx would. Anything else goes through httpx unchanged.
    """

    def __init__(self, runner: AppRunner) -> None:
        self._in_process = InProcessTransport(runner)
        super().__init__(transport=self._in_process, base_url=BASE_URL)

    def request(
        self,
        method: str,
        url: httpx2.URL | str,
        *,
        content: Any = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: Any = None,
        headers: Any = None,
        cookies: Any = None,
        auth: Any = httpx2.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx2.USE_CLIENT_DEFAULT,
        timeout: Any = httpx2.USE_CLIENT_DEFAULT,
        extensions: Any = None,
    ) -> httpx2.Response:
        body = {"content": content, "data": data, "files": files, "json": json}
        plain = (
            isinstance(url, str)
            and url.startswith("/")
            and not url.startswith("//")
            and params is None
            and cookies is None
            and extensions is None
            and auth is httpx2.USE_CLIENT_DEFAULT
            and follow_redirects is httpx2.USE_CLIENT_DEFAULT
            and self.auth is None
            and not self.follow_redirects
            and not self.params
            and not any(self.event_hooks.values())
        )
        if not plain:
            return super().request(
                method,
                url,
                params=params,
                headers=headers,
                cookies=cookies,
                auth=auth,
                follow_redirects=follow_redirects,
                timeout=timeout,
                extensions=extensions,
                **body,
            )
        merged = httpx2.Headers(self.headers)
        if headers is not None:
            merged.update(headers)
        request = httpx2.Request(
            method, f"{str(self.base_url).rstrip('/')}{url}", headers=merged, **body
        )
        if self.cookies:
            self.cookies.set_cookie_header(request)
        started = time.perf_counter()
        response = self._in_process.handle_request(request)
        response.read()
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        if "set-cookie" in response.headers:
            self.cookies.extract_cookies(response)
        if response.has_redirect_location:  # as httpx does when it does not follow
            response.next_request = self._build_redirect_request(request, response)
        return response


def make_client(runner: AppRunner) -> httpx2.Client:
    """An httpx client for the kernel's app, as ``TestClient`` is for a plain app."""
    return InProcessClient(runner)


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


# -- showing a response -----------------------------------------------------
def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def validation_rows(payload: Any) -> list[tuple[str, str, str]] | None:
    """FastAPI's 422 ``detail`` list as (location, message, input) rows, else None."""
    if not isinstance(payload, dict) or not isinstance(payload.get("detail"), list):
        return None
    rows = []
    for error in payload["detail"]:
        if not isinstance(error, dict) or "msg" not in error:
            return None
        location = ".".join(str(part) for part in error.get("loc", ()))
        given = json.dumps(error["input"], ensure_ascii=False) if "input" in error else ""
        rows.append((location, str(error["msg"]), given))
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
            return f"<{len(response.content)} bytes of {kind}>"
    if len(text) > BODY_LIMIT:
        return text[:BODY_LIMIT] + f"\n... ({len(text) - BODY_LIMIT} more characters)"
    return text


class HttpResponse:
    """What ``%http`` returns: the httpx response, shown as status line and body.

    Every attribute of :class:`httpx2.Response` is available (``status_code``,
    ``headers``, ``json()``, ``text``, ...).
    """

    def __init__(self, response: httpx2.Response, verbose: bool = False, error: str = "") -> None:
        self.response = response
        self.verbose = verbose
        self.error = error  # the handler's traceback (the user's frames), when it raised

    def __getattr__(self, name: str) -> Any:
        return getattr(self.response, name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HttpResponse):
            return self.response is other.response
        return NotImplemented

    __hash__ = object.__hash__

    @property
    def status_line(self) -> str:
        reason = self.response.reason_phrase or _reason(self.response.status_code)
        return f"HTTP {self.response.status_code} {reason}".rstrip()

    def text_view(self) -> str:
        parts = [self.status_line]
        if self.verbose:
            parts += [f"{name}: {value}" for name, value in self.response.headers.items()]
        body = format_body(self.response)
        if body:
            parts += ["", body]
        if self.error:
            parts += ["", self.error.rstrip()]
        return "\n".join(parts)

    def __repr__(self) -> str:
        return self.text_view()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text_view())
