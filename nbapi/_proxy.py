"""Where browsers reach the live server, and serving it behind Jupyter's proxy.

On JupyterHub and Binder the browser cannot reach the kernel's 127.0.0.1; it
reaches the live server through jupyter-server-proxy at ``{base_url}proxy/{port}/``.
``public_url()`` works out that base URL for the links nbapi prints, and
``ProxyPrefix`` wraps the ASGI app so that a request arriving through the proxy
sees the proxy's path as its ``root_path`` (FastAPI's /docs then loads
``{base_url}proxy/{port}/openapi.json``), while requests made directly to
127.0.0.1 are left exactly as they are.

Pure: no IPython import.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ._errors import UserError
from ._hosts import is_loopback, local_url

ENV_PUBLIC_URL = "NBAPI_PUBLIC_URL"

# jupyter-server-proxy sends the public path it serves the port under in these
# headers (all three carry the same value, e.g. "/user/ada/proxy/8000"), and
# strips that path from the request it forwards.
PREFIX_HEADERS = (b"x-forwarded-prefix", b"x-forwarded-context", b"x-proxycontextpath")

# A prefix is inserted into HTML and JavaScript by FastAPI's /docs: allow only
# plain path characters (no quotes, angle brackets, spaces or backslashes).
_SAFE_PREFIX = re.compile(r"(/[A-Za-z0-9._~!$&()*+,;=:@%-]+)+")


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PublicURLError(UserError):
    """``NbAPI.public_url`` or ``$NBAPI_PUBLIC_URL`` is not a usable URL."""


class _HasPublicURL(Protocol):
    public_url: str


@dataclass(frozen=True)
class PublicURL:
    """A base URL browsers use for the live server, and where it came from."""

    url: str  # ends with "/"; absolute (http...) or path-absolute ("/user/ada/proxy/8000/")
    source: str  # e.g. "NbAPI.public_url", "JupyterHub", "Jupyter server", "direct"

    @property
    def proxied(self) -> bool:
        """True when the URL goes through a proxy rather than straight to HOST:PORT."""
        return self.source != "direct"


def public_url(
    config: _HasPublicURL | None,
    host: str,
    port: int,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The base URL browsers should use for the live server on ``host:port``; ends with "/".

    In order:

    1. ``config.public_url`` (``%config NbAPI.public_url = ...``), then the
       ``NBAPI_PUBLIC_URL`` environment variable; "{port}" in them is replaced by
       ``port``. A path such as "/user/ada/proxy/{port}/" is allowed.
    2. JupyterHub and Binder (``JUPYTERHUB_SERVICE_PREFIX``):
       "{prefix}proxy/{port}/", made absolute when the hub tells its public
       address (``JUPYTERHUB_PUBLIC_URL``, or ``JUPYTERHUB_PUBLIC_HUB_URL`` when
       users have no subdomains), else path-absolute ("/user/ada/proxy/8000/"),
       which works as a link in the notebook page since it is served from the same host.
    3. GitHub Codespaces: its forwarded-port address.
    4. A kernel started by a Jupyter server whose base_url is not "/" (it is
       behind a proxy of its own), or that listens beyond loopback (a container,
       a VM) and has jupyter-server-proxy: "{base_url}proxy/{port}/", path-absolute.
    5. Otherwise "http://{host}:{port}/" (a wildcard host is shown as 127.0.0.1).

    ``environ`` defaults to ``os.environ``. Raises ``PublicURLError`` for an
    override that is not a URL.
    """
    return resolve(config, host, port, environ).url


def resolve(
    config: _HasPublicURL | None,
    host: str,
    port: int,
    environ: Mapping[str, str] | None = None,
) -> PublicURL:
    """Like ``public_url()``, also telling where the URL came from (for ``%nbapi status``)."""
    env = os.environ if environ is None else environ
    override = getattr(config, "public_url", "") if config is not None else ""
    if override:
        return PublicURL(_expand_override(override, port, "NbAPI.public_url"), "NbAPI.public_url")
    if env.get(ENV_PUBLIC_URL):
        url = _expand_override(env[ENV_PUBLIC_URL], port, f"${ENV_PUBLIC_URL}")
        return PublicURL(url, f"${ENV_PUBLIC_URL}")
    hub = _jupyterhub_base(env)
    if hub is not None:
        source = "Binder" if _is_binder(env) else "JupyterHub"
        return PublicURL(f"{hub}proxy/{port}/", source)
    codespace = _codespaces_url(env, port)
    if codespace is not None:
        return PublicURL(codespace, "Codespaces")
    server = jupyter_server_info(env)
    if server is not None:
        base_url = _slashed(str(server.get("base_url", "/")))
        # A server with a base_url of its own sits behind a proxy; one listening
        # beyond loopback is used from other machines (a container, a VM).
        if base_url != "/" or (_serves_others(server) and _has_server_proxy()):
            return PublicURL(f"{base_url}proxy/{port}/", "Jupyter server")
    return PublicURL(direct_url(host, port), "direct")


