"""Private mode: only the kernel's own user may call its live server.

Loopback keeps the network out, but every user of a shared machine (a
JupyterHub, a workshop server) can connect to 127.0.0.1. In private mode each
TCP connection is checked once, before any of its requests reach the app: Linux
records the user that created every socket, and the client's socket is looked up
by its address with the kernel's socket diagnostics (netlink ``NETLINK_SOCK_DIAG``,
what ``ss`` uses: about 10 µs), or, where that is unavailable, in ``/proc/net/tcp``
and ``tcp6`` (a read of every socket on the machine). The connection is served only
when that user is the kernel's. Anything else (another user, root when the kernel
is not root's, a socket its process closed, another machine or container) gets a
short 403, for HTTP and websockets alike.

The check sits in uvicorn's connection objects, outside everything else: it
sees the real peer of the socket (not ``scope["client"]``, which uvicorn
rewrites from ``X-Forwarded-For``), and a refused request never reaches
FastAPI, middleware, a handler, /docs or the lifespan. A header or a cookie
could be sent by any process; the owner of a socket cannot be forged.

Pure: no IPython import.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import select
import socket
import struct
import threading
import time
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
            mapped = address.ipv4_mapped
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
        (family, f"{proc_endpoint(*peer, family)} {proc_endpoint(*local, family)}")
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


def table_uid(
    peer: tuple[str, int], local: tuple[str, int], tables: tuple[Path, ...] = PROC_TABLES
) -> int | None:
    """``peer_uid`` read from the text tables (``/proc/net/tcp`` and ``tcp6``).

    Costs a read of every socket on the machine (milliseconds with thousands of
    them): the fallback where the kernel's socket-diagnostics netlink is missing.
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


# -- the kernel's socket diagnostics (what `ss` uses): one socket, looked up by its address ----
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NO_COOKIE = 0xFFFFFFFF
_TCP_LISTEN = 10
_MSG = struct.Struct("=IHHII")  # struct nlmsghdr


_V4_MAPPED = b"\0" * 10 + b"\xff\xff"


def _packed(host: str) -> bytes:
    """The address's bytes: 4 for IPv4 (v4-mapped IPv6 included), else 16."""
    if ":" not in host:
        return socket.inet_aton(host)
    packed = socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
    return packed[12:] if packed[:12] == _V4_MAPPED else packed


def _diag_request(peer: tuple[str, int], local: tuple[str, int]) -> tuple[bytearray, bytes]:
    """A SOCK_DIAG_BY_FAMILY request for the TCP socket whose local end is ``peer``
    and remote end ``local`` (v4-mapped addresses are asked as IPv4: the kernel then
    finds IPv6 sockets connected to IPv4 addresses too), and the socket id the answer
    must carry (ports and addresses, IPv4 unmapped). Raises OSError for a bad address."""
    src, dst = _packed(peer[0]), _packed(local[0])
    if len(src) != len(dst):
        raise OSError("mixed address families")
    family = socket.AF_INET if len(src) == 4 else socket.AF_INET6
    ports = struct.pack("!HH", peer[1], local[1])
    sockid = ports + src.ljust(16, b"\0") + dst.ljust(16, b"\0")
    sockid += struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)  # any interface, no cookie
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    header = _MSG.pack(_MSG.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 0, 0)
    return bytearray(header + request), ports + src + dst


def _unmapped(address: bytes) -> bytes:
    return address[12:] if len(address) == 16 and address[:12] == _V4_MAPPED else address


def _diag_answer(answer: bytes, expected: bytes) -> int | None:
    """The uid in the kernel's answer, if it is the live connected socket asked for."""
    if len(answer) < _MSG.size + 72 or _MSG.unpack_from(answer)[1] == _NLMSG_ERROR:
        return None  # no such socket (an error answer is shorter anyway)
    family, state = answer[_MSG.size], answer[_MSG.size + 1]
    width = 4 if family == socket.AF_INET else 16
    at = _MSG.size + 4  # inet_diag_msg.id: ports, then src and dst (16 bytes each)
    found = answer[at : at + 4]
    found += _unmapped(answer[at + 4 : at + 4 + width])
    found += _unmapped(answer[at + 20 : at + 20 + width])
    uid, inode = struct.unpack_from("=II", answer, _MSG.size + 64)
    # With no connected socket at that address the kernel answers with a listener on
    # it; a socket closed by its process (inode 0) belongs to nobody.
    if state == _TCP_LISTEN or inode == 0 or found != expected:
        return None
    return int(uid)


