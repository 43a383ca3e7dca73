"""The per-route OpenAPI and the incremental comparison agree with FastAPI's whole document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.openapi.utils import get_openapi
from fastapi.security import OAuth2PasswordBearer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute

from nbapi._contract import Diff, diff_documents
from nbapi._openapi import Tracker, route_document
from nbapi._rules import Policy


class Pet(BaseModel):
    name: str = Field(max_length=20)
    price: float
    kind: Literal["cat", "dog"] = "cat"


class Tag(BaseModel):
    label: str | None = None
    aliases: list[str] = []
    pet: Pet | None = None


token = OAuth2PasswordBearer(tokenUrl="token")


def _variant(number: int, name: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The handler of one version of an operation, and its decorator keywords."""
    if number == 0:

        def handler(q: str | None = None) -> Pet: ...

    elif number == 1:

        def handler(q: str) -> Pet: ...  # type: ignore[misc]

    elif number == 2:

        def handler(q: int = Query(0, ge=0)) -> Tag: ...  # type: ignore[misc]

    elif number == 3:

        def handler(tag: Tag) -> list[Pet]: ...  # type: ignore[misc]

    elif number == 4:

        def handler(tag: Tag, q: str = Query(max_length=5)) -> Tag: ...  # type: ignore[misc]

    elif number == 5:

        def handler(pet: Pet, who: str = Depends(token)) -> Tag: ...  # type: ignore[misc]

    else:

        def handler() -> dict[str, int]: ...  # type: ignore[misc]

    handler.__name__ = name
    keywords: dict[str, Any] = {"status_code": 201} if number == 6 else {}
    return handler, keywords


PATHS = ("/pets", "/pets/{pet_id}", "/tags")
ACTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("set"),
            st.integers(0, 3),  # slot: a cell; two slots may register the same path
            st.sampled_from(PATHS),
            st.sampled_from(("GET", "POST")),
            st.integers(0, 6),
        ),
        st.tuples(st.just("remove"), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=8,
)


def _full(routes: list[BaseRoute]) -> dict[str, Any]:
    return get_openapi(title="t", version="1", routes=routes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=ACTIONS, enum_breaks=st.booleans())
def test_incremental_equals_full_diff(actions: list[tuple[Any, ...]], enum_breaks: bool) -> None:
    app = FastAPI()
    tracker = Tracker()
    policy = Policy(response_enum_added_breaks=enum_breaks)
    tracker.observe(app, policy)
    slots: dict[int, BaseRoute] = {}
    for step, action in enumerate(actions):
        before = list(app.router.routes)
        routes = app.router.routes
        if action[0] == "remove":
            route = slots.pop(action[1], None)
            routes[:] = [r for r in routes if r is not route]
        else:
            _, slot, path, method, number = action
            handler, keywords = _variant(number, f"h{slot}_{number}_{step % 2}")
            app.api_route(path, methods=[method], **keywords)(handler)
            new = routes.pop()
            old = slots.get(slot)
            index = next((i for i, r in enumerate(routes) if r is old), None)
            if index is None:
                routes.append(new)
            else:
                routes[index] = new
            slots[slot] = new
        incremental = Diff(tracker.observe(app, policy)).lines()
        full = diff_documents(_full(before), _full(list(app.router.routes)), policy).lines()
        assert incremental == full, action


def test_route_documents_hold_what_the_whole_document_holds() -> None:
    app = FastAPI()
    for number in range(7):
        handler, keywords = _variant(number, f"h{number}")
        app.api_route(f"/v{number}/{{item_id}}", methods=["PUT"], **keywords)(handler)
    router = APIRouter(prefix="/router", tags=["r"])
    router.get("/pets")(_variant(3, "in_router")[0])
    app.include_router(router)
    merged: dict[str, Any] = {"paths": {}, "components": {"schemas": {}}}
    for route in app.router.routes:
        part = route_document(route)
        for path, item in part["paths"].items():
            merged["paths"].setdefault(path, {}).update(item)
        for name, schema in part.get("components", {}).get("schemas", {}).items():
            # Every route names its schemas on its own; keep each under a name of its own.
            merged["components"]["schemas"][name] = schema
    whole = app.openapi()
    assert set(merged["paths"]) == set(whole["paths"]) - {"/openapi.json"}
    assert diff_documents(whole, merged).changes == []
    assert len(merged["paths"]) == 8


