"""The live server: uvicorn serving the kernel's app from the runner's loop thread.

The server serves the runner (the dispatcher that looks the kernel's current app
up on every request), so new routes, a rebound ``app``, middleware and
overrides take effect on the next request with no restart. uvicorn runs as a
task on the runner's loop ("nbapi-loop"); the kernel's own loop is never
touched. The listening socket is bound here, in the calling thread, so a taken
port is an immediate error instead of a hang in a background thread. uvicorn
runs with lifespan off (the runner owns the app's lifespan), no access log and
its own log records kept in the server's log instead of cell outputs.

Nothing here imports IPython; what ``%nbapi serve`` and ``status`` show is built
in ``_commands``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import errno
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from ._access import REFUSED_BODY, Gate, gated
from ._errors import UserError
from ._hosts import connect_host, is_ipv6, is_loopback, local_url, url_host
from ._runner import AppRunner, ASGIApp, LogEntry, Receive, Scope, Send
from ._session import NOT_RUNNING

if TYPE_CHECKING:
    import httpx2
    import uvicorn

    from ._session import Session

PORT_TRIES = 100  # ports tried from NbAPI.port upward when --port is not given
IDENTITY_PATH = "/_nbapi/server"  # answers {"nbapi": pid} so kernels can tell each other apart
STOP_TIMEOUT = 5.0
_SERVER_LOG_SIZE = 100


class ServerError(UserError):
    """A live-server command that cannot be carried out; the server is left as it was."""


class PortTakenError(ServerError):
    """The port asked for with ``--port`` is in use."""


# -- links ---------------------------------------------------------------------------
def public_url(config: Any, host: str, port: int) -> str:
    """The base URL (ending in "/") under which a browser reaches the server.

    The one place links are computed; ``nbapi._proxy`` knows JupyterHub, Binder,
    Codespaces and ``NbAPI.public_url``.
    """
    from ._proxy import public_url as proxied_url

    return proxied_url(config, host, port)


# -- ports ---------------------------------------------------------------------------
_servers: dict[int, LiveServer] = {}  # port -> running server of this process


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if is_ipv6(host) else socket.AF_INET


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; raises OSError when the port is taken."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket's proto says TCP (proto 0 means Nagle + delayed ACKs: ~40 ms).
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # As uvicorn does: a port in TIME_WAIT after a stop can be bound again at once,
        # while a port another socket listens on still fails (Linux).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if is_ipv6(host):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(2048)  # listen now: a second binder of the same port fails here, not later
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def port_owner(host: str, port: int) -> str:
    """Who holds ``port``: "this kernel's nbapi server", "another nbapi kernel (process N)",
    "another user's nbapi kernel" or "another process"."""
    own = _servers.get(port)
    if own is not None and own.running:
        return "this kernel's nbapi server"
    import httpx2

    url = f"http://{url_host(connect_host(host))}:{port}{IDENTITY_PATH}"
    try:
        reply = httpx2.get(url, timeout=0.5)
        if reply.status_code == 403 and reply.content == REFUSED_BODY:
            return "another user's nbapi kernel"  # private: it does not tell us more
        pid = reply.json().get("nbapi") if reply.status_code == 200 else None
    except Exception:
        pid = None
    if isinstance(pid, int):
        return f"another nbapi kernel (process {pid})"
    return "another process"


def bind_port(host: str, port: int, *, exact: bool) -> socket.socket:
    """Bind ``host:port``, or with ``exact=False`` the first free port from ``port`` up."""
    last = port if exact else min(port + PORT_TRIES - 1, 65535)
    for candidate in range(port, last + 1):
        try:
            return _bind(host, candidate)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                if exact:
                    owner = port_owner(host, candidate)
                    msg = (
                        f"port {candidate} on {host} is taken by {owner}; "
                        "pick a free one with --port N, or leave --port out to take the next free"
                    )
                    raise PortTakenError(msg) from None
                continue
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(
                exc, socket.gaierror
            ):
                msg = f"cannot bind host {host!r} ({exc.strerror}); use --host 127.0.0.1"
                raise ServerError(msg) from None
            if exc.errno == errno.EACCES:
                msg = f"no permission to bind port {candidate}; use a port above 1023"
                raise ServerError(msg) from None
            # EINVAL (::ffff:1.2.3.4 with IPv6 only), and any other refusal: one line.
            why = exc.strerror or exc
            msg = f"cannot bind {host!r} port {candidate} ({why}); use --host 127.0.0.1"
            raise ServerError(msg) from None
        except (TypeError, ValueError, UnicodeError, OverflowError) as exc:  # NUL, bad encoding
            msg = f"cannot bind host {host!r} ({exc}); use --host 127.0.0.1"
            raise ServerError(msg) from None
    msg = f"ports {port}-{last} on {host} are all taken; pick a free one with --port N"
    raise PortTakenError(msg)


# -- uvicorn's log records go to the server's log, not to whichever cell is running ---
class _ServerLogHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.sinks: list[collections.deque[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The runner already records handler exceptions with their traceback.
        if record.getMessage().startswith("Exception in ASGI application"):
            return
        line = f"uvicorn {record.levelname.lower()}: {record.getMessage()}"
        for sink in list(self.sinks):
            sink.append(line)


_log_handler = _ServerLogHandler()


def _route_uvicorn_logs() -> None:
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if _log_handler not in logger.handlers:
            logger.addHandler(_log_handler)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


# -- the server ----------------------------------------------------------------------
def _identity(app: ASGIApp) -> ASGIApp:
    """Answer ``IDENTITY_PATH`` so another kernel can tell an nbapi server from others."""
    body = f'{{"nbapi": {os.getpid()}}}'.encode()

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == IDENTITY_PATH:
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def _ws_protocol() -> Any:
    import importlib.util

    return "wsproto" if importlib.util.find_spec("wsproto") is not None else "auto"


def _protocols(gate: Gate) -> dict[str, Any]:
    """uvicorn's HTTP and websocket protocols, each connection checked by ``gate``."""
    from uvicorn.config import HTTP_PROTOCOLS, WS_PROTOCOLS
    from uvicorn.importer import import_from_string

    http = import_from_string(HTTP_PROTOCOLS["auto"])
    ws = import_from_string(WS_PROTOCOLS[_ws_protocol()])
    return {"http": gated(http, gate), "ws": gated(ws, gate)}


