"""Deadlines for the awaits of a request, kept by one sweep per worker instead of a timer
per request.

`asyncio.timeout` arms a timer when entered and cancels it when left: about 4 µs under
uvloop, a tenth of an admission, paid by every request although nearly every body has
arrived before the route runs. Here a request notes its task and deadline (two dict
writes, `arm`) and forgets them when done (`disarm`); a sweep every `SWEEP_SECONDS`, while
any request is noted, cancels the tasks past their deadline. The request tells that
cancellation from any other with `expired`, as `asyncio.timeout` does: a cancellation
from elsewhere (shutdown, a client gone) still propagates. A deadline is acted on up to a
sweep late.
"""

from __future__ import annotations

import asyncio
from typing import Any

SWEEP_SECONDS = 0.25


class Deadlines:
    """The noted deadlines of one event loop's requests."""

    def __init__(self) -> None:
        # task → (loop time it must be done by, its cancellation count when noted)
        self._due: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweep_handle: asyncio.TimerHandle | None = None

    def arm(self, seconds: float) -> asyncio.Task[Any]:
        """Note that the running task must be done within `seconds`; returns the task."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        loop = task.get_loop()
        self._due[task] = (loop.time() + seconds, task.cancelling())
        if self._sweep_handle is None:
            self._sweep_handle = loop.call_later(SWEEP_SECONDS, self._sweep, loop)
        return task

    def disarm(self, task: asyncio.Task[Any]) -> None:
        self._due.pop(task, None)
        self._expired.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the cancellation `task` is handling came from its deadline alone; then
        it is undone, and the caller raises its own error instead."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        _due, cancelling = self._due.get(task, (0.0, 0))
        return task.uncancel() <= cancelling

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, (due, _cancelling) in list(self._due.items()):
            if now >= due and task not in self._expired and not task.done():
                self._expired.add(task)
                task.cancel()
        self._sweep_handle = (loop.call_later(SWEEP_SECONDS, self._sweep, loop)
                              if self._due else None)
