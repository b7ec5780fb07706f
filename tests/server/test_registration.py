"""The webhook configurations, end to end: shipped inert, activated by a serving replica.

`kci-webhook serve` runs against the stand-in API server holding the two configurations
exactly as manifests/base ships them (the chart's render). They stay inert while no
replica serves (a refused config never gets one there); a replica that answered ready
makes them active; the selector follows the config's exclude list on reload; a
`kubectl apply` of the inert manifests is undone; an API error is retried and shown in
/readyz without stopping the server; and no other object is ever read or written.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.apiserver_standin import StandIn, running_standin
from tests.conftest import RunningServer, eventually, start_server, stop_server
from tests.server.test_namespace_defaults import kubeconfig

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests" / "base"
NAME = "kci-webhook"
OWN_NAMESPACE = "kci-webhook"
MUTATING_PATH = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{NAME}"
VALIDATING_PATH = f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{NAME}"
KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
CONFIG = "exclude:\n  namespaces: [kube-system, kube-public]\n"
REGISTRATION_ENV = {
    "KCI_WEBHOOK_REGISTER_MUTATING": NAME, "KCI_WEBHOOK_CREATE_FAILURE_POLICY": "Fail",
    "KCI_WEBHOOK_UPDATE_FAILURE_POLICY": "Ignore", "KCI_WEBHOOK_REGISTER_VALIDATING": NAME,
    "KCI_WEBHOOK_VALIDATING_FAILURE_POLICY": "Ignore", "POD_NAMESPACE": OWN_NAMESPACE,
    # Short, so that a test sees a resync without waiting 10 s.
    "KCI_WEBHOOK_REGISTRATION_RESYNC_SECONDS": "0.3",
}


def shipped(kind: str) -> dict[str, Any]:
    """The configuration as `kubectl apply -k manifests/base` creates it."""
    file = {"MutatingWebhookConfiguration": "mutatingwebhookconfiguration.yaml",
            "ValidatingWebhookConfiguration": "validatingwebhookconfiguration.yaml"}[kind]
    loaded: dict[str, Any] = yaml.safe_load((BASE / file).read_text())
    assert loaded["kind"] == kind
    return loaded


def without_activation(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with what activation may change taken out: the rest must be as shipped."""
    obj = copy.deepcopy(obj)
    obj["metadata"] = {k: v for k, v in obj["metadata"].items()
                       if k not in {"resourceVersion", "generation", "uid"}}
    for hook in obj["webhooks"]:
        hook.pop("failurePolicy")
        hook["namespaceSelector"]["matchExpressions"] = [
            t for t in hook["namespaceSelector"]["matchExpressions"]
            if t["key"] != "kubernetes.io/metadata.name"]
    return obj


def excluded(*extra: str) -> dict[str, Any]:
    return {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": sorted({"kube-system", "kube-public", OWN_NAMESPACE, *extra})}


def readyz(server: RunningServer) -> httpx.Response:
    with server.client() as client:
        return client.get("/readyz")


def registration(server: RunningServer) -> dict[str, Any]:
    return readyz(server).json()["detail"]["registration"]  # type: ignore[no-any-return]


def is_active(state: StandIn, *extra: str) -> bool:
    mutating = state.configuration("MutatingWebhookConfiguration", NAME)
    validating = state.configuration("ValidatingWebhookConfiguration", NAME)
    hooks = [*mutating["webhooks"], *validating["webhooks"]]
    return all(h["namespaceSelector"]["matchExpressions"][0] == excluded(*extra)
               for h in hooks) and [h["failurePolicy"] for h in hooks] == [
        "Fail", "Ignore", "Ignore"]


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[StandIn, Path]]:
    with running_standin() as (state, api):
        for kind in KINDS:
            state.put_configuration(shipped(kind))
        state.requests.clear()
        yield state, kubeconfig(tmp_path / "kubeconfig", api.api_client.configuration.host)


@pytest.fixture
def serving(standin: tuple[StandIn, Path], tmp_path: Path
            ) -> Iterator[tuple[StandIn, RunningServer]]:
    state, config = standin
    server = start_server(tmp_path / "server", CONFIG, env=REGISTRATION_ENV,
                          args=("--kubeconfig", str(config)))
    try:
        yield state, server
    finally:
        stop_server(server)


def test_inert_until_the_replica_answers_ready_then_active(
    serving: tuple[StandIn, RunningServer],
) -> None:
    state, server = serving
    # Listening, but not yet asked whether it is ready: the configurations stay inert.
    assert state.admission_requests() == []
    assert registration(server)["configurations"] == [
        f"MutatingWebhookConfiguration {NAME}", f"ValidatingWebhookConfiguration {NAME}"]
    assert eventually(lambda: is_active(state))
    assert eventually(lambda: registration(server)["state"] == "active")
    mutating = state.configuration("MutatingWebhookConfiguration", NAME)
    create, update = mutating["webhooks"]
    assert (create["name"], create["failurePolicy"]) == ("mutate.kci-webhook.ksyun.com", "Fail")
    assert (update["name"], update["failurePolicy"]) == (
        "mutate-updates.kci-webhook.ksyun.com", "Ignore")
    # Everything but the selector's name term and the failurePolicy is as shipped.
    for kind in KINDS:
        assert without_activation(state.configuration(kind, NAME)) == without_activation(
            shipped(kind))


