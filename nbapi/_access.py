"""Private mode: only the kernel's own user may call its live server.

Loopback keeps the network out, but every user of a shared machine (a
JupyterHub, a workshop server) can connect to 127.0.0.1. In private mode each
TCP connection is checked once, before any of its requests reach the app: the
client's socket is looked up in the kernel's socket tables (``/proc/net/tcp``
and ``tcp6``, where Linux records the user that created every socket) and the
connection is served only when that user is the kernel's. Anything else (another
user, root when the kernel is not root's, a closed or unknown socket, another
machine) gets a short 403, for HTTP and websockets alike.

The check sits in uvicorn's connection objects, outside everything else: it
sees the real peer of the socket (not ``scope["client"]``, which uvicorn
rewrites from ``X-Forwarded-For``), and a refused request never reaches
FastAPI, middleware, a handler, /docs or the lifespan. A header or a cookie
could be sent by any process; the owner of a socket cannot be forged.

Pure: no IPython import.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ._runner import ASGIApp, Receive, Scope, Send

PROC_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
PASSWD = Path("/etc/passwd")
FIRST_HUMAN_UID = 1000  # Debian, Ubuntu, Fedora and Arch all number people from 1000
_NO_LOGIN = ("nologin", "false", "sync", "true")
_NOBODY = 65534

REFUSED_BODY = (
    b"403 Forbidden: this nbapi server belongs to another user of this machine; "
    b"only processes of the user who runs its kernel may call it\n"
)

OPEN_WARNING = (
    "nbapi warning: NbAPI.private = False: every user of this machine can call this "
    "kernel's API and read its /docs, and reach whatever its handlers expose (files, "
    "data, secrets); set it back to True on a shared machine"
)


class _HasPrivate(Protocol):
    private: bool | None


# -- the socket tables ----------------------------------------------------------------
def _words(packed: bytes) -> str:
    # The kernel prints each 32-bit word of the address as a native integer (%08X).
    return "".join(f"{word:08X}" for word in struct.unpack(f"={len(packed) // 4}I", packed))


def proc_endpoint(host: str, port: int, family: int) -> str:
    """``host:port`` as ``/proc/net/tcp`` (``family`` AF_INET) or ``tcp6`` (AF_INET6) prints it.

    An IPv4 address in the tcp6 table is v4-mapped (``::ffff:127.0.0.1``).
    """
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if family == socket.AF_INET:
        if address.version == 6:
            mapped = address.ipv4_mapped  # type: ignore[union-attr]
            if mapped is None:
                msg = f"{host!r} is not an IPv4 address"
                raise ValueError(msg)
            address = mapped
        return f"{_words(address.packed)}:{port:04X}"
    if address.version == 4:
        address = ipaddress.IPv6Address(f"::ffff:{address}")
    return f"{_words(address.packed)}:{port:04X}"


def _candidates(peer: tuple[str, int], local: tuple[str, int]) -> list[tuple[int, str]]:
    """(family, "LOCAL REMOTE") of the client's socket in each table it may be listed in."""
    peer_ip = ipaddress.ip_address(peer[0].split("%", 1)[0])
    is_v4 = peer_ip.version == 4 or getattr(peer_ip, "ipv4_mapped", None) is not None
    families = [socket.AF_INET, socket.AF_INET6] if is_v4 else [socket.AF_INET6]
    # The client's socket has the client's endpoint as its local address.
    return [
        (
            family,
            f"{proc_endpoint(peer[0], peer[1], family)} {proc_endpoint(local[0], local[1], family)}",
        )
        for family in families
    ]


def owners(table: str, endpoints: str) -> list[int]:
    """The uids of the live sockets in ``table`` (the text of /proc/net/tcp or tcp6) whose
    "LOCAL REMOTE" addresses are ``endpoints``.

    A socket whose process closed it (inode 0, listed with uid 0) counts for nobody.
    """
    found: list[int] = []
    needle = f" {endpoints} "
    at = table.find(needle)
    while at >= 0:
        end = table.find("\n", at)
        fields = table[at : end if end >= 0 else len(table)].split()
        # LOCAL REMOTE st tx:rx tr:when retrnsmt uid timeout inode
        if len(fields) >= 9 and fields[8] != "0" and fields[6].isdigit():
            found.append(int(fields[6]))
        at = table.find(needle, at + 1)
    return found


def peer_uid(
    peer: tuple[str, int], local: tuple[str, int], tables: tuple[Path, ...] = PROC_TABLES
) -> int | None:
    """The uid that owns the client socket of a connection on this machine, or None.

    ``peer`` is the client's (host, port) and ``local`` the server's, as the server's
    socket sees them. None when the client is not a live socket of this machine's
    network namespace, or when two live sockets claim it with different owners.
    """
    try:
        wanted = _candidates(peer, local)
    except ValueError:
        return None
    uids: set[int] = set()
    for family, endpoints in wanted:
        path = tables[0] if family == socket.AF_INET else tables[1]
        try:
            table = path.read_text()
        except OSError:
            continue
        uids.update(owners(table, endpoints))
    return uids.pop() if len(uids) == 1 else None


