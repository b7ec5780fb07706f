"""The admission endpoints' HTTP transport: a bare ASGI handler in front of FastAPI.

`POST /mutate` and `POST /validate` are the hot path: every Pod CREATE in the cluster
waits on them. Served through FastAPI's routing, request and response objects they cost
~260 µs of CPU per request on this machine type, as much as the admission itself;
served here, straight from the ASGI scope, throughput at 16 connections rose by ~65%
(`make bench`). Everything else (health, readiness, metrics, lifespan) goes to FastAPI.

The transport never decides policy: it checks the body (content type, size cap, read
without holding more than the cap), hands the bytes to a handler, and maps errors in one
place — `BadRequest` to a 4xx (503 for no room) with a JSON reason, anything unexpected to an
AdmissionReview that still carries the request's uid. While the server drains
(`closing()`), every answer, its own and FastAPI's, says `Connection: close`.

It also bounds what bodies cost (webhook.server.connections bounds the connections):
- time: the body must arrive within `body_timeout` seconds of the head, else 408 (a
  deadline kept by `webhook.server.deadlines`, acted on within a quarter second);
- memory: the bodies of all requests held at once fit in a `ByteBudget`; a request
  reserves its declared length before reading (a chunked one, each chunk as it comes)
  and waits, within the same deadline, for others to finish; past it, 503;
- the loop: a body above `OFF_LOOP_BYTES` is decoded and decided in a thread
  (`off_loop`), so a large pod never stalls the answers to everyone else.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, ParamSpec, TypeVar

import orjson

from webhook.core.admission.envelope import Body, Decision, errored
from webhook.core.admission.pipeline import Run
from webhook.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from webhook.server import metrics
from webhook.server.deadlines import Deadlines

log = logging.getLogger("kci-webhook")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[[Body], Awaitable[Decision]]

JSON_TYPES = {b"application/json", b"application/json-patch+json", b"*/*", b""}
# Above this, a body is decoded and decided off the event loop. Below it, the work takes
# about a millisecond at most, less than handing it to a thread costs.
OFF_LOOP_BYTES = 256 * 1024

P = ParamSpec("P")
T = TypeVar("T")
_large_body: contextvars.ContextVar[bool] = contextvars.ContextVar("kci_webhook_large_body",
                                                                   default=False)


async def off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)`, in a worker thread when the request being answered has a
    large body (see `OFF_LOOP_BYTES`), else right here. Handlers wrap their CPU-bound
    steps (decode, decide) in it; the pure core is safe to run in a thread."""
    if _large_body.get():
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def steps_runner() -> Run | None:
    """How the admission being answered runs its CPU-bound steps: `off_loop` for a large
    body, else None (in place, with nothing to await: every small admission's path)."""
    return off_loop if _large_body.get() else None


class RequestTimeout(BadRequest):
    """The body did not arrive within the body timeout."""

    status_code = 408


class OverBudget(BadRequest):
    """The bodies already held leave no room for this one within the deadline."""

    status_code = 503


