"""The base of every error that is the user's to fix.

The magics turn these into one-line ``UsageError`` messages; Python callers get
them as ``ValueError``s.
"""


class UserError(ValueError):
    """Bad input from the user; the message names the bad value and the fix, in one line."""
