"""What the exporter reads and reports: cells and their saved outputs, requests, problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._client import (
    HttpCall,
)
from .._errors import UserError
from .source import _first_line


class ExportError(UserError):
    """A notebook that cannot be exported faithfully; ``problems`` has one line per cell."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)

    def report(self) -> str:
        """The one-line summary, then one line per cell."""
        return "\n".join([str(self), *(f"  {p}" for p in self.problems)])


@dataclass(frozen=True)
class Problem:
    """Why one cell cannot be exported."""

    index: int
    first_line: str
    reason: str
    number: int = 0  # the cell's In[N] as Jupyter shows it (0: unknown, show the index)

    @property
    def label(self) -> str:
        return f"In[{self.number}]" if self.number else str(self.index)

    def __str__(self) -> str:
        return f"cell {self.label} ({self.first_line!r}): {self.reason}"


@dataclass
class Request:
    """An ``%http`` request and what the notebook got."""

    call: HttpCall
    raw: str
    expected: str | None = None  # the saved text view, when the notebook showed it


@dataclass
class Exported:
    """What an export writes, before it is written."""

    app_py: str
    test_py: str
    requirements: str
    files: dict[str, str] = field(default_factory=dict)
    routes: int = 0
    tests: int = 0
    last_app_cell: int = 0  # the last cell that put code other than imports in app.py
    notes: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, str]:
        return {
            "app.py": self.app_py,
            "test_app.py": self.test_py,
            "requirements.txt": self.requirements,
            **self.files,
        }


def _usage_error(outputs: Any) -> str | None:
    """The message of a ``UsageError`` the cell's saved output shows (IPython prints it
    on stderr, not as an error output), or None."""
    for output in outputs or []:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            for line in text.splitlines():
                if line.startswith("UsageError: "):
                    return line[len("UsageError: ") :].strip()[:200]
    return None


def _saved_result(cell: Any) -> tuple[str | None, str | None]:
    """(text/plain of the cell's execute_result, one line of its error) from saved outputs."""
    result = error = None
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "execute_result":
            text = output.get("data", {}).get("text/plain")
            result = "".join(text) if isinstance(text, list) else text
        elif kind == "error":
            error = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
            error = error.splitlines()[0] if error else "an error"
    return result, error


@dataclass
class _Cell:
    index: int
    source: str
    tags: set[str]
    outputs: Any
    number: int = 0  # In[N]: its execution count, else its place in a Restart & Run All

    @property
    def first(self) -> str:
        return _first_line(self.source)
