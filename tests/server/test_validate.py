"""`/validate`: workload pod templates get the same checks, and messages, as pods."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from tests.conftest import RunningServer, pod_review
from webhook.core.mutation.writeback import annotations_bytes
from webhook.core.values.size import MAX_ANNOTATIONS_BYTES

BAD_ALIASES = '[{"ip":"1.2.3","hostnames":["www.privaterepo1.com"]}]'
POD_MESSAGE = ('k8s.ksyun.com/kci-host-aliases (pod): item 1: "ip": "1.2.3" is not an IPv4 or '
               "IPv6 address")
DOC_ANNOTATIONS = {
    "k8s.ksyun.com/kci-dns-config": '{"nameservers":["1.1.1.1"],"options":[{"name":"ndots",'
                                    '"value":"2"},{"name":"timeout","value":"3"}],'
                                    '"searches":["test1.com"]}',
    "k8s.ksyun.com/kci-host-aliases": '[{"ip":"1.2.3.4","hostnames":["www.privaterepo1.com"]},'
                                      '{"ip":"2.3.4.5","hostnames":["www.privaterepo2.com"]}]',
}


def template(annotations: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "nginx"}, "annotations": dict(annotations)},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}


def workload(kind: str, annotations: dict[str, str]) -> dict[str, Any]:
    group = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    spec: dict[str, Any] = {"template": template(annotations)}
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": spec}}
    return {"apiVersion": group, "kind": kind, "metadata": {"name": "nginx-rbkci"},
            "spec": spec}


def review(obj: dict[str, Any], *, operation: str = "CREATE",
           old: dict[str, Any] | None = None) -> dict[str, Any]:
    kind = obj["kind"]
    body = pod_review(obj, operation=operation, kind=kind, resource=kind.lower() + "s")
    body["request"]["kind"]["group"] = obj["apiVersion"].split("/")[0]
    body["request"]["oldObject"] = old
    return body


def answer(server: RunningServer, body: dict[str, Any]) -> dict[str, Any]:
    with server.client() as client:
        reply = client.post("/validate", content=orjson.dumps(body),
                            headers={"content-type": "application/json"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["response"]["uid"] == body["request"]["uid"]
    return reply.json()["response"]  # type: ignore[no-any-return]


KINDS = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"]


@pytest.mark.parametrize("kind", KINDS)
def test_valid_template_is_admitted(webhook_server: RunningServer, kind: str) -> None:
    response = answer(webhook_server, review(workload(kind, DOC_ANNOTATIONS)))
    assert response["allowed"] is True and "patch" not in response


INVALID = [
    ("k8s.ksyun.com/kci-host-aliases", BAD_ALIASES, POD_MESSAGE),
    ("k8s.ksyun.com/kci-dns-config", '{"nameserver":["1.1.1.1"]}',
     'k8s.ksyun.com/kci-dns-config (pod): unknown key "nameserver"'),
    ("k8s.ksyun.com/kci-http-registry", "http://192.168.1.5:5000",
     "k8s.ksyun.com/kci-http-registry (pod): entry 1"),
    ("k8s.ksyun.com/kci-insecure-registry", "harbor.example.com/library",
     "k8s.ksyun.com/kci-insecure-registry (pod): entry 1"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("key", "value", "message"), INVALID,
                         ids=[i[0].split("/")[1] for i in INVALID])
def test_each_invalid_annotation_is_refused_with_the_pod_message(
        webhook_server: RunningServer, kind: str, key: str, value: str, message: str) -> None:
    response = answer(webhook_server, review(workload(kind, {key: value})))
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(message)
    # the same words a pod with that annotation gets from /mutate
    pod = {"metadata": {"name": "p", "annotations": {key: value}},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    mutate_reply = webhook_server.review(pod_review(pod)).json()["response"]
    assert mutate_reply["status"]["message"] == response["status"]["message"]


@pytest.mark.parametrize(("kind", "api_version"), [
    ("ConfigMap", "v1"), ("Service", "v1"), ("Pod", "v1"), ("Ingress", "networking.k8s.io/v1"),
])
def test_non_workload_kinds_are_admitted(webhook_server: RunningServer, kind: str,
                                         api_version: str) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {
        "name": "x", "annotations": {"k8s.ksyun.com/kci-host-aliases": BAD_ALIASES}}}
    assert answer(webhook_server, review(obj))["allowed"] is True


def test_update_that_introduces_a_bad_annotation_is_refused(
        webhook_server: RunningServer) -> None:
    old = workload("Deployment", DOC_ANNOTATIONS)
    new = workload("Deployment", {"k8s.ksyun.com/kci-host-aliases": BAD_ALIASES})
    response = answer(webhook_server, review(new, operation="UPDATE", old=old))
    assert response["allowed"] is False


def test_update_of_an_object_that_already_had_it_is_admitted_with_a_warning(
        webhook_server: RunningServer) -> None:
    old = workload("Deployment", {"k8s.ksyun.com/kci-host-aliases": BAD_ALIASES})
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"tier": "web"}
    response = answer(webhook_server, review(new, operation="UPDATE", old=old))
    assert response["allowed"] is True
    assert response["warnings"] == [POD_MESSAGE]


def test_delete_and_subresources_are_admitted(webhook_server: RunningServer) -> None:
    body = review(workload("Deployment", {"k8s.ksyun.com/kci-host-aliases": BAD_ALIASES}),
                  operation="DELETE")
    assert answer(webhook_server, body)["allowed"] is True
    body = review(workload("Deployment", {"k8s.ksyun.com/kci-host-aliases": BAD_ALIASES}))
    body["request"]["subResource"] = "scale"
    assert answer(webhook_server, body)["allowed"] is True


# --- UPDATE: refused when this edit makes the pods deniable, whatever field it touches -----

TWO_NAMESERVERS = {"k8s.ksyun.com/kci-dns-config": '{"nameservers":["1.1.1.1","2.2.2.2"]}'}
FILLER = "example.com/filler"


def deployment(annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    obj = workload("Deployment", annotations)
    obj["spec"]["template"]["spec"].update(spec)
    return obj


def over_the_limit_once_written_back(annotations: dict[str, str]) -> dict[str, str]:
    """`annotations` plus a filler that leaves them 8 bytes under 256 KiB as sent: the
    image rewrite's record of the original image then takes them over."""
    filled = {**annotations, FILLER: ""}
    room = MAX_ANNOTATIONS_BYTES - 8 - annotations_bytes(filled)
    return {**annotations, FILLER: "x" * room}


