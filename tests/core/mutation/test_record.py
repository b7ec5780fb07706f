"""The per-container record `kci-webhook/images`: each word from the scenario that gives it,
re-invocation writes the same bytes (no patch), and a record the pod brings counts for
nothing."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from tests.builders import context, pod
from tests.conftest import apply_response_patch, pod_review
from webhook.core.admission.pipeline import admit_offline
from webhook.core.config import load_config
from webhook.core.mutation import record
from webhook.core.mutation.create import mutate
from webhook.core.mutation.images import NO_ANSWER
from webhook.core.mutation.update import EPHEMERAL, mutate_update

KEY = "kci-webhook/images"
CONFIG = load_config("""
defaults:
  hostAliases: [{ip: 10.1.1.1, hostnames: [mirror.corp.example]}]
mirrors:
  - endpoint: https://172.18.0.20:5000/v2/test-namespace
    hosts: [docker.io]
    pullSecret: mirror-pull
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
  - endpoint: https://ghcr-mirror.example:5443/ghcr
    hosts: [ghcr.io]
    insecureSkipVerify: true
  - endpoint: https://mirror.corp.example/v2/k8s
    hosts: [registry.k8s.io]
  - endpoint: https://cache.example:5000
    hosts: [gcr.io]
    policy: if-present
""", source="test")
GCR = "gcr.io/app/web:1"
CACHE = "https://cache.example:5000"


def words(result: Any) -> dict[str, str]:
    """The record on the mutated pod, checked against the words the result carries."""
    value = orjson.loads(result.pod["metadata"]["annotations"][KEY])
    assert value["v"] == record.VERSION
    assert value["c"] == result.words
    return value["c"]  # type: ignore[no-any-return]


# --- CREATE -----------------------------------------------------------------------------

@pytest.mark.parametrize(("image", "answer", "word"), [
    ("nginx:1.25", None, "mirror:172.18.0.20:5000"),
    ("quay.io/prom/node:1", None, "mirror:10.0.0.9:5000"),
    ("registry.example/app:1", None, record.NO_MIRROR),
    (GCR, (False, "does not have it (404)"), record.ABSENT),
    (GCR, (False, "no answer within the 1s budget"), record.TIMEOUT),
    (GCR, (False, "check failed: 401 Unauthorized"), record.CHECK_FAILED),
    (GCR, NO_ANSWER, record.NOT_CHECKED),
    (GCR, (True, ""), "mirror:cache.example:5000"),
    ("Not/A/Valid:Ref", None, record.INVALID),
    # 246 characters of path are valid; with the mirror's namespace in front, 261 are not
    ("nginx/" + "a" * 240 + ":1", None, record.INVALID_ON_MIRROR),
])
def test_each_word_of_a_create(image: str, answer: tuple[bool, str] | None,
                               word: str) -> None:
    presence = {(CACHE, image): answer} if answer is not None else {}
    result = mutate(pod(image), context(CONFIG), presence=presence)
    assert words(result) == {"c0": word}


@pytest.mark.parametrize("where", ["pod", "namespace"])
def test_mirrors_off_keeps_every_container(where: str) -> None:
    switch = {"kci-webhook/mirrors": "off"}
    result = mutate(pod("nginx:1.25", init=("busybox:1",),
                        annotations=switch if where == "pod" else None),
                    context(CONFIG, ns=switch if where == "namespace" else None))
    assert words(result) == {"i0": record.OFF, "c0": record.OFF}


def test_init_containers_come_first_as_in_the_pod() -> None:
    result = mutate(pod("registry.example/app:1", init=("nginx:1.25",)), context(CONFIG))
    assert list(words(result).items()) == [("i0", "mirror:172.18.0.20:5000"),
                                           ("c0", record.NO_MIRROR)]


def test_an_excluded_namespace_gets_no_record() -> None:
    result = mutate(pod("nginx:1.25", namespace="kube-system"),
                    context(CONFIG, namespace="kube-system"))
    assert result.skipped and "annotations" not in result.pod["metadata"]


def test_with_no_mirror_configured_no_record_is_written() -> None:
    result = mutate(pod("nginx:1.25"), context(load_config("{}", source="test")))
    assert "annotations" not in result.pod["metadata"]


def test_a_forged_record_is_replaced_by_what_happened() -> None:
    forged = '{"v":1,"c":{"c0":"mirror:evil.example"}}'
    result = mutate(pod("registry.example/app:1", annotations={KEY: forged}),
                    context(CONFIG))
    assert words(result) == {"c0": record.NO_MIRROR}


def test_reinvocation_writes_the_same_bytes_so_no_patch() -> None:
    review = pod_review(pod("nginx:1.25", "registry.example/app:1", init=("quay.io/x/y:2",)),
                        namespace="team-a")
    context_for = lambda namespace: context(CONFIG, namespace=namespace)  # noqa: E731
    first = orjson.loads(admit_offline(orjson.dumps(review), context_for=context_for).body)
    again = copy.deepcopy(review)
    again["request"]["object"] = apply_response_patch(review, first["response"])
    second = admit_offline(orjson.dumps(again), context_for=context_for)
    assert second.outcome == "unchanged" and "patch" not in orjson.loads(second.body)["response"]
    assert second.words == {"i0": "mirror:10.0.0.9:5000", "c0": "mirror:172.18.0.20:5000",
                            "c1": record.NO_MIRROR}


def test_the_record_stays_small() -> None:
    result = mutate(pod("nginx:1.25", "registry.example/app:1"), context(CONFIG))
    text = result.pod["metadata"]["annotations"][KEY]
    assert text == ('{"v":1,"c":{"c0":"mirror:172.18.0.20:5000","c1":"kept:no-mirror"}}')


# --- UPDATE and kubectl debug -------------------------------------------------------------

def stored(*images: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A running pod, created before any mirror served its images: no pull secret, no
    KCI annotations."""
    created = pod(*images, annotations=annotations)
    created["metadata"]["uid"] = "2b5d2cf5-0000-4000-8000-000000000001"
    return created


