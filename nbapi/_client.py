"""In-process requests to the kernel's app.

``InProcessTransport`` sends an httpx request through the whole ASGI stack of the
kernel's app on the runner's loop: no server, no socket. ``HttpResponse`` wraps
the httpx response with the deterministic text view ``_http`` renders. The ``%http``
language (parsing, the view) lives in ``_http``; its names are re-exported here.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import time
from typing import Any

import httpx2

from ._http import (
    BODY_LIMIT,
    HttpCall,
    RequestError,
    check_url,
    form_file,
    form_items,
    format_body,
    format_table,
    header_value,
    parse_form,
    parse_http_cell,
    parse_http_line,
    status_line,
    text_view,
    validation_rows,
)
from ._runner import AppRunner, Message, Scope

BASE_URL = "http://testserver"

_RAW_HEADER_NAME = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_RAW_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


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
        return status_line(self.response)

    def text_view(self) -> str:
        return text_view(self.response, self.verbose, self.error)

    def __repr__(self) -> str:
        return self.text_view()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text_view())


__all__ = [
    "BASE_URL",
    "BODY_LIMIT",
    "HttpCall",
    "HttpResponse",
    "InProcessClient",
    "InProcessTransport",
    "RequestError",
    "check_url",
    "form_file",
    "form_items",
    "format_body",
    "format_table",
    "header_value",
    "make_client",
    "parse_form",
    "parse_http_cell",
    "parse_http_line",
    "validation_rows",
]
