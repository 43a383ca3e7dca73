"""Live-server benchmarks (issue 3): every figure next to its baseline, measured in one run.

Run from the repository root::

    python benchmarks/server_bench.py            # about 4 minutes
    python benchmarks/server_bench.py --quick    # shorter load runs, fewer samples

Everything stays on loopback; every load run is bounded in time (wrk -d) and in
count (a per-thread request limit in limit.lua); every process started here is
stopped by its PID. Not a test: nothing here passes or fails, it prints numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # for the kernel driver the tests use

import kernel_driver  # noqa: E402

WRK_THREADS, WRK_CONNECTIONS = 2, 50
SERVED_PORT = "__import__('nbapi._session', fromlist=['x']).current_session().server.port"


# -- helpers ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


@contextmanager
def port_freed(port: int, begin: float, timeout: float) -> Iterator[list[float]]:
    """Watch ``port`` from another thread; on exit the list holds the seconds from
    ``begin`` until it could be bound (empty if it never could within ``timeout``)."""
    freed: list[float] = []

    def watch() -> None:
        while time.perf_counter() < begin + timeout:
            if port_free(port):
                freed.append(time.perf_counter() - begin)
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield freed
    finally:
        watcher.join()


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def raw_get(port: int, path: str) -> bytes:
    """One HTTP/1.1 GET over a plain socket (an httpx2.Client costs ~30 ms to create)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        return conn.recv(65536)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table(title: str, rows: list[tuple[str, ...]]) -> None:
    print(f"\n## {title}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match[1]) * _UNITS[match[2]]


def wrk(url: str, seconds: int, limit: int) -> dict[str, float]:
    """wrk -t2 -c50, bounded by ``seconds`` and by ``limit`` requests per thread."""
    env = dict(os.environ, WRK_LIMIT=str(limit))
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(HERE / "limit.lua"), url]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 30)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])  # type: ignore[index]
    p50 = _seconds(re.search(r"\s50%\s+(\S+)", text)[1])  # type: ignore[index]
    p99 = _seconds(re.search(r"\s99%\s+(\S+)", text)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    failed = int(errors[1]) if errors else 0
    requests = int(re.search(r"(\d+) requests in", text)[1])  # type: ignore[index]
    socket_errors = re.search(r"Socket errors: (.*)", text)
    return {
        "rps": rps,
        "requests": requests,
        "p50": p50,
        "p99": p99,
        "non2xx": failed,
        "socket": bool(socket_errors),
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a whole process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- processes -------------------------------------------------------------------------------
@contextmanager
def standalone_uvicorn(port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "uvicorn", "benchmarks.bench_app:app", "--port", str(port)]
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


class Kernel:
    """A real ipykernel driven through jupyter_client."""

    def __init__(self) -> None:
        self.manager, self.client = kernel_driver.start()

    def execute(self, code: str, timeout: float = 120) -> kernel_driver.Outputs:
        """Run ``code``; its outputs (raises on a cell error)."""
        outputs = kernel_driver.execute(self.client, code, timeout=timeout)
        if outputs.status != "ok":
            raise RuntimeError(f"{code!r} failed: {outputs.transcript}")
        return outputs

    def value(self, expression: str) -> str:
        reply = self.client.execute_interactive(
            "", user_expressions={"v": expression}, timeout=120, output_hook=lambda m: None
        )
        return str(reply["content"]["user_expressions"]["v"]["data"]["text/plain"])

    def round_trip(self) -> float:
        """Seconds for one ``1+1`` execute request to its reply."""
        start = time.perf_counter()
        self.client.execute_interactive("1+1", timeout=60, output_hook=lambda m: None)
        return time.perf_counter() - start

    def shutdown(self) -> None:
        kernel_driver.stop(self.manager, self.client)


def nbapi_kernel(port: int) -> Kernel:
    kernel = Kernel()
    kernel.execute("%load_ext nbapi\n%config NbAPI.autostart = False")
    kernel.execute("from benchmarks.bench_app import app")
    kernel.execute(f"%nbapi serve --port {port}")
    wait_listening(port)
    return kernel


SNIPPET = """
import threading, uvicorn
from benchmarks.bench_app import app
_server = uvicorn.Server(uvicorn.Config(app, port={port}, log_level="warning", access_log=False))
threading.Thread(target=_server.run, daemon=True).start()
"""


def snippet_kernel(port: int) -> Kernel:
    """The uvicorn-in-a-thread snippet people paste today, in its own kernel."""
    kernel = Kernel()
    kernel.execute(SNIPPET.format(port=port))
    wait_listening(port)
    return kernel


# -- the benchmarks ----------------------------------------------------------------------------
def throughput(seconds: int, rounds: int) -> Kernel:
    standalone_port, kernel_port = free_port(), free_port()
    kernel = nbapi_kernel(kernel_port)
    kernel_pid = int(kernel.manager.provisioner.pid)  # type: ignore[union-attr]
    limit = 200_000
    rows: list[tuple[str, ...]] = [
        (
            "handler",
            "standalone req/s",
            "nbapi req/s",
            "ratio (range)",
            "CPU per request sa / nbapi",
            "p50 sa / nbapi",
            "p99 sa / nbapi",
        )
    ]

    def measure(url: str, pid: int) -> dict[str, float]:
        before = cpu_seconds(pid)
        result = wrk(url, seconds, limit)
        result["cpu"] = (cpu_seconds(pid) - before) / max(result["requests"], 1)
        return result

    with standalone_uvicorn(standalone_port) as standalone:
        for kind in ("sync", "async"):
            sa: list[dict[str, float]] = []
            nb: list[dict[str, float]] = []
            for n in range(rounds):
                # Paired and interleaved (ABBA), so machine noise and drift hit both alike.
                runs = [
                    (sa, f"http://127.0.0.1:{standalone_port}/{kind}/1", standalone.pid),
                    (nb, f"http://127.0.0.1:{kernel_port}/{kind}/1", kernel_pid),
                ]
                for out, url, pid in runs if n % 2 == 0 else runs[::-1]:
                    out.append(measure(url, pid))
            ratios = sorted(b["rps"] / a["rps"] for a, b in zip(sa, nb, strict=True))
            med = statistics.median

            rows.append(
                (
                    kind,
                    f"{med(r['rps'] for r in sa):.0f}",
                    f"{med(r['rps'] for r in nb):.0f}",
                    f"{med(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})",
                    f"{med(r['cpu'] for r in sa) * 1e6:.0f} / "
                    f"{med(r['cpu'] for r in nb) * 1e6:.0f} us",
                    f"{ms(med(r['p50'] for r in sa))} / {ms(med(r['p50'] for r in nb))}",
                    f"{ms(med(r['p99'] for r in sa))} / {ms(med(r['p99'] for r in nb))}",
                )
            )
            bad = sum(r["non2xx"] for r in sa + nb)
            if bad:
                print(f"  note: {bad} non-2xx responses in the {kind} runs")
    table(
        f"Throughput, wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds}s, {rounds} paired "
        "rounds; ratio = median of the per-round nbapi / standalone ratios "
        "(target: nbapi >= 0.95x standalone)",
        rows,
    )
    return kernel


PAUSE_BETWEEN_CELLS = 0.05  # a person runs one cell at a time, not back to back


def responsiveness(kernel: Kernel, samples: int, seconds: int) -> None:
    port = int(kernel.value(SERVED_PORT))
    snippet_port = free_port()
    snippet = snippet_kernel(snippet_port)
    rows: list[tuple[str, ...]] = [
        ("kernel", "idle p50", "idle p99", "loaded p50", "loaded p99", "server req/s meanwhile")
    ]
    try:
        for name, k, p in (("nbapi", kernel, port), ("uvicorn-in-a-thread snippet", snippet, 0)):
            p = p or snippet_port
            for _ in range(5):
                k.round_trip()  # warm up
            idle = []
            for _ in range(samples):
                idle.append(k.round_trip())
                time.sleep(PAUSE_BETWEEN_CELLS)
            loaded: list[float] = []
            result: dict[str, float] = {}
            url = f"http://127.0.0.1:{p}/async/1"
            load = threading.Thread(
                target=lambda out=result, url=url: out.update(wrk(url, seconds, 200_000))
            )
            load.start()
            time.sleep(1)
            while load.is_alive() and len(loaded) < samples:
                loaded.append(k.round_trip())
                time.sleep(PAUSE_BETWEEN_CELLS)
            load.join()
            rows.append(
                (
                    name,
                    ms(statistics.median(idle)),
                    ms(pct(idle, 0.99)),
                    ms(statistics.median(loaded)),
                    ms(pct(loaded, 0.99)),
                    f"{result.get('rps', 0):.0f}",
                )
            )
    finally:
        snippet.shutdown()
    table(
        "Kernel responsiveness: `1+1` execute round trip, idle and with the server under wrk "
        f"load, {PAUSE_BETWEEN_CELLS * 1000:.0f} ms between cells "
        "(target: loaded p50 <= 15 ms; the snippet was 25 ms)",
        rows,
    )


def busy_kernel(kernel: Kernel) -> None:
    import httpx2

    port = int(kernel.value(SERVED_PORT))
    rows: list[tuple[str, ...]] = [("the cell runs", "requests", "p50", "max")]
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}") as client:
        client.get("/async/1")
        idle = []
        for _ in range(20):
            start = time.perf_counter()
            client.get("/async/1")
            idle.append(time.perf_counter() - start)
        rows.append(("nothing (idle)", str(len(idle)), ms(statistics.median(idle)), ms(max(idle))))
        for label, code in (
            ("time.sleep(2)", "import time; time.sleep(2)"),
            ("a pure-Python loop", "n = 0\nfor i in range(40_000_000): n += i"),
        ):
            message = kernel.client.execute(code)
            time.sleep(0.2)  # the cell is running now
            times: list[float] = []
            for _ in range(10):
                start = time.perf_counter()
                for kind in ("async", "sync"):
                    assert client.get(f"/{kind}/1").status_code == 200
                times.append((time.perf_counter() - start) / 2)
            reply = kernel.client.get_shell_msg(timeout=120)
            assert reply["parent_header"]["msg_id"] == message
            rows.append((label, str(len(times) * 2), ms(statistics.median(times)), ms(max(times))))
    table("A request while a cell is busy (target: <= 50 ms)", rows)


def _rerun_code(count: int, reruns: int) -> str:
    """A cell that registers ``count - 1`` routes, then times re-running one %%route cell."""
    return f"""
import time as _t, statistics as _s
from fastapi import FastAPI
from nbapi._session import current_session as _cs
from nbapi._spec import parse_route_line as _p
app = FastAPI()
_session = _cs()
def _handler():
    return 1
for _i in range({count} - 1):
    _session.registry.register(app, f"cell-{{_i}}", _p(f"GET /r{{_i}}/{{{{x}}}}"), _handler, {{}})
_ip = get_ipython()
_ip.run_cell_magic("route", "GET /bench/<int:n>", "def bench(n):\\n    return n")
_times = []
for _ in range({reruns}):
    _start = _t.perf_counter()
    _ip.run_cell_magic("route", "GET /bench/<int:n>", "def bench(n):\\n    return n")
    _times.append(_t.perf_counter() - _start)
_rerun_p50 = _s.median(_times)
assert len(app.router.routes) == {count} + 4, len(app.router.routes)
from IPython.display import display as _display
_times = []
for _n in range({reruns}):
    _start = _t.perf_counter()
    _display({{"text/plain": "GET /bench/{{n}} -> bench()"}}, raw=True, display_id=f"d{{_n}}")
    _times.append(_t.perf_counter() - _start)
_display_p50 = _s.median(_times)
"""


def _plain_shell_rerun(count: int, reruns: int) -> float:
    """The same cell in a plain IPython shell in a fresh process: no ipykernel display."""
    script = (
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'nbapi')\n"
        "ip.run_line_magic('config', 'NbAPI.autostart = False')\n"
        f"ip.run_cell({_rerun_code(count, reruns)!r}).raise_error()\n"
        "print('RESULT', ip.user_ns['_rerun_p50'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    return float(out.stdout.rsplit("RESULT", 1)[1])


def route_rerun(kernel: Kernel, reruns: int) -> None:
    rows: list[tuple[str, ...]] = [
        (
            "routes registered",
            "kernel p50",
            "a bare display() in the kernel",
            "plain IPython shell p50",
        )
    ]
    for count in (10, 100, 1000):
        kernel.execute(_rerun_code(count, reruns))
        p50 = float(kernel.value("_rerun_p50"))
        display_p50 = float(kernel.value("_display_p50"))
        plain = _plain_shell_rerun(count, reruns)
        rows.append((str(count), ms(p50), ms(display_p50), ms(plain)))
    table(
        "%%route re-run cost (target: <= 2 ms at 1000 routes, growing no faster than "
        "linearly). In the kernel the route line is a display, and ipykernel flushes "
        "stdout and stderr through its IO thread before every display (the bare display() "
        "column); the plain shell prints it",
        rows,
    )


def in_process(samples: int, rounds: int = 5) -> None:
    import httpx2
    from fastapi.testclient import TestClient
    from IPython.testing.globalipapp import start_ipython

    from benchmarks.bench_app import app

    shell = start_ipython()
    shell.user_ns["app"] = app
    shell.run_line_magic("load_ext", "nbapi")
    shell.run_line_magic("config", "NbAPI.autostart = False")
    from nbapi._session import current_session

    session = current_session()
    client = session.client
    per_round = max(samples // rounds, 1)

    def timed(call: Callable[[], Any], out: list[float]) -> None:
        for _ in range(per_round):
            start = time.perf_counter()
            call()
            out.append(time.perf_counter() - start)

    own_loop = asyncio.new_event_loop()  # the bare call is awaited on its caller's loop
    bare_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t")

    async def bare(out: list[float]) -> None:
        for _ in range(per_round):
            start = time.perf_counter()
            await bare_client.get("/async/1")
            out.append(time.perf_counter() - start)

    times: dict[str, list[float]] = {}
    with TestClient(app) as test_client:
        calls: dict[str, Callable[[list[float]], None]] = {
            "bare httpx ASGITransport (await, same loop)": lambda out: own_loop.run_until_complete(
                bare(out)
            ),
            "%http GET /async/1": lambda out: timed(
                lambda: shell.run_line_magic("http", "GET /async/1"), out
            ),
            "nbapi.client.get (in-process)": lambda out: timed(lambda: client.get("/async/1"), out),
            "fastapi TestClient.get": lambda out: timed(lambda: test_client.get("/async/1"), out),
            "the hand-off alone (runner.run of a no-op)": lambda out: timed(
                lambda: session.runner.run(asyncio.sleep(0)), out
            ),
        }
        for warm_up in range(2):
            for name, call in calls.items():
                call([] if warm_up == 0 else times.setdefault(name, []))
        for _ in range(rounds - 1):  # interleaved, so machine noise hits every call alike
            for name, call in calls.items():
                call(times[name])
    own_loop.run_until_complete(bare_client.aclose())
    own_loop.close()
    base = statistics.median(times["bare httpx ASGITransport (await, same loop)"])
    rows: list[tuple[str, ...]] = [("call", "p50", "vs bare ASGITransport")]
    for name, values in times.items():
        p50 = statistics.median(values)
        rows.append((name, ms(p50), f"{p50 / base:.2f}x"))
    table(
        f"In-process requests, {rounds} interleaved rounds (target: %http <= 1.2x bare "
        "ASGITransport)",
        rows,
    )
    shell.run_line_magic("unload_ext", "nbapi")


def start_stop(cycles: int) -> None:
    from benchmarks.bench_app import app
    from nbapi._commands import run
    from nbapi._session import Session

    session = Session({"app": app}, say=lambda text: None)
    port = free_port()
    starts: list[float] = []
    stops_free: list[float] = []
    stops_return: list[float] = []
    first_start = 0.0
    try:
        for n in range(cycles):
            start = time.perf_counter()
            run(session, ["serve", "--port", str(port)])
            assert raw_get(port, "/async/1").startswith(b"HTTP/1.1 200")
            elapsed = time.perf_counter() - start
            if n == 0:
                first_start = elapsed  # includes importing uvicorn
            else:
                starts.append(elapsed)
            start = time.perf_counter()
            with port_freed(port, start, timeout=10) as freed:
                run(session, ["stop"])
                stops_return.append(time.perf_counter() - start)
            stops_free.append(freed[0] if freed else float("nan"))
    finally:
        session.close()
    rows: list[tuple[str, ...]] = [("step", "p50", "max", "target")]
    rows.append(("first start to first 200 (imports uvicorn)", ms(first_start), "", ""))
    rows.append(("start to first 200", ms(statistics.median(starts)), ms(max(starts)), "50 ms"))
    rows.append(
        ("stop to port free", ms(statistics.median(stops_free)), ms(max(stops_free)), "250 ms")
    )
    rows.append(
        ("stop command returns", ms(statistics.median(stops_return)), ms(max(stops_return)), "")
    )
    table(f"Server start and stop, {cycles} cycles in one process", rows)


def kernel_shutdown(rounds: int) -> None:
    times: list[float] = []
    for _ in range(rounds):
        port = free_port()
        kernel = nbapi_kernel(port)
        with port_freed(port, time.perf_counter(), timeout=30) as freed:
            kernel.shutdown()
        times.append(freed[0] if freed else float("nan"))
    rows: list[tuple[str, ...]] = [("rounds", "p50", "max", "target")]
    rows.append((str(rounds), ms(statistics.median(times)), ms(max(times)), "1 s"))
    table("Kernel shutdown request to port free (jupyter_client shutdown_kernel)", rows)


def import_cost(runs: int) -> None:
    imports = "import time; t = time.perf_counter(); import fastapi, uvicorn, httpx2; "
    imports += "print(time.perf_counter() - t)"
    load = (
        "from IPython.testing.globalipapp import start_ipython; ip = start_ipython(); "
        "import time; t = time.perf_counter(); ip.run_line_magic('load_ext', 'nbapi'); "
        "print(time.perf_counter() - t)"
    )

    def fresh(code: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
        )
        return float(out.stdout.strip().splitlines()[-1])

    base = [fresh(imports) for _ in range(runs)]
    ext = [fresh(load) for _ in range(runs)]
    b, e = statistics.median(base), statistics.median(ext)
    rows: list[tuple[str, ...]] = [("fresh process", "p50", "ratio")]
    rows.append(("import fastapi, uvicorn, httpx2", ms(b), "1.00x"))
    rows.append(("%load_ext nbapi (IPython already running)", ms(e), f"{e / b:.2f}x"))
    table(f"Import cost, median of {runs} fresh processes (target: <= 1.1x)", rows)


SECTIONS = (
    "throughput",
    "responsiveness",
    "busy",
    "rerun",
    "in-process",
    "start-stop",
    "shutdown",
    "import",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer samples")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})",
    )
    args = parser.parse_args()
    quick = args.quick
    only = set(args.only.split(","))
    if only - set(SECTIONS):
        parser.error(f"unknown sections {sorted(only - set(SECTIONS))}; choose from {SECTIONS}")
    print(f"# nbapi live-server benchmarks ({'quick' if quick else 'full'})")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {os.uname().release}")
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory():
        if only & {"throughput", "responsiveness", "busy", "rerun"}:
            if "throughput" in only:
                kernel = throughput(seconds=3 if quick else 5, rounds=2 if quick else 6)
            else:
                kernel = nbapi_kernel(free_port())
            try:
                if "responsiveness" in only:
                    responsiveness(kernel, samples=40 if quick else 100, seconds=6 if quick else 12)
                if "busy" in only:
                    busy_kernel(kernel)
                if "rerun" in only:
                    route_rerun(kernel, reruns=20 if quick else 100)
            finally:
                kernel.shutdown()
    if "in-process" in only:
        in_process(samples=300 if quick else 2000)
    if "start-stop" in only:
        start_stop(cycles=10 if quick else 30)
    if "shutdown" in only:
        kernel_shutdown(rounds=2 if quick else 5)
    if "import" in only:
        import_cost(runs=3 if quick else 7)


if __name__ == "__main__":
    main()
