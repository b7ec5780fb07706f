"""Reproducible installs: the lock file, the Dockerfile that uses it, `make run`.

`requirements.lock` is what the image installs (`pip install --require-hashes`): every
runtime dependency of pyproject.toml (and of the extras it asks for) pinned to one
version, every pin with its files' hashes, and nothing only the tests need.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def locked() -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes), from the lock's `name==version \\ --hash=...` entries."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\\\n\s*", " ", LOCK.read_text())             # join continued lines
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split(" --hash=")
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)(\s*;.*)?", requirement.strip())
        assert match, f"not an exact pin: {line!r}"
        entries[canonicalize_name(match.group(1))] = (match.group(2), options)
    return entries


def runtime_requirements() -> list[Requirement]:
    """pyproject's dependencies, and those their requested extras bring (uvicorn[standard]),
    as they apply to this Python on this platform (the image's: CPython 3.11, Linux)."""
    found: list[Requirement] = []
    for text in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        found.append(requirement)
        for extra in requirement.extras:
            for dependency in metadata.requires(requirement.name) or ():
                nested = Requirement(dependency)
                environment = {**default_environment(), "extra": extra}
                if nested.marker is not None and nested.marker.evaluate(environment) \
                        and "extra" in str(nested.marker):
                    found.append(nested)
    return found


def test_every_runtime_dependency_is_locked_at_a_version_it_allows() -> None:
    pins = locked()
    requirements = runtime_requirements()
    assert any(r.name == "uvloop" for r in requirements)          # the extras were read
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK.name}: run `make lock`"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCK.name} pins {name}=={version}, pyproject asks {requirement}: "
            "run `make lock`")


def test_every_pin_carries_sha256_hashes() -> None:
    pins = locked()
    assert len(pins) >= len(PYPROJECT["project"]["dependencies"])
    for name, (_version, hashes) in pins.items():
        assert hashes, f"{name} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h.strip()) for h in hashes), name


def test_the_lock_holds_no_test_tool() -> None:
    pins = locked()
    for extra in ("test", "fuzz", "lock"):
        for text in PYPROJECT["project"]["optional-dependencies"][extra]:
            name = canonicalize_name(Requirement(text).name)
            assert name not in pins, f"{name} (extra {extra!r}) is in the runtime lock"


def test_the_lock_names_its_generator() -> None:
    assert "make lock" in LOCK.read_text().split("\n\n", 1)[0]


def dockerfile_instructions() -> list[str]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_installs_the_lock_with_hashes_then_the_package_alone() -> None:
    lines = dockerfile_instructions()
    installs = [line for line in lines if "pip install" in line]
    assert any(re.search(r"pip install .*--require-hashes -r requirements\.lock", line)
               for line in installs), installs
    assert any(re.search(r"pip install .*--no-deps \.(\s|$)", line) for line in installs)
    # nothing else resolves dependencies: every pip install is one of those two
    assert len(installs) == 2, installs
    copies = " ".join(line for line in lines if line.upper().startswith("COPY"))
    assert "requirements.lock" in copies
    assert "!requirements.lock" in (ROOT / ".dockerignore").read_text().splitlines()


def make_dry_run(*args: str) -> str:
    done = subprocess.run(["make", "-n", "-B", "run", "VENV=/nonexistent/venv", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(("args", "listen"), [
    pytest.param((), "--host 127.0.0.1 --port 8443", id="loopback-by-default"),
    pytest.param(("HOST=0.0.0.0", "PORT=9443"), "--host 0.0.0.0 --port 9443", id="host-port"),
])
def test_make_run_installs_only_what_serving_needs(args: tuple[str, ...], listen: str) -> None:
    commands = make_dry_run(*args)
    assert f"kci-webhook serve --config examples/config.yaml {listen}" in commands
    assert "--require-hashes -r requirements.lock" in commands
    assert "[test]" not in commands and "pytest" not in commands
