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
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2

from ._client import BASE_URL, InProcessTransport
from ._errors import UserError, error_line
from ._findings import Finding, FuzzReport, SentRequest, exchange, frames
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


# -- running -----------------------------------------------------------------------------
def _schemathesis() -> Any:
    try:
        import schemathesis
    except ImportError:
        msg = "%nbapi fuzz needs Schemathesis; install it with pip install nbapi[fuzz]"
        raise FuzzError(msg) from None
    return schemathesis


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
        response = exchange(self.transport, sent)
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
        from ._commands import user_traceback

        trace = None
        if entry is not None and entry.traceback:
            text = user_traceback(entry.traceback, self.session.file_label)
            trace = "\n".join(frames(text)) or None
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


def _message(failure: Any, response: httpx2.Response) -> str:
    text = str(getattr(failure, "message", "") or "").strip()
    if response.status_code >= 500:
        return ""  # the error line and traceback say it better
    return "\n".join(line.rstrip() for line in text.splitlines()[:6])


def _settings(options: FuzzOptions) -> Any:
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
                            self.errors.append(f"{operation.label}: {error_line(inner)}")
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
        from schemathesis.errors import NoLinksFound

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
                elif isinstance(inner, NoLinksFound):
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
                        self.errors.append(f"stateful: {error_line(inner)}")
                    break


def _unsendable_errors() -> tuple[type[BaseException], ...]:
    from schemathesis.errors import SerializationNotPossible

    # Requests no client could send (a header value httpx refuses, ...): Hypothesis draws again.
    return (SerializationNotPossible, UnicodeError, httpx2.InvalidURL, ValueError, TypeError)


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
        msg = f"cannot read the app's OpenAPI for fuzzing ({error_line(exc)}); check /openapi.json"
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


__all__ = [
    "CHECKS",
    "DEFAULT_CHECKS",
    "FuzzError",
    "FuzzOptions",
    "run_fuzz",
]
