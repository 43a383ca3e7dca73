"""``%nbapi fuzz`` benchmarks (issue 15): every figure next to its baseline, in one run.

Run from the repository root::

    python benchmarks/fuzz_bench.py            # about 3 minutes
    python benchmarks/fuzz_bench.py --quick    # fewer examples and rounds

The app is ``benchmarks/fuzz_app.py`` (ten operations, a planted bug). Three drivers run the
same Hypothesis settings (seed, examples per operation, shrinking) and the same five default
checks, operation by operation:

- nbapi: ``run_fuzz``, what ``%nbapi fuzz`` runs: every request through nbapi's runner;
- Schemathesis over HTTP: its Python API (``as_strategy``, ``case.call_and_validate``)
  against a standalone ``python -m uvicorn benchmarks.fuzz_app:app`` on loopback;
- Schemathesis ASGI: the same, in-process through its own ASGI transport (``from_asgi``).

Requests per second is each driver's requests over its wall time; rounds alternate the
drivers (ABC, CBA, ...) and the ratio is the median of the per-round ratios. Every process
started here is stopped by its PID. Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import hypothesis  # noqa: E402
import requests  # noqa: E402
import schemathesis  # noqa: E402
from hypothesis.reporting import with_reporter  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402

from benchmarks import fuzz_app  # noqa: E402
from nbapi._fuzz import DEFAULT_CHECKS, DEFAULT_EXAMPLES, FuzzOptions, run_fuzz  # noqa: E402
from nbapi._session import Session  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


@contextmanager
def standalone_uvicorn(port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "uvicorn", "benchmarks.fuzz_app:app", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        wait_listening(port)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def reset_app() -> None:
    """The same data before every run, so every driver sees the same app."""
    fuzz_app.ITEMS.clear()
    fuzz_app.ITEMS[1] = fuzz_app.Item(name="lamp", price=12.5)
    fuzz_app.USERS.clear()


# -- drivers: each returns (requests, seconds, findings) ---------------------------------------
def nbapi_driver(seed: int, examples: int) -> tuple[int, float, int]:
    reset_app()
    session = Session({"app": fuzz_app.app}, say=lambda _: None)
    try:
        session.client.get("/health")  # the runner's loop and the app's lifespan are started
        started = time.perf_counter()
        report = run_fuzz(session, FuzzOptions(seed=seed, examples=examples))
        elapsed = time.perf_counter() - started
    finally:
        session.close()
    return report.requests, elapsed, len(report.findings)


def schemathesis_driver(
    schema: Any, call: Callable[[Any], Any], seed: int, examples: int
) -> tuple[int, float, int]:
    """Schemathesis' Python API, with the settings and checks ``%nbapi fuzz`` uses."""
    load_all_checks()
    checks = CHECKS.get_by_names(list(DEFAULT_CHECKS))
    count = [0]
    failed = 0
    settings = hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        print_blob=False,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
        verbosity=hypothesis.Verbosity.quiet,
    )
    reset_app()
    started = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.seed(seed)
        @settings
        @hypothesis.given(case=operation.as_strategy())
        def test(case: Any) -> None:
            count[0] += 1
            call(case).validate(case, checks)

        try:
            with with_reporter(lambda *_: None):
                test()
        except KeyboardInterrupt:
            raise
        except BaseException:  # Schemathesis' FailureGroup is a BaseExceptionGroup
            failed += 1
    return count[0], time.perf_counter() - started, failed


class _Caller:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def __call__(self, case: Any) -> _Caller:
        self.response = case.call(**self.kwargs)
        return self

    def validate(self, case: Any, checks: list[Any]) -> None:
        case.validate_response(self.response, checks=checks)


def http_driver(port: int, seed: int, examples: int) -> tuple[int, float, int]:
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
    with requests.Session() as session:
        caller = _Caller(base_url=f"http://127.0.0.1:{port}", session=session)
        return schemathesis_driver(schema, caller, seed, examples)


def asgi_driver(seed: int, examples: int) -> tuple[int, float, int]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app.app)
    return schemathesis_driver(schema, _Caller(), seed, examples)


