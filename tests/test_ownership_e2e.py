"""Cells own their routes, errors and output, in a real ipykernel driven with cell ids.

The kernel is driven over ZMQ as JupyterLab drives it (each execute_request carries
its cell id); the live server is real uvicorn on loopback, called with real HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx2
import pytest
from jupyter_client.manager import KernelManager
from kernel_driver import ROOT, execute, later_messages
from support import free_port

pytestmark = pytest.mark.kernel

BOOM = """%%route GET /boom
import logging
def boom(n: int = 0):
    print("serving boom", n)
    logging.getLogger("shop").warning("about to fail")
    return 1 / n
"""


def texts(messages: list[dict[str, Any]], kind: str) -> list[str]:
    """text/plain of every ``kind`` message (update_display_data, ...) or stream text."""
    out = []
    for message in messages:
        if message["msg_type"] != kind:
            continue
        content = message["content"]
        out.append(content["text"] if kind == "stream" else content["data"].get("text/plain", ""))
    return out


def test_routes_errors_and_output_belong_to_their_cells(
    kernel: tuple[KernelManager, Any],
) -> None:
    _, client = kernel
    port = free_port()
    setup = execute(client, f"%load_ext nbapi\n%config NbAPI.port = {port}", cell_id="setup")
    assert setup.status == "ok"
    url = f"http://127.0.0.1:{port}"

    route = execute(client, BOOM, cell_id="boom")
    assert route.status == "ok"
    assert route.results[0] == "GET /boom -> boom()"
    other = execute(client, "x = 1", cell_id="other")

    # A request from outside (curl, /docs): 500; what the handler printed and logged, and
    # its traceback, go to the %%route cell's display, under In[N] as the cell ran.
    assert httpx2.get(f"{url}/boom", timeout=10).status_code == 500

    def updated(messages: list[dict[str, Any]]) -> bool:
        return any("last error" in text for text in texts(messages, "update_display_data"))

    update = texts(later_messages(client, route.msg_id, updated), "update_display_data")[-1]
    lines = update.splitlines()
    assert lines[:4] == [
        "GET /boom -> boom()",
        "output of GET /boom:",
        "  serving boom 0",
        "  about to fail",
    ]
    assert "last error: 500 GET /boom: ZeroDivisionError: division by zero" in lines[4]
    assert f"  Cell In[{route.execution_count}], line 6, in boom" in lines
    # Never in an unrelated cell, nor in the next one.
    follow = execute(client, "print('next')", cell_id="next")
    assert follow.stdout == "next\n"
    assert follow.stderr == ""
    for outputs in (setup, other):
        assert "serving boom" not in "".join(
            texts(later_messages(client, outputs.msg_id, bool), "stream")
        )

    # %http: the output stays in the calling cell, the traceback is shown below the 500.
    called = execute(client, "%http GET /boom?n=0", cell_id="call")
    assert "serving boom 0" in called.stdout
    shown = called.results[0].splitlines()
    assert shown[0] == "HTTP 500 Internal Server Error"
    assert "Traceback (most recent call last):" in shown
    assert f"  Cell In[{route.execution_count}], line 6, in boom" in shown
    assert shown[-1] == "ZeroDivisionError: division by zero"
    assert not [line for line in shown if "starlette" in line or "site-packages" in line]

    # The log keeps the live request's output.
    full = execute(client, "%nbapi log --full", cell_id="log").results[0]
    assert "500 GET /boom (server)  ZeroDivisionError: division by zero" in full
    assert "      serving boom 0" in full

    # The %%route line taken out of the cell: its route goes, everywhere.
    plain = BOOM.replace("%%route GET /boom\n", "")
    again = execute(client, plain, cell_id="boom")
    assert again.stdout == "nbapi: removed GET /boom -> boom(): this cell no longer defines it\n"
    assert httpx2.get(f"{url}/boom?n=1", timeout=10).status_code == 404
    spec = httpx2.get(f"{url}/openapi.json", timeout=10).json()
    assert "/boom" not in spec["paths"]
    routes = execute(client, "%nbapi routes", cell_id="routes").results[0]
    assert "/boom" not in routes


def test_plain_decorator_cells_own_their_routes(kernel: tuple[KernelManager, Any]) -> None:
    _, client = kernel
    port = free_port()
    execute(client, f"%load_ext nbapi\n%config NbAPI.port = {port}", cell_id="setup")
    assert (
        execute(client, "from fastapi import FastAPI\napp = FastAPI()", cell_id="app").status
        == "ok"
    )
    execute(client, "%nbapi serve", cell_id="serve")
    url = f"http://127.0.0.1:{port}"
    pattern = "@app.get('/users/{user_id}')\ndef read_user(user_id: str):\n    return user_id"
    assert execute(client, pattern, cell_id="users").stderr == ""
    fixed = "@app.get('/users/me')\ndef read_me():\n    return {'me': %d}"
    warned = execute(client, fixed % 1, cell_id="me")
    assert warned.stderr == (
        "nbapi warning: GET /users/me by read_me() is shadowed by /users/{user_id} of "
        "read_user(), which was registered earlier and matches first; register the fixed path first\n"
    )
    # Re-running the fixed cell replaces its route in place (no duplicate, warned again).
    assert execute(client, fixed % 2, cell_id="me").stderr == warned.stderr
    count = execute(client, "print(len([r for r in app.routes if r.path == '/users/me']))")
    assert count.stdout == "1\n"
    # The pattern's cell re-run as the fixed path's own handler: in place, before /users/me.
    execute(
        client,
        "@app.get('/users/{user_id}')\ndef read_user(user_id: int):\n    return user_id",
        cell_id="users",
    )
    assert httpx2.get(f"{url}/users/7", timeout=10).json() == 7
    # %nbapi remove: any route, in one line; the fixed path is reachable now.
    removed = execute(client, "%nbapi remove GET /users/{user_id}", cell_id="remove")
    assert removed.results == ["removed GET /users/{user_id} -> read_user()"]
    assert httpx2.get(f"{url}/users/me", timeout=10).json() == {"me": 2}
    assert httpx2.get(f"{url}/users/7", timeout=10).status_code == 404
    bad = execute(client, "%nbapi remove GET /users/{user_id}", cell_id="again")
    assert bad.status == "error"
    assert bad.stderr.startswith("UsageError: no GET /users/{user_id} route in the app;")


def test_terminal_ipython_announces_live_server_errors_before_the_next_cell() -> None:
    port = free_port()
    lines = [
        "%load_ext nbapi",
        "from fastapi import FastAPI; app = FastAPI()",
        f"%nbapi serve --port {port}",
        "@app.get('/boom')",
        "def boom():",
        "    print('in boom')",
        "    return 1 / 0",
        "",
        "import httpx2, time, nbapi._session as s",
        # One cell: the request, then (bounded) until the runner has recorded the error.
        f"r = httpx2.get('http://127.0.0.1:{port}/boom'); "
        "[time.sleep(0.01) for _ in range(300) if not s.current_session().runner.errors]",
        "print('next', r.status_code)",
        "%nbapi log --errors",
        "exit",
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [
        sys.executable,
        "-m",
        "IPython",
        "--simple-prompt",
        "--no-banner",
        "--colors=nocolor",
    ]
    done = subprocess.run(
        command,
        input="\n".join(lines) + "\n",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, to see the order
        text=True,
        env=env,
        timeout=60,
    )
    out = done.stdout
    announce = (
        "nbapi: the live server's handlers raised an error since the last cell "
        "(last: 500 GET /boom: ZeroDivisionError: division by zero); see %nbapi log --errors\n"
        "nbapi: the live server's handlers printed output for a request since the last cell; "
        "see %nbapi log --full\n"
        "next 500\n"
    )
    assert announce in out, out
    assert out.count("the live server's handlers raised") == 1
    assert "\nin boom\n" not in out  # kept in the log, not printed over the prompt
    assert "500 GET /boom (server)  ZeroDivisionError: division by zero" in out
