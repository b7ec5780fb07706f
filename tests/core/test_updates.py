"""Pod UPDATE and `pods/ephemeralcontainers`: the captured reviews and variants built from them.

Every answer is checked the way a 1.24 API server would treat it: the patch applies to the
object as received (`jsonpatch`), and touches only what that operation may change —
for the ephemeralcontainers subresource, only ephemeral containers that did not exist
before; for a plain UPDATE, only container and init-container images — and the result is a
schema-valid Pod (oldest and newest schema `kubernetes-validate` ships).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import jsonpatch
import kubernetes_validate
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import load_review
from webhook.core.admission.dispatch import decide as admit_request
from webhook.core.admission.dispatch import questions
from webhook.core.admission.envelope import decode
from webhook.core.admission.patch import PatchMismatch
from webhook.core.admission.pipeline import admit_offline as admit
from webhook.core.admission.scope import check_patch_scope
from webhook.core.config import Config, load_config
from webhook.core.mutation.context import Context
from webhook.core.mutation.layers import namespace_layer
from webhook.core.mutation.update import changes_nothing, mutate_update
from webhook.server import metrics

EPHEMERAL = "pod-ephemeralcontainers-update.json"
SET_IMAGE = "pod-update-set-image.json"
ANNOTATE = "pod-update-annotate.json"
HTTP = "k8s.ksyun.com/kci-http-registry"
INSECURE = "k8s.ksyun.com/kci-insecure-registry"
DNS = "k8s.ksyun.com/kci-dns-config"
ALIASES = "k8s.ksyun.com/kci-host-aliases"
MIRROR = "172.18.0.20:5000/test-namespace"
SCHEMAS = sorted({kubernetes_validate.latest_version(), "1.25"})

CONFIG_TEXT = """
onInvalid: deny
mirrors:
  - endpoint: https://172.18.0.20:5000/v2/test-namespace
    hosts: [docker.io, gcr.io]
    pullSecret: mirror-pull
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
  - endpoint: https://ghcr-mirror.corp.example:5443/ghcr
    hosts: [ghcr.io]
    insecureSkipVerify: true
security:
  allowedInsecureRegistries: ["10.0.0.9:5000", "*.corp.example"]