class ByteBudget:
    """At most `total` bytes of request bodies held at once (in one worker). A reservation
    that fits is taken at once (the common case costs no await); one that does not waits
    for releases, under its caller's deadline."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self.peak = 0
        self._waiting = 0
        self._released = asyncio.Event()
        metrics.TALLY.sample(metrics.BODY_BYTES_IN_USE, lambda: self.in_use)

    async def acquire(self, size: int) -> None:
        """Reserve `size` bytes (at most `total`), waiting as long as it takes: the
        caller bounds the wait (its deadline)."""
        while self.in_use + size > self.total:
            self._waiting += 1
            try:
                await self._released.wait()
            finally:
                self._waiting -= 1
        self.in_use += size
        if self.in_use > self.peak:
            self.peak = self.in_use
            metrics.BODY_BYTES_PEAK.set(self.peak)

    def release(self, size: int) -> None:
        if not size:
            return
        self.in_use -= size
        if self._waiting:            # wake every waiter; each checks whether it fits now
            self._released.set()
            self._released = asyncio.Event()


class AdmissionTransport:
    """ASGI app: `routes` (path → handler) for POST, everything else to `fallback`."""

    def __init__(self, fallback: ASGIApp, routes: dict[str, Handler], *,
                 max_body_bytes: int, body_timeout: float, body_memory_bytes: int,
                 closing: Callable[[], bool] = lambda: False) -> None:
        self.fallback = fallback
        self.routes = routes
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.budget = ByteBudget(max(body_memory_bytes, max_body_bytes))
        self.deadlines = Deadlines()
        self.closing = closing
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self._rewrites: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.fallback(scope, receive, _closing(send) if self.closing() else send)
            return
        endpoint = scope["path"].lstrip("/")
        started = time.perf_counter()
        body: Body = b""
        held = [0]          # bytes reserved in the budget, released whatever happens
        try:
            body = await self._read_body(scope, receive, held)
            token = _large_body.set(len(body) > OFF_LOOP_BYTES)
            try:
                decision = await handler(body)
            finally:
                _large_body.reset(token)
        except BadRequest as exc:
            metrics.REJECTED.labels(str(exc.status_code)).inc()
            if exc.status_code == 408:
                metrics.CONNECTIONS_CLOSED.labels("body-timeout").inc()
            log.info("rejected request: %s", exc,
                     extra={"endpoint": endpoint, "code": exc.status_code})
            await _send(send, exc.status_code,
                        orjson.dumps({"error": str(exc), "code": exc.status_code}),
                        close=exc.status_code in (408, 413, 503) or self.closing())
            return
        except Exception as exc:  # noqa: BLE001 - the one place a bug becomes an answer
            log.exception("admission failed", extra={"endpoint": endpoint})
            metrics.ADMISSIONS.labels(endpoint, "", "", "error").inc()
            await _send(send, 200, errored(body, f"internal error: {exc}"),
                        close=self.closing())
            return
        finally:
            del body
            self.budget.release(held[0])
        self._observe(endpoint, decision, time.perf_counter() - started)
        await _send(send, 200, decision.body, close=self.closing())

    async def _read_body(self, scope: Scope, receive: Receive, held: list[int]) -> Body:
        """Read at most the cap within the body timeout, its bytes reserved in the budget
        (`held[0]` says how many); refuse larger bodies without reading them whole."""
        content_type, declared = b"application/json", None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value.split(b";")[0].strip().lower()
            elif key == b"content-length":
                declared = value
        if content_type not in JSON_TYPES:
            raise UnsupportedMediaType("content-type must be application/json, got "
                                       f"{content_type.decode('latin-1')!r}")
        limit = self.max_body_bytes
        if declared is not None:
            if not declared.isdigit():
                raise BadRequest("invalid content-length header")
            if int(declared) > limit:
                raise PayloadTooLarge(f"body of {declared.decode()} bytes exceeds the limit "
                                      f"of {limit} bytes")
        body = bytearray()          # handed on as it is: a copy would double the peak
        waiting_for = "room"        # what the deadline ran out on: room in the budget, or
        task = self.deadlines.arm(self.body_timeout)        # the body itself
        try:
            if declared is not None:
                await self.budget.acquire(int(declared))
                held[0] = int(declared)
            while True:
                waiting_for = "body"
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise BadRequest("client disconnected before sending the whole body")
                chunk = message.get("body", b"")
                if len(body) + len(chunk) > limit:
                    raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
                if len(body) + len(chunk) > held[0]:     # chunked, or past its length
                    waiting_for = "room"
                    await self.budget.acquire(len(body) + len(chunk) - held[0])
                    held[0] = len(body) + len(chunk)
                body += chunk
                if not message.get("more_body"):
                    break
        except asyncio.CancelledError:
            if not self.deadlines.expired(task):
                raise
            if waiting_for == "room":
                raise OverBudget(f"request bodies in flight left no room for this one within "
                                 f"{self.body_timeout:g}s (--body-memory-bytes "
                                 f"{self.budget.total}); try again") from None
            raise RequestTimeout(f"body not received within {self.body_timeout:g}s "
                                 f"({len(body)} bytes arrived)") from None
        finally:
            self.deadlines.disarm(task)
        if not body:
            raise BadRequest("empty body: expected an AdmissionReview")
        # Handlers only parse it (orjson reads a bytearray as it reads bytes); a copy into
        # bytes would hold the body twice at its largest (37 MiB each).
        return body

    def _observe(self, endpoint: str, decision: Decision, seconds: float) -> None:
        """Metrics and logs for one answer: one line per admission at debug, denials at
        info. Labelled metrics are bound once per label set (binding costs more than
        counting)."""
        operation, sub_resource = metrics.admission_labels(decision.operation,
                                                           decision.sub_resource)
        key = (endpoint, operation, sub_resource, decision.outcome)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (metrics.ADMISSIONS.labels(*key),
                                              metrics.LATENCY.labels(*key[:3]))
        metrics.TALLY.inc(children[0])
        metrics.TALLY.observe(children[1], seconds)
        for _old, new in decision.rewritten.values():
            host = new.split("/", 1)[0]         # a configured mirror's: a bounded set
            rewrites = self._rewrites.get(host)
            if rewrites is None:
                rewrites = self._rewrites[host] = metrics.IMAGES_REWRITTEN.labels(host)
            metrics.TALLY.inc(rewrites)
        if decision.outcome == "denied":
            for reason in metrics.denial_reasons(decision.message):
                metrics.DENIALS.labels(reason).inc()
            log.info("denied: %s", decision.message, extra=_fields(endpoint, decision, seconds))
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("admission %s", decision.outcome, extra={
                **_fields(endpoint, decision, seconds), "warnings": len(decision.warnings),
                "rewritten": len(decision.rewritten)})


def _fields(endpoint: str, decision: Decision, seconds: float) -> dict[str, Any]:
    # the object's kind and name (as object_name: "name" is a LogRecord attribute), since
    # /validate judges Deployments, Jobs, ...; "pod" stays for pods, the field queries use
    named = {"pod": decision.name} if decision.kind == "Pod" else {}
    return {"endpoint": endpoint, "uid": decision.uid, "namespace": decision.namespace,
            "kind": decision.kind, "object_name": decision.name, **named,
            "operation": decision.operation,
            "subresource": decision.sub_resource,
            "decision": decision.outcome, "duration_ms": round(seconds * 1000, 3)}


def _closing(send: Send) -> Send:
    """`send` that adds `Connection: close` to the answer (while draining): the client
    reads that the connection is done before it could reuse it (see webhook.server.drain)."""
    async def send_closing(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()),
                                              (b"connection", b"close")]}
        await send(message)
    return send_closing


async def _send(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
