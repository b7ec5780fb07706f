"""Writing a `Plan` into containerd's hosts directory: atomically, and only what it owns.

containerd reads a host's hosts.toml and CA files at every pull, with no lock, so each
file is written to a temporary name in the same directory and renamed over the old one
(rename is atomic within a filesystem): a pull sees the old file or the new one, never
half of one. CA files are written before the hosts.toml that names them, and removed after
it, so no hosts.toml ever names a missing CA.

Ownership: a directory is ours when its hosts.toml starts with the marker line
(`render.MARKER`; the CA copies start with it too), or when it does not exist yet. A
directory holding a hosts.toml without the marker, or other files and no hosts.toml (a
Docker-style certs directory), belongs to another tool: it is reported and never changed
or removed. Our directories that the config
no longer asks for are removed (our files, then the directory if it is empty).

A CA file is checked before it is copied: PEM certificates only; a file with a private key
is refused, so a wrong `caFile` never spreads a key to every node.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from webhook.adapters.files import write_atomic
from webhook.tools.nodeconfig.render import HOSTS_FILE, MARKER, HostDir, Plan, is_owned

MAX_CA_BYTES = 1024 * 1024  # a ConfigMap or Secret holds at most 1 MiB
FILE_MODE = 0o644  # containerd runs as root; the files hold nothing secret
DIR_MODE = 0o755

ReadFile = Callable[[str], bytes]


@dataclass
class Outcome:
    """What one pass did: directories written, unchanged, removed, left alone (foreign),
    and failed (with why); `ok` is False when anything the config asks for is not on disk."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unusable_config: bool = False  # nothing was attempted: the config could not be used

    @property
    def ok(self) -> bool:
        return not self.errors


def read_file(path: str) -> bytes:
    """The default CA reader: at most MAX_CA_BYTES, so a wrong path cannot fill memory."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_CA_BYTES + 1)
    if len(data) > MAX_CA_BYTES:
        raise OSError(f"{path}: larger than {MAX_CA_BYTES} bytes")
    return data


def check_ca(data: bytes, *, source: str) -> None:
    """Refuse what must not be copied to nodes: no certificate, or a private key."""
    if b"PRIVATE KEY-----" in data:
        raise ValueError(f"{source}: holds a private key; caFile must hold only CA "
                         "certificates (it is copied to every node)")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ValueError(f"{source}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it")


def _marked(path: Path) -> bool:
    """A file this tool wrote: its first line is the marker (CA copies carry it too: PEM
    readers skip text before `-----BEGIN`), or one of its temporary files."""
    if path.name.startswith(".") and path.name.endswith(".tmp"):
        return True
    try:
        with path.open("rb") as handle:
            first = handle.read(len(MARKER) + 2)
    except OSError:
        return False
    return is_owned(first.decode("utf-8", errors="replace"))


def owner(directory: Path) -> str:
    """"ours", "foreign", or "absent" (nothing there: ours to create).

    With a hosts.toml, its marker decides. Without one, a directory holding only files this
    tool wrote (its CA copy, after its hosts.toml was deleted) is ours; any other file
    makes it someone else's (Docker's certs.d layout: `ca.crt`, `client.cert`, ...)."""
    hosts = directory / HOSTS_FILE
    try:
        text = hosts.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        if not directory.exists():
            return "absent"
        files = list(directory.iterdir())
        if not files:
            return "absent"
        return "ours" if all(_marked(path) for path in files) else "foreign"
    except NotADirectoryError:
        return "foreign"
    return "ours" if is_owned(text) else "foreign"


def ca_copy(data: bytes) -> bytes:
    """The CA file as copied: the marker line, then the certificates as they were."""
    return f"{MARKER}\n".encode() + data


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically; False (and no write) when it already holds it."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == data:
            return False
    write_atomic(path, data, mode=FILE_MODE)
    return True


def _safe_name(name: str) -> bool:
    """A host[:port] is one path component: never a separator, '.', '..' or empty."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _write_dir(root: Path, entry: HostDir, read: ReadFile, outcome: Outcome) -> None:
    directory = root / entry.name
    state = owner(directory)
    if state == "foreign":
        outcome.foreign.append(entry.name)
        outcome.warnings.append(
            f"{directory}: configured by another tool (no '{HOSTS_FILE}' written by "
            "kci-webhook node-config); left as it is")
        return
    try:
        cas = []
        for name, source in entry.cas:
            data = read(source)
            check_ca(data, source=source)
            cas.append((name, ca_copy(data)))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        outcome.errors.append(f"{entry.name}: CA not copied, the host's files are left as "
                              f"they were: {reason}")
        return
    try:
        directory.mkdir(mode=DIR_MODE, parents=False, exist_ok=True)
        changed = [write_if_changed(directory / name, data) for name, data in cas]
        changed.append(write_if_changed(directory / HOSTS_FILE, entry.hosts_toml.encode()))
        _remove_stale_cas(directory, keep={name for name, _ in cas})
    except OSError as exc:
        outcome.errors.append(f"{directory}: {exc.strerror or exc}")
        return
    (outcome.written if any(changed) else outcome.unchanged).append(entry.name)


def _remove_stale_cas(directory: Path, *, keep: set[str]) -> None:
    """CA copies a previous version of our file named and this one does not."""
    for path in directory.glob("ca*.crt"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def _remove_dir(directory: Path, outcome: Outcome) -> None:
    try:
        (directory / HOSTS_FILE).unlink(missing_ok=True)
        _remove_stale_cas(directory, keep=set())
        for leftover in directory.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: someone else's file stays
            directory.rmdir()
    except OSError as exc:
        outcome.errors.append(f"{directory}: not removed: {exc.strerror or exc}")
        return
    outcome.removed.append(directory.name)


def apply(plan: Plan, root: Path, *, read: ReadFile = read_file) -> Outcome:
    """Make `root` hold exactly the plan's directories among those this tool owns."""
    outcome = Outcome(warnings=list(plan.warnings))
    if not root.is_dir():
        outcome.errors.append(f"{root}: not a directory (containerd's config_path, such as "
                              "/etc/containerd/certs.d)")
        return outcome
    for entry in plan.dirs:
        if not _safe_name(entry.name):
            outcome.errors.append(f"{entry.name!r}: not a host[:port]")
            continue
        _write_dir(root, entry, read, outcome)
    wanted = plan.names()
    for directory in sorted(root.iterdir()):
        if directory.name not in wanted and directory.is_dir() and owner(directory) == "ours":
            _remove_dir(directory, outcome)
    return outcome


__all__ = ["MAX_CA_BYTES", "Outcome", "apply", "ca_copy", "check_ca", "owner", "read_file",
           "write_if_changed"]
