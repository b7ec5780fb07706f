"""Events end to end: `kci-webhook serve --kubeconfig` against the API server stand-in.

What `kubectl describe replicaset/...` shows comes from Events whose `regarding` is the
ReplicaSet, uid included: here a Deployment's pod keeps its image on its own registry (the
`if-present` mirror, a real registry, does not have it) and the Event lands on the
ReplicaSet. Events are aggregated per object and reason, never sent for a dry run, and a
failing or hung events API never fails or holds up an admission (the figures are printed).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver_standin import StandIn, event_problems, running_standin
from tests.conftest import RunningServer, eventually, pod_review, start_server, stop_server
from tests.registry_support import Registry, registry_fixture  # noqa: F401 - fixture
from tests.server.test_namespace_defaults import kubeconfig

ALIASES = "k8s.ksyun.com/kci-host-aliases"


def rs_owner(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name,
            "uid": f"uid-{name}", "controller": True, "blockOwnerDeletion": True}


def deployment_pod(replicaset: str, image: str) -> dict[str, Any]:
    """A pod as the ReplicaSet controller creates it: generateName, no name, no uid."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": f"{replicaset}-",
                         "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
                         "ownerReferences": [rs_owner(replicaset)]},
            "spec": {"containers": [{"name": "web", "image": image}]}}


def config(registry: Registry, creds: Path) -> str:
    return (f"mirrorChecks:\n  budgetSeconds: 2\nmirrors:\n"
            f"  - endpoint: {registry.url}\n    hosts: [docker.io]\n    policy: if-present\n"
            f"    caFile: {registry.ca_file}\n    pullCredentialConfigPath: {creds}\n")


@pytest.fixture
def served(tmp_path: Path, registry: Registry, request: pytest.FixtureRequest
           ) -> Iterator[tuple[StandIn, RunningServer]]:
    args = getattr(request, "param", ())
    creds = registry.docker_config(tmp_path / "config.json")
    with running_standin() as (state, api):
        state.set("team-a")
        state.set("broken", {ALIASES: "[{"})
        path = kubeconfig(tmp_path / "kubeconfig", api.api_client.configuration.host)
        server = start_server(tmp_path / "server", config(registry, creds),
                              args=("--kubeconfig", str(path), *args))
        try:
            assert state.wait_for_watchers(1)
            yield state, server
        finally:
            state.events_hang.set()
            stop_server(server)


def admit(server: RunningServer, obj: dict[str, Any], *, namespace: str = "team-a",
          dry_run: bool = False) -> tuple[dict[str, Any], float]:
    review = pod_review(obj, namespace=namespace)
    review["request"]["dryRun"] = dry_run
    started = time.perf_counter()
    reply = server.review(review)
    seconds = time.perf_counter() - started
    assert reply.status_code == 200
    return reply.json()["response"], seconds


def events_about(state: StandIn, name: str) -> list[dict[str, Any]]:
    with state.lock:
        return [e for e in state.events.values() if e["regarding"]["name"] == name]


def counter(server: RunningServer, result: str) -> float:
    with server.client() as client:
        text = client.get("/metrics").text
    found = re.search(rf'^kci_webhook_events_total\{{result="{result}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_the_replicaset_shows_why_its_pods_kept_an_upstream_image(
        served: tuple[StandIn, RunningServer]) -> None:
    state, server = served
    response, _ = admit(server, deployment_pod("web-7d4b9c", "docker.io/kci/not-mirrored:1.0"))
    assert response["allowed"] is True
    assert eventually(lambda: bool(events_about(state, "web-7d4b9c")))
    (event,) = events_about(state, "web-7d4b9c")
    assert event_problems(event, "team-a") == []
    assert event["regarding"] == {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                  "name": "web-7d4b9c", "namespace": "team-a",
                                  "uid": "uid-web-7d4b9c"}
    assert (event["type"], event["reason"], event["action"]) == (
        "Warning", "MirrorLacksImage", "KeepImage")
    assert event["note"] == ("pod web-7d4b9c-*: image kept on its own registry, the "
                             "if-present mirror does not have the image: web "
                             "(docker.io/kci/not-mirrored:1.0)")
    assert event["reportingController"] == "k8s.ksyun.com/kci-webhook"


def test_pods_of_one_replicaset_make_one_event_with_a_count(
        served: tuple[StandIn, RunningServer]) -> None:
    state, server = served
    for _ in range(3):
        admit(server, deployment_pod("api-5c8d7", "docker.io/kci/not-mirrored:1.0"))
    assert eventually(lambda: counter(server, "aggregated") == 2)
    (event,) = events_about(state, "api-5c8d7")
    assert event["series"]["count"] == 2      # the third is written within 30 s
    assert counter(server, "sent") == 1


def test_a_namespace_default_ignored_is_an_event_on_the_owner(
        served: tuple[StandIn, RunningServer]) -> None:
    state, server = served
    response, _ = admit(server, deployment_pod("db-6f9", "docker.io/kci/app:1.0"),
                        namespace="broken")
    assert response["warnings"][0].startswith(ALIASES)
    assert eventually(lambda: bool(events_about(state, "db-6f9")))
    assert [e["reason"] for e in events_about(state, "db-6f9")] == ["NamespaceDefaultIgnored"]


def test_a_dry_run_sends_nothing(served: tuple[StandIn, RunningServer]) -> None:
    state, server = served
    admit(server, deployment_pod("dry-1", "docker.io/kci/not-mirrored:1.0"), dry_run=True)
    admit(server, deployment_pod("wet-1", "docker.io/kci/not-mirrored:1.0"))
    assert eventually(lambda: bool(events_about(state, "wet-1")))   # queued after the dry one
    assert events_about(state, "dry-1") == []
    assert [r["body"]["regarding"]["name"] for r in state.event_requests()] == ["wet-1"]


@pytest.mark.parametrize("served", [("--events", "off")], indirect=True)
def test_events_off_sends_nothing(served: tuple[StandIn, RunningServer]) -> None:
    state, server = served
    admit(server, deployment_pod("off-1", "docker.io/kci/not-mirrored:1.0"))
    admit(server, deployment_pod("off-1", "docker.io/kci/not-mirrored:1.0"), namespace="broken")
    time.sleep(1)
    assert state.event_requests() == []


def latencies(server: RunningServer, count: int, prefix: str) -> list[float]:
    return [admit(server, deployment_pod(f"{prefix}-{i}", "docker.io/kci/not-mirrored:1.0"))[1]
            for i in range(count)]


@pytest.mark.parametrize("served", [("--events-queue-size", "4")], indirect=True)
def test_a_failing_or_hung_events_api_never_fails_or_holds_an_admission(
        served: tuple[StandIn, RunningServer]) -> None:
    state, server = served
    latencies(server, 3, "warm")                      # the mirror's answer is cached
    healthy = latencies(server, 20, "ok")
    state.event_failures = [500] * 20
    failing = latencies(server, 20, "fail")
    assert eventually(lambda: counter(server, "failed") > 0)
    state.events_hang.clear()                         # from now on no event call answers
    hung = latencies(server, 20, "hung")             # every one answered: behavioural
    assert eventually(lambda: counter(server, "dropped") > 0)
    print("\nadmission round trip with the events API healthy / answering 500 / hung "
          "(median, max ms over 20): "
          + "; ".join(f"{name} {statistics.median(s) * 1000:.1f}, {max(s) * 1000:.1f}"
                      for name, s in (("healthy", healthy), ("500", failing),
                                      ("hung", hung))))
    state.events_hang.set()