"""
CONFIG = load_config(CONFIG_TEXT, source="test")
WARN = load_config(CONFIG_TEXT.replace("onInvalid: deny", "onInvalid: warn"), source="test")


def context(config: Config = CONFIG, namespace_annotations: dict[str, str] | None = None
            ) -> Callable[[str], Context]:
    def context_for(namespace: str) -> Context:
        layer = (namespace_layer(namespace, namespace_annotations)
                 if namespace_annotations else None)
        return Context(config=config, namespace=namespace, namespace_layer=layer)
    return context_for


# --- building variants of the captured reviews --------------------------------------------

Edit = Callable[[dict[str, Any]], None]


def both(edit: Callable[[dict[str, Any]], None]) -> Edit:
    """Apply `edit` to the pod before and after (what the stored pod already had)."""
    def apply(request: dict[str, Any]) -> None:
        edit(request["object"])
        edit(request["oldObject"])
    return apply


def with_secret(pod: dict[str, Any]) -> None:
    pod["spec"]["imagePullSecrets"] = [{"name": "mirror-pull"}]


def debug_container(name: str, image: str) -> dict[str, Any]:
    return {"name": name, "image": image, "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}


def ephemerals(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> Edit:
    def apply(request: dict[str, Any]) -> None:
        request["oldObject"]["spec"]["ephemeralContainers"] = copy.deepcopy(before)
        request["object"]["spec"]["ephemeralContainers"] = copy.deepcopy(before + after)
        if not before:
            request["oldObject"]["spec"].pop("ephemeralContainers")
    return apply


def annotate(target: str, key: str, value: str) -> Edit:
    def apply(request: dict[str, Any]) -> None:
        request[target]["metadata"]["annotations"][key] = value
    return apply


def set_image(list_name: str, index: int, image: str) -> Edit:
    def apply(request: dict[str, Any]) -> None:
        request["object"]["spec"][list_name][index]["image"] = image
    return apply


def init_containers(image: str) -> Edit:
    """Give the pod an init container (before and after) with `image`."""
    def apply(request: dict[str, Any]) -> None:
        for target in ("object", "oldObject"):
            request[target]["spec"]["initContainers"] = [
                {"name": "setup", "image": image, "resources": {},
                 "terminationMessagePath": "/dev/termination-log",
                 "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}]
    return apply


def build(name: str, *edits: Edit) -> dict[str, Any]:
    review = load_review(name)
    for edit in edits:
        edit(review["request"])
    return review


# --- what the API server would make of the answer -----------------------------------------


def patched(review: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(review["request"]["object"])
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    return jsonpatch.apply_patch(obj, orjson.loads(base64.b64decode(response["patch"])))  # type: ignore[no-any-return]


def assert_api_server_accepts(review: dict[str, Any], result: dict[str, Any], *,
                              schema: bool = True) -> None:
    """Our patch stays inside ValidatePodUpdate / ValidatePodEphemeralContainersUpdate, and
    (`schema`) the result is a valid Pod."""
    request = review["request"]
    received, old = request["object"], request["oldObject"]
    if request.get("subResource") == "ephemeralcontainers":
        rest = {**result, "spec": {k: v for k, v in result["spec"].items()
                                   if k != "ephemeralContainers"}}
        assert rest == {**received, "spec": {k: v for k, v in received["spec"].items()
                                             if k != "ephemeralContainers"}}
        existing = {c["name"]: c for c in old["spec"].get("ephemeralContainers", [])}
        for container in result["spec"].get("ephemeralContainers", []):
            if container["name"] in existing:
                assert container == existing[container["name"]], "an existing one changed"
    else:
        munged = copy.deepcopy(result)
        for list_name in ("containers", "initContainers"):
            for mine, theirs in zip(munged["spec"].get(list_name, []),
                                    received["spec"].get(list_name, []), strict=True):
                mine["image"] = theirs["image"]
        assert munged == received, "a plain UPDATE may change only image fields"
    for version in SCHEMAS if schema else ():
        kubernetes_validate.validate(result, version, strict=True)


def answer(review: dict[str, Any], config: Config = CONFIG,
           namespace_annotations: dict[str, str] | None = None) -> dict[str, Any]:
    decision = admit(orjson.dumps(review), context_for=context(config, namespace_annotations))
    body = orjson.loads(decision.body)
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]  # type: ignore[no-any-return]


def images(pod: dict[str, Any], list_name: str) -> list[str]:
    return [c["image"] for c in pod["spec"].get(list_name, [])]


# --- the table -------------------------------------------------------------------------

# (id, captured review, edits, expected images after the patch {list: images} or None for
#  "no patch", substrings every one of which some warning must contain)
CASES: list[tuple[str, str, tuple[Edit, ...], dict[str, list[str]] | None, tuple[str, ...]]] = [
    ("debug-captured-pod-lacks-the-mirror-secret", EPHEMERAL, (), None,
     ("busybox:1.36' kept", "pull secret 'mirror-pull'",
      "`kubectl debug web --copy-to=web-debug` instead")),
    ("debug-pod-with-the-secret-is-rewritten", EPHEMERAL, (both(with_secret),),
     {"ephemeralContainers": [f"{MIRROR}/library/busybox:1.36"]}, ()),
    ("debug-several-only-the-new-ones", EPHEMERAL, (
        both(with_secret),
        ephemerals([debug_container("old-mirrored", f"{MIRROR}/library/busybox:1.35"),
                    debug_container("old-upstream",
                                    "registry.k8s.io/e2e-test-images/agnhost:2.39")],
                   [debug_container("new-docker", "nicolaka/netshoot:v0.11"),
                    debug_container("new-gcr", "gcr.io/distroless/base:debug")])),
     {"ephemeralContainers": [f"{MIRROR}/library/busybox:1.35",
                              "registry.k8s.io/e2e-test-images/agnhost:2.39",
                              f"{MIRROR}/nicolaka/netshoot:v0.11",
                              f"{MIRROR}/distroless/base:debug"]}, ()),
    ("debug-already-rewritten-is-left-alone", EPHEMERAL, (
        both(with_secret),
        ephemerals([], [debug_container("debugger", f"{MIRROR}/library/busybox:1.36")])),
     None, ()),
    ("debug-http-mirror-the-pod-has-no-annotation-for", EPHEMERAL, (
        ephemerals([], [debug_container("debugger", "quay.io/prometheus/busybox:latest")]),),
     None, ("10.0.0.9:5000 is reached over plain HTTP", HTTP, "--copy-to")),
    ("debug-http-annotation-in-the-object-does-not-count", EPHEMERAL, (
        ephemerals([], [debug_container("debugger", "quay.io/prometheus/busybox:latest")]),
        annotate("object", HTTP, "10.0.0.9:5000")),
     None, ("annotations cannot change through the ephemeralcontainers subresource",)),
    ("debug-http-mirror-the-pod-was-created-for", EPHEMERAL, (
        ephemerals([], [debug_container("debugger", "quay.io/prometheus/busybox:latest")]),
        annotate("object", HTTP, "10.0.0.9:5000"), annotate("oldObject", HTTP, "10.0.0.9:5000")),
     {"ephemeralContainers": ["10.0.0.9:5000/prometheus/busybox:latest"]}, ()),
    ("debug-insecure-mirror-the-pod-has-no-annotation-for", EPHEMERAL, (
        ephemerals([], [debug_container("debugger", "ghcr.io/nicolaka/netshoot:v0.11")]),),
     None, ("TLS without verification", INSECURE)),
    ("debug-pod-opted-out-of-mirrors", EPHEMERAL, (
        both(with_secret), annotate("oldObject", "kci-webhook/mirrors", "off"),
        annotate("object", "kci-webhook/mirrors", "off")), None, ()),
    ("debug-invalid-reference-is-kept-with-a-warning", EPHEMERAL, (
        ephemerals([], [debug_container("debugger", "Busybox:UPPER")]),),
     None, ("is not a valid reference",)),
    ("set-image-captured-pod-lacks-the-mirror-secret", SET_IMAGE, (), None,
     ("nginx:1.26' kept", "pull secret 'mirror-pull'", "recreate the pod")),
    ("set-image-pod-with-the-secret-is-rewritten", SET_IMAGE, (both(with_secret),),
     {"containers": [f"{MIRROR}/library/nginx:1.26"]}, ()),
    ("set-image-back-to-the-original-is-rewritten", SET_IMAGE, (
        both(with_secret),
        lambda r: r["oldObject"]["spec"]["containers"][0].update(
            image=f"{MIRROR}/library/nginx:1.25"),
        set_image("containers", 0, "nginx:1.25")),
     {"containers": [f"{MIRROR}/library/nginx:1.25"]}, ()),
    ("init-container-image-change-only-that-one", SET_IMAGE, (
        both(with_secret), init_containers("busybox:1.35"),
        lambda r: r["object"]["spec"]["containers"][0].update(image="nginx:1.25"),
        set_image("initContainers", 0, "busybox:1.36")),
     {"initContainers": [f"{MIRROR}/library/busybox:1.36"], "containers": ["nginx:1.25"]}, ()),
    ("set-image-http-mirror-annotation-added-in-the-same-update", SET_IMAGE, (
        set_image("containers", 0, "quay.io/prometheus/busybox:latest"),
        annotate("object", HTTP, "10.0.0.9:5000")),
     {"containers": ["10.0.0.9:5000/prometheus/busybox:latest"]}, ()),
    ("set-image-http-mirror-without-the-annotation", SET_IMAGE, (
        set_image("containers", 0, "quay.io/prometheus/busybox:latest"),),
     None, ("add 10.0.0.9:5000 to the pod's k8s.ksyun.com/kci-http-registry",)),
    ("set-image-insecure-mirror-annotation-added-in-the-same-update", SET_IMAGE, (
        set_image("containers", 0, "ghcr.io/nicolaka/netshoot:v0.11"),
        annotate("object", INSECURE, "ghcr-mirror.corp.example:5443")),
     {"containers": ["ghcr-mirror.corp.example:5443/ghcr/nicolaka/netshoot:v0.11"]}, ()),
    ("set-image-container-count-changed-is-left-to-the-api-server", SET_IMAGE, (
        both(with_secret),
        lambda r: r["object"]["spec"]["containers"].append(
            {"name": "extra", "image": "nginx:1.26"})), None, ()),
    ("annotate-captured-allowed-registry-pattern", ANNOTATE, (
        annotate("object", INSECURE, "harbor.corp.example"),), None, ()),
    ("annotate-host-aliases-says-the-spec-cannot-follow", ANNOTATE, (
        annotate("oldObject", INSECURE, "harbor.example.com"),
        annotate("object", ALIASES, '[{"ip":"5.6.7.8","hostnames":["late.example"]}]'),),
     None, ("spec.hostAliases cannot change on an existing pod",)),
]


@pytest.mark.parametrize(("name", "base", "edits", "expected", "warned"), CASES,
                         ids=[case[0] for case in CASES])
def test_update_is_answered_within_what_the_api_server_accepts(
        name: str, base: str, edits: tuple[Edit, ...], expected: dict[str, list[str]] | None,
        warned: tuple[str, ...]) -> None:
    review = build(base, *edits)
    response = answer(review)
    assert response["allowed"] is True, response
    result = patched(review, response)
    assert_api_server_accepts(review, result)
    if expected is None:
        assert "patch" not in response
    else:
        for list_name, wanted in expected.items():
            assert images(result, list_name) == wanted
    warnings = response.get("warnings", [])
    for text in warned:
        assert any(text in w for w in warnings), (text, warnings)
    if not warned:
        assert warnings == []
    # reinvocation (`IfNeeded`): our own output comes back as the object — a no-op
    again = copy.deepcopy(review)
    again["request"]["object"] = result
    assert "patch" not in answer(again)


@pytest.mark.parametrize(("name", "review", "config", "message"), [
    ("disallowed-insecure-registry-added", build(ANNOTATE), CONFIG,
     "'harbor.example.com' is not in security.allowedInsecureRegistries"),
    ("disallowed-http-registry-added-with-an-image-change",
     build(SET_IMAGE, annotate("object", HTTP, "10.0.0.9:5000,plain.example:80")), CONFIG,
     "'plain.example:80' is not in security.allowedInsecureRegistries"),
    ("invalid-dns-config-added", build(SET_IMAGE, annotate("object", DNS, "{")), CONFIG,
     "k8s.ksyun.com/kci-dns-config (pod)"),
    ("invalid-host-aliases-changed", build(ANNOTATE, annotate(
        "object", ALIASES, '[{"ip":"1.2.3","hostnames":["x"]}]')), CONFIG,
     '"ip": "1.2.3" is not an IPv4 or IPv6 address'),
])
def test_kci_annotations_an_update_adds_are_judged_as_at_create(
        name: str, review: dict[str, Any], config: Config, message: str) -> None:
    response = answer(review, config)
    assert response["allowed"] is False
    assert message in response["status"]["message"]
    assert "patch" not in response


STRICT = load_config(CONFIG_TEXT.replace('["10.0.0.9:5000", "*.corp.example"]',
                                         '["harbor.example.org"]'), source="test")


@pytest.mark.parametrize(("name", "key", "value", "image", "expected"), [
    ("http-mirror", HTTP, "10.0.0.9:5000", "quay.io/prometheus/busybox:latest",
     "10.0.0.9:5000/prometheus/busybox:latest"),
    ("insecure-mirror", INSECURE, "ghcr-mirror.corp.example:5443",
     "ghcr.io/nicolaka/netshoot:v0.11",
     "ghcr-mirror.corp.example:5443/ghcr/nicolaka/netshoot:v0.11"),
])
def test_a_mirrors_own_host_may_be_added_whatever_the_allow_list(
        name: str, key: str, value: str, image: str, expected: str) -> None:
    """The platform declared that mirror HTTP / insecure; the warnings' fix must work."""
    assert STRICT.allowed_insecure_registries == ("harbor.example.org",)
    review = build(SET_IMAGE, set_image("containers", 0, image), annotate("object", key, value))
    response = answer(review, STRICT)
    assert response["allowed"] is True, response
    assert images(patched(review, response), "containers") == [expected]
    other = build(SET_IMAGE, annotate("object", key, value + ",10.0.0.10:5000"))
    assert answer(other, STRICT)["allowed"] is False       # any other registry still judged


