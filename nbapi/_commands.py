"""The ``%nbapi`` command line: one grammar, one error style, one dispatch.

``parse(argv)`` reads a command line into a ``Call`` (the subcommand and its typed
arguments) or raises ``CommandError``: one line naming the bad value and the usage.
``run(session, argv)`` runs the call on the feature that owns it; heavy features
(schemathesis, ipywidgets, uvicorn) are imported on first use, so loading the
extension stays fast. The text views of ``log``, ``routes`` and ``remove`` live here.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import shlex
import sysconfig
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ._errors import UserError
from ._fuzz import CHECKS, DEFAULT_CHECKS, DEFAULT_EXAMPLES, MAX_EXAMPLES, FuzzOptions
from ._runner import LogEntry

if TYPE_CHECKING:
    from ._server import LiveServer
    from ._session import Session

# subcommand -> its usage, as %nbapi? and every error message show it
USAGES: dict[str, str] = {
    "routes": "%nbapi routes",
    "remove": "%nbapi remove METHOD PATH",
    "serve": "%nbapi serve [--port N] [--host H]",
    "stop": "%nbapi stop",
    "restart": "%nbapi restart [--port N] [--host H]",
    "status": "%nbapi status",
    "log": "%nbapi log [--full] [--errors] [-n N]",
    "explorer": "%nbapi explorer",
    "try": "%nbapi try [METHOD PATH]",
    "export": "%nbapi export [NOTEBOOK.ipynb] [DIR] [--saved-outputs] [--force]",
    "fuzz": "%nbapi fuzz [METHOD PATH] [--examples N] [--seed N] [--checks NAME,...] [--stateful]",
    "checkpoint": "%nbapi checkpoint [NAME]",
    "diff": "%nbapi diff [NAME | FILE]",
    "check": "%nbapi check CONTRACT",
}


class CommandError(UserError):
    """A ``%nbapi`` command line that does not parse."""


@dataclass(frozen=True)
class Call:
    """A parsed ``%nbapi`` line: the subcommand and its typed arguments."""

    command: str
    args: dict[str, Any] = field(default_factory=dict)


class _Parser(argparse.ArgumentParser):
    """argparse that raises one ``CommandError`` line instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        # "argument --port/-p: 'x' is not a port" -> "--port 'x' is not a port"
        message = re.sub(r"^argument (-?-?\w[\w-]*)(/\S+)?: ", r"\1 ", message)
        raise CommandError(f"{self.prog}: {message}; usage: {USAGES[self.prog.split()[-1]]}")

    def parse_all(self, argv: Sequence[str]) -> argparse.Namespace:
        args, extra = self.parse_known_intermixed_args(list(argv))
        if extra:
            self.error(f"unknown option {extra[0]!r}")
        return args


