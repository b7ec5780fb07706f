"""Prometheus metrics, named by the Prometheus conventions (`_total`, `_seconds`, base units).

With `--workers N > 1` every worker is a process of its own; `kci-webhook serve` then sets
`PROMETHEUS_MULTIPROC_DIR` and `/metrics` aggregates every worker's files
(prometheus-client's multiprocess mode), so a scrape sees the whole pod, not one worker.
The admission path's counts go through `TALLY`, written once a second.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import re
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REGISTRY = CollectorRegistry(auto_describe=True)

ADMISSIONS = Counter(
    "kci_webhook_admissions_total", "Admission reviews answered, by endpoint, operation, "
    "subresource (empty for the object itself) and outcome (mutated, unchanged, denied, "
    "skipped, error).",
    ["endpoint", "operation", "subresource", "outcome"], registry=REGISTRY)
LATENCY = Histogram(
    "kci_webhook_admission_duration_seconds", "Time from the request's body read to the "
    "answer, by endpoint, operation and subresource (an UPDATE that changes nothing we act "
    "on is answered far faster than a CREATE: apart, neither hides the other).",
    ["endpoint", "operation", "subresource"], registry=REGISTRY,
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
             0.5, 1.0, 2.5))
REJECTED = Counter(
    "kci_webhook_requests_rejected_total", "Requests refused before admission (malformed, "
    "oversized, wrong content type), by HTTP status code.", ["code"], registry=REGISTRY)
CONNECTIONS_CLOSED = Counter(
    "kci_webhook_connections_closed_total", "Connections the server closed itself, by "
    "reason: header-timeout (the request head did not arrive in time), body-timeout (nor "
    "its body), over-limit (more connections open than --max-connections).", ["reason"],
    registry=REGISTRY)
BODY_BYTES_IN_USE = Gauge(
    "kci_webhook_request_body_bytes_in_use", "Bytes of admission request bodies held now "
    "(each worker within its --body-memory-bytes).", registry=REGISTRY,
    multiprocess_mode="livesum")
BODY_BYTES_PEAK = Gauge(
    "kci_webhook_request_body_bytes_peak", "The most bytes of admission request bodies "
    "one worker held at once since it started.", registry=REGISTRY, multiprocess_mode="max")
IMAGES_REWRITTEN = Counter(
    "kci_webhook_images_rewritten_total", "Container images rewritten to a mirror, by mirror "
    "host.", ["mirror"], registry=REGISTRY)
DENIALS = Counter(
    "kci_webhook_denials_total", "Denials, by reason: invalid-annotation, security-rule, "
    "annotations-too-large, invalid-object, other (a denial with problems of several kinds "
    "counts once under each).", ["reason"], registry=REGISTRY)
NAMESPACE_INVALID = Counter(
    "kci_webhook_namespace_invalid_annotations_total", "Invalid namespace annotations seen "
    "(once per change of the Namespace), by annotation.", ["annotation"], registry=REGISTRY)
NAMESPACE_STATE = Gauge(
    "kci_webhook_namespace_cache_state", "1 for the namespace cache's current state "
    "(disabled, starting, synced, degraded).", ["state"], registry=REGISTRY,
    multiprocess_mode="max")
NAMESPACE_LAST_SYNC = Gauge(
    "kci_webhook_namespace_cache_last_sync_timestamp_seconds", "When the namespace cache "
    "was last known current: a list, a watch event or bookmark, or a watch that ran to its "
    "timeout (every few minutes in a quiet cluster).", registry=REGISTRY,
    multiprocess_mode="max")
MIRROR_CHECKS = Counter(
    "kci_webhook_mirror_check_cache_total", "Mirror presence checks, by cache result "
    "(hit, miss), and not_asked: past mirrorChecks.maxLookupsPerAdmission.", ["result"],
    registry=REGISTRY)
MIRROR_LOOKUPS = Counter(
    "kci_webhook_mirror_lookups_total", "if-present questions answered, by mirror host (the "
    "config's, never a request's) and result: present, missing (the mirror lacks the "
    "image), timeout (no answer in time), error, cancelled (config reload or shutdown), "
    "not_asked (past mirrorChecks.maxLookupsPerAdmission); cache hits included.",
    ["mirror", "result"], registry=REGISTRY)
CERT_EXPIRY = Gauge(
    "kci_webhook_certificate_expiry_timestamp_seconds", "notAfter of the serving "
    "certificate in use.", registry=REGISTRY, multiprocess_mode="min")
EVENTS = Counter(
    "kci_webhook_events_total", "Kubernetes Events the admissions asked for, by result: sent "
    "(created), aggregated (counted into an Event's series), dropped (the queue was full), "
    "failed (the API server refused or could not be reached).",
    ["result"], registry=REGISTRY)
EVENT_RESULTS = ("sent", "aggregated", "dropped", "failed")
CONFIG_RELOADS = Counter(
    "kci_webhook_config_reloads_total", "Config file reloads, by result (success, failure).",
    ["result"], registry=REGISTRY)
CONFIG_LAST_RELOAD_OK = Gauge(
    "kci_webhook_config_last_reload_successful", "1 while the config file's content is the "
    "config serving; 0 from a refused reload until a reload succeeds (the previous config "
    "keeps serving meanwhile).", registry=REGISTRY, multiprocess_mode="livemin")

STATES = ("disabled", "starting", "synced", "degraded")
# Label values come from the request body; anything else would let a caller mint series.
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
SUBRESOURCES = frozenset({"", "ephemeralcontainers", "status", "binding", "eviction",
                          "resize", "attach", "exec", "portforward", "proxy", "log"})


def admission_labels(operation: str, subresource: str) -> tuple[str, str]:
    """The (operation, subresource) label values: the API's own, or `other`."""
    return (operation if operation in OPERATIONS else "other",
            subresource if subresource in SUBRESOURCES else "other")


