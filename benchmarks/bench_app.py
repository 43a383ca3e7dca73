"""The app every benchmark serves: one sync and one async path operation."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/sync/{item_id}")
def read_sync(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.get("/async/{item_id}")
async def read_async(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}
