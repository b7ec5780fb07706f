"""The HTTPS shell: FastAPI routes, the body cap, health, and running uvicorn.

Policy lives in `webhook.core.admission.pipeline`; this module only moves bytes. Errors
travel on two channels (see `webhook.core.errors`): a `BadRequest` becomes an HTTP 4xx with
a JSON reason; an unexpected exception still becomes an AdmissionReview carrying the
request's uid. No input makes the server answer 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import signal
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

from webhook.adapters.namespaces import NamespaceCache, api_for, choose_source
from webhook.adapters.registry import PresenceChecker, check_config_files, config_files
from webhook.adapters.tls import ReloadingContext
from webhook.core import config as config_mod
from webhook.core.admission.dispatch import validate
from webhook.core.admission.envelope import DEFAULT_MAX_BODY_BYTES, Decision
from webhook.core.admission.pipeline import admit
from webhook.core.errors import ConfigError
from webhook.core.mutation.context import Context
from webhook.core.mutation.images import NO_ANSWER, PresenceQuestion
from webhook.server import metrics
from webhook.server.connections import BoundedHttpToolsProtocol
from webhook.server.drain import DEFAULT_SHUTDOWN_DELAY, Drain
from webhook.server.limits import DEFAULT_BODY_MEMORY_BYTES, Limits
from webhook.server.logs import log_config
from webhook.server.transport import AdmissionTransport, off_loop

log = logging.getLogger("kci-webhook")

JSON = "application/json"
TIMEOUT_ENV = "KCI_WEBHOOK_TIMEOUT_SECONDS"


@dataclass
class Settings:
    """What a worker needs; read from the environment so every uvicorn worker agrees."""

    config_path: str | None = None
    cert_file: str = ""
    key_file: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_memory_bytes: int = DEFAULT_BODY_MEMORY_BYTES
    limits: Limits = field(default_factory=Limits)
    own_namespace: str | None = None
    kubeconfig: str | None = None
    shutdown_delay: float = DEFAULT_SHUTDOWN_DELAY
    environ: dict[str, str] = field(default_factory=dict)
    # The webhook configurations' timeoutSeconds: the mirror checks' budget must fit in it.
    webhook_timeout: int = config_mod.DEFAULT_WEBHOOK_TIMEOUT_SECONDS

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        return cls(config_path=env.get("KCI_WEBHOOK_CONFIG") or None,
                   cert_file=env.get("KCI_WEBHOOK_TLS_CERT", ""),
                   key_file=env.get("KCI_WEBHOOK_TLS_KEY", ""),
                   max_body_bytes=int(env.get("KCI_WEBHOOK_MAX_BODY_BYTES",
                                              DEFAULT_MAX_BODY_BYTES)),
                   body_memory_bytes=int(env.get("KCI_WEBHOOK_BODY_MEMORY_BYTES",
                                                 DEFAULT_BODY_MEMORY_BYTES)),
                   limits=Limits.from_environ(env),
                   own_namespace=env.get("POD_NAMESPACE") or None,
                   kubeconfig=env.get("KCI_WEBHOOK_KUBECONFIG") or None,
                   shutdown_delay=float(env.get("KCI_WEBHOOK_SHUTDOWN_DELAY",
                                                DEFAULT_SHUTDOWN_DELAY)),
                   environ=env, webhook_timeout=config_mod.parse_webhook_timeout(
                       env.get(TIMEOUT_ENV) or str(config_mod.DEFAULT_WEBHOOK_TIMEOUT_SECONDS),
                       where=TIMEOUT_ENV))


def load_settings_config(settings: Settings) -> tuple[config_mod.Config,
                                                       config_mod.EnvironmentDefaults]:
    """Config file and KCI_* environment, validated, and the files the config names
    usable; raises ConfigError naming the source (and the key and file)."""
    config = read_config(settings)
    check_config_files(config)
    return config, config_mod.environment_defaults(settings.environ)


def read_config(settings: Settings, text: bytes | None = None) -> config_mod.Config:
    """The config file, parsed and validated (its named files not yet opened); `text`: its
    content as already read (a reload parses the bytes it took the digest of)."""
    if not settings.config_path:
        return config_mod.Config()
    path = Path(settings.config_path)
    if text is None:
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return config_mod.load_config(text, source=str(path),
                                  webhook_timeout=settings.webhook_timeout)


@dataclass
class AppState:
    """What the routes read. Swapped whole (config reload), never mutated in place."""

    config: config_mod.Config
    environment: config_mod.EnvironmentDefaults
    namespaces: NamespaceCache
    tls: ReloadingContext | None
    own_namespace: str | None
    config_digest: bytes = b""
    watched_files: tuple[str, ...] = ()   # named by the config last read; part of the digest
    reload_error: str | None = None
    checker: PresenceChecker | None = None

    def context_for(self, namespace: str) -> Context:
        """Everything but the pod: built per request from immutable parts (≈1 µs)."""
        return Context(config=self.config, environment=self.environment, namespace=namespace,
                       namespace_layer=self.namespaces.get(namespace),
                       own_namespace=self.own_namespace)


def create_app(settings: Settings, *,
               namespaces: NamespaceCache | None = None) -> AdmissionTransport:
    """The application for one worker. Config is parsed here once, never per request."""
    config, environment = load_settings_config(settings)
    tls = tls_for(settings.cert_file, settings.key_file) if settings.cert_file else None
    if namespaces is None:
        namespaces = NamespaceCache(
            api_for(choose_source(override=settings.kubeconfig, environ=settings.environ)),
            on_invalid=lambda _ns, key: metrics.NAMESPACE_INVALID.labels(key).inc(),
            on_state=lambda cache: metrics.set_namespace_state(cache.state, cache.synced_at),
            dialect=config.dialect)
    files = config_files(config)
    state = AppState(config=config, environment=environment, namespaces=namespaces, tls=tls,
                     own_namespace=settings.own_namespace,
                     config_digest=_snapshot(settings.config_path, files)[1],
                     watched_files=files)
    metrics.set_namespace_state(namespaces.state, None)
    drain = Drain(settings.shutdown_delay)
    if tls:
        metrics.CERT_EXPIRY.set(tls.not_after.timestamp())

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(watch_config(state, settings))]
        if tls:
            tasks.append(asyncio.create_task(tls.watch()))
        state.namespaces.start()
        drain.take_over_sigterm(asyncio.get_running_loop())
        yield
        state.namespaces.stop()
        for task in tasks:
            task.cancel()
        if state.checker is not None:
            await state.checker.aclose()

    app = FastAPI(title="kci-webhook", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    async def ask(asked: list[PresenceQuestion], /, *, config: config_mod.Config,
                  dry_run: bool) -> tuple[dict[tuple[str, str], tuple[bool, str]], list[str]]:
        return await ask_mirrors(state, config, asked, dry_run=dry_run)

    async def mutate_with_checks(body: bytes) -> Decision:
        """The core's admission (`webhook.core.admission.pipeline.admit`), asking the
        `if-present` mirrors through this worker's checker within the budget. A large
        body's decoding, judging and deciding run in a thread (`off_loop`), never on the
        loop."""
        return await admit(body, context_for=state.context_for, ask=ask, run=off_loop)

    async def validate_body(body: bytes) -> Decision:
        return await off_loop(validate, body, context_for=state.context_for)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    @app.get("/readyz")
    async def readyz() -> Response:
        """Ready when config and certificate are loaded and the certificate is in date;
        a degraded namespace cache still serves (last known values), and says so.
        Draining (after SIGTERM) is never ready: balancers stop sending new connections."""
        if drain.since is not None:
            body = orjson.dumps({"status": "draining", "detail": {
                "shuttingDownForSeconds": round(time.monotonic() - drain.since, 1)}})
            return Response(body, status_code=503, media_type=JSON)
        detail: dict[str, Any] = {
            "config": state.config.source,
            "certificate": "loaded" if state.tls else "none",
            "namespaces": state.namespaces.status(),
        }
        ready = True
        if state.reload_error:
            detail["configReloadError"] = state.reload_error
        if state.tls:
            metrics.CERT_EXPIRY.set(state.tls.not_after.timestamp())
            detail["certificateNotAfter"] = state.tls.not_after.isoformat()
            if state.tls.not_after.timestamp() < time.time():
                detail["certificate"] = "expired"
                ready = False
        body = orjson.dumps({"status": "ready" if ready else "not ready", "detail": detail})
        return Response(body, status_code=200 if ready else 503, media_type=JSON)

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        data, content_type = metrics.exposition()
        return Response(data, media_type=content_type)

    return AdmissionTransport(app, {"/mutate": mutate_with_checks, "/validate": validate_body},
                              max_body_bytes=settings.max_body_bytes,
                              body_timeout=settings.limits.body_timeout,
                              body_memory_bytes=settings.body_memory_bytes,
                              closing=lambda: drain.active)


async def ask_mirrors(state: AppState, config: config_mod.Config,
                      asked: list[PresenceQuestion], *,
                      dry_run: bool = False) -> tuple[dict[tuple[str, str], tuple[bool, str]],
                                                      list[str]]:
    """The answers to one admission's questions, and the warnings about the asking itself.

    At most `mirrorChecks.maxLookupsPerAdmission` questions go past the cache; the images
    of the others are kept as written, with one warning that says how many. The wait is
    at most the budget: a question not answered by then keeps its image (the pod pulls
    from the source registry) with a warning; a lookup already sent goes on and fills the
    cache for the next pod, one not yet sent is abandoned. A dry run's failures never put
    a mirror into its cool-down. The checker in use is held until the answers are in, so
    a config reload meanwhile lets this admission finish on it."""
    if not asked:
        return {}, []
    checks = config.mirror_checks
    if state.checker is None:
        state.checker = PresenceChecker(
            positive_ttl=checks.positive_ttl_seconds, negative_ttl=checks.negative_ttl_seconds,
            cooldown=checks.cooldown_seconds, timeout=checks.budget_seconds,
            max_in_flight_per_mirror=checks.max_in_flight_per_mirror)
    checker = state.checker
    before = checker.stats
    checker.hold()
    try:
        answers = await checker.answer_all(
            [(mirror, ref) for mirror, ref, _image in asked], budget=checks.budget_seconds,
            limit=checks.max_lookups_per_admission, dry_run=dry_run)
    finally:
        await checker.release()
    availability: dict[tuple[str, str], tuple[bool, str]] = {}
    not_asked: dict[str, None] = {}
    for (mirror, _ref, image), presence in zip(asked, answers, strict=True):
        key = (mirror.endpoint, image)
        if presence is None:
            availability[key] = NO_ANSWER
            not_asked[image] = None
        elif presence.present:
            availability[key] = (True, "")
        elif presence.status == "absent":
            availability[key] = (False, "does not have it" + (f" ({presence.detail})"
                                                              if presence.detail else ""))
        elif presence.status == "unanswered":
            availability[key] = (False, presence.detail)
        else:
            availability[key] = (False, f"check failed: {presence.detail}")
    after = checker.stats
    metrics.MIRROR_CHECKS.labels("hit").inc(after["cache_hits"] - before["cache_hits"])
    metrics.MIRROR_CHECKS.labels("miss").inc(after["cache_misses"] - before["cache_misses"])
    if not not_asked:
        return availability, []
    metrics.MIRROR_CHECKS.labels("not_asked").inc(answers.count(None))
    images = len({image for _m, _r, image in asked})
    return availability, [
        f"{len(not_asked)} of {images} images not checked on their if-present mirror and "
        f"kept as written (pulled from their own registry): at most "
        f"{checks.max_lookups_per_admission} mirror lookups per admission "
        f"(mirrorChecks.maxLookupsPerAdmission)"]


async def watch_config(state: AppState, settings: Settings, interval: float = 2.0) -> None:
    """Re-read the config file when its content, or that of a file it names, changes (a
    mounted ConfigMap or Secret is updated by a symlink swap that file events miss:
    compare content hashes). An invalid new config, or one naming a file that cannot be
    used, is refused and the old one keeps serving; logs, metrics and /readyz say which
    happened. A fixed file is noticed as a change, so the refused config is tried again."""
    while settings.config_path:
        await asyncio.sleep(interval)
        text, digest = _snapshot(settings.config_path, state.watched_files)
        if not digest or digest == state.config_digest:
            continue
        state.config_digest = digest
        try:
            config = read_config(settings, text)
            files = config_files(config)
            if files != state.watched_files:
                state.watched_files = files
                state.config_digest = _snapshot(settings.config_path, files)[1]
            check_config_files(config)
        except ConfigError as exc:
            state.reload_error = str(exc)
            metrics.CONFIG_RELOADS.labels("failure").inc()
            log.error("new config refused, the previous one keeps serving: %s", exc)
            continue
        old_checker = state.checker
        state.config, state.reload_error, state.checker = config, None, None
        state.namespaces.set_dialect(config.dialect)
        if old_checker is not None:           # trust and credentials may have changed;
            await old_checker.retire()        # admissions that hold it finish on it first
        metrics.CONFIG_RELOADS.labels("success").inc()
        log.info("config reloaded from %s: %d mirror(s)", config.source, len(config.mirrors))
        for warning in config.warnings:
            log.warning("%s: %s", config.source, warning)


def _snapshot(path: str | None, files: tuple[str, ...] = ()) -> tuple[bytes | None, bytes]:
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


def app_from_environ() -> AdmissionTransport:
    """uvicorn factory for `--workers N`: each worker builds its app from the environment."""
    return create_app(Settings.from_environ())


@functools.lru_cache(maxsize=4)
def tls_for(cert_file: str, key_file: str) -> ReloadingContext:
    """One reloading TLS context per worker process, shared by uvicorn and the app."""
    return ReloadingContext(Path(cert_file), Path(key_file))


def _ssl_context(_config: uvicorn.Config, _default: Any) -> ssl.SSLContext:
    """uvicorn's own context is built from file names and can never be reloaded; hand it
    ours instead: `load_cert_chain` on the same context changes the certificate for new
    handshakes, so rotation needs no restart. Module-level so workers can unpickle it."""
    settings = Settings.from_environ()
    return tls_for(settings.cert_file, settings.key_file).context


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's serving loop. While it serves, the drain (webhook.server.drain)
    and then uvicorn handle SIGTERM (stop accepting, finish in-flight requests, up to the
    graceful timeout); then uvicorn raises the signal again under the handler it found,
    and with the default handler the process would die of it (exit 143) after a clean
    shutdown. Exit 0 instead; a SIGTERM during start-up, before uvicorn took over, also
    ends the process at once."""
    raise SystemExit(0)


