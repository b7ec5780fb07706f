"""The admission entry point the server runs (`webhook.core.admission.pipeline.admit`), called
and timed as the benchmarks do: awaited on an event loop of this process, with an `ask`
that answers nothing unless told (bench-config.yaml has no `if-present` mirror, so it is
never awaited), each step run in place as the server runs a small body's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from webhook.core.admission.envelope import Decision
from webhook.core.admission.pipeline import Ask, admit, answer_nothing
from webhook.core.mutation.context import Context

_loop: asyncio.AbstractEventLoop | None = None


def loop() -> asyncio.AbstractEventLoop:
    """One event loop for the process: creating one per call would be timed too."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    return _loop


def admit_once(body: bytes, context_for: Callable[[str], Context], *,
               ask: Ask = answer_nothing) -> Decision:
    """One admission, as the server answers it."""
    return loop().run_until_complete(admit(body, context_for=context_for, ask=ask))


def admit_timer(body: bytes, context_for: Callable[[str], Context], *,
                ask: Ask = answer_nothing) -> Callable[[int], float]:
    """Seconds for `number` admissions of `body`, awaited one after another in one run of
    the loop (as `timeit` times a loop of calls; the garbage collector stays on)."""
    async def calls(number: int) -> float:
        clock = time.perf_counter
        start = clock()
        for _ in range(number):
            await admit(body, context_for=context_for, ask=ask)
        return clock() - start
    return lambda number: loop().run_until_complete(calls(number))
