"""nbapi in a real ipykernel, driven over ZMQ by jupyter_client as a notebook front end does."""

from __future__ import annotations

from typing import Any

import pytest
from jupyter_client.manager import KernelManager
from kernel_driver import execute

pytestmark = pytest.mark.kernel


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
