"""The live server inside real ipykernels, driven over ZMQ by jupyter_client."""

from __future__ import annotations

import queue
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from jupyter_client.manager import KernelManager
from kernel_driver import collect, execute, send, start_kernel
from support import free_port

pytestmark = [pytest.mark.kernel, pytest.mark.server]

SERVING = re.compile(r"nbapi: serving the kernel's app at http://127\.0\.0\.1:(\d+)/")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def autostarted(client: Any, first_port: int) -> int:
    """Load nbapi with the first port to try, register a route; return the served port."""
    assert execute(client, f"%load_ext nbapi\n%config NbAPI.port = {first_port}").status == "ok"
    cell = execute(client, "%%route GET /hello\ndef hello():\n    return {'hi': 1}")
    assert cell.status == "ok", cell.transcript
    match = SERVING.search(cell.text)
    assert match, cell.text
    port = int(match[1])
    assert cell.text.splitlines() == [
        "GET /hello -> hello()",
        f"nbapi: serving the kernel's app at http://127.0.0.1:{port}/",
        f"  docs: http://127.0.0.1:{port}/docs",
        f"  redoc: http://127.0.0.1:{port}/redoc",
    ]
    return port


def test_autostart_serves_and_the_kernel_stays_usable(kernel: tuple[KernelManager, Any]) -> None:
    _, client = kernel
    port = autostarted(client, free_port())
    assert httpx2.get(f"http://127.0.0.1:{port}/hello", timeout=10).json() == {"hi": 1}
    assert execute(client, "print(1 + 1)").stdout == "2\n"
    # A request sent while a cell is busy is answered before the cell ends.
    for busy in ("import time; time.sleep(2)", "n = 0\nfor i in range(30_000_000): n += i"):
        msg_id = send(client, busy)
        answer = httpx2.get(f"http://127.0.0.1:{port}/hello", timeout=10)
        assert answer.status_code == 200
        with pytest.raises(queue.Empty):
            client.get_shell_msg(timeout=0.01)  # the cell is still running
        assert collect(client, msg_id).status == "ok"
    status = execute(client, "%nbapi status")
    assert status.text.splitlines()[:2] == [
        f"nbapi server: running at http://127.0.0.1:{port}/",
        "requests served: 3, errors: 0",
    ]
    assert status.text.splitlines()[2].startswith("access: ")
    assert execute(client, "%http --server GET /hello").text == 'HTTP 200 OK\n\n{\n  "hi": 1\n}'


def test_handler_error_is_shown_in_its_route_cell(kernel: tuple[KernelManager, Any]) -> None:
    _, client = kernel
    port = autostarted(client, free_port())
    route_cell = execute(client, "%%route GET /boom\ndef boom():\n    x = 0\n    return 1 / x")
    display = route_cell.displays[0]
    display_id = display["transient"]["display_id"]
    assert display["data"]["text/plain"] == "GET /boom -> boom()"
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # uvicorn logs a warning: not into a cell
        raw.recv(1000)
    assert httpx2.get(f"http://127.0.0.1:{port}/boom", timeout=10).status_code == 500
    assert httpx2.get(f"http://127.0.0.1:{port}/hello", timeout=10).status_code == 200
    deadline = time.monotonic() + 30
    update = None
    while update is None and time.monotonic() < deadline:
        message = client.get_iopub_msg(timeout=30)
        if message["msg_type"] == "update_display_data":
            update = message
        else:
            assert message["msg_type"] != "stream", message["content"]  # nothing spilled
    assert update is not None
    assert update["content"]["transient"]["display_id"] == display_id
    assert update["parent_header"]["msg_id"] == route_cell.msg_id
    text = update["content"]["data"]["text/plain"].splitlines()
    assert text[0] == "GET /boom -> boom()"
    assert text[1] == (
        "last error: 500 GET /boom: ZeroDivisionError: division by zero (traceback: %nbapi log)"
    )
    assert re.fullmatch(r"  Cell In\[\d+\], line 4, in boom", text[3])
    assert text[-1] == "ZeroDivisionError: division by zero"
    # The next cell runs clean: no traceback or log record landed in its output.
    after = execute(client, "1 + 1")
    assert (after.stdout, after.stderr, after.error, after.text) == ("", "", None, "2")
    log = execute(client, "%nbapi log --errors").text
    assert "500 GET /boom (server)  ZeroDivisionError: division by zero" in log
    assert "uvicorn warning: Invalid HTTP request received." in log


def test_two_kernels_get_their_own_ports_and_tell_each_other_apart() -> None:
    first = free_port()
    with start_kernel() as (_, client_a), start_kernel() as (_, client_b):
        port_a = autostarted(client_a, first)
        port_b = autostarted(client_b, first)
        assert port_a != port_b
        pid_a = int(execute(client_a, "import os; os.getpid()").text)
        assert httpx2.get(f"http://127.0.0.1:{port_a}/hello").status_code == 200
        assert httpx2.get(f"http://127.0.0.1:{port_b}/hello").status_code == 200
        moved = execute(client_b, f"%nbapi restart --port {port_a}")
        assert moved.status == "error"
        assert (
            f"port {port_a} on 127.0.0.1 is taken by another nbapi kernel (process {pid_a}); "
            "pick a free one with --port N, or leave --port out to take the next free"
        ) in moved.stderr


def test_shutdown_and_restart_free_the_port(tmp_path: Path) -> None:
    marker = tmp_path / "lifespan.txt"
    with start_kernel() as (manager, client):
        execute(
            client,
            "from contextlib import asynccontextmanager\nfrom fastapi import FastAPI\n"
            "@asynccontextmanager\nasync def life(app):\n    yield\n"
            f"    open({str(marker)!r}, 'a').write('shut down\\n')\n"
            "app = FastAPI(lifespan=life)",
        )
        port = autostarted(client, free_port())
        assert httpx2.get(f"http://127.0.0.1:{port}/hello").status_code == 200
        manager.restart_kernel(now=False)
        client.wait_for_ready(timeout=60)
        # The old kernel stopped its server through its own shutdown (not killed): the
        # app's lifespan shutdown ran, and the new kernel gets the very same port.
        assert marker.read_text() == "shut down\n"
        execute(
            client,
            "from contextlib import asynccontextmanager\nfrom fastapi import FastAPI\n"
            "@asynccontextmanager\nasync def life(app):\n    yield\n"
            f"    open({str(marker)!r}, 'a').write('shut down again\\n')\n"
            "app = FastAPI(lifespan=life)",
        )
        assert autostarted(client, port) == port
        assert httpx2.get(f"http://127.0.0.1:{port}/hello").status_code == 200
    assert port_is_free(port)
    assert marker.read_text() == "shut down\nshut down again\n"


def test_server_keeps_serving_through_failing_cells(kernel: tuple[KernelManager, Any]) -> None:
    _, client = kernel
    port = autostarted(client, free_port())
    assert execute(client, "1 / 0").status == "error"
    assert execute(client, "%%route GET /broken\ndef broken(:\n    pass").status == "error"
    answers: list[int] = []

    def call() -> None:
        answers.append(httpx2.get(f"http://127.0.0.1:{port}/hello", timeout=10).status_code)

    worker = threading.Thread(target=call)
    worker.start()
    worker.join(30)
    assert answers == [200]
