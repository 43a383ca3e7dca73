"""Export end to end: notebooks run in a real kernel, their exports under pytest and uvicorn.

For each notebook: export it, run the exported test_app.py with pytest in a
subprocess, and compare the exported app's /openapi.json with the one the notebook's
app serves when the notebook runs in a real ipykernel (through nbclient). Every
tutorial notebook (notebooks/NN-*.ipynb, found when the tests are collected) is
exported this way. A notebook that cannot be exported faithfully must be listed in
UNFAITHFUL with the reason the report gives: a new notebook that does not export
fails here with the report, and its author either fixes it (or tags the offending
cell nbapi-skip) or adds it to the table.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import nbformat
import pytest
from nbclient import NotebookClient
from support import free_port

from nbapi._export import ExportError, export_notebook, export_path
from nbapi._rerun import RunError

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = Path(__file__).resolve().parent / "resources" / "export"
TUTORIALS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))

# Tutorial notebooks the exporter refuses, and the reason its report must give.
UNFAITHFUL = {
    # Its checks rebind `app` to watch nbapi run each app's lifespan: kernel behaviour.
    "23-lifespan-events": "binds a new app while sending requests",
}

# The notebook's app as /openapi.json serves it, printed by a cell the test adds.
PROBE = """\
import json as _json, nbapi as _nbapi
_app = _nbapi.get_app()
_doc = _nbapi.get_client().get(_app.openapi_url).json() if _app.openapi_url else _app.openapi()
print(_json.dumps(_doc, sort_keys=True))
"""

EXPORTED_SCHEMA = """\
import json
from fastapi.testclient import TestClient
from app import app
with TestClient(app) as client:
    doc = client.get(app.openapi_url).json() if app.openapi_url else app.openapi()
print(json.dumps(doc, sort_keys=True))
"""

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]


def _env() -> dict[str, str]:
    # The same hash seed in kernel and subprocess: FastAPI's operationId of a route with
    # several methods comes from a set's order.
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("JPY_SESSION_NAME", None)
    return env


def notebook_schema(path: Path, until: int) -> dict[str, Any]:
    """Run the notebook's cells up to ``until`` in a real kernel; return its /openapi.json."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    with client.setup_kernel(env=_env()):
        for index, cell in enumerate(nb.cells[: until + 1]):
            if "nbval-skip" not in cell.metadata.get("tags", []):  # as nbval runs it
                client.execute_cell(cell, index)
        probe = nbformat.v4.new_code_cell(PROBE)
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
    text = "".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout")
    return dict(json.loads(text))


