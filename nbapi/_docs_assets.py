"""/docs and /redoc without internet: Swagger UI and ReDoc served from an installed package.

FastAPI's docs pages load Swagger UI, ReDoc, a favicon and Google fonts from CDNs.
``offline_docs(app)`` wraps the kernel's dispatcher (the user's app is left
untouched: its routes, its ``docs_url`` and its ``/openapi.json`` stay its own):

- requests under ``/_nbapi/static/`` get the files that ``fastapi-offline`` ships;
- an HTML response that names one of those CDN files gets the local copy's
  address instead, and loses the Google fonts link.

Local addresses are written relative to the page ("./_nbapi/static/..." from
/docs), so they also work behind a path-prefix proxy such as
jupyter-server-proxy's ``/user/NAME/proxy/PORT/``.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from ._runner import ASGIApp, Message, Receive, Scope, Send

ASSET_PREFIX = "/_nbapi/static/"
REWRITE_LIMIT = 1_000_000  # bytes: larger (or streamed) HTML passes through unchanged

# CDN address -> the file that replaces it. Any swagger-ui-dist/redoc version is accepted.
_CDN = re.compile(
    rb"https://cdn\.jsdelivr\.net/npm/swagger-ui-dist@[^/\"']*/(swagger-ui-bundle\.js|swagger-ui\.css)"
    rb"|https://cdn\.jsdelivr\.net/npm/redoc@[^/\"']*/bundles/(redoc\.standalone\.js)"
    rb"|https://fastapi\.tiangolo\.com/img/(favicon)\.png"
)
_FONTS = re.compile(rb"[ \t]*<link[^>]*fonts\.googleapis\.com[^>]*>[ \t]*\n?")

# Addresses the bundles themselves fetch: ReDoc's footer logo (it hides the image when it
# fails to load, so an empty data: URL keeps the page off the network).
_REMOTE_IN_ASSETS = (b"https://cdn.redoc.ly/redoc/logo-mini.svg",)

CONTENT_TYPES = {
    ".js": b"application/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".png": b"image/png",
}


def asset_dir() -> Path:
    """The folder of Swagger UI and ReDoc files that ``fastapi-offline`` installs."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def asset_names() -> list[str]:
    return sorted(p.name for p in asset_dir().iterdir() if p.suffix in CONTENT_TYPES)


def _relative_root(path: str) -> str:
    """The relative address of the app's root as seen from the page at ``path``."""
    depth = path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


def rewrite_html(body: bytes, path: str) -> bytes:
    """Point the CDN addresses in a docs page at the local copies; drop Google fonts."""
    root = _relative_root(path).encode()

    def local(match: re.Match[bytes]) -> bytes:
        name = match.group(1) or match.group(2) or b"favicon.png"
        if name == b"favicon":
            name = b"favicon.png"
        return root + ASSET_PREFIX[1:].encode() + name

    return _FONTS.sub(b"", _CDN.sub(local, body))


def _app_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


class _AssetCache:
    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        if name not in self._files:
            if name not in asset_names():
                return None
            data = (asset_dir() / name).read_bytes()
            for remote in _REMOTE_IN_ASSETS:
                data = data.replace(remote, b"data:,")
            self._files[name] = data
        return self._files[name]


_cache = _AssetCache()


async def _send_asset(name: str, method: str, send: Send) -> None:
    data = _cache.get(name)
    if data is None:
        body = f"nbapi has no docs asset {name!r}".encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 404, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    headers = [
        (b"content-type", CONTENT_TYPES[Path(name).suffix]),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"public, max-age=86400"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else data})


def offline_docs(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so its docs pages work with no network (see the module docstring)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = _app_path(scope)
        if path.startswith(ASSET_PREFIX) and scope.get("method") in ("GET", "HEAD"):
            await _send_asset(path[len(ASSET_PREFIX) :], scope["method"], send)
            return
        if scope.get("method") == "HEAD":
            await app(scope, receive, send)
            return
        await app(scope, receive, _html_rewriter(send, path))

    return wrapped


def _html_rewriter(send: Send, path: str) -> Send:
    """A ``send`` that rewrites a complete, small HTML response and passes the rest through."""
    held: list[Message] = []
    chunks: list[bytes] = []

    async def rewriting_send(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = dict(message.get("headers") or [])
            content_type = headers.get(b"content-type", b"")
            length = headers.get(b"content-length", b"")
            if (
                content_type.startswith(b"text/html")
                and b"content-encoding" not in headers
                and length.isdigit()
                and int(length) <= REWRITE_LIMIT
            ):
                held.append(message)
                return
        elif kind == "http.response.body" and held:
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            start = held.pop()
            body = rewrite_html(b"".join(chunks), path)
            rewritten = [
                (name, str(len(body)).encode() if name.lower() == b"content-length" else value)
                for name, value in start.get("headers") or []
            ]
            await send({**start, "headers": rewritten})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return rewriting_send