def test_invalid_annotation_added_under_warn_is_admitted_with_a_warning() -> None:
    review = build(SET_IMAGE, both(with_secret), annotate("object", DNS, "{"))
    response = answer(review, WARN)
    assert response["allowed"] is True
    assert any(w.startswith("k8s.ksyun.com/kci-dns-config (pod)") and w.endswith("(ignored)")
               for w in response["warnings"])
    result = patched(review, response)
    assert images(result, "containers") == [f"{MIRROR}/library/nginx:1.26"]
    # the invalid text does not stay on the pod: the stored pod had no DNS config
    assert result["metadata"]["annotations"] == review["request"]["oldObject"]["metadata"][
        "annotations"]


@pytest.mark.parametrize(("name", "review"), [
    ("registry-the-pod-had-before-the-rules", build(
        SET_IMAGE, both(with_secret), annotate("object", INSECURE, "harbor.example.com"),
        annotate("oldObject", INSECURE, "harbor.example.com"))),
    ("invalid-value-the-pod-had-before-the-rules", build(
        SET_IMAGE, both(with_secret), annotate("object", DNS, "{"),
        annotate("oldObject", DNS, "{"))),
])
def test_values_that_predate_the_update_are_not_judged_again(
        name: str, review: dict[str, Any]) -> None:
    response = answer(review)
    assert response["allowed"] is True
    assert images(patched(review, response), "containers") == [f"{MIRROR}/library/nginx:1.26"]


