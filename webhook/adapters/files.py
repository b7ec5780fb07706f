"""Writing a file so that no reader ever sees half of it: the serving pair a replica
reloads, the CA and `hosts.toml` containerd reads on every pull."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write via a temp file in the same directory + os.replace: readers (the reload
    watcher, a second replica sharing a volume, containerd) never see a half-written file,
    and the temp file is created 0600, so a key is never briefly world-readable."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


__all__ = ["write_atomic"]
