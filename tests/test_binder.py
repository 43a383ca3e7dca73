"""binder/ builds the workshop environment: its pins match pyproject.toml and install nbapi."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

import nbapi

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "binder" / "requirements.txt"
LOCKS = {
    "tutorial": ROOT / "requirements" / "tutorial.txt",
    "test": ROOT / "requirements" / "test.txt",
}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The lowest and the highest Python the project supports, and Binder's.
PYTHONS = ["3.10", "3.11", "3.14"]


def binder_lines() -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    return [line for line in lines if line]


def binder_python() -> str:
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    return runtime.removeprefix("python-")


def pins(lock: str = "tutorial", python: str | None = None) -> dict[str, Requirement]:
    """The lock's pins that apply on ``python`` (Binder's by default)."""
    environment = marker_environment(python or binder_python())
    found: dict[str, Requirement] = {}
    for line in LOCKS[lock].read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        assert name not in found, f"{requirement.name} is pinned twice for Python {python}"
        found[name] = requirement
    return found


def marker_environment(python: str) -> dict[str, str]:
    """Marker variables for Python ``python`` ("3.11" or "3.11.7") on Linux."""
    full = python if python.count(".") == 2 else python + ".0"
    version = ".".join(full.split(".")[:2])
    return {"python_version": version, "python_full_version": full, "sys_platform": "linux"}


def pinned_version(requirement: Requirement) -> str:
    specs = list(requirement.specifier)
    assert len(specs) == 1, f"{requirement} is not pinned with =="
    assert specs[0].operator == "==", f"{requirement} is not pinned with =="
    return specs[0].version


def package_requirements(extra: str = "tutorial") -> list[Requirement]:
    """nbapi's requirements with ``extra``, its own extras followed."""
    project = PYPROJECT["project"]
    lines, extras, seen = list(project["dependencies"]), [extra], set()
    while extras:
        name = extras.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in project["optional-dependencies"][name]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == "nbapi":
                extras.extend(requirement.extras)
            else:
                lines.append(line)
    return [Requirement(line) for line in lines]


def test_binder_installs_nbapi_from_this_repository_with_the_tutorial_lock() -> None:
    # repo2docker runs pip from the repository root: "." is this checkout.
    assert binder_lines() == ["-r ../requirements/tutorial.txt", ".[tutorial]"]


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_is_locked_within_pyproject(lock: str, python: str) -> None:
    locked = pins(lock, python)
    environment = marker_environment(python)
    for requirement in package_requirements(lock):
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        pin = locked.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not in {LOCKS[lock].name}; re-lock"
        version = pinned_version(pin)
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCKS[lock].name} pins {pin}, but pyproject.toml asks for {requirement}; re-lock"
        )


@pytest.mark.parametrize("name", ["jupyterlab", "jupyter-server-proxy", "jupyter-server"])
def test_the_jupyter_side_is_pinned(name: str) -> None:
    assert name in pins(), f"{name} is not in the tutorial lock"
    pinned_version(pins()[name])


def test_runtime_python_satisfies_requires_python() -> None:
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match, f"binder/runtime.txt is {runtime!r}; write python-X.Y"
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(match.group(1) + ".0")


# -- the real thing: a fresh virtual environment ----------------------------------------
def index_unreachable(tmp_path: Path) -> str | None:
    """Why no package can be fetched from the configured index, or None when one can."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
        "--dest", str(tmp_path / "probe"), "--timeout", "5", "--retries", "0", "iniconfig",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "pip download of a tiny package took over 60 s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return lines[-1] if lines else f"pip exited with {result.returncode}"
    return None


def run(command: list[str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return ANSI.sub("", result.stdout + result.stderr)


SMOKE = """
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "nbapi")
ip.run_line_magic("config", "NbAPI.autostart = False")
ip.run_cell_magic("route", "GET /items/<int:item_id>", "def read_item(item_id):\\n    return {'id': item_id}")
response = ip.run_line_magic("http", "GET /items/7")
print(response.status_code, response.json())
import nbapi, nbapi._proxy, nbapi._server
print(nbapi.__file__)
"""


@pytest.mark.network
@pytest.mark.timeout(1500)
def test_binder_requirements_install_nbapi_into_a_fresh_venv(tmp_path: Path) -> None:
    reason = index_unreachable(tmp_path)
    if reason is not None:
        pytest.skip(f"no package index is reachable: {reason}")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = str(venv / "bin" / "python")
    # As repo2docker does: pip install -r binder/requirements.txt from the repository root.
    run(
        [python, "-m", "pip", "install", "--no-cache-dir", "-r", str(REQUIREMENTS)],
        cwd=ROOT,
        timeout=1200,
    )
    run([python, "-m", "pip", "check"], cwd=tmp_path)

    # Every pin is what got installed.
    freeze = run([python, "-m", "pip", "list", "--format=freeze"], cwd=tmp_path)
    installed = {
        canonicalize_name(name): version
        for name, _, version in (line.partition("==") for line in freeze.splitlines())
        if version
    }
    for name, pin in pins(python=platform.python_version()).items():
        assert installed.get(name) == pinned_version(pin), f"{name}: {installed.get(name)}"
    assert installed["nbapi"] == nbapi.__version__

    # nbapi is installed (not imported from the checkout) and works in IPython.
    smoke = run([python, "-c", SMOKE], cwd=tmp_path)
    assert "200 {'id': 7}" in smoke, smoke
    assert str(venv) in smoke, smoke

    # The Jupyter server of that environment serves JupyterLab and the proxy.
    extensions = run([str(venv / "bin" / "jupyter"), "server", "extension", "list"], tmp_path)
    for extension in ("jupyterlab", "jupyter_server_proxy"):
        assert re.search(rf"^\s*{extension} enabled", extensions, re.M), extensions


def test_an_unreachable_index_is_a_skip_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No config files, no local wheels, and an index on a closed loopback port.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before pip tries it
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    reason = index_unreachable(tmp_path)
    assert reason is not None
    assert "\n" not in reason
