"""The Event recorder against the API server stand-in, through the real `kubernetes`
client: bodies events.k8s.io/v1 accepts, one Event per object and reason with its series
counted as client-go counts it, and failures that are counted, not raised."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.apiserver_standin import StandIn, event_problems, running_standin
from webhook.adapters.events import CONTROLLER, ApiSink, EventRecorder, micro_time
from webhook.core.admission.events import EventIntent, Regarding

RS = Regarding("apps/v1", "ReplicaSet", "web-7d4b9c", "team-a",
               "6a5f4f5e-1111-4222-8333-444455556666")
POD = Regarding("v1", "Pod", "web-7d4b9c-x2k9q", "team-a", "")
MISS = EventIntent(RS, "MirrorLacksImage", "KeepImage",
                   "pod web-7d4b9c-*: image kept on its own registry, the if-present mirror "
                   "does not have the image: web (nginx:1.25)")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.25

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def standin() -> Iterator[tuple[StandIn, ApiSink]]:
    with running_standin() as (state, api):
        yield state, ApiSink(api.api_client, timeout=(1.0, 1.0))


def recorder(sink: ApiSink, clock: Clock) -> EventRecorder:
    return EventRecorder(sink, instance="kci-webhook-5f7c9-abcde", clock=clock,
                         patch_interval=30, finish=360)


def test_the_first_occurrence_creates_an_event_the_api_accepts(
        standin: tuple[StandIn, ApiSink]) -> None:
    state, sink = standin
    clock = Clock()
    assert recorder(sink, clock).record(MISS) == "sent"
    ((namespace, name), event), = state.events.items()
    assert namespace == "team-a" and name.startswith("web-7d4b9c.")
    assert event_problems(event, "team-a") == []
    assert event["regarding"] == {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                  "name": "web-7d4b9c", "namespace": "team-a",
                                  "uid": RS.uid}
    assert (event["reason"], event["action"], event["type"]) == (
        "MirrorLacksImage", "KeepImage", "Warning")
    assert event["reportingController"] == CONTROLLER
    assert event["reportingInstance"] == "kci-webhook-5f7c9-abcde"
    assert event["eventTime"] == micro_time(clock.now) == "2027-01-15T08:00:00.250000Z"
    assert "series" not in event


def test_repeats_become_a_series_patched_as_client_go_does(
        standin: tuple[StandIn, ApiSink]) -> None:
    state, sink = standin
    clock = Clock()
    events = recorder(sink, clock)
    assert events.record(MISS) == "sent"
    clock.now += 1
    assert events.record(MISS) == "aggregated"           # the series begins: patched at once
    (event,) = state.events.values()
    assert event["series"] == {"count": 2, "lastObservedTime": micro_time(clock.now)}
    for _ in range(3):
        clock.now += 1
        assert events.record(MISS) == "aggregated"       # counted here, not yet written
    assert event_of(state)["series"]["count"] == 2
    assert events.flush() == []                          # within the patch interval
    clock.now += 30
    assert events.flush() == ["aggregated"]
    assert event_of(state)["series"] == {"count": 5,
                                         "lastObservedTime": micro_time(clock.now - 30)}
    methods = [r["method"] for r in state.event_requests()]
    assert methods == ["POST", "PATCH", "PATCH"]
    assert all(r["contentType"] == "application/merge-patch+json"
               for r in state.event_requests()[1:])


def test_one_event_per_object_and_reason(standin: tuple[StandIn, ApiSink]) -> None:
    state, sink = standin
    events = recorder(sink, Clock())
    for intent in (MISS, EventIntent(POD, MISS.reason, MISS.action, MISS.note),
                   EventIntent(RS, "AnnotationIgnored", "IgnoreAnnotation", "x"), MISS):
        events.record(intent)
    assert sorted((e["regarding"]["name"], e["reason"], e.get("series", {}).get("count"))
                  for e in state.events.values()) == [
        ("web-7d4b9c", "AnnotationIgnored", None), ("web-7d4b9c", "MirrorLacksImage", 2),
        ("web-7d4b9c-x2k9q", "MirrorLacksImage", None)]


def test_a_quiet_series_ends_and_the_next_occurrence_starts_a_new_event(
        standin: tuple[StandIn, ApiSink]) -> None:
    state, sink = standin
    clock = Clock()
    events = recorder(sink, clock)
    events.record(MISS)
    events.record(MISS)
    clock.now += 1
    events.record(MISS)                              # count 3, unwritten
    clock.now += 360
    assert events.flush() == ["aggregated"] and len(events) == 0   # last count written
    assert event_of(state)["series"]["count"] == 3
    assert events.record(MISS) == "sent"
    assert len(state.events) == 2


def test_a_patch_of_an_expired_event_creates_it_again(
        standin: tuple[StandIn, ApiSink]) -> None:
    state, sink = standin
    events = recorder(sink, Clock())
    events.record(MISS)
    state.events.clear()                             # the API server's TTL ran out
    assert events.record(MISS) == "aggregated"
    assert event_of(state)["series"]["count"] == 2
    assert [r["method"] for r in state.event_requests()] == ["POST", "PATCH", "POST"]


def test_an_api_error_is_counted_not_raised(standin: tuple[StandIn, ApiSink]) -> None:
    state, sink = standin
    events = recorder(sink, Clock())
    state.event_failures = [500, 403]
    assert events.record(MISS) == "failed"
    assert events.record(MISS) == "failed"           # never cached: tried afresh
    assert events.record(MISS) == "sent"


def test_a_hung_api_server_costs_the_caller_its_timeout_at_most(
        standin: tuple[StandIn, ApiSink]) -> None:
    state, sink = standin
    state.events_hang.clear()
    events = recorder(sink, Clock())
    result: list[str] = []
    caller = threading.Thread(target=lambda: result.append(events.record(MISS)))
    started = time.perf_counter()
    caller.start()
    caller.join(30)
    print(f"\nrecorder call against a hung events API returned in "
          f"{time.perf_counter() - started:.2f}s (read timeout 1s)")
    assert result == ["failed"]
    state.events_hang.set()


def test_the_name_fits_whatever_the_objects_name() -> None:
    long = Regarding("apps/v1", "ReplicaSet", "a" * 252 + "b", "team-a", "u-1")
    body = EventRecorder(sink=None, instance="i" * 300)._body(  # type: ignore[arg-type]
        EventIntent(long, "MirrorLacksImage", "KeepImage", "note"), 1_800_000_000.0)
    assert event_problems(body, "team-a") == []
    assert len(body["reportingInstance"]) == 128


def event_of(state: StandIn) -> dict:  # type: ignore[type-arg]
    (event,) = [e for e in state.events.values()]
    return event
