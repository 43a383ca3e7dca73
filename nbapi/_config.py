"""``NbAPI``: the options users set with ``%config NbAPI.<option> = value``."""

from __future__ import annotations

import sys
from typing import Any

from traitlets import Bool, CaselessStrEnum, Int, TraitError, Unicode, observe, validate
from traitlets.config import Configurable


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

    @validate("public_url")
    def _check_public_url(self, proposal: Any) -> str:
        # Checked when set, so a bad value never reaches a running server's links.
        from ._proxy import PublicURLError, check_public_url

        try:
            return check_public_url(proposal["value"])
        except PublicURLError as exc:
            raise TraitError(str(exc)) from None
