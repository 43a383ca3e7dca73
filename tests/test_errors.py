from __future__ import annotations

import pytest

from nbapi._errors import error_line, first_line


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
        (ValueError(""), "ValueError"),
        (ValueError("  \n"), "ValueError"),
        (ValueError("\n  first\nsecond"), "ValueError: first"),
        (KeyError("k"), "KeyError: 'k'"),
    ],
)
def test_error_line(exc: BaseException, line: str) -> None:
    assert error_line(exc) == line


@pytest.mark.parametrize(
    ("text", "line"), [("", ""), ("a\nb", "a"), ("\n\n  b  \nc", "b"), ("a\u2028b", "a")]
)
def test_first_line(text: str, line: str) -> None:
    assert first_line(text) == line
