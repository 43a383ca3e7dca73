"""The IPython layer: ``%%route``, ``%http`` / ``%%http`` and ``%nbapi``.

This is the only module that imports IPython. Each magic turns the user's
mistakes (any ``UserError``) into a one-line ``UsageError``.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import html
import operator
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from warnings import catch_warnings, simplefilter

import httpx2
from fastapi import FastAPI
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionInfo, InteractiveShell
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from IPython.display import display
from IPython.utils.text import FullEvalFormatter

from ._checkpoints import rerun_lines
from ._client import HttpResponse, parse_http_cell, parse_http_line
from ._commands import autostart, route_error_text, run_line, user_traceback
from ._config import NbAPI, invalid_options
from ._errors import UserError, error_line, one_line
from ._registry import added_warnings, route_rows, unreachable
from ._runner import LogEntry
from ._session import NOT_RUNNING, Session, set_current
from ._spec import parse_route_line

_FORMATTER = FullEvalFormatter()

# How long the kernel's threads come before a loaded live server's requests when an
# execution starts (its first moments; a long cell then shares the GIL as before) and
# when it ends (publishing the result and replying). See AppRunner.prioritize_kernel.
KERNEL_FIRST_AT_START = 0.030
KERNEL_FIRST_AT_END = 0.010


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a ``UserError`` as IPython's one-line ``UsageError``."""
    try:
        yield
    except UserError as exc:
        raise UsageError(one_line(str(exc))) from None


def _cell_line(exc: BaseException, filename: str) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _stack_inputs(app: FastAPI | None) -> tuple[Any, ...]:
    """What Starlette copies into an app's middleware stack when it builds it."""
    if app is None:
        return ()
    return (id(app), list(app.user_middleware), dict(app.exception_handlers), app.debug)


