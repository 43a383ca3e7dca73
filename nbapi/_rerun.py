"""The run an export takes its expected responses from.

By default the notebook runs top to bottom in a fresh kernel, as "Restart & Run All"
does, so the exported tests assert what the code does, not what a kernel that drifted
(a record created from curl, a cell edited and not re-run) happened to show. A cell
that raises in that run is reported by the number Jupyter shows for it (``In[N]``)
and left out. With saved outputs instead, nbapi says when they do not come from one
clean run in order. Nothing here imports IPython.
"""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import UserError

RUN_TIMEOUT = 120  # seconds per cell in the fresh run
LEFT_OUT_TAG = "nbapi-skip"
# Set in the fresh kernel: an export there would start a fresh run of its own, and so on.
IN_FRESH_RUN = "NBAPI_IN_FRESH_RUN"


class RunError(UserError):
    """The fresh kernel could not run the notebook at all."""


def _code_cells(notebook: Any) -> list[Any]:
    return [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _error(cell: Any) -> tuple[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            name = str(output.get("ename", "Error"))
            value = str(output.get("evalue", "")).strip().splitlines()
            return name, value[0] if value else ""
    return None


def fresh_run(notebook: Any, directory: Path) -> tuple[Any, list[str]]:
    """Run a copy of ``notebook`` in a fresh kernel; return it and a note per failed cell.

    Cells that raise are tagged ``nbapi-skip`` (left out of the export), except
    syntax errors, which the export reports as problems with their line.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if os.environ.get(IN_FRESH_RUN):
        msg = (
            "nbapi export runs the notebook in a fresh kernel, and this is one: an export "
            "here would run it again; use --saved-outputs inside such a run"
        )
        raise RunError(msg)
    executed = copy.deepcopy(notebook)
    for cell in _code_cells(executed):
        if "nbapi export" in _source(cell):  # the notebook exporting itself: not in its own run
            cell.setdefault("metadata", {}).setdefault("tags", []).append("skip-execution")
    spec = executed.get("metadata", {}).get("kernelspec", {})
    client = NotebookClient(
        executed,
        timeout=RUN_TIMEOUT,
        kernel_name=spec.get("name") or "python3",
        allow_errors=True,
        record_timing=False,
        resources={"metadata": {"path": str(directory)}},
    )
    env = dict(os.environ)
    env.pop("JPY_SESSION_NAME", None)  # the fresh kernel is no notebook's own kernel
    env[IN_FRESH_RUN] = "1"
    failed: list[BaseException] = []

    def run() -> None:
        loop = asyncio.new_event_loop()  # closed below, with its sockets
        try:
            # The kernel's own stderr (a TCP warning) is noise here; a crash still
            # surfaces as DeadKernelError.
            loop.run_until_complete(client.async_execute(env=env, stderr=subprocess.DEVNULL))
        except BaseException as exc:  # handed to the calling thread
            failed.append(exc)
        finally:
            loop.close()

    # In a thread of its own: nbclient runs an event loop, and a kernel's thread has one.
    thread = threading.Thread(target=run, name="nbapi-fresh-run", daemon=True)
    thread.start()
    thread.join()
    if failed:
        exc = failed[0]
        if not isinstance(exc, (CellTimeoutError, DeadKernelError, RuntimeError, OSError)):
            raise exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = (
            f"the fresh run of the notebook stopped: {first}; fix the cell, or export "
            "with --saved-outputs"
        )
        raise RunError(msg) from None
    notes: list[str] = []
    for cell in _code_cells(executed):
        error = _error(cell)
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if error is None or LEFT_OUT_TAG in tags or "raises-exception" in tags:
            continue
        if error[0] in ("SyntaxError", "IndentationError"):
            continue
        tags.append(LEFT_OUT_TAG)
        number = cell.get("execution_count")
        detail = f"{error[0]}: {error[1]}" if error[1] else error[0]
        notes.append(
            f"cell In[{number}] raised {detail} in a fresh run; it was left out "
            "(fix it, or tag it nbapi-skip)"
        )
    return executed, notes


def clean_run_note(notebook: Any) -> str | None:
    """Why the saved outputs are not one clean run in order, or None when they are."""
    expected = 1
    for cell in _code_cells(notebook):
        tags = cell.get("metadata", {}).get("tags", [])
        if not _source(cell).strip() or "nbval-skip" in tags:  # never run on purpose
            continue
        count = cell.get("execution_count")
        if count != expected:
            shown = "never ran" if count is None else f"shows In[{count}]"
            return (
                f"the saved outputs are not from one clean run in order (a cell {shown} "
                f"where Restart & Run All shows In[{expected}]); the tests expect what they "
                "show: Restart & Run All and save, or export without --saved-outputs"
            )
        expected += 1
    return None


def unsaved_note(notebook: Any, history: Sequence[str] | None) -> str | None:
    """A note when the kernel ran cells after the notebook file was last saved.

    ``history`` is the kernel's ``_ih`` (inputs by execution count); its last entry
    is the cell running the export.
    """
    if not history:
        return None
    current = len(history) - 1
    counts = [c.get("execution_count") or 0 for c in _code_cells(notebook)]
    saved = max(counts, default=0)
    ran = current - 1 - saved  # cells after the last saved one, this one not counted
    if saved == 0 or ran <= 0:
        return None
    cells = "1 cell" if ran == 1 else f"{ran} cells"
    which = f"In[{saved + 1}]" if ran == 1 else f"In[{saved + 1}] to In[{current - 1}]"
    return (
        f"{cells} ran in this kernel after the notebook was last saved ({which}); "
        "the export reads the saved file: save the notebook and export again to include them"
    )
