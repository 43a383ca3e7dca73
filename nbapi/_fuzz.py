"""``%nbapi fuzz``: property-based tests of the kernel app's OpenAPI, sent in-process.

Schemathesis generates requests from ``app.openapi()`` (Hypothesis strategies, one
operation at a time) and judges the responses with its checks; every request goes
through nbapi's runner, as ``%http`` does (no server, no socket). Hypothesis shrinks
each failure to the smallest request that still fails; one finding is kept per
operation and kind of failure (a check, and for a server error its exception type).

This is the only module that knows Schemathesis (imported lazily: nbapi works
without it); an upgrade touches this file.
"""

from __future__ import annotations

import copy
import datetime
import json
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2

from ._client import BASE_URL, HttpCall, HttpResponse, InProcessTransport, format_table
from ._errors import UserError
from ._runner import LogEntry

if TYPE_CHECKING:
    from ._session import Session

# name -> what it finds; the names are Schemathesis' own, as its CLI's --checks takes them.
CHECKS: dict[str, str] = {
    "not_a_server_error": "5xx responses, FastAPI's response-validation errors included",
    "status_code_conformance": "status codes the operation does not document",
    "content_type_conformance": "content types the operation does not document",
    "response_headers_conformance": "response headers missing or not matching their schema",
    "response_schema_conformance": "bodies that do not match their response schema",
    "negative_data_rejection": "invalid requests the app accepts (sends invalid data too)",
    "positive_data_acceptance": "valid requests the app rejects",
    "use_after_free": "a deleted resource still answers (--stateful only)",
    "ensure_resource_availability": "a created resource cannot be read (--stateful only)",
}
DEFAULT_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
STATEFUL_CHECKS = ("use_after_free", "ensure_resource_availability")
DEFAULT_EXAMPLES = 100  # as Schemathesis; a 10-operation app takes seconds (benchmarks)
MAX_EXAMPLES = 100_000
STATEFUL_STEPS = 10
# Headers Schemathesis adds to every request; the reproducing request leaves them out.
_TRANSPORT_HEADERS = {"user-agent", "accept-encoding", "accept", "connection"}
_FUZZ_MIME = "application/vnd.nbapi.fuzz+json"
USAGE = "%nbapi fuzz [METHOD PATH] [--examples N] [--seed N] [--checks NAME,...] [--stateful]"


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
                f"usage: {USAGE}",
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


class FuzzError(UserError):
    """Bad ``%nbapi fuzz`` arguments, or no Schemathesis to run it with."""


# -- arguments ---------------------------------------------------------------------------
@dataclass
class FuzzOptions:
    method: str | None = None
    path: str | None = None
    examples: int = DEFAULT_EXAMPLES
    seed: int | None = None
    checks: tuple[str, ...] = DEFAULT_CHECKS
    stateful: bool = False