def run(*, host: str, port: int, workers: int, log_level: str = "info",
        log_format: str = "json") -> None:
    """Run uvicorn on the app factory; settings travel to workers in the environment."""
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "webhook.server.app:app_from_environ", factory=True, ssl_context_factory=_ssl_context,
        host=host, port=port, workers=workers,
        # uvloop + httptools: the asyncio/h11 path stalls reused connections (Nagle, ~44 ms).
        # The httptools protocol with a connection limit and head/body deadlines
        # (webhook.server.connections); it reads them from the environment, as workers do.
        loop="uvloop", http=BoundedHttpToolsProtocol, access_log=False, log_level=log_level,
        log_config=log_config(log_level, log_format),
        # Keep-alive: the API server's Go client closes a connection idle for 90 s and
        # reuses idle ones without warning. A server that closes an idle connection
        # races the client's next request on it, and the API server does not retry a
        # POST that met a closed connection (`failed to call webhook: ... EOF`); uvicorn's
        # default of 5 s would lose admissions that way in normal running. Outlive the
        # client's 90 s, so the client always closes first; the server closes a
        # connection only after an answer saying `Connection: close` (webhook.server.drain).
        # Graceful shutdown: requests in flight get this long (the webhook's own
        # timeoutSeconds, at most 30 s, bounds how long the API server waits anyway).
        timeout_keep_alive=120, timeout_graceful_shutdown=25, backlog=2048,
    )
