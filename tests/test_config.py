"""``%config NbAPI.*``: values are checked when set; a refused one never stops a later load."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from nbapi._config import NbAPI, invalid_options
from nbapi._hosts import is_loopback
from nbapi._session import current_session


# -- issue 12, item 6 -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("NbAPI.port = -1", "NbAPI.port -1 is not a TCP port; use a number from 1 to 65535"),
        ("NbAPI.port = 70000", "NbAPI.port 70000 is not a TCP port"),
        ("NbAPI.port = 0", "NbAPI.port 0 is not a TCP port"),
        ("NbAPI.port = 'abc'", "expected an int, not the str 'abc'"),
        ("NbAPI.host = ' '", "NbAPI.host ' ' is not an address"),
        ("NbAPI.host = 'a\\nb'", "NbAPI.host 'a\\nb' is not an address"),
    ],
)
def test_bad_values_are_refused_at_config_time(
    shell: Any, line: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = current_session().config
    before = (config.port, config.host)
    with caplog.at_level(logging.ERROR):
        shell.run_line_magic("config", line)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert message in errors[0]
    assert "\n" not in errors[0]
    assert (config.port, config.host) == before
    # IPython keeps the refused value in the shell's config: the next load drops it.
    shell.run_line_magic("reload_ext", "nbapi")
    assert (current_session().config.port, current_session().config.host) == before


def test_good_values_are_taken(shell: Any) -> None:
    shell.run_line_magic("config", "NbAPI.port = 65535")
    shell.run_line_magic("config", "NbAPI.host = '::1'")
    assert (current_session().config.port, current_session().config.host) == (65535, "::1")


def test_invalid_options_names_each_refused_option() -> None:
    refused = invalid_options({"port": 70000, "host": "127.0.0.1", "autostart": "yes"})
    assert set(refused) == {"port", "autostart"}
    assert NbAPI(port=1).port == 1


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
