"""%nbapi fuzz in a real ipykernel: widgets, the error under its %%route cell, an interrupt."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest
from jupyter_client.manager import KernelManager
from kernel_driver import execute

pytestmark = pytest.mark.kernel

ROOT_ROUTE = """%%route GET /root/<int:number>
import math

def root(number):
    return {"root": math.isqrt(number)}"""
HELLO_ROUTE = """%%route GET /hello
def hello(name: str = "x"):
    return {"hello": name}"""
WIDGET = "application/vnd.jupyter.widget-view+json"


def test_fuzz_in_a_kernel(kernel: tuple[KernelManager, Any]) -> None:
    _, client = kernel
    assert execute(client, "%load_ext nbapi\n%config NbAPI.autostart = False").status == "ok"
    assert execute(client, ROOT_ROUTE, cell_id="root-cell").status == "ok"
    seen = execute(client, "%nbapi fuzz --seed 1 --examples 50")
    # The progress bar: a widget whose text is empty, replaced by empty text when done.
    (progress,) = seen.contents("display_data")
    assert WIDGET in progress["data"]
    assert progress["data"]["text/plain"] == ""
    progress_id = progress["transient"]["display_id"]
    done = [u for u in seen.updates if u["transient"]["display_id"] == progress_id]
    assert done[-1]["data"] == {"text/plain": ""}
    # The report: the findings widget, the deterministic text and the data export reads.
    (report,) = seen.contents("execute_result")
    result = report["data"]
    assert WIDGET in result
    assert result["text/plain"].startswith("nbapi fuzz: 1 operation, ")
    assert "%http GET /root/-1" in result["text/plain"]
    assert "    Cell In[" in result["text/plain"]  # the handler's frame, named as a cell
    assert result["application/vnd.nbapi.fuzz+json"]["findings"][0]["status_code"] == 500
    # The handler's error also shows under the %%route cell that owns the route.
    errors = [u for u in seen.updates if "last error: 500 GET /root/" in str(u["data"])]
    assert errors
    assert "ValueError: isqrt() argument must be nonnegative" in errors[-1]["data"]["text/plain"]


def test_interrupt_keeps_findings(kernel: tuple[KernelManager, Any]) -> None:
    manager, client = kernel
    assert execute(client, "%load_ext nbapi\n%config NbAPI.autostart = False").status == "ok"
    assert execute(client, ROOT_ROUTE, cell_id="root-cell").status == "ok"
    assert execute(client, HELLO_ROUTE, cell_id="hello-cell").status == "ok"
    # /hello never fails: 100000 examples run until the interrupt, 3 s in. SIGINT is what
    # KernelManager.interrupt_kernel sends; called from a thread, it would leave an event loop.
    pid = manager.provisioner.process.pid  # type: ignore[union-attr]
    timer = threading.Timer(3.0, os.kill, (pid, signal.SIGINT))
    timer.start()
    try:
        seen = execute(client, "%nbapi fuzz --seed 1 --examples 100000", timeout=60)
    finally:
        timer.cancel()
    (result,) = seen.contents("execute_result")
    text = result["data"]["text/plain"]
    assert "(interrupted: findings so far): 1 finding" in text.splitlines()[0]
    assert "%http GET /root/-1" in text
    # The kernel carries on, and the app still answers.
    after = execute(client, "%http GET /hello?name=a")
    assert after.results == ['HTTP 200 OK\n\n{\n  "hello": "a"\n}']
