"""One event loop, in its own thread, that every request to the kernel's app goes through.

The kernel's own loop is never touched (no nest_asyncio): in-process ``%http``
requests and the live server both hand their work to this loop. The runner is
also the ASGI app that the server serves: it looks up the kernel's current app
on every request, runs that app's lifespan when it starts being used (and the
old one's shutdown when ``app`` is rebound), and keeps a log of recent requests
and the errors handlers raised.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ._errors import error_line

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")

LOG_SIZE = 200
# While the kernel runs a cell, each request from the live server first pauses the
# loop thread this long (see AppRunner.prioritize_kernel).
KERNEL_FIRST_PAUSE = 0.001


@dataclass(frozen=True)
class LogEntry:
    """One request that reached the kernel's app."""

    source: str  # "in-process" or "server"
    method: str
    path: str
    status: int | None
    error: str | None = None  # one line: "ZeroDivisionError: division by zero"
    traceback: str | None = None
    output: str = ""  # what the handler printed or logged (live-server requests)

    def line(self) -> str:
        status = "---" if self.status is None else str(self.status)
        text = f"{status} {self.method} {self.path} ({self.source})"
        return f"{text}  {self.error}" if self.error else text


# -- what handlers print while serving the live server -------------------------------
OUTPUT_LIMIT = 10_000  # characters kept per request
_capture: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "nbapi_capture", default=None
)


class StreamSwitch:
    """``sys.stdout`` / ``sys.stderr``: live-server requests write to their own buffer.

    A handler serving the live server runs while some unrelated cell (or none) is
    the kernel's current one; what it prints belongs to the route, not that cell.
    The buffer is a context variable, so it follows the request into its tasks and
    into Starlette's worker threads (sync handlers); everything else passes through.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        buffer = _capture.get()
        if buffer is None:
            return int(self.stream.write(text) or 0)
        buffer.append(text)
        return len(text)

    def flush(self) -> None:
        if _capture.get() is None:
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def switch_streams() -> None:
    """Put a ``StreamSwitch`` in front of ``sys.stdout`` and ``sys.stderr`` (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, StreamSwitch):
            setattr(sys, name, StreamSwitch(stream))


