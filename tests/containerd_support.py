"""A real containerd for tests: Debian's `containerd` under a temporary root, and `ctr`.

`start_containerd(workdir)` runs the daemon with its own root, state and sockets under
`workdir` and a minimal config (the CRI plugin and the snapshotters that need kernel
features are disabled: a pull needs only the content store, the metadata and the native
snapshotter), and waits, bounded, until `ctr version` answers. `Containerd.pull` runs
`ctr images pull --hosts-dir DIR` in a namespace of its own, so one test's images never
satisfy another's pull; what it prints and how long it took come back.

`ctr` resolves and fetches in the client process with containerd's own registry code
(`remotes/docker/config`, the code the CRI plugin uses for the kubelet's pulls), reading
`hosts.toml` at every pull. The daemon needs root (it mounts and chowns); the fixtures
skip with that reason elsewhere, and fail when the packages are missing (`make deps`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import terminate

CONTAINERD = "containerd"
CTR = "ctr"
START_TIMEOUT = 30.0  # seconds; a healthy start takes well under one
PULL_TIMEOUT = 120  # seconds; a pull of the tests' one-layer images takes well under one
SNAPSHOTTER = "native"  # works on any filesystem, in any sandbox (no overlay mounts)
DISABLED_PLUGINS = ("io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.overlayfs")


def require_containerd() -> None:
    """Skip when not root (the daemon must be), fail when the packages are missing."""
    if os.geteuid() != 0:
        pytest.skip("containerd runs only as root (its root directory, mounts and "
                    "namespaces); CI runs as root")
    missing = [tool for tool in (CONTAINERD, CTR, "runc") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run `make deps`", pytrace=False)


def node_name() -> tuple[str, str]:
    """(name, address): a name of this machine that containerd does not treat as
    localhost, and the address it resolves to. For `localhost`, 127.0.0.1 and ::1
    containerd assumes plain HTTP without verification when no hosts.toml names the host
    (remotes/docker/config/hosts.go), which would hide exactly the failure under test."""
    name = socket.gethostname()
    if not name or name == "localhost" or name.replace(".", "").isdigit():
        pytest.skip(f"this machine's host name {name!r} cannot stand for a remote registry")
    try:
        address = socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0]
        with socket.socket() as probe:
            probe.bind((address, 0))
    except OSError as exc:
        pytest.skip(f"this machine's host name {name!r} does not resolve to an address of "
                    f"its own ({exc})")
    return name, str(address)


@dataclass
class Pull:
    """What `ctr images pull` said, and how long it took."""

    ref: str
    returncode: int
    output: str
    seconds: float
    namespace: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Containerd:
    workdir: Path
    address: Path
    process: subprocess.Popen[bytes]
    log: Path
    pulls: list[Pull] = field(default_factory=list)

    def ctr(self, *args: str, namespace: str = "default",
            timeout: float = PULL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CTR, "--address", str(self.address), "--namespace", namespace,
                               *args], capture_output=True, text=True, timeout=timeout,
                              check=False, env={**os.environ, "HOME": str(self.workdir)})

    def pull(self, ref: str, *, hosts_dir: Path, user: str | None = None,
             tlscacert: Path | None = None) -> Pull:
        """`ctr images pull --hosts-dir DIR REF` in a fresh namespace. `tlscacert` is the
        trust ctr uses for hosts no hosts.toml gives a CA, as a node's system store is."""
        namespace = f"kci-{uuid.uuid4().hex[:12]}"
        args = ["images", "pull", "--snapshotter", SNAPSHOTTER, "--hosts-dir", str(hosts_dir)]
        if user is not None:
            args += ["--user", user]
        if tlscacert is not None:
            args += ["--tlscacert", str(tlscacert)]
        started = time.monotonic()
        done = self.ctr(*args, ref, namespace=namespace)
        pull = Pull(ref, done.returncode, done.stdout + done.stderr,
                    time.monotonic() - started, namespace)
        self.pulls.append(pull)
        return pull

    def digest(self, pull: Pull) -> str:
        """The manifest digest the pulled image points at."""
        done = self.ctr("images", "ls", namespace=pull.namespace)
        for line in done.stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == pull.ref:
                return next(f for f in fields if f.startswith("sha256:"))
        raise AssertionError(f"{pull.ref} not in the image store:\n{done.stdout}")

    def stop(self) -> None:
        terminate(self.process)


def _version() -> str:
    done = subprocess.run([CTR, "--version"], capture_output=True, text=True, timeout=10,
                          check=False)
    return done.stdout.split()[-1] if done.stdout.split() else "unknown"


def _config(workdir: Path) -> str:
    disabled = ", ".join(f'"{name}"' for name in DISABLED_PLUGINS)
    return (f'version = 2\nroot = "{workdir / "root"}"\nstate = "{workdir / "state"}"\n'
            f"disabled_plugins = [{disabled}]\n\n"
            f'[grpc]\n  address = "{workdir / "containerd.sock"}"\n\n'
            f'[ttrpc]\n  address = "{workdir / "containerd.sock.ttrpc"}"\n\n'
            f'[debug]\n  address = "{workdir / "debug.sock"}"\n\n'
            '[metrics]\n  address = ""\n')


def start_containerd(workdir: Path) -> Containerd:
    require_containerd()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.toml"
    config.write_text(_config(workdir))
    log = workdir / "containerd.log"
    with log.open("wb") as out:
        process = subprocess.Popen([CONTAINERD, "--config", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    runtime = Containerd(workdir, workdir / "containerd.sock", process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if runtime.address.exists() and runtime.ctr("version", timeout=10).returncode == 0:
            return runtime
        time.sleep(0.1)
    runtime.stop()
    raise RuntimeError(f"containerd did not start:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session", name="containerd")
def containerd_fixture(tmp_path_factory: pytest.TempPathFactory,
                       request: pytest.FixtureRequest) -> Iterator[Containerd]:
    """One daemon for the session: starting it costs a second, and each pull has its own
    namespace. At the end, the pull timings are printed with the test summary."""
    require_containerd()
    runtime = start_containerd(tmp_path_factory.mktemp("containerd"))
    try:
        yield runtime
    finally:
        runtime.stop()
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None and runtime.pulls:
            times = sorted(p.seconds for p in runtime.pulls)
            with capture.global_and_fixture_disabled():
                reporter.write_line(
                    f"\ncontainerd pulls: {len(times)}, median "
                    f"{times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms "
                    f"(ctr {_version()}, {SNAPSHOTTER} snapshotter)")