def test_only_changed_routes_are_generated() -> None:
    app = FastAPI()
    for number in range(50):
        app.get(f"/r{number}")(_variant(0, f"r{number}")[0])
    tracker, policy = Tracker(), Policy()
    tracker.observe(app, policy)
    assert tracker.cache.generated == 0  # adding routes generates nothing
    routes = app.router.routes
    for rerun, number in enumerate((1, 0, 1)):
        app.get("/r7")(_variant(number, "r7")[0])
        index = next(i for i, r in enumerate(routes) if getattr(r, "path", "") == "/r7")
        routes[index] = routes.pop()
        lines = [c.line() for c in Diff(tracker.observe(app, policy)).breaking]
        # The old version is generated once; after that only the new one is.
        assert tracker.cache.generated == 2 + rerun
        expected = ["breaking change in GET /r7: query parameter 'q' is now required"]
        assert lines == (expected if number == 1 else [])


def test_included_router_changes_are_seen() -> None:
    app = FastAPI()
    router = APIRouter()
    router.get("/pets")(_variant(0, "pets")[0])
    app.include_router(router, prefix="/v1")
    tracker, policy = Tracker(), Policy()
    tracker.observe(app, policy)
    router.routes.clear()
    router.get("/pets")(_variant(1, "pets")[0])
    lines = [c.line() for c in tracker.observe(app, policy)]
    assert lines == ["breaking change in GET /v1/pets: query parameter 'q' is now required"]


def test_a_new_app_is_not_a_change() -> None:
    tracker, policy = Tracker(), Policy()
    first = FastAPI()
    first.get("/pets")(_variant(0, "pets")[0])
    tracker.observe(first, policy)
    second = FastAPI()
    assert tracker.observe(second, policy) == []
    second.get("/pets")(_variant(1, "pets")[0])
    added = tracker.observe(second, policy)  # a new operation of the new app, no more
    assert [c.line() for c in added] == ["compatible change in GET /pets: operation added"]
    # ... but against each operation's first version in the session, it did change.
    lines = [c.line() for c in tracker.since_first(second, policy)]
    assert lines == ["breaking change in GET /pets: query parameter 'q' is now required"]


def test_merged_document_is_what_fastapi_serves() -> None:
    app = FastAPI(title="Shop", version="2", description="Pets & tags", contact={"name": "Ada"})
    for number in (0, 1, 2, 5, 6):  # each model in one direction only: FastAPI's names too
        handler, keywords = _variant(number, f"h{number}")
        app.api_route(f"/v{number}/{{item_id}}", methods=["GET"], **keywords)(handler)
    router = APIRouter(prefix="/router")
    router.get("/items")(_variant(0, "in_router")[0])
    app.include_router(router)
    tracker = Tracker()
    merged = tracker.document(app, Policy())
    assert merged == app.openapi()
    assert tracker.document(app, Policy()) == merged  # from the cache, nothing generated
    generated = tracker.cache.generated
    app.get("/v7")(_variant(3, "h7")[0])  # a body model: Tag as input, Pet as output
    app.openapi_schema = None
    merged = tracker.document(app, Policy())
    assert tracker.cache.generated == generated + 1
    assert diff_documents(app.openapi(), merged).changes == []


def test_merged_document_renames_a_redefined_model() -> None:
    first = type("Pet", (BaseModel,), {"__annotations__": {"name": str}})
    second = type("Pet", (BaseModel,), {"__annotations__": {"age": int}})
    app = FastAPI()

    def old() -> None: ...

    def new() -> None: ...

    app.get("/old", response_model=first)(old)
    app.get("/new", response_model=second)(new)
    merged = Tracker().document(app, Policy())
    refs = [
        merged["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        for path in ("/old", "/new")
    ]
    assert refs == [{"$ref": "#/components/schemas/Pet"}, {"$ref": "#/components/schemas/Pet-2"}]
    assert list(merged["components"]["schemas"]["Pet-2"]["properties"]) == ["age"]