def status_update() -> dict[str, Any]:
    review = build(SET_IMAGE)
    review["request"]["subResource"] = "status"
    review["request"]["object"]["status"] = {"phase": "Running", "qosClass": "BestEffort"}
    return review


@pytest.mark.parametrize(("name", "review"), [
    ("status-only-update", status_update()),
    ("other-subresource", {**build(EPHEMERAL), "request": {
        **build(EPHEMERAL)["request"], "subResource": "resize"}}),
    ("update-without-old-object", {**build(SET_IMAGE), "request": {
        **build(SET_IMAGE)["request"], "oldObject": None}}),
    ("delete", {**build(SET_IMAGE), "request": {**build(SET_IMAGE)["request"],
                                                "operation": "DELETE"}}),
])
def test_other_updates_are_admitted_unpatched(name: str, review: dict[str, Any]) -> None:
    request = decode(orjson.dumps(review))
    decision = admit_request(request, context(CONFIG)(request.namespace))
    response = orjson.loads(decision.body)["response"]
    assert response["allowed"] is True and "patch" not in response
    assert decision.outcome == "skipped"


def label_only(review: dict[str, Any]) -> dict[str, Any]:
    request = review["request"]
    request["object"] = copy.deepcopy(request["oldObject"])
    request["object"]["metadata"]["labels"]["tier"] = "web"
    return review


