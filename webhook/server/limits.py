"""The serving limits' defaults, and how a worker reads them from the environment.

Apart from the modules that enforce them (webhook.server.connections,
webhook.server.transport) so that the command line can show the defaults without importing
the web stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 10.0
# The bodies held at once, per worker: one body at the largest cap (37 MiB, see
# webhook.core.admission.envelope) plus room for everyday reviews (6-25 KB) beside it.
# Parsed, a body takes about as much again while it is decided.
DEFAULT_BODY_MEMORY_BYTES = 48 * 1024 * 1024
# Events waiting for the API server, per worker (webhook.server.events): a few hundred
# bytes each; beyond this, while the API server is slow or down, new ones are dropped.
DEFAULT_EVENTS_QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Limits:
    """Connections per worker, and how long a request's head and body may take."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if environ is None else environ
        return cls(
            max_connections=int(env.get("KCI_WEBHOOK_MAX_CONNECTIONS",
                                        DEFAULT_MAX_CONNECTIONS)),
            header_timeout=float(env.get("KCI_WEBHOOK_HEADER_TIMEOUT",
                                         DEFAULT_HEADER_TIMEOUT)),
            body_timeout=float(env.get("KCI_WEBHOOK_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT)))