def port_number(text: str) -> int:
    """An argparse type: a TCP port."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return int(text)


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def add_export_options(parser: argparse.ArgumentParser) -> None:
    """``-o DIR``, ``--force``, ``--saved-outputs``: ``nbapi export`` and ``%nbapi export``
    read them alike (the magic also takes DIR as a second word, as it always has)."""
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory to write (default: NOTEBOOK-export next to the notebook)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace files in DIR even when they differ from what the last export wrote",
    )
    parser.add_argument(
        "--saved-outputs",
        action="store_true",
        help=(
            "take the expected responses from the saved outputs instead of a run of the "
            "notebook in a fresh kernel (warns when they are not from one clean run)"
        ),
    )


def _parser(command: str) -> _Parser:
    parser = _Parser(prog=f"%nbapi {command}", add_help=False)
    if command in ("serve", "restart"):
        parser.add_argument("--port", "-p", type=port_number, default=None)
        parser.add_argument("--host", default=None)
    elif command == "log":
        parser.add_argument("--full", action="store_true")
        parser.add_argument("--errors", action="store_true")
        parser.add_argument("-n", type=_count, default=20)
    elif command == "export":
        add_export_options(parser)
    parser.add_argument("words", nargs="*")
    return parser


def _words(command: str, words: list[str]) -> dict[str, Any]:
    """The positional arguments of ``command``, counted and named."""
    shown = " ".join(words)
    bad: str | None = None
    if command in ("routes", "stop", "status", "explorer") and words:
        bad = f"%nbapi {command} takes no arguments, got {shown!r}"
        if command == "explorer":
            bad += "; run %nbapi explorer"
    elif command in ("serve", "restart", "log") and words:
        bad = f"%nbapi {command}: unknown argument {words[0]!r}; usage: {USAGES[command]}"
    elif command == "remove" and len(words) != 2:
        bad = (
            f"cannot read {shown!r}; usage: {USAGES['remove']}, "
            "e.g. %nbapi remove GET /items/{item_id}"
        )
    elif command == "try" and len(words) > 2:
        bad = (
            f"%nbapi try takes METHOD PATH, got {shown!r}; "
            "quote nothing, e.g. %nbapi try GET /items/{item_id}"
        )
    elif command == "export" and len(words) > 2:
        bad = f"too many arguments {words!r}; use %nbapi export [NOTEBOOK.ipynb] [DIR]"
    elif command == "checkpoint" and len(words) > 1:
        bad = f"%nbapi checkpoint takes one NAME, got {shown!r}; e.g. %nbapi checkpoint v1"
    elif command == "diff" and len(words) > 1:
        bad = (
            f"%nbapi diff takes one checkpoint or file, got {shown!r}; "
            "e.g. %nbapi diff v1, or %nbapi diff openapi.json"
        )
    elif command == "check" and len(words) != 1:
        bad = "%nbapi check takes one OpenAPI file, e.g. %nbapi check contracts/todo.json"
    if bad is not None:
        raise CommandError(bad)
    return {"words": words} if words else {}


def _number(flag: str, value: str | None, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        msg = f"{flag} {value!r} is not a number from {low} to {high}; e.g. {flag} {max(low, 20)}"
        raise CommandError(msg)
    return number


def _checks(value: str | None) -> tuple[str, ...]:
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    if names == ["all"]:
        return tuple(CHECKS)
    known = ", ".join(CHECKS)
    if not names:
        raise CommandError(f"--checks needs check names; use all, or some of {known}")
    for name in names:
        if name not in CHECKS:
            raise CommandError(f"unknown check {name!r}; use all, or some of {known}")
    return tuple(dict.fromkeys(names))


def fuzz_options(argv: Sequence[str]) -> FuzzOptions:
    """``[METHOD PATH] [--examples N] [--seed N] [--checks NAME,...] [--stateful]``."""
    options = FuzzOptions()
    words: list[str] = []
    args = list(argv)
    while args:
        word = args.pop(0)
        flag, eq, inline = word.partition("=")
        if flag == "--stateful" and not eq:
            options.stateful = True
        elif flag in {"--examples", "-n", "--seed", "--checks", "-c"}:
            value = inline if eq else (args.pop(0) if args else None)
            if flag in {"--examples", "-n"}:
                options.examples = _number("--examples", value, 1, MAX_EXAMPLES)
            elif flag == "--seed":
                options.seed = _number("--seed", value, 0, 2**63 - 1)
            else:
                options.checks = _checks(value)
        elif word.startswith("-") and not word.startswith("/"):
            raise CommandError(f"unknown option {word!r}; usage: {USAGES['fuzz']}")
        else:
            words.append(word)
    if len(words) == 1:
        options.path = words[0]
    elif len(words) == 2:
        options.method, options.path = words[0].upper(), words[1]
    elif words:
        msg = f"%nbapi fuzz takes one operation, got {' '.join(words)!r}; usage: {USAGES['fuzz']}"
        raise CommandError(msg)
    return options


def split(line: str) -> list[str]:
    """The words of a ``%nbapi`` line, as a shell splits them."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise CommandError(f"cannot read {line!r}: {exc}; check its quotes") from None


def parse(argv: Sequence[str]) -> Call:
    """``argv`` (the words after ``%nbapi``; none means ``status``) as a ``Call``."""
    command, rest = (argv[0], list(argv[1:])) if argv else ("status", [])
    if command not in USAGES:
        known = ", ".join(USAGES)
        raise CommandError(f"unknown %nbapi command {command!r}; use one of {known}")
    if command == "fuzz":  # options as Schemathesis users write them (--examples=5, -n 5)
        if "--help" in rest or "-h" in rest:
            return Call("fuzz", {"show_help": True})
        return Call("fuzz", {"options": fuzz_options(rest)})
    options = vars(_parser(command).parse_all(rest))
    words = options.pop("words")
    return Call(command, {**options, **_words(command, words)})


