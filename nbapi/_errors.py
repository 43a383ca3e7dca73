"""The base of every error that is the user's to fix.

The magics turn these into one-line ``UsageError`` messages; Python callers get
them as ``ValueError``s.
"""

import re

# What str.splitlines() splits on.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped as ``!r`` shows them: a bad value that a
    message quotes raw (argparse does) must not split the message."""
    return _LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], text)


def first_line(text: str) -> str:
    """The first line of ``text`` that is not blank, stripped ("" when there is none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def error_line(exc: BaseException) -> str:
    """``"TypeName: first line of the message"``, or just the type's name: an exception in
    one line (a pydantic ``ValidationError`` says one thing per line)."""
    text = first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class UserError(ValueError):
    """Bad input from the user; the message names the bad value and the fix, in one line."""
