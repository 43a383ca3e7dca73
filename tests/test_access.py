"""Private mode's parts: the socket tables, who may share the machine, the mode in force."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nbapi._access import (
    Link,
    Mode,
    access_mode,
    diag_uid,
    human_accounts,
    owners,
    peer_uid,
    proc_endpoint,
    shared_host,
    table_uid,
)
from nbapi._config import NbAPI

little_endian = pytest.mark.skipif(
    sys.byteorder != "little", reason="the expected strings are a little-endian machine's"
)
linux = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="no /proc/net/tcp here")


# -- how /proc/net/tcp and tcp6 print an endpoint -------------------------------------
@little_endian
@pytest.mark.parametrize(
    ("host", "port", "family", "expected"),
    [
        ("127.0.0.1", 8000, socket.AF_INET, "0100007F:1F40"),
        ("10.1.2.3", 443, socket.AF_INET, "0302010A:01BB"),
        ("127.0.0.1", 8000, socket.AF_INET6, "0000000000000000FFFF00000100007F:1F40"),
        ("::ffff:127.0.0.1", 51000, socket.AF_INET, "0100007F:C738"),
        ("::ffff:127.0.0.1", 51000, socket.AF_INET6, "0000000000000000FFFF00000100007F:C738"),
        ("::1", 8000, socket.AF_INET6, "00000000000000000000000001000000:1F40"),
        ("fe80::1%lo", 80, socket.AF_INET6, "000080FE000000000000000001000000:0050"),
    ],
)
def test_proc_endpoint(host: str, port: int, family: int, expected: str) -> None:
    assert proc_endpoint(host, port, family) == expected


def test_a_plain_ipv6_address_has_no_ipv4_form() -> None:
    with pytest.raises(ValueError, match="'::1' is not an IPv4 address"):
        proc_endpoint("::1", 80, socket.AF_INET)


HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
)
TCP = HEADER + (
    # the server listening on 127.0.0.1:8000 (root)
    "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
    "        0 1001 1 0000000000000000 100 0 0 10 0\n"
    # the server's side of a connection from port 51000 (root)
    "   1: 0100007F:1F40 0100007F:C738 01 00000000:00000000 00:00000000 00000000     0"
    "        0 1002 1 0000000000000000 20 4 30 10 -1\n"
    # the client's side: uid 1001
    "   2: 0100007F:C738 0100007F:1F40 01 00000000:00000000 00:00000000 00000000  1001"
    "        0 1003 1 0000000000000000 20 4 30 10 -1\n"
    # a client on port 51001 that was closed by its process: uid 0, inode 0
    "   3: 0100007F:C739 0100007F:1F40 04 00000000:00000000 01:00000014 00000000     0"
    "        0 0 3 0000000000000000 20 4 0 10 -1\n"
)
TCP6 = HEADER.replace("local_address", "local_address                        ") + (
    # a v4-mapped client on port 51002 (uid 1002) of the 127.0.0.1:8000 server
    "   0: 0000000000000000FFFF00000100007F:C73A 0000000000000000FFFF00000100007F:1F40 01 "
    "00000000:00000000 00:00000000 00000000  1002        0 2001 1 0000000000000000 20 4 30 10 -1\n"
    # a ::1 client on port 51003 (uid 0) of a ::1 server on 8001
    "   1: 00000000000000000000000001000000:C73B 00000000000000000000000001000000:1F41 01 "
    "00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 20 4 30 10 -1\n"
)


@little_endian
@pytest.mark.parametrize(
    ("peer", "local", "expected"),
    [
        (("127.0.0.1", 51000), ("127.0.0.1", 8000), 1001),  # the client, not the server's side
        (("127.0.0.1", 51001), ("127.0.0.1", 8000), None),  # closed: counts for nobody
        (("127.0.0.1", 51002), ("127.0.0.1", 8000), 1002),  # v4-mapped, listed in tcp6
        (("::ffff:127.0.0.1", 51002), ("::ffff:127.0.0.1", 8000), 1002),
        (("::1", 51003), ("::1", 8001), 0),
        (("127.0.0.1", 51009), ("127.0.0.1", 8000), None),  # not on this machine
        (("10.0.0.9", 51000), ("127.0.0.1", 8000), None),
        (("not an address", 1), ("127.0.0.1", 8000), None),
    ],
)
def test_peer_uid_from_the_tables(
    tmp_path: Path, peer: tuple[str, int], local: tuple[str, int], expected: int | None
) -> None:
    (tmp_path / "tcp").write_text(TCP)
    (tmp_path / "tcp6").write_text(TCP6)
    assert table_uid(peer, local, (tmp_path / "tcp", tmp_path / "tcp6")) == expected


@little_endian
def test_two_live_owners_of_one_endpoint_count_for_nobody(tmp_path: Path) -> None:
    twin = TCP.splitlines()[3].replace("  1001 ", "  1005 ").replace(" 1003 ", " 1004 ")
    (tmp_path / "tcp").write_text(TCP + twin + "\n")
    (tmp_path / "tcp6").write_text(TCP6)
    tables = (tmp_path / "tcp", tmp_path / "tcp6")
    assert owners((tmp_path / "tcp").read_text(), "0100007F:C738 0100007F:1F40") == [1001, 1005]
    assert table_uid(("127.0.0.1", 51000), ("127.0.0.1", 8000), tables) is None


def test_unreadable_tables_know_nobody(tmp_path: Path) -> None:
    tables = (tmp_path / "missing", tmp_path / "missing6")
    assert table_uid(("127.0.0.1", 51000), ("127.0.0.1", 8000), tables) is None


# -- real sockets on loopback ----------------------------------------------------------
@contextmanager
def connection(
    server_host: str, client_family: socket.AddressFamily, connect_to: str
) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A listener on ``server_host``, a client of ``client_family`` connected to it at
    ``connect_to``; yields (the server's accepted socket, the client)."""
    family = socket.AF_INET6 if ":" in server_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((server_host, 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.socket(client_family, socket.SOCK_STREAM) as client:
            client.connect((connect_to, port))
            accepted, _ = listener.accept()
            with accepted:
                yield accepted, client


@linux
@pytest.mark.parametrize(
    ("server_host", "client_family", "connect_to"),
    [
        ("127.0.0.1", socket.AF_INET, "127.0.0.1"),
        ("::1", socket.AF_INET6, "::1"),
        ("127.0.0.1", socket.AF_INET6, "::ffff:127.0.0.1"),  # a dual-stack client socket
    ],
)
@pytest.mark.parametrize("lookup", [peer_uid, diag_uid, table_uid])
def test_the_owner_of_a_real_connection_is_us(
    server_host: str,
    client_family: socket.AddressFamily,
    connect_to: str,
    lookup: Callable[[tuple[str, int], tuple[str, int]], int | None],
) -> None:
    with connection(server_host, client_family, connect_to) as (accepted, client):
        peer, local = accepted.getpeername()[:2], accepted.getsockname()[:2]
        assert lookup(peer, local) == os.geteuid()
        assert lookup(local, peer) == os.geteuid()  # the server's own side, for the record
        client.close()  # a socket its process closed belongs to nobody
        assert lookup(peer, local) is None


@linux
def test_a_listener_at_the_peer_address_is_not_a_client() -> None:
    # Asked for a connected socket that does not exist, the kernel answers with a
    # listener bound to that address, which must not count as the client.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert diag_uid(listener.getsockname(), ("127.0.0.1", 9)) is None
        assert peer_uid(listener.getsockname(), ("127.0.0.1", 9)) is None


# -- who may share this machine --------------------------------------------------------
PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
ada:x:1000:1000:Ada:/home/ada:/bin/bash
svc:x:1001:1001::/srv:/usr/sbin/nologin
ghost:x:1002:1002::/home/ghost:/bin/false
"""


def test_human_accounts_have_a_login_shell_and_a_people_uid() -> None:
    assert human_accounts(PASSWD) == [("ada", 1000)]
    assert human_accounts(PASSWD + "grace:x:1003:1003::/home/grace:/usr/bin/zsh\nbroken\n") == [
        ("ada", 1000),
        ("grace", 1003),
    ]


SHARED = "other people have accounts on this machine"


@pytest.mark.parametrize(
    ("environ", "passwd", "owner", "expected"),
    [
        ({}, PASSWD, 1000, None),  # ada alone, running her own kernel
        ({}, PASSWD, 0, SHARED),  # root's kernel, ada can log in
        ({}, "root:x:0:0::/root:/bin/bash\n", 0, None),  # a container with root only
        ({"JUPYTERHUB_USER": "ada"}, PASSWD, 1000, "JupyterHub"),
        ({"BINDER_LAUNCH_HOST": "https://mybinder.org/"}, PASSWD, 1000, "Binder"),
        ({}, PASSWD + "grace:x:1003:1003::/home/grace:/bin/sh\n", 1000, SHARED),
    ],
)
def test_shared_host(environ: dict[str, str], passwd: str, owner: int, expected: str) -> None:
    assert shared_host(environ, passwd, owner) == expected


@pytest.mark.parametrize(
    ("private", "expected"),
    [
        (True, "access: private, only this kernel's user may call it (NbAPI.private = True)"),
        (False, "access: open to every user of this machine (NbAPI.private = False)"),
        (None, "access: private, only this kernel's user may call it (JupyterHub)"),
    ],
)
def test_access_mode(
    private: bool | None, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = NbAPI(private=private)
    assert access_mode(config, Mode(True, "JupyterHub")).describe() == expected


@pytest.mark.parametrize(("value", "warned"), [(False, True), (True, False), (None, False)])
def test_turning_private_mode_off_warns(
    value: bool | None, warned: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    config = NbAPI()
    config.private = value
    err = capsys.readouterr().err
    assert ("NbAPI.private = False: every user of this machine can call" in err) is warned
    assert err.count("\n") == int(warned)  # one line


@linux
def test_one_link_serves_many_lookups_and_closes_twice() -> None:
    with connection("127.0.0.1", socket.AF_INET, "127.0.0.1") as (accepted, _client):
        peer, local = accepted.getpeername(), accepted.getsockname()
        link = Link()
        assert [diag_uid(peer, local, link) for _ in range(3)] == [os.geteuid()] * 3
        link.close()
        link.close()
        assert diag_uid(peer, local, link) == os.geteuid()  # opens a new socket
        link.close()
