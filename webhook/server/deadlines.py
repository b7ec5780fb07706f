"""Deadlines kept by one sweep per event loop instead of a timer per request.

A timer armed and cancelled for every request costs more than it protects: about 4 µs
under uvloop for `asyncio.timeout`, a tenth of an admission, although nearly every body
has arrived before the route runs. Here a deadline is a dict entry (`Sweep.arm`), removed
when its work is done (`disarm`); while any is noted, the loop's sweep runs every
`SWEEP_SECONDS` and calls the action of each past its time. A deadline is acted on up to
a sweep late. Two users share a loop's sweep: the connection protocol's head and body
deadlines (`webhook.server.connections`, which close the connection) and the admission
route's own body deadline (`Deadlines`, which cancels the task and lets it answer 408).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

SWEEP_SECONDS = 0.25


class Sweep:
    """The noted deadlines of one event loop, and the sweep that acts on them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._due: dict[Hashable, tuple[float, Callable[[], None]]] = {}
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, key: Hashable, seconds: float, action: Callable[[], None]) -> None:
        """Call `action()` once `seconds` have passed, unless `key` is disarmed first (a
        key armed again gets the new deadline)."""
        self._due[key] = (self.loop.time() + seconds, action)
        if self._handle is None:
            self._handle = self.loop.call_later(SWEEP_SECONDS, self._sweep)

    def disarm(self, key: Hashable) -> None:
        self._due.pop(key, None)

    @property
    def running(self) -> bool:
        return self._handle is not None

    def _sweep(self) -> None:
        now = self.loop.time()
        for key, (due, action) in list(self._due.items()):
            if now >= due:
                del self._due[key]
                action()
        self._handle = self.loop.call_later(SWEEP_SECONDS, self._sweep) if self._due else None


_SWEEPS: dict[int, Sweep] = {}     # by loop id; each holds its loop, so no id is reused


def sweep_for(loop: asyncio.AbstractEventLoop) -> Sweep:
    """The loop's one sweep."""
    sweep = _SWEEPS.get(id(loop))
    if sweep is None:
        sweep = _SWEEPS[id(loop)] = Sweep(loop)
    return sweep


class Deadlines:
    """Deadlines of tasks: a task past its own is cancelled, and tells that cancellation
    from any other with `expired`, as `asyncio.timeout` does (a cancellation from elsewhere,
    shutdown or a client gone, still propagates)."""

    def __init__(self) -> None:
        # task past its deadline → its cancellation count when the deadline was noted
        self._expired: dict[asyncio.Task[Any], int] = {}

    def arm(self, seconds: float) -> asyncio.Task[Any]:
        """Note that the running task must be done within `seconds`; returns the task."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        cancelling = task.cancelling()

        def expire() -> None:
            if not task.done():
                self._expired[task] = cancelling
                task.cancel()

        sweep_for(task.get_loop()).arm(task, seconds, expire)
        return task

    def disarm(self, task: asyncio.Task[Any]) -> None:
        sweep_for(task.get_loop()).disarm(task)
        self._expired.pop(task, None)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the cancellation `task` is handling came from its deadline alone; then
        it is undone, and the caller raises its own error instead."""
        if task not in self._expired:
            return False
        cancelling = self._expired.pop(task)
        return task.uncancel() <= cancelling