@pytest.mark.parametrize(("name", "review", "nothing"), [
    ("label-only", label_only(build(SET_IMAGE)), True),
    ("ordinary-annotation", build(SET_IMAGE, lambda r: r.update(object=copy.deepcopy(
        r["oldObject"])), annotate("object", "team.example/owner", "web")), True),
    ("image-changed", build(SET_IMAGE), False),
    ("init-image-changed", build(SET_IMAGE, init_containers("busybox:1"),
                                 lambda r: r.update(object=copy.deepcopy(r["oldObject"])),
                                 set_image("initContainers", 0, "busybox:2")), False),
    ("kci-annotation-changed", build(ANNOTATE), False),
    ("another-dialects-hosts-key-changed", build(SET_IMAGE, lambda r: r.update(
        object=copy.deepcopy(r["oldObject"])), annotate(
        "object", "k8s.aliyun.com/eci-custom-hosts", '[{"host":"a.example","ip":"1.2.3.4"}]')),
     False),
    ("record-of-original-images-changed", build(SET_IMAGE, lambda r: r.update(
        object=copy.deepcopy(r["oldObject"])), annotate(
        "object", "kci-webhook/original-images", '{"web":"nginx:1.0"}')), False),
    ("debug-container-added", build(EPHEMERAL), False),
])
def test_fast_path_sees_exactly_the_changes_we_act_on(
        name: str, review: dict[str, Any], nothing: bool) -> None:
    request = review["request"]
    sub = request.get("subResource", "")
    assert changes_nothing(request["object"], request["oldObject"], sub) is nothing
    if nothing:
        decision = admit(orjson.dumps(review), context_for=context())
        assert decision.outcome == "unchanged"
        assert "patch" not in orjson.loads(decision.body)["response"]


