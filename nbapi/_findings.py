"""What ``%nbapi fuzz`` found: the findings, the report, and what the notebook keeps of them.

A ``Finding`` holds the smallest failing request (``SentRequest``), which check failed, the
status and, for a server error, the handler's frames; it replays itself in-process. The
``FuzzReport`` is a deterministic text table and, in Jupyter, a widget; its data in the
saved notebook (``FUZZ_MIME``) is what ``nbapi export`` turns into tests. No Schemathesis
here: reading findings back needs none.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2

from ._client import BASE_URL, HttpCall, HttpResponse, InProcessTransport, format_table

FUZZ_MIME = "application/vnd.nbapi.fuzz+json"


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

    def curl(self, base: str = "http://127.0.0.1:8000") -> str:
        """The request as a curl command line against the server at ``base``."""
        import shlex

        parts = ["curl", "-X", self.method, shlex.quote(f"{base.rstrip('/')}{self.url}")]
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
        """The request as curl, to the live server (nbapi's first port when none runs)."""
        server = self.session.running_server() if self.session is not None else None
        if server is not None:
            return self.request.curl(server.url)
        return self.request.curl()

    def replay(self) -> HttpResponse:
        """Send the request again, in-process; the response as ``%http`` shows it."""
        from ._session import current_session

        session = self.session if self.session is not None else current_session()
        return HttpResponse(exchange(InProcessTransport(session.runner), self.request))

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
        from ._fuzz_widgets import FindingsWidget

        return FindingsWidget(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if self.findings and in_kernel():
            bundle.update(self.widget()._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.text()
        bundle[FUZZ_MIME] = self.data()
        return bundle


def saved_findings(outputs: Sequence[Any]) -> list[tuple[HttpCall, int]]:
    """Each finding a notebook cell's saved outputs keep: its request as ``%http`` and status.

    For ``nbapi export``; a request whose body is not text is left out.
    """
    found: list[tuple[HttpCall, int]] = []
    for output in outputs:
        data = output.get("data", {}).get(FUZZ_MIME) if isinstance(output, dict) else None
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


def in_kernel() -> bool:
    """Whether this runs in an ipykernel (where widgets can show)."""
    kernel = sys.modules.get("ipykernel.kernelbase")
    return kernel is not None and bool(kernel.Kernel.initialized())


def exchange(transport: InProcessTransport, sent: SentRequest) -> httpx2.Response:
    started = time.perf_counter()
    response = transport.handle_request(sent.to_httpx())
    response.read()
    # Schemathesis' checks read .elapsed, which httpx sets only in its own send pipeline.
    response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
    return response


_FRAME_LINE = re.compile(r"^  (File \"[^\"]+\"|Cell In\[\d+\]), line \d+, in ")


def frames(text: str) -> list[str]:
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
