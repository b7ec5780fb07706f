"""`python -m hack.native`: the compiled core (setup.py), built in place beside its source.

Run by `make test` and `make run`, so both run what the image runs. A compiled module
shadows its `.py`: after an edit, the `.so` must be built again, or the old code runs.
So this builds only when a source is newer than its compiled module (or none exists),
and `stale()` tells the tests (tests/conftest.py) which modules are out of date.
"""

from __future__ import annotations

import importlib.machinery
import os
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]      # .cpython-311-x86_64-linux-gnu.so


def sources() -> list[Path]:
    """The sources setup.py compiles (its own list, read without running setup())."""
    names = runpy.run_path(str(ROOT / "setup.py"), run_name="setup")["compiled_sources"]()
    return [ROOT / name for name in names]


def compiled(source: Path) -> Path:
    return source.with_name(source.stem + SUFFIX)


def stale() -> list[str]:
    """Compiled modules older than their source or than setup.py, which lists them (none
    built at all is not stale: the pure-Python package runs then)."""
    listed = (ROOT / "setup.py").stat().st_mtime
    return [str(src.relative_to(ROOT)) for src in sources()
            if compiled(src).exists()
            and compiled(src).stat().st_mtime < max(src.stat().st_mtime, listed)]


def missing() -> list[str]:
    return [str(src.relative_to(ROOT)) for src in sources() if not compiled(src).exists()]


def build() -> None:
    """Compile every module in place (mypyc compiles them together: one build for all)."""
    env = {key: value for key, value in os.environ.items() if key != "KCI_WEBHOOK_PURE"}
    done = subprocess.run([sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:        # all of it: the compiler's and mypyc's own words
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"compiling the core failed (exit {done.returncode})")
    for src in sources():
        compiled(src).touch()       # newer than its source, even when mypyc kept an old one


def clean() -> None:
    """Remove every compiled module (the shared one too): the pure-Python core runs."""
    for found in (ROOT / "webhook").rglob(f"*{SUFFIX}"):
        found.unlink()


def main() -> int:
    if "--clean" in sys.argv[1:]:
        clean()
        return 0
    out_of_date = stale() + missing()
    if out_of_date:
        clean()                 # a module no longer listed must not stay compiled
        print(f"compiling the core with mypyc ({len(out_of_date)} module(s) out of date) ...",
              file=sys.stderr, flush=True)
        build()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
