"""The cluster reader of `plan`: the real `kubernetes` client against the API server
stand-in — Lists read page by page through `continue`, 403 and 404 as answers, a cluster
that cannot be found or reached as one error that says why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiserver_standin import StandIn, running_standin
from tests.builders import kubeconfig, workload
from webhook.adapters.cluster import Cluster, ClusterError, Forbidden, NotFound, connect


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[StandIn, Cluster]]:
    """A stand-in and the reader connected to it through a kubeconfig, as a user runs it."""
    with running_standin() as (state, api):
        path = kubeconfig(tmp_path / "kubeconfig", api.api_client.configuration.host)
        yield state, connect(kubeconfig=str(path), environ={})


def test_a_list_is_read_page_by_page_through_continue(
        standin: tuple[StandIn, Cluster]) -> None:
    state, cluster = standin
    for index in range(5):
        state.put(workload("Pod", f"p{index}", "nginx", namespace="team-a"))
    state.put(workload("Pod", "elsewhere", "nginx", namespace="team-b"))
    names = [p["metadata"]["name"] for p in cluster.objects("Pod", "team-a", page_size=2)]
    assert names == ["p0", "p1", "p2", "p3", "p4"]
    asked = [r for r in state.requests if r["path"] == "/api/v1/namespaces/team-a/pods"]
    assert [r["limit"] for r in asked] == [["2"]] * 3
    assert [r.get("continue") is not None for r in asked] == [False, True, True]


def test_a_list_across_all_namespaces(standin: tuple[StandIn, Cluster]) -> None:
    state, cluster = standin
    state.put(workload("Deployment", "web", "nginx", namespace="team-a"))
    state.put(workload("Deployment", "api", "nginx", namespace="team-b"))
    listed = list(cluster.objects("Deployment"))
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in listed] == [
        ("team-a", "web"), ("team-b", "api")]
    assert state.requests[-1]["path"] == "/apis/apps/v1/deployments"


def test_a_403_is_forbidden_with_the_api_servers_words(
        standin: tuple[StandIn, Cluster]) -> None:
    state, cluster = standin
    state.forbidden.add("locked")
    with pytest.raises(Forbidden) as refused:
        list(cluster.objects("Job", "locked"))
    assert str(refused.value).startswith("jobs in namespace locked: forbidden: jobs is "
                                         'forbidden: User "jane" cannot list')


def test_a_missing_object_is_not_found_and_a_missing_secret_is_false(
        standin: tuple[StandIn, Cluster]) -> None:
    state, cluster = standin
    state.put({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
               "metadata": {"name": "mirror-pull", "namespace": "team-a"},
               "data": {".dockerconfigjson": "e30="}})
    assert cluster.secret_exists("team-a", "mirror-pull") is True
    assert cluster.secret_exists("team-b", "mirror-pull") is False
    asked = [r for r in state.requests if "/secrets/" in r["path"]]
    assert all("as=PartialObjectMetadata" in r["accept"] for r in asked)   # never its data
    with pytest.raises(NotFound):
        cluster.config_map("kci-webhook", "kci-webhook-config")
    with pytest.raises(NotFound):
        cluster.namespace("nowhere")


def test_a_secret_that_may_not_be_read_is_forbidden(standin: tuple[StandIn, Cluster]) -> None:
    state, cluster = standin
    state.forbidden_reads.add(("team-a", "Secret"))
    with pytest.raises(Forbidden, match="secret team-a/mirror-pull: forbidden"):
        cluster.secret_exists("team-a", "mirror-pull")


def test_no_cluster_found_says_what_was_looked_for() -> None:
    with pytest.raises(ClusterError, match="no cluster to read: no --kubeconfig, KUBECONFIG"):
        connect(kubeconfig=None, environ={}, exists=lambda _path: False)


def test_an_api_server_that_does_not_answer_is_a_cluster_error(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1")
    cluster = connect(kubeconfig=str(path), environ={})
    with pytest.raises(ClusterError, match=r"API server http://127.0.0.1:1 .*cannot reach it"):
        cluster.namespaces()