def test_nothing_but_the_two_configurations_is_touched(
    serving: tuple[StandIn, RunningServer],
) -> None:
    state, server = serving
    readyz(server)
    assert eventually(lambda: is_active(state))
    assert eventually(lambda: len(state.admission_requests()) >= 6)   # resyncs ran too
    requests = state.admission_requests()
    assert {(r["method"], r["path"]) for r in requests} == {
        ("GET", MUTATING_PATH), ("GET", VALIDATING_PATH),
        ("PATCH", MUTATING_PATH), ("PATCH", VALIDATING_PATH)}
    patches = [r for r in requests if r["method"] == "PATCH"]
    # Once each: a resync that finds them active reads and writes nothing more.
    assert sorted(r["path"] for r in patches) == [MUTATING_PATH, VALIDATING_PATH]
    for patch in patches:
        assert patch["contentType"] == "application/strategic-merge-patch+json"
        assert patch["fieldManager"] == ["kci-webhook"]
        # Only the selector and the failurePolicy of entries named by their merge key,
        # under the resourceVersion they were read at.
        assert set(patch["body"]) == {"metadata", "webhooks"}
        assert set(patch["body"]["metadata"]) == {"resourceVersion"}
        for entry in patch["body"]["webhooks"]:
            assert set(entry) == {"name", "namespaceSelector", "failurePolicy"}


def test_the_selector_follows_the_exclude_list_on_reload(
    serving: tuple[StandIn, RunningServer], tmp_path: Path,
) -> None:
    state, server = serving
    readyz(server)
    assert eventually(lambda: is_active(state))
    (tmp_path / "server" / "config.yaml").write_text(
        "exclude:\n  namespaces: [kube-system, kube-public, calico-system, cert-manager]\n")
    assert eventually(lambda: is_active(state, "calico-system", "cert-manager"))
    assert registration(server)["state"] == "active"


def test_a_reapplied_inert_manifest_is_activated_again(
    serving: tuple[StandIn, RunningServer],
) -> None:
    state, server = serving
    readyz(server)
    assert eventually(lambda: is_active(state))
    for kind in KINDS:                   # `kubectl apply -k manifests/base` once more
        state.put_configuration(shipped(kind))
    assert not is_active(state)
    assert eventually(lambda: is_active(state))


@pytest.mark.parametrize("status", [403, 500, 409])
def test_an_api_error_is_retried_and_shown_and_the_server_keeps_serving(
    serving: tuple[StandIn, RunningServer], status: int,
) -> None:
    state, server = serving
    state.patch_failures = [status] * 3
    reply = readyz(server)
    assert reply.status_code == 200
    assert eventually(lambda: registration(server)["state"] == "retrying")
    detail = registration(server)
    assert detail["lastError"] == f"API server answered {status} " + {
        403: "Forbidden", 500: "Internal Server Error", 409: "Conflict"}[status]
    assert readyz(server).status_code == 200      # still serving admissions
    assert eventually(lambda: is_active(state))   # retried until it took
    assert eventually(lambda: registration(server)["state"] == "active")
    assert "lastError" not in registration(server)
    assert server.process.poll() is None
    assert "cannot activate the webhook configurations" in server.log.read_text()


def test_a_configuration_that_is_missing_is_reported_not_fatal(
    standin: tuple[StandIn, Path], tmp_path: Path,
) -> None:
    state, config = standin
    with state.lock:
        del state.configurations[("validatingwebhookconfigurations", NAME)]
    server = start_server(tmp_path / "server", CONFIG, env=REGISTRATION_ENV,
                          args=("--kubeconfig", str(config)))
    try:
        assert readyz(server).status_code == 200
        assert eventually(lambda: registration(server).get("lastError") ==
                          "API server answered 404 Not Found")
        assert readyz(server).status_code == 200 and server.process.poll() is None
    finally:
        stop_server(server)


def test_a_replica_that_never_serves_leaves_them_inert(
    standin: tuple[StandIn, Path], tmp_path: Path,
) -> None:
    """A first install with a config `serve` refuses: every replica exits, nothing calls
    the webhook, and pod creation elsewhere carries on."""
    state, config = standin
    with pytest.raises(RuntimeError, match="exited 2"):
        start_server(tmp_path / "server", "mirrors:\n  - endpoint: ftp://m.example\n"
                     "    hosts: [docker.io]\n", env=REGISTRATION_ENV,
                     args=("--kubeconfig", str(config)))
    assert state.admission_requests() == []
    for kind in KINDS:
        assert state.configuration(kind, NAME)["webhooks"] == shipped(kind)["webhooks"]


def test_a_failure_policy_serve_cannot_use_is_refused_at_start(
    standin: tuple[StandIn, Path], tmp_path: Path,
) -> None:
    state, config = standin
    env = {**REGISTRATION_ENV, "KCI_WEBHOOK_CREATE_FAILURE_POLICY": "fail"}
    with pytest.raises(RuntimeError, match="KCI_WEBHOOK_CREATE_FAILURE_POLICY"):
        start_server(tmp_path / "server", CONFIG, env=env, args=("--kubeconfig", str(config)))
    assert state.admission_requests() == []


def test_without_the_setting_nothing_is_registered(
    standin: tuple[StandIn, Path], tmp_path: Path,
) -> None:
    state, config = standin
    server = start_server(tmp_path / "server", CONFIG, env={"POD_NAMESPACE": OWN_NAMESPACE},
                          args=("--kubeconfig", str(config)))
    try:
        reply = readyz(server)
        assert reply.status_code == 200 and "registration" not in reply.json()["detail"]
        assert eventually(lambda: state.wait_for_watchers(1, timeout=0.1))
        assert state.admission_requests() == []
    finally:
        stop_server(server)
