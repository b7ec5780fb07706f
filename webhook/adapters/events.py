"""Events (`events.k8s.io/v1`) sent to the API server, aggregated as client-go's
events/v1 recorder aggregates them.

One Event per object, reason and action (client-go's key: action, reason, reporting
controller, regarding). Its first occurrence is created; the second turns it into a
series and patches it at once (`series: {count: 2, lastObservedTime}`); later ones are
counted here and the count is written by `flush` at most every `patch_interval` seconds
(client-go waits up to 30 minutes; `kubectl describe` should show the count sooner). A
series quiet for `FINISH_SECONDS` (client-go's 6 minutes) is over: its last count is
written and the next occurrence starts a new Event. A patch the API server answers 404
(the Event expired, by default after an hour) creates it again, as client-go does.

Work is bounded: one call at a time, each with a connect and read timeout; at most
`MAX_CACHED` objects and reasons remembered (the oldest forgotten first). A failure is
counted and never retried: the next occurrence tries again. Everything here blocks, and
runs on the server's own events thread (`webhook.server.events`), never on an admission.

With webhook.adapters.namespaces (whose `choose_source` and `api_for` find the API server
here too) and webhook.adapters.registration, one of the modules that import `kubernetes`.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from kubernetes import client

from webhook.adapters.namespaces import api_for, choose_source
from webhook.core.admission.events import EventIntent, event_fields

log = logging.getLogger("kci-webhook.events")

# events.k8s.io/v1's reportingController: a qualified name, what `kubectl get events`
# shows as the source.
CONTROLLER = "k8s.ksyun.com/kci-webhook"
MAX_INSTANCE = 128            # reportingInstance, as the API validates it
MAX_NAME = 253                # metadata.name: a DNS-1123 subdomain
FINISH_SECONDS = 360.0        # client-go's finishTime
PATCH_INTERVAL_SECONDS = 30.0
MAX_CACHED = 4096
TIMEOUT = (2.0, 5.0)          # connect, read: a hung API server holds the thread this long
EVENTS_PATH = "/apis/events.k8s.io/v1/namespaces/{namespace}/events"

Key = tuple[Any, str, str]    # (regarding, reason, action)


class SinkError(Exception):
    """The API server refused the call, or could not be reached (`status` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Sink(Protocol):
    """Where Events go: create one, or merge-patch one by name."""

    def create(self, namespace: str, body: Mapping[str, Any]) -> None: ...

    def patch(self, namespace: str, name: str, body: Mapping[str, Any]) -> None: ...


class ApiSink:
    """The API server through the `kubernetes` client, raw JSON in and out (the Event is
    built as the API reads it, with no model round trip)."""

    def __init__(self, api: client.ApiClient, *, timeout: tuple[float, float] = TIMEOUT
                 ) -> None:
        self._api = api
        self._timeout = timeout

    def create(self, namespace: str, body: Mapping[str, Any]) -> None:
        self._call("POST", EVENTS_PATH, namespace, body, "application/json")

    def patch(self, namespace: str, name: str, body: Mapping[str, Any]) -> None:
        self._call("PATCH", EVENTS_PATH + "/{name}", namespace, body,
                   "application/merge-patch+json", name=name)

    def _call(self, method: str, path: str, namespace: str, body: Mapping[str, Any],
              content_type: str, *, name: str = "") -> None:
        params = {"namespace": namespace, **({"name": name} if name else {})}
        try:
            _method, url, headers, data, post = self._api.param_serialize(
                method, path, path_params=params,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=dict(body), auth_settings=["BearerToken"])
            response = self._api.call_api(method, url, headers, data, post,
                                          _request_timeout=self._timeout)
            response.read()
        except client.ApiException as exc:
            raise SinkError(exc.status or 0, str(exc.reason)[:300]) from None
        except Exception as exc:  # noqa: BLE001 - a transport failure of any kind
            raise SinkError(0, f"{type(exc).__name__}: {exc}"[:300]) from None
        if not 200 <= response.status <= 299:
            raise SinkError(response.status, _status_message(response.data))


def _status_message(data: bytes | None) -> str:
    try:
        status = orjson.loads(data or b"")
    except orjson.JSONDecodeError:
        return (data or b"").decode("utf-8", "replace")[:300]
    message = status.get("message") if isinstance(status, dict) else None
    return str(message)[:300] if message else "no message"


@dataclass(slots=True)
class _Series:
    """One Event as created, and its count: `written` is what the API server has."""

    namespace: str
    name: str
    body: dict[str, Any]
    count: int
    written: int
    last: float           # when it last occurred (wall clock)
    last_write: float


class EventRecorder:
    """Sends the Events admissions ask for, aggregated. Not thread-safe: one caller (the
    server's events thread). `record` and `flush` answer what happened, in
    `kci_webhook_events_total`'s words: sent, aggregated, failed."""

    def __init__(self, sink: Sink, *, instance: str, clock: Callable[[], float] = time.time,
                 finish: float = FINISH_SECONDS,
                 patch_interval: float = PATCH_INTERVAL_SECONDS,
                 max_cached: int = MAX_CACHED) -> None:
        self._sink = sink
        self._instance = instance[:MAX_INSTANCE] or "kci-webhook"
        self._clock = clock
        self._finish = finish
        self._patch_interval = patch_interval
        self._max_cached = max_cached
        self._cache: OrderedDict[Key, _Series] = OrderedDict()
        self._sequence = 0

    def record(self, intent: EventIntent) -> str:
        """One occurrence: created (`sent`), counted into its series (`aggregated`), or
        `failed`."""
        key: Key = (intent.regarding, intent.reason, intent.action)
        now = self._clock()
        series = self._cache.get(key)
        if series is not None and now - series.last < self._finish:
            series.count += 1
            series.last = now
            self._cache.move_to_end(key)
            if series.written == 1 or now - series.last_write >= self._patch_interval:
                return "aggregated" if self._write(series, now) else "failed"
            return "aggregated"
        body = self._body(intent, now)
        namespace = intent.regarding.namespace
        try:
            self._sink.create(namespace, body)
        except SinkError as exc:
            log.warning("event %s on %s %s/%s not sent: %s (%s)", intent.reason,
                        intent.regarding.kind, namespace, intent.regarding.name, exc,
                        exc.status)
            return "failed"
        self._cache[key] = _Series(namespace, body["metadata"]["name"], body, 1, 1, now, now)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return "sent"

    def flush(self) -> list[str]:
        """Write the counts due (every `patch_interval`), end the series quiet for
        `finish` (their last count written first); what each write did."""
        now = self._clock()
        results = []
        for key, series in list(self._cache.items()):
            if series.count > series.written and (
                    now - series.last_write >= self._patch_interval
                    or now - series.last >= self._finish):
                results.append("aggregated" if self._write(series, now) else "failed")
            if now - series.last >= self._finish:
                del self._cache[key]
        return results

    def __len__(self) -> int:
        return len(self._cache)

    def _write(self, series: _Series, now: float) -> bool:
        """Patch the series' count; a 404 (the Event expired) creates it again."""
        patch = {"series": {"count": series.count,
                            "lastObservedTime": micro_time(series.last)}}
        try:
            try:
                self._sink.patch(series.namespace, series.name, patch)
            except SinkError as exc:
                if exc.status != 404:
                    raise
                self._sink.create(series.namespace, {**series.body, **patch})
        except SinkError as exc:
            log.warning("event %s: count %d not written: %s (%s)", series.name,
                        series.count, exc, exc.status)
            return False
        series.written, series.last_write = series.count, now
        return True

    def _body(self, intent: EventIntent, now: float) -> dict[str, Any]:
        """The Event as events.k8s.io/v1 validates it: a unique name `<object>.<hex>`
        (client-go's), eventTime in microseconds, the reporting controller and instance."""
        self._sequence += 1
        suffix = f"{time.time_ns() + self._sequence:x}"
        stem = intent.regarding.name[:MAX_NAME - len(suffix) - 1].rstrip(".-")
        return {"apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": f"{stem}.{suffix}",
                             "namespace": intent.regarding.namespace},
                "eventTime": micro_time(now), "reportingController": CONTROLLER,
                "reportingInstance": self._instance, **event_fields(intent)}


def micro_time(seconds: float) -> str:
    """A MicroTime as the API server writes one: RFC 3339, six fractional digits, UTC."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def recorder_from_environ(environ: Mapping[str, str], *, kubeconfig: str | None
                          ) -> EventRecorder | None:
    """As `serve` runs it: the API server found as the namespace watch finds it, the
    reporting instance from POD_NAME (the downward API), else the host name. None when
    there is no API server to send to."""
    core = api_for(choose_source(override=kubeconfig, environ=environ))
    if core is None:
        return None
    instance = environ.get("POD_NAME") or socket.gethostname()
    return EventRecorder(ApiSink(core.api_client), instance=instance)


__all__ = ["CONTROLLER", "ApiSink", "EventRecorder", "Sink", "SinkError", "micro_time",
           "recorder_from_environ"]
