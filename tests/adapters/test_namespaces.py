"""The Namespace cache: the real `kubernetes` client against an HTTP-level stand-in."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.apiserver_standin import StandIn, running_standin
from tests.conftest import eventually
from webhook.adapters.namespaces import NamespaceCache

ALIASES = "k8s.ksyun.com/kci-host-aliases"
TEAM_A = {ALIASES: '[{"ip":"10.0.0.2","hostnames":["registry.team-a.example"]}]'}




@pytest.fixture
def standin() -> Iterator[tuple[StandIn, client.CoreV1Api]]:
    with running_standin() as pair:
        yield pair


@pytest.fixture
def cache(standin: tuple[StandIn, client.CoreV1Api]) -> Iterator[NamespaceCache]:
    state, api = standin
    state.set("team-a", TEAM_A)
    state.set("plain")                               # no annotations of interest
    cache = NamespaceCache(api)
    cache.start()
    assert state.wait_for_watchers(1)
    yield cache
    cache.stop()


def ips(cache: NamespaceCache, name: str) -> list[str]:
    layer = cache.get(name)
    return [a.ip for a in (layer.host_aliases or ())] if layer else []


def test_initial_list_fills_the_cache_with_namespaces_that_have_defaults(
        cache: NamespaceCache) -> None:
    assert cache.state == "synced"
    assert ips(cache, "team-a") == ["10.0.0.2"]
    assert cache.get("plain") is None and len(cache) == 1   # only what we act on is kept


def test_watch_events_converge(standin: tuple[StandIn, client.CoreV1Api],
                               cache: NamespaceCache) -> None:
    state, _ = standin
    state.set("team-b", {ALIASES: '[{"ip":"10.0.0.3","hostnames":["b.example"]}]'})
    assert eventually(lambda: ips(cache, "team-b") == ["10.0.0.3"])
    state.set("team-a", {ALIASES: '[{"ip":"10.0.0.9","hostnames":["a.example"]}]'})
    assert eventually(lambda: ips(cache, "team-a") == ["10.0.0.9"])
    state.set("team-a", {"unrelated": "x"})          # annotation removed → no defaults
    assert eventually(lambda: cache.get("team-a") is None)
    state.delete("team-b")
    assert eventually(lambda: cache.get("team-b") is None)


def test_bookmarks_move_the_resource_version(standin: tuple[StandIn, client.CoreV1Api],
                                             cache: NamespaceCache) -> None:
    state, _ = standin
    state.bookmark()
    assert eventually(lambda: cache.resource_version == str(state.resource_version))


def test_events_bookmarks_and_a_watch_run_to_its_end_each_prove_the_cache_current(
        standin: tuple[StandIn, client.CoreV1Api]) -> None:
    """What the last-sync metric reports: in a quiet cluster nothing changes for hours, yet
    each watch that runs to its timeout (and each bookmark) shows the cache current; only
    the first list is a list."""
    state, api = standin
    syncs: list[float] = []
    cache = NamespaceCache(api, on_sync=lambda c: syncs.append(c.synced_at or 0.0))
    cache.start()
    try:
        assert state.wait_for_watchers(1) and len(syncs) == 1         # the list
        state.bookmark()
        assert eventually(lambda: len(syncs) == 2)
        state.set("team-b")
        assert eventually(lambda: len(syncs) == 3)
        state.broadcast(None)          # the stream ends as at the watch's timeoutSeconds
        assert eventually(lambda: len(syncs) == 4)
        assert state.wait_for_watchers(1) and len(state.watch_requests()) >= 2
    finally:
        cache.stop()
    assert cache.lists == 1 and cache.state == "synced"
    assert syncs == sorted(syncs) and syncs[-1] == cache.synced_at


def test_410_gone_lists_again(standin: tuple[StandIn, client.CoreV1Api],
                              cache: NamespaceCache) -> None:
    state, _ = standin
    with state.lock:            # a change the watch never sees: only a new list finds it
        state.namespaces["team-c"] = {"metadata": {"name": "team-c", "annotations": TEAM_A}}
    state.gone()
    assert eventually(lambda: cache.lists == 2)
    assert eventually(lambda: ips(cache, "team-c") == ["10.0.0.2"])
    assert state.wait_for_watchers(1) and cache.state == "synced"


@pytest.mark.parametrize("how", ["error-event", "http-410"])
def test_410_gone_is_an_expiry_never_degraded(standin: tuple[StandIn, client.CoreV1Api],
                                              how: str, caplog: pytest.LogCaptureFixture
                                              ) -> None:
    """Every state the cache passes through and every error it records during an expiry,
    not only the end state: a 410 (as an ERROR event on the stream, or as the watch
    request's own answer) lists again without a pass through "degraded"."""
    state, api = standin
    state.set("team-a", TEAM_A)
    states: list[str] = []
    cache = NamespaceCache(api, on_state=lambda c: states.append(c.state))
    caplog.set_level(logging.INFO, logger="kci-webhook.namespaces")
    cache.start()
    try:
        assert state.wait_for_watchers(1)
        with state.lock:        # a change the watch never sees: only a new list finds it
            state.namespaces["team-c"] = {"metadata": {"name": "team-c",
                                                       "annotations": TEAM_A}}
        if how == "error-event":
            state.gone()
        else:                   # the stream ends; the next watch request is answered 410
            state.watch_gone_once = True
            state.broadcast(None)
        assert eventually(lambda: cache.lists == 2)
        assert eventually(lambda: ips(cache, "team-c") == ["10.0.0.2"])
        assert state.wait_for_watchers(1)
    finally:
        cache.stop()
    assert states == ["synced"] and cache.errors == 0 and cache.last_error is None
    assert "degraded" not in caplog.text and "KeyError" not in caplog.text
    assert any("410" in r.getMessage() and "listing again" in r.getMessage()
               for r in caplog.records)


def test_other_watch_error_event_is_named_not_a_key_error(
        standin: tuple[StandIn, client.CoreV1Api]) -> None:
    """An ERROR event that is not an expiry degrades the cache with the API server's own
    words, then the cache recovers by listing again."""
    state, api = standin
    cache = NamespaceCache(api)
    cache.start()
    try:
        assert state.wait_for_watchers(1)
        state.broadcast({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500,
            "reason": "InternalError", "message": "etcd leader changed"}})
        assert eventually(lambda: cache.errors >= 1)
        assert "etcd leader changed" in (cache.last_error or "")
        assert "KeyError" not in (cache.last_error or "")
        assert eventually(lambda: cache.state == "synced", timeout=15)
    finally:
        cache.stop()