def test_excluded_namespace_is_skipped() -> None:
    review = build(SET_IMAGE, both(with_secret))
    review["request"]["namespace"] = "kube-system"
    decision = admit(orjson.dumps(review), context_for=context())
    assert decision.outcome == "skipped"
    assert "patch" not in orjson.loads(decision.body)["response"]


def test_namespace_that_turns_mirrors_off_wins_on_update() -> None:
    review = build(SET_IMAGE, both(with_secret))
    response = answer(review, namespace_annotations={"kci-webhook/mirrors": "off"})
    assert "patch" not in response


def test_an_existing_debug_container_is_never_patched_even_if_it_changed() -> None:
    """Changing one is refused by the API server anyway; the patch must not make it pass by
    touching anything but that container's image."""
    review = build(EPHEMERAL, both(with_secret))
    request = review["request"]
    request["oldObject"]["spec"]["ephemeralContainers"] = [
        debug_container("debugger", "busybox:1.35")]
    response = answer(review)
    ops = orjson.loads(base64.b64decode(response["patch"]))
    assert ops == [{"op": "replace", "path": "/spec/ephemeralContainers/0/image",
                    "value": f"{MIRROR}/library/busybox:1.36"}]


# --- if-present on UPDATE -------------------------------------------------------------------

IF_PRESENT = load_config("""
mirrors:
  - endpoint: https://cache.example:5000
    hosts: [docker.io]
    policy: if-present
""", source="test")


@pytest.mark.parametrize(("name", "present", "image"), [
    ("mirror-has-it", True, "cache.example:5000/library/busybox:1.36"),
    ("mirror-lacks-it", False, "busybox:1.36"),
])
def test_if_present_is_asked_about_the_new_images_only(name: str, present: bool,
                                                       image: str) -> None:
    review = build(EPHEMERAL)
    request = decode(orjson.dumps(review))
    ctx = Context(config=IF_PRESENT, namespace=request.namespace)
    asked = questions(request, ctx)
    assert [(m.host, img) for m, _ref, img in asked] == [("cache.example:5000", "busybox:1.36")]
    availability = {("https://cache.example:5000", "busybox:1.36"): (present, "does not have it")}
    decision = admit_request(request, ctx, presence=availability)
    response = orjson.loads(decision.body)["response"]
    result = patched(review, response)
    assert images(result, "ephemeralContainers") == [image]
    assert_api_server_accepts(review, result)


