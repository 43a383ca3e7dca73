"""The exporter: notebooks in memory -> app.py, test_app.py, requirements.txt, or a report."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx2
import nbformat
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from nbapi.__main__ import main
from nbapi._client import HttpResponse, parse_http_line
from nbapi._commands import run
from nbapi._errors import UserError
from nbapi._export import (
    ExportError,
    Request,
    current_notebook,
    expectation,
    export_notebook,
    export_path,
    py,
    request_code,
    requirements,
    route_decorator,
)
from nbapi._registry import Registry
from nbapi._spec import parse_route_line


def notebook(*cells: str | tuple[str, list[str]]) -> Any:
    """A notebook of code cells; a (source, tags) pair tags its cell."""
    nb = nbformat.v4.new_notebook()
    for index, cell in enumerate(cells):
        source, tags = (cell, []) if isinstance(cell, str) else cell
        code = nbformat.v4.new_code_cell(textwrap.dedent(source).strip("\n"), id=f"c{index}")
        if tags:
            code.metadata["tags"] = tags
        nb.cells.append(code)
    return nb


def run_app(app_py: str) -> FastAPI:
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(compile(app_py, "app.py", "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, FastAPI)
    return app


# -- %%route -> decorator ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "decorator"),
    [
        ("GET /items", '@app.get("/items")'),
        ("delete /items/<int:item_id>", '@app.delete("/items/{item_id}")'),
        ("PUT /users/:name", '@app.put("/users/{name}")'),
        ("GET /files/<path:rest>", '@app.get("/files/{rest:path}")'),
        (
            "GET,POST /items status_code=201, tags=['a']",
            '@app.api_route("/items", methods=["GET", "POST"], status_code=201, tags=[\'a\'])',
        ),
        ("WS /echo", '@app.websocket("/echo")'),
    ],
)
def test_route_decorator(line: str, decorator: str) -> None:
    assert route_decorator(parse_route_line(line)) == decorator


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "head", "options"])
def test_single_method_shortcut_has_the_same_openapi_as_api_route(method: str) -> None:
    # Why the exporter may write @app.get(...) for nbapi's app.api_route(methods=["GET"]).
    shortcut, general = FastAPI(), FastAPI()

    def read(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    getattr(shortcut, method)("/items/{item_id}", status_code=202, tags=["t"])(read)
    general.api_route("/items/{item_id}", methods=[method.upper()], status_code=202, tags=["t"])(
        read
    )
    assert shortcut.openapi() == general.openapi()


ROUTE_CELLS = [
    ("GET /items/<int:item_id>", "def read(item_id, q: str | None = None):\n    return {}"),
    ("GET /price/<float:value>", "def price(value):\n    return value"),
    ("GET /files/<path:file_path>", "def files(file_path):\n    return file_path"),
    ("GET /users/:user_id/items/<item_id>", "def both(user_id: int, item_id: str):\n    return 1"),
    (
        "POST /items status_code=201, tags=['items']",
        "def create(name: str) -> dict:\n    return {}",
    ),
    ("GET,POST /multi", "async def multi():\n    return 1"),
    ("GET /deco/<int:n>", "import functools\n\n@functools.lru_cache\ndef cached(n):\n    return n"),
]


# FastAPI gives both methods of a multi-method route one operation id, and warns about it
# (fastapi/openapi/utils.py, "Duplicate Operation ID"): the plain decorator does the same.
@pytest.mark.filterwarnings("ignore:Duplicate Operation ID:UserWarning")
@pytest.mark.parametrize(("line", "body"), ROUTE_CELLS, ids=[c[0] for c in ROUTE_CELLS])
def test_route_cell_exports_what_the_registry_registers(line: str, body: str) -> None:
    exported = export_notebook(
        notebook("from fastapi import FastAPI\napp = FastAPI()", f"%%route {line}\n{body}")
    )
    namespace: dict[str, Any] = {}
    exec(body, namespace)
    endpoint = [v for v in namespace.values() if callable(v) and not isinstance(v, type)][-1]
    nbapi_app = FastAPI()
    spec = parse_route_line(line)
    keywords = eval(f"dict({spec.keywords})") if spec.keywords else {}
    Registry().register(nbapi_app, "cell", spec, endpoint, keywords)
    assert run_app(exported.app_py).openapi() == nbapi_app.openapi()


def test_route_without_app_gets_the_app_nbapi_creates() -> None:
    exported = export_notebook(
        notebook("%load_ext nbapi", "%%route GET /\ndef root():\n    return 1")
    )
    assert "from fastapi import FastAPI\n\napp = FastAPI()" in exported.app_py
    assert TestClient(run_app(exported.app_py)).get("/").json() == 1


def test_same_route_twice_keeps_fastapis_first_wins_order() -> None:
    exported = export_notebook(
        notebook(
            "%%route GET /x\ndef first():\n    return 1",
            "%%route GET /x\ndef second():\n    return 2",
        )
    )
    assert exported.app_py.index("def first") < exported.app_py.index("def second")
    assert TestClient(run_app(exported.app_py)).get("/x").json() == 1


def test_converter_that_contradicts_the_annotation_is_reported() -> None:
    with pytest.raises(ExportError) as caught:
        export_notebook(notebook("%%route GET /i/<int:n>\ndef f(n: str):\n    return n"))
    assert "the path says 'n' is int but f() annotates it as 'str'" in caught.value.report()


# -- what is left out, and what is kept ---------------------------------------------------------
@pytest.mark.parametrize(
    ("cell", "left_out"),
    [
        ("%load_ext nbapi\n%config NbAPI.autostart = False", "%"),
        ("!pip install fastapi", "pip"),
        ("display(app)", "display"),
        ('print("hello")', "print"),
        ("app.title", "app.title"),
        ("%nbapi routes", "routes"),
        ("from IPython.display import Markdown\nMarkdown('x')", "Markdown"),
        ("import ipywidgets as w\nbutton = w.Button()\nbutton", "Button"),
        ("%%html\n<b>hi</b>", "<b>"),
        (("import nonexistent_module_x", ["nbapi-skip"]), "nonexistent"),
        (("raise ValueError('on purpose')", ["raises-exception"]), "on purpose"),
    ],
)
def test_notebook_only_lines_are_left_out(cell: Any, left_out: str) -> None:
    exported = export_notebook(notebook("from fastapi import FastAPI\napp = FastAPI()", cell))
    body = exported.app_py.split('"""', 2)[2]
    assert left_out not in body
    run_app(exported.app_py)