# -- sections ------------------------------------------------------------------------------------
def throughput(rounds: int, examples: int) -> None:
    port = free_port()
    rates: dict[str, list[float]] = {"nbapi": [], "http": [], "asgi": []}
    totals: dict[str, list[tuple[int, int]]] = {name: [] for name in rates}
    with standalone_uvicorn(port):
        drivers: dict[str, Callable[[int], tuple[int, float, int]]] = {
            "nbapi": lambda seed: nbapi_driver(seed, examples),
            "http": lambda seed: http_driver(port, seed, examples),
            "asgi": lambda seed: asgi_driver(seed, examples),
        }
        for driver in drivers.values():  # warm-up: validators compiled, modules imported
            driver(rounds)
        for round_ in range(rounds):
            order = list(drivers) if round_ % 2 == 0 else list(reversed(drivers))
            for name in order:
                count, seconds, findings = drivers[name](round_)
                rates[name].append(count / seconds)
                totals[name].append((count, findings))
    print(f"\nRequests per second, {examples} examples per operation, 10 operations, ", end="")
    print(f"{rounds} rounds (seeds 0..{rounds - 1}):")
    labels = {
        "nbapi": "%nbapi fuzz (nbapi's runner, in-process)",
        "http": "Schemathesis -> standalone uvicorn, loopback HTTP",
        "asgi": "Schemathesis ASGI mode (in-process)",
    }
    for name, label in labels.items():
        median = statistics.median(rates[name])
        requests_ = statistics.median(c for c, _ in totals[name])
        print(f"  {label:52} {median:8.0f} req/s  (median {requests_:.0f} requests per run)")
    for other in ("http", "asgi"):
        ratios = [a / b for a, b in zip(rates["nbapi"], rates[other], strict=True)]
        print(
            f"  ratio nbapi / {other}: {statistics.median(ratios):.2f}x "
            f"(range {min(ratios):.2f}-{max(ratios):.2f})"
        )


def first_finding(rounds: int) -> None:
    """Time from the start of the run to the first failing response, and to the report."""
    firsts, wholes = [], []
    nbapi_driver(rounds, 5)  # warm-up
    for seed in range(rounds):
        reset_app()
        session = Session({"app": fuzz_app.app}, say=lambda _: None)
        try:
            session.client.get("/health")
            first: list[float] = []
            started = time.perf_counter()

            def on_error(entry: Any, first: list[float] = first) -> None:
                if entry.error:
                    first.append(time.perf_counter())

            session.runner.listeners.append(on_error)
            options = FuzzOptions(method="GET", path="/bills/split", seed=seed)
            report = run_fuzz(session, options)
            wholes.append(time.perf_counter() - started)
            firsts.append(first[0] - started if first else float("nan"))
            assert [f.kind for f in report] == ["not_a_server_error"], report
        finally:
            session.close()
    print(f"\nPlanted bug (GET /bills/split, people=0), {rounds} seeds, default examples:")
    first_ms, whole_ms = statistics.median(firsts) * 1000, statistics.median(wholes) * 1000
    print(f"  time to the first failing response: median {first_ms:.0f} ms")
    print(f"  time to the report (shrunk finding): median {whole_ms:.0f} ms")


def default_run(rounds: int) -> None:
    times, counts = [], []
    for seed in range(rounds):
        count, seconds, _ = nbapi_driver(seed, DEFAULT_EXAMPLES)
        times.append(seconds)
        counts.append(count)
    print(f"\nDefault run (--examples {DEFAULT_EXAMPLES}) on the 10-operation app, {rounds} seeds:")
    print(
        f"  median {statistics.median(times):.1f} s (range {min(times):.1f}-{max(times):.1f}), "
        f"median {statistics.median(counts):.0f} requests"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 2 if args.quick else 6
    throughput(rounds, 20 if args.quick else 50)
    first_finding(3 if args.quick else 5)
    default_run(2 if args.quick else 3)


if __name__ == "__main__":
    main()
