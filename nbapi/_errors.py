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


class UserError(ValueError):
    """Bad input from the user; the message names the bad value and the fix, in one line."""