def test_nbapi_export_tag_forces_a_cell_in() -> None:
    exported = export_notebook(
        notebook(
            "from fastapi import FastAPI\napp = FastAPI()", ('print("ready")', ["nbapi-export"])
        )
    )
    assert 'print("ready")' in exported.app_py


def test_plain_magics_become_python() -> None:
    exported = export_notebook(
        notebook("from fastapi import FastAPI\napp = FastAPI()", "%env SHOP_MODE=test\n%time x = 1")
    )
    assert "import os" in exported.app_py
    assert "os.environ['SHOP_MODE'] = 'test'" in exported.app_py
    assert "\nx = 1" in exported.app_py


def test_magic_lookalike_inside_a_string_is_kept() -> None:
    exported = export_notebook(
        notebook('from fastapi import FastAPI\napp = FastAPI()\nHELP = """\n%http GET /\n"""')
    )
    assert "%http GET /" in exported.app_py


# -- the faithfulness report ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (["def broken(:\n    pass"], "syntax error at line 1"),
        (["%%route GET /x\nx = 1"], "the %%route GET /x cell defines no function"),
        (["%%route GET /x\ndef f(:"], "syntax error at line 2"),
        (["%%route FETCH /x\ndef f():\n    pass"], "bad %%route line: unknown HTTP method"),
        (["%run helpers.py"], "%run has no plain-Python equivalent"),
        (["%%bash\necho hi"], "%%bash has no plain-Python equivalent"),
        (["%%route GET /x status_code=CODE\ndef f():\n    return 1"], "it uses CODE, which no"),
        (["from fastapi import FastAPI\napp = FastAPI(title=TITLE)"], "it uses TITLE, which no"),
        (
            ["from fastapi import FastAPI\napp = FastAPI()", "def f():\n    return get_ipython()"],
            "get_ipython, which only exist in the notebook",
        ),
        (
            ["get_ipython().run_cell_magic('route', f'GET /{p}', 'def f(): pass')"],
            "a magic built at run time",
        ),
        (
            [
                "import asyncio\nfrom fastapi import FastAPI\napp = FastAPI()",
                "await asyncio.sleep(0)",
            ],
            None,
        ),
        (["%%writefile /etc/motd\nhi"], "writes outside the export"),
    ],
)
def test_unfaithful_cells_are_reported(cells: list[str], reason: str | None) -> None:
    if reason is None:  # top-level await is not unfaithful: it runs in a test
        exported = export_notebook(notebook(*cells))
        assert "asyncio.run(cell())" in exported.test_py
        return
    with pytest.raises(ExportError) as caught:
        export_notebook(notebook(*cells), "nb.ipynb")
    message = str(caught.value)
    assert message.startswith("cannot export 'nb.ipynb' faithfully:")
    assert "\n" not in message
    assert any(reason in p.reason for p in caught.value.problems), caught.value.report()


