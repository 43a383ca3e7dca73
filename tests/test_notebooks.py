"""The tutorial notebooks: all listed ones exist, cover the user guide, and follow the rules.

nbval runs the notebooks themselves (pytest collects notebooks/*.ipynb); these tests
check what nbval cannot: the index, the coverage of every topic of the learning path,
and the shape each notebook must have (loads nbapi, ends with checks, links onwards).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
_ROW = re.compile(r"^\|\s*\[(?P<name>[^\]]+)\]\((?P<file>[^)]+\.ipynb)\)\s*\|(?P<topic>[^|]+)\|")


def listed() -> list[str]:
    """Notebook file names in the order of the index, notebooks/README.md."""
    text = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    return [m.group("file") for m in map(_ROW.match, text.splitlines()) if m]


LISTED = listed()

# Each topic of the learning path (issue 5) -> words that a notebook teaching it must contain
# (in its markdown or code, case-insensitive). One notebook must contain all of a topic's words.
TOPICS: dict[str, list[str]] = {
    "first steps: the app, /docs, /redoc, openapi.json": [
        "FastAPI(",
        "/docs",
        "/redoc",
        "openapi.json",
    ],
    "path parameters: types, conversion, validation, order matters, enums, paths in paths": [
        "path parameter",
        "book_id: int",
        "order matters",
        "(str, Enum)",
        ":path}",
    ],
    "query parameters: defaults, optional, bool conversion, required": [
        "query parameter",
        "= None",
        ": bool",
        "required",
    ],
    "request body with Pydantic models, with path and query": [
        "BaseModel",
        "request body",
        "path",
        "query",
    ],
    "query and string validations": [
        "Annotated",
        "Query(",
        "min_length",
        "max_length",
        "pattern=",
        "list[str]",
        "alias=",
        "deprecated=True",
        "include_in_schema=False",
    ],
    "path parameters and numeric validations": ["Path(", "ge=", "gt=", "le=", "lt="],
    "body: multiple parameters, embed, fields, nested models, examples": [
        "Body(",
        "embed=True",
        "Field(",
        "nested",
        "examples",
    ],
    "extra data types": ["UUID", "datetime", "timedelta", "Decimal", "frozenset"],
    "cookie and header parameters, parameter models": ["Cookie(", "Header(", "parameter model"],
    "response model and return types, extra models, status codes": [
        "response_model",
        "return type",
        "extra models",
        "status_code=",
    ],
    "form data, files, forms with files": ["Form(", "File(", "UploadFile"],
    "handling errors": ["HTTPException", "exception_handler", "RequestValidationError"],
    "path operation configuration, jsonable_encoder, body updates": [
        "tags=",
        "summary=",
        "jsonable_encoder",
        "PATCH",
        "exclude_unset",
    ],
    "dependencies": ["Depends(", "yield", "dependencies=["],
    "security": [
        "OAuth2PasswordBearer",
        "OAuth2PasswordRequestForm",
        "jwt",
        "pwdlib",
        "SecurityScopes",
        "HTTPBasic",
    ],
    "middleware and CORS": ["middleware", "CORSMiddleware"],
    "bigger applications with APIRouter": ["APIRouter", "include_router"],
    "background tasks": ["BackgroundTasks"],
    "metadata, docs URLs, static files": ["openapi_tags", "docs_url", "StaticFiles"],
    "testing": ["%http", "TestClient", "dependency_overrides", "pytest"],
    "custom responses": [
        "HTMLResponse",
        "StreamingResponse",
        "FileResponse",
        "set_cookie",
        "responses=",
    ],
    "websockets": ["WebSocket"],
    "lifespan events": ["lifespan", "asynccontextmanager"],
    "settings from environment variables": ["BaseSettings", "environment"],
    "SQL database with SQLModel on SQLite, full CRUD": ["SQLModel", "sqlite", "delete"],
    "sub-applications and behind a proxy": ["mount(", "root_path"],
}

# Unmaintained libraries the tutorial must not teach (issue 5).
UNMAINTAINED = ["from jose", "import jose", "python-jose", "passlib"]


def read(name: str) -> Any:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def text_of(name: str) -> str:
    return "\n".join(cell.source for cell in read(name).cells)


def code_cells(name: str) -> list[Any]:
    return [cell for cell in read(name).cells if cell.cell_type == "code"]


def existing() -> list[str]:
    return [name for name in LISTED if (NOTEBOOKS / name).is_file()]


def test_index_lists_the_whole_path() -> None:
    numbers = [int(name[:2]) for name in LISTED]
    assert numbers == list(range(len(LISTED))), LISTED
    assert len(LISTED) >= 27


def test_no_unlisted_notebooks() -> None:
    on_disk = {path.name for path in NOTEBOOKS.glob("*.ipynb")}
    assert on_disk <= set(LISTED), sorted(on_disk - set(LISTED))


@pytest.mark.parametrize("name", LISTED)
def test_listed_notebook_exists(name: str) -> None:
    assert (NOTEBOOKS / name).is_file(), f"notebooks/README.md lists {name}, which is missing"


@pytest.mark.parametrize(("topic", "words"), list(TOPICS.items()), ids=list(TOPICS))
def test_topic_is_covered(topic: str, words: list[str]) -> None:
    texts = {name: text_of(name).lower() for name in existing()}
    missing_by_notebook = {
        name: [w for w in words if w.lower() not in text] for name, text in texts.items()
    }
    covering = [name for name, missing in missing_by_notebook.items() if not missing]
    closest = min(missing_by_notebook.items(), key=lambda item: len(item[1]), default=None)
    assert covering, f"no notebook teaches {topic!r}; closest: {closest}"


@pytest.mark.parametrize("name", LISTED)
class TestNotebookShape:
    @pytest.fixture(autouse=True)
    def _exists(self, name: str) -> None:
        if not (NOTEBOOKS / name).is_file():
            pytest.skip(f"{name} is missing (test_listed_notebook_exists fails for it)")

    def test_kernelspec(self, name: str) -> None:
        kernelspec = read(name).metadata.get("kernelspec", {})
        assert kernelspec.get("name") == "python3", kernelspec
        assert kernelspec.get("language") == "python", kernelspec

    def test_starts_by_loading_nbapi(self, name: str) -> None:
        first = code_cells(name)[0].source.strip().splitlines()
        assert first[0].strip() == "%load_ext nbapi", first

    def test_no_live_server_unless_it_is_taught(self, name: str) -> None:
        # %http needs no server; notebooks without one run fast and in parallel.
        first = code_cells(name)[0].source
        if name[:2] in {"00", "01"}:
            assert "autostart = False" not in first
        else:
            assert re.search(r"%config NbAPI\.autostart\s*=\s*False", first), first

    def test_ends_with_checks(self, name: str) -> None:
        last = code_cells(name)[-1].source
        assert re.search(r"^\s*assert ", last, re.MULTILINE), last

    def test_has_exercises_with_solutions(self, name: str) -> None:
        if name.startswith("00-"):
            return  # the quickstart is five cells, no exercises
        text = text_of(name).lower()
        assert "exercise" in text
        hidden = [
            cell
            for cell in code_cells(name)
            if cell.metadata.get("jupyter", {}).get("source_hidden")
        ]
        assert hidden or "solution" in text

    def test_links_to_the_next_notebook(self, name: str) -> None:
        index = LISTED.index(name)
        if index + 1 == len(LISTED):
            return
        wanted = f"]({LISTED[index + 1]})"
        markdown = [cell.source for cell in read(name).cells if cell.cell_type == "markdown"]
        assert any(wanted in source for source in markdown), f"no link {wanted}"

    def test_saved_outputs_are_from_a_run(self, name: str) -> None:
        # An exercise's check cell (nbval-skip) is the learner's to run: saved unrun.
        run = [c for c in code_cells(name) if "nbval-skip" not in c.metadata.get("tags", [])]
        counts = [cell.execution_count for cell in run]
        assert None not in counts, "run it with notebooks/run_all.py and save it"
        assert counts == sorted(counts), "cells were run out of order"

    def test_outputs_are_deterministic(self, name: str) -> None:
        # nbval compares outputs: object addresses would differ on every run.
        for cell in code_cells(name):
            for output in cell.get("outputs", []):
                text = str(output.get("text", "")) + str(
                    output.get("data", {}).get("text/plain", "")
                )
                assert not re.search(r" at 0x[0-9a-fA-F]{6,}", text), text

    def test_errors_are_expected(self, name: str) -> None:
        for cell in code_cells(name):
            errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
            if errors:
                tags = cell.metadata.get("tags", [])
                assert "raises-exception" in tags, f"{cell.source!r} raised {errors[0].ename}"

    def test_ignored_outputs_say_why(self, name: str) -> None:
        for cell in code_cells(name):
            if "nbval-ignore-output" in cell.metadata.get("tags", []):
                assert "#" in cell.source, f"cell ignored without a reason: {cell.source!r}"

    def test_no_unmaintained_libraries(self, name: str) -> None:
        text = text_of(name)
        code = "\n".join(cell.source for cell in code_cells(name))
        for library in UNMAINTAINED:
            assert library not in code, library
        assert "passlib" not in text or "unmaintained" in text.lower()
