"""What the re-run check costs: a ``%%route`` re-run with and without it, at 100 and 1000 routes.

Runs in one process, in IPython's test shell (``start_ipython``) with nbapi loaded, so the
cells go through ``run_cell`` and its post_run_cell hooks as in a notebook. Modes, measured in
interleaved rounds (each round times every mode once, in turn):

- ``no hook``: the re-run with nbapi's contract hook replaced by one that does nothing;
- ``check off``: ``%config NbAPI.breaking_changes = False`` (routes are still followed);
- ``check on``: the default: the changed operation is generated and compared;
- ``full diff``: what a check without the incremental OpenAPI would cost on top of the
  re-run: FastAPI's whole document generated again and compared with the previous one.

Every re-run changes the operation (``q`` optional, then required, ...), so the check has
work to do each time; ``unchanged`` re-runs the same cell. Usage::

    python benchmarks/contract_bench.py [--reruns N] [--rounds N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SETUP = """
from fastapi import FastAPI
from pydantic import BaseModel
from nbapi._session import current_session
from nbapi._spec import parse_route_line

class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []

app = FastAPI()

def handler(item_id: int, q: str | None = None) -> Item:
    return Item(name="a", price=1.0)

for i in range({count} - 1):
    current_session().registry.register(
        app, f"cell-{{i}}", parse_route_line(f"GET /r{{i}}/{{{{item_id}}}}"), handler, {{}}
    )
"""

CELLS = (
    "%%route GET /bench/<int:n>\ndef bench(n, q: str | None = None) -> Item:\n"
    "    return Item(name='a', price=1)\n",
    "%%route GET /bench/<int:n>\ndef bench(n, q: str) -> Item:\n"
    "    return Item(name='a', price=1)\n",
)


def _time(run: Callable[[], None], reruns: int) -> float:
    times = []
    for _ in range(reruns):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(ip: Any, count: int, reruns: int, rounds: int) -> dict[str, float]:
    import nbapi._magics as magics
    from nbapi._contract import diff_documents
    from nbapi._openapi import Tracker  # noqa: F401 - imported before timing

    ip.run_cell(SETUP.format(count=count)).raise_error()
    app = ip.user_ns["app"]
    hook = magics.rerun_lines
    flip = iter(range(10**9))

    def rerun(changed: bool = True) -> None:
        source = CELLS[next(flip) % 2] if changed else CELLS[0]
        ip.run_cell(source, cell_id="bench").raise_error()

    previous: dict[str, Any] = {"doc": app.openapi()}

    def full_diff() -> None:
        rerun()
        app.openapi_schema = None
        document = app.openapi()
        diff_documents(previous["doc"], document)
        previous["doc"] = document

    def mode(name: str) -> Callable[[], None]:
        def run() -> None:
            magics.rerun_lines = hook if name != "no hook" else (lambda session: [])
            ip.run_line_magic("config", f"NbAPI.breaking_changes = {name != 'check off'}")
            if name == "full diff":
                magics.rerun_lines = lambda session: []
                full_diff()
            elif name == "unchanged":
                rerun(changed=False)
            else:
                rerun()

        return run

    names = ("no hook", "check off", "check on", "unchanged", "full diff")
    samples: dict[str, list[float]] = {name: [] for name in names}
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        rerun()
        for _ in range(rounds):
            for name in names:
                reps = max(3, reruns // 10) if name == "full diff" and count >= 1000 else reruns
                samples[name].append(_time(mode(name), reps))
    magics.rerun_lines = hook
    ip.run_line_magic("config", "NbAPI.breaking_changes = True")
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=40, help="re-runs timed per mode and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args()

    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_line_magic("load_ext", "nbapi")
    ip.run_line_magic("config", "NbAPI.autostart = False")
    header = (
        "routes",
        "no hook",
        "check off",
        "check on",
        "on / no hook",
        "unchanged re-run, check on",
        "full diff",
        "full / no hook",
    )
    rows = [header]
    for count in (100, 1000):
        got = measure(ip, count, args.reruns, args.rounds)
        base = got["no hook"]
        rows.append(
            (
                str(count),
                f"{base * 1000:.2f} ms",
                f"{got['check off'] * 1000:.2f} ms",
                f"{got['check on'] * 1000:.2f} ms",
                f"{got['check on'] / base:.2f}x",
                f"{got['unchanged'] * 1000:.2f} ms",
                f"{got['full diff'] * 1000:.2f} ms",
                f"{got['full diff'] / base:.1f}x",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print("%%route re-run (median of per-round medians; target: check on <= 2x no hook)")
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
