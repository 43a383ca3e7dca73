"""requirements.txt: what app.py imports, pinned to the installed versions."""

from __future__ import annotations

import ast
import sys
from importlib import metadata

# -- requirements -------------------------------------------------------------------------
# Packages FastAPI needs at run time for what a name from it does, though nobody imports them.
RUNTIME_EXTRAS = {
    ("fastapi", "Form"): "python-multipart",
    ("fastapi", "File"): "python-multipart",
    ("fastapi", "UploadFile"): "python-multipart",
    ("fastapi.security", "OAuth2PasswordRequestForm"): "python-multipart",
    ("pydantic", "EmailStr"): "email-validator",
    ("pwdlib", "PasswordHash"): "argon2-cffi",
}


def requirements(app_py: str) -> str:
    """``dist==version`` lines for what app.py imports, plus uvicorn to serve it."""
    tree = ast.parse(app_py)
    roots: set[str] = set()
    wanted: set[str] = {"uvicorn"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
            for alias in node.names:
                extra = RUNTIME_EXTRAS.get((node.module, alias.name))
                if extra:
                    wanted.add(extra)
    mapping = metadata.packages_distributions()
    lines: list[str] = []
    for root in sorted(roots):
        if root in sys.stdlib_module_names or root == "__future__":
            continue
        dists = sorted(mapping.get(root, []))
        if not dists:
            lines.append(f"# {root}: not an installed distribution (a local module?)")
            continue
        wanted.add(dists[0])
    pins = [_pin(dist) for dist in sorted(wanted, key=str.lower)]
    # TestClient runs on httpx2 (Starlette asks for it); test_app.py needs both.
    tests = [_pin("pytest"), _pin("httpx2")]
    header = "# Exported by nbapi: what app.py imports, pinned to the versions the notebook ran."
    return "\n".join([header, *pins, *lines, "# test_app.py runs with:", *tests]) + "\n"


def _pin(dist: str) -> str:
    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:  # pytest, say, need not be installed beside nbapi
        return dist
