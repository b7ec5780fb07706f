"""The Events admissions ask for, sent off their path: a bounded queue and one worker.

An admission only puts its Events on the queue (`offer`: no await, no I/O); when the
queue is full they are dropped and counted. The worker, started and stopped with the
app, takes them one at a time and hands each to the recorder
(`webhook.adapters.events`) on a thread of its own, so a slow or hung API server holds
that thread and fills the queue, and never an admission, the event loop or the threads
that decide large bodies. Between Events, and at least every `FLUSH_SECONDS`, the
recorder writes the counts of its series.

`kci_webhook_events_total{result}`: sent (created), aggregated (counted into a series),
dropped (queue full), failed (the API server refused or could not be reached).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from webhook.adapters.events import EventRecorder
from webhook.core.admission.events import EventIntent
from webhook.server import metrics
from webhook.server.limits import DEFAULT_EVENTS_QUEUE_SIZE

log = logging.getLogger("kci-webhook.events")

DEFAULT_QUEUE_SIZE = DEFAULT_EVENTS_QUEUE_SIZE
FLUSH_SECONDS = 5.0
T = TypeVar("T")


class EventQueue:
    """Admissions' Events in, the recorder's calls out; a no-op without a recorder."""

    def __init__(self, recorder: EventRecorder | None, *, size: int = DEFAULT_QUEUE_SIZE,
                 flush_seconds: float = FLUSH_SECONDS) -> None:
        self.recorder = recorder
        self._size = size
        self._flush_seconds = flush_seconds
        self._queue: asyncio.Queue[EventIntent] | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = _Thread()
        self._dropped = metrics.EVENTS.labels("dropped")

    @property
    def enabled(self) -> bool:
        return self.recorder is not None

    def offer(self, intents: Iterable[EventIntent]) -> None:
        """Queue an admission's Events, or drop (and count) those that do not fit."""
        events = self._queue
        if events is None:
            return
        for intent in intents:
            try:
                events.put_nowait(intent)
            except asyncio.QueueFull:
                self._dropped.inc()

    def start(self) -> None:
        """Start the worker (in the running loop); nothing without a recorder."""
        if self.recorder is None or self._task is not None:
            return
        self._queue = asyncio.Queue(maxsize=self._size)
        self._task = asyncio.create_task(self._run(self.recorder, self._queue))

    async def stop(self) -> None:
        """Stop taking Events; what is queued is dropped, a call in flight ends on its
        own (within its timeout) on the daemon thread."""
        self._queue = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._thread.stop()

    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def _run(self, recorder: EventRecorder, events: asyncio.Queue[EventIntent]) -> None:
        counters = {result: metrics.EVENTS.labels(result)
                    for result in ("sent", "aggregated", "failed")}
        while True:
            try:
                intent = await asyncio.wait_for(events.get(), self._flush_seconds)
            except TimeoutError:
                intent = None
            try:
                if intent is not None:
                    counters[await self._thread.call(recorder.record, intent)].inc()
                for result in await self._thread.call(recorder.flush):
                    counters[result].inc()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug here must not stop the Events
                log.exception("sending an event failed")
                counters["failed"].inc()


class _Thread:
    """One daemon thread that runs the recorder's blocking calls in order: it never holds
    up the process's exit, and a hung call holds nothing but itself."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...],
                                             concurrent.futures.Future[Any]] | None] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="events", daemon=True)
            self._thread.start()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._calls.put((fn, args, future))
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        if self._thread is not None:
            self._calls.put(None)
            self._thread = None

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            fn, args, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting side
                future.set_exception(exc)


__all__ = ["DEFAULT_QUEUE_SIZE", "EventQueue"]
