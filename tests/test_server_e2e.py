"""The live server inside real ipykernels, driven over ZMQ by jupyter_client."""

from __future__ import annotations

import os
import queue
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from jupyter_client.manager import KernelManager, start_new_kernel
from support import free_port

pytestmark = [pytest.mark.kernel, pytest.mark.server]

ROOT = Path(__file__).resolve().parent.parent
SERVING = re.compile(r"nbapi: serving the kernel's app at http://127\.0\.0\.1:(\d+)/")


@dataclass
class Cell:
    msg_id: str = ""
    status: str = ""
    stdout: str = ""
    stderr: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)  # display_data / results
    others: list[dict[str, Any]] = field(default_factory=list)  # iopub for other parents

    @property
    def text(self) -> str:
        return "\n".join(d["data"].get("text/plain", "") for d in self.displays)


def send(client: Any, code: str) -> str:
    content = {"code": code, "silent": False, "store_history": True, "allow_stdin": False}
    message = client.session.msg("execute_request", content)
    client.shell_channel.send(message)
    return str(message["header"]["msg_id"])


def collect(client: Any, msg_id: str, timeout: float = 60) -> Cell:
    cell = Cell(msg_id=msg_id)
    while True:
        reply = client.get_iopub_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") != msg_id:
            cell.others.append(reply)
            continue
        kind, data = reply["msg_type"], reply["content"]
        if kind == "stream":
            setattr(cell, data["name"], getattr(cell, data["name"]) + data["text"])
        elif kind in ("execute_result", "display_data"):
            cell.displays.append(data)
        elif kind == "error":
            cell.stderr += "\n".join(data["traceback"])
        elif kind == "status" and data["execution_state"] == "idle":
            break
    while True:
        reply = client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            cell.status = reply["content"]["status"]
            return cell


def execute(client: Any, code: str) -> Cell:
    return collect(client, send(client, code))


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def start() -> tuple[KernelManager, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))
    return manager, client


@pytest.fixture
def kernel() -> Iterator[tuple[KernelManager, Any]]:
    manager, client = start()
    try:
        yield manager, client
    finally:
        client.stop_channels()
        if manager.is_alive():
            manager.shutdown_kernel(now=False)


def autostarted(client: Any, first_port: int) -> int:
    """Load nbapi with the first port to try, register a route; return the served port."""
    assert execute(client, f"%load_ext nbapi\n%config NbAPI.port = {first_port}").status == "ok"
    cell = execute(client, "%%route GET /hello\ndef hello():\n    return {'hi': 1}")
    assert cell.status == "ok", cell.stderr
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
    assert (after.stdout, after.stderr, after.text) == ("", "", "2")
    log = execute(client, "%nbapi log --errors").text
    assert "500 GET /boom (server)  ZeroDivisionError: division by zero" in log
    assert "uvicorn warning: Invalid HTTP request received." in log


def test_two_kernels_get_their_own_ports_and_tell_each_other_apart() -> None:
    first = free_port()
    (manager_a, client_a), (manager_b, client_b) = start(), start()
    try:
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
    finally:
        for manager, client in ((manager_a, client_a), (manager_b, client_b)):
            client.stop_channels()
            manager.shutdown_kernel(now=False)


def test_shutdown_and_restart_free_the_port(tmp_path: Path) -> None:
    manager, client = start()
    marker = tmp_path / "lifespan.txt"
    try:
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
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
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