def _number(flag: str, value: str | None, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        msg = f"{flag} {value!r} is not a number from {low} to {high}; e.g. {flag} {max(low, 20)}"
        raise FuzzError(msg)
    return number


def _checks(value: str | None) -> tuple[str, ...]:
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    if names == ["all"]:
        return tuple(CHECKS)
    known = ", ".join(CHECKS)
    if not names:
        raise FuzzError(f"--checks needs check names; use all, or some of {known}")
    for name in names:
        if name not in CHECKS:
            raise FuzzError(f"unknown check {name!r}; use all, or some of {known}")
    return tuple(dict.fromkeys(names))


def parse_args(argv: Sequence[str]) -> FuzzOptions:
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
            raise FuzzError(f"unknown option {word!r}; usage: {USAGE}")
        else:
            words.append(word)
    if len(words) == 1:
        options.path = words[0]
    elif len(words) == 2:
        options.method, options.path = words[0].upper(), words[1]
    elif words:
        msg = f"%nbapi fuzz takes one operation, got {' '.join(words)!r}; usage: {USAGE}"
        raise FuzzError(msg)
    return options


# -- findings ----------------------------------------------------------------------------
@dataclass
class SentRequest:
    """A request as it was sent: the path with its query, headers the case set, the body."""

    method: str
    url: str  # path and query, e.g. "/items/0?q="
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def body_text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def is_json(self) -> bool:
        types = [v for n, v in self.headers if n.lower() == "content-type"]
        return bool(types) and types[0].split(";")[0].strip() == "application/json"

    @property
    def http(self) -> str:
        """An ``%http`` line, or an ``%%http`` cell when there are headers or a body."""
        json_body = self.is_json()
        headers = [
            (n, v) for n, v in self.headers if not (json_body and n.lower() == "content-type")
        ]
        if not self.body and not headers:
            return f"%http {self.method} {self.url}"
        if self.is_json() and self.body:
            try:  # %%http reads a body as JSON unless a Content-Type says otherwise
                json.loads(self.body)
            except ValueError:
                headers = list(self.headers)
        lines = [f"%%http {self.method} {self.url}", *(f"{n}: {v}" for n, v in headers)]
        return "\n".join([*lines, "", self.body_text()] if self.body else lines)

    @property
    def curl(self) -> str:
        import shlex

        parts = ["curl", "-X", self.method, shlex.quote(f"http://127.0.0.1:8000{self.url}")]
        for name, value in self.headers:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.body:
            parts += ["-d", shlex.quote(self.body_text())]
        return " ".join(parts)

    def to_httpx(self) -> httpx2.Request:
        return httpx2.Request(
            self.method, BASE_URL + self.url, headers=self.headers, content=self.body or None
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "method": self.method,
            "url": self.url,
            "headers": [list(pair) for pair in self.headers],
        }
        try:
            data["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:  # kept exactly, for the exported test
            data["body_hex"] = self.body.hex()
        return data


@dataclass
class Finding:
    """One failure, with the smallest request Hypothesis found for it."""

    operation: str  # "GET /items/{item_id}"
    kind: str  # the check that failed: "not_a_server_error", ...
    title: str  # Schemathesis' title: "Server error", "Undocumented HTTP status code", ...
    message: str
    status_code: int
    request: SentRequest
    error: str | None = None  # "ZeroDivisionError: division by zero", for a server error
    traceback: str | None = None  # the handler's frames only
    session: Any = field(default=None, repr=False, compare=False)

    @property
    def http(self) -> str:
        """The reproducing request as an ``%%http`` cell (or ``%http`` line)."""
        return self.request.http

    @property
    def curl(self) -> str:
        return self.request.curl

    def replay(self) -> HttpResponse:
        """Send the request again, in-process; the response as ``%http`` shows it."""
        from ._session import current_session

        session = self.session if self.session is not None else current_session()
        return HttpResponse(_exchange(InProcessTransport(session.runner), self.request))

    def detail(self) -> str:
        lines = [f"{self.operation}: {self.title} ({self.kind}, HTTP {self.status_code})"]
        lines += [f"  {line}" for line in self.message.splitlines() if line.strip()]
        if self.error:
            lines += [f"  {line}" for line in _error_lines(self.error)]
        if self.traceback:
            lines.append("  in your code:")
            lines += [f"  {line}" for line in self.traceback.splitlines()]
        lines.append("  request:")
        lines += [f"    {line}".rstrip() for line in self.http.splitlines()]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "kind": self.kind,
            "status_code": self.status_code,
            "request": self.request.as_dict(),
        }

    def __repr__(self) -> str:
        return self.detail()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.detail())