# Denial reasons: a closed vocabulary. A denial's message quotes what the pod author wrote,
# so it never becomes a label itself (each distinct text would be a series of its own).
DENIAL_REASONS = ("invalid-annotation", "security-rule", "annotations-too-large",
                  "invalid-object", "other")
# The security rules' own wording (webhook.core.mutation.rules): what a platform rule refuses.
_SECURITY = ("security.allowedInsecureRegistries", "TLS may not be weakened",
             "would weaken TLS for the configured mirror", "is aliased by the platform to",
             "is a registry mirror's host", "is a configured mirror's host",
             "another dialect's registry list that cannot be read")
# "KEY (level): ..." — how every annotation problem begins (webhook.core.values.problems).
_ANNOTATION = re.compile(r"[a-z0-9.-]+/[a-z0-9.-]+ \((pod|namespace|environment|config)\): ")
_SPEC_ALIAS = re.compile(r"spec\.hostAliases\[\d+\]: ")
_TOO_LARGE = re.compile(r"metadata\.annotations: \d+ bytes once the webhook writes back ")
_OBJECT = re.compile(r"(object|metadata|metadata\.annotations|spec|spec\.[A-Za-z]+"
                     r"(\[\d+\]\.[A-Za-z]+)?): expected ")


def denial_reasons(message: str) -> frozenset[str]:
    """The reasons of one denial, from the closed `DENIAL_REASONS`. A message joins its
    problems with "; " (and a problem may use "; " itself): each part that begins the way
    the code producing a problem begins it is classified by that code's fixed wording,
    other parts continue the problem before them. Never the quoted text as a label, and at
    most one count per reason and denial, whatever the message."""
    reasons = set()
    for part in message.split("; "):
        part = part.removeprefix("pod template: ")
        if _ANNOTATION.match(part) or _SPEC_ALIAS.match(part):
            reasons.add("security-rule" if any(marker in part for marker in _SECURITY)
                        else "invalid-annotation")
        elif _TOO_LARGE.match(part):
            reasons.add("annotations-too-large")
        elif _OBJECT.match(part):
            reasons.add("invalid-object")
    return frozenset(reasons or ("other",))


# The results of an if-present question: a closed set, whatever a registry answers.
MIRROR_RESULTS = ("present", "missing", "timeout", "error", "cancelled", "not_asked")


def set_namespace_state(state: str, last_sync: float | None) -> None:
    for name in STATES:
        NAMESPACE_STATE.labels(name).set(1 if name == state else 0)
    if last_sync is not None:
        NAMESPACE_LAST_SYNC.set(last_sync)


FLUSH_SECONDS = 1.0


class Tally:
    """The hot path's counts and latencies, added up in memory and written to their metrics
    once per `FLUSH_SECONDS` and before every exposition this process makes.

    With several workers every metric write is a locked write into a file the scrape reads
    (prometheus_client's multiprocess mode), about a microsecond each; an admission made
    eight of them, a sixth of what the server spent on it. Now it makes none: two dict
    updates and a list append. A flush writes each counter once, and each histogram once
    per bucket it filled and once to its sum. A scrape of another worker may see this
    one's counts up to a second late. Gauges of "now" (`sample`) are read at each flush."""

    def __init__(self) -> None:
        self._counts: dict[Any, float] = {}
        self._observations: dict[Any, list[float]] = {}
        self._samples: dict[Any, Callable[[], float]] = {}

    def inc(self, child: Any, amount: float = 1.0) -> None:
        """`child.inc(amount)`, at the next flush."""
        counts = self._counts
        counts[child] = counts.get(child, 0.0) + amount

    def observe(self, child: Any, value: float) -> None:
        """`child.observe(value)` (a histogram's), at the next flush."""
        observed = self._observations.get(child)
        if observed is None:
            observed = self._observations[child] = []
        observed.append(value)

    def sample(self, gauge: Any, read: Callable[[], float]) -> None:
        """Set `gauge` to `read()` at every flush (the last `read` given for it)."""
        self._samples[gauge] = read

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        for child, amount in counts.items():
            child.inc(amount)
        observations, self._observations = self._observations, {}
        for child, values in observations.items():
            observe_all(child, values)
        for gauge, read in self._samples.items():
            gauge.set(read())


def observe_all(child: Any, values: list[float]) -> None:
    """`child.observe(v)` for every value, as one write per bucket filled and one to the
    sum. A histogram child of prometheus_client keeps its bucket bounds, bucket values and
    sum as `_upper_bounds`, `_buckets` and `_sum` (an observation adds 1 to the first
    bucket whose bound is at least the value, and the value to the sum); a child without
    them is observed value by value. tests/server/test_metrics.py holds the two ways to
    the same exposition, so a change of that library's inside shows at once."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            child.observe(value)
        return
    filled = [0] * len(bounds)
    for value in values:
        filled[min(bisect.bisect_left(bounds, value), len(bounds) - 1)] += 1
    total.inc(sum(values))
    for bucket, count in zip(buckets, filled, strict=True):
        if count:
            bucket.inc(count)


TALLY = Tally()


async def flush_every(seconds: float = FLUSH_SECONDS) -> None:
    """The worker's flush, for as long as it serves (its lifespan cancels it, then flushes
    once more)."""
    while True:
        await asyncio.sleep(seconds)
        TALLY.flush()


def exposition() -> tuple[bytes, str]:
    """The text exposition; in multiprocess mode, every worker's values together (this
    worker's tally flushed first: what it counted so far is in)."""
    TALLY.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
