"""The hot path's tally: what it writes at a flush is what writing at once would have."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from webhook.server import metrics

BUCKETS = metrics.LATENCY._upper_bounds[:-1]     # the webhook's own, without +Inf


def histograms() -> tuple[CollectorRegistry, Any, Any]:
    registry = CollectorRegistry()
    direct = Histogram("direct_seconds", "d", ["k"], registry=registry, buckets=BUCKETS)
    tallied = Histogram("tallied_seconds", "t", ["k"], registry=registry, buckets=BUCKETS)
    return registry, direct.labels("a"), tallied.labels("a")


def samples(registry: CollectorRegistry, name: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name.removeprefix(name), s.labels, s.value)
            for family in registry.collect() if family.name == name
            for s in family.samples if not s.name.endswith("_created")]


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), max_size=60))
@example([0.0, 0.0001, 0.00025, 0.001, 2.5, 2.5000001, 9999.0])   # on and past the bounds
def test_a_flushed_histogram_reads_as_one_observed_at_once(values: list[float]) -> None:
    registry, direct, tallied = histograms()
    tally = metrics.Tally()
    for value in values:
        direct.observe(value)
        tally.observe(tallied, value)
    tally.flush()
    got = samples(registry, "tallied_seconds")
    want = samples(registry, "direct_seconds")
    assert [(name, labels) for name, labels, _v in got] == [
        (name, labels) for name, labels, _v in want]
    for (_n, _l, g), (_m, _k, w) in zip(got, want, strict=True):
        assert abs(g - w) <= 1e-9 * max(1.0, abs(w))


def test_nothing_is_written_before_a_flush_and_everything_after() -> None:
    registry = CollectorRegistry()
    counter = Counter("c", "c", ["k"], registry=registry).labels("a")
    _registry, _direct, tallied = histograms()
    tally = metrics.Tally()
    for _ in range(3):
        tally.inc(counter)
    tally.inc(counter, 2.0)
    tally.observe(tallied, 0.003)
    assert counter._value.get() == 0.0
    tally.flush()
    assert counter._value.get() == 5.0
    assert tallied._sum.get() == 0.003
    tally.flush()                               # nothing counted twice
    assert counter._value.get() == 5.0


def test_a_histogram_without_those_insides_is_observed_value_by_value() -> None:
    class Plain:
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

    plain = Plain()
    tally = metrics.Tally()
    tally.observe(plain, 1.0)
    tally.observe(plain, 2.0)
    tally.flush()
    assert plain.seen == [1.0, 2.0]


def test_a_sampled_gauge_is_read_at_each_flush() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("g", "g", registry=registry)
    now = [7.0]
    tally = metrics.Tally()
    tally.sample(gauge, lambda: now[0])
    tally.flush()
    assert gauge._value.get() == 7.0
    now[0] = 0.0
    tally.flush()
    assert gauge._value.get() == 0.0


def test_the_exposition_holds_what_this_process_counted_so_far() -> None:
    child = metrics.IMAGES_REWRITTEN.labels("tally.example:5000")
    before = child._value.get()
    metrics.TALLY.inc(child)
    text, _content_type = metrics.exposition()
    assert child._value.get() == before + 1
    assert b'kci_webhook_images_rewritten_total{mirror="tally.example:5000"}' in text
