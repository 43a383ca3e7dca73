"""How long ``%http POST /echo BODY`` takes to read a large JSON body on the magic line.

Before (issue 12, item 7): IPython expanded the line with its ``$name`` formatter (a
regex that rescans the rest of the line from every position) and nbapi split it
with ``shlex`` (which grows each token one character at a time): quadratic in the
body. After: ``{name}`` expansion only (``string.Formatter.parse``, in C) and plain
``str.split``. Both pipelines run side by side in this process on the same lines;
a "before" case that exceeds LIMIT seconds runs in a child process and is reported
as "> LIMIT s".

    python benchmarks/http_line_bench.py
"""

from __future__ import annotations

import json
import multiprocessing
import re
import shlex
import time
from collections.abc import Callable

from IPython.utils.text import DollarFormatter, FullEvalFormatter

from nbapi._client import parse_http_line

LIMIT = 30.0  # seconds a "before" case may take
NAMESPACE = {"item_id": 42}


def _old_parse(line: str) -> tuple[str, str, str]:
    """nbapi's parse_http_line before the fix (its costly part, kept verbatim)."""
    try:
        words = shlex.split(line, posix=True)
    except ValueError:
        words = line.split()
    rest = line.strip()
    while words and words[0].startswith("-"):
        words.pop(0)
        rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
    method, url, body = rest.split(None, 2)
    if not re.fullmatch(r"[A-Z]+", method.upper()):
        raise ValueError(method)
    return method, url, body


def _expand(formatter: FullEvalFormatter, line: str) -> str:
    try:
        return formatter.vformat(line, args=[], kwargs=NAMESPACE)
    except Exception:
        return line


def before(line: str) -> object:
    return _old_parse(_expand(DollarFormatter(), line))


def after(line: str) -> object:
    return parse_http_line(_expand(FullEvalFormatter(), line))


def _timed(function: Callable[[str], object], line: str) -> float:
    started = time.perf_counter()
    function(line)
    return time.perf_counter() - started


def _child(line: str, queue: multiprocessing.Queue[float]) -> None:
    queue.put(_timed(before, line))


def bounded_before(line: str) -> float | None:
    """Seconds ``before`` takes, or None when it runs past LIMIT (then it is stopped)."""
    queue: multiprocessing.Queue[float] = multiprocessing.Queue()
    child = multiprocessing.Process(target=_child, args=(line, queue), daemon=True)
    child.start()
    child.join(LIMIT)
    if child.is_alive():
        child.terminate()  # our own child, by its handle
        child.join()
        return None
    return queue.get()


def bodies(size: int) -> dict[str, str]:
    """A list of small objects (a typical payload) and one long string (the worst case)."""
    item = {"name": "Lamp", "price": 12.5, "tags": ["home", "light"]}
    count = size // len(json.dumps(item)) + 1
    many = json.dumps([item] * count)[:size].rsplit("},", 1)[0] + "}]"
    one = json.dumps({"text": "x" * size}, separators=(",", ":"))
    return {"objects": many, "one string": one}


def main() -> None:
    print(f"{'body':>22}  {'bytes':>9}  {'before':>10}  {'after':>9}  ratio")
    for size in (400_000, 5_000_000):
        for kind, body in bodies(size).items():
            line = f"POST /echo {body}"
            new = min(_timed(after, line) for _ in range(3))
            old = bounded_before(line)
            shown = f"> {LIMIT:.0f} s" if old is None else f"{old:.3f} s"
            ratio = f"> {LIMIT / new:,.0f}x" if old is None else f"{old / new:,.0f}x"
            print(f"{kind:>22}  {len(body):>9,}  {shown:>10}  {new:.4f} s  {ratio}")


if __name__ == "__main__":
    main()
