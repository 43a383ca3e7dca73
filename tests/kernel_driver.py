"""A real ipykernel driven over ZMQ by jupyter_client, as a notebook front end drives it.

The tests (and benchmarks/server_bench.py) send cells and read their outputs through here.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager, start_new_kernel

ROOT = Path(__file__).resolve().parent.parent

Message = dict[str, Any]

# Every IOPub message read, by the msg_id of the request it answers: display updates and
# output sent later (from nbapi's threads) to an earlier cell are looked up here.
SEEN: dict[str, list[Message]] = {}
# What a front end shows as a cell's output (an update replaces an earlier display).
SHOWN = ("execute_result", "display_data", "update_display_data")


@dataclass
class Outputs:
    """What one execute_request produced, as the front end received it."""

    msg_id: str
    status: str = ""  # of the execute_reply: "ok", "error", "aborted"
    execution_count: int | None = None
    stdout: str = ""
    stderr: str = ""  # the stream only: an exception's traceback is in ``error``
    results: list[str] = field(default_factory=list)  # text/plain of execute_result/display_data
    displays: list[dict[str, Any]] = field(default_factory=list)  # their whole contents
    html: list[str] = field(default_factory=list)  # text/html of displays and their updates
    error: dict[str, Any] | None = None
    order: list[str] = field(default_factory=list)  # "display_data", "stream:stderr", ...
    read: list[Message] = field(default_factory=list)  # all IOPub read meanwhile, any cell

    @property
    def text(self) -> str:
        """The text/plain of the results and displays, one per line."""
        return "\n".join(self.results)

    @property
    def messages(self) -> list[Message]:
        """This cell's own IOPub messages, in order."""
        return [m for m in self.read if m["parent_header"].get("msg_id") == self.msg_id]

    @property
    def updates(self) -> list[dict[str, Any]]:
        """Contents of every update_display_data read meanwhile, of any cell."""
        return [m["content"] for m in self.read if m["msg_type"] == "update_display_data"]

    @property
    def transcript(self) -> str:
        """Everything the cell showed as text, in order: streams, displays (and their
        updates), one per line, and the traceback."""
        out = ""
        for message in self.messages:
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out += content["text"]
            elif kind in SHOWN:
                out += content["data"].get("text/plain", "") + "\n"
            elif kind == "error":
                out += "\n".join(content["traceback"])
        return out

    def contents(self, kind: str) -> list[dict[str, Any]]:
        """Contents of this cell's own ``kind`` messages (display_data, execute_result, ...)."""
        return [m["content"] for m in self.messages if m["msg_type"] == kind]

    def add(self, message: Message) -> None:
        """Take in one of this cell's IOPub messages."""
        kind, content = message["msg_type"], message["content"]
        if kind != "status":
            self.order.append(f"stream:{content['name']}" if kind == "stream" else kind)
        if kind == "stream":
            if content["name"] == "stdout":
                self.stdout += content["text"]
            else:
                self.stderr += content["text"]
        elif kind in ("execute_result", "display_data"):
            self.results.append(content["data"].get("text/plain", ""))
            self.displays.append(content)
        elif kind == "error":
            self.error = content
        if kind in SHOWN and "text/html" in content["data"]:
            self.html.append(content["data"]["text/html"])


def read_iopub(client: Any, timeout: float) -> Message:
    """The next IOPub message, also kept in SEEN; queue.Empty after ``timeout`` seconds."""
    message: Message = client.get_iopub_msg(timeout=timeout)
    SEEN.setdefault(message["parent_header"].get("msg_id", ""), []).append(message)
    return message


def send(client: Any, code: str, cell_id: str | None = None) -> str:
    """Send an execute_request, with the cell id JupyterLab sends if given; its msg_id."""
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
    return str(message["header"]["msg_id"])


def collect(client: Any, msg_id: str, timeout: float = 60) -> Outputs:
    """The outputs of request ``msg_id``: IOPub until its idle status, then its reply."""
    outputs = Outputs(msg_id=msg_id)
    deadline = time.monotonic() + timeout
    try:
        while True:
            message = read_iopub(client, max(deadline - time.monotonic(), 0.01))
            outputs.read.append(message)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            outputs.add(message)
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
        while True:  # skip replies to earlier requests (wait_for_ready may send several)
            reply = client.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.01))
            if reply["parent_header"].get("msg_id") == msg_id:
                outputs.status = reply["content"]["status"]
                outputs.execution_count = reply["content"].get("execution_count")
                return outputs
    except queue.Empty:
        msg = f"request {msg_id} not done in {timeout} s; so far: {outputs.transcript!r}"
        raise TimeoutError(msg) from None


def execute(client: Any, code: str, cell_id: str | None = None, timeout: float = 60) -> Outputs:
    """Run ``code`` as the cell ``cell_id`` and gather its outputs."""
    return collect(client, send(client, code, cell_id), timeout)


def later_messages(
    client: Any, msg_id: str, found: Callable[[list[Message]], bool], timeout: float = 15
) -> list[Message]:
    """IOPub messages for the cell ``msg_id``, read until ``found(messages)`` holds."""
    deadline = time.monotonic() + timeout
    while not found(SEEN.get(msg_id, [])):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no such output for {msg_id}: {SEEN.get(msg_id)}")
        try:
            read_iopub(client, min(left, 1.0))
        except queue.Empty:
            continue
    return SEEN[msg_id]


def start() -> tuple[KernelManager, Any]:
    """A python3 kernel that imports nbapi from this checkout, and its started client."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))
    return manager, client


def stop(manager: KernelManager, client: Any) -> None:
    client.stop_channels()
    if manager.is_alive():  # a test may have shut it down itself
        manager.shutdown_kernel(now=False)


@contextmanager
def start_kernel() -> Iterator[tuple[KernelManager, Any]]:
    manager, client = start()
    try:
        yield manager, client
    finally:
        stop(manager, client)
