"""nbapi in a real ipykernel, driven over ZMQ by jupyter_client as a notebook front end does."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager, start_new_kernel

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Outputs:
    status: str = ""
    stdout: str = ""
    stderr: str = ""
    results: list[str] = field(default_factory=list)  # text/plain of execute_result/display_data
    error: dict[str, Any] | None = None
    order: list[str] = field(default_factory=list)  # "display_data", "stream:stderr", ...
    msg_id: str = ""
    execution_count: int | None = None


# Every IOPub message seen, by the msg_id of the request it answers: display updates and
# output sent later (from nbapi's threads) to an earlier cell are looked up here.
SEEN: dict[str, list[dict[str, Any]]] = {}


def later_messages(
    client: Any, msg_id: str, found: Callable[[list[dict[str, Any]]], bool], timeout: float = 15
) -> list[dict[str, Any]]:
    """IOPub messages for the cell ``msg_id``, read until ``found(messages)`` holds."""
    deadline = time.monotonic() + timeout
    while not found(SEEN.get(msg_id, [])):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no such output for {msg_id}: {SEEN.get(msg_id)}")
        try:
            message = client.get_iopub_msg(timeout=min(left, 1.0))
        except queue.Empty:
            continue
        SEEN.setdefault(message["parent_header"].get("msg_id", ""), []).append(message)
    return SEEN[msg_id]


def execute(client: Any, code: str, cell_id: str | None = None, timeout: float = 30) -> Outputs:
    """Send an execute_request (with the cell id a notebook sends) and gather its outputs."""
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    metadata = {"cellId": cell_id} if cell_id else {}
    message = client.session.msg("execute_request", content, metadata=metadata)
    client.shell_channel.send(message)
    msg_id = message["header"]["msg_id"]
    outputs = Outputs(msg_id=msg_id)
    while True:
        reply = client.get_iopub_msg(timeout=timeout)
        SEEN.setdefault(reply["parent_header"].get("msg_id", ""), []).append(reply)
        if reply["parent_header"].get("msg_id") != msg_id:
            continue
        kind, data = reply["msg_type"], reply["content"]
        if kind != "status":
            outputs.order.append(f"stream:{data['name']}" if kind == "stream" else kind)
        if kind == "stream":
            if data["name"] == "stdout":
                outputs.stdout += data["text"]
            else:
                outputs.stderr += data["text"]
        elif kind in ("execute_result", "display_data"):
            outputs.results.append(data["data"].get("text/plain", ""))
        elif kind == "error":
            outputs.error = data
        elif kind == "status" and data["execution_state"] == "idle":
            break
    while True:  # skip replies to earlier requests (wait_for_ready may send several)
        reply = client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            outputs.status = reply["content"]["status"]
            outputs.execution_count = reply["content"].get("execution_count")
            return outputs


@pytest.fixture
def kernel() -> Iterator[tuple[KernelManager, Any]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)


def test_notebook_session_in_a_real_kernel(kernel: tuple[KernelManager, Any]) -> None:
    _, client = kernel
    assert execute(client, "%load_ext nbapi\n%config NbAPI.autostart = False").status == "ok"

    first = execute(
        client,
        "%%route GET /items/<int:item_id>\ndef read_item(item_id):\n    return {'v': 1, 'id': item_id}",
        cell_id="cell-a",
    )
    assert first.stdout == "nbapi: created app = FastAPI() in the notebook namespace\n"
    # In a kernel the route line is a display that nbapi updates when the handler fails.
    assert first.results == ["GET /items/{item_id} -> read_item()"]
    result = execute(client, "%http GET /items/3")
    assert result.results == ['HTTP 200 OK\n\n{\n  "v": 1,\n  "id": 3\n}']

    # The front end re-runs the same cell (same cell id) with an edited body and a new name.
    again = execute(
        client,
        "%%route GET /items/<int:item_id>\ndef get_item(item_id):\n    return {'v': 2}",
        cell_id="cell-a",
    )
    assert again.results == ["GET /items/{item_id} -> get_item() (replaced)"]
    assert execute(client, "%http GET /items/3").results == ['HTTP 200 OK\n\n{\n  "v": 2\n}']

    # Another cell with the same route: warned, and the first stays in force.
    other = execute(
        client, "%%route GET /items/{item_id}\ndef dup(item_id):\n    return 0", cell_id="cell-b"
    )
    assert "is unreachable: get_item() registered the same route earlier" in other.stderr

    # A bad line is one UsageError, no traceback, and the kernel carries on.
    bad = execute(client, "%%route GET items\ndef x():\n    return 1", cell_id="cell-c")
    assert bad.status == "error"
    assert bad.stderr == "UsageError: path 'items' must start with '/', e.g. /items/{item_id}\n"
    assert bad.error is None  # IPython prints usage errors without a traceback
    count = execute(client, "print(len([r for r in app.routes if r.path == '/items/{item_id}']))")
    assert count.stdout == "2\n"

    # The value of %http is usable in assertions.
    check = execute(client, "r = %http GET /items/9\nassert r.status_code == 200\nprint(r.json())")
    assert check.stdout == "{'v': 2}\n"


def test_route_line_comes_before_its_warnings(kernel: tuple[KernelManager, Any]) -> None:
    _, client = kernel
    execute(client, "%load_ext nbapi\n%config NbAPI.autostart = False")
    first = "%%route GET /users/{user_id}\ndef read_user(user_id: str):\n    return user_id"
    assert execute(client, first, cell_id="users").status == "ok"
    second = "%%route GET /users/me\nprint('defining me')\ndef read_me():\n    return 'me'"
    out = execute(client, second, cell_id="me")
    assert out.status == "ok"
    assert out.stdout == "defining me\n"
    assert out.results == ["GET /users/me -> read_me()"]
    assert out.stderr.startswith("nbapi warning: GET /users/me by read_me() is shadowed by")
    # The cell's own output first, then the route line, then its warning: as written.
    assert [kind for kind in out.order if kind != "execute_input"] == [
        "stream:stdout",
        "display_data",
        "stream:stderr",
    ]