class LiveServer:
    """uvicorn serving ``runner`` (the kernel's dispatcher) on ``runner.loop``."""

    def __init__(
        self, runner: AppRunner, host: str = "127.0.0.1", port: int = 8000, config: Any = None
    ) -> None:
        self.runner = runner
        # Private mode (nbapi._access): NbAPI.private, read at each connection's first request.
        self.gate = Gate(config)
        self.host = host
        self.port = port
        self.state = "stopped"  # "running", "stopped" or "failed"
        self.failure: str | None = None
        self.requests_served = 0
        self.errors = 0
        self.messages: collections.deque[str] = collections.deque(maxlen=_SERVER_LOG_SIZE)
        self._uvicorn: uvicorn.Server | None = None
        self._task: concurrent.futures.Future[None] | None = None
        self._client: httpx2.Client | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.state == "running" and self._task is not None and not self._task.done()

    @property
    def url(self) -> str:
        return local_url(self.host, self.port)

    def _count(self, entry: LogEntry) -> None:
        if entry.source == "server":
            self.requests_served += 1
            if entry.error:
                self.errors += 1

    def start(self, *, exact_port: bool = False) -> None:
        """Bind the port (here, so a taken port fails at once) and start serving."""
        import uvicorn

        with self._lock:
            if self.running:
                return
            sock = bind_port(self.host, self.port, exact=exact_port)
            self.port = sock.getsockname()[1]
            _route_uvicorn_logs()
            from ._proxy import ProxyPrefix

            config = uvicorn.Config(
                _identity(ProxyPrefix(self.runner)),
                lifespan="off",  # the runner runs the app's lifespan
                access_log=False,
                log_config=None,
                log_level="warning",
                **_protocols(self.gate),
                timeout_graceful_shutdown=2,
            )
            started = threading.Event()
            server = _Uvicorn(config, started)
            loop = self.runner.loop

            async def serve() -> None:
                try:
                    await server.serve(sockets=[sock])
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    self.failure = f"{type(exc).__name__}: {exc}"
                finally:
                    sock.close()
                    started.set()

            _log_handler.sinks.append(self.messages)
            if self._count not in self.runner.listeners:
                self.runner.listeners.append(self._count)
            self._uvicorn = server
            self._task = asyncio.run_coroutine_threadsafe(serve(), loop)
            started.wait(30)
            if not server.started:
                self.state = "failed"
                self._detach()
                sock.close()
                msg = f"the live server did not start: {self.failure or 'timed out'}"
                raise ServerError(msg)
            self.state = "running"
            self.failure = None
            _servers[self.port] = self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Close the port at once, finish open requests, and end the serving task."""
        with self._lock:
            server, task = self._uvicorn, self._task
            if server is None or task is None:
                return
            if not task.done() and self.runner.running:

                async def shutdown() -> None:
                    for listener in getattr(server, "servers", []):
                        listener.close()  # the port is free from here on
                    server.should_exit = True

                with contextlib.suppress(Exception):
                    self.runner.run(shutdown(), timeout=timeout)
                with contextlib.suppress(Exception):
                    task.result(timeout)
                if not task.done():
                    server.force_exit = True
                    with contextlib.suppress(Exception):
                        task.result(1.0)
            self._detach()
            self.state = "stopped"

    def _detach(self) -> None:
        self.gate.close()
        if _servers.get(self.port) is self:
            del _servers[self.port]
        with contextlib.suppress(ValueError):
            _log_handler.sinks.remove(self.messages)
        with contextlib.suppress(ValueError):
            self.runner.listeners.remove(self._count)
        if self._client is not None:
            self._client.close()
            self._client = None
        self._uvicorn = None
        self._task = None

    def client(self) -> httpx2.Client:
        """An httpx client for the live server (one per server; closed when it stops)."""
        import httpx2

        if not self.running:
            raise ServerError(NOT_RUNNING)
        if self._client is None:
            self._client = httpx2.Client(base_url=self.url.rstrip("/"), timeout=30)
        return self._client


def _make_uvicorn_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
            super().__init__(config)
            self._started_event = started

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            self._started_event.set()

    return Server


class _LazyUvicorn:
    """``_Uvicorn(config, started)``: uvicorn is imported only when a server starts."""

    _cls: type | None = None

    def __call__(self, config: Any, started: threading.Event) -> Any:
        if _LazyUvicorn._cls is None:
            _LazyUvicorn._cls = _make_uvicorn_class()
        return _LazyUvicorn._cls(config, started)


_Uvicorn = _LazyUvicorn()


# -- starting and stopping ---------------------------------------------------------------
def _host_warning(session: Session, host: str, private: bool = False) -> None:
    if is_loopback(host):
        return
    if private:
        session.say(
            f"nbapi warning: serving on {host}, not loopback, in private mode: only this "
            "user's processes on this machine are served, other machines get a 403; "
            "%config NbAPI.private = False opens it to everyone who can reach this machine"
        )
        return
    session.say(
        f"nbapi warning: serving on {host}, not loopback: anyone who can reach this "
        "machine can call the kernel's API; use --host 127.0.0.1 to keep it local"
    )


def start_server(
    session: Session, port: int | None = None, host: str | None = None
) -> tuple[LiveServer, bool]:
    """Start (or keep) the session's live server; return it, and whether it is new."""
    server: LiveServer | None = session.server
    if server is not None and server.running:
        wanted_host = host or server.host
        if (port is None or port == server.port) and wanted_host == server.host:
            return server, False
        msg = (
            f"the live server already runs at {server.url}; "
            "move it with %nbapi restart --port N [--host H]"
        )
        raise ServerError(msg)
    host = host or session.config.host or "127.0.0.1"
    exact = port is not None
    first = port if port is not None else int(session.config.port)
    new = LiveServer(session.runner, host, first, session.config)
    if server is not None:  # keep the counters of a restarted server
        new.requests_served, new.errors = server.requests_served, server.errors
        new.messages.extend(server.messages)
    new.start(exact_port=exact)
    session.server = new
    _host_warning(session, host, new.gate.private)
    return new, True
