"""The request runner: its loop thread, live dispatch to the current app, lifespans, the log."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI, Request

from nbapi._client import make_client
from nbapi._runner import AppRunner, LogEntry


def lifespan_app(events: list[str], name: str, fail: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append(f"{name} startup")
        if fail:
            raise RuntimeError("no database")
        yield {"name": name}
        events.append(f"{name} shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/who")
    def who(request: Request) -> str:
        return str(request.state.name)

    return app


def test_dispatch_follows_the_current_app_and_switches_lifespans() -> None:
    events: list[str] = []
    holder = {"app": lifespan_app(events, "first")}
    runner = AppRunner(lambda: holder["app"])
    client = make_client(runner)
    try:
        assert events == []  # nothing starts before the first request
        assert client.get("/who").json() == "first"
        assert client.get("/who").json() == "first"
        assert events == ["first startup"]
        holder["app"] = lifespan_app(events, "second")
        runner.sync_app()  # what the magics do after each cell
        assert events == ["first startup", "first shutdown", "second startup"]
        assert client.get("/who").json() == "second"
    finally:
        runner.close()
    assert events[-1] == "second shutdown"


def test_failed_startup_is_recorded() -> None:
    events: list[str] = []
    app = lifespan_app(events, "broken", fail=True)
    runner = AppRunner(lambda: app)
    try:
        response = make_client(runner).get("/who")
        assert response.status_code == 503
        assert response.text == (
            "The app's lifespan startup failed: RuntimeError: no database; "
            "fix it and run app = FastAPI(...) again."
        )
        assert runner.lifespan_errors == ["startup failed: RuntimeError: no database"]
    finally:
        runner.close()


def test_no_app_yet_is_a_503() -> None:
    runner = AppRunner(lambda: None)
    try:
        response = make_client(runner).get("/")
        assert response.status_code == 503
        assert response.text == "No FastAPI app in the kernel yet: run a %%route cell."
    finally:
        runner.close()


def test_listeners_see_each_request() -> None:
    app = FastAPI()
    runner = AppRunner(lambda: app)
    seen: list[LogEntry] = []
    runner.listeners.append(seen.append)
    try:
        make_client(runner).get("/missing?x=1")
        assert [entry.line() for entry in seen] == ["404 GET /missing?x=1 (in-process)"]
        assert runner.requests_served == 1
        assert runner.errors == 0
    finally:
        runner.close()


@pytest.mark.parametrize("cycles", [20])
def test_close_stops_the_thread_every_time(cycles: int) -> None:
    app = FastAPI()
    before = threading.active_count()
    for _ in range(cycles):
        runner = AppRunner(lambda: app)
        assert make_client(runner).get("/docs").status_code == 200
        runner.close()
        runner.close()  # safe twice
        assert not runner.running
    assert threading.active_count() == before


def test_run_returns_results_and_raises_errors_across_the_thread() -> None:
    runner = AppRunner(lambda: None)
    try:

        async def where() -> str:
            return threading.current_thread().name

        async def fail() -> None:
            raise ValueError("bad value")

        assert runner.run(where()) == "nbapi-loop"
        with pytest.raises(ValueError, match="bad value"):
            runner.run(fail())
    finally:
        runner.close()


def test_run_timeout_cancels_the_task() -> None:
    import asyncio

    runner = AppRunner(lambda: None)
    cancelled = threading.Event()

    async def hang() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        with pytest.raises(TimeoutError, match=r"did not finish within 0\.2 s"):
            runner.run(hang(), timeout=0.2)
        assert cancelled.wait(5)
        assert runner.run(asyncio.sleep(0, "still serving")) == "still serving"
    finally:
        runner.close()


def test_requests_are_answered_while_the_kernel_comes_first() -> None:
    import time

    import httpx2

    from nbapi._runner import KERNEL_FIRST_PAUSE

    app = FastAPI()

    @app.get("/hi")
    async def hi() -> str:
        return "hi"

    runner = AppRunner(lambda: app)
    client = make_client(runner)
    try:
        runner.prioritize_kernel(60)
        assert runner.kernel_first
        assert client.get("/hi").json() == "hi"  # in-process: never paused

        async def from_the_server() -> str:
            async with httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=runner), base_url="http://t"
            ) as outside:
                started = time.monotonic()
                answer = (await outside.get("/hi")).json()
                assert time.monotonic() - started >= KERNEL_FIRST_PAUSE  # it waited first
                return str(answer)

        assert runner.run(from_the_server()) == "hi"
        runner.prioritize_kernel(0)
        assert not runner.kernel_first
        assert [entry.line() for entry in runner.log] == [
            "200 GET /hi (in-process)",
            "200 GET /hi (server)",
        ]
    finally:
        client.close()
        runner.close()