def test_nothing_is_asked_for_an_update_that_changes_no_image() -> None:
    request = decode(orjson.dumps(label_only(build(SET_IMAGE))))
    assert questions(request, Context(config=IF_PRESENT, namespace="team-a")) == []


# --- malformed and hostile -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "edit", "message"), [
    ("spec-not-an-object", lambda r: r["object"].update(spec=["x"]),
     "spec: expected an object"),
    ("containers-not-objects", lambda r: r["object"]["spec"].update(containers=["nginx"]),
     "spec.containers: expected a list of objects"),
    ("annotations-not-an-object", lambda r: r["object"]["metadata"].update(annotations=[1]),
     "metadata.annotations: expected an object"),
])
def test_malformed_pod_in_an_update_is_denied_with_the_field(
        name: str, edit: Edit, message: str) -> None:
    response = answer(build(SET_IMAGE, edit))
    assert response["allowed"] is False
    assert message in response["status"]["message"]


@pytest.mark.parametrize(("name", "base", "edit"), [
    ("old-spec-not-an-object", SET_IMAGE, lambda r: r["oldObject"].update(spec="x")),
    ("old-containers-not-a-list", SET_IMAGE,
     lambda r: r["oldObject"]["spec"].update(containers=7)),
    ("ephemeral-not-a-list", EPHEMERAL,
     lambda r: r["object"]["spec"].update(ephemeralContainers={})),
    ("ephemeral-items-not-objects", EPHEMERAL,
     lambda r: r["object"]["spec"].update(ephemeralContainers=[1, None, "x"])),
    ("image-not-a-string", SET_IMAGE,
     lambda r: r["object"]["spec"]["containers"][0].update(image=5)),
    ("old-ephemeral-name-not-a-string", EPHEMERAL, lambda r: r["oldObject"]["spec"].update(
        ephemeralContainers=[{"name": ["x"], "image": "busybox:1.36"}])),
])
def test_odd_shapes_elsewhere_are_admitted_unpatched(name: str, base: str, edit: Edit) -> None:
    """Nothing to compare or to rewrite: admitted as is (the API server judges the rest)."""
    response = answer(build(base, both(with_secret), edit))
    assert response["allowed"] is True and "patch" not in response


def test_a_pod_without_metadata_is_named_pod_in_the_advice() -> None:
    review = build(EPHEMERAL)
    request = review["request"]
    request["object"]["metadata"] = None
    outcome = mutate_update(request["object"], request["oldObject"],
                            Context(config=CONFIG, namespace="team-a"),
                            sub_resource="ephemeralcontainers")
    assert outcome.pod is request["object"]
    assert any("`kubectl debug POD --copy-to=POD-debug`" in w for w in outcome.warnings)


@pytest.mark.parametrize(("name", "secrets"), [
    ("secret-name-a-list", [{"name": ["mirror-pull"]}]),
    ("secret-name-an-object", [{"name": {}}]),
    ("secret-not-an-object", ["mirror-pull"]),
])
def test_odd_pull_secrets_in_the_stored_pod_count_as_none(name: str, secrets: Any) -> None:
    review = build(SET_IMAGE, lambda r: r["oldObject"]["spec"].update(imagePullSecrets=secrets))
    response = answer(review)
    assert response["allowed"] is True and "patch" not in response
    assert any("pull secret 'mirror-pull'" in w for w in response["warnings"])