def test_dropped_connection_reconnects(standin: tuple[StandIn, client.CoreV1Api],
                                       cache: NamespaceCache) -> None:
    state, _ = standin
    state.drop()
    assert eventually(lambda: len(state.watch_requests()) >= 2)
    assert state.wait_for_watchers(1)
    state.set("team-d", TEAM_A)
    assert eventually(lambda: ips(cache, "team-d") == ["10.0.0.2"])
    assert cache.state == "synced"


def test_api_down_keeps_last_values_and_reports_degraded(
        standin: tuple[StandIn, client.CoreV1Api], cache: NamespaceCache) -> None:
    state, _ = standin
    state.list_status = 503
    state.drop()
    assert eventually(lambda: "503" in (cache.status().get("lastError") or ""))
    assert cache.state == "degraded"
    assert ips(cache, "team-a") == ["10.0.0.2"]      # the last known values keep serving
    state.list_status = 200
    assert eventually(lambda: cache.state == "synced", timeout=15)


def test_unreachable_api_at_start_up_serves_nothing_and_says_so() -> None:
    configuration = client.Configuration(host="http://127.0.0.1:9")   # discard port: refused
    cache = NamespaceCache(client.CoreV1Api(client.ApiClient(configuration)))
    cache.start()
    try:
        assert eventually(lambda: cache.state == "degraded")
        assert cache.get("anything") is None
        assert cache.status()["state"] == "degraded"
    finally:
        cache.stop()


def test_invalid_namespace_annotation_is_logged_once_per_change(
        standin: tuple[StandIn, client.CoreV1Api], cache: NamespaceCache,
        caplog: pytest.LogCaptureFixture) -> None:
    state, _ = standin
    reported: list[tuple[str, str]] = []
    cache._on_invalid = lambda ns, key: reported.append((ns, key))
    caplog.set_level(logging.WARNING, logger="kci-webhook.namespaces")
    state.set("broken", {ALIASES: "[{"})
    assert eventually(lambda: cache.get("broken") is not None)
    for _ in range(3):
        assert cache.get("broken") is not None      # reads (admissions) log nothing
    state.set("broken", {ALIASES: "[{", "other": "change that does not matter"})
    state.bookmark()
    assert eventually(lambda: cache.resource_version == str(state.resource_version))
    messages = [r.getMessage() for r in caplog.records if "invalid namespace" in r.getMessage()]
    assert len(messages) == 1 and "(namespace broken)" in messages[0]
    assert reported == [("broken", "k8s.ksyun.com/kci-host-aliases")]
