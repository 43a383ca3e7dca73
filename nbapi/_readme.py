"""The README an export writes: commands that work when pasted, and what to know.

Nothing here imports IPython.
"""

from __future__ import annotations

import ast

_CONTAINERS = frozenset({"dict", "list", "set", "defaultdict", "Counter", "deque", "OrderedDict"})


def module_state(app_py: str) -> list[str]:
    """Module-level containers that the app's functions read: state kept per process."""
    tree = ast.parse(app_py)
    candidates: dict[str, int] = {}
    for statement in tree.body:
        value = getattr(statement, "value", None)
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets = list(statement.targets)
        elif isinstance(statement, ast.AnnAssign) and value is not None:
            targets = [statement.target]
        container = isinstance(
            value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
        ) or (
            isinstance(value, ast.Call)
            and getattr(value.func, "id", getattr(value.func, "attr", "")) in _CONTAINERS
        )
        if not container:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                candidates.setdefault(target.id, statement.lineno)
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return sorted((name for name in candidates if name in used), key=candidates.__getitem__)


def readme_text(notebook: str, app_py: str, tests: int, fresh: bool = True) -> str:
    """README.md for an export of ``notebook`` (``fresh``: expectations from a fresh run)."""
    source = "a fresh run of the notebook gave" if fresh else "the notebook's saved outputs show"
    lines = [
        f"# {notebook.removesuffix('.ipynb')}",
        "",
        f"Exported by nbapi from `{notebook}`: `app.py` is a plain FastAPI app, "
        f"`test_app.py` holds the notebook's requests and checks as {tests} pytest tests, "
        f"with the responses {source}.",
        "",
        "```bash",
        "python3 -m venv .venv && . .venv/bin/activate",
        "pip install -r requirements.txt",
        "python -m pytest test_app.py",
        "uvicorn app:app --port 8000",
        "```",
    ]
    state = module_state(app_py)
    if state:
        names = ", ".join(f"`{name}`" for name in state)
        lines += [
            "",
            f"The app keeps its data in module globals ({names}). Each process has its own "
            "copy, which starts afresh whenever the process starts: with "
            "`uvicorn app:app --workers N` every worker has different data, and a restart "
            "loses it. Run one worker, or move the data into a database.",
        ]
    return "\n".join(lines) + "\n"
