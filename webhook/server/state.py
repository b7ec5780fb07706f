"""What the routes read, and the watch that reloads the config into it.

One `AppState` per worker. The routes read it on every request; it is changed in place
only from the event loop, so a request sees either the old config or the new one: a
reload (`watch_config`) replaces its config, digest, watched files, reload error and
presence checker, and the first if-present admission creates the checker
(`webhook.server.mirrors`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from webhook.adapters.namespaces import NamespaceCache
from webhook.adapters.registry.files import check_config_files, config_files
from webhook.adapters.registry.presence import PresenceChecker
from webhook.adapters.tls.reload import ReloadingContext
from webhook.core import config as config_mod
from webhook.core.errors import ConfigError
from webhook.core.mutation.create import Context
from webhook.server import metrics
from webhook.server.settings import Settings, read_config

log = logging.getLogger("kci-webhook")
# Contexts kept for reuse, one per namespace: a cluster's namespaces, bounded all the same.
MAX_CONTEXTS = 4096


@dataclass
class AppState:
    """What the routes read. Mutated in place, from the event loop only: a config reload
    replaces `config`, `config_digest`, `watched_files`, `reload_error` and `checker`
    (the old checker retired once the admissions holding it finish), and the first
    admission that asks a mirror creates `checker`."""

    config: config_mod.Config
    environment: config_mod.EnvironmentDefaults
    namespaces: NamespaceCache
    tls: ReloadingContext | None
    own_namespace: str | None
    config_digest: bytes = b""
    watched_files: tuple[str, ...] = ()   # named by the config last read; part of the digest
    reload_error: str | None = None
    checker: PresenceChecker | None = None
    _contexts: dict[str, Context] = field(default_factory=dict, repr=False)

    def context_for(self, namespace: str) -> Context:
        """Everything but the pod, from immutable parts: the namespace's last one while
        those parts are the same objects (a reload or a changed Namespace makes new ones),
        else a new one. At most `MAX_CONTEXTS` kept, a namespace's each."""
        layer = self.namespaces.get(namespace)
        ctx = self._contexts.get(namespace)
        if (ctx is not None and ctx.namespace_layer is layer and ctx.config is self.config
                and ctx.environment is self.environment):
            return ctx
        ctx = Context(config=self.config, environment=self.environment, namespace=namespace,
                      namespace_layer=layer, own_namespace=self.own_namespace)
        if len(self._contexts) >= MAX_CONTEXTS:
            self._contexts.clear()
        self._contexts[namespace] = ctx
        return ctx


async def watch_config(state: AppState, settings: Settings, interval: float = 2.0) -> None:
    """Re-read the config file when its content, or that of a file it names, changes (a
    mounted ConfigMap or Secret is updated by a symlink swap that file events miss:
    compare content hashes). An invalid new config, or one naming a file that cannot be
    used, is refused and the old one keeps serving; logs, metrics and /readyz say which
    happened. A fixed file is noticed as a change, so the refused config is tried again."""
    while settings.config_path:
        await asyncio.sleep(interval)
        text, digest = snapshot(settings.config_path, state.watched_files)
        if not digest or digest == state.config_digest:
            continue
        state.config_digest = digest
        try:
            config = read_config(settings, text)
            files = config_files(config)
            if files != state.watched_files:
                state.watched_files = files
                state.config_digest = snapshot(settings.config_path, files)[1]
            check_config_files(config)
        except ConfigError as exc:
            state.reload_error = str(exc)
            metrics.CONFIG_RELOADS.labels("failure").inc()
            metrics.CONFIG_LAST_RELOAD_OK.set(0)
            log.error("new config refused, the previous one keeps serving: %s", exc)
            continue
        old_checker = state.checker
        state.config, state.reload_error, state.checker = config, None, None
        state.namespaces.set_dialect(config.dialect)
        if old_checker is not None:           # trust and credentials may have changed;
            await old_checker.retire()        # admissions that hold it finish on it first
        metrics.CONFIG_RELOADS.labels("success").inc()
        metrics.CONFIG_LAST_RELOAD_OK.set(1)
        log.info("config reloaded from %s: %d mirror(s)", config.source, len(config.mirrors))
        for warning in config.warnings:
            log.warning("%s: %s", config.source, warning)


def snapshot(path: str | None, files: tuple[str, ...] = ()) -> tuple[bytes | None, bytes]:
    """The config file's content, and a digest of it and of the files it names (a missing
    or unreadable named file counts as a content of its own, so its return is a change);
    (None, b"") when the config file cannot be read."""
    if not path:
        return None, b""
    try:
        text = Path(path).read_bytes()
    except OSError:
        return None, b""
    digest = hashlib.sha256(text)
    for name in files:
        try:
            digest.update(hashlib.sha256(Path(name).read_bytes()).digest())
        except OSError as exc:
            digest.update(f"unreadable {exc.errno}".encode())
    return text, digest.digest()