def restore_streams() -> None:
    """Undo ``switch_streams`` where the switch is still in place."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, StreamSwitch):
            setattr(sys, name, stream.stream)


class Lifespan:
    """Drive an ASGI app's lifespan protocol by hand, as a server does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.supported = True
        self.failed: str | None = None  # one line: why startup failed

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state
        try:
            await self.app(scope, self._inbox.get, self._outbox.put)
        except BaseException as exc:  # an app without lifespan support raises here
            await self._outbox.put({"type": "nbapi.lifespan.crashed", "message": repr(exc)})

    async def _exchange(self, kind: str) -> str | None:
        await self._inbox.put({"type": f"lifespan.{kind}"})
        reply = await self._outbox.get()
        if reply["type"] == f"lifespan.{kind}.complete":
            return None
        if reply["type"] == "nbapi.lifespan.crashed" and kind == "startup":
            self.supported = False  # like uvicorn's lifespan="auto": carry on without it
            return None
        return str(reply.get("message") or reply["type"])

    async def startup(self) -> str | None:
        """Run startup; return an error message, or None when it completed."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        return await self._exchange("startup")

    async def shutdown(self) -> str | None:
        if self._task is None or not self.supported or self._task.done():
            return None
        error = await self._exchange("shutdown")
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self._task, timeout=5)
        return error


class AppRunner:
    """The loop thread, and the ASGI app that dispatches to the kernel's current app."""

    def __init__(self, current_app: Callable[[], ASGIApp | None]) -> None:
        self._current_app = current_app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._lifespan: Lifespan | None = None
        self._switch_lock: asyncio.Lock | None = None
        self.log: collections.deque[LogEntry] = collections.deque(maxlen=LOG_SIZE)
        self.requests_served = 0
        self.errors = 0
        self.lifespan_errors: list[str] = []
        self.listeners: list[Callable[[LogEntry], None]] = []
        self._kernel_first_until = 0.0

    # -- the loop thread -------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    # A root task under run_until_complete, not bare run_forever: anyio
                    # (Starlette's thread pool for sync handlers) ties its worker threads
                    # to that task; without one it starts a thread per request.
                    root = loop.create_task(asyncio.Event().wait())
                    with contextlib.suppress(RuntimeError):  # close() stops the loop
                        loop.run_until_complete(root)
                    root.cancel()  # ends anyio's worker threads too
                    with contextlib.suppress(BaseException):
                        loop.run_until_complete(root)

                thread = threading.Thread(target=run, name="nbapi-loop", daemon=True)
                thread.start()
                ready.wait(10)
                self._loop, self._thread = loop, thread
            return self._loop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the runner's loop and wait for its result.

        A timeout raises TimeoutError; an interrupt (or the timeout) cancels the task.
        """
        loop = self.loop
        # A bare lock is the cheapest cross-thread wake-up (about half the cost of
        # run_coroutine_threadsafe's future and condition); every %http pays it.
        finished = threading.Lock()
        finished.acquire()
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:
            task = loop.create_task(coro)
            task.add_done_callback(lambda _: finished.release())
            tasks.append(task)

        try:
            loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed
            coro.close()
            raise
        try:
            if not finished.acquire(timeout=-1 if timeout is None else timeout):
                raise TimeoutError(f"the request did not finish within {timeout} s")
        except BaseException:
            # Runs after start() (callbacks keep their order), so the task exists.
            loop.call_soon_threadsafe(lambda: tasks[0].cancel())
            raise
        return tasks[0].result()

    def close(self, timeout: float = 5.0) -> None:
        """Shut the app's lifespan down and stop the loop thread; safe to call twice."""
        if not self.running or self._loop is None:
            return
        loop, thread = self._loop, self._thread
        with contextlib.suppress(Exception):
            self.run(self._deactivate(), timeout=timeout)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            loop.close()
        self._loop, self._thread = None, None

    # -- lifespan ---------------------------------------------------------
    @property
    def active_app(self) -> ASGIApp | None:
        return self._lifespan.app if self._lifespan is not None else None

    async def _deactivate(self) -> None:
        if self._lifespan is not None:
            lifespan, self._lifespan = self._lifespan, None
            error = await lifespan.shutdown()
            if error:
                self.lifespan_errors.append(f"shutdown failed: {error}")

    async def activate(self, app: ASGIApp) -> None:
        """Make ``app`` the served app: shut the old one down, start this one up."""
        if self._switch_lock is None:
            self._switch_lock = asyncio.Lock()
        async with self._switch_lock:
            if self.active_app is app:
                return
            await self._deactivate()
            lifespan = Lifespan(app)
            error = await lifespan.startup()
            self._lifespan = lifespan
            if error:
                lifespan.failed = _last_line(error)
                self.lifespan_errors.append(f"startup failed: {lifespan.failed}")

    def sync_app(self) -> None:
        """Switch lifespans now if the kernel's app was rebound since it was last served."""
        if self._lifespan is None or not self.running:
            return
        app = self._current_app()
        if app is not None and app is not self.active_app:
            self.run(self.activate(app), timeout=30)

    # -- the kernel first -------------------------------------------------
    def prioritize_kernel(self, seconds: float) -> None:
        """Let the kernel's own threads run first for the next ``seconds``.

        The server's thread and the kernel's threads share the GIL. A server
        under full load releases it only for short system calls and takes it
        back before a waiting thread wakes up, so the waiter usually gets it
        only when CPython forces a switch after the 5 ms switch interval: each
        step of a cell's round trip (receive, execute, publish, reply) waits up
        to 5 ms. Meanwhile, each server request first sleeps
        ``KERNEL_FIRST_PAUSE``, long enough for a waiting thread to take the GIL.
        The magics call this when a cell starts (for its first moments: a long
        cell then shares the GIL as before) and when it ends (for the reply).
        Requests sent from the kernel itself (``%http``) never pause.
        """
        self._kernel_first_until = time.monotonic() + seconds

    @property
    def kernel_first(self) -> bool:
        """Whether live-server requests wait for the kernel right now."""
        return time.monotonic() < self._kernel_first_until

    # -- dispatch ---------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # Servers are run with lifespan off; the runner owns the app's lifespan.
            message = await receive()
            await send({"type": f"{message['type']}.complete"})
            return
        source = scope.get("nbapi.source", "server")
        if source == "server" and self.kernel_first:
            time.sleep(KERNEL_FIRST_PAUSE)  # blocks the loop on purpose: see above
        app = self._current_app()
        if app is None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013})
            else:
                await _plain_response(
                    send, 503, "No FastAPI app in the kernel yet: run a %%route cell."
                )
            return
        if app is not self.active_app:
            await self.activate(app)
        lifespan = self._lifespan
        if lifespan is not None and lifespan.failed:
            # As a server would refuse to start: say why instead of half-running the app.
            self._record(scope, source, 503, None)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1011})
            else:
                await _plain_response(
                    send,
                    503,
                    f"The app's lifespan startup failed: {lifespan.failed}; "
                    "fix it and run app = FastAPI(...) again.",
                )
            return
        scope = dict(scope)
        if lifespan is not None and lifespan.state:
            scope["state"] = dict(lifespan.state)
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "websocket.close" and not status:
                status.append(message.get("code", 1000))
            await send(message)

        buffer: list[str] = []
        token = _capture.set(buffer) if source == "server" else None
        if token is not None:
            switch_streams()
        try:
            await app(scope, receive, watch)
        except Exception as exc:
            self._record(scope, source, status[0] if status else 500, exc, buffer)
            raise
        else:
            self._record(scope, source, status[0] if status else None, None, buffer)
        finally:
            if token is not None:
                _capture.reset(token)

    def _record(
        self,
        scope: Scope,
        source: str,
        status: int | None,
        exc: Exception | None,
        buffer: list[str] | None = None,
    ) -> None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # behind a proxy: log the app's own path
            path = path[len(root) :] or "/"
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        method = scope.get("method", "WS")
        output = "".join(buffer or ())
        if len(output) > OUTPUT_LIMIT:
            output = output[:OUTPUT_LIMIT] + f"\n... ({len(output) - OUTPUT_LIMIT} more characters)"
        if exc is None:
            entry = LogEntry(source, method, path, status, output=output)
        else:
            entry = LogEntry(
                source,
                method,
                path,
                status,
                error=error_line(exc),  # one line: the log and `last error:` show it
                traceback="".join(traceback.format_exception(exc)),
                output=output,
            )
        # Listeners first (they show the error in its cell), then the log and the counts:
        # whoever waits for the log to grow finds the error shown or announced already.
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener(entry)
        self.log.append(entry)
        self.requests_served += 1
        if exc is not None:
            self.errors += 1


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


async def _plain_response(send: Send, status: int, text: str) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode()})
