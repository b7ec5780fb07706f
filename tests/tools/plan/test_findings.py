"""The pure steps of `plan`: units from listed objects, the server's mutation on each, and
one finding per container from the answers the shell brought (no I/O here: the answers
are given as a registry and the API server would give them)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import context, workload
from webhook.adapters.registry.manifest import Presence
from webhook.core.config import Config, config_from_data
from webhook.tools.plan.collect import units_of
from webhook.tools.plan.findings import (
    FINDINGS,
    Row,
    classify,
    mirror_questions,
    mutate_all,
    presence_answers,
    presence_questions,
    secrets_needed,
    survey_question,
)

MIRROR = "mirror.internal:5000"


def config(policy: str = "always", **extra: Any) -> Config:
    return config_from_data({"mirrors": [{"endpoint": f"https://{MIRROR}/v2/hub",
                                          "hosts": ["docker.io"], "pullSecret": "pull",
                                          "policy": policy}], **extra}, source="test")


def rows_of(objects: list[dict[str, Any]], cfg: Config, *,
            answers: dict[str, Presence] | None = None,
            secrets: dict[tuple[str, str], str | None] | None = None,
            ns: dict[str, str] | None = None) -> list[Row]:
    """The rows for `objects`, the mirror answering `answers` (repository:reference →
    Presence; present when not named), the Secrets `secrets` (existing when not named)."""
    units = [unit for obj in objects for unit in units_of(obj["kind"], [obj])]

    def context_for(namespace: str) -> Any:
        return context(cfg, namespace=namespace, ns=ns)

    def answer(question: tuple[Any, str, str]) -> Presence:
        return (answers or {}).get(f"{question[1]}:{question[2]}", Presence("present"))

    asked = presence_questions(units, context_for)
    given = {survey_question(q): answer(survey_question(q)) for q in asked}
    outcomes = mutate_all(units, context_for, presence=presence_answers(asked, given))
    given |= {q: answer(q) for q in mirror_questions(outcomes, cfg)}
    known = {pair: (secrets or {}).get(pair) for pair in secrets_needed(outcomes, cfg)}
    return classify(outcomes, cfg, answers=given, secrets=known)


def test_findings_are_in_their_order_of_severity() -> None:
    assert FINDINGS == ("deny", "missing-image", "missing-secret", "unreachable", "rewrite",
                        "unchanged", "excluded")


@pytest.mark.parametrize(("kind", "owner", "planned"), [
    pytest.param("ReplicaSet", None, True, id="replicaset-of-its-own"),
    pytest.param("ReplicaSet", "Deployment", False, id="deployments-replicaset"),
    pytest.param("Job", "CronJob", False, id="cronjobs-job"),
    pytest.param("Job", None, True, id="job-of-its-own"),
    pytest.param("Pod", "ReplicaSet", True, id="a-pod-is-always-planned"),
])
def test_what_a_controller_owns_is_planned_through_its_owner(
        kind: str, owner: str | None, planned: bool) -> None:
    units = list(units_of(kind, [workload(kind, "x", "nginx", owner=owner)]))
    assert bool(units) is planned


def test_a_cronjobs_template_becomes_the_pod_it_creates() -> None:
    unit, = units_of("CronJob", [workload("CronJob", "nightly", "nginx", namespace="ops",
                                          annotations={"a": "b"})])
    assert (unit.namespace, unit.kind, unit.name) == ("ops", "CronJob", "nightly")
    assert unit.pod["metadata"] == {"labels": {"app": "nightly"}, "annotations": {"a": "b"},
                                    "namespace": "ops"}
    assert unit.pod["spec"]["containers"] == [{"name": "c0", "image": "nginx"}]


def test_rewrite_unchanged_and_the_mirror_answers() -> None:
    rows = rows_of([workload("Pod", "p", "nginx:1.25", "quay.io/a/b:1", init=("busybox",))],
                   config(), answers={"hub/library/busybox:latest": Presence(
                       "absent", "manifest unknown (404)")})
    got = {row.container: (row.after, row.finding, row.role) for row in rows}
    assert got == {
        "i0": (f"{MIRROR}/hub/library/busybox", "missing-image", "init"),
        "c0": (f"{MIRROR}/hub/library/nginx:1.25", "rewrite", "container"),
        "c1": ("quay.io/a/b:1", "unchanged", "container"),
    }


def test_a_row_keeps_every_finding_the_most_severe_first() -> None:
    row, = rows_of([workload("Pod", "p", "nginx")], config(),
                   answers={"hub/library/nginx:latest": Presence("error", "connection refused")},
                   secrets={("team-a", "pull"): "pull Secret pull does not exist in namespace "
                                                "team-a"})
    assert (row.finding, row.also) == ("missing-secret", ("unreachable",))
    assert row.detail == ("pull Secret pull does not exist in namespace team-a; mirror "
                          f"{MIRROR}: connection refused")


def test_an_image_already_on_the_mirror_is_checked_there() -> None:
    row, = rows_of([workload("Pod", "p", f"{MIRROR}/hub/library/nginx:1.25")], config(),
                   answers={"hub/library/nginx:1.25": Presence("absent", "manifest unknown")})
    assert (row.image == row.after, row.finding) == (True, "missing-image")


def test_a_missing_image_pinned_by_digest_is_named_by_its_digest() -> None:
    digest = "sha256:" + "ab" * 32
    row, = rows_of([workload("Pod", "p", f"nginx@{digest}")], config(),
                   answers={f"hub/library/nginx:{digest}": Presence("absent", "manifest "
                                                                     "unknown (404)")})
    assert row.detail == (f"mirror {MIRROR} has no hub/library/nginx@{digest}: manifest "
                          "unknown (404)")


def test_an_if_present_mirror_that_cannot_be_asked_is_unreachable() -> None:
    row, = rows_of([workload("Pod", "p", "nginx")], config("if-present"),
                   answers={"hub/library/nginx:latest": Presence("error", "timeout after 5s")})
    assert (row.after, row.finding) == ("nginx", "unreachable")
    assert row.detail.startswith(f"mirror {MIRROR} (policy: if-present): timeout after 5s; "
                                 "the webhook keeps the image when it cannot ask")


def test_a_denied_pod_denies_every_container_with_the_webhooks_message() -> None:
    rows = rows_of([workload("Deployment", "d", "nginx", init=("busybox",), annotations={
        "k8s.ksyun.com/kci-http-registry": "http://x"})], config())
    assert {(row.finding, row.after) for row in rows} == {("deny", "nginx"),
                                                          ("deny", "busybox")}
    assert rows[0].detail.startswith("k8s.ksyun.com/kci-http-registry (pod):")


def test_a_pod_not_shaped_like_a_pod_is_denied_not_a_crash() -> None:
    broken = workload("Pod", "p", "nginx")
    broken["spec"]["imagePullSecrets"] = "pull"
    row, = rows_of([broken], config())
    assert (row.finding, row.detail) == ("deny", "spec.imagePullSecrets: expected a list of "
                                                 "objects")


def test_an_excluded_namespace_and_the_mirror_switch() -> None:
    rows = rows_of([workload("Pod", "p", "nginx", namespace="kube-system"),
                    workload("Pod", "q", "nginx", annotations={"kci-webhook/mirrors": "off"})],
                   config())
    assert [(row.name, row.finding) for row in rows] == [("p", "excluded"), ("q", "unchanged")]


def test_namespace_defaults_apply_as_the_server_applies_them() -> None:
    row, = rows_of([workload("Pod", "p", "nginx")], config(),
                   ns={"kci-webhook/mirrors": "off"})
    assert row.finding == "unchanged"


def test_an_ephemeral_container_the_pod_cannot_pull_from_the_mirror_is_kept_and_says_why(
        ) -> None:
    row = rows_of([workload("Pod", "p", "quay.io/a/b:1", ephemeral=("busybox",))],
                  config())[-1]
    assert (row.role, row.after, row.finding) == ("ephemeral", "busybox", "unchanged")
    assert "needs the pull secret 'pull', which this pod does not have" in row.detail


def test_the_mirror_is_asked_each_image_once() -> None:
    units = [unit for i in range(3)
             for unit in units_of("Pod", [workload("Pod", f"p{i}", "nginx", "redis")])]
    cfg = config()

    def context_for(namespace: str) -> Any:
        return context(cfg, namespace=namespace)

    outcomes = mutate_all(units, context_for, presence={})
    assert sorted(q[1] for q in mirror_questions(outcomes, cfg)) == [
        "hub/library/nginx", "hub/library/redis"]
    assert secrets_needed(outcomes, cfg) == [("team-a", "pull")]

