"""The HTTPS shell: FastAPI routes, the body cap and health, for one worker.

Policy lives in `webhook.core.admission.pipeline`; this module only moves bytes. Errors
travel on two channels (see `webhook.core.errors`): a `BadRequest` becomes an HTTP 4xx with
a JSON reason; an unexpected exception still becomes an AdmissionReview carrying the
request's uid. No input makes the server answer 500. What a worker is told:
`webhook.server.settings`; what the routes read and its reload: `webhook.server.state`;
running uvicorn: `webhook.server.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from webhook.adapters.events import EventRecorder, recorder_from_environ
from webhook.adapters.namespaces import NamespaceCache, api_for, choose_source
from webhook.adapters.registration import Registration
from webhook.adapters.registry.files import config_files
from webhook.adapters.tls.reload import ReloadingContext
from webhook.core import config as config_mod
from webhook.core.admission.dispatch import validate
from webhook.core.admission.envelope import Body, Decision
from webhook.core.admission.pipeline import admit
from webhook.core.mutation.images import PresenceAnswers, PresenceQuestion
from webhook.core.registration import excluded_namespaces
from webhook.server import metrics
from webhook.server.changes import ChangeLog
from webhook.server.drain import Drain
from webhook.server.events import EventQueue
from webhook.server.mirrors import ask_mirrors
from webhook.server.settings import Settings, load_settings_config
from webhook.server.state import AppState, snapshot, watch_config
from webhook.server.transport import AdmissionTransport, off_loop, steps_runner

JSON = "application/json"


def create_app(settings: Settings, *, namespaces: NamespaceCache | None = None,
               recorder: EventRecorder | None = None) -> AdmissionTransport:
    """The application for one worker. Config is parsed here once, never per request.
    `recorder`: where Events go (default: the API server the namespace watch uses, when
    `settings.events` is on)."""
    config, environment = load_settings_config(settings)
    tls = tls_for(settings.cert_file, settings.key_file) if settings.cert_file else None
    if namespaces is None:
        namespaces = NamespaceCache(
            api_for(choose_source(override=settings.kubeconfig, environ=settings.environ)),
            on_invalid=lambda _ns, key: metrics.NAMESPACE_INVALID.labels(key).inc(),
            on_state=lambda cache: metrics.set_namespace_state(cache.state, cache.synced_at),
            on_sync=lambda cache: metrics.set_namespace_state(cache.state, cache.synced_at),
            dialect=config.dialect)
    files = config_files(config)
    state = AppState(config=config, environment=environment, namespaces=namespaces, tls=tls,
                     own_namespace=settings.own_namespace,
                     config_digest=snapshot(settings.config_path, files)[1],
                     watched_files=files)
    metrics.set_namespace_state(namespaces.state, None)
    metrics.CONFIG_LAST_RELOAD_OK.set(1)   # the config at start is the file's, or no start
    drain = Drain(settings.shutdown_delay)
    # Self-activation of the webhook configurations (webhook.adapters.registration).
    registration = Registration.from_environ(
        settings.environ, kubeconfig=settings.kubeconfig,
        excluded=lambda: excluded_namespaces(state.config.exclude_namespaces,
                                             state.own_namespace))
    if tls:
        metrics.CERT_EXPIRY.set(tls.not_after.timestamp())
    if recorder is None and settings.events:
        recorder = recorder_from_environ(settings.environ, kubeconfig=settings.kubeconfig)
    events = EventQueue(recorder if settings.events else None,
                        size=settings.events_queue_size)
    changes = ChangeLog(settings.log_changes, settings.log_changes_sample_rate)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(watch_config(state, settings)),
                 asyncio.create_task(metrics.flush_every())]
        if tls:
            tasks.append(asyncio.create_task(tls.watch()))
        state.namespaces.start()
        registration.start()
        events.start()
        drain.take_over_sigterm(asyncio.get_running_loop())
        yield
        await events.stop()
        registration.stop()
        state.namespaces.stop()
        for task in tasks:
            task.cancel()
        metrics.TALLY.flush()       # what this worker counted since its last flush
        if state.checker is not None:
            await state.checker.aclose()

    app = FastAPI(title="kci-webhook", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    async def ask(asked: list[PresenceQuestion], /, *, config: config_mod.Config,
                  dry_run: bool) -> tuple[PresenceAnswers, list[str]]:
        return await ask_mirrors(state, config, asked, dry_run=dry_run)

    async def mutate_with_checks(body: Body) -> Decision:
        """The core's admission (`webhook.core.admission.pipeline.admit`), asking the
        `if-present` mirrors through this worker's checker within the budget. A large
        body's decoding, judging and deciding run in a thread (`off_loop`), never on the
        loop; a small one's right here, with nothing to await. Its Events are queued for
        the events worker, never awaited here."""
        decision = await admit(body, context_for=state.context_for, ask=ask,
                               run=steps_runner())
        if decision.events:
            events.offer(decision.events)
        changes("mutate", decision)
        return decision

    async def validate_body(body: Body) -> Decision:
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
        if registration.enabled:
            if ready:
                registration.serving()
            detail["registration"] = registration.status()
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


def app_from_environ() -> AdmissionTransport:
    """uvicorn factory for `--workers N`: each worker builds its app from the environment."""
    return create_app(Settings.from_environ())


@functools.lru_cache(maxsize=4)
def tls_for(cert_file: str, key_file: str) -> ReloadingContext:
    """One reloading TLS context per worker process, shared by uvicorn and the app."""
    return ReloadingContext(Path(cert_file), Path(key_file))

