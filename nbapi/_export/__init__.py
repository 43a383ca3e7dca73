"""Export a notebook to a plain FastAPI project: ``app.py``, ``test_app.py``, ``requirements.txt``.

The notebook is read as it was saved, cell by cell in notebook order (what
"Restart & Run All" runs):

- ``%%route METHOD PATH KW...`` cells become their code with the decorator nbapi
  applied (``@app.get(PATH, KW...)``, ``@app.api_route(PATH, methods=[...], KW...)``
  or ``@app.websocket(PATH, KW...)``) on the cell's last top-level function; Flask
  and Express paths are rewritten and converters become annotations, as the
  registry does. ``app = FastAPI()`` is written where nbapi created the app.
- Other code cells are kept, minus notebook-only lines: magics, shell commands,
  ``display(...)``/``print(...)`` calls, values shown as output, and statements
  that use IPython, ipywidgets or nbapi. ``%time stmt`` and ``%env A=b`` become
  Python; ``%%writefile`` files are written into the export.
- Cells that send requests (``%http``, ``%%http``, ``r = %http ...``, nbapi's
  client, ``TestClient``) and top-level ``assert``s become pytest tests that run
  in notebook order against the exported app, asserting the status and body the
  saved outputs show. State changes between requests (data, ``os.environ``,
  ``dependency_overrides``) run in the tests at the same point, not in app.py.
  app.py is the notebook's final app: a response saved before a later cell changed
  the app is replayed but not asserted; requests to an app the notebook later
  replaced (``app = FastAPI(...)`` again) are not exported.

Tags: ``nbapi-skip`` (or nbval's ``raises-exception``) leaves a cell out;
``nbapi-export`` puts a cell into app.py whole.

A notebook that cannot be exported faithfully raises :class:`ExportError` naming
each cell (its index in the notebook, from 0, and first line) and the reason;
nothing is written. Pure: no IPython import.

Modules: ``source`` (cell text: masking magics, literals), ``names`` (name analysis
over the AST), ``cells`` (cells, saved outputs, problems), ``testfile`` (``%http``
cells to pytest), ``requirements``
(pinned requirements.txt), ``exporter`` (cells to app.py and test chunks) and
``files`` (reading the notebook, writing the export, ``%nbapi export``).
"""

from .cells import Exported, ExportError, Problem, Request
from .exporter import export_notebook
from .files import (
    MANIFEST,
    ExportResult,
    check_overwrite,
    current_notebook,
    default_directory,
    export_path,
    read_notebook,
    write_export,
)
from .requirements import requirements
from .source import annotate, py, route_decorator
from .testfile import expectation, request_code

__all__ = [
    "MANIFEST",
    "ExportError",
    "ExportResult",
    "Exported",
    "Problem",
    "Request",
    "annotate",
    "check_overwrite",
    "current_notebook",
    "default_directory",
    "expectation",
    "export_notebook",
    "export_path",
    "py",
    "read_notebook",
    "request_code",
    "requirements",
    "route_decorator",
    "write_export",
]
