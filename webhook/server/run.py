"""Running uvicorn: the app factory in every worker, our reloadable TLS context, and a
clean exit on SIGTERM."""

from __future__ import annotations

import signal
import ssl
from types import FrameType
from typing import Any

import uvicorn

from webhook.server.app import tls_for
from webhook.server.connections import BoundedHttpToolsProtocol
from webhook.server.logs import log_config
from webhook.server.settings import Settings


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
