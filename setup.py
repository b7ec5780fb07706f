"""The build. pyproject.toml describes the package; this file adds the compiled core.

The pure core's admission path is compiled to C with mypyc (part of mypy, which already
type-checks it): the same source, run at about 1.8x the speed (docs/benchmarks.md). Every
other module, and the `.py` source of the compiled ones, ships as Python.
`KCI_WEBHOOK_PURE=1` builds the pure-Python package, with no compiler.

Not compiled: `webhook/core/config` (it runs once per config load, and compiled its frozen
dataclasses, whose `__post_init__` sets derived fields, crashed the interpreter),
`webhook/core/errors.py` (the server subclasses its exceptions, and a compiled class
cannot be subclassed by interpreted code) and `webhook/core/registration.py`
(registration, not admission). `python -m hack.native`
builds the same modules in place for the tests and `make run`.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
COMPILED_DIRS = ("webhook/core/admission", "webhook/core/mutation", "webhook/core/dialects",
                 "webhook/core/values")
COMPILED_FILES = ("webhook/core/reference.py", "webhook/core/model.py", "webhook/core/names.py")


def compiled_sources() -> list[str]:
    """The modules mypyc compiles, as paths relative to the repository (package
    `__init__.py` files stay Python: they only gather names)."""
    found = [str(path.relative_to(ROOT)) for folder in COMPILED_DIRS
             for path in sorted((ROOT / folder).glob("*.py")) if path.name != "__init__.py"]
    return found + list(COMPILED_FILES)


def extensions() -> list[object]:
    if os.environ.get("KCI_WEBHOOK_PURE") == "1":
        return []
    from mypyc.build import mypycify
    previous = Path.cwd()
    os.chdir(ROOT)          # mypyc resolves the module names from the working directory
    try:
        return list(mypycify(compiled_sources(), opt_level="3", group_name="webhook.core.native"))
    finally:
        os.chdir(previous)


if __name__ == "__main__":
    setup(ext_modules=extensions())
