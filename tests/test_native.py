"""The compiled core (setup.py, hack/native.py): built, loaded, and the same behaviour.

The tests as a whole run whatever core is built; these check that the build is what runs,
so a `make test` never passes on the pure-Python core by accident.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from hack import native
from tests.conftest import ROOT, RunningServer


def module_name(source: Path) -> str:
    return ".".join(source.relative_to(ROOT).with_suffix("").parts)


def test_setup_compiles_the_admission_path_and_nothing_that_does_io() -> None:
    names = {module_name(source) for source in native.sources()}
    assert {"webhook.core.admission.pipeline", "webhook.core.admission.patch",
            "webhook.core.mutation.create", "webhook.core.reference"} <= names
    assert all(name.startswith("webhook.core.") for name in names), names
    assert not any(name.startswith("webhook.core.config.") for name in names), names
    assert "webhook.core.errors" not in names       # subclassed by the server


@pytest.mark.skipif(os.environ.get("KCI_WEBHOOK_NATIVE") != "required",
                    reason="the compiled core is required only under `make test`")
def test_every_listed_module_is_loaded_compiled() -> None:
    for source in native.sources():
        module = importlib.import_module(module_name(source))
        assert module.__file__ is not None and not module.__file__.endswith(".py"), (
            module.__name__, module.__file__)


def test_a_source_newer_than_its_compiled_module_is_stale(tmp_path: Path) -> None:
    compiled = [source for source in native.sources() if native.compiled(source).exists()]
    if not compiled:
        pytest.skip("the core is not compiled here")
    source = compiled[0]
    built = native.compiled(source).stat().st_mtime
    before = source.stat()
    os.utime(source, (before.st_atime, built + 10))
    try:
        assert str(source.relative_to(ROOT)) in native.stale()
    finally:
        os.utime(source, (before.st_atime, before.st_mtime))
    assert str(source.relative_to(ROOT)) not in native.stale()


@pytest.mark.skipif(os.environ.get("KCI_WEBHOOK_NATIVE") != "required",
                    reason="the compiled core is required only under `make test`")
def test_serve_says_it_runs_the_compiled_core(
        server_factory: Callable[[str | None], RunningServer]) -> None:
    server = server_factory(None)
    lines = [line for line in server.log.read_text().splitlines() if "serving on" in line]
    assert lines and "compiled core" in lines[0] and "not compiled" not in lines[0], lines
