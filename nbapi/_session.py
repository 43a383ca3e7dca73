"""The kernel's nbapi state: its app, the routes its cells own, the request runner.

One ``Session`` exists per loaded extension. It works on a plain namespace dict
(the notebook's ``user_ns``), so it needs no IPython to be tested.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import httpx2
from fastapi import FastAPI

from ._client import make_client
from ._config import NbAPI
from ._docs_assets import offline_docs
from ._errors import UserError
from ._registry import Registry
from ._runner import AppRunner, Receive, Scope, Send, restore_streams

if TYPE_CHECKING:
    from ._server import LiveServer

APP_NAME = "app"
# The one answer to "send to the live server" when none runs.
NOT_RUNNING = "the live server is not running; start it with %nbapi serve"


class AppError(UserError):
    """The name ``app`` is bound to something that is not a FastAPI app."""


class DocsRunner(AppRunner):
    """The runner, with /docs and /redoc assets served from an installed package (no CDN)."""

    def __init__(self, current_app: Callable[[], Any]) -> None:
        super().__init__(current_app)
        self._outer = offline_docs(super().__call__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._outer(scope, receive, send)


class Session:
    """nbapi's state for one kernel."""

    def __init__(
        self,
        namespace: MutableMapping[str, Any],
        config: NbAPI | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.namespace = namespace
        self.config = config if config is not None else NbAPI()
        self.say = say if say is not None else print
        self.registry = Registry()
        self.runner: AppRunner = DocsRunner(self.current_app)
        self._client: httpx2.Client | None = None
        self._created_app = False
        self.server: LiveServer | None = None  # the live server, created on first use
        # Called after every cell (widgets compare a fingerprint of app.routes and redraw).
        self.route_listeners: list[Callable[[], None]] = []
        # Names a traceback's file for the user ("Cell In[3]"), or None; set by the magics.
        self.file_label: Callable[[str], str | None] | None = None

    def current_app(self) -> FastAPI | None:
        """The FastAPI bound to ``app`` in the namespace, or None (never creates one)."""
        value = self.namespace.get(APP_NAME)
        return value if isinstance(value, FastAPI) else None

    def bind_app(self) -> FastAPI:
        """The kernel's app, bound as ``app = FastAPI()`` first when the notebook has none."""
        return self.app

    @property
    def app(self) -> FastAPI:
        """The kernel's app; binds ``app = FastAPI()`` in the namespace when there is none."""
        value = self.namespace.get(APP_NAME)
        if isinstance(value, FastAPI):
            return value
        if value is not None:
            msg = (
                f"'app' in the notebook is a {type(value).__name__}, not a FastAPI app; "
                "rename it, or run app = FastAPI()"
            )
            raise AppError(msg)
        app = FastAPI()
        self.namespace[APP_NAME] = app
        if not self._created_app:
            self._created_app = True
            self.say("nbapi: created app = FastAPI() in the notebook namespace")
        return app

    @property
    def client(self) -> httpx2.Client:
        """An httpx client that sends requests to the kernel's app in-process."""
        if self._client is None:
            self._client = make_client(self.runner)
        return self._client

    def running_server(self) -> LiveServer | None:
        """The live server if it is running (then ``.url`` and ``.client()`` work), else None."""
        server = self.server
        return server if server is not None and server.running else None

    def close(self) -> None:
        """Stop the server and the runner's thread; safe to call twice."""
        if self.server is not None:
            self.server.stop()
        if self._client is not None:
            self._client.close()
            self._client = None
        self.runner.close()
        restore_streams()


_current: Session | None = None


def current_session() -> Session:
    """The loaded extension's session; in a shell without ``%load_ext nbapi``, load it."""
    if _current is not None:
        return _current
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        shell.extension_manager.load_extension("nbapi")
        if _current is not None:
            return _current
    msg = "nbapi is not loaded: run %load_ext nbapi in an IPython kernel first"
    raise RuntimeError(msg)


def set_current(session: Session | None) -> None:
    global _current
    _current = session