def run_line(session: Session, line: str) -> Any:
    """Run one ``%nbapi`` line; return what to display (or None)."""
    return run(session, split(line))


def run(session: Session, argv: Sequence[str]) -> Any:
    """Run ``%nbapi`` with ``argv``; return what to display (or None)."""
    call = parse(argv)
    return _HANDLERS[call.command](session, **call.args)


# -- the live server -----------------------------------------------------------------------
def _start(session: Session, port: int | None = None, host: str | None = None) -> ServerView:
    from ._server import start_server

    server, new = start_server(session, port, host)
    return started_view(session, server) if new else status_view(session)


def autostart(session: Session) -> ServerView | None:
    """Start the server for the first route, unless ``NbAPI.autostart`` is False or it
    was started (or stopped) before; never raises: a failure is a one-line warning."""
    if not session.config.autostart or session.server is not None:
        return None
    try:
        return _start(session)
    except UserError as exc:
        session.say(f"nbapi warning: the live server did not start: {exc}")
        return None


def _serve(session: Session, port: int | None = None, host: str | None = None) -> ServerView:
    return _start(session, port, _host(host))


def _host(host: str | None) -> str | None:
    if host is not None and not host.strip():
        raise CommandError("--host '' is empty; use --host 127.0.0.1")
    return host


def _stop(session: Session) -> ServerView:
    server = session.server
    if server is None or not server.running:
        return ServerView(["nbapi server: not running"], [])
    server.stop()
    return ServerView([f"nbapi server: stopped; {server.url} is free"], [])


def _restart(session: Session, port: int | None = None, host: str | None = None) -> ServerView:
    host = _host(host)
    server = session.server
    if server is not None:
        if port is None and host is None:
            port, host = server.port, server.host
        if server.running:
            server.stop()
    return _start(session, port, host)


def _status(session: Session) -> ServerView:
    return status_view(session)


def _log(session: Session, full: bool = False, errors: bool = False, n: int = 20) -> LogView:
    entries = [e for e in session.runner.log if e.error or not errors]
    entries = entries[-n:] if n > 0 else []
    server = session.server
    messages = list(session.runner.lifespan_errors)
    messages += list(server.messages) if server is not None else []
    return LogView(entries, messages, session.file_label, full, errors)


# -- routes --------------------------------------------------------------------------------
def _routes(session: Session) -> RoutesView:
    from ._registry import route_rows

    app = session.app
    owned = {id(entry.route) for entry in session.registry.owned(app).values()}
    return RoutesView(route_rows(app.router.routes, owned))


def _remove(session: Session, words: list[str]) -> RemovedView:
    from ._registry import remove_route

    return RemovedView(remove_route(session.app, words[0], words[1]))


# -- widgets -------------------------------------------------------------------------------
def _explorer(session: Session) -> Any:
    from ._widgets import explorer

    return explorer(session)


def _try(session: Session, words: Sequence[str] = ()) -> Any:
    from ._widgets import request_builder, resolve_path

    if not words:
        return request_builder(session=session)
    if len(words) == 1:
        return request_builder(resolve_path(session, words[0]), words[0], session=session)
    return request_builder(words[0], words[1], session=session)


# -- export, fuzz, contracts ---------------------------------------------------------------
def _export(
    session: Any,
    words: Sequence[str] = (),
    output: Path | None = None,
    force: bool = False,
    saved_outputs: bool = False,
) -> Any:
    from ._export import ExportError, current_notebook, export_path

    paths = list(words)
    given = paths and paths[0].endswith(".ipynb")
    notebook = Path(paths.pop(0)) if given else current_notebook()
    if notebook is None:
        msg = (
            "cannot tell which notebook this kernel runs (no JPY_SESSION_NAME); "
            "use %nbapi export NOTEBOOK.ipynb [DIR]"
        )
        raise ExportError(msg)
    if paths and output is not None:
        msg = f"two directories, {paths[0]!r} and -o {str(output)!r}; give one"
        raise CommandError(msg)
    directory = paths[0] if paths else output
    history = session.namespace.get("_ih") if hasattr(session, "namespace") else None
    return export_path(notebook, directory, force=force, fresh=not saved_outputs, history=history)