def test_patch_outside_what_an_update_may_change_is_refused() -> None:
    check_patch_scope([{"op": "replace", "path": "/spec/containers/1/image", "value": "x"}], "",
                      old={})
    for ops, sub in [
        ([{"op": "add", "path": "/spec/imagePullSecrets", "value": []}], ""),
        ([{"op": "add", "path": "/metadata/annotations/x", "value": "y"}], ""),
        ([{"op": "replace", "path": "/spec/containers/0/image", "value": "x"}],
         "ephemeralcontainers"),
        ([{"op": "replace", "path": "/spec/ephemeralContainers/0/image", "value": "x"}], ""),
        ([{"op": "replace", "path": "/spec/containers/0/image/x", "value": "x"}], ""),
    ]:
        with pytest.raises(PatchMismatch):
            check_patch_scope(ops, sub, old={})


@pytest.mark.parametrize(("operation", "sub_resource", "labels"), [
    ("UPDATE", "ephemeralcontainers", ("UPDATE", "ephemeralcontainers")),
    ("UPDATE", "status", ("UPDATE", "status")),
    ("CREATE", "", ("CREATE", "")),
    ("X" * 300, "made-up", ("other", "other")),
])
def test_metric_labels_are_the_apis_own_values_or_other(
        operation: str, sub_resource: str, labels: tuple[str, str]) -> None:
    assert metrics.admission_labels(operation, sub_resource) == labels


# --- properties ----------------------------------------------------------------------------

IMAGES = st.sampled_from([
    "nginx:1.25", "nginx:1.26", "busybox", f"{MIRROR}/library/nginx:1.26", "quay.io/a/b:1",
    "10.0.0.9:5000/a/b:1", "ghcr.io/o/r@sha256:" + "a" * 64, "example.com/x:1", "Bad:Ref",
    "gcr.io/distroless/static"])


@st.composite
def update_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], str]:
    sub = draw(st.sampled_from(["", "ephemeralcontainers"]))
    count = draw(st.integers(1, 3))
    old_images = draw(st.lists(IMAGES, min_size=count, max_size=count))
    new_images = [draw(st.one_of(st.just(i), IMAGES)) for i in old_images]
    spec_old: dict[str, Any] = {"containers": [{"name": f"c{n}", "image": i}
                                               for n, i in enumerate(old_images)]}
    if draw(st.booleans()):
        spec_old["imagePullSecrets"] = [{"name": "mirror-pull"}]
    spec_new = copy.deepcopy(spec_old)
    if sub:
        before = draw(st.lists(IMAGES, max_size=2))
        added = draw(st.lists(IMAGES, min_size=1, max_size=2))
        spec_old["ephemeralContainers"] = [{"name": f"e{n}", "image": i}
                                           for n, i in enumerate(before)]
        spec_new["ephemeralContainers"] = spec_old["ephemeralContainers"] + [
            {"name": f"e{n + len(before)}", "image": i} for n, i in enumerate(added)]
    else:
        for container, image in zip(spec_new["containers"], new_images, strict=True):
            container["image"] = image
    annotations = draw(st.sampled_from([{}, {HTTP: "10.0.0.9:5000"},
                                        {INSECURE: "ghcr-mirror.corp.example:5443"}]))
    old = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "annotations": dict(annotations)}, "spec": spec_old}
    new = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "annotations": dict(annotations)}, "spec": spec_new}
    return new, old, sub


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(update_pairs())
def test_update_patches_stay_in_scope_and_a_second_pass_is_a_no_op(
        pair: tuple[dict[str, Any], dict[str, Any], str]) -> None:
    new, old, sub = pair
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "subResource": sub,
        "namespace": "team-a", "operation": "UPDATE", "object": new, "oldObject": old}}
    frozen = copy.deepcopy(review)
    response = answer(review)
    assert review == frozen                                  # the input is never modified
    result = patched(review, response)
    if "patch" in response:
        check_patch_scope(orjson.loads(base64.b64decode(response["patch"])), sub, old=old)
    assert_api_server_accepts(review, result, schema=False)   # the table checks schemas
    again = copy.deepcopy(review)
    again["request"]["object"] = result
    assert "patch" not in answer(again)
    outcome = mutate_update(result, old, Context(config=CONFIG, namespace="team-a"),
                            sub_resource=sub)
    assert outcome.pod is result
