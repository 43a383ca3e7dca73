"""Public URLs for printed links, and requests that arrive through jupyter-server-proxy."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI, Request, WebSocket
from traitlets import TraitError

from nbapi._config import NbAPI
from nbapi._proxy import (
    ProxyPrefix,
    PublicURLError,
    check_public_url,
    jupyter_server_base_url,
    public_url,
    resolve,
    root_path_for,
    running_servers,
)

HUB = {"JUPYTERHUB_SERVICE_PREFIX": "/user/ada/", "JUPYTERHUB_USER": "ada"}


def config(public: str = "") -> NbAPI:
    return NbAPI(public_url=public)


@pytest.mark.parametrize(
    ("public", "environ", "host", "expected", "source"),
    [
        ("", {}, "127.0.0.1", "http://127.0.0.1:8000/", "direct"),
        ("", {}, "0.0.0.0", "http://127.0.0.1:8000/", "direct"),
        ("", {}, "::", "http://[::1]:8000/", "direct"),  # V6-only: 127.0.0.1 is refused (issue 14)
        ("", {}, "::1", "http://[::1]:8000/", "direct"),
        ("", {}, "localhost", "http://localhost:8000/", "direct"),
        # JupyterHub without a known public host: path-absolute, works as a link in the page.
        ("", HUB, "127.0.0.1", "/user/ada/proxy/8000/", "JupyterHub"),
        ("", {"JUPYTERHUB_SERVICE_PREFIX": "/user/ada"}, "127.0.0.1", "/user/ada/proxy/8000/", "JupyterHub"),
        # Named servers have a longer prefix.
        (
            "",
            {"JUPYTERHUB_SERVICE_PREFIX": "/hub-base/user/ada/lab2/"},
            "127.0.0.1",
            "/hub-base/user/ada/lab2/proxy/8000/",
            "JupyterHub",
        ),
        # The hub tells its public address: absolute links.
        (
            "",
            {**HUB, "JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/user/ada/"},
            "127.0.0.1",
            "https://hub.example.org/user/ada/proxy/8000/",
            "JupyterHub",
        ),
        (
            "",
            {**HUB, "JUPYTERHUB_PUBLIC_URL": "https://ada.hub.example.org/user/ada/"},
            "127.0.0.1",
            "https://ada.hub.example.org/user/ada/proxy/8000/",
            "JupyterHub",
        ),
        # With user subdomains the hub's host is not the server's: stay path-absolute.
        (
            "",
            {
                **HUB,
                "JUPYTERHUB_HOST": "https://hub.example.org",
                "JUPYTERHUB_PUBLIC_URL": "",
                "JUPYTERHUB_PUBLIC_HUB_URL": "https://hub.example.org/hub/",
            },
            "127.0.0.1",
            "/user/ada/proxy/8000/",
            "JupyterHub",
        ),
        (
            "",
            {**HUB, "JUPYTERHUB_HOST": "", "JUPYTERHUB_PUBLIC_HUB_URL": "https://hub.example.org/hub/"},
            "127.0.0.1",
            "https://hub.example.org/user/ada/proxy/8000/",
            "JupyterHub",
        ),
        # Binder runs a JupyterHub too; its launch host is not the server's host.
        (
            "",
            {
                "JUPYTERHUB_SERVICE_PREFIX": "/user/owner-repo-abc123/",
                "BINDER_LAUNCH_HOST": "https://mybinder.org/",
                "BINDER_REPO_URL": "https://github.com/OWNER/REPO",
            },
            "127.0.0.1",
            "/user/owner-repo-abc123/proxy/8000/",
            "Binder",
        ),
        (
            "",
            {"CODESPACE_NAME": "ada-x1", "GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN": "app.github.dev"},
            "127.0.0.1",
            "https://ada-x1-8000.app.github.dev/",
            "Codespaces",
        ),
        # Overrides win over detection; {port} is filled in and a "/" added.
        ("https://proxy.example.org/p/{port}", HUB, "127.0.0.1", "https://proxy.example.org/p/8000/", "NbAPI.public_url"),
        ("/proxy/{port}/", {}, "127.0.0.1", "/proxy/8000/", "NbAPI.public_url"),
        ("https://x.example.org/", {}, "127.0.0.1", "https://x.example.org/", "NbAPI.public_url"),
        ("", {**HUB, "NBAPI_PUBLIC_URL": "https://colab.example/{port}/"}, "127.0.0.1", "https://colab.example/8000/", "$NBAPI_PUBLIC_URL"),
    ],
)  # fmt: skip
def test_public_url(
    public: str, environ: dict[str, str], host: str, expected: str, source: str
) -> None:
    assert public_url(config(public), host, 8000, environ) == expected
    found = resolve(config(public), host, 8000, environ)
    assert (found.url, found.source) == (expected, source)
    assert found.proxied == (source != "direct")


def test_public_url_takes_config_none_and_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith(("JUPYTERHUB_", "NBAPI_", "CODESPACE", "GITHUB_CODESPACES")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/bo/")
    assert public_url(None, "127.0.0.1", 8123) == "/user/bo/proxy/8123/"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("hub.example.org/user/ada", "is not a base URL"),
        ("ftp://hub.example.org/", "is not a base URL"),
        ("//hub.example.org/", "is not a base URL"),
        ("https://hub.example.org/?x=1", "is not a base URL"),
        ("https://hub.example.org/{user}/{port}/", "placeholder other than {port}"),
    ],
)
def test_bad_override_is_a_one_line_user_error(value: str, message: str) -> None:
    # NbAPI refuses a bad public_url when it is set; the environment variable is checked here.
    with pytest.raises(TraitError, match=re.escape(message)):
        config(value)
    with pytest.raises(PublicURLError) as info:
        public_url(config(), "127.0.0.1", 8000, {"NBAPI_PUBLIC_URL": value})
    text = str(info.value)
    assert message in text
    assert repr(value) in text
    assert "\n" not in text
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", ["", "/proxy/{port}/", "https://x.example.org/{port}"])
def test_check_public_url_accepts_good_values(value: str) -> None:
    assert check_public_url(value) == value


def test_check_public_url_rejects_before_any_server_runs() -> None:
    with pytest.raises(PublicURLError, match=r"NbAPI.public_url 'localhost:8000'"):
        check_public_url("localhost:8000")


def test_bad_environment_override_names_the_variable() -> None:
    with pytest.raises(PublicURLError, match=r"\$NBAPI_PUBLIC_URL 'nope'"):
        public_url(config(), "127.0.0.1", 8000, {"NBAPI_PUBLIC_URL": "nope"})


# -- the Jupyter server that started the kernel --------------------------------------------
def write_server_info(runtime: Path, pid: int, base_url: str, hostname: str = "127.0.0.1") -> None:
    runtime.mkdir(parents=True, exist_ok=True)
    info = {"base_url": base_url, "pid": pid, "hostname": hostname, "port": 8888}
    (runtime / f"jpserver-{pid}.json").write_text(json.dumps(info))


def test_server_base_url_is_found_through_jpy_parent_pid(tmp_path: Path) -> None:
    write_server_info(tmp_path, 4242, "/user/learner/")
    write_server_info(tmp_path, 4343, "/other/")
    env = {"JUPYTER_RUNTIME_DIR": str(tmp_path), "JPY_PARENT_PID": "4242"}
    assert jupyter_server_base_url(env) == "/user/learner/"
    assert public_url(config(), "127.0.0.1", 8000, env) == "/user/learner/proxy/8000/"
    assert resolve(config(), "127.0.0.1", 8000, env).source == "Jupyter server"
    assert len(running_servers([tmp_path])) == 2


def test_jpy_parent_pid_is_the_only_candidate_when_set(tmp_path: Path) -> None:
    # A kernel started by nbclient in pytest, in a terminal of a Jupyter server: the
    # server is an ancestor, but JPY_PARENT_PID names pytest, so no server matches.
    write_server_info(tmp_path, os.getpid(), "/user/learner/")
    env = {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"}
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path), JPY_PARENT_PID=str(os.getpid() + 100000))
    code = "from nbapi._proxy import jupyter_server_base_url as f; print(f())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "None", result.stderr


def test_server_base_url_is_found_through_the_parent_process(tmp_path: Path) -> None:
    # A child process with no JPY_PARENT_PID finds this test process as its ancestor.
    write_server_info(tmp_path, os.getpid(), "/user/learner")
    env = {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path)
    code = "from nbapi._proxy import jupyter_server_base_url as f; print(f())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "/user/learner/", result.stderr


@pytest.mark.parametrize("hostname", ["0.0.0.0", "10.1.2.3", "box.example.org"])
def test_a_server_listening_beyond_loopback_means_proxied_links(
    tmp_path: Path, hostname: str
) -> None:
    # jupyter lab --ip=0.0.0.0 in a container: the browser is on another machine.
    write_server_info(tmp_path, 4242, "/", hostname)
    env = {"JUPYTER_RUNTIME_DIR": str(tmp_path), "JPY_PARENT_PID": "4242"}
    assert public_url(config(), "127.0.0.1", 8000, env) == "/proxy/8000/"


@pytest.mark.parametrize(
    ("files", "parent"),
    [
        ({}, "4242"),  # no server is running
        ({4343: "/user/x/"}, "4242"),  # a server, but not this kernel's
        ({4242: "/"}, "4242"),  # this kernel's loopback server, with no base_url of its own
    ],
)
def test_no_server_prefix_means_direct_links(
    tmp_path: Path, files: dict[int, str], parent: str
) -> None:
    for pid, base_url in files.items():
        write_server_info(tmp_path, pid, base_url)
    (tmp_path / "jpserver-9.json").write_text("{not json")  # a half-written file is skipped
    env = {"JUPYTER_RUNTIME_DIR": str(tmp_path), "JPY_PARENT_PID": parent}
    assert public_url(config(), "127.0.0.1", 8000, env) == "http://127.0.0.1:8000/"


# -- requests that arrive through the proxy --------------------------------------------------
def http_scope(path: str, headers: dict[str, str], port: int = 8000) -> dict[str, Any]:
    return {
        "type": "http",
        "path": path,
        "root_path": "",
        "server": ("127.0.0.1", port),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/docs", {}, None),
        ("/docs", {"X-Forwarded-Prefix": "/user/ada/proxy/8000"}, "/user/ada/proxy/8000"),
        ("/docs", {"X-Forwarded-Prefix": "/user/ada/proxy/8000/"}, "/user/ada/proxy/8000"),
        ("/docs", {"X-Forwarded-Context": "/proxy/8000"}, "/proxy/8000"),
        ("/docs", {"X-ProxyContextPath": "/proxy/8000"}, "/proxy/8000"),
        # A remote-host proxy route names host:port.
        ("/docs", {"X-Forwarded-Prefix": "/user/ada/proxy/box:8000"}, "/user/ada/proxy/box:8000"),
        # Another port's prefix, quotes or markup, a non-path: ignored.
        ("/docs", {"X-Forwarded-Prefix": "/user/ada/proxy/9999"}, None),
        ("/docs", {"X-Forwarded-Prefix": "/x/proxy/8000'</script>"}, None),
        ("/docs", {"X-Forwarded-Prefix": "/x y/proxy/8000"}, None),
        ("/docs", {"X-Forwarded-Prefix": "https://evil.example/proxy/8000"}, None),
        # proxy/absolute/PORT forwards the whole path and no header.
        ("/user/ada/proxy/absolute/8000/docs", {}, "/user/ada/proxy/absolute/8000"),
        ("/user/ada/proxy/absolute/8000", {}, "/user/ada/proxy/absolute/8000"),
        ("/user/ada/proxy/absolute/80001/docs", {}, None),
        ("/user/ada/proxy/absolute/9999/docs", {}, None),
    ],
)
def test_root_path_for(path: str, headers: dict[str, str], expected: str | None) -> None:
    assert root_path_for(http_scope(path, headers)) == expected


def test_root_path_for_ignores_lifespan() -> None:
    assert root_path_for({"type": "lifespan"}) is None


def make_app() -> FastAPI:
    app = FastAPI(title="Shop")

    @app.get("/items/{item_id}")
    def read_item(item_id: int, request: Request) -> dict[str, Any]:
        return {
            "item_id": item_id,
            "url": str(request.url),
            "root_path": request.scope.get("root_path", ""),
            "docs": str(request.url_for("swagger_ui_html")),
        }

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.scope.get("root_path", ""))
        await websocket.close()

    return app


def send(app: Any, path: str, headers: dict[str, str]) -> httpx2.Response:
    async def go() -> httpx2.Response:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8000"
        ) as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


PROXIED = {"X-Forwarded-Prefix": "/user/ada/proxy/8000", "Host": "hub.example.org"}


def test_docs_through_the_proxy_load_the_proxied_schema_and_direct_docs_still_work() -> None:
    app = make_app()
    wrapped = ProxyPrefix(app)
    # Alternate proxied and direct requests: the root path is per request.
    for _ in range(2):
        proxied = send(wrapped, "/docs", PROXIED)
        assert proxied.status_code == 200, proxied.text
        assert "url: '/user/ada/proxy/8000/openapi.json'" in proxied.text
        assert (
            "oauth2RedirectUrl: window.location.origin + '/user/ada/proxy/8000/docs/oauth2-redirect'"
            in proxied.text
        )

        direct = send(wrapped, "/docs", {})
        assert direct.status_code == 200, direct.text
        assert "url: '/openapi.json'" in direct.text
        assert "/user/ada" not in direct.text

        schema = send(wrapped, "/openapi.json", PROXIED).json()
        assert schema["servers"] == [{"url": "/user/ada/proxy/8000"}]
        assert "/items/{item_id}" in schema["paths"]
        assert "servers" not in send(wrapped, "/openapi.json", {}).json()
    # The user's app is not modified.
    assert app.root_path == ""
    assert app.openapi_schema is None or "servers" not in app.openapi_schema


def test_routes_see_the_public_url_through_the_proxy() -> None:
    wrapped = ProxyPrefix(make_app())
    body = send(wrapped, "/items/3", PROXIED).json()
    assert body == {
        "item_id": 3,
        "url": "http://hub.example.org/user/ada/proxy/8000/items/3",
        "root_path": "/user/ada/proxy/8000",
        "docs": "http://hub.example.org/user/ada/proxy/8000/docs",
    }
    direct = send(wrapped, "/items/3", {}).json()
    assert direct["url"] == "http://127.0.0.1:8000/items/3"
    assert direct["root_path"] == ""
    absolute = send(wrapped, "/user/ada/proxy/absolute/8000/items/4", {}).json()
    assert absolute["item_id"] == 4
    assert absolute["root_path"] == "/user/ada/proxy/absolute/8000"
    # Unknown paths still 404 through the proxy.
    assert send(wrapped, "/nope", PROXIED).status_code == 404


def test_websocket_scope_gets_the_root_path() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope))

    scope = http_scope("/ws", {"X-Forwarded-Prefix": "/user/ada/proxy/8000"})
    scope.update(type="websocket", raw_path=b"/ws")

    async def nothing() -> Any:
        return {}

    async def drop(message: Any) -> None:
        return None

    asyncio.run(ProxyPrefix(app)(scope, nothing, drop))
    assert seen[0]["root_path"] == "/user/ada/proxy/8000"
    assert seen[0]["path"] == "/user/ada/proxy/8000/ws"
    assert seen[0]["raw_path"] == b"/user/ada/proxy/8000/ws"
    assert scope["path"] == "/ws"  # the server's scope is copied, not changed


def test_proxy_module_is_pure() -> None:
    code = "import sys, nbapi._proxy; print('IPython' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
