"""`nbapi tutorial`, the README's first command: JupyterLab on the tutorial, as root too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from running_jupyter import free_port

from nbapi.__main__ import jupyter_lab_argv, main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("euid", "display", "expected", "absent"),
    [
        (0, "", ["--allow-root", "--no-browser"], []),
        (0, ":0", ["--allow-root"], ["--no-browser"]),
        (1000, "", ["--no-browser"], ["--allow-root"]),
        (1000, ":0", [], ["--allow-root", "--no-browser"]),
    ],
)
def test_jupyter_lab_argv_fits_the_machine(
    monkeypatch: pytest.MonkeyPatch, euid: int, display: str, expected: list[str], absent: list[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setenv("DISPLAY", display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    argv = jupyter_lab_argv(ROOT / "notebooks", 8890)
    assert argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert "--ServerApp.ip=127.0.0.1" in argv
    assert "--ServerApp.port=8890" in argv
    assert "--LabApp.default_url=/lab/tree/00-quickstart.ipynb" in argv
    assert set(expected) <= set(argv)
    assert not set(absent) & set(argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tutorial", "no-such-folder"], "no notebook folder 'no-such-folder'"),
        (["tutorial", "--port", "http"], "'http' is not a port"),
        (["tutorial", "--port", "70000"], "'70000' is not a port"),
    ],
)
def test_bad_tutorial_arguments_are_one_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.server
@pytest.mark.timeout(180)
def test_nbapi_tutorial_serves_the_notebooks_and_prints_its_url(tmp_path: Path) -> None:
    # Exactly the README's first command's last step, on this machine: root, no display.
    port = free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "DISPLAY": ""}
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    log = tmp_path / "lab.log"
    with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            [sys.executable, "-m", "nbapi", "tutorial", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        pattern = re.compile(rf"http://127\.0\.0\.1:{port}/lab\S*\?token=\w+")
        found = None
        deadline = time.monotonic() + 120
        while found is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            found = pattern.search(log.read_text())
        assert found is not None, log.read_text()[-3000:]
        url = found.group(0)
        token = url.rsplit("token=", 1)[1]
        api = f"http://127.0.0.1:{port}/api/contents/00-quickstart.ipynb?content=0"
        reply = httpx2.get(api, headers={"Authorization": f"token {token}"}, timeout=30)
        assert reply.status_code == 200, reply.text
        assert reply.json()["type"] == "notebook"
        assert httpx2.get(url, timeout=30).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)  # ours, by PID: JupyterLab replaced nbapi's process
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
