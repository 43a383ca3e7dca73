"""Hosts and URLs on this machine: which address a bind host is reached at, and loopback.

The one owner of these rules: the live server's own URL, the link printed for a browser
and the warning about non-loopback hosts all ask here.
"""

from __future__ import annotations

import ipaddress

_WILDCARD_V4 = {"", "0.0.0.0"}
_WILDCARD_V6 = {"::", "[::]"}


def is_ipv6(host: str) -> bool:
    """True for an IPv6 address, bracketed or not (``::1``, ``[::]``)."""
    return ":" in host


def connect_host(host: str) -> str:
    """The address a client on this machine uses to reach a server bound to ``host``.

    A wildcard host is reached at the loopback address of its own family: the server's
    IPv6 sockets are V6-only, so ``::`` does not answer on 127.0.0.1.
    """
    if host in _WILDCARD_V4:
        return "127.0.0.1"
    if host in _WILDCARD_V6:
        return "::1"
    return host.removeprefix("[").removesuffix("]")


def url_host(host: str) -> str:
    """``host`` as it goes into a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if is_ipv6(host) else host


def local_url(host: str, port: int) -> str:
    """``http://HOST:PORT/``: where this machine reaches a server bound to ``host``."""
    return f"http://{url_host(connect_host(host))}:{port}/"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and every loopback address (all of 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