def _serves_others(server: Mapping[str, Any]) -> bool:
    hostname = str(server.get("hostname", "localhost"))
    return not is_loopback(hostname)


def _has_server_proxy() -> bool:
    return importlib.util.find_spec("jupyter_server_proxy") is not None


def direct_url(host: str, port: int) -> str:
    """``http://host:port/`` as a browser on this machine would type it."""
    return local_url(host, port)


def check_public_url(value: str, name: str = "NbAPI.public_url") -> str:
    """``value`` if it is a usable ``public_url`` (or empty), else ``PublicURLError``.

    For validating the setting when it is made, before any server runs.
    """
    if value:
        _expand_override(value, 8000, name)
    return value


def _expand_override(value: str, port: int, name: str) -> str:
    url = value.strip().replace("{port}", str(port))
    parts = urlsplit(url)
    if "{" in url or "}" in url:
        msg = f"{name} {value!r} has a placeholder other than {{port}}; use only {{port}}"
        raise PublicURLError(msg)
    absolute = parts.scheme in ("http", "https") and bool(parts.netloc)
    if not (absolute or (url.startswith("/") and not url.startswith("//"))) or (
        parts.query or parts.fragment
    ):
        msg = (
            f"{name} {value!r} is not a base URL; use an http(s) URL or a path such as "
            "'https://hub.example.org/user/ada/proxy/{port}/' or '/user/ada/proxy/{port}/'"
        )
        raise PublicURLError(msg)
    return url if url.endswith("/") else url + "/"


# -- JupyterHub, Binder, Codespaces ---------------------------------------------------
def _is_binder(env: Mapping[str, str]) -> bool:
    return any(name.startswith("BINDER_") for name in env)


def _slashed(path: str) -> str:
    path = "/" + path.strip("/")
    return path if path == "/" else path + "/"


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def _jupyterhub_base(env: Mapping[str, str]) -> str | None:
    """The single-user server's public base URL on JupyterHub/Binder, or None elsewhere."""
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "")
    if not prefix:
        return None
    prefix = _slashed(prefix)
    # Recent JupyterHub versions give the server its public URL when they know it
    # (JupyterHub.public_url is configured); subdomains included.
    public = env.get("JUPYTERHUB_PUBLIC_URL", "")
    if _origin(public) is not None:
        return public if public.endswith("/") else public + "/"
    # Without subdomains (JUPYTERHUB_HOST empty) the server shares the hub's host.
    hub_origin = _origin(env.get("JUPYTERHUB_PUBLIC_HUB_URL", ""))
    if hub_origin is not None and not env.get("JUPYTERHUB_HOST"):
        return f"{hub_origin}{prefix}"
    return prefix


def _codespaces_url(env: Mapping[str, str], port: int) -> str | None:
    name = env.get("CODESPACE_NAME", "")
    domain = env.get("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN", "")
    if name and domain:
        return f"https://{name}-{port}.{domain}/"
    return None


# -- the Jupyter server this kernel runs under -----------------------------------------
def _runtime_dirs(env: Mapping[str, str]) -> list[Path]:
    if env.get("JUPYTER_RUNTIME_DIR"):
        return [Path(env["JUPYTER_RUNTIME_DIR"])]
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # a kernel environment without jupyter_core
        return []
    return [Path(jupyter_runtime_dir())]


def _parent_pids(env: Mapping[str, str], depth: int = 4) -> list[int]:
    """The process that launched this kernel, or else the kernel's ancestors.

    jupyter_client sets ``JPY_PARENT_PID`` to the launching process (the Jupyter
    server, or nbclient in a test run); when it is set, it is the only candidate,
    so a kernel started by a test inside a Jupyter terminal is not taken for one of
    that server's kernels.
    """
    if env.get("JPY_PARENT_PID", "").isdigit():
        return [int(env["JPY_PARENT_PID"])]
    pids: list[int] = []
    pid = os.getpid()
    for _ in range(depth):
        pid = _ppid(pid)
        if pid <= 1:
            break
        pids.append(pid)
    return pids


def _ppid(pid: int) -> int:
    if pid == os.getpid():
        return os.getppid()
    try:  # Linux; elsewhere only the direct parent (above) is known
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0


