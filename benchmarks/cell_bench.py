"""What nbapi's per-cell work (route ownership, warnings) costs a cell, side by side.

Usage: ``python benchmarks/cell_bench.py [--routes 1000] [--rounds 5]``

In one IPython shell, an app with ROUTES plain routes: rounds alternate between nbapi
unloaded and loaded, and each times the median of 200 runs of two cells: ``x = 1``
(the common case: no route changes) and a plain ``@app.get`` cell re-run with its cell
id (nbapi replaces its route in place; without nbapi FastAPI appends a copy).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from IPython.testing.globalipapp import start_ipython

AGAIN = '@app.get("/again")\ndef again():\n    return 1'


def median_us(shell: Any, code: str, cell_id: str, runs: int = 200) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        shell.run_cell(code, cell_id=cell_id)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shell = start_ipython()
    setup = f"from fastapi import FastAPI\napp = FastAPI()\nfor i in range({args.routes}):\n"
    setup += "    app.get(f'/r{i}/{{x}}')(lambda x: x)"
    figures: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for loaded in (False, True):
            if loaded:
                shell.run_line_magic("load_ext", "nbapi")
                shell.run_line_magic("config", "NbAPI.autostart = False")
            shell.run_cell(setup)
            plain = median_us(shell, "x = 1", "plain")
            again = median_us(shell, AGAIN, "again")
            if loaded:
                shell.run_line_magic("unload_ext", "nbapi")
            tag = "nbapi" if loaded else "bare"
            figures.setdefault(f"x = 1, {tag}", []).append(plain)
            figures.setdefault(f"@app.get re-run, {tag}", []).append(again)
    for name, values in figures.items():
        spread = f"rounds {min(values):.0f}-{max(values):.0f}"
        print(f"{name:28} {statistics.median(values):8.0f} us  ({spread})")
    for cell in ("x = 1", "@app.get re-run"):
        bare = statistics.median(figures[f"{cell}, bare"])
        nbapi = statistics.median(figures[f"{cell}, nbapi"])
        print(f"{cell}: nbapi / bare = {nbapi / bare:.2f}x, +{nbapi - bare:.0f} us per cell")


if __name__ == "__main__":
    main()