class FuzzHelp:
    """``%nbapi fuzz --help``: the options and every check."""

    def __repr__(self) -> str:
        width = max(map(len, CHECKS))
        checks = [
            f"  {name.ljust(width)}  {text}{' (default)' if name in DEFAULT_CHECKS else ''}"
            for name, text in CHECKS.items()
        ]
        return "\n".join(
            [
                f"usage: {USAGES['fuzz']}",
                "Generates requests from the app's OpenAPI (Schemathesis) and sends them",
                "in-process, as %http does; each finding keeps the smallest failing request.",
                "Without METHOD PATH every operation is tested. Requests run your handlers: POST,",
                "PUT and DELETE operations change the app's data as any request would.",
                f"  --examples N   requests generated per operation (default {DEFAULT_EXAMPLES})",
                "  --seed N       the same seed on the same app gives the same findings",
                "  --checks A,B   checks to run, or all (default: those marked below)",
                "  --stateful     also run sequences that follow the schema's links (create, then",
                "                 read): this changes the app's in-memory data",
                "checks:",
                *checks,
            ]
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _fuzz(session: Session, options: Any = None, show_help: bool = False) -> Any:
    from ._fuzz import run_fuzz

    if show_help:
        return FuzzHelp()
    from ._fuzz_widgets import progress_display

    with progress_display() as progress:
        return run_fuzz(session, options, progress)


def _checkpoint(session: Session, words: Sequence[str] = ()) -> None:
    from ._checkpoints import checkpoint

    checkpoint(session, words[0] if words else None)


def _diff(session: Session, words: Sequence[str] = ()) -> Any:
    from ._checkpoints import diff

    return diff(session, words[0] if words else None)


def _check(session: Session, words: Sequence[str]) -> Any:
    from ._checkpoints import check

    return check(session, words[0])


_HANDLERS: dict[str, Callable[..., Any]] = {
    "routes": _routes,
    "remove": _remove,
    "serve": _serve,
    "stop": _stop,
    "restart": _restart,
    "status": _status,
    "log": _log,
    "explorer": _explorer,
    "try": _try,
    "export": _export,
    "fuzz": _fuzz,
    "checkpoint": _checkpoint,
    "diff": _diff,
    "check": _check,
}


# -- the live server's views ---------------------------------------------------------------
class ServerView:
    """The server's links or status: text lines, and clickable links in HTML."""

    def __init__(self, lines: list[str], links: list[tuple[str, str]]) -> None:
        self.lines = lines
        self.links = links

    def __repr__(self) -> str:
        return "\n".join(self.lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def _repr_html_(self) -> str:
        items = "".join(
            f'<li>{html.escape(label)}: <a href="{html.escape(url)}" target="_blank">'
            f"{html.escape(url)}</a></li>"
            for label, url in self.links
        )
        head = html.escape(self.lines[0]) if self.lines else ""
        rest = "".join(f"<div>{html.escape(line)}</div>" for line in self.lines[1:])
        if items:
            rest = "".join(
                f"<div>{html.escape(line)}</div>"
                for line in self.lines[1:]
                if not any(url in line for _, url in self.links)
            )
            return f"<div>{head}</div><ul>{items}</ul>{rest}"
        return f"<div>{head}</div>{rest}"


def _links(session: Session, server: LiveServer) -> list[tuple[str, str]]:
    from ._server import public_url

    base = public_url(session.config, server.host, server.port)
    links = [("API", base)]
    app = session.current_app()
    docs_url = app.docs_url if app is not None else "/docs"
    redoc_url = app.redoc_url if app is not None else "/redoc"
    if docs_url:
        links.append(("docs", base + docs_url.lstrip("/")))
    if redoc_url:
        links.append(("redoc", base + redoc_url.lstrip("/")))
    return links


def started_view(session: Session, server: LiveServer) -> ServerView:
    links = _links(session, server)
    lines = [f"nbapi: serving the kernel's app at {links[0][1]}"]
    lines += [f"  {label}: {url}" for label, url in links[1:]]
    return ServerView(lines, links)


def status_view(session: Session) -> ServerView:
    """``%nbapi status``: URL, state, requests served, errors."""
    from ._access import access_mode
    from ._server import public_url

    server = session.server
    if server is None:
        access = access_mode(session.config).describe()
        return ServerView(["nbapi server: not started; start it with %nbapi serve", access], [])
    base = public_url(session.config, server.host, server.port)
    if server.running:
        head = f"nbapi server: running at {base}"
        links = _links(session, server)
    elif server.state == "failed":
        head = f"nbapi server: failed ({server.failure}); start it again with %nbapi serve"
        links = []
    else:
        head = f"nbapi server: stopped (was at {base}); start it again with %nbapi serve"
        links = []
    access = access_mode(session.config, server.gate.detected).describe()
    if server.gate.refused:
        refused = server.gate.refused
        access += f"; refused {refused} connection{'s' * (refused != 1)} of other users"
    counts = f"requests served: {server.requests_served}, errors: {server.errors}"
    lines = [head, counts, access]
    return ServerView(lines, links)


# -- the other views -----------------------------------------------------------------------
class RoutesView:
    """``%nbapi routes``: a text table of the app's routes."""

    def __init__(self, rows: Sequence[tuple[str, ...]]) -> None:
        self.rows = rows

    def __repr__(self) -> str:
        from ._http import format_table

        return format_table(("method", "path", "name", "from"), self.rows)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class RemovedView:
    """What ``%nbapi remove`` did, one line per route."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def __repr__(self) -> str:
        return "\n".join(self.lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


# -- the request log -----------------------------------------------------------------------
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>.+)$')


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    dirs.add(str(Path(__file__).resolve().parent))
    dirs.add(str(Path(asyncio.__file__).resolve().parent.parent))
    return tuple(sorted(dirs))


def user_traceback(text: str, label: Callable[[str], str | None] | None = None) -> str:
    """``text`` (a formatted traceback) with only the user's frames.

    Frames in the standard library, site-packages (FastAPI, Starlette, anyio) and
    nbapi are dropped; ``label(filename)`` names notebook cells ("Cell In[3]").
    """
    libraries = _library_dirs()
    out: list[str] = []
    keep = True
    for line in text.splitlines():
        match = _FRAME.match(line)
        if match:
            filename = match["file"]
            name = label(filename) if label is not None else None
            resolved = str(Path(filename).resolve()) if filename.startswith("/") else filename
            keep = name is not None or not (
                resolved.startswith(libraries) or filename.startswith("<frozen")
            )
            if keep:
                where = name or f'File "{filename}"'
                out.append(f"  {where}, line {match['line']}, in {match['name']}")
            continue
        if line.startswith("    "):
            if keep:
                out.append(line)
            continue
        keep = True
        out.append(line)
    return "\n".join(out)


class LogView:
    """``%nbapi log``: recent requests (newest last), errors with their tracebacks."""

    def __init__(
        self,
        entries: Iterable[LogEntry],
        messages: Iterable[str],
        label: Callable[[str], str | None] | None = None,
        full: bool = False,
        errors: bool = False,
    ) -> None:
        self.entries = list(entries)
        self.messages = list(messages)
        self.label = label
        self.full = full
        self.errors = errors

    def __repr__(self) -> str:
        if not self.entries and self.errors:
            return "\n".join(["nbapi log: no handler errors", *self.messages])
        if not self.entries and not self.messages:
            return "nbapi log: no requests yet"
        lines = [f"nbapi log: {len(self.entries)} recent requests, newest last"]
        for entry in self.entries:
            lines.append(entry.line())
            if entry.output and self.full:
                lines.append("    output:")
                lines.extend("      " + row for row in entry.output.rstrip("\n").splitlines())
            if entry.traceback:
                text = entry.traceback if self.full else user_traceback(entry.traceback, self.label)
                lines.extend("    " + row for row in text.rstrip().splitlines())
        lines.extend(self.messages)
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def route_error_text(entry: LogEntry) -> str:
    """One line for the ``%%route`` cell whose handler failed."""
    return (
        f"last error: {entry.status or 500} {entry.method} {entry.path}: {entry.error} "
        "(traceback: %nbapi log)"
    )
