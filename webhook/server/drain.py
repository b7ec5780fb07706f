"""Drain on SIGTERM: leave the Service's endpoints first, stop serving after.

When a pod is deleted, the kubelet sends SIGTERM at the moment the endpoint controller
starts removing the pod from the Service; kube-proxy on every node (and any balancer in
front of the API server's calls) takes a few seconds more to stop routing new
connections here. A server that stopped listening at once would refuse them, and the
API server does not retry a webhook call that failed. So, on SIGTERM:

1. `/readyz` answers 503 at once (a balancer that health-checks it stops routing here);
2. for `--shutdown-delay` seconds the listener keeps accepting and everything is served,
   each answer with `Connection: close`: a client that pools keep-alive connections
   (the API server's Go client does) learns from the answer itself that the connection
   is done, reconnects — and reaches another replica. A connection the server closes
   *without* saying so races the client's next request on it, and that request fails
   with EOF; an answer's `Connection: close` has no such race;
3. then uvicorn's graceful shutdown: stop accepting, close idle connections, let
   requests in flight finish (each also answered with `Connection: close`), exit.

A second SIGTERM skips the rest of the delay. SIGINT (Ctrl+C) stops without a delay.

The delay runs in every worker: with `--workers N`, uvicorn's supervisor sends each
worker SIGTERM when it gets one, and each worker's own drain starts then.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("kci-webhook")

DEFAULT_SHUTDOWN_DELAY = 5.0

SignalHandler = Callable[[int, FrameType | None], Any]


class Drain:
    """One worker's drain state: read by `/readyz` and by every answer's headers."""

    def __init__(self, delay: float = DEFAULT_SHUTDOWN_DELAY) -> None:
        self.delay = delay
        self.since: float | None = None     # time.monotonic() of the first SIGTERM

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self) -> bool:
        """Mark the drain as started; False if it already was."""
        if self.since is not None:
            return False
        self.since = time.monotonic()
        return True

    def take_over_sigterm(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Put the drain in front of the SIGTERM handler uvicorn installed while it
        serves (it is in place while the app's lifespan starts): the first SIGTERM starts
        the drain and hands the signal on to uvicorn only after the delay; uvicorn
        restores its predecessor when it stops serving, this handler included.

        Does nothing (returns False) outside the main thread, where no signal handler
        can be set (an app run by a test client), or when no handler is there to defer
        to."""
        if threading.current_thread() is not threading.main_thread():
            return False
        stop = signal.getsignal(signal.SIGTERM)
        if not callable(stop):
            return False

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if not self.begin():
                stop(signum, frame)          # a second SIGTERM: no more waiting
                return
            # Only flags are set in the handler itself; logging and timers on the loop.
            loop.call_soon_threadsafe(self._start, loop, stop, signum)

        signal.signal(signal.SIGTERM, on_sigterm)
        return True

    def _start(self, loop: asyncio.AbstractEventLoop, stop: SignalHandler, signum: int) -> None:
        log.info("SIGTERM: process %d not ready; serving every connection for %gs more, "
                 "each answer with Connection: close, then finishing requests in flight",
                 os.getpid(), self.delay)
        loop.call_later(self.delay, stop, signum, None)