def exported_schema(directory: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", EXPORTED_SCHEMA],
        cwd=directory,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_exported_tests(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_app.py",
        ],
        cwd=directory,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def check_export(notebook: Path, directory: Path) -> None:
    """Export, run the exported tests, compare /openapi.json with the notebook's."""
    result = export_path(notebook, directory)
    assert {"app.py", "test_app.py", "requirements.txt"} <= {p.name for p in directory.iterdir()}
    tree = ast.parse((directory / "app.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in imported if m.split(".")[0] in {"nbapi", "IPython", "ipywidgets"}}
    done = run_exported_tests(directory)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    if result.exported.tests:
        assert f"{result.exported.tests} passed" in done.stdout, done.stdout[-2000:]
    until = result.exported.last_app_cell
    assert exported_schema(directory) == notebook_schema(notebook, until)


def test_fixture_notebook_exports_faithfully(tmp_path: Path) -> None:
    notebook = tmp_path / "shop.ipynb"
    notebook.write_text((RESOURCES / "shop.ipynb").read_text())
    check_export(notebook, tmp_path / "out")
    tests = (tmp_path / "out" / "test_app.py").read_text()
    # The saved 422 table became assertions on the validation errors, not just the status.
    assert "assert validation_rows(response) == [" in tests
    assert '("X-Key", "sesame")' in tests


@pytest.fixture(scope="module")
def unfaithful(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(RESOURCES))
    try:
        from build import build_unfaithful  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(RESOURCES))
    return Path(build_unfaithful(tmp_path_factory.mktemp("unfaithful")))


def test_unfaithful_notebook_is_reported_and_nothing_written(
    unfaithful: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "nbapi", "export", str(unfaithful), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert not out.exists()
    lines = done.stderr.strip().splitlines()
    # PRICES (kernel state not in the notebook) is read only inside a function body:
    # a note of a written export, not a refusal (issue 12, item 14).
    assert lines[0].startswith("cannot export 'unfaithful.ipynb' faithfully: 2 problem(s)")
    assert lines[1].startswith("  cell In[3] ('scratch = 1'): %reset_selective has no plain-Python")
    # Numbered as a Restart & Run All numbers them (the export's fresh run).
    assert lines[2] == "  cell In[4] ('def broken(:'): syntax error at line 1: invalid syntax"


@pytest.mark.parametrize("notebook", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_notebook_exports(notebook: Path, tmp_path: Path) -> None:
    reason = UNFAITHFUL.get(notebook.stem)
    if reason is not None:
        with pytest.raises(ExportError) as caught:
            export_notebook(nbformat.read(notebook, as_version=4), notebook.name)
        assert caught.value.problems, caught.value.report()
        assert any(reason in p.reason for p in caught.value.problems), caught.value.report()
        return
    check_export(notebook, tmp_path / "out")


# -- uvicorn with two workers -------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The exported shop app under ``uvicorn app:app --workers 2`` on loopback."""
    notebook = tmp_path / "shop.ipynb"
    notebook.write_text((RESOURCES / "shop.ipynb").read_text())
    export_path(notebook, tmp_path / "out")
    port = free_port()
    log = (tmp_path / "uvicorn.log").open("wb")
    command = [sys.executable, "-m", "uvicorn", "app:app", "--workers", "2"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path / "out",
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        for _ in range(300):  # bounded in count and time
            if process.poll() is not None or time.monotonic() > deadline:
                break
            try:
                if httpx2.get(f"{base}/items/1", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            time.sleep(0.2)
        assert process.poll() is None, (tmp_path / "uvicorn.log").read_text()
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # our own session: the workers too
            process.wait(timeout=10)
        log.close()


@pytest.mark.server
def test_export_serves_under_uvicorn_with_two_workers(served: tuple[str, int]) -> None:
    base, pid = served
    with httpx2.Client(base_url=base, timeout=10) as client:
        assert client.get("/items/1").json() == {"name": "Lamp", "price": 12.5}
        created = client.post("/items", json={"name": "Desk", "price": 80})
        assert created.status_code == 201, created.text
        assert client.get("/items/abc").status_code == 422
        admin = client.get("/admin/stats", headers={"X-Key": "sesame"})
        assert admin.status_code == 200, admin.text
        assert admin.headers["x-served-by"] == "shop"
        assert client.get("/openapi.json").json()["info"] == {"title": "Shop", "version": "1.0"}
    assert len(_children(pid)) >= 2  # the supervisor runs two worker processes


# -- %nbapi export in a kernel that a Jupyter server started ----------------------------------------
def test_nbapi_export_magic_finds_its_notebook_in_a_jupyter_kernel(tmp_path: Path) -> None:
    from jupyter_client import BlockingKernelClient
    from kernel_driver import execute
    from running_jupyter import jupyter_server

    root = tmp_path / "root"
    (root / "work").mkdir(parents=True)
    (root / "work" / "shop.ipynb").write_text((RESOURCES / "shop.ipynb").read_text())
    home = tmp_path / "home"
    with jupyter_server(root, home, app="server") as server:
        model = {"path": "work/shop.ipynb", "name": "shop.ipynb", "type": "notebook"}
        created = httpx2.post(
            server.api("api/sessions"),
            json={**model, "kernel": {"name": "python3"}},
            headers=server.headers,
            timeout=60,
        )
        assert created.status_code == 201, created.text
        kernel_id = created.json()["kernel"]["id"]
        client = BlockingKernelClient()
        client.load_connection_file(str(home / "runtime" / f"kernel-{kernel_id}.json"))
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            # The saved file shows In[1] to In[18]; this kernel runs 19 cells before exporting.
            for _ in range(19):
                assert execute(client, "pass").status == "ok"
            cell = execute(client, "%load_ext nbapi\n%nbapi export")
        finally:
            client.stop_channels()
            httpx2.delete(
                server.api(f"api/sessions/{created.json()['id']}"),
                headers=server.headers,
                timeout=30,
            )
    assert cell.status == "ok", cell.transcript
    text = cell.text
    assert text.startswith("exported shop.ipynb to shop-export: app.py (4 %%route cells)"), text
    assert (
        "note: 1 cell ran in this kernel after the notebook was last saved (In[19]); the export "
        "reads the saved file: save the notebook and export again to include them"
    ) in text
    assert (root / "work" / "shop-export" / "test_app.py").is_file()


# -- export from the truth: a fresh run, not whatever the saved outputs show -----------------
def tampered_shop(tmp_path: Path) -> Path:
    """shop.ipynb as a drifted kernel saves it: a price edited, counts out of order, a bad cell."""
    nb = nbformat.read(RESOURCES / "shop.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.get("source") == "%http GET /items/1")
    first.outputs[0]["data"]["text/plain"] = (
        'HTTP 200 OK\n\n{\n  "name": "Lamp",\n  "price": 99.0\n}'
    )
    first.execution_count = 42
    failing = nbformat.v4.new_code_cell("missing_name + 1")  # raises NameError in a fresh run
    nb.cells.insert(nb.cells.index(first) + 1, failing)
    notebook = tmp_path / "shop.ipynb"
    nbformat.write(nb, notebook)
    return notebook


def test_export_takes_expectations_from_a_fresh_run_not_tampered_outputs(tmp_path: Path) -> None:
    notebook = tampered_shop(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "nbapi", "export", str(notebook), "-o", str(tmp_path / "fresh")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("exported shop.ipynb to fresh: app.py (4 %%route cells)")
    # The failing cell is named as Jupyter numbers it in Restart & Run All, and left out.
    assert (
        "  note: cell In[7] raised NameError: name 'missing_name' is not defined in a fresh run; "
        "it was left out (fix it, or tag it nbapi-skip)"
    ) in lines
    test_py = (tmp_path / "fresh" / "test_app.py").read_text()
    assert "99.0" not in test_py
    assert "missing_name" not in test_py + (tmp_path / "fresh" / "app.py").read_text()
    ran = run_exported_tests(tmp_path / "fresh")
    assert ran.returncode == 0, ran.stdout[-3000:]

    # The README's commands work as pasted (the install step is what pip reads).
    readme = (tmp_path / "fresh" / "README.md").read_text()
    assert "pip install -r requirements.txt\npython -m pytest test_app.py\n" in readme
    assert "module globals (`ITEMS`)" in readme
    required = (tmp_path / "fresh" / "requirements.txt").read_text()
    assert {"pytest", "httpx2", "fastapi", "uvicorn"} <= {
        line.split("==")[0] for line in required.splitlines() if not line.startswith("#")
    }


def test_saved_outputs_are_used_when_asked_and_their_drift_is_named(tmp_path: Path) -> None:
    notebook = tampered_shop(tmp_path)
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:  # the failing cell never ran in the saved copy
        if cell.get("source") == "missing_name + 1":
            cell.metadata["tags"] = ["nbapi-skip"]
    nbformat.write(nb, notebook)
    out = tmp_path / "saved"
    assert main_export([str(notebook), "-o", str(out), "--saved-outputs"], tmp_path) == 0
    shown = (tmp_path / "stdout.txt").read_text()
    assert (
        "  note: the saved outputs are not from one clean run in order (a cell shows In[42] "
        "where Restart & Run All shows In[6])"
    ) in shown
    assert "99.0" in (out / "test_app.py").read_text()  # as asked: what the outputs show
    assert run_exported_tests(out).returncode != 0  # ... which the app does not do


def main_export(argv: list[str], cwd: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "nbapi", "export", *argv],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        cwd=cwd,
    )
    (cwd / "stdout.txt").write_text(done.stdout + done.stderr)
    return done.returncode


def test_a_notebook_that_exports_itself_is_not_exported_again_in_its_fresh_run(
    tmp_path: Path,
) -> None:
    # Notebooks 27 and 28 end with `%nbapi export` of themselves: in the fresh run that
    # cell would start another fresh run, and so on, until a cell timed out.
    nb = nbformat.read(RESOURCES / "shop.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("%nbapi export shop.ipynb nested"))
    notebook = tmp_path / "shop.ipynb"
    nbformat.write(nb, notebook)
    result = export_path(notebook, tmp_path / "out", fresh=True)
    assert result.exported.tests
    assert not (tmp_path / "nested").exists()  # the cell did not run in the fresh run


def test_an_export_inside_a_fresh_run_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBAPI_IN_FRESH_RUN", "1")
    with pytest.raises(RunError) as caught:
        export_path(RESOURCES / "shop.ipynb", tmp_path / "out", fresh=True)
    assert "use --saved-outputs inside such a run" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()
