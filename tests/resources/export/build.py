"""Build the export fixture notebooks by running them in a real kernel.

Usage: ``python tests/resources/export/build.py``. Each notebook is written from the
cell sources below, executed with nbclient in a fresh ``python3`` kernel (working
directory: this folder) and saved with the outputs the kernel produced.
``unfaithful.ipynb`` (built by the tests, see ``build_unfaithful``) then loses its
``PRICES`` cell, as when a user deletes a cell whose variable the kernel still holds.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

SHOP = [
    ("markdown", "# A small shop API, built with nbapi", []),
    ("code", "%load_ext nbapi\n%config NbAPI.autostart = False", []),
    (
        "code",
        "from typing import Annotated\n\n"
        "from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request\n"
        "from pydantic import BaseModel\n\n"
        'app = FastAPI(title="Shop", version="1.0")\n\n\n'
        "class Item(BaseModel):\n"
        "    name: str\n"
        "    price: float\n\n\n"
        'ITEMS: dict[int, Item] = {1: Item(name="Lamp", price=12.5)}',
        [],
    ),
    (
        "code",
        '@app.middleware("http")\n'
        "async def served_by(request: Request, call_next):\n"
        "    response = await call_next(request)\n"
        '    response.headers["x-served-by"] = "shop"\n'
        "    return response",
        [],
    ),
    (
        "code",
        "%%route GET /items/<int:item_id> tags=['items']\n"
        "def read_item(item_id):\n"
        "    if item_id not in ITEMS:\n"
        '        raise HTTPException(status_code=404, detail="no such item")\n'
        "    return ITEMS[item_id]",
        [],
    ),
    (
        "code",
        "%%route POST /items status_code=201, tags=['items']\n"
        "def create_item(item: Item) -> dict:\n"
        "    item_id = max(ITEMS) + 1\n"
        "    ITEMS[item_id] = item\n"
        '    return {"id": item_id, **item.model_dump()}',
        [],
    ),
    ("code", "%http GET /items/1", []),
    ("code", "%http GET /items/abc", []),
    ("code", '%http POST /items {"name": "Desk", "price": 80}', []),
    (
        "code",
        "%%route GET,HEAD /users/:name\n"
        "def greet_user(name: str, accept_language: Annotated[str, Header()] = 'en'):\n"
        '    return {"user": name, "lang": accept_language[:2]}',
        [],
    ),
    ("code", "%%http GET /users/ada\nAccept-Language: fr-CH\n", []),
    (
        "code",
        "def require_key(x_key: Annotated[str, Header()]):\n"
        '    if x_key != "sesame":\n'
        '        raise HTTPException(status_code=401, detail="bad key")\n\n\n'
        'router = APIRouter(prefix="/admin", dependencies=[Depends(require_key)])\n\n\n'
        '@router.get("/stats")\n'
        "def stats():\n"
        '    return {"items": len(ITEMS)}\n\n\n'
        "app.include_router(router)",
        [],
    ),
    ("code", "%%http GET /admin/stats\nX-Key: sesame\n", []),
    (
        "code",
        "%%route WS /echo\n"
        "async def echo(websocket):\n"
        "    await websocket.accept()\n"
        "    await websocket.send_text(await websocket.receive_text())",
        ["nbapi-skip"],
    ),
    (
        "code",
        "from fastapi import WebSocket\n\n\n"
        '@app.websocket("/echo")\n'
        "async def echo(websocket: WebSocket):\n"
        "    await websocket.accept()\n"
        "    await websocket.send_text(await websocket.receive_text())",
        [],
    ),
    ("code", 'print("routes so far:", len(app.routes))\nsorted(ITEMS)', []),
    ("code", "%%route GET /items/<int:item_id>\ndef read_item_again(item_id):\n    return {}", []),
    (
        "code",
        "ok = %http GET /items/2\n"
        "assert ok.status_code == 200, ok.text\n"
        'assert ok.json()["name"] == "Desk", ok.text\n'
        "r = %http GET /admin/stats\n"
        "assert r.status_code == 422\n"
        'print(r.headers["x-served-by"])',
        [],
    ),
    ("code", 'print("shop ready")', ["nbapi-export"]),
]

UNFAITHFUL = [
    ("code", "%load_ext nbapi\n%config NbAPI.autostart = False", []),
    ("code", "PRICES = {'lamp': 12.5}", []),
    ("code", "%%route GET /prices/<name>\ndef price(name: str):\n    return PRICES[name]", []),
    ("code", "scratch = 1\n%reset_selective -f scratch", []),
    ("code", "def broken(:\n    pass", ["keep"]),
    ("code", "%http GET /prices/lamp", []),
]


def build(
    name: str,
    cells: list[tuple[str, str, list[str]]],
    allow_errors: bool = False,
    directory: Path = HERE,
) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for index, (kind, source, tags) in enumerate(cells):
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        cell = make(source, id=f"{Path(name).stem}-{index:02d}")
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    client = NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        allow_errors=allow_errors,
        record_timing=False,
        resources={"metadata": {"path": str(directory)}},
    )
    client.execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    path = directory / name
    nbformat.write(nb, path)
    return path


def build_unfaithful(directory: Path) -> Path:
    """unfaithful.ipynb, run, then without its PRICES cell (the kernel kept PRICES)."""
    path = build("unfaithful.ipynb", UNFAITHFUL, allow_errors=True, directory=directory)
    nb = nbformat.read(path, as_version=4)
    del nb.cells[1]
    nbformat.write(nb, path)
    return path


def main() -> None:
    # unfaithful.ipynb holds a syntax error, so it is built by the tests (build_unfaithful)
    # in a temporary directory: ruff checks every notebook under tests/.
    build("shop.ipynb", SHOP)


if __name__ == "__main__":
    main()
