"""The route registry on its own: no IPython, a plain FastAPI app and functions."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from nbapi._registry import (
    Reachability,
    Registry,
    RouteError,
    added_warnings,
    remove_route,
    unreachable,
)
from nbapi._spec import parse_route_line


def user_paths(app: FastAPI) -> list[str]:
    return [
        r.path
        for r in app.routes
        if r.path not in {"/openapi.json", "/redoc"} and not r.path.startswith("/docs")
    ]


def register(
    registry: Registry, app: FastAPI, owner: str, line: str, endpoint: Any, **keywords: Any
) -> list[str]:
    _, warnings = registry.register(app, owner, parse_route_line(line), endpoint, keywords)
    return warnings


def test_register_replace_and_remove() -> None:
    app, registry = FastAPI(), Registry()

    def a() -> int:
        return 1

    def b() -> int:
        return 2

    register(registry, app, "cell-a", "GET /a", a)
    register(registry, app, "cell-b", "GET /b", b)
    register(registry, app, "cell-a", "GET /a2", b)
    assert user_paths(app) == ["/a2", "/b"]
    assert set(registry.owned(app)) == {"cell-a", "cell-b"}
    # cell-a runs again without %%route: its route goes; once gone, nothing more goes.
    before = {id(r) for r in app.router.routes}
    removed, _ = registry.settle_cell(app, "cell-a", before, ran_route=False)
    assert [r.path for r in removed] == ["/a2"]
    assert registry.settle_cell(app, "cell-a", before, ran_route=False) == ([], [])
    assert user_paths(app) == ["/b"]


def test_owned_routes_follow_the_app() -> None:
    registry = Registry()
    first, second = FastAPI(), FastAPI()
    register(registry, first, "cell", "GET /x", lambda: 1)
    assert registry.owned(second) == {}
    # The same cell on a new app adds a route there and leaves the old app alone.
    register(registry, second, "cell", "GET /x", lambda: 2)
    assert user_paths(first) == ["/x"]
    assert user_paths(second) == ["/x"]
    assert TestClient(second).get("/x").json() == 2


def test_route_removed_behind_the_registry_is_added_again() -> None:
    app, registry = FastAPI(), Registry()
    register(registry, app, "cell", "GET /x", lambda: 1)
    app.router.routes[:] = [r for r in app.router.routes if r.path != "/x"]
    register(registry, app, "cell", "GET /x", lambda: 2)
    assert TestClient(app).get("/x").json() == 2


def test_openapi_cache_is_dropped() -> None:
    app, registry = FastAPI(), Registry()
    register(registry, app, "cell", "GET /one", lambda: 1)
    assert list(app.openapi()["paths"]) == ["/one"]
    register(registry, app, "cell", "GET /two", lambda: 1)
    assert app.openapi_schema is None
    assert list(app.openapi()["paths"]) == ["/two"]


def test_failed_registration_restores_everything() -> None:
    app, registry = FastAPI(), Registry()

    def handler(item_id):  # type: ignore[no-untyped-def]
        return item_id

    register(registry, app, "cell", "GET /x/<int:item_id>", handler)
    routes = list(app.router.routes)
    with pytest.raises(RouteError, match=r"^FastAPI refused GET /y: "):
        register(registry, app, "cell", "GET /y", handler, response_model=3)
    assert app.router.routes == routes
    assert handler.__annotations__ == {"item_id": int}


@pytest.mark.parametrize(
    ("keyword", "message"),
    [
        ("stauts_code", "unknown keyword 'stauts_code' for %%route; did you mean 'status_code'?"),
        (
            "colour",
            "unknown keyword 'colour' for %%route; use a keyword of FastAPI's path-operation decorators (see %%route?)",
        ),
    ],
)
def test_unknown_keyword(keyword: str, message: str) -> None:
    app, registry = FastAPI(), Registry()
    with pytest.raises(RouteError) as info:
        register(registry, app, "cell", "GET /x", lambda: 1, **{keyword: 1})
    assert str(info.value) == message


def test_websocket_keywords_are_checked_against_websocket() -> None:
    app, registry = FastAPI(), Registry()

    async def ws(websocket: Any) -> None:
        return None

    with pytest.raises(RouteError, match="unknown keyword 'status_code' for a websocket route"):
        register(registry, app, "cell", "WS /ws", ws, status_code=201)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("GET /users/{user_id}", "GET /users/me", "is shadowed by /users/{user_id}"),
        ("GET /users/{user_id}", "POST /users/me", None),  # other method: no conflict
        # The int type is checked after matching, so 'me' still goes to the first route (a 422).
        ("GET /users/<int:user_id>", "GET /users/me", "is shadowed by /users/{user_id}"),
        ("GET /users/me", "GET /users/{user_id}", None),  # fixed path first: fine
        ("GET,POST /a", "POST /a", "POST /a by second_handler() is unreachable"),
        ("GET /files/{p:path}", "GET /files/readme", "is shadowed by /files/{p:path}"),
        ("GET /{p:path}", "GET /users/me", "is shadowed by /{p:path}"),  # nothing literal
        ("GET /user{user_id}", "GET /users/me", None),  # a literal prefix, no full match
        ("GET /users/{user_id}", "GET /user/me", None),  # a different literal part
    ],
)
def test_conflict_warnings(first: str, second: str, expected: str | None) -> None:
    app, registry = FastAPI(), Registry()

    def first_handler(user_id=None, p=None):  # type: ignore[no-untyped-def]
        return 1

    def second_handler(user_id=None):  # type: ignore[no-untyped-def]
        return 2

    register(registry, app, "one", first, first_handler)
    warnings = register(registry, app, "two", second, second_handler)
    warnings = [w for w in warnings if "path parameter" not in w]
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert expected in warnings[0]


# -- issue 12, item 2: keyword values that break the app's /openapi.json ------------------------
@pytest.mark.parametrize(
    ("keywords", "reason"),
    [
        ({"status_code": "abc"}, "ValueError"),
        ({"response_class": int}, "AttributeError"),
    ],
)
def test_keywords_that_break_openapi_are_refused_and_change_nothing(
    keywords: dict[str, Any], reason: str
) -> None:
    app, registry = FastAPI(), Registry()

    def a() -> int:
        return 1

    def b() -> int:
        return 2

    register(registry, app, "cell-a", "GET /a", a)
    routes = [id(route) for route in app.router.routes]
    schema = TestClient(app).get("/openapi.json").json()
    with pytest.raises(RouteError, match=reason) as e:  # at decoration, or when documented
        register(registry, app, "cell-b", "GET /b", b, **keywords)
    assert len(str(e.value).splitlines()) == 1
    with pytest.raises(RouteError):  # re-running the cell that owns /a: /a stays as it was
        register(registry, app, "cell-a", "GET /a", b, **keywords)
    assert [id(route) for route in app.router.routes] == routes
    app.openapi_schema = None
    assert TestClient(app).get("/openapi.json").json() == schema
    assert TestClient(app).get("/a").json() == 1


def test_handler_whose_annotation_breaks_openapi_is_refused() -> None:
    # Found by tests/test_hardening.py: a string annotation naming nothing is taken at
    # decoration, then /openapi.json fails with pydantic's "not fully defined".
    app, registry = FastAPI(), Registry()
    namespace: dict[str, Any] = {}
    exec("def f(q: 'str | None' = None, x: 'Nope' = 1):\n    return 1", namespace)
    with pytest.raises(RouteError, match=r"would break the app's /openapi\.json") as caught:
        register(registry, app, "cell-f", "GET /f", namespace["f"])
    assert len(str(caught.value).splitlines()) == 1
    assert "/f" not in user_paths(app)
    assert TestClient(app).get("/openapi.json").status_code == 200


# -- cells own the routes they add with plain code ------------------------------------
def plain_cell(app: FastAPI, registry: Registry, owner: str | None, paths: list[str]) -> Any:
    """What a cell with one ``@app.get(path)`` per path does, then post_run_cell."""
    before = {id(route) for route in app.router.routes}
    for path in paths:
        app.get(path)(lambda path=path: path)
    return registry.settle_cell(app, owner, before, ran_route=False)


def test_plain_routes_are_replaced_in_place_when_their_cell_runs_again() -> None:
    app, registry = FastAPI(), Registry()
    plain_cell(app, registry, "a", ["/a"])
    plain_cell(app, registry, "b", ["/b"])
    removed, added = plain_cell(app, registry, "a", ["/a", "/a2"])
    assert [r.path for r in removed] == ["/a"]
    assert [r.path for r in added] == ["/a", "/a2"]
    assert user_paths(app) == ["/a", "/a2", "/b"]
    removed, added = plain_cell(app, registry, "a", [])
    assert ([r.path for r in removed], added) == (["/a", "/a2"], [])
    assert user_paths(app) == ["/b"]


def test_a_cell_without_id_keeps_adding() -> None:
    app, registry = FastAPI(), Registry()
    plain_cell(app, registry, None, ["/a"])
    removed, _ = plain_cell(app, registry, None, ["/a"])
    assert removed == []
    assert user_paths(app) == ["/a", "/a"]


def test_a_route_cell_run_without_route_loses_its_route() -> None:
    app, registry = FastAPI(), Registry()
    register(registry, app, "cell", "GET /x", lambda: 1)
    register(registry, app, "other", "GET /y", lambda: 2)
    # %%route ran in the cell: its route stays.
    before = {id(route) for route in app.router.routes}
    assert registry.settle_cell(app, "cell", before, ran_route=True) == ([], [])
    # The same cell, now plain code that makes the route with a decorator: it takes its place.
    removed, _ = plain_cell(app, registry, "cell", ["/x"])
    assert [r.path for r in removed] == ["/x"]
    assert user_paths(app) == ["/x", "/y"]
    assert TestClient(app).get("/x").json() == "/x"
    assert "cell" not in registry.owned(app)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("/users/{user_id}", "/users/me", "GET /users/me by two() is shadowed by /users/{user_id}"),
        ("/items/{item_id}", "/items/{item_id}", "GET /items/{item_id} by two() is unreachable"),
        ("/users/me", "/users/{user_id}", None),
        ("/a/{x}", "/b", None),
    ],
)
def test_conflicts_between_plain_routes(first: str, second: str, message: str | None) -> None:
    app = FastAPI()
    app.get(first, name="one")(lambda: 1)
    app.get(second, name="two")(lambda: 2)
    routes = app.router.routes
    warnings = [w for w in added_warnings(routes, [routes[-1]]) if "path parameter" not in w]
    hidden = unreachable(routes)
    if message is None:
        assert warnings == []
        assert id(routes[-1]) not in hidden
    else:
        assert warnings[0].startswith(message)
        assert hidden[id(routes[-1])].startswith(message)


def test_a_route_put_before_another_warns_about_the_one_it_hides() -> None:
    app = FastAPI()
    app.get("/users/me", name="read_me")(lambda: "me")
    app.get("/users/{user_id}", name="read_user")(lambda user_id: user_id)
    routes = app.router.routes
    assert added_warnings(routes, [routes[-1]]) == []
    routes.insert(len(routes) - 2, routes.pop())  # the pattern now comes first
    assert added_warnings(routes, [routes[-2]]) == [
        "GET /users/me by read_me() is shadowed by /users/{user_id} of read_user(), "
        "which was registered earlier and matches first; register the fixed path first"
    ]


@pytest.mark.parametrize(
    ("method", "path", "lines", "left"),
    [
        ("GET", "/items/{item_id}", ["removed GET /items/{item_id} -> read()"], ["/other"]),
        ("get", "/items/<item_id>", ["removed GET /items/{item_id} -> read()"], ["/other"]),
        ("GET", "/items/:item_id", ["removed GET /items/{item_id} -> read()"], ["/other"]),
    ],
)
def test_remove_route_in_any_path_syntax(
    method: str, path: str, lines: list[str], left: list[str]
) -> None:
    app = FastAPI()
    app.get("/items/{item_id}", name="read")(lambda item_id: item_id)
    app.get("/other")(lambda: 0)
    assert remove_route(app, method, path) == lines
    assert user_paths(app) == left
    assert TestClient(app).get("/items/1").status_code == 404


def test_remove_one_method_of_a_route_keeps_the_others() -> None:
    app = FastAPI()
    app.api_route("/x", methods=["GET", "POST"], name="both")(lambda: 1)
    assert remove_route(app, "POST", "/x") == ["removed POST /x from both()"]
    client = TestClient(app)
    assert client.get("/x").status_code == 200
    assert client.post("/x").status_code == 405


def test_remove_a_missing_route_is_one_line_with_a_hint() -> None:
    app = FastAPI()
    app.get("/items/{item_id}")(lambda item_id: item_id)
    with pytest.raises(RouteError) as info:
        remove_route(app, "GET", "/item/{item_id}")
    assert str(info.value) == (
        "no GET /item/{item_id} route in the app; did you mean '/items/{item_id}'? "
        "%nbapi routes lists them (routes inside an included router are removed from the router)"
    )


@pytest.mark.parametrize(
    ("method", "path", "owner"),
    [
        ("GET", "/items/7", "cell-items"),
        ("GET", "/items/7?q=1", "cell-items"),  # the query string is not the path
        ("POST", "/items/7", None),  # no route answers POST there
        ("GET", "/other", None),
    ],
)
def test_owner_of_request(method: str, path: str, owner: str | None) -> None:
    app, registry = FastAPI(), Registry()

    def item(item_id: int) -> int:
        return item_id

    register(registry, app, "cell-items", "GET /items/{item_id}", item)
    assert registry.owner_of_request(app, method, path) == owner
    assert registry.owner_of_request(None, method, path) is None


PATHS = ["/a", "/{anything}", "/a/{x}", "/a/b", "/a/{x:int}", "/a/b/{y}", "/c", "/{p}/b"]
METHODS = [["GET"], ["POST"], ["GET", "POST"]]
# One change to a list of routes: (kind, position, path index, methods index, websocket)
CHANGES = st.tuples(
    st.sampled_from(["add", "replace", "remove", "move", "reverse"]),
    st.integers(0, 6),
    st.integers(0, len(PATHS) - 1),
    st.integers(0, len(METHODS) - 1),
    st.booleans(),
)


def make_route(path: str, methods: list[str], websocket: bool, name: str) -> Any:
    if websocket:
        return APIWebSocketRoute(path, endpoint=lambda: None, name=name)
    return APIRoute(path, endpoint=lambda: None, methods=methods, name=name)


@settings(derandomize=True, database=None, max_examples=150, deadline=None)
@given(st.lists(CHANGES, min_size=1, max_size=25))
def test_reachability_follows_changes_as_the_whole_computation_would(
    changes: list[tuple[str, int, int, int, bool]],
) -> None:
    """The explorer's incremental answer equals ``unreachable`` after every change."""
    routes: list[Any] = [make_route("/a/{x}", ["GET"], False, "first")]
    reachability = Reachability()
    for number, (kind, position, path, methods, websocket) in enumerate(changes):
        at = position % (len(routes) + 1)
        made = make_route(PATHS[path], METHODS[methods], websocket, f"r{number}")
        if kind == "add":
            routes.insert(at, made)
        elif kind == "replace" and routes:
            routes[at % len(routes)] = made
        elif kind == "remove" and routes:
            routes.pop(at % len(routes))
        elif kind == "move" and routes:
            routes.insert(at % len(routes), routes.pop())
        elif kind == "reverse":
            routes.reverse()
        assert reachability.update(routes) == unreachable(routes)
