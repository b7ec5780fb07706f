"""Namespace defaults end to end: `kci-webhook serve --kubeconfig` against the stand-in API.

The server watches Namespaces through the real `kubernetes` client; pods get their
namespace's defaults; when the API goes away, admissions keep being answered with the
last known values, and /readyz and /metrics say the cache is degraded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver_standin import StandIn, running_standin
from tests.conftest import (
    RunningServer,
    apply_response_patch,
    eventually,
    pod_review,
    start_server,
    stop_server,
)

ALIASES = "k8s.ksyun.com/kci-host-aliases"
CONFIG = """
mirrors:
  - endpoint: https://mirror.example:5000/v2/cache
    hosts: [docker.io]
"""




def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "not-checked"}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "tester"}}],
    }))
    return path


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[StandIn, RunningServer]]:
    with running_standin() as (state, api):
        state.set("team-a", {
            ALIASES: '[{"ip":"10.0.0.2","hostnames":["registry.team-a.example"]}]',
            "kci-webhook/image-pull-secrets": "team-a-pull"})
        state.set("quiet", {"kci-webhook/mirrors": "off"})
        state.set("broken", {ALIASES: "[{"})
        config = kubeconfig(tmp_path / "kubeconfig", api.api_client.configuration.host)
        server = start_server(tmp_path / "server", CONFIG, args=("--kubeconfig", str(config)))
        try:
            assert state.wait_for_watchers(1)
            yield state, server
        finally:
            stop_server(server)


def admitted(server: RunningServer, namespace: str, **annotations: str) -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "annotations": dict(annotations)},
           "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}
    review = pod_review(pod, namespace=namespace)
    reply = server.review(review)
    assert reply.status_code == 200
    response = reply.json()["response"]
    return {"response": response, "pod": apply_response_patch(review, response)}


def readiness(server: RunningServer) -> dict[str, Any]:
    with server.client() as client:
        return client.get("/readyz").json()["detail"]["namespaces"]  # type: ignore[no-any-return]


def test_pods_get_their_namespace_defaults(watched: tuple[StandIn, RunningServer]) -> None:
    _, server = watched
    pod = admitted(server, "team-a")["pod"]
    assert pod["spec"]["hostAliases"] == [{"ip": "10.0.0.2",
                                           "hostnames": ["registry.team-a.example"]}]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "team-a-pull"}]
    assert pod["spec"]["containers"][0]["image"] == "mirror.example:5000/cache/library/nginx:1.25"


def test_namespace_off_disables_rewriting_even_if_the_pod_says_on(
        watched: tuple[StandIn, RunningServer]) -> None:
    _, server = watched
    pod = admitted(server, "quiet", **{"kci-webhook/mirrors": "on"})["pod"]
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.25"


def test_invalid_namespace_annotation_warns_on_each_pod_and_never_denies(
        watched: tuple[StandIn, RunningServer]) -> None:
    _, server = watched
    for _ in range(2):
        response = admitted(server, "broken")["response"]
        assert response["allowed"] is True
        assert response["warnings"][0].startswith(
            "k8s.ksyun.com/kci-host-aliases (namespace broken): invalid JSON")
    log = server.log.read_text()
    assert log.count("invalid namespace annotation") == 1     # once per change, not per pod
    with server.client() as client:
        scrape = client.get("/metrics").text
    assert ('kci_webhook_namespace_invalid_annotations_total{annotation='
            '"k8s.ksyun.com/kci-host-aliases"} 1.0') in scrape


def test_changes_reach_admission_without_a_restart(
        watched: tuple[StandIn, RunningServer]) -> None:
    state, server = watched
    state.set("team-a", {ALIASES: '[{"ip":"10.9.9.9","hostnames":["new.example"]}]'})
    assert eventually(lambda: admitted(server, "team-a")["pod"]["spec"].get("hostAliases")
                      == [{"ip": "10.9.9.9", "hostnames": ["new.example"]}])


def test_api_down_admissions_keep_the_last_known_values(
        watched: tuple[StandIn, RunningServer]) -> None:
    state, server = watched
    assert readiness(server)["state"] == "synced"
    state.list_status = 503
    state.drop()
    assert eventually(lambda: readiness(server)["state"] == "degraded")
    pod = admitted(server, "team-a")["pod"]
    assert pod["spec"]["hostAliases"][0]["ip"] == "10.0.0.2"
    with server.client() as client:
        assert client.get("/readyz").status_code == 200         # degraded, still serving
        scrape = client.get("/metrics").text
    assert 'kci_webhook_namespace_cache_state{state="degraded"} 1.0' in scrape
    state.list_status = 200
    assert eventually(lambda: readiness(server)["state"] == "synced")
