"""Compare two OpenAPI documents operation by operation: what changed, and what breaks clients.

The same comparison serves ``nbapi diff`` on two files, ``%nbapi check`` against a contract
and the re-run check on one operation (see ``_rules`` for the rules). Pure: no FastAPI, no
IPython.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._errors import UserError
from ._rules import (
    DEFAULT_POLICY,
    METHODS,
    Change,
    Doc,
    Key,
    Operation,
    Policy,
    compare,
    key_label,
    operation_key,
)

__all__ = ["Change", "ContractError", "Diff", "Policy", "diff_documents", "load_document"]


class ContractError(UserError):
    """An OpenAPI file that cannot be read, or a checkpoint that does not exist."""


class Diff:
    """Every change between two versions of an API, breaking ones first.

    ``.changes`` lists them all, ``.breaking`` those that break clients; ``.ok`` is True
    when there is none of those.
    """

    def __init__(self, changes: Iterable[Change], against: str = "") -> None:
        self.changes: list[Change] = sorted(set(changes), key=Change.sort_key)
        self.against = against  # "since checkpoint 'v1'", for the summary line

    @property
    def breaking(self) -> list[Change]:
        return [change for change in self.changes if change.breaking]

    @property
    def ok(self) -> bool:
        return not self.breaking

    def lines(self) -> list[str]:
        """One line per change, with its rule."""
        return [f"{change.line()} [{change.rule}]" for change in self.changes]

    def __repr__(self) -> str:
        since = f" {self.against}" if self.against else ""
        if not self.changes:
            return f"no changes{since}"
        count, broken = len(self.changes), len(self.breaking)
        summary = f"{count} change{'s' * (count != 1)}{since}, {broken} breaking"
        return "\n".join([*self.lines(), summary])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def operations(document: Doc) -> dict[Key, Operation]:
    """Every operation of an OpenAPI document, by (METHOD, path with anonymous parameters)."""
    found: dict[Key, Operation] = {}
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or ()
        for method in METHODS:
            spec = item.get(method)
            if isinstance(spec, dict):
                found[operation_key(method, path)] = Operation(
                    method.upper(), path, spec, document, shared
                )
    return found


def diff_documents(old: Doc, new: Doc, policy: Policy = DEFAULT_POLICY) -> Diff:
    return Diff(diff_operations(operations(old), operations(new), policy))


def diff_operations(
    old: Mapping[Key, Operation], new: Mapping[Key, Operation], policy: Policy = DEFAULT_POLICY
) -> list[Change]:
    changes: list[Change] = []
    for key, before in old.items():
        after = new.get(key)
        if after is None:
            changes.append(
                Change("operation-removed", True, *key_label(before), "operation removed")
            )
        else:
            changes += compare(before, after, policy)
    for key, after in new.items():
        if key not in old:
            changes.append(Change("operation-added", False, *key_label(after), "operation added"))
    return changes


# -- reading documents -------------------------------------------------------------------
def load_document(path: str | Path, *, what: str = "OpenAPI file") -> dict[str, Any]:
    """Read an OpenAPI document (.json, .yaml, .yml); ``ContractError`` names what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        msg = f"cannot read the {what} {str(path)!r}: {reason}; check the path"
        raise ContractError(msg) from None
    document = _parse(path, text, what)
    if not isinstance(document, dict) or ("paths" not in document and "openapi" not in document):
        msg = (
            f"{str(path)!r} is not an OpenAPI document (no 'openapi' or 'paths' key); "
            "give the JSON FastAPI serves at /openapi.json, or its YAML"
        )
        raise ContractError(msg)
    if "swagger" in document or not isinstance(document.get("paths", {}), dict):
        msg = (
            f"{str(path)!r} is not an OpenAPI 3 document (Swagger 2.0 or 'paths' not a mapping); "
            "convert it to OpenAPI 3, e.g. with swagger2openapi"
        )
        raise ContractError(msg)
    return document


def _parse(path: Path, text: str, what: str) -> Any:
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:  # pragma: no cover - pyyaml is installed with nbapi[contract]
            msg = (
                f"reading the YAML {what} {str(path)!r} needs PyYAML; pip install 'nbapi[contract]'"
            )
            raise ContractError(msg) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            msg = f"{str(path)!r} is not valid YAML{where}; fix the file or export it again"
            raise ContractError(msg) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = (
            f"{str(path)!r} is not valid JSON (line {exc.lineno}: {exc.msg}); "
            "fix the file, or name YAML files .yaml"
        )
        raise ContractError(msg) from None
