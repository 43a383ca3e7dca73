"""Private mode's cost (issue 17): the live server's throughput with ``NbAPI.private``
True next to False, on the same server, in one run.

Run from the repository root::

    python benchmarks/private_bench.py            # about 2 minutes
    python benchmarks/private_bench.py --quick    # about 40 seconds

One real ipykernel serves ``bench_app.py`` with ``%nbapi serve``; between rounds
``%config NbAPI.private`` flips (the running server follows it at once), so both
modes share the process, the port and the machine's noise. A load client in its
own process sends ``GET /async/1`` for a fixed time (and at most a fixed count):

- keep-alive: 16 connections, each reused for every request (as browsers, httpx
  and curl sessions do): private mode checks each connection once;
- one connection per request (``Connection: close``): the worst case, one check per
  request.

Rounds are paired and interleaved (ABBA); the ratio is the median of the per-round
private / open ratios, with their range. Also printed: the cost of one owner lookup
(``nbapi._access.peer_uid``) and the size of the socket tables it reads. Everything
stays on loopback; the kernel is shut down at the end. Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from server_bench import Kernel, cpu_seconds, free_port, table, wait_listening  # noqa: E402

CONNECTIONS = 16
MAX_REQUESTS = 200_000  # per client run, on top of the time bound


# -- the load client (run in its own process) ---------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _keep_alive(port: int, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /async/1 HTTP/1.1\r\nHost: bench\r\n\r\n"
    try:
        while time.perf_counter() < deadline and sum(counts) < MAX_REQUESTS:
            writer.write(request)
            status = await _read_response(reader)
            counts[0 if status == 200 else 1] += 1
    finally:
        writer.close()


async def _one_per_request(port: int, deadline: float, counts: list[int]) -> None:
    request = b"GET /async/1 HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    while time.perf_counter() < deadline and sum(counts) < MAX_REQUESTS:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        status = await _read_response(reader)
        counts[0 if status == 200 else 1] += 1
        writer.close()
        await writer.wait_closed()


async def _load(port: int, mode: str, seconds: float) -> dict[str, float]:
    counts = [0, 0]  # 200s, others
    start = time.perf_counter()
    worker = _keep_alive if mode == "keep-alive" else _one_per_request
    await asyncio.gather(*(worker(port, start + seconds, counts) for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - start
    return {"rps": counts[0] / elapsed, "ok": counts[0], "other": counts[1]}


def client(port: int, mode: str, seconds: float) -> dict[str, float]:
    """One load run in a fresh process (so the client never shares the kernel's GIL)."""
    command = [sys.executable, __file__, "--client", str(port), mode, str(seconds)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return dict(json.loads(out.stdout))


# -- the measurements -----------------------------------------------------------------------
def lookup_cost(samples: int) -> list[tuple[str, ...]]:
    """Median time of one owner lookup for a live loopback connection, by each method,
    with the number of sockets listed in /proc/net/tcp and tcp6 meanwhile."""
    from nbapi._access import PROC_TABLES, diag_uid, table_uid

    rows = [("lookup", "median", "sockets on the machine")]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()):
            accepted, peer = listener.accept()
            with accepted:
                local = accepted.getsockname()
                for name, lookup in (("netlink (used)", diag_uid), ("/proc tables", table_uid)):
                    times = []
                    for _ in range(samples):
                        begin = time.perf_counter()
                        lookup(peer, local)
                        times.append(time.perf_counter() - begin)
                    count = sum(len(p.read_text().splitlines()) - 1 for p in PROC_TABLES)
                    rows.append((name, f"{statistics.median(times) * 1e6:.0f} us", str(count)))
    return rows


def _row(mode: str, runs: dict[str, list[dict[str, float]]]) -> tuple[str, ...]:
    med = statistics.median
    pairs = list(zip(runs["open"], runs["private"], strict=True))
    ratios = sorted(p["rps"] / o["rps"] for o, p in pairs)
    cpu = sorted(p["cpu"] / o["cpu"] for o, p in pairs)
    return (
        mode,
        f"{med(r['rps'] for r in runs['open']):.0f} / {med(r['rps'] for r in runs['private']):.0f}",
        f"{med(ratios):.3f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})",
        f"{med(r['cpu'] for r in runs['open']) * 1e6:.0f} / "
        f"{med(r['cpu'] for r in runs['private']) * 1e6:.0f} us",
        f"{med(cpu):.3f}x ({cpu[0]:.2f}-{cpu[-1]:.2f})",
    )


def measure(seconds: float, rounds: int) -> None:
    port = free_port()
    kernel = Kernel()
    pid = int(kernel.manager.provisioner.pid)  # type: ignore[union-attr]
    try:
        kernel.execute("%load_ext nbapi\n%config NbAPI.autostart = False")
        kernel.execute("from benchmarks.bench_app import app")
        kernel.execute(f"%config NbAPI.private = True\n%nbapi serve --port {port}")
        wait_listening(port)
        rows: list[tuple[str, ...]] = [
            (
                "connections",
                "req/s open / private",
                "req/s ratio (range)",
                "kernel CPU per request open / private",
                "CPU ratio (range)",
            )
        ]
        for mode in ("keep-alive", "one per request"):
            client(port, mode, 1.0)  # warm up
            runs: dict[str, list[dict[str, float]]] = {"open": [], "private": []}
            for n in range(rounds):
                order = ["open", "private"] if n % 2 == 0 else ["private", "open"]
                for setting in order:
                    kernel.execute(f"%config NbAPI.private = {setting == 'private'}")
                    before = cpu_seconds(pid)
                    result = client(port, mode, seconds)
                    result["cpu"] = (cpu_seconds(pid) - before) / max(result["ok"], 1)
                    runs[setting].append(result)
            bad = sum(r["other"] for r in runs["open"] + runs["private"])
            if bad:
                print(f"  note: {bad} responses were not 200 in the {mode} runs")
            rows.append(_row(mode, runs))
        table(
            f"NbAPI.private True vs False on one server, {CONNECTIONS} concurrent clients, "
            f"{seconds:g} s x {rounds} paired rounds; ratios = private / open, median of the "
            "rounds (target: req/s >= 0.95x)",
            rows,
        )
    finally:
        kernel.shutdown()
    table("One owner lookup, once per connection (nbapi._access)", lookup_cost(50))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        port, mode, seconds = int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
        print(json.dumps(asyncio.run(_load(port, mode, seconds))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds, fewer of them")
    args = parser.parse_args()
    if not Path("/proc/net/tcp").exists():
        sys.exit("private mode needs Linux's /proc/net/tcp; nothing to measure here")
    seconds, rounds = (2.0, 4) if args.quick else (4.0, 8)
    measure(seconds, rounds)


if __name__ == "__main__":
    main()
