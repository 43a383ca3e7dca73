"""What the re-run check costs: a ``%%route`` re-run with and without it, at 100 and 1000 routes.

Runs in one process, in IPython's test shell (``start_ipython``) with nbapi loaded, so the
cells go through ``run_cell`` and its post_run_cell hooks as in a notebook. The modes take
turns, one re-run each, so that the load of a shared machine falls on all of them alike:

- ``no hook``: the re-run with nbapi's contract hook replaced by one that does nothing;
- ``check off``: ``%config NbAPI.breaking_changes = False`` (routes are still followed);
- ``check on``: the default: the changed operation is generated and compared;
- ``full diff``: what a check without the incremental OpenAPI would cost on top of the
  re-run: FastAPI's whole document generated again and compared with the previous one;
- ``explorer``: check on, with an explorer redrawing after the cell (``explorer, whole
  document``: the explorer reading FastAPI's whole document, as before it went route by route);
- ``moved`` and ``explorer, moved`` (a table of their own, no target): a cell whose re-run
  moves its route to another path, without and with the explorer.

Every re-run changes the operation (``q`` optional, then required, ...), so the check has
work to do each time; ``unchanged`` re-runs the same cell. A full garbage collection runs
(untimed) before each timed re-run. Usage::

    python benchmarks/contract_bench.py [--samples N]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
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


def measure(ip: Any, count: int, samples: int) -> dict[str, float]:
    """Median time of one re-run in each mode; the modes take turns, one re-run each."""
    import nbapi._magics as magics
    import nbapi._views as widgets_module  # the explorer's reader looks these up there
    from nbapi import explorer
    from nbapi._checkpoints import tracker
    from nbapi._contract import diff_documents
    from nbapi._session import current_session

    ip.run_cell(SETUP.format(count=count)).raise_error()
    app, session = ip.user_ns["app"], current_session()
    hook = magics.rerun_lines
    flip = iter(range(10**9))
    previous: dict[str, Any] = {}

    def rerun(changed: bool = True) -> None:
        source = CELLS[next(flip) % 2] if changed else CELLS[0]
        ip.run_cell(source, cell_id="bench").raise_error()

    def full_diff() -> None:
        rerun()
        app.openapi_schema = None
        document = app.openapi()
        diff_documents(previous["doc"], document)
        previous["doc"] = document

    shown = explorer()  # subscribed to the session's route listeners only while timed
    listener = shown._listener
    session.route_listeners.remove(listener)
    incremental = widgets_module.app_document, widgets_module.built_route_by_route

    def whole_document(session: Any, app: Any) -> dict[str, Any]:
        app.openapi_schema = None
        return dict(app.openapi())

    def with_explorer(whole: bool) -> Callable[[], None]:
        """A re-run with the explorer redrawing after it: route by route, or (as before
        the incremental OpenAPI) from FastAPI's whole document generated again."""

        def run() -> None:
            if whole:
                widgets_module.app_document = whole_document
                widgets_module.built_route_by_route = lambda app: False
            session.route_listeners.append(listener)
            try:
                rerun()
            finally:
                session.route_listeners.remove(listener)
                widgets_module.app_document, widgets_module.built_route_by_route = incremental

        return run

    modes: dict[str, tuple[Callable[..., list[str]], bool, Callable[[], None]]] = {
        "no hook": (lambda session: [], True, rerun),
        "check off": (hook, False, rerun),
        "check on": (hook, True, rerun),
        "unchanged": (hook, True, lambda: rerun(changed=False)),
        "full diff": (lambda session: [], True, full_diff),
        "explorer": (hook, True, with_explorer(whole=False)),
        "explorer, whole document": (hook, True, with_explorer(whole=True)),
    }
    slow = {"full diff", "explorer, whole document"}
    times: dict[str, list[float]] = {name: [] for name in modes}
    # FastAPI's whole document takes about a second at 1000 routes: sample it less often.
    full_every = 10 if count >= 1000 else 2
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        rerun()
        previous["doc"] = app.openapi()
        with_explorer(whole=False)()  # untimed: every route's document generated once
        for sample in range(samples):
            for name, (use, check, run) in modes.items():
                if name in slow and sample % full_every:
                    continue
                magics.rerun_lines = use
                ip.run_line_magic("config", f"NbAPI.breaking_changes = {check}")
                gc.collect()  # untimed: no mode pays for another's garbage
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
                # Untimed: let the check see what this mode changed and generate the
                # route's current version, so that the next timed check starts where a
                # notebook's would: the previous version known, the new one to generate.
                magics.rerun_lines = hook
                ip.run_line_magic("config", "NbAPI.breaking_changes = True")
                hook(session)
                tracker(session).cache.operations(app.router.routes[-1], None)
    return {name: statistics.median(values) for name, values in times.items()}


MOVED = tuple(
    f"%%route GET /{name}/<int:n>\ndef moved(n) -> Item:\n    return Item(name='a', price=1)\n"
    for name in ("one", "two", "three")
)


def measure_moved(ip: Any, samples: int) -> dict[str, float]:
    """A re-run that moves its route to another path (not the target's case: the explorer
    then puts its listing together again), without and with the explorer; taking turns."""
    from nbapi import explorer
    from nbapi._session import current_session

    session = current_session()
    turn = iter(range(10**9))

    def rerun() -> None:  # three paths, two modes: the explorer sees a new path every time
        ip.run_cell(MOVED[next(turn) % len(MOVED)], cell_id="moved").raise_error()

    times: dict[str, list[float]] = {"moved": [], "explorer, moved": []}
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        shown = explorer()
        listener = shown._listener
        rerun()
        for _ in range(samples):
            for name, values in times.items():
                if name == "moved":
                    session.route_listeners.remove(listener)
                gc.collect()
                start = time.perf_counter()
                rerun()
                values.append(time.perf_counter() - start)
                if name == "moved":
                    session.route_listeners.append(listener)
        shown.close()
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="re-runs timed per mode")
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
    explorer_rows = [
        ("routes", "check on", "explorer", "explorer / check on", "explorer, whole document")
    ]
    moved_rows = [("routes", "moved", "explorer, moved", "explorer / moved")]
    for count in (100, 1000):
        got = measure(ip, count, args.samples)
        moved = measure_moved(ip, args.samples)
        moved_rows.append(
            (
                str(count),
                f"{moved['moved'] * 1000:.2f} ms",
                f"{moved['explorer, moved'] * 1000:.2f} ms",
                f"{moved['explorer, moved'] / moved['moved']:.2f}x",
            )
        )
        explorer_rows.append(
            (
                str(count),
                f"{got['check on'] * 1000:.2f} ms",
                f"{got['explorer'] * 1000:.2f} ms",
                f"{got['explorer'] / got['check on']:.2f}x",
                f"{got['explorer, whole document'] * 1000:.2f} ms",
            )
        )
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
    table("%%route re-run, median of one-at-a-time turns (target: check on <= 2x no hook)", rows)
    table(
        "the same re-run with the explorer subscribed (it redraws after the cell; "
        "target: <= 2x check on)",
        explorer_rows,
    )
    table("a re-run that moves the route to another path, check on (no target)", moved_rows)


def table(title: str, rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(title)
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print()


if __name__ == "__main__":
    main()
