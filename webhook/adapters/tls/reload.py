"""The serving certificate, reloaded without a restart.

`ReloadingContext` is the SSLContext handed to uvicorn; cert-manager rotates the Secret,
the kubelet swaps the mounted files, and new handshakes get the new certificate. A broken
pair given at start-up raises `ValueError` (fail fast); a broken pair seen at reload time
is refused with a log line and the loaded one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from cryptography import x509

from webhook.adapters.tls.check import parse_pair

log = logging.getLogger("kci-webhook.tls")


@contextlib.contextmanager
def _pem_path(data: bytes) -> Iterator[str]:
    """A path holding exactly `data`, for `load_cert_chain` (which takes only paths).

    Loading from the bytes already validated, not from the watched paths, closes the race
    where the Secret is swapped between validation and load. memfd needs no writable
    filesystem (the Pod's root filesystem is read-only); a private temp dir otherwise."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("kci-webhook-tls")
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
    else:  # pragma: no cover - non-Linux
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "pem")
            path.write_bytes(data)
            yield str(path)


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _load_chain(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    with _pem_path(cert_pem) as cert_path, _pem_path(key_pem) as key_path:
        context.load_cert_chain(cert_path, key_path)


class ReloadingContext:
    """An ssl.SSLContext (PROTOCOL_TLS_SERVER, minimum TLS 1.2) whose certificate chain is
    reloaded in place when the files change, so new connections get the new certificate
    with no restart (existing ones keep theirs).

    Why in place: uvicorn is handed one SSLContext; `load_cert_chain` on the same context
    affects only new handshakes. Why content hashes, not mtimes or inotify: a mounted
    Secret is updated by swapping a `..data` symlink, which file events and mtimes miss.
    A new pair is loaded into a throwaway context first, so a pair OpenSSL rejects can
    never leave the live context half-updated (new certificate, old key).
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self._cert_file, self._key_file = Path(cert_file), Path(key_file)
        self._context = _server_context()
        self._lock = threading.Lock()
        self._rejected: bytes | None = None
        try:
            cert_pem, key_pem = self._cert_file.read_bytes(), self._key_file.read_bytes()
        except OSError as e:
            raise ValueError(f"cannot read TLS certificate/key: {e}") from None
        try:
            self._leaf = self._validate(cert_pem, key_pem)
        except ValueError as e:
            raise ValueError(f"TLS pair {self._cert_file} + {self._key_file}: {e}") from None
        _load_chain(self._context, cert_pem, key_pem)
        self._digest = self._hash(cert_pem, key_pem)

    @property
    def context(self) -> ssl.SSLContext:
        return self._context

    @property
    def not_after(self) -> datetime:
        """Expiry of the certificate new handshakes get (for an expiry metric)."""
        return self._leaf.not_valid_after_utc

    @staticmethod
    def _hash(cert_pem: bytes, key_pem: bytes) -> bytes:
        return hashlib.sha256(len(cert_pem).to_bytes(8, "big") + cert_pem + key_pem).digest()

    @staticmethod
    def _validate(cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
        leaf = parse_pair(cert_pem, key_pem)
        try:
            _load_chain(_server_context(), cert_pem, key_pem)
        except ssl.SSLError as e:
            raise ValueError(f"OpenSSL refuses the pair: {e}") from None
        return leaf

    def maybe_reload(self) -> bool:
        """Load the files if their content changed and they form a valid pair.

        Returns True only when a new pair was loaded. A broken or half-written pair is
        logged once per distinct content and the old pair keeps serving; the next change
        (the second half of the write) is tried again."""
        with self._lock:
            try:
                cert_pem, key_pem = self._cert_file.read_bytes(), self._key_file.read_bytes()
            except OSError as e:  # mid-swap, or the Secret was removed: keep serving
                digest = hashlib.sha256(str(e).encode()).digest()
                if digest != self._rejected:
                    log.warning("TLS reload skipped, cannot read files: %s", e)
                    self._rejected = digest
                return False
            digest = self._hash(cert_pem, key_pem)
            if digest in (self._digest, self._rejected):
                return False
            try:
                leaf = self._validate(cert_pem, key_pem)
                _load_chain(self._context, cert_pem, key_pem)
            except (ValueError, ssl.SSLError) as e:
                log.warning("TLS reload refused, still serving the certificate expiring %s:"
                            " %s + %s: %s", self.not_after.isoformat(), self._cert_file,
                            self._key_file, e)
                self._rejected = digest
                return False
            self._leaf, self._digest, self._rejected = leaf, digest, None
            log.info("TLS certificate reloaded: serial %x, expires %s", leaf.serial_number,
                     leaf.not_valid_after_utc.isoformat())
            return True

    async def watch(self, interval: float = 2.0) -> None:
        """Poll `maybe_reload` every `interval` seconds until cancelled. Any error is
        logged and polling goes on (a watcher that dies would leave an expiring certificate
        in place silently); cancellation propagates, as asyncio requires."""
        while True:
            try:
                self.maybe_reload()
            except Exception:
                log.exception("TLS reload check failed")
            await asyncio.sleep(interval)
