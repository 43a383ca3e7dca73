from __future__ import annotations

import pytest

from nbapi._hosts import connect_host, local_url
from nbapi._proxy import direct_url


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000/"),
        ("127.0.0.2", "http://127.0.0.2:8000/"),
        ("localhost", "http://localhost:8000/"),
        ("0.0.0.0", "http://127.0.0.1:8000/"),
        ("", "http://127.0.0.1:8000/"),
        ("::1", "http://[::1]:8000/"),
        ("[::1]", "http://[::1]:8000/"),
        ("::", "http://[::1]:8000/"),  # the server's IPv6 sockets are V6-only
        ("[::]", "http://[::1]:8000/"),
    ],
)
def test_one_url_for_each_host(host: str, url: str) -> None:
    # The kernel's own URL and the link printed for a browser agree.
    assert local_url(host, 8000) == url
    assert direct_url(host, 8000) == url


@pytest.mark.parametrize(("host", "address"), [("::", "::1"), ("0.0.0.0", "127.0.0.1")])
def test_wildcards_connect_on_their_own_family(host: str, address: str) -> None:
    assert connect_host(host) == address
