"""The helpers test_app.py defines, as real code: each is copied there by its source.

test_app.py runs without nbapi, so these use the standard library only and keep
the untyped signatures they have in the exported file. ``validation_rows`` is also
the client's: the rows nbapi shows for a 422 are the rows the tests assert.
"""

import json
import os


def validation_rows(response):
    """A 422 body as the (location, message, input) rows nbapi showed."""
    rows = []
    for error in response.json()["detail"]:
        location = ".".join(str(part) for part in error.get("loc", ()))
        given = error.get("input", "")
        shown = json.dumps(given, ensure_ascii=False) if "input" in error else ""
        rows.append((location, str(error["msg"]), shown))
    return rows


def upload(path):
    """A file for a multipart form, as ``%http -f ... name@path`` sent it."""
    with open(path, "rb") as file:  # closed: pytest -W error fails on a leak
        return (os.path.basename(path), file.read())


def status_line(response):
    """``HTTP 200 OK``, as nbapi showed a response."""
    return f"HTTP {response.status_code} {response.reason_phrase}"