@dataclass
class FuzzReport:
    """What ``%nbapi fuzz`` returns: iterate for the findings; ``.ok`` when there are none."""

    findings: list[Finding]
    operations: list[str]
    requests: int
    seed: int
    examples: int
    checks: tuple[str, ...]
    errors: list[str] = field(default_factory=list)  # operations that could not be tested
    interrupted: bool = False

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __getitem__(self, index: int) -> Finding:
        return self.findings[index]

    @property
    def ok(self) -> bool:
        return not self.findings and not self.errors and not self.interrupted

    def text(self) -> str:
        ops = len(self.operations)
        head = (
            f"nbapi fuzz: {ops} operation{'s' * (ops != 1)}, {self.requests} requests, "
            f"seed {self.seed}"
        )
        if self.interrupted:
            head += " (interrupted: findings so far)"
        count = len(self.findings)
        summary = f"{count} finding{'s' * (count != 1)}" if count else "no findings"
        lines = [f"{head}: {summary}"]
        if self.findings:
            rows = [
                (f.operation, f.kind, str(f.status_code), f.http.splitlines()[0])
                for f in self.findings
            ]
            lines += ["", format_table(("operation", "check", "status", "request"), rows)]
            for number, finding in enumerate(self.findings, 1):
                lines += ["", f"[{number}] {finding.detail()}"]
        lines += [f"not tested: {error}" for error in self.errors]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def data(self) -> dict[str, Any]:
        """What the notebook keeps for ``nbapi export``: each finding's request and status."""
        return {"version": 1, "findings": [finding.as_dict() for finding in self.findings]}

    def widget(self) -> Any:
        from ._findings import FindingsWidget

        return FindingsWidget(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if self.findings and _in_kernel():
            bundle.update(self.widget()._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.text()
        bundle[_FUZZ_MIME] = self.data()
        return bundle


def saved_findings(outputs: Sequence[Any]) -> list[tuple[HttpCall, int]]:
    """Each finding a notebook cell's saved outputs keep: its request as ``%http`` and status.

    For ``nbapi export``; a request whose body is not text is left out.
    """
    found: list[tuple[HttpCall, int]] = []
    for output in outputs:
        data = output.get("data", {}).get(_FUZZ_MIME) if isinstance(output, dict) else None
        for finding in data.get("findings", []) if isinstance(data, dict) else []:
            request = finding.get("request", {})
            if "body" not in request:
                continue
            headers = [(str(n), str(v)) for n, v in request.get("headers", [])]
            sent = SentRequest(request["method"], request["url"], headers, request["body"].encode())
            if sent.is_json() and sent.body:
                try:  # as %%http sends it: a JSON body without its Content-Type line
                    json.loads(sent.body)
                    headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
                except ValueError:
                    pass
            call = HttpCall(sent.method, sent.url, headers=headers, body=request["body"])
            found.append((call, int(finding["status_code"])))
    return found


def _in_kernel() -> bool:
    import sys

    kernel = sys.modules.get("ipykernel.kernelbase")
    return kernel is not None and bool(kernel.Kernel.initialized())


# -- running -----------------------------------------------------------------------------
def _schemathesis() -> Any:
    try:
        import schemathesis
    except ImportError:
        msg = "%nbapi fuzz needs Schemathesis; install it with pip install nbapi[fuzz]"
        raise FuzzError(msg) from None
    return schemathesis


def _exchange(transport: InProcessTransport, sent: SentRequest) -> httpx2.Response:
    started = time.perf_counter()
    response = transport.handle_request(sent.to_httpx())
    response.read()
    # Schemathesis' checks read .elapsed, which httpx sets only in its own send pipeline.
    response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
    return response


class _Sender:
    """Sends Schemathesis cases through nbapi's runner and keeps what the runner logged."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.transport = InProcessTransport(session.runner)
        self.entries: list[LogEntry] = []
        self.count = 0

    def listen(self, entry: LogEntry) -> None:
        if entry.source == "in-process" and entry.error:
            self.entries.append(entry)

    def request_of(self, case: Any) -> SentRequest:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL)
        own = {name.lower() for name in (case.headers or {})}
        headers = [
            (str(n), str(v))
            for n, v in kwargs.get("headers", {}).items()
            if n.lower() in own or n.lower() == "content-type"
        ]
        cookies = kwargs.get("cookies") or {}
        if cookies:
            headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items())))
        params = {k: v for k, v in (kwargs.get("params") or {}).items() if v is not None}
        request = httpx2.Request(
            kwargs["method"],
            kwargs["url"],
            params=params or None,
            headers=headers,
            json=kwargs.get("json"),
            data=kwargs["data"] if isinstance(kwargs.get("data"), dict) else None,
            content=kwargs["data"] if isinstance(kwargs.get("data"), (bytes, str)) else None,
            files=kwargs.get("files"),
        )
        body = request.read()
        if kwargs.get("json") is not None or body:
            kind = request.headers.get("content-type")
            if kind and not any(n.lower() == "content-type" for n, _ in headers):
                headers.append(("Content-Type", kind))
        url = request.url.raw_path.decode("ascii")
        return SentRequest(request.method, url, headers, body)

    def send(self, sent: SentRequest) -> tuple[httpx2.Response, LogEntry | None]:
        before = len(self.entries)
        response = _exchange(self.transport, sent)
        self.count += 1
        entry = self.entries[-1] if len(self.entries) > before else None
        return response, entry


def _operations(schema: Any, options: FuzzOptions) -> list[Any]:
    operations = [result.ok() for result in schema.get_all_operations()]
    if options.path is None:
        return operations
    matches = [op for op in operations if op.path == options.path]
    if options.method is not None:
        matches = [op for op in matches if op.method.upper() == options.method]
    if len(matches) == 1:
        return matches
    labels = [op.label for op in operations]
    if not matches:
        wanted = f"{options.method} {options.path}" if options.method else options.path
        known = ", ".join(labels[:8]) or "none yet"
        raise FuzzError(f"%nbapi fuzz: no operation {wanted!r}; use one of {known}")
    methods = ", ".join(op.method.upper() for op in matches)
    msg = (
        f"%nbapi fuzz {options.path!r} needs a method (methods on it: {methods}); "
        f"e.g. %nbapi fuzz {matches[0].method.upper()} {options.path}"
    )
    raise FuzzError(msg)


class _Found(Exception):  # what the test raises, for Hypothesis to shrink
    finding: Finding


_KINDS: dict[str, type[_Found]] = {}


def _found_class(key: str) -> type[_Found]:
    # Hypothesis tells failures apart by exception type: one class per kind of finding
    # makes it shrink each kind separately instead of keeping only the first.
    if key not in _KINDS:
        _KINDS[key] = type(f"Found_{len(_KINDS)}", (_Found,), {})
    return _KINDS[key]


class _Judge:
    """Runs the chosen checks on one response; returns the first failure as a Finding."""

    def __init__(self, session: Session, checks: Sequence[str]) -> None:
        from schemathesis.checks import CHECKS as REGISTRY
        from schemathesis.checks import load_all_checks

        load_all_checks()
        self.session = session
        self.checks = [(name, REGISTRY.get_one(name)) for name in checks]
        self.functions = [check for _, check in self.checks]

    def judge(
        self,
        case: Any,
        sent: SentRequest,
        response: httpx2.Response,
        entry: LogEntry | None,
        recorder: Any = None,
    ) -> Finding | None:
        import schemathesis
        from schemathesis.errors import FailureGroup

        wrapped = schemathesis.Response.from_any(response)
        try:  # one pass over every check: most responses pass them all
            case.validate_response(wrapped, checks=self.functions, recorder=recorder)
        except FailureGroup:
            pass
        else:
            return None
        for name, check in self.checks:  # which check failed first, in the checks' order
            if name != "not_a_server_error" and response.status_code >= 500:
                continue  # a server error's status, type and body follow from the error
            try:
                case.validate_response(wrapped, checks=[check], recorder=recorder)
            except FailureGroup as group:
                failure = group.exceptions[0]
                return self._finding(case, name, failure, sent, response, entry)
        return None

    def _finding(
        self,
        case: Any,
        name: str,
        failure: Any,
        sent: SentRequest,
        response: httpx2.Response,
        entry: LogEntry | None,
    ) -> Finding:
        from ._server import user_traceback

        trace = None
        if entry is not None and entry.traceback:
            text = user_traceback(entry.traceback, self.session.file_label)
            trace = "\n".join(_frames(text)) or None
        return Finding(
            operation=f"{case.operation.method.upper()} {case.operation.path}",
            kind=name,
            title=str(failure.title),
            message=_message(failure, response),
            status_code=response.status_code,
            request=sent,
            error=entry.error if entry is not None else None,
            traceback=trace,
            session=self.session,
        )


_FRAME_LINE = re.compile(r"^  (File \"[^\"]+\"|Cell In\[\d+\]), line \d+, in ")


def _frames(text: str) -> list[str]:
    """The frame lines (and their source lines) of a traceback, without its messages."""
    out: list[str] = []
    in_frame = False
    for line in text.splitlines():
        if _FRAME_LINE.match(line):
            in_frame = True
            out.append(line)
        elif in_frame and line.startswith("    ") and not _FRAME_LINE.match(line.strip()):
            out.append(line)
        else:
            in_frame = False
    return out


def _error_lines(error: str) -> list[str]:
    """The error's first paragraph (FastAPI appends where the endpoint is; the frames say it)."""
    lines: list[str] = []
    for line in error.splitlines():
        if not line.strip():
            break
        lines.append(line.rstrip())
    return lines[:6]


def _message(failure: Any, response: httpx2.Response) -> str:
    text = str(getattr(failure, "message", "") or "").strip()
    if response.status_code >= 500:
        return ""  # the error line and traceback say it better
    return "\n".join(line.rstrip() for line in text.splitlines()[:6])


def _settings(options: FuzzOptions, stateful: bool = False) -> Any:
    import hypothesis

    return hypothesis.settings(
        max_examples=options.examples,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
        verbosity=hypothesis.Verbosity.quiet,
        stateful_step_count=STATEFUL_STEPS,
    )


def _flatten(exc: BaseException) -> list[BaseException]:
    children = getattr(exc, "exceptions", None)  # an exception group (3.10: the backport)
    if isinstance(children, tuple):
        return [inner for child in children for inner in _flatten(child)]
    return [exc]


class _Run:
    """One ``%nbapi fuzz``: every chosen operation, then (on request) the stateful phase."""

    def __init__(
        self,
        session: Session,
        options: FuzzOptions,
        progress: Callable[[int, int, int, int], None] | None = None,
    ) -> None:
        self.session = session
        self.options = options
        self.progress = progress
        self.sender = _Sender(session)
        self.findings: list[Finding] = []
        self.errors: list[str] = []
        self.seen: dict[str, Finding] = {}  # the latest (smallest so far) of each kind

    def _test_operation(self, operation: Any, mode: Any, judge: _Judge, seed: int) -> None:
        import hypothesis

        sender, seen = self.sender, self.seen
        reject = _unsendable_errors()

        @hypothesis.seed(seed)
        @_settings(self.options)
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def test(case: Any) -> None:
            try:
                sent = sender.request_of(case)
            except reject:
                hypothesis.reject()
            response, entry = sender.send(sent)
            finding = judge.judge(case, sent, response, entry)
            if finding is not None:
                error_type = (finding.error or "").split(":")[0]
                key = f"{finding.operation} {finding.kind} {error_type}"
                seen[key] = finding
                error = _found_class(key)(key)
                error.finding = finding
                raise error

        from hypothesis.reporting import with_reporter

        with with_reporter(lambda *_: None):
            test()

    def operation(self, operation: Any, modes: Sequence[Any], judge: _Judge, seed: int) -> None:
        self.seen = {}
        found: dict[str, Finding] = {}
        try:
            for mode in modes:
                try:
                    self._test_operation(operation, mode, judge, seed)
                except Exception as exc:
                    for inner in _flatten(exc):
                        if isinstance(inner, _Found):
                            found[str(inner)] = inner.finding
                        elif not isinstance(inner, AssertionError):
                            self.errors.append(f"{operation.label}: {_one_line(inner)}")
                            break
        except KeyboardInterrupt:
            # Keep what was found: the smallest request of each kind found so far.
            self.findings.extend(self._ordered({**self.seen, **found}))
            raise
        self.findings.extend(self._ordered(found))

    def _ordered(self, found: dict[str, Finding]) -> list[Finding]:
        order = list(CHECKS)
        return sorted(found.values(), key=lambda f: (order.index(f.kind), f.error or ""))

    def stateful(self, schema: Any, judge: _Judge, seed: int) -> None:
        import hypothesis
        import schemathesis
        from hypothesis.stateful import run_state_machine_as_test

        sender, seen = self.sender, self.seen
        seen.clear()
        base = schema.as_state_machine()

        class Machine(base):  # type: ignore[misc, valid-type]
            def call(self, case: Any, **kwargs: Any) -> Any:
                sent = sender.request_of(case)
                response, entry = sender.send(sent)
                self._nbapi_last = (sent, response, entry)
                return schemathesis.Response.from_any(response)

            def validate_response(self, response: Any, case: Any, *args: Any, **kw: Any) -> None:
                sent, raw, entry = self._nbapi_last
                finding = judge.judge(case, sent, raw, entry, getattr(self, "recorder", None))
                if finding is not None:
                    key = f"stateful {finding.operation} {finding.kind}"
                    seen[key] = finding
                    error = _found_class(key)(key)
                    error.finding = finding
                    raise error

        machine = hypothesis.seed(seed)(Machine)
        try:
            from hypothesis.reporting import with_reporter

            with with_reporter(lambda *_: None):
                run_state_machine_as_test(machine, settings=_settings(self.options))
        except Exception as exc:
            for inner in _flatten(exc):
                if isinstance(inner, _Found) and inner.finding not in self.findings:
                    self.findings.append(inner.finding)
                elif type(inner).__name__ == "NoLinksFound":
                    self.errors.append(
                        "--stateful: the OpenAPI has no links to follow; add them to a response, "
                        'e.g. responses={201: {"links": {...}}}'
                    )
                    break
                elif not isinstance(inner, _Found | AssertionError):
                    # The app's data changed under Hypothesis (it replays sequences to shrink
                    # them): keep the smallest failing request it saw.
                    found = [f for f in seen.values() if f not in self.findings]
                    self.findings.extend(found)
                    if not found:
                        self.errors.append(f"stateful: {_one_line(inner)}")
                    break


def _unsendable_errors() -> tuple[type[BaseException], ...]:
    from schemathesis.core.errors import SerializationNotPossible

    # Requests no client could send (a header value httpx refuses, ...): Hypothesis draws again.
    return (SerializationNotPossible, UnicodeError, httpx2.InvalidURL, ValueError, TypeError)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_fuzz(
    session: Session,
    options: FuzzOptions,
    progress: Callable[[int, int, int, int], None] | None = None,
) -> FuzzReport:
    """Fuzz the kernel's app; ``progress(operations done, operations, requests, findings)``."""
    schemathesis = _schemathesis()
    app = session.current_app()
    if app is None:
        raise FuzzError("there is no app to fuzz yet; run a %%route cell first")
    try:
        schema = schemathesis.openapi.from_dict(copy.deepcopy(app.openapi()))
    except Exception as exc:
        msg = f"cannot read the app's OpenAPI for fuzzing ({_one_line(exc)}); check /openapi.json"
        raise FuzzError(msg) from None
    operations = _operations(schema, options)
    if not operations:
        raise FuzzError("the app has no operations in its OpenAPI yet; run a %%route cell first")
    checks = [name for name in options.checks if name not in STATEFUL_CHECKS or options.stateful]
    if options.stateful and options.checks == DEFAULT_CHECKS:
        checks += STATEFUL_CHECKS
    if not checks:
        raise FuzzError("--checks: those checks only run with --stateful; add --stateful")
    seed = options.seed if options.seed is not None else random.randrange(100_000)
    modes = [schemathesis.GenerationMode.POSITIVE]
    if "negative_data_rejection" in checks:
        modes.append(schemathesis.GenerationMode.NEGATIVE)
    run = _Run(session, options, progress)
    judge = _Judge(session, checks)
    session.runner.listeners.append(run.sender.listen)
    interrupted = False
    try:
        for index, operation in enumerate(operations):
            if progress is not None:
                progress(index, len(operations), run.sender.count, len(run.findings))
            run.operation(operation, modes, judge, seed)
        if options.stateful:
            run.stateful(schema, judge, seed)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        session.runner.listeners.remove(run.sender.listen)
    if progress is not None:
        progress(len(operations), len(operations), run.sender.count, len(run.findings))
    return FuzzReport(
        findings=run.findings,
        operations=[op.label for op in operations],
        requests=run.sender.count,
        seed=seed,
        examples=options.examples,
        checks=tuple(checks),
        errors=run.errors,
        interrupted=interrupted,
    )


def fuzz_command(session: Session, argv: list[str]) -> FuzzReport | FuzzHelp:
    """``%nbapi fuzz [METHOD PATH] [--examples N] [--seed N] [--checks NAME,...] [--stateful]``."""
    if "--help" in argv or "-h" in argv:
        return FuzzHelp()
    options = parse_args(argv)
    from ._findings import progress_display

    with progress_display() as progress:
        return run_fuzz(session, options, progress)


__all__ = [
    "CHECKS",
    "DEFAULT_CHECKS",
    "Finding",
    "FuzzError",
    "FuzzOptions",
    "FuzzReport",
    "SentRequest",
    "fuzz_command",
    "parse_args",
    "run_fuzz",
    "saved_findings",
]
