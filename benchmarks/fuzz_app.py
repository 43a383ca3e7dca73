"""The app the fuzz benchmark tests: ten operations, one planted bug (``GET /bills/split``)."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class User(BaseModel):
    username: str
    age: int


ITEMS: dict[int, Item] = {1: Item(name="lamp", price=12.5)}
USERS: dict[str, User] = {}


@app.get("/items")
def list_items(skip: int = 0, limit: int = 10) -> list[Item]:
    return list(ITEMS.values())[skip : skip + limit]


@app.post("/items", status_code=201)
def create_item(item: Item) -> Item:
    ITEMS[len(ITEMS) + 1] = item
    return item


@app.get("/items/{item_id}", responses={404: {"description": "no such item"}})
def read_item(item_id: int) -> Item:
    if item_id not in ITEMS:
        raise HTTPException(404, "no such item")
    return ITEMS[item_id]


@app.put("/items/{item_id}")
def replace_item(item_id: int, item: Item) -> Item:
    ITEMS[item_id] = item
    return item


@app.delete("/items/{item_id}", status_code=204)
def delete_item(item_id: int) -> None:
    ITEMS.pop(item_id, None)


@app.get("/search")
def search(q: str = "", min_price: float = 0.0) -> list[str]:
    return [i.name for i in ITEMS.values() if q in i.name and i.price >= min_price]


@app.post("/users", status_code=201)
def create_user(user: User) -> User:
    USERS[user.username] = user
    return user


@app.get("/users/{username}/greeting")
def greet(username: str, excited: bool = False) -> dict[str, str]:
    return {"greeting": f"Hello, {username}{'!' if excited else '.'}"}


@app.get("/bills/split")
def split(total: int, people: int = 1) -> dict[str, int]:
    return {"each": total // people}  # the planted bug: people=0


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
