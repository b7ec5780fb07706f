"""Namespace defaults, kept current by a list + watch of Namespaces.
(Over 300 lines: one cache, whose list, watch, expiry and degraded state share one thread.)

Admission reads this cache only (a dict lookup); it never waits for the API server. A
background thread lists Namespaces, then watches from the list's resourceVersion, and:
- on a watch that ends normally (server timeout), watches again from the last
  resourceVersion it saw (events and bookmarks move it);
- on `410 Gone` (that resourceVersion is too old), lists again;
- on any other error (API down, connection dropped), marks the cache degraded, keeps
  serving the last known values, and retries with capped exponential backoff.

Memory stays bounded: only namespaces that carry one of the annotations of interest are
kept, and only those annotations, parsed once per change into a `Layer`. An invalid
namespace annotation is logged once per change (not per pod) and counted.

The API server is found where every Kubernetes tool finds it (`choose_source`): an
explicit kubeconfig, then `KUBECONFIG`, then the in-cluster service account, then
`~/.kube/config`; with none of them there is no watch and no namespace defaults.

With webhook.adapters.registration (which finds the API server through
`choose_source` and `api_for` here), the only module that imports the `kubernetes` client.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from webhook.core.dialects import DEFAULT_DIALECT
from webhook.core.errors import ConfigError
from webhook.core.mutation.layers import NAMESPACE_KEYS, Layer, namespace_layer

log = logging.getLogger("kci-webhook.namespaces")

WATCH_TIMEOUT_SECONDS = 290          # the API server's own default is 5-10 minutes
READ_MARGIN_SECONDS = 30   # beyond the watch's own timeout: a silent dead connection is noticed
BACKOFF_INITIAL, BACKOFF_MAX = 0.5, 30.0

Interest = tuple[tuple[str, str], ...]


class Gone(Exception):
    """The watch's resourceVersion expired (HTTP 410): list again. Expected: the API
    server keeps a few minutes of history, so a watch outliving it ends this way."""


class WatchError(Exception):
    """The watch ended with an error event other than an expiry."""


# Where client-go and every Kubernetes tool find the service account's credentials.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@dataclass(frozen=True)
class ApiSource:
    """Where the Namespace watch finds the API server, and why (for the start-up log)."""

    kind: str                 # "override", "KUBECONFIG", "in-cluster", "home" or "none"
    kubeconfig: str = ""      # for the kubeconfig kinds: the file (or os.pathsep list)
    reason: str = ""          # for "none": what was looked for

    def describe(self) -> str:
        if self.kind == "none":
            return f"namespace watch off ({self.reason}): namespace defaults are not applied"
        where = {"override": f"--kubeconfig/KCI_WEBHOOK_KUBECONFIG {self.kubeconfig}",
                 "KUBECONFIG": f"KUBECONFIG {self.kubeconfig}",
                 "home": f"{self.kubeconfig} (the default kubeconfig)",
                 "in-cluster": "the in-cluster service account"}[self.kind]
        return f"namespace watch through {where}"


def choose_source(*, override: str | None, environ: Mapping[str, str],
                  exists: Callable[[str], bool] = os.path.exists) -> ApiSource:
    """The order controller-runtime's `GetConfig` uses, so the webhook finds the API
    exactly where every other Kubernetes tool does:

    1. `--kubeconfig` / `KCI_WEBHOOK_KUBECONFIG` (an explicit choice; must exist);
    2. `KUBECONFIG`: a list of files (`os.pathsep`-separated) merged as kubectl merges
       them; files that do not exist are skipped, as kubectl skips them;
    3. the in-cluster service account (`KUBERNETES_SERVICE_HOST`/`_PORT` and its token);
    4. `~/.kube/config` — not when `KUBECONFIG` is set: kubectl never reads it then.

    Pure: the environment and the file test come in, so every branch is a table row."""
    if override:
        return ApiSource("override", override)
    listed = [path for path in environ.get("KUBECONFIG", "").split(os.pathsep) if path]
    present = [path for path in listed if exists(_expand(path, environ))]
    if present:
        return ApiSource("KUBECONFIG", os.pathsep.join(present))
    if (environ.get("KUBERNETES_SERVICE_HOST") and environ.get("KUBERNETES_SERVICE_PORT")
            and exists(SERVICE_ACCOUNT_TOKEN)):
        return ApiSource("in-cluster")
    if listed:
        return ApiSource("none", reason="KUBECONFIG names no existing file: "
                                        + ", ".join(listed))
    home = environ.get("HOME")
    if home and exists(f"{home}/.kube/config"):
        return ApiSource("home", f"{home}/.kube/config")
    return ApiSource("none", reason="no --kubeconfig, KUBECONFIG, in-cluster service account "
                                    "or ~/.kube/config")


def _expand(path: str, environ: Mapping[str, str]) -> str:
    """`~/` as the kubernetes client expands it (it calls os.path.expanduser)."""
    if path.startswith("~/") and environ.get("HOME"):
        return environ["HOME"] + path[1:]
    return path


def api_for(source: ApiSource) -> client.CoreV1Api | None:
    """A client of its own for the watch (never the library's global default), reading
    the kubeconfig without writing refreshed tokens back into the user's files (the
    image's root filesystem is read-only, and a server should not edit them anyway).
    Raises ConfigError naming the source when it cannot be loaded."""
    if source.kind == "none":
        return None
    configuration = client.Configuration()
    try:
        if source.kind == "in-cluster":
            kube_config.load_incluster_config(client_configuration=configuration)
        else:
            if source.kind == "override" and not any(
                    os.path.exists(os.path.expanduser(path))
                    for path in source.kubeconfig.split(os.pathsep) if path):
                raise ConfigError(f"--kubeconfig/KCI_WEBHOOK_KUBECONFIG {source.kubeconfig}: "
                                  "no such file")
            kube_config.load_kube_config(config_file=source.kubeconfig,
                                         client_configuration=configuration,
                                         persist_config=False)
    except (kube_config.ConfigException, yaml.YAMLError, OSError, ValueError) as exc:
        raise ConfigError(f"{source.describe()}: cannot load it: {exc}") from None
    except (TypeError, KeyError, AttributeError) as exc:     # YAML, but of another shape
        raise ConfigError(f"{source.describe()}: cannot load it: not shaped like a "
                          f"kubeconfig ({type(exc).__name__}: {exc})") from None
    return client.CoreV1Api(client.ApiClient(configuration))


class NamespaceCache:
    """Namespace → `Layer` of its defaults. `get` is safe from any thread, never blocks.

    `on_state` hears each change of `state`; `on_sync` each time the cache is known current
    (`synced_at`), which a watch in a quiet cluster still proves every few minutes."""

    def __init__(self, api: client.CoreV1Api | None, *,
                 on_invalid: Callable[[str, str], None] | None = None,
                 on_state: Callable[[NamespaceCache], None] | None = None,
                 on_sync: Callable[[NamespaceCache], None] | None = None,
                 watch_timeout: int = WATCH_TIMEOUT_SECONDS,
                 dialect: str = DEFAULT_DIALECT) -> None:
        self._api = api
        self._dialect = dialect  # for Namespaces that name none (the config's default)
        self._layers: dict[str, Layer] = {}
        self._interest: dict[str, Interest] = {}
        self._on_invalid = on_invalid or (lambda _ns, _key: None)
        self._on_state = on_state or (lambda _cache: None)
        self._on_sync = on_sync or (lambda _cache: None)
        self._watch_timeout = watch_timeout
        self._stop = threading.Event()
        self._writing = threading.Lock()   # readers never take it: they see whole dicts
        self._thread: threading.Thread | None = None
        self.state = "disabled" if api is None else "starting"
        self.resource_version: str | None = None
        self.synced_at: float | None = None
        self.last_error: str | None = None
        self.lists = 0
        self.errors = 0

    # --- reading (admission) -----------------------------------------------------------

    def get(self, namespace: str) -> Layer | None:
        return self._layers.get(namespace)

    def __len__(self) -> int:
        return len(self._layers)

    def status(self) -> dict[str, Any]:
        """For /readyz: serving from the cache is fine even when degraded, but say so."""
        detail: dict[str, Any] = {"state": self.state, "namespacesWithDefaults": len(self)}
        if self.synced_at is not None:
            detail["lastSyncAgeSeconds"] = round(time.time() - self.synced_at, 1)
        if self.last_error and self.state != "synced":
            detail["lastError"] = self.last_error
        return detail

    # --- running -----------------------------------------------------------------------

    def start(self) -> None:
        if self._api is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="namespace-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = BACKOFF_INITIAL
        while not self._stop.is_set():
            try:
                self._list()
                backoff = BACKOFF_INITIAL
                while not self._stop.is_set():
                    self._watch_once()
            except Gone as exc:
                log.info("namespace watch expired (%s: its resourceVersion %s is older than "
                         "the API server keeps); listing again", exc, self.resource_version)
                continue
            except Exception as exc:  # noqa: BLE001 - any failure: degrade, keep serving
                if self._stop.is_set():
                    break
                self.errors += 1
                self.last_error = _describe(exc)
                self._set_state("degraded")
                log.warning("namespace cache degraded, serving last known values: %s; "
                            "retrying in %.1fs", self.last_error, backoff)
                self._stop.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _list(self) -> None:
        assert self._api is not None
        response: Any = self._api.list_namespace(_preload_content=False,
                                                 _request_timeout=(5, 30))
        if not 200 <= response.status <= 299:
            raise ApiException(status=response.status, reason=response.reason)
        body = orjson.loads(response.data)
        fresh_layers: dict[str, Layer] = {}
        fresh_interest: dict[str, Interest] = {}
        for item in body.get("items") or ():
            name, interest = _interest_of(item)
            if name and interest:
                fresh_interest[name] = interest
                fresh_layers[name] = self._layer(name, interest)
        self._layers, self._interest = fresh_layers, fresh_interest   # one atomic swap each
        self.resource_version = (body.get("metadata") or {}).get("resourceVersion")
        self.lists += 1
        self._mark_synced()
        self._set_state("synced")
        log.info("namespace cache listed %d namespaces (%d with defaults) at resourceVersion %s",
                 len(body.get("items") or ()), len(fresh_layers), self.resource_version)

    def _watch_once(self) -> None:
        """One watch request, read line by line here (not through `watch.Watch`): with
        `deserialize=False` the client's own loop looks for an ERROR event's object under
        a key it never sets, so an expiry surfaced as `KeyError('raw_object')`. An ERROR
        event or an HTTP error carrying 410 is the expected expiry (`Gone`); any other
        ERROR event is raised as `WatchError` with the API server's own words."""
        assert self._api is not None
        try:
            response: Any = self._api.list_namespace(
                watch=True, resource_version=self.resource_version, allow_watch_bookmarks=True,
                timeout_seconds=self._watch_timeout, _preload_content=False,
                _request_timeout=(5, self._watch_timeout + READ_MARGIN_SECONDS))
        except ApiException as exc:       # the client raises for any non-2xx answer
            if exc.status == 410:
                raise Gone(f"HTTP 410 {exc.reason}") from None
            raise
        try:
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                event = orjson.loads(line)
                if not isinstance(event, dict):
                    raise WatchError(f"watch sent a line that is not an event: {line[:200]!r}")
                if event.get("type") == "ERROR":
                    raise _error_event(event.get("object"))
                self.apply(event)
            else:   # the stream ended at its timeout: nothing was missed until now
                self._mark_synced()
        finally:
            response.release_conn()

    def apply(self, event: Mapping[str, Any]) -> None:
        """Apply one watch event (ADDED, MODIFIED, DELETED, BOOKMARK) to the cache."""
        kind = event.get("type")
        obj = event.get("object") or {}
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            name, interest = _interest_of(obj)
            self._update(name, interest)
        elif kind == "DELETED":
            name, _ = _interest_of(obj)
            self._update(name, ())
        if version:
            self.resource_version = version
        self._mark_synced()
        if self.state != "synced":
            self._set_state("synced")

    def set_dialect(self, dialect: str) -> None:
        """The config's default dialect changed (a reload): read every Namespace that names
        none again, once, here, so that admissions keep finding ready layers."""
        with self._writing:
            if dialect == self._dialect:
                return
            self._dialect = dialect
            self._layers = {name: self._layer(name, interest)
                            for name, interest in self._interest.items()}

    def _update(self, name: str, interest: Interest) -> None:
        with self._writing:   # the watch thread, or a reload's set_dialect
            if not name or self._interest.get(name, ()) == interest:
                return
            layers, interests = dict(self._layers), dict(self._interest)
            if interest:
                interests[name] = interest
                layers[name] = self._layer(name, interest)
            else:
                interests.pop(name, None)
                layers.pop(name, None)
            self._layers, self._interest = layers, interests

    def _layer(self, name: str, interest: Interest) -> Layer:
        """Parse once per change; log each problem once, here, not on every pod."""
        layer = namespace_layer(name, dict(interest), self._dialect)
        for problem in layer.problems:
            log.warning("invalid namespace annotation, ignored: %s", problem)
            key = problem.split(" ", 1)[0]       # a label: only from the closed set
            self._on_invalid(name, key if key in NAMESPACE_KEYS else "other")
        return layer

    def _mark_synced(self) -> None:
        """The cache is known current now (a list, an event or bookmark, a watch that ran
        to its timeout): what `lastSyncAgeSeconds` and the last-sync metric measure from,
        so a quiet cluster's healthy watch never looks stale."""
        self.synced_at = time.time()
        self._on_sync(self)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._on_state(self)


def _interest_of(obj: Mapping[str, Any]) -> tuple[str, Interest]:
    """The namespace's name and only the annotations we act on (bounded memory)."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(meta, Mapping):
        return "", ()
    raw_name = meta.get("name")
    name = raw_name if isinstance(raw_name, str) else ""
    annotations = meta.get("annotations")
    if not isinstance(annotations, Mapping):
        return name, ()
    return name, tuple((key, annotations[key]) for key in NAMESPACE_KEYS
                       if isinstance(annotations.get(key), str))


def _error_event(status: object) -> Exception:
    """The exception an ERROR event's Status stands for: `Gone` for 410 (expired)."""
    status = status if isinstance(status, Mapping) else {}
    code, reason = status.get("code"), status.get("reason") or ""
    message = str(status.get("message") or "")[:300]
    if code == 410 or reason in ("Expired", "Gone"):
        return Gone(f"410 {reason or 'Gone'}: {message}" if message else f"410 {reason}")
    return WatchError(f"watch error event: {code} {reason}: {message}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"API server answered {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"[:300]