UPDATES = [
    # (id, old template, new template, allowed, warned with the denial)
    ("spec-dns-edit-takes-the-merge-over-3-nameservers",
     deployment(TWO_NAMESERVERS, dnsConfig={"nameservers": ["8.8.8.8"]}),
     deployment(TWO_NAMESERVERS, dnsConfig={"nameservers": ["8.8.8.8", "9.9.9.9"]}),
     False, False),
    ("other-annotation-takes-the-write-back-over-256-kib",
     deployment(DOC_ANNOTATIONS),
     deployment(over_the_limit_once_written_back(DOC_ANNOTATIONS)), False, False),
    ("both-denied-stays-editable",
     deployment(TWO_NAMESERVERS, dnsConfig={"nameservers": ["8.8.8.8", "9.9.9.9"]}),
     deployment(TWO_NAMESERVERS, dnsConfig={"nameservers": ["8.8.8.8", "9.9.9.9"]},
                nodeSelector={"tier": "web"}), True, True),
    ("edit-that-removes-the-problem",
     deployment(TWO_NAMESERVERS, dnsConfig={"nameservers": ["8.8.8.8", "9.9.9.9"]}),
     deployment(TWO_NAMESERVERS, dnsConfig={"nameservers": ["8.8.8.8"]}), True, False),
    ("spec-dns-edit-within-the-limit",
     deployment(TWO_NAMESERVERS),
     deployment(TWO_NAMESERVERS, dnsConfig={"nameservers": ["8.8.8.8"]}), True, False),
]


@pytest.mark.parametrize(("old", "new", "allowed", "warned"), [u[1:] for u in UPDATES],
                         ids=[u[0] for u in UPDATES])
def test_update_is_refused_when_the_new_template_is_denied_and_the_old_was_not(
        webhook_server: RunningServer, old: dict[str, Any], new: dict[str, Any],
        allowed: bool, warned: bool) -> None:
    response = answer(webhook_server, review(new, operation="UPDATE", old=old))
    assert response["allowed"] is allowed
    create = answer(webhook_server, review(new))          # the same object created afresh
    if not allowed:
        assert response["status"]["message"] == create["status"]["message"]
    assert (create["allowed"] is False and create["status"]["message"]
            in response.get("warnings", [])) is warned
