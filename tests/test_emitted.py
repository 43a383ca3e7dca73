"""The helpers copied into test_app.py, run as the exported tests run them."""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from nbapi import _emitted
from nbapi._client import validation_rows as client_rows


def _client() -> TestClient:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int, q: int = 0) -> dict[str, int]:
        return {"item_id": item_id, "q": q}

    return TestClient(app)


def test_validation_rows_are_the_rows_the_client_shows() -> None:
    response = _client().get("/items/abc?q=x")
    assert response.status_code == 422
    rows = _emitted.validation_rows(response)
    assert rows == client_rows(response.json())
    assert [row[0] for row in rows] == ["path.item_id", "query.q"]
    assert rows[0][2] == '"abc"'


def test_upload_reads_the_file_as_the_form_sent_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello\n")
    assert _emitted.upload(str(path)) == ("notes.txt", b"hello\n")


def test_status_line_is_the_one_nbapi_shows() -> None:
    assert _emitted.status_line(_client().get("/items/1")) == "HTTP 200 OK"


def test_each_helper_is_copied_from_standard_library_code_only() -> None:
    # test_app.py runs without nbapi: a helper names only json, os and its argument.
    for helper in (_emitted.validation_rows, _emitted.upload, _emitted.status_line):
        source = inspect.getsource(helper)
        assert "import" not in source
        assert source.startswith(f"def {helper.__name__}(")
