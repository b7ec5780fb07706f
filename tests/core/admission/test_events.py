"""Which Events an admission asks for, and about which objects: the owner from
`ownerReferences` (ReplicaSet, Job), the pod by name, never on a dry run."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import context, pod
from tests.conftest import pod_review
from webhook.core.admission.envelope import Decision
from webhook.core.admission.events import EventIntent, Regarding, regarding_for
from webhook.core.admission.pipeline import admit, answer_from
from webhook.core.config import load_config

CONFIG = load_config("""
onInvalid: warn
mirrors:
  - endpoint: https://cache.example:5000
    hosts: [docker.io]
    policy: if-present
""", source="test")
CACHE = "https://cache.example:5000"
RS_UID = "6a5f4f5e-1111-4222-8333-444455556666"
JOB_UID = "0c9c0bb1-aaaa-4bbb-8ccc-dddddddddddd"
REPLICASET = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
              "uid": RS_UID, "controller": True, "blockOwnerDeletion": True}
JOB = {"apiVersion": "batch/v1", "kind": "Job", "name": "nightly-28472", "uid": JOB_UID,
       "controller": True, "blockOwnerDeletion": True}


def from_controller(owner: dict[str, Any]) -> dict[str, Any]:
    """A pod as a controller creates it: a generated name, no name, no uid."""
    created = pod("nginx:1.25")
    meta = created["metadata"]
    del meta["name"]
    meta["generateName"] = owner["name"] + "-"
    meta["ownerReferences"] = [owner]
    return created


def decide(obj: dict[str, Any], *, dry_run: bool = False,
           present: bool = False, annotations: dict[str, str] | None = None) -> Decision:
    if annotations:
        obj = copy.deepcopy(obj)
        obj["metadata"]["annotations"] = annotations
    review = pod_review(obj, namespace="team-a")
    review["request"]["dryRun"] = dry_run
    ask = answer_from({(CACHE, "nginx:1.25"): (present, "" if present else
                                               "does not have it (404 Not Found)")})
    return asyncio.run(admit(orjson.dumps(review), ask=ask,
                             context_for=lambda ns: context(CONFIG, namespace=ns)))


@pytest.mark.parametrize(("owner", "regarding"), [
    (REPLICASET, Regarding("apps/v1", "ReplicaSet", "web-7d4b9c", "team-a", RS_UID)),
    (JOB, Regarding("batch/v1", "Job", "nightly-28472", "team-a", JOB_UID)),
])
def test_a_controllers_pod_puts_the_event_on_its_owner(owner: dict[str, Any],
                                                       regarding: Regarding) -> None:
    decision = decide(from_controller(owner))
    assert [(e.regarding, e.reason, e.action, e.type) for e in decision.events] == [
        (regarding, "MirrorLacksImage", "KeepImage", "Warning")]
    note = decision.events[0].note
    assert note == (f"pod {owner['name']}-*: image kept on its own registry, the if-present "
                    "mirror does not have the image: c0 (nginx:1.25)")


def test_a_bare_pod_gets_the_event_by_name() -> None:
    decision = decide(pod("nginx:1.25"))
    assert [e.regarding for e in decision.events] == [
        Regarding("v1", "Pod", "p", "team-a", "")]


def test_a_named_pod_with_an_owner_gets_it_on_both() -> None:
    named = from_controller(REPLICASET)
    named["metadata"]["name"] = "web-7d4b9c-x2k9q"
    assert [e.regarding.kind for e in decide(named).events] == ["ReplicaSet", "Pod"]


def test_the_controller_is_chosen_among_owners() -> None:
    other = {"apiVersion": "example.com/v1", "kind": "Keeper", "name": "k", "uid": "u-1"}
    created = from_controller(REPLICASET)
    created["metadata"]["ownerReferences"] = [other, REPLICASET]
    assert decide(created).events[0].regarding.kind == "ReplicaSet"


def test_nothing_on_a_dry_run() -> None:
    decision = decide(from_controller(REPLICASET), dry_run=True)
    assert decision.words == {"c0": "kept:absent"} and decision.events == ()


def test_nothing_when_all_went_well() -> None:
    assert decide(from_controller(REPLICASET), present=True).events == ()


def test_an_annotation_ignored_under_warn_is_an_event() -> None:
    decision = decide(from_controller(REPLICASET), present=True,
                      annotations={"k8s.ksyun.com/kci-dns-config": "not json"})
    (event,) = decision.events
    assert (event.reason, event.action) == ("AnnotationIgnored", "IgnoreAnnotation")
    assert event.note.startswith("pod web-7d4b9c-*: annotation ignored (onInvalid: warn): "
                                 "k8s.ksyun.com/kci-dns-config (pod): ")


def test_a_namespace_default_ignored_is_an_event() -> None:
    created = from_controller(REPLICASET)
    review = pod_review(created, namespace="team-a")
    decision = asyncio.run(admit(orjson.dumps(review), ask=answer_from({}), context_for=(
        lambda ns: context(CONFIG, namespace=ns,
                           ns={"k8s.ksyun.com/kci-host-aliases": "[{"}))))
    reasons = [e.reason for e in decision.events]
    assert "NamespaceDefaultIgnored" in reasons


def test_a_node_owner_is_cluster_scoped_and_skipped() -> None:
    mirror_pod = {"metadata": {"name": "etcd-node-1", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "n-1",
         "controller": True}]}}
    assert regarding_for(mirror_pod, "team-a") == [
        Regarding("v1", "Pod", "etcd-node-1", "team-a", "")]


@pytest.mark.parametrize("name", ["a..b", "-web", "web.", "Web", "a" * 254, "", "web/x"])
def test_a_name_the_api_would_refuse_is_no_target(name: str) -> None:
    owner = {**REPLICASET, "name": name}
    assert regarding_for({"metadata": {"name": name, "ownerReferences": [owner]}},
                         "team-a") == []


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=300),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["apiVersion", "kind", "name", "uid",
                                                       "controller"]) | st.text(max_size=5),
                                      inner, max_size=6), max_leaves=20))
def test_hostile_owner_references_never_make_an_invalid_regarding(references: Any) -> None:
    for target in regarding_for({"metadata": {"ownerReferences": references}}, "team-a"):
        assert 0 < len(target.name) <= 253 and target.name == target.name.lower()
        assert 0 < len(target.kind) <= 63 and target.uid and len(target.uid) <= 128


def test_a_long_note_is_clipped_to_the_apis_limit_in_bytes() -> None:
    created = from_controller(REPLICASET)
    created["spec"]["containers"] = [{"name": f"container-{i}", "image": f"nginx:1.{i}"}
                                     for i in range(40)]
    ask = answer_from({})   # no answer at all: every image kept
    review = pod_review(created, namespace="team-a")
    decision = asyncio.run(admit(orjson.dumps(review), ask=ask,
                                 context_for=lambda ns: context(CONFIG, namespace=ns)))
    (event,) = decision.events
    assert isinstance(event, EventIntent)
    assert len(event.note.encode()) <= 1024 and event.note.endswith("...")
