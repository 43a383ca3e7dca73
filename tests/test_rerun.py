"""The run an export trusts, and the README it writes: the pure parts, no kernel."""

from __future__ import annotations

from typing import Any

import pytest

from nbapi._readme import module_state, readme_text
from nbapi._rerun import clean_run_note, unsaved_note


def notebook(*counts: int | None) -> dict[str, Any]:
    cells: list[dict[str, Any]] = [{"cell_type": "markdown", "source": "# title"}]
    cells += [
        {"cell_type": "code", "source": f"x = {i}", "execution_count": count, "outputs": []}
        for i, count in enumerate(counts)
    ]
    cells.append({"cell_type": "code", "source": "", "execution_count": None, "outputs": []})
    return {"cells": cells}


@pytest.mark.parametrize(
    ("counts", "note"),
    [
        ((1, 2, 3), None),
        ((1, 3, 4), "a cell shows In[3] where Restart & Run All shows In[2]"),
        ((2, 1), "a cell shows In[2] where Restart & Run All shows In[1]"),
        ((1, None), "a cell never ran where Restart & Run All shows In[2]"),
        ((5, 6), "a cell shows In[5] where Restart & Run All shows In[1]"),
    ],
)
def test_clean_run_note(counts: tuple[int | None, ...], note: str | None) -> None:
    found = clean_run_note(notebook(*counts))
    if note is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith("the saved outputs are not from one clean run in order (")
        assert note in found
        assert found.endswith("Restart & Run All and save, or export without --saved-outputs")


@pytest.mark.parametrize(
    ("history_length", "note"),
    [
        (None, None),
        (5, None),  # saved up to In[3]; In[4] is this export cell
        (6, "1 cell ran in this kernel after the notebook was last saved (In[4]); "),
        (8, "3 cells ran in this kernel after the notebook was last saved (In[4] to In[6]); "),
        (2, None),  # a restarted kernel: fewer cells than the file shows
    ],
)
def test_unsaved_note(history_length: int | None, note: str | None) -> None:
    history = None if history_length is None else [""] * history_length
    found = unsaved_note(notebook(1, 2, 3), history)
    if note is None:
        assert found is None
    else:
        assert found == note + (
            "the export reads the saved file: save the notebook and export again to include them"
        )


@pytest.mark.parametrize(
    ("app_py", "state"),
    [
        ("ITEMS = {}\ndef read():\n    return ITEMS\n", ["ITEMS"]),
        (
            "db: list[int] = []\nn = dict()\nasync def f():\n    db.append(1); n[1] = 2\n",
            ["db", "n"],
        ),
        ("LIMIT = 10\ndef read():\n    return LIMIT\n", []),
        ("TAGS = ['a']\n", []),  # read by no function: configuration, not state
    ],
)
def test_module_state(app_py: str, state: list[str]) -> None:
    assert module_state(app_py) == state


def test_readme_says_state_is_per_worker_only_when_there_is_some() -> None:
    with_state = readme_text("shop.ipynb", "ITEMS = {}\ndef f():\n    return ITEMS\n", 3)
    assert with_state.startswith("# shop\n")
    assert "pip install -r requirements.txt\npython -m pytest test_app.py\n" in with_state
    assert "module globals (`ITEMS`)" in with_state
    assert "a fresh run of the notebook" in with_state
    plain = readme_text("shop.ipynb", "def f():\n    return 1\n", 1, fresh=False)
    assert "module globals" not in plain
    assert "saved outputs" in plain


def test_cells_left_unrun_on_purpose_do_not_count() -> None:
    nb = notebook(1, 2)
    nb["cells"].insert(
        2,
        {
            "cell_type": "code",
            "source": "check()",
            "execution_count": None,
            "metadata": {"tags": ["nbval-skip"]},
            "outputs": [],
        },
    )
    assert clean_run_note(nb) is None