# -- when private mode is on ------------------------------------------------------------
def human_accounts(passwd: str) -> list[tuple[str, int]]:
    """(name, uid) of the accounts in ``passwd`` (/etc/passwd's text) that people log in to."""
    accounts: list[tuple[str, int]] = []
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].isdigit():
            continue
        uid, shell = int(fields[2]), fields[6].strip()
        if uid < FIRST_HUMAN_UID or uid == _NOBODY or not shell:
            continue
        if shell.rsplit("/", 1)[-1] in _NO_LOGIN:
            continue
        accounts.append((fields[0], uid))
    return accounts


def shared_host(environ: Mapping[str, str], passwd: str, owner: int) -> str | None:
    """Why this machine may be shared with other people ("JupyterHub", ...), or None."""
    if any(name.startswith("BINDER_") for name in environ):
        return "Binder"
    if any(name.startswith("JUPYTERHUB_") for name in environ):
        return "JupyterHub"
    if any(uid != owner for _, uid in human_accounts(passwd)):
        return "other people have accounts on this machine"
    return None


def _read_passwd() -> str:
    try:
        return PASSWD.read_text(errors="replace")
    except OSError:
        return ""


@dataclass(frozen=True)
class Mode:
    """Whether private mode is in force, and why."""

    private: bool
    reason: str  # "NbAPI.private = True", "JupyterHub", "Binder", "other accounts ...", ...

    def describe(self) -> str:
        """One line for ``%nbapi status``."""
        if self.private:
            return f"access: private, only this kernel's user may call it ({self.reason})"
        return f"access: open to every user of this machine ({self.reason})"


def detected_mode(environ: Mapping[str, str] | None = None, passwd: str | None = None) -> Mode:
    """The mode ``NbAPI.private = None`` (the default) stands for on this machine."""
    env = os.environ if environ is None else environ
    if not PROC_TABLES[0].exists():
        return Mode(False, "this system does not tell who owns a connection")
    text = _read_passwd() if passwd is None else passwd
    reason = shared_host(env, text, os.geteuid())
    if reason is not None:
        return Mode(True, reason)
    return Mode(False, "one user on this machine; %config NbAPI.private = True to restrict")


def access_mode(config: _HasPrivate | None, detected: Mode | None = None) -> Mode:
    """The mode in force: ``NbAPI.private`` when set, else what the machine calls for."""
    value = getattr(config, "private", None)
    if value is True:
        return Mode(True, "NbAPI.private = True")
    if value is False:
        return Mode(False, "NbAPI.private = False")
    return detected if detected is not None else detected_mode()


# -- the gate ---------------------------------------------------------------------------
async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """403 for an HTTP request; a websocket handshake closed before accept (uvicorn: 403)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(REFUSED_BODY)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": REFUSED_BODY})


class Gate:
    """Private mode for one live server: the setting, what the machine calls for, the owner."""

    def __init__(self, config: _HasPrivate | None) -> None:
        self.config = config
        self.detected = detected_mode()
        self.owner = os.geteuid()
        self.refused = 0  # connections refused so far

    @property
    def private(self) -> bool:
        value = getattr(self.config, "private", None)
        return self.detected.private if value is None else bool(value)

    def allows(self, peer: Any, local: Any) -> bool:
        """True when the socket at ``peer`` (connected to ``local``) is the owner's."""
        if not (isinstance(peer, tuple) and isinstance(local, tuple)):
            return False  # a unix socket or an unknown transport: not known to be the owner's
        uid = peer_uid((str(peer[0]), int(peer[1])), (str(local[0]), int(local[1])))
        return uid is not None and uid == self.owner


class Connection:
    """The ASGI app of one TCP connection: the server's app, behind the gate.

    The owner of the client socket is looked up at the connection's first request
    made in private mode, and remembered for the connection's life.
    """

    __slots__ = ("allowed", "app", "gate", "local", "peer")

    def __init__(self, app: ASGIApp, gate: Gate, peer: Any, local: Any) -> None:
        self.app = app
        self.gate = gate
        self.peer = peer
        self.local = local
        self.allowed: bool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.gate.private:
            if self.allowed is None:
                self.allowed = self.gate.allows(self.peer, self.local)
                if not self.allowed:
                    self.gate.refused += 1
            if not self.allowed:
                await refuse(scope, receive, send)
                return
        await self.app(scope, receive, send)


def gated(protocol: type, gate: Gate) -> type:
    """A subclass of uvicorn's HTTP or websocket protocol ``protocol`` whose connections
    each serve through a ``Connection`` (uvicorn reads the app from ``self.app``)."""

    def connection_made(self: Any, transport: Any) -> None:
        protocol.connection_made(self, transport)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.app = Connection(self.app, gate, peer, local)

    return type(f"Private{protocol.__name__}", (protocol,), {"connection_made": connection_made})
