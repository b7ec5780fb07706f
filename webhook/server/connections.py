"""Connection bounds below the application: how many, and how long a request may take to arrive.

uvicorn keeps a connection as long as its client keeps it: one that sends half a request
head, or a head and never the body, stays open and holds its memory (TLS buffers, the
parser, a task) for ever, and a few thousand of them fill a replica's memory. uvicorn's
own `limit_concurrency` answers 503 only once a head is complete, so it cannot stop them.
This protocol is uvicorn's httptools protocol with three bounds added:

- at most `max_connections` open connections: one beyond it is closed as soon as it is
  accepted (before it holds a parser or a task);
- a request head must be complete within `header_timeout` seconds of the connection (or
  of the request's first byte, on a reused connection), else the connection is closed;
- a request's body must be complete within `body_timeout` seconds (plus a second's grace)
  of its head, else the connection is closed (each deadline acted on within a quarter
  second). The admission routes answer 408 at
  `body_timeout` themselves (webhook.server.transport); this is the bound for every other route.

The limits come from the environment (`Limits.from_environ`), as every uvicorn worker
reads its settings (webhook.server.settings); each worker bounds its own connections.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from webhook.server import metrics
from webhook.server.deadlines import sweep_for
from webhook.server.limits import Limits

log = logging.getLogger("kci-webhook")

BODY_GRACE_SECONDS = 1.0       # the admission routes' own 408 comes first
WARN_EVERY_SECONDS = 10.0      # a flood of refused connections is one log line per period


@functools.lru_cache(maxsize=1)
def _limits() -> Limits:
    """Read once per worker process, at its first connection."""
    return Limits.from_environ()


_last_warning = [0.0]


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a connection limit, a head and a body deadline.

    The deadlines are kept by the loop's sweep (`webhook.server.deadlines`): a timer armed
    and cancelled per phase of every request cost more than the rest of this class on the
    hot path; a deadline may now pass by up to a sweep before it is acted on.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = _limits()
        self._sweep = sweep_for(self.loop)
        self._phase = ""                   # "header" or "body" while a deadline runs

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            metrics.CONNECTIONS_CLOSED.labels("over-limit").inc()
            now = time.monotonic()
            if now - _last_warning[0] >= WARN_EVERY_SECONDS:
                _last_warning[0] = now
                log.warning("connection refused: %d connections open, the limit is %d "
                            "(--max-connections)", len(self.connections) - 1,
                            self._limits.max_connections)
            transport.abort()
            return
        self._arm("header", self._limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase != "header":        # a reused connection: its next request's head
            self._arm("header", self._limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._arm("body", self._limits.body_timeout + BODY_GRACE_SECONDS)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, phase: str, seconds: float) -> None:
        self._phase = phase
        self._sweep.arm(self, seconds, self._expired)

    def _disarm(self) -> None:
        self._phase = ""
        self._sweep.disarm(self)

    def _expired(self) -> None:
        """The head or body did not arrive in time: abort (no TLS close_notify to wait for
        from a client that stopped sending), which frees what it held at once (a request's
        task sees the disconnect)."""
        phase, self._phase = self._phase, ""
        if self.transport.is_closing():
            return
        metrics.CONNECTIONS_CLOSED.labels(f"{phase}-timeout").inc()
        log.debug("connection closed: request %s not complete in time", phase,
                  extra={"client": f"{self.client[0]}:{self.client[1]}" if self.client
                         else ""})
        self.transport.abort()