def test_report_names_every_cell_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.ipynb"
    cells = ("%%route GET /x status_code=A\ndef f():\n    return 1", "%cd /tmp", "ok = 1")
    nbformat.write(notebook(*cells), path)
    with pytest.raises(ExportError) as caught:
        export_path(path, tmp_path / "out")
    assert [p.index for p in caught.value.problems] == [0, 1]
    assert caught.value.report().splitlines()[1].startswith("  cell In[1] ('%%route GET /x")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.ipynb"]  # no staging left behind


def test_notebook_without_an_app() -> None:
    with pytest.raises(ExportError, match="defines no FastAPI app and no %%route cell"):
        export_notebook(notebook("x = 1"), "plain.ipynb")


# -- %http -> tests --------------------------------------------------------------------------------
def _view(response: httpx2.Response, verbose: bool = False) -> str:
    return HttpResponse(response, verbose=verbose).text_view()


def _demo_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def read(item_id: int, q: str = "x") -> dict[str, Any]:
        return {"item_id": item_id, "q": q, "tags": ["a", "é"]}

    @app.get("/text")
    def text() -> Any:
        from fastapi.responses import PlainTextResponse

        return PlainTextResponse("plain\ntext")

    @app.get("/bytes")
    def raw() -> Any:
        from fastapi.responses import Response

        return Response(b"\xff\x00\x01", media_type="application/octet-stream")

    @app.delete("/items/{item_id}", status_code=204)
    def delete(item_id: int) -> None:
        return None

    return app


@pytest.mark.parametrize(
    ("path", "method", "verbose", "other"),
    [
        ("/items/3?q=y", "GET", False, "/items/4"),
        ("/items/abc", "GET", False, "/items/1.5"),
        ("/items/3", "GET", True, "/items/5"),
        ("/text", "GET", False, "/bytes"),
        ("/bytes", "GET", False, "/text"),
        ("/items/3", "DELETE", False, "/items/3?q=1"),
        ("/missing", "GET", False, "/text"),
    ],
)
def test_saved_view_becomes_assertions_that_hold(
    path: str, method: str, verbose: bool, other: str
) -> None:
    client = TestClient(_demo_app())
    response = client.request(method, path)
    lines = expectation(_view(response, verbose), verbose)
    assert lines is not None
    check = "\n".join(lines)
    helpers = _helpers()
    exec(check, {**helpers, "response": response})  # holds for the response the notebook got
    different = client.request("GET" if method == "DELETE" else method, other)
    with pytest.raises(AssertionError):
        exec(check, {**helpers, "response": different})


def _helpers() -> dict[str, Any]:
    """The helpers test_app.py defines, from an export whose %http cell got a 422."""
    nb = notebook("%%route GET /x\ndef f(n: int):\n    return n", "%http GET /x?n=a")
    app = FastAPI()

    @app.get("/x")
    def f(n: int) -> int:
        return n

    view = _view(TestClient(app).get("/x?n=a"))  # what nbapi showed as the cell's result
    nb.cells[1].outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": view}, execution_count=2)
    ]
    exported = export_notebook(nb)
    namespace: dict[str, Any] = {}
    source = exported.test_py.split("def validation_rows", 1)[1].split("\n\n\n", 1)[0]
    exec("import json\ndef validation_rows" + source, namespace)
    return namespace


def test_422_table_is_asserted_row_by_row() -> None:
    response = TestClient(_demo_app()).get("/items/abc")
    lines = expectation(_view(response), False)
    assert lines is not None
    assert lines[0] == "assert response.status_code == 422, response.text"
    assert "assert validation_rows(response) == [" in lines[1]
    assert "('path.item_id'" in lines[1] or '"path.item_id"' in lines[1]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("GET /items/1?q=a", 'client.get("/items/1?q=a")'),
        (
            'POST /items {"name": "Lamp", "n": [1, 2]}',
            'client.post("/items", json={"name": "Lamp", "n": [1, 2]})',
        ),
        ("DELETE /items/1", 'client.delete("/items/1")'),
        ('DELETE /items {"all": true}', 'client.request("DELETE", "/items", json={"all": True})'),
        ("-v GET /items/{item_id}", 'client.get(f"/items/{item_id}")'),
        ("GET /items/{unknown}", 'client.get("/items/{unknown}")'),
        ("-f POST /form a=1&b=2&a=3", 'client.post("/form", data={"a": ["1", "3"], "b": "2"})'),
    ],
)
def test_request_code(line: str, code: str) -> None:
    request = Request(parse_http_line(line), f"%http {line}")
    assert request_code(request, {"item_id"}, None) == code


