"""Reproducible installs: the lock files, the Dockerfile that uses them, `make run`.

`requirements.lock` is what the image installs (`pip install --require-hashes`): every
runtime dependency of pyproject.toml (and of the extras it asks for) pinned to one
version, every pin with its files' hashes, and nothing only the tests need.
`requirements-test.lock` is what `make test` installs: the same runtime pins, plus the test
tools, so the tests run the versions the image ships.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
BUILD_LOCK = ROOT / "requirements-build.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def locked(lock: Path = LOCK) -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes), from the lock's `name==version \\ --hash=...` entries."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\\\n\s*", " ", lock.read_text())             # join continued lines
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


@pytest.mark.parametrize("lock", [LOCK, TEST_LOCK, BUILD_LOCK], ids=lambda p: p.name)
def test_every_pin_carries_sha256_hashes(lock: Path) -> None:
    pins = locked(lock)
    assert len(pins) >= (len(PYPROJECT["build-system"]["requires"]) if lock == BUILD_LOCK
                         else len(PYPROJECT["project"]["dependencies"]))
    for name, (_version, hashes) in pins.items():
        assert hashes, f"{name} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h.strip()) for h in hashes), name


def test_the_lock_holds_no_test_tool() -> None:
    pins = locked()
    for extra in PYPROJECT["project"]["optional-dependencies"]:
        for text in PYPROJECT["project"]["optional-dependencies"][extra]:
            name = canonicalize_name(Requirement(text).name)
            assert name not in pins, f"{name} (extra {extra!r}) is in the runtime lock"


@pytest.mark.parametrize("lock", [LOCK, TEST_LOCK, BUILD_LOCK], ids=lambda p: p.name)
def test_the_lock_names_its_generator(lock: Path) -> None:
    assert "make lock" in lock.read_text().split("\n\n", 1)[0]


def test_the_tests_run_the_runtime_versions_the_image_ships() -> None:
    runtime, tests = locked(LOCK), locked(TEST_LOCK)
    differ = {name: (version, tests.get(name, ("missing",))[0])
              for name, (version, _hashes) in runtime.items()
              if tests.get(name, ("",))[0] != version}
    assert not differ, f"{TEST_LOCK.name} differs from {LOCK.name}: {differ}; run `make lock`"


def test_every_test_tool_is_locked_at_a_version_it_allows() -> None:
    pins = locked(TEST_LOCK)
    for text in PYPROJECT["project"]["optional-dependencies"]["test"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {TEST_LOCK.name}: run `make lock`"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), name


def make_commands(target: str, *args: str) -> list[str]:
    """What `make TARGET` would run, one command a line (nothing is run)."""
    done = subprocess.run(["make", "-n", "-B", target, "VENV=/nonexistent/venv", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return re.sub(r"\\\n\s*", " ", done.stdout).splitlines()


def test_make_test_installs_the_test_lock_with_hashes_and_nothing_unpinned() -> None:
    installs = [line for line in make_commands("venv") if "pip install" in line]
    assert any(f"--require-hashes -r {TEST_LOCK.name}" in line for line in installs), installs
    assert any(f"--require-hashes -r {BUILD_LOCK.name}" in line for line in installs), installs
    assert any(re.search(r"--no-deps --no-build-isolation -e \.(\s|$)", line)
               for line in installs), installs
    assert not any("[test]" in line for line in installs), installs


def test_the_build_lock_pins_the_build_system_with_hashes() -> None:
    pins = locked(BUILD_LOCK)
    for text in tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in {BUILD_LOCK.name}"
        assert requirement.specifier.contains(pins[name][0]), (name, pins[name][0])
        assert pins[name][1], f"{name} has no hash"
    # one mypy for type-checking and compiling: the test lock's
    assert pins["mypy"][0] == locked(TEST_LOCK)["mypy"][0]


def test_make_test_and_make_run_run_the_compiled_core() -> None:
    assert any("python -m hack.native" in line for line in make_commands("test"))
    assert "python -m hack.native" in make_dry_run()


def test_make_image_pins_the_base_image_by_the_digest_its_registry_answers() -> None:
    commands = " ".join(make_commands("image", "BASE_IMAGE=python:3.11-slim-bookworm"))
    inspect = commands.index("skopeo inspect --format '{{.Digest}}' "
                             "docker://docker.io/library/python:3.11-slim-bookworm")
    build = commands.index("docker build --build-arg "
                           "PYTHON_IMAGE=python:3.11-slim-bookworm@$digest")
    assert inspect < build
    assert "exit 2" in commands[inspect:build]       # no digest, no build
    froms = [line.split()[1] for line in dockerfile_instructions()
             if line.upper().startswith("FROM ")]
    assert froms and all(base == "${PYTHON_IMAGE}" for base in froms), froms


def dockerfile_instructions() -> list[str]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_installs_the_lock_with_hashes_then_the_package_alone() -> None:
    lines = dockerfile_instructions()
    commands = [part.strip() for line in lines for part in line.split("&&")]
    installs = [c for c in commands if re.search(r"pip (install|wheel) ", c)]
    assert any(re.search(r"pip install .*--require-hashes -r requirements\.lock", c)
               for c in installs), installs
    # the build tools (mypyc) from their own lock, into a venv that is not the image's
    assert any(re.search(r"/opt/build/bin/pip install .*--require-hashes "
                         r"-r requirements-build\.lock", c) for c in installs), installs
    # the wheel is built with those tools alone (nothing fetched), then installed alone
    assert any(re.search(r"pip wheel .*--no-build-isolation --no-deps", c) for c in installs)
    assert any(re.search(r"/opt/venv/bin/pip install .*--no-deps /tmp/wheels/", c)
               for c in installs), installs
    # nothing else resolves dependencies
    assert all("--require-hashes" in c or "--no-deps" in c for c in installs), installs
    assert len(installs) == 4, installs
    copies = " ".join(line for line in lines if line.upper().startswith("COPY"))
    assert "requirements.lock" in copies and "requirements-build.lock" in copies
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"!requirements.lock", "!requirements-build.lock", "!setup.py"} <= set(ignored)


def test_the_final_image_gets_the_venv_and_no_compiler() -> None:
    text = (ROOT / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM "):]
    assert "apt-get" not in final and "gcc" not in final
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert "/opt/build" not in final


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
