"""Deadlines kept by a sweep: a stuck await ends at its deadline, nothing else is taken
for one, and a loop with nothing noted keeps no timer."""

from __future__ import annotations

import asyncio

import pytest

from webhook.server import deadlines
from webhook.server.deadlines import Deadlines


@pytest.fixture(autouse=True)
def quick_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadlines, "SWEEP_SECONDS", 0.01)


async def waits(kept: Deadlines, seconds: float, event: asyncio.Event) -> str:
    task = kept.arm(seconds)
    try:
        await event.wait()
        return "done"
    except asyncio.CancelledError:
        if not kept.expired(task):
            raise
        return "expired"
    finally:
        kept.disarm(task)


def test_an_await_past_its_deadline_ends_as_expired() -> None:
    async def main() -> str:
        return await waits(Deadlines(), 0.05, asyncio.Event())
    assert asyncio.run(main()) == "expired"


def test_an_await_done_in_time_is_not_touched_and_the_sweep_stops() -> None:
    async def main() -> tuple[str, bool]:
        kept, event = Deadlines(), asyncio.Event()
        task = asyncio.create_task(waits(kept, 5.0, event))
        await asyncio.sleep(0.05)           # several sweeps while it waits
        event.set()
        result = await task
        await asyncio.sleep(0.05)           # a sweep with nothing noted
        return result, not deadlines.sweep_for(asyncio.get_running_loop()).running
    assert asyncio.run(main()) == ("done", True)


def test_a_cancellation_from_elsewhere_is_not_taken_for_a_deadline() -> None:
    async def main() -> None:
        task = asyncio.create_task(waits(Deadlines(), 5.0, asyncio.Event()))
        await asyncio.sleep(0.02)
        task.cancel()
        await task
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())


def test_a_cancellation_from_elsewhere_during_an_expiry_still_propagates() -> None:
    async def main() -> str:
        kept = Deadlines()
        task = asyncio.create_task(waits(kept, 0.0, asyncio.Event()))
        await asyncio.sleep(0)              # it waits, noted as already due
        task.cancel()                       # cancelled from elsewhere too, before the sweep
        deadlines.sweep_for(asyncio.get_running_loop())._sweep()
        return await task
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
