"""The webhook turns its own two configurations on, once it serves, and keeps them so.

Shipped inert (webhook.core.registration), the configurations are activated by a replica
only after it has answered its readiness probe ready: its TLS pair and config are
loaded, it is listening and its namespace cache has started, and the Service is about
to send it traffic. A first install whose replicas never get there (a config `serve`
refuses, an image that cannot be pulled) leaves the configurations inert, so pod
creation in the rest of the cluster carries on.

A background thread then reads both configurations every `resync` seconds, and at once
when the config's `exclude.namespaces` changes (a reload), and patches them only when
they differ from what they must be: a `kubectl apply` of the inert manifests, or a
config reload, is followed within one resync. It reads and patches those two objects by
name and nothing else (the RBAC grants no more). An API error is logged, retried with
capped exponential backoff, and shown in /readyz; it never stops the server.

Enabled by `KCI_WEBHOOK_REGISTER_MUTATING` (and `KCI_WEBHOOK_REGISTER_VALIDATING`),
which name the two configurations, with the failurePolicy of pod CREATE
(`KCI_WEBHOOK_CREATE_FAILURE_POLICY`, default Fail), of pod UPDATE and ephemeral
containers (`KCI_WEBHOOK_UPDATE_FAILURE_POLICY`, default Ignore) and of the validating
entry (`KCI_WEBHOOK_VALIDATING_FAILURE_POLICY`, default Ignore); the chart and the
kustomize base set them. Unset (`make run`, most tests), nothing is registered.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from kubernetes import client
from kubernetes.client.rest import ApiException

from webhook.adapters.namespaces import api_for, choose_source
from webhook.core.errors import ConfigError
from webhook.core.registration import (
    FAILURE_POLICIES,
    MUTATING,
    VALIDATING,
    Target,
    is_inert,
    patch_for,
)

log = logging.getLogger("kci-webhook.registration")

MUTATING_ENV = "KCI_WEBHOOK_REGISTER_MUTATING"
VALIDATING_ENV = "KCI_WEBHOOK_REGISTER_VALIDATING"
CREATE_POLICY_ENV = "KCI_WEBHOOK_CREATE_FAILURE_POLICY"
UPDATE_POLICY_ENV = "KCI_WEBHOOK_UPDATE_FAILURE_POLICY"
VALIDATING_POLICY_ENV = "KCI_WEBHOOK_VALIDATING_FAILURE_POLICY"
RESYNC_ENV = "KCI_WEBHOOK_REGISTRATION_RESYNC_SECONDS"
RESYNC_SECONDS = 10.0
TICK_SECONDS = 0.5              # how often a changed exclude list is looked for (no I/O)
BACKOFF_INITIAL, BACKOFF_MAX = 0.5, 30.0
FIELD_MANAGER = "kci-webhook"
STRATEGIC = "application/strategic-merge-patch+json"


def targets_from_environ(environ: Mapping[str, str]) -> tuple[Target, ...]:
    """The configurations to manage, from the environment; () when not asked to.
    Raises ConfigError for a failurePolicy that is neither Fail nor Ignore."""
    def policy(env: str, default: str) -> str:
        value = environ.get(env, "").strip() or default
        if value not in FAILURE_POLICIES:
            raise ConfigError(f"{env}: {value!r} is not one of Fail, Ignore")
        return value

    targets = []
    if name := environ.get(MUTATING_ENV, "").strip():
        targets.append(Target(MUTATING, name, policy(CREATE_POLICY_ENV, "Fail"),
                              policy(UPDATE_POLICY_ENV, "Ignore")))
    if name := environ.get(VALIDATING_ENV, "").strip():
        validating = policy(VALIDATING_POLICY_ENV, "Ignore")
        targets.append(Target(VALIDATING, name, validating, validating))
    return tuple(targets)


def check_environ(environ: Mapping[str, str]) -> None:
    """Raise ConfigError for a registration setting `serve` could not use."""
    targets_from_environ(environ)
    resync_from_environ(environ)


def resync_from_environ(environ: Mapping[str, str]) -> float:
    text = environ.get(RESYNC_ENV, "").strip()
    try:
        seconds = float(text) if text else RESYNC_SECONDS
    except ValueError:
        raise ConfigError(f"{RESYNC_ENV}: {text!r} is not a number of seconds") from None
    if not 0.05 <= seconds <= 3600:
        raise ConfigError(f"{RESYNC_ENV}: {text} is outside 0.05 to 3600 seconds")
    return seconds


class Registration:
    """Activates and keeps the configurations `targets` name. `serving()` lets it start."""

    def __init__(self, api: client.ApiClient | None, targets: tuple[Target, ...], *,
                 excluded: Callable[[], frozenset[str]],
                 resync: float = RESYNC_SECONDS) -> None:
        self._api = api
        self._targets = targets
        self._excluded = excluded
        self._resync = resync
        self._serving = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.enabled = bool(targets)
        self.state = ("off" if not targets else
                      "no API server" if api is None else "waiting until ready")
        self.last_error: str | None = None
        self.applied: frozenset[str] | None = None    # the exclusion last made active
        self.patches = 0
        self.errors = 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, kubeconfig: str | None,
                     excluded: Callable[[], frozenset[str]]) -> Registration:
        """As `serve` runs it: the targets and the API server from the environment (the
        same API source as the namespace watch). Raises ConfigError on a bad setting."""
        targets = targets_from_environ(environ)
        if not targets:
            return cls(None, (), excluded=excluded)
        core = api_for(choose_source(override=kubeconfig, environ=environ))
        if core is None:
            log.error("%s is set but no API server is reachable to activate the webhook "
                      "configurations: they stay inert", MUTATING_ENV)
        return cls(core.api_client if core else None, targets, excluded=excluded,
                   resync=resync_from_environ(environ))

    def status(self) -> dict[str, Any]:
        """For /readyz: whether the configurations are active, and why not."""
        detail: dict[str, Any] = {"state": self.state,
                                  "configurations": [t.describe() for t in self._targets]}
        if self.last_error and self.state != "active":
            detail["lastError"] = self.last_error
        return detail

    def serving(self) -> None:
        """This replica answered ready: the configurations may point at it."""
        self._serving.set()

    def start(self) -> None:
        if self._api is None or not self._targets or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="registration", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._serving.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        self._serving.wait()
        backoff, due, last = BACKOFF_INITIAL, 0.0, None
        while not self._stop.is_set():
            excluded = self._excluded()
            if excluded != last or time.monotonic() >= due:
                last = excluded
                try:
                    self.reconcile(excluded)
                except Exception as exc:  # noqa: BLE001 - any failure: retry, keep serving
                    self.errors += 1
                    self.last_error = _describe(exc)
                    self.state = "retrying"
                    delay = backoff * random.uniform(0.8, 1.2)
                    log.warning("cannot activate the webhook configurations: %s; retrying in "
                                "%.1fs", self.last_error, delay)
                    due, backoff = time.monotonic() + delay, min(backoff * 2, BACKOFF_MAX)
                else:
                    due, backoff = time.monotonic() + self._resync, BACKOFF_INITIAL
            self._stop.wait(TICK_SECONDS)

    def reconcile(self, excluded: frozenset[str]) -> int:
        """Read each configuration and patch it if it differs; the number patched."""
        patched = 0
        for target in self._targets:
            current = self._call("GET", target)
            patch = patch_for(current, target, excluded)
            if patch is None:
                continue
            self._call("PATCH", target, patch)
            patched += 1
            self.patches += 1
            was = "inert" if any(is_inert(e.get("namespaceSelector"))
                                 for e in current.get("webhooks") or ()) else "stale"
            log.info("%s was %s; made active: namespaces excluded %s, failurePolicy %s",
                     target.describe(), was, ", ".join(sorted(excluded)),
                     ", ".join(f"{e['name']}={e['failurePolicy']}" for e in patch["webhooks"]))
        if self.state != "active" or self.applied != excluded:
            log.info("webhook configurations active (%s)",
                     "; ".join(t.describe() for t in self._targets))
        self.state, self.applied, self.last_error = "active", excluded, None
        return patched

    def _call(self, method: str, target: Target,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One GET or PATCH of one configuration by name, raw JSON in and out (the
        objects are read as the API server sends them, with no model round trip)."""
        assert self._api is not None
        api = client.AdmissionregistrationV1Api(self._api)
        read, patch = ((api.read_mutating_webhook_configuration,
                        api.patch_mutating_webhook_configuration) if target.resource == MUTATING
                       else (api.read_validating_webhook_configuration,
                             api.patch_validating_webhook_configuration))
        timeout = (5, 10)
        response: Any = (read(target.name, _preload_content=False, _request_timeout=timeout)
                         if body is None else
                         patch(target.name, body, field_manager=FIELD_MANAGER,
                               _content_type=STRATEGIC, _preload_content=False,
                               _request_timeout=timeout))
        if not 200 <= response.status <= 299:
            raise ApiException(status=response.status, reason=response.reason)
        loaded: dict[str, Any] = orjson.loads(response.data)
        return loaded


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"API server answered {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"[:300]