def running_servers(runtime_dirs: Iterable[Path]) -> list[dict[str, Any]]:
    """The ``jpserver-*.json`` (and notebook 6 ``nbserver-*.json``) files of running servers."""
    servers: list[dict[str, Any]] = []
    for directory in runtime_dirs:
        for pattern in ("jpserver-*.json", "nbserver-*.json"):
            for path in sorted(directory.glob(pattern)):
                try:
                    info = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if isinstance(info, dict) and isinstance(info.get("pid"), int):
                    servers.append(info)
    return servers


def jupyter_server_info(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The info of the Jupyter server that started this kernel, or None.

    A kernel learns its server from the server's info file in the Jupyter runtime
    directory (``jpserver-<pid>.json``, which lists ``base_url``, ``hostname`` and
    ``pid``), matched against ``JPY_PARENT_PID`` (or, without it, the kernel's
    parent processes).
    """
    env = os.environ if environ is None else environ
    servers = running_servers(_runtime_dirs(env))
    if not servers:
        return None
    by_pid = {info["pid"]: info for info in servers}
    for pid in _parent_pids(env):
        info = by_pid.get(pid)
        if info is not None:
            return info
    return None


def jupyter_server_base_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The base_url ("/" or "/user/ada/") of the Jupyter server that started this kernel."""
    info = jupyter_server_info(environ)
    return None if info is None else _slashed(str(info.get("base_url", "/")))


# -- requests that arrive through jupyter-server-proxy ---------------------------------
def root_path_for(scope: Mapping[str, Any]) -> str | None:
    """The public path prefix of a request forwarded by jupyter-server-proxy, or None.

    ``{base_url}proxy/{port}/...`` arrives with the prefix stripped and announced
    in ``X-Forwarded-Prefix`` (and two twins); ``{base_url}proxy/absolute/{port}/...``
    arrives with the full path and no header. Either way the prefix must name
    this server's port, so a stray header cannot point the app elsewhere.
    Returns e.g. "/user/ada/proxy/8000" (no trailing slash), or None for a direct request.
    """
    if scope.get("type") not in ("http", "websocket"):
        return None
    server = scope.get("server")
    port = str(server[1]) if server and len(server) > 1 and server[1] is not None else None
    headers = dict(scope.get("headers") or ())
    for name in PREFIX_HEADERS:
        raw = headers.get(name)
        if raw is None:
            continue
        prefix = raw.decode("latin-1").strip().rstrip("/")
        if _valid_prefix(prefix, port, "proxy"):
            return prefix
        return None
    if port is not None:
        path = str(scope.get("path", ""))
        marker = f"/proxy/absolute/{port}"
        at = path.find(marker)
        if at >= 0:
            end = at + len(marker)
            prefix = path[:end]
            if (len(path) == end or path[end] == "/") and _valid_prefix(prefix, port, "absolute"):
                return prefix
    return None


def _valid_prefix(prefix: str, port: str | None, kind: str) -> bool:
    if not _SAFE_PREFIX.fullmatch(prefix):
        return False
    last = prefix.rsplit("/", 1)[-1]
    if port is None:
        return True
    # "/proxy/8000" or, for a remote host, "/proxy/host:8000".
    if kind == "proxy":
        return last == port or last.endswith(f":{port}")
    return last == port


class ProxyPrefix:
    """ASGI wrapper: requests that came through jupyter-server-proxy get its ``root_path``.

    For such a request the scope is copied, ``root_path`` set to the proxy's
    public prefix and ``path`` (and ``raw_path``) made to include it, as the ASGI
    spec asks. Starlette routes on the part after ``root_path``, and FastAPI's
    /docs then loads ``{prefix}/openapi.json`` and lists ``{prefix}`` in the
    schema's ``servers`` for that request only. Direct requests pass through
    unchanged, so 127.0.0.1 keeps working at the same time. The wrapped app is
    not modified.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = root_path_for(scope)
        if prefix is None:
            await self.app(scope, receive, send)
            return
        await self.app(with_root_path(scope, prefix), receive, send)


def with_root_path(scope: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """A copy of ``scope`` mounted at ``prefix`` (a path without trailing slash)."""
    new = dict(scope)
    path = str(scope.get("path", ""))
    root = prefix
    if not path.startswith(root + "/") and path != root:
        new["path"] = root + path
        raw = scope.get("raw_path")
        if isinstance(raw, bytes):
            new["raw_path"] = root.encode("latin-1") + raw
    new["root_path"] = root
    return new
