"""nbapi: build, serve and test FastAPI APIs cell by cell in Jupyter and IPython.

Load it in a notebook with ``%load_ext nbapi``; then ``%%route``, ``%http`` and
``%nbapi`` are available (add ``?`` to any of them for help).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx2
    from fastapi import FastAPI

    from ._widgets import Explorer, RequestBuilder

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "explorer",
    "get_app",
    "get_client",
    "load_ipython_extension",
    "request_builder",
    "unload_ipython_extension",
]


def get_app() -> FastAPI:
    """The kernel's FastAPI app: the one bound to ``app`` in the notebook."""
    from ._session import current_session

    return current_session().app


def get_client() -> httpx2.Client:
    """An httpx client that sends requests to the kernel's app in-process.

    Use it like FastAPI's ``TestClient``: ``get_client().get("/items/1").json()``.
    """
    from ._session import current_session

    session = current_session()
    session.bind_app()
    return session.client


def explorer() -> Explorer:
    """A live view of every operation of the kernel's app (``%nbapi explorer``)."""
    from ._widgets import explorer as make

    return make()


def request_builder(method: str | None = None, path: str | None = None) -> RequestBuilder:
    """A request form for ``METHOD PATH``, e.g. ``("GET", "/items/{item_id}")`` (``%nbapi try``).

    Without arguments, the form lets you pick the operation.
    """
    from ._widgets import request_builder as make

    return make(method, path)


def __getattr__(name: str) -> Any:
    # ``nbapi.client`` reads like FastAPI's ``client = TestClient(app)``.
    if name == "client":
        return get_client()
    raise AttributeError(f"module 'nbapi' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    from ._magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from ._magics import unload

    unload(ipython)