class Link:
    """A netlink socket for owner lookups, opened at the first and kept: two system calls
    per lookup (each one lets other threads take the GIL, so fewer calls cost less)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._seq = 0

    def close(self) -> None:
        """Close the socket (a later lookup opens another); safe to call twice."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ask(self, request: bytearray) -> bytes:
        with self._lock:
            if self._socket is None:
                link = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)
                link.setblocking(False)
                self._socket = link
            self._seq = self._seq % 0xFFFFFFFF + 1
            struct.pack_into("=I", request, 8, self._seq)  # nlmsghdr.nlmsg_seq
            self._socket.send(request)
            deadline = time.monotonic() + 2.0
            while True:
                try:  # the kernel answers while handling the send: normally there already
                    answer = self._socket.recv(8192)
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([self._socket], [], [], left)[0]:
                        raise TimeoutError("no answer from socket diagnostics") from None
                    continue
                if len(answer) >= _MSG.size and _MSG.unpack_from(answer)[3] == self._seq:
                    return answer  # (an answer to an earlier, abandoned request is dropped)


def diag_uid(peer: tuple[str, int], local: tuple[str, int], link: Link | None = None) -> int | None:
    """``peer_uid`` asked of the kernel over netlink, through ``link`` (else a socket
    opened for this one lookup); raises OSError where netlink is not available."""
    try:
        request, expected = _diag_request(peer, local)
    except (OSError, ValueError):
        return None
    if link is None:
        with Link() as once:
            return _diag_answer(once.ask(request), expected)
    return _diag_answer(link.ask(request), expected)


_diag_works: bool | None = None  # found out at the first lookup


def _netlink_works() -> bool:
    """Whether ``diag_uid`` finds a connection of ours (it may be missing or refused in a
    sandbox, or in a kernel built without it)."""
    global _diag_works
    if _diag_works is None:
        try:
            with socket.socket() as listener:
                listener.bind(("127.0.0.1", 0))
                listener.listen()
                with socket.create_connection(listener.getsockname(), timeout=2):
                    accepted, peer = listener.accept()
                    with accepted:
                        _diag_works = diag_uid(peer, accepted.getsockname()) == os.geteuid()
        except OSError:
            _diag_works = False
    return _diag_works


def peer_uid(peer: tuple[str, int], local: tuple[str, int], link: Link | None = None) -> int | None:
    """The uid that owns the client socket of a connection on this machine, or None.

    ``peer`` is the client's (host, port) and ``local`` the server's, as the server's
    socket sees them. None when the client is not a live socket of this machine's
    network namespace (another machine, a container, a socket its process closed), or
    when two live sockets claim it with different owners.
    """
    if _netlink_works():
        try:
            return diag_uid(peer, local, link)
        except OSError:
            return None
    return table_uid(peer, local)


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
    if value is True and not PROC_TABLES[0].exists():
        return Mode(
            True,
            "NbAPI.private = True, but this system does not tell who owns a "
            "connection: every request is refused",
        )
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
        self.link = Link()

    def close(self) -> None:
        """Release the netlink socket; safe to call twice."""
        self.link.close()

    @property
    def private(self) -> bool:
        value = getattr(self.config, "private", None)
        return self.detected.private if value is None else bool(value)

    def allows(self, peer: Any, local: Any) -> bool:
        """True when the socket at ``peer`` (connected to ``local``) is the owner's."""
        if not (isinstance(peer, tuple) and isinstance(local, tuple)):
            return False  # a unix socket or an unknown transport: not known to be the owner's
        uid = peer_uid((str(peer[0]), int(peer[1])), (str(local[0]), int(local[1])), self.link)
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


def gated(protocol: type[asyncio.Protocol], gate: Gate) -> type:
    """A subclass of uvicorn's HTTP or websocket protocol ``protocol`` whose connections
    each serve through a ``Connection`` (uvicorn reads the app from ``self.app``)."""

    def connection_made(self: Any, transport: Any) -> None:
        protocol.connection_made(self, transport)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.app = Connection(self.app, gate, peer, local)

    return type(f"Private{protocol.__name__}", (protocol,), {"connection_made": connection_made})
