"""``NbAPI``: the options users set with ``%config NbAPI.<option> = value``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from traitlets import Bool, CaselessStrEnum, Int, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from ._errors import first_line


class NbAPI(Configurable):
    """Options for nbapi's kernel app, its live server and the links it prints."""

    autostart = Bool(
        True,
        help="Start the live server when the first route is registered. "
        "False: start it only with `%nbapi serve`.",
    ).tag(config=True)

    host = Unicode(
        "127.0.0.1",
        help="Address the live server binds. Anything but loopback exposes the kernel's "
        "API to the network and prints a warning.",
    ).tag(config=True)

    port = Int(
        8000,
        help="First port the live server tries; it takes the next free one when this is taken.",
    ).tag(config=True)

    public_url = Unicode(
        "",
        help="Base URL under which browsers reach the live server, e.g. through a proxy "
        "('https://hub.example.org/user/ada/proxy/{port}/'). '{port}' is replaced by the "
        "server's port. Empty: detect JupyterHub/Binder, else http://HOST:PORT/.",
    ).tag(config=True)

    private = Bool(
        None,
        allow_none=True,
        help="Serve only the kernel's own user. On a shared machine (a JupyterHub, a "
        "workshop server) every user can connect to 127.0.0.1: without this, they can "
        "call your API, read its /docs and reach whatever your handlers expose (a "
        "{file_path:path} route serves your files). True: connections from any other "
        "user's processes (root's included) get a 403 before any of your code runs; "
        "Linux only. False: every user of the machine is served (a warning says so). "
        "None (default): True on JupyterHub, Binder or a machine with other people's "
        "accounts, else False. `%nbapi status` shows the mode in force.",
    ).tag(config=True)

    @observe("private")
    def _warn_open(self, change: Any) -> None:
        if change["new"] is False:
            from ._access import OPEN_WARNING

            print(OPEN_WARNING, file=sys.stderr)

    breaking_changes = Bool(
        True,
        help="After a cell changes operations (a %%route re-run, a route moved or removed), "
        "print one line per change that breaks clients under the cell. False: stay silent; "
        "`%nbapi diff` still lists every change.",
    ).tag(config=True)

    response_enum_added = CaselessStrEnum(
        ["breaking", "compatible"],
        default_value="breaking",
        help="How a new value in a response enum counts in re-run warnings, `%nbapi diff` "
        "and `%nbapi check`: 'breaking' (clients that switch over the known values fail) or "
        "'compatible' (as oasdiff counts it).",
    ).tag(config=True)

    @validate("port")
    def _check_port(self, proposal: Any) -> int:
        # Checked when set: -1 or 70000 would fail much later, in the server thread.
        port = proposal["value"]
        if not 1 <= port <= 65535:
            msg = f"NbAPI.port {port!r} is not a TCP port; use a number from 1 to 65535"
            raise TraitError(msg)
        return int(port)

    @validate("host")
    def _check_host(self, proposal: Any) -> str:
        host = str(proposal["value"])
        if not host.strip() or any(ch.isspace() or ord(ch) < 0x20 for ch in host):
            msg = f"NbAPI.host {host!r} is not an address; use e.g. '127.0.0.1' or '0.0.0.0'"
            raise TraitError(msg)
        return host

    @validate("public_url")
    def _check_public_url(self, proposal: Any) -> str:
        # Checked when set, so a bad value never reaches a running server's links.
        from ._proxy import PublicURLError, check_public_url

        try:
            return check_public_url(proposal["value"])
        except PublicURLError as exc:
            raise TraitError(str(exc)) from None


def invalid_options(section: Mapping[str, Any]) -> dict[str, str]:
    """The options of a ``NbAPI`` config section that would be refused, with why.

    ``%config`` keeps a refused value in the shell's config, where the next
    ``%load_ext`` would meet it again; the loader drops these instead.
    """
    probe = NbAPI()
    known = set(probe.trait_names(config=True))
    refused: dict[str, str] = {}
    for name, value in section.items():
        if name not in known:
            continue  # traitlets warns about unknown options itself
        try:
            setattr(probe, name, value)
        except TraitError as exc:
            refused[name] = first_line(str(exc)) or "refused"
    return refused