def test_http_cell_with_headers_and_variables() -> None:
    exported = export_notebook(
        notebook(
            "from fastapi import FastAPI, Header\napp = FastAPI()\ntoken = 'abc'",
            "@app.get('/me')\ndef me(authorization: str = Header()):\n    return authorization",
            "%%http GET /me\nAuthorization: Bearer {token}\nX-Plain: {not_a_name}\n",
        )
    )
    assert (
        '    response = client.get(\n        "/me",\n'
        '        headers=[("Authorization", f"Bearer {token}"), ("X-Plain", "{not_a_name}")],\n'
        "    )\n"
    ) in exported.test_py
    assert "from app import app, token" in exported.test_py


def test_request_cells_become_ordered_tests_with_shared_names() -> None:
    exported = export_notebook(
        notebook(
            "from fastapi import FastAPI\napp = FastAPI()\nITEMS = []",
            "@app.post('/items')\ndef add(name: str):\n    ITEMS.append(name)\n    return len(ITEMS)",
            "r = %http POST /items?name=a\nfirst = r.json()",
            "ITEMS.clear()\n%http POST /items?name=b",
            "assert first == 1",
        )
    )
    test_py = exported.test_py
    # Named by In[N] as Restart & Run All numbers the cells (the third and fourth).
    assert test_py.index("def test_cell_03") < test_py.index("def test_cell_04")
    assert "    global first\n" in test_py
    assert "    ITEMS.clear()\n    client.post(" in test_py  # state changes stay between requests
    assert "ITEMS.clear()" not in exported.app_py


# -- formatting, requirements --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"a": [1, None, True]}, '{"a": [1, None, True]}'),
        ("é\n'\"", '"é\\n\'\\""'),
        ((1,), "(1,)"),
        ({"k": "v" * 90}, '{\n    "k": "' + "v" * 90 + '",\n}'),
    ],
)
def test_py_literal(value: Any, text: str) -> None:
    assert py(value) == text
    assert eval(text) == value


def test_requirements_pin_what_app_imports() -> None:
    text = requirements(
        "import json\nimport jwt\nfrom fastapi import FastAPI, Form\nfrom pydantic import EmailStr\n"
        "import local_helpers_module\n"
    )
    lines = text.splitlines()
    assert f"fastapi=={metadata.version('fastapi')}" in lines
    assert f"PyJWT=={metadata.version('PyJWT')}" in lines
    assert f"python-multipart=={metadata.version('python-multipart')}" in lines
    assert f"email-validator=={metadata.version('email-validator')}" in lines
    assert f"uvicorn=={metadata.version('uvicorn')}" in lines
    assert f"pytest=={metadata.version('pytest')}" in lines  # what test_app.py needs
    assert f"httpx2=={metadata.version('httpx2')}" in lines
    assert not any(line.startswith("json") for line in lines)
    assert "# local_helpers_module: not an installed distribution (a local module?)" in lines


# -- writing, the command line, %nbapi export ----------------------------------------------------
@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.ipynb"
    nbformat.write(
        notebook(
            "%load_ext nbapi",
            "%%route GET /items/<int:item_id>\ndef read(item_id):\n    return {'id': item_id}",
            "%http GET /items/1",
        ),
        path,
    )
    return path