@pytest.mark.parametrize(("image", "word"), [
    ("nginx:1.26", record.NO_SECRET),
    ("quay.io/prom/node:2", record.NO_HTTP),
    ("ghcr.io/org/app:2", record.NO_INSECURE),
    ("registry.k8s.io/pause:3.9", record.NO_ALIAS),
])
def test_an_update_keeps_an_image_the_pod_cannot_pull_from_its_mirror(
        image: str, word: str) -> None:
    old = stored("registry.example/app:1")
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = image
    result = mutate_update(new, old, context(CONFIG), sub_resource="")
    assert result.words == {"c0": word}
    assert result.pod["spec"]["containers"][0]["image"] == image


def test_kubectl_debug_keeps_an_image_the_pod_cannot_pull_from_its_mirror() -> None:
    old = stored("registry.example/app:1")
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox:1.36"}]
    result = mutate_update(new, old, context(CONFIG), sub_resource=EPHEMERAL)
    assert result.words == {"debugger": record.NO_SECRET}


def update_review(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    review = pod_review(new, namespace="team-a", operation="UPDATE")
    review["request"]["oldObject"] = old
    return review


def answer(review: dict[str, Any]) -> dict[str, Any]:
    decision = admit_offline(orjson.dumps(review),
                             context_for=lambda ns: context(CONFIG, namespace=ns))
    return orjson.loads(decision.body)["response"]  # type: ignore[no-any-return]


def test_an_update_replaces_the_words_of_the_images_it_brings() -> None:
    text = '{"v":1,"c":{"c0":"kept:no-mirror","c1":"mirror:10.0.0.9:5000"}}'
    old = stored("registry.example/app:1", "quay.io/x/y:1", annotations={KEY: text})
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    review = update_review(old, new)
    response = answer(review)
    assert response["auditAnnotations"] == {"images": '{"v":1,"c":{"c0":"kept:no-secret"}}'}
    updated = apply_response_patch(review, response)
    assert updated["metadata"]["annotations"][KEY] == (
        '{"v":1,"c":{"c0":"kept:no-secret","c1":"mirror:10.0.0.9:5000"}}')
    again = copy.deepcopy(review)              # re-invoked on its own output: no patch
    again["request"]["object"] = updated
    assert "patch" not in answer(again)


def test_an_update_of_a_pod_created_without_a_record_starts_none() -> None:
    old = stored("registry.example/app:1", "quay.io/x/y:1")
    new = copy.deepcopy(old)
    new["spec"]["containers"][1]["image"] = "quay.io/x/y:2"
    new["metadata"]["annotations"] = {"k8s.ksyun.com/kci-http-registry": "10.0.0.9:5000"}
    review = update_review(old, new)
    response = answer(review)
    updated = apply_response_patch(review, response)
    assert updated["spec"]["containers"][1]["image"] == "10.0.0.9:5000/x/y:2"
    assert KEY not in updated["metadata"]["annotations"]
    assert response["auditAnnotations"]["images"] == '{"v":1,"c":{"c1":"mirror:10.0.0.9:5000"}}'


def test_kubectl_debug_records_its_words_in_the_audit_annotation_only() -> None:
    old = stored("registry.example/app:1")
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox:1.36"}]
    review = update_review(old, new)
    review["request"]["subResource"] = "ephemeralcontainers"
    response = answer(review)
    assert response["auditAnnotations"] == {
        "images": '{"v":1,"c":{"debugger":"kept:no-secret"}}'}
    assert "patch" not in response


def test_an_update_may_not_rewrite_the_record() -> None:
    text = '{"v":1,"c":{"c0":"kept:no-mirror"}}'
    old = stored("registry.example/app:1", annotations={KEY: text})
    for forged in ('{"v":1,"c":{"c0":"mirror:evil.example"}}', None):
        new = copy.deepcopy(old)
        new["metadata"]["annotations"][KEY] = forged
        if forged is None:
            del new["metadata"]["annotations"][KEY]
        result = mutate_update(new, old, context(CONFIG), sub_resource="")
        assert result.pod["metadata"]["annotations"][KEY] == text
        assert any(w.startswith(KEY + ": recorded by the webhook") for w in result.warnings)


def test_an_update_that_forges_the_record_and_brings_an_image_gets_the_true_words() -> None:
    text = '{"v":1,"c":{"c0":"kept:no-mirror"}}'
    old = stored("registry.example/app:1", annotations={KEY: text})
    new = copy.deepcopy(old)
    new["metadata"]["annotations"][KEY] = '{"v":1,"c":{"c0":"mirror:evil.example"}}'
    new["spec"]["containers"][0]["image"] = "registry.example/app:2"
    result = mutate_update(new, old, context(CONFIG), sub_resource="")
    assert result.pod["metadata"]["annotations"][KEY] == text      # no-mirror, again