@magics_class
class NbAPIMagics(Magics):
    """nbapi's magics, bound to one shell and its session."""

    shell: Any

    def __init__(self, shell: InteractiveShell, session: Session) -> None:
        super().__init__(shell)
        self.session = session
        self.cell_id: str | None = None
        self._stack_inputs: tuple[Any, ...] = ()
        # The app and its routes when the cell started, and whether it ran %%route:
        # post_run_cell settles which routes the cell owns (Registry.settle_cell).
        self._routes_before: tuple[Any, list[Any]] = (None, [])
        self._ran_route = False
        # The count the running cell shows as In[N]: IPython has already counted the
        # next one when pre_run_cell fires. None outside a cell.
        self._cell_count: int | None = None
        # Live-server errors no cell display showed, announced before the next cell.
        self._unannounced: list[LogEntry] = []
        # owner -> (display id, route line, parent header of the cell that showed it)
        self.route_displays: dict[str, tuple[str, str, dict[str, Any]]] = {}
        # display id -> (last error, last output) shown in that route's display
        self._route_state: dict[str, tuple[str, str]] = {}

    # -- events -------------------------------------------------------------
    def pre_execute(self) -> None:
        # The start of every execution, silent ones too: the kernel's threads get
        # the GIL before a loaded server's requests (AppRunner.prioritize_kernel).
        self.session.runner.prioritize_kernel(KERNEL_FIRST_AT_START)

    def post_execute(self) -> None:
        # ... and again while the kernel publishes the result and replies.
        self.session.runner.prioritize_kernel(KERNEL_FIRST_AT_END)

    def pre_run_cell(self, info: ExecutionInfo) -> None:
        self.cell_id = getattr(info, "cell_id", None)
        count = self.shell.execution_count
        self._cell_count = count - 1 if getattr(info, "store_history", False) else count
        self._announce_errors()
        app = self.session.current_app()
        self._stack_inputs = _stack_inputs(app)
        self._ran_route = False
        routes = app.router.routes if app is not None else []
        self._routes_before = (app, list(routes))  # a copy is cheap; ids only when needed
        if app is not None and "middleware" in (info.raw_cell or ""):
            # Starlette builds its middleware stack on the first request and then
            # refuses add_middleware; dropping the built stack lets it be rebuilt.
            app.middleware_stack = None

    def post_run_cell(self, result: Any) -> None:
        owner, self.cell_id = self.cell_id, None  # magics run outside a cell own nothing
        self._cell_count = None
        app = self.session.current_app()
        if app is not None:
            # Routes added by plain decorators must show in /openapi.json too.
            app.openapi_schema = None
            if _stack_inputs(app) != self._stack_inputs:
                # The built stack holds copies of the middleware list and of the
                # exception handlers: rebuild it on the next request.
                app.middleware_stack = None
            failed = getattr(result, "success", True) is False
            self._settle_routes(app, owner, failed)
            # One line per breaking change to the operations this cell changed.
            self._print_in_cell(rerun_lines(self.session))
        self.session.runner.sync_app()
        for listener in list(self.session.route_listeners):
            listener()

    def _announce_errors(self) -> None:
        """One line for live-server errors that no cell showed (a terminal, plain routes)."""
        if not self._unannounced:
            return
        entries, self._unannounced = self._unannounced, []
        errors = [entry for entry in entries if entry.error]
        if errors:
            last = errors[-1]
            count = f"{len(errors)} errors" if len(errors) > 1 else "an error"
            print(
                f"nbapi: the live server's handlers raised {count} since the last cell "
                f"(last: {last.status or 500} {last.method} {last.path}: {last.error}); "
                "see %nbapi log --errors",
                file=sys.stderr,
                flush=True,
            )
        printed = [entry for entry in entries if entry.output]
        if printed:
            count = f"{len(printed)} requests" if len(printed) > 1 else "a request"
            print(
                f"nbapi: the live server's handlers printed output for {count} since the "
                "last cell; see %nbapi log --full",
                file=sys.stderr,
                flush=True,
            )

    def _settle_routes(self, app: FastAPI, owner: str | None, failed: bool) -> None:
        """Give the cell the routes it added; drop the ones it no longer makes; warn."""
        before_app, before_routes = self._routes_before
        if before_app is not app:
            # The cell made a new app: its routes start afresh, nothing to settle.
            for warning in unreachable(app.router.routes).values():
                print(f"nbapi warning: {warning}", file=sys.stderr)
            return
        registry = self.session.registry
        routes = app.router.routes
        unchanged = len(routes) == len(before_routes) and all(
            map(operator.is_, routes, before_routes)  # identities, at C speed
        )
        if unchanged and not registry.owns_any(owner):
            return  # most cells: no route changed, and the cell owns none to drop
        before = {id(route) for route in before_routes}
        removed, added = registry.settle_cell(app, owner, before, self._ran_route, failed)
        kept = {tuple(row[:2]) for row in route_rows(added, set())}
        for method, path, name, _ in route_rows(removed, set()):
            if (method, path) not in kept:
                print(f"nbapi: removed {method} {path} -> {name}(): this cell no longer defines it")
        for warning in added_warnings(app.router.routes, added):
            print(f"nbapi warning: {warning}", file=sys.stderr)

    # -- %%route --------------------------------------------------------------
    @no_var_expand
    @cell_magic
    def route(self, line: str, cell: str) -> None:
        """Register the last function the cell defines as a path operation.

        Usage::

            %%route METHOD[,METHOD...] PATH [KEYWORD=VALUE, ...]

        The cell runs as ordinary Python; its last top-level ``def`` or
        ``async def`` is then registered on the kernel's FastAPI app (the one
        bound to ``app``) exactly as ``@app.api_route(PATH, methods=[...],
        KEYWORD=VALUE, ...)`` would. Re-running the cell replaces its route.

        METHOD is GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or TRACE (any case,
        comma-separated), or WS for a websocket. PATH takes FastAPI's
        ``{item_id}`` and ``{file_path:path}``, Flask's ``<item_id>``,
        ``<int:item_id>``, ``<float:price>``, ``<path:file_path>``, and ``:item_id``.
        KEYWORDs are those of FastAPI's path-operation decorators (status_code,
        response_model, tags, summary, dependencies, ...), evaluated in the notebook.

        Examples::

            %%route GET /items/<int:item_id>
            def read_item(item_id, q: str | None = None):
                return {"item_id": item_id, "q": q}

            %%route POST /items status_code=201, tags=["items"]
            def create_item(item: Item) -> Item:
                return item

            %%route WS /echo
            async def echo(websocket: WebSocket):
                await websocket.accept()
                await websocket.send_text(await websocket.receive_text())
        """
        self._ran_route = True  # this cell keeps its route even if the cell fails below
        with user_errors():
            spec = parse_route_line(line)
        shell = self.shell
        try:
            with catch_warnings():
                # IPython warns about odd line breaks (\x0b, \x0c) it reads anyway.
                simplefilter("ignore")
                source = shell.transform_cell(cell)
            tree = ast.parse(source)
        except SyntaxError as exc:
            msg = (  # lines counted from the cell's first line (%%route), as Jupyter shows them
                f"syntax error in the %%route cell at line {(exc.lineno or 0) + 1}: {exc.msg}; "
                "fix the cell and run it again (no route was changed)"
            )
            raise UsageError(msg) from None
        except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes, deep nesting
            msg = (
                f"cannot read the %%route cell ({error_line(exc)}); "
                "fix the cell and run it again (no route was changed)"
            )
            raise UsageError(msg) from None
        functions = [
            node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        if not functions:
            msg = (
                f"the %%route {spec.describe()} cell defines no function; "
                "define the handler at the top level with def or async def"
            )
            raise UsageError(msg)
        name = functions[-1].name
        count = self._cell_count if self._cell_count is not None else shell.execution_count
        # Tracebacks name the cell's lines as Jupyter numbers them: the %%route line is 1.
        filename = shell.compile.cache(f"%%route {line}\n{source}", count)
        ast.increment_lineno(tree, 1)
        try:
            code = compile(tree, filename, "exec")
            exec(code, shell.user_global_ns, shell.user_ns)
        except Exception as exc:
            where = _cell_line(exc, filename)
            at = f" at line {where}" if where else ""
            msg = (
                f"the %%route cell raised {error_line(exc)}{at}; "
                "fix the cell and run it again (no route was changed)"
            )
            raise UsageError(msg) from None
        endpoint = shell.user_ns.get(name)
        if not callable(endpoint):
            msg = f"{name!r} is not a function after the cell ran; check what its decorators return"
            raise UsageError(msg)
        try:
            keywords = (
                eval(f"dict({spec.keywords})", shell.user_global_ns, shell.user_ns)
                if spec.keywords
                else {}
            )
        except Exception as exc:
            msg = (
                f"cannot evaluate the keywords {spec.keywords!r}: {error_line(exc)}; "
                "define what they use before this cell"
            )
            raise UsageError(msg) from None
        owner = self.cell_id or f"def {name}"
        with user_errors():
            app = self.session.app
            previous = self.session.registry.entry(app, owner)
            _, warnings = self.session.registry.register(app, owner, spec, endpoint, keywords)
        moved = previous is not None and previous.spec.describe() != spec.describe()
        note = f" (moved from {previous.spec.describe()})" if moved and previous else ""
        if previous is not None and not moved:
            note = " (replaced)"
        self._show_route(owner, f"{spec.describe()} -> {name}(){note}", warnings)
        if self.session.server is None and self.session.config.autostart:
            started = autostart(self.session)
            if started is not None:
                display(started)

    # -- handler errors shown in the %%route cell that owns the route ----------
    def _show_route(self, owner: str, text: str, warnings: list[str]) -> None:
        """Show the route line, then its warnings on stderr.

        In a kernel the line is a display that is updated when the route's handler fails.
        """
        lines = [f"nbapi warning: {warning}" for warning in warnings]
        publisher = getattr(self.shell, "display_pub", None)
        if publisher is None or not hasattr(publisher, "set_thread_parent"):
            print(text)
            for line in lines:
                print(line, file=sys.stderr)
            return
        display_id = f"nbapi-route-{uuid.uuid4().hex}"
        # Updates are sent later, from the loop thread, with this cell's request as parent.
        parent = dict(publisher.parent_header)
        self.route_displays[owner] = (display_id, text, parent)
        self._show_in_cell(parent, {"text/plain": text}, display_id, update=False, stderr=lines)

    def _print_in_cell(self, lines: Sequence[str]) -> None:
        """``lines`` on stderr, after the route line and warnings the cell showed."""
        publisher = getattr(self.shell, "display_pub", None)
        if not lines or publisher is None or not hasattr(publisher, "set_thread_parent"):
            for line in lines:
                print(line, file=sys.stderr)
            return
        self._show_in_cell(dict(publisher.parent_header), None, "", update=False, stderr=lines)

    def _show_in_cell(
        self,
        parent: dict[str, Any],
        data: dict[str, str] | None,
        display_id: str,
        *,
        update: bool,
        stderr: Sequence[str] = (),
    ) -> None:
        """Publish a display (then ``stderr`` lines) in the output of the cell ``parent`` ran.

        In ipykernel this runs in its IOPub thread. ipykernel flushes stdout and
        stderr before every display, and from any other thread it waits for the
        IOPub thread to do so: two thread round trips, about 1 ms on every %%route
        cell. Run in that thread, the flush is direct and nobody waits; the order
        of outputs is kept, because that thread sends in the order it was asked.
        """
        publisher = self.shell.display_pub
        stream: Any = sys.stderr  # ipykernel's OutStream routes by parent, as displays do

        def publish() -> None:
            token = publisher.set_thread_parent(parent)
            stream_token = (
                stream.set_thread_parent(parent) if hasattr(stream, "set_thread_parent") else None
            )
            try:
                if data is not None:  # None: only the stderr lines
                    transient = {"display_id": display_id}
                    publisher.publish(data, metadata={}, transient=transient, update=update)
                for line in stderr:
                    print(line, file=stream)
            finally:
                publisher.reset_thread_parent(token)
                if stream_token is not None:
                    stream.reset_thread_parent(stream_token)

        iopub = getattr(getattr(self.shell, "kernel", None), "iopub_thread", None)
        schedule = getattr(iopub, "schedule", None)
        if schedule is None:
            publish()
            return

        def in_iopub_thread() -> None:
            with contextlib.suppress(Exception):  # an error here must not stop kernel output
                publish()

        schedule(in_iopub_thread)

    def on_request(self, entry: LogEntry) -> None:
        """Runner listener (loop thread): show a handler's error and output in its %%route cell."""
        if not entry.error and not (entry.output and entry.source == "server"):
            return
        owner = self.session.registry.owner_of_request(
            self.session.current_app(), entry.method, entry.path
        )
        shown = self.route_displays.get(owner) if owner is not None else None
        if shown is None:
            if entry.source == "server":  # %http shows its own errors and output in its cell
                self._unannounced.append(entry)
            return
        display_id, text, parent = shown
        error, output = self._route_state.get(display_id, ("", ""))
        if entry.error:
            trace = user_traceback(entry.traceback or "", self.file_label)
            error = f"{route_error_text(entry)}\n{trace}".rstrip()
        if entry.output and entry.source == "server":
            output = route_output_text(entry)
        self._route_state[display_id] = (error, output)
        plain = "\n".join(part for part in (text, output, error) if part)
        data = {
            "text/plain": plain,
            "text/html": f"<pre>{html.escape(text)}"
            + (f"\n{html.escape(output)}" if output else "")
            + (f'\n<span style="color:#c00">{html.escape(error)}</span>' if error else "")
            + "</pre>",
        }
        self._show_in_cell(parent, data, display_id, update=True)

    def file_label(self, filename: str) -> str | None:
        """ "Cell In[3]" for a notebook cell's file, else None."""
        try:
            named = self.shell.compile.format_code_name(filename)
        except Exception:
            return None
        return f"{named[0]} {named[1]}" if named else None

    # -- %http ------------------------------------------------------------------
    @no_var_expand  # expanded by _expand: IPython's $name pass is quadratic in the line
    @line_cell_magic
    def http(self, line: str, cell: str | None = None) -> HttpResponse:
        """Send a request to the kernel's app in-process and show the response.

        Usage::

            %http [-v] [-f] [-s] METHOD PATH[?QUERY] [JSON BODY]

            %%http [-v] [-f] [-s] METHOD PATH[?QUERY]
            Header-Name: value
            Other-Header: value

            {"the": "body"}

        The request goes through the whole ASGI stack of the app bound to
        ``app`` (middleware, dependencies, exception handlers, lifespan) with no
        server and no network. The value is the response (``.status_code``,
        ``.headers``, ``.json()``, ``.text``); a 422 is shown as a table of
        location, message and input.

        In ``%%http``, header lines come first, then a blank line, then the
        body (JSON unless a Content-Type header says otherwise). A cell whose
        first line is not a header is all body. ``{name}`` in the magic line and
        in header lines is replaced by the notebook variable; the body is sent
        as written. As in browsers and curl, a header value may not hold CR, LF,
        NUL or other control characters (tab aside), and other text is sent as
        UTF-8; the same rule applies in-process and with --server.

        Options:
          -v, --verbose  also show the response headers
          -f, --form     the body is form fields, one ``name=value`` a line, and
                         files as ``name@path/to/file`` (sent as multipart)
          -s, --server   send it to the live server over HTTP instead

        Examples::

            %http GET /items/42?q=shoes

            r = %http POST /items {"name": "Lamp", "price": 12.5}
            assert r.status_code == 201, r.text

            %%http PUT /items/42
            Authorization: Bearer {token}

            {"name": "Lamp", "price": 10}
        """
        with user_errors():
            if cell is None:
                call = parse_http_line(self._expand(line))
            else:
                call = parse_http_cell(self._expand(line), cell, expand=self._expand)
            kwargs = call.request_kwargs()
            if call.server:
                client = self._server_client()
            else:
                self.session.bind_app()
                client = self.session.client
        caught: list[LogEntry] = []

        def catch(entry: LogEntry) -> None:
            if entry.source == "in-process" and entry.traceback:
                caught.append(entry)

        listeners = self.session.runner.listeners
        listeners.append(catch)
        try:
            response = client.request(**kwargs)
        except (httpx2.InvalidURL, httpx2.UnsupportedProtocol, httpx2.LocalProtocolError) as exc:
            msg = f"cannot send {call.method} {call.url!r}: {error_line(exc)}; fix the path"
            raise UsageError(msg) from None
        except httpx2.TransportError as exc:  # only over HTTP (--server)
            msg = f"the live server did not answer ({error_line(exc)}); check %nbapi status"
            raise UsageError(msg) from None
        finally:
            listeners.remove(catch)
        error = ""
        if caught and not call.server:
            error = user_traceback(caught[-1].traceback or "", self.file_label)
        return HttpResponse(response, verbose=call.verbose, error=error)

    def _expand(self, text: str) -> str:
        """``{name}`` (any expression) from the notebook namespace, as IPython expands a
        magic line, all or nothing. Linear in the text: a megabyte body on the line is
        fine (IPython's own pass, which also does ``$name``, takes quadratic time)."""
        try:
            return _FORMATTER.vformat(text, args=[], kwargs=self.shell.user_ns)
        except Exception:  # as IPython: a line that does not format is used as written
            return text

    def _server_client(self) -> Any:
        server = self.session.running_server()
        if server is None:
            raise UsageError(f"{NOT_RUNNING}, or drop --server")
        return server.client()

    # -- %nbapi -------------------------------------------------------------------
    @line_magic
    def nbapi(self, line: str) -> Any:
        """Manage nbapi: the live server, the explorer widgets, export, contracts.

        Usage::

            %nbapi routes                   routes of the kernel app, with their cells' functions
            %nbapi remove METHOD PATH       take a route out of the app, however it was made
            %nbapi serve [--port N] [--host H]   serve the app over HTTP from this kernel
            %nbapi stop | restart | status  control the live server
            %nbapi log [--errors] [--full]   recent requests, handler errors with tracebacks
            %nbapi explorer                 live view of every operation
            %nbapi try [METHOD PATH]        request builder for an operation
            %nbapi export [DIR] [--saved-outputs] [--force]
                                            write app.py, test_app.py, requirements.txt
                                            and README.md, expecting what a fresh run gives
            %nbapi fuzz [METHOD PATH] [--examples N] [--seed N] [--checks NAME,...] [--stateful]
                                            property-based tests from the app's OpenAPI, in-process;
                                            %nbapi fuzz --help lists the checks
            %nbapi checkpoint [NAME]        remember the app's operations as they are now
            %nbapi diff [NAME | FILE]       every change since a checkpoint (default: the
                                            last one, else the session) or an OpenAPI file
            %nbapi check CONTRACT           does the app implement this OpenAPI file?

        Options are set with ``%config NbAPI.<option> = value``; see
        ``%config NbAPI`` for the list (autostart, host, port, public_url, private,
        breaking_changes, response_enum_added).

        Examples::

            %nbapi serve --port 8001
            %nbapi status
            %nbapi try GET /items/{item_id}
            %nbapi checkpoint v1
            %nbapi diff v1
            %nbapi check contracts/todo.json
        """
        with user_errors():
            return run_line(self.session, line)


def route_output_text(entry: LogEntry, lines: int = 20) -> str:
    """The last lines a handler printed, for the display of the route's cell."""
    rows = entry.output.rstrip("\n").splitlines()
    more = f" (last {lines} of {len(rows)} lines)" if len(rows) > lines else ""
    head = f"output of {entry.method} {entry.path}{more}:"
    return "\n".join([head, *("  " + row for row in rows[-lines:])])


# -- the extension hooks --------------------------------------------------------
_loaded: dict[int, tuple[NbAPIMagics, NbAPI]] = {}
_KEPT = "_nbapi_kept"  # the shell attribute that keeps route ownership across reloads


def _events(magics: NbAPIMagics) -> list[tuple[str, Callable[..., None]]]:
    return [
        ("pre_execute", magics.pre_execute),
        ("pre_run_cell", magics.pre_run_cell),
        ("post_execute", magics.post_execute),
        ("post_run_cell", magics.post_run_cell),
    ]


def load(shell: Any) -> None:
    if id(shell) in _loaded:
        return
    section: Any = shell.config.get("NbAPI", {})
    for name, why in invalid_options(section).items():
        # A value %config refused stays in the shell's config; it must not stop the load.
        del section[name]
        print(f"nbapi warning: ignored NbAPI.{name}: {why}", file=sys.stderr)
    config = NbAPI(parent=shell)
    session = Session(shell.user_ns, config)
    magics = NbAPIMagics(shell, session)
    # Which cell owns which route outlives the extension (kept on the shell): after
    # %reload_ext, re-running a %%route cell replaces its route instead of adding one.
    kept = getattr(shell, _KEPT, None)
    if isinstance(kept, dict) and {"registry", "route_displays"} <= kept.keys():
        session.registry = kept["registry"]
        magics.route_displays = kept["route_displays"]
    else:
        setattr(
            shell, _KEPT, {"registry": session.registry, "route_displays": magics.route_displays}
        )
    shell.register_magics(magics)
    shell.configurables.append(config)
    for event, callback in _events(magics):
        shell.events.register(event, callback)
    session.file_label = magics.file_label
    session.runner.listeners.append(magics.on_request)
    atexit.register(session.close)
    _loaded[id(shell)] = (magics, config)
    set_current(session)


def unload(shell: Any) -> None:
    entry = _loaded.pop(id(shell), None)
    if entry is None:
        return
    magics, config = entry
    for event, callback in _events(magics):
        if callback in shell.events.callbacks[event]:
            shell.events.unregister(event, callback)
    for kind in ("line", "cell"):
        for name in magics.magics[kind]:
            shell.magics_manager.magics[kind].pop(name, None)
    shell.magics_manager.registry.pop(type(magics).__name__, None)
    if config in shell.configurables:
        shell.configurables.remove(config)
    atexit.unregister(magics.session.close)
    magics.session.close()
    set_current(None)