def test_export_writes_four_files_and_replaces_only_its_own(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = export_path(shop, out)
    assert sorted(p.name for p in out.iterdir()) == [
        ".nbapi-export.json",
        "README.md",
        "app.py",
        "keep.txt",
        "requirements.txt",
        "test_app.py",
    ]
    assert (out / "app.py").read_text() == result.exported.app_py
    (out / "test_app.py").write_text("stale, but what the last export wrote? no: edited")
    with pytest.raises(ExportError, match=r"test_app\.py.*--force"):
        export_path(shop, out)
    export_path(shop, out, force=True)  # the user asked for it
    assert (out / "test_app.py").read_text() == result.exported.test_py
    assert (out / "keep.txt").read_text() == "mine"
    export_path(shop, out)  # unchanged since the last export: replaced without --force
    assert repr(result).startswith(f"exported shop.ipynb to {out}: app.py (1 %%route cells)")


def test_command_line(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(shop), "-o", str(tmp_path / "o")]) == 0
    assert "exported shop.ipynb" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "missing.ipynb")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "does not exist; check the path" in err
    with pytest.raises(SystemExit) as caught:
        main(["export"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_default_output_is_next_to_the_notebook(shop: Path) -> None:
    assert main(["export", str(shop)]) == 0
    assert (shop.parent / "shop-export" / "app.py").is_file()


def test_export_command_uses_jpy_session_name(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", str(shop))
    assert current_notebook() == shop
    result = run(None, ["export", str(tmp_path / "o")])
    assert (tmp_path / "o" / "test_app.py").is_file()
    assert result.notebook == "shop.ipynb"


def test_export_command_without_a_session_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    with pytest.raises(UserError, match=r"use %nbapi export NOTEBOOK\.ipynb \[DIR\]"):
        run(None, ["export"])
    with pytest.raises(UserError, match="too many arguments"):
        run(None, ["export", "a.ipynb", "b", "c"])


def test_nbapi_export_magic(shell: Any, shop: Path, tmp_path: Path) -> None:
    from IPython.core.error import UsageError

    result = shell.run_line_magic("nbapi", f"export {shop} {tmp_path / 'magic'}")
    assert repr(result).startswith("exported shop.ipynb to")
    assert json.loads(json.dumps(result.exported.tests)) == 1
    with pytest.raises(UsageError, match="does not exist"):
        shell.run_line_magic("nbapi", f"export {tmp_path / 'nope.ipynb'}")


def test_export_module_is_pure() -> None:
    # The console script must not pay for (or depend on) IPython.
    code = "import sys, nbapi._export, nbapi.__main__; print('IPython' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# -- issue 12: items 1, 9, 10, 13 and 14 ----------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("GET /x a=1), (2", "not one keyword list"),  # item 1: no AssertionError
        ("GET /x status_code=201), print('x'", "not one keyword list"),
        ("GET /x bogus=1", "unknown keyword 'bogus' for %%route"),  # item 10
        ("GET /x status_cod=201", "did you mean 'status_code'?"),
        ("WS /x status_code=201", "unknown keyword 'status_code' for a websocket route"),
    ],
)
def test_export_refuses_route_lines_the_kernel_refuses(line: str, reason: str) -> None:
    with pytest.raises(ExportError) as caught:
        export_notebook(notebook(f"%%route {line}\ndef f():\n    return 1"), "nb.ipynb")
    (problem,) = caught.value.problems
    assert problem.reason.startswith("bad %%route line:")
    assert reason in problem.reason


def test_export_refuses_a_route_cell_whose_saved_output_is_a_usage_error() -> None:
    nb = notebook("%%route GET /x status_code=CODE\ndef f():\n    return 1")
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "stream", name="stderr", text="UsageError: cannot evaluate the keywords ...\n"
        )
    ]
    nb.cells.insert(0, nbformat.v4.new_code_cell("CODE = 201"))
    with pytest.raises(ExportError) as caught:
        export_notebook(nb, "nb.ipynb")
    assert "the kernel refused it (cannot evaluate the keywords ...)" in str(caught.value.report())


@pytest.mark.parametrize(
    "argv_extra",
    [[], ["--force"]],
)
def test_command_line_never_overwrites_hand_edits(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv_extra: list[str]
) -> None:
    out = tmp_path / "o"
    assert main(["export", str(shop), "-o", str(out)]) == 0
    assert (out / ".nbapi-export.json").is_file()
    edited = (out / "app.py").read_text() + "\n# my hand edit\n"
    (out / "app.py").write_text(edited)
    capsys.readouterr()
    status = main(["export", str(shop), "-o", str(out), *argv_extra])
    _, err = capsys.readouterr()
    if argv_extra:  # the user asked to replace it
        assert status == 0
        assert "# my hand edit" not in (out / "app.py").read_text()
        return
    assert status == 2
    assert err.count("\n") == 1
    assert f"'{out / 'app.py'}' differs from what nbapi last exported there" in err
    assert "--force" in err
    assert (out / "app.py").read_text() == edited


