"""Start a real Jupyter server (JupyterLab, Notebook 7 or plain jupyter_server) on loopback.

Every Jupyter directory lives under a temporary home, so tests neither read nor
write the user's settings; the server is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from support import free_port

APPS = {
    "lab": ["-m", "jupyterlab"],
    "notebook": ["-m", "notebook"],
    "server": ["-m", "jupyter_server"],
}


@dataclass
class JupyterServer:
    url: str  # e.g. http://127.0.0.1:8899/user/learner/ (ends with the base_url)
    token: str
    root_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, path: str) -> str:
        return f"{self.url}{path.lstrip('/')}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _isolated_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    dirs = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "JUPYTER_DATA_DIR": home / "data",
        "JUPYTERLAB_SETTINGS_DIR": home / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "lab-workspaces",
        "IPYTHONDIR": home / "ipython",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    # The news pop-up ignores the server flag; its setting must be written beforehand.
    notification = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # Kernels must import the nbapi under test even when it is not installed.
    src = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


@contextmanager
def jupyter_server(
    root_dir: Path,
    home: Path,
    app: str = "lab",
    base_url: str = "/",
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Iterator[JupyterServer]:
    """Run a Jupyter server on a free loopback port until the block ends."""
    port = free_port()
    token = secrets.token_hex(16)
    app_class = {"lab": "LabApp", "notebook": "JupyterNotebookApp", "server": "ServerApp"}[app]
    args = [
        sys.executable,
        *APPS[app],
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--ServerApp.base_url={base_url}",
        "--ServerApp.terminals_enabled=False",
    ]
    if app == "lab":
        args += [
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
    if app in ("lab", "notebook"):
        args.append(f"--{app_class}.expose_app_in_browser=True")
    args += extra_args or []
    full_env = _isolated_env(home)
    full_env.update(env or {})
    log_path = home / "jupyter-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    url = f"http://127.0.0.1:{port}{base_url}"
    server = JupyterServer(url, token, root_dir, process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Jupyter server exited early:\n{server.log()}")
            try:
                response = httpx2.get(server.api("api/status"), headers=server.headers, timeout=2)
                if response.status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Jupyter server not ready in {timeout} s:\n{server.log()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