def test_export_into_a_directory_nbapi_never_wrote_keeps_its_files(
    shop: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "requirements.txt").write_text("my-pins==1\n")
    with pytest.raises(ExportError, match=r"requirements\.txt' differs .*--force"):
        export_path(shop, out)
    assert (out / "requirements.txt").read_text() == "my-pins==1\n"
    assert not (out / "app.py").exists()  # nothing half-written


@pytest.mark.parametrize(
    "body",
    [
        # FastAPI's docs: dependencies with yield and except
        "try:\n        yield 1\n    except OwnerError as e:\n        raise ValueError(e)",
        "with open(__file__) as fh:\n        return fh.read()",
        "if (n := len('ab')) > 1:\n        return n",
        "return [y for y in range(3) if y] + [k for k, v in {}.items()]",
        "match 1:\n        case {'a': a, **rest}:\n            return a, rest\n"
        "        case [first, *others]:\n            return first, others\n"
        "        case int() as whole:\n            return whole",
        "global COUNT\n    COUNT = 1\n    return COUNT",
        "n = 0\n    def inner():\n        nonlocal n\n        n += 1\n        return n\n    return inner",
        "import json as j\n    from os import path as p\n    return j, p",
    ],
    ids=[
        "except-as",
        "with-as",
        "walrus",
        "comprehension",
        "match",
        "global",
        "nonlocal",
        "import",
    ],
)
def test_every_binding_form_binds(body: str) -> None:
    cells = [
        "class OwnerError(Exception):\n    pass",
        f"%%route GET /x\ndef handler():\n    {body}",
    ]
    exported = export_notebook(notebook(*cells), "nb.ipynb")
    assert exported.notes == []
    run_app(exported.app_py)  # imports


def test_names_used_only_in_function_bodies_are_notes_and_the_export_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.ipynb"
    cells = (
        "async def get_db():\n    db = DBSession()\n    try:\n        yield db\n"
        "    finally:\n        db.close()",
        "%%route GET /ping\ndef ping():\n    return 'pong'",
        "%http GET /ping",
    )
    nbformat.write(notebook(*cells), path)
    result = export_path(path, tmp_path / "out")
    note = (
        "cell In[1] ('async def get_db():'): its functions use DBSession, which no exported "
        "cell defines; app.py imports, but calling them raises NameError until you define it"
    )
    assert note in result.exported.notes
    assert "  note: cell In[1] ('async def get_db():'): its functions use DBSession" in repr(result)
    app = run_app((tmp_path / "out" / "app.py").read_text())
    assert TestClient(app).get("/ping").json() == "pong"


def test_names_needed_at_import_are_still_refused() -> None:
    with pytest.raises(ExportError) as caught:
        export_notebook(notebook("def f(x=DEFAULT):\n    return x"), "nb.ipynb")
    assert "it uses DEFAULT, which no exported cell defines" in caught.value.report()


def test_non_ascii_header_is_exported_as_the_utf8_bytes_http_sent() -> None:
    cells = (
        "from fastapi import FastAPI, Header\napp = FastAPI()",
        "@app.get('/name')\ndef name(x_name: str = Header()):\n    return x_name",
        "%%http GET /name\nX-Name: Jos\u00e9\n",
    )
    exported = export_notebook(notebook(*cells), "nb.ipynb")
    assert '("X-Name", "Jos\u00e9".encode())' in exported.test_py
    client = TestClient(run_app(exported.app_py))
    response = client.get("/name", headers=[("X-Name", "Jos\u00e9".encode())])
    assert response.json() == "Jos\u00c3\u00a9"  # Starlette reads header bytes as latin-1


@pytest.mark.parametrize("argv", [["export", "a\nb.ipynb"], ["export", "x.ipynb", "extra\x0c"]])
def test_command_line_errors_stay_on_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    assert status == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("view", "body_assert"),
    [
        (
            "HTTP 500 Internal Server Error\n\nInternal Server Error\n\n"
            "Traceback (most recent call last):\n  Cell In[3], line 2, in boom\n"
            "ZeroDivisionError: division by zero",
            'assert response.text == "Internal Server Error"',
        ),
        (
            "HTTP 500 Internal Server Error\n\nTraceback (most recent call last):\n"
            "ZeroDivisionError: division by zero",
            'assert response.text == ""',
        ),
    ],
)
def test_the_handler_traceback_http_shows_is_not_expected_as_body(
    view: str, body_assert: str
) -> None:
    from nbapi._export import expectation

    assert expectation(view, verbose=False) == [
        "assert response.status_code == 500, response.text",
        body_assert,
    ]
