"""Properties of the mutation and its patch, over generated pods (Hypothesis)."""

from __future__ import annotations

import base64
import copy
from collections import Counter
from typing import Any

import jsonpatch
import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import pod_review
from tests.core.test_api_validity import disagreements
from tests.k8s_schema import accepted
from webhook.core.admission.patch import check, diff
from webhook.core.admission.pipeline import admit_offline as admit
from webhook.core.config import environment_defaults, load_config
from webhook.core.mutation.context import Context, dialect_of
from webhook.core.mutation.create import mutate
from webhook.core.mutation.layers import layer_from_annotations, namespace_layer
from webhook.core.reference import parse_normalized

CONFIG_TEXT = """
mirrors:
  - endpoint: https://172.18.0.20:5000/v2/test-namespace
    hosts: [docker.io, gcr.io, somehost.io]
    pullSecret: mirror-pull
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
  - endpoint: mirror.example:5443/cache/deep
    hosts: [ghcr.io, "[fd00::1]:5000"]
    insecureSkipVerify: true
    pullSecret: ghcr-pull
defaults:
  hostAliases: [{ip: 10.0.0.4, hostnames: [config.example, shared.example]}]
"""
CONFIG = load_config(CONFIG_TEXT, source="test")
WARN_CONFIG = load_config("onInvalid: warn\n", source="test")
LOCKED_DOWN_TEXT = """
mirrors:
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
  - endpoint: mirror.example:5443/cache/deep
    hosts: [ghcr.io]
    insecureSkipVerify: true
security:
  allowedInsecureRegistries: ["*.example", "192.168.1.5:5000", "harbor.example.com"]
"""
LOCKED_DOWN = load_config(LOCKED_DOWN_TEXT, source="test")
# The same with onInvalid: warn: an ignored value must not stay on the pod either.
WARN_MIRRORS = load_config("onInvalid: warn\n" + CONFIG_TEXT, source="test")
WARN_LOCKED_DOWN = load_config("onInvalid: warn\n" + LOCKED_DOWN_TEXT, source="test")
CONFIGS = [CONFIG, WARN_CONFIG, LOCKED_DOWN, WARN_MIRRORS, WARN_LOCKED_DOWN]
ENV = environment_defaults({
    "KCI_HOST_ALIASES": '[{"ip":"10.0.0.3","hostnames":["env.example","shared.example"]}]',
    "KCI_DNS_CONFIG": '{"nameservers":["10.0.0.3"],"searches":["env.example"]}'})

registries = st.sampled_from(["", "docker.io/", "index.docker.io/", "gcr.io/", "somehost.io/",
                              "quay.io/", "ghcr.io/", "[fd00::1]:5000/", "localhost:5000/",
                              "172.18.0.20:5000/test-namespace/", "example.com/"])
_alnum = st.text(alphabet="abcxyz0189", min_size=1, max_size=8)
components = st.builds(lambda a, sep, b: a + (sep + b if sep else ""),
                       _alnum, st.sampled_from(["", ".", "_", "__", "-", "--"]), _alnum)
tags = st.one_of(st.none(), st.builds(lambda a, b: a + b,
                                      st.sampled_from(["v", "V", "_", "1", "latest"]),
                                      st.text(alphabet="abZ09_.-", max_size=20)))
digests = st.one_of(st.none(), st.binary(min_size=32, max_size=32).map(
    lambda raw: "sha256:" + raw.hex()))


@st.composite
def images(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:                  # now and then, not a reference at all
        return draw(st.text(max_size=40))
    path = "/".join(draw(st.lists(components, min_size=1, max_size=3)))
    tag, digest = draw(tags), draw(digests)
    return (draw(registries) + path + (f":{tag}" if tag else "")
            + (f"@{digest}" if digest else ""))


ANNOTATION_VALUES = {
    "k8s.ksyun.com/kci-host-aliases": st.one_of(
        st.just('[{"ip":"1.2.3.4","hostnames":["www.privaterepo1.com","shared.example"]}]'),
        st.just('[{"ip":"::1","hostnames":["v6.example"]},{"ip":"1.2.3.4","hostnames":["b"]}]'),
        st.just('[{"ip":"1.2.3","hostnames":["x"]}]'), st.text(max_size=20)),
    "k8s.ksyun.com/kci-dns-config": st.one_of(
        st.just('{"nameservers":["1.1.1.1"],"options":[{"name":"ndots","value":"2"}],'
                '"searches":["test1.com"]}'),
        st.just('{"nameservers":["1.1.1.1","2.2.2.2","3.3.3.3"]}'), st.text(max_size=20)),
    "k8s.ksyun.com/kci-http-registry": st.one_of(
        st.just("192.168.1.5:5000"), st.just(" a.example , b.example:80,a.example"),
        st.text(max_size=20)),
    "k8s.ksyun.com/kci-insecure-registry": st.one_of(
        st.just("harbor.example.com"), st.just("kevin.harbor.com,192.168.1.2"),
        st.text(max_size=20)),
    "kci-webhook/mirrors": st.sampled_from(["on", "off", "OFF", "maybe"]),
    "other.example/annotation": st.text(max_size=20),
}


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(sorted(ANNOTATION_VALUES)), unique=True, max_size=4))
    annotations = {key: draw(ANNOTATION_VALUES[key]) for key in chosen}
    names = iter(range(100))
    spec: dict[str, Any] = {"containers": [{"name": f"c{next(names)}", "image": image}
                                           for image in draw(st.lists(images(), min_size=1,
                                                                      max_size=4))]}
    if draw(st.booleans()):
        spec["initContainers"] = [{"name": f"i{next(names)}", "image": draw(images())}]
    if draw(st.booleans()):
        spec["imagePullSecrets"] = [{"name": draw(st.sampled_from(["mirror-pull", "own"]))}]
    if draw(st.booleans()):
        spec["hostAliases"] = [{"ip": "9.9.9.9", "hostnames": ["shared.example"]}]
    if draw(st.booleans()):
        spec["dnsConfig"] = {"nameservers": ["8.8.8.8"], "options": [{"name": "ndots",
                                                                      "value": "5"}]}
    metadata: dict[str, Any] = {"name": "p"}
    if annotations or draw(st.booleans()):
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


@st.composite
def contexts(draw: st.DrawFn) -> Context:
    ns_annotations = draw(st.one_of(st.none(), st.fixed_dictionaries({
        "k8s.ksyun.com/kci-host-aliases":
            st.just('[{"ip":"10.0.0.2","hostnames":["ns.example","shared.example"]}]'),
        "kci-webhook/image-pull-secrets": st.just("team-pull"),
        "kci-webhook/mirrors": st.sampled_from(["on", "off"]),
    }, optional={
        # namespace-wide values the pod may not use: written back, never the pod's typo
        "k8s.ksyun.com/kci-http-registry": st.just("ns-registry.example:5000,quay.io"),
        "k8s.ksyun.com/kci-insecure-registry": st.just("harbor.example"),
        "k8s.ksyun.com/kci-dns-config": st.just(
            '{"nameservers":["10.0.0.2"],"options":[{"name":"ndots","value":"3"}]}'),
    })))
    return Context(config=draw(st.sampled_from(CONFIGS)),
                   environment=draw(st.sampled_from([ENV, environment_defaults({})])),
                   namespace="team-a",
                   namespace_layer=namespace_layer("team-a", ns_annotations)
                   if ns_annotations else None)


PROPERTY_SETTINGS = settings(max_examples=300, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


def test_second_pass_gives_no_patch_and_no_new_warning() -> None:
    checked: Counter[bool] = Counter()

    @PROPERTY_SETTINGS
    @given(pods(), contexts())
    def second_pass(pod: dict[str, Any], ctx: Context) -> None:
        checked[check_second_pass(pod, ctx)] += 1

    second_pass()
    assert checked[True], "no example was admitted: no second pass was checked"


def check_second_pass(pod: dict[str, Any], ctx: Context) -> bool:
    """Reinvocation (`reinvocationPolicy: IfNeeded`) hands the webhook its own output (also
    run per annotation dialect, in test_dialects). Whatever onInvalid says, every value of
    the pod's dialect left on an admitted pod is one the webhook's parser accepts: the
    virtual kubelet reads what was judged, and the second pass refuses nothing. False
    when the pod was denied (there is no second pass), so a caller can tell that the
    checks ran."""
    first = mutate(pod, ctx)
    if first.denial:
        return False
    left = (first.pod.get("metadata") or {}).get("annotations") or {}
    assert layer_from_annotations(left, level="pod", dialect=dialect_of(ctx)).problems == ()
    output = copy.deepcopy(first.pod)
    second = mutate(output, ctx)
    assert second.denial is None
    assert second.pod is output                                   # no patch
    assert [w for w in second.warnings if w not in first.warnings] == []
    return True


def test_mutated_pod_is_accepted_and_its_annotations_agree_with_its_spec() -> None:
    checked: Counter[str] = Counter()

    @PROPERTY_SETTINGS
    @given(pods(), contexts())
    def mutated_pod(pod: dict[str, Any], ctx: Context) -> None:
        outcome = mutate(pod, ctx)
        if outcome.denial or outcome.pod is pod:
            return
        checked["mutated"] += 1
        accepted(outcome.pod)              # schemas of 1.25 and 1.37, and the 1.24 API rules
        # Every KCI value left on an admitted pod is in effect, whatever onInvalid says (an
        # ignored one is replaced or removed), so all agree with the spec.
        assert disagreements(outcome.pod) == []

    mutated_pod()
    assert checked["mutated"], "no example was admitted with a change: nothing was checked"


@PROPERTY_SETTINGS
@given(pods(), contexts())
def test_input_is_never_modified(pod: dict[str, Any], ctx: Context) -> None:
    snapshot = copy.deepcopy(pod)
    mutate(pod, ctx)
    assert pod == snapshot


def test_tags_and_digests_never_change() -> None:
    checked: Counter[str] = Counter()

    @PROPERTY_SETTINGS
    @given(pods(), contexts())
    # Both lists' branch, every run: a mirrored image in a container and an init container.
    @example({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
              "spec": {"containers": [{"name": "c0", "image": "nginx:1.25"}],
                       "initContainers": [{"name": "i1", "image": "gcr.io/init@sha256:"
                                           + "a" * 64}]}},
             Context(config=CONFIG, namespace="team-a"))
    def rewritten_images(pod: dict[str, Any], ctx: Context) -> None:
        result = mutate(pod, ctx).pod
        for list_name in ("containers", "initContainers"):
            for before, after in zip(pod["spec"].get(list_name, []),
                                     result["spec"].get(list_name, []), strict=True):
                if before["image"] == after["image"]:
                    continue
                checked[list_name] += 1
                old, new = parse_normalized(before["image"]), parse_normalized(after["image"])
                assert (old.tag, old.digest) == (new.tag, new.digest)
                assert new.path.endswith(old.path)

    rewritten_images()
    assert checked["containers"] and checked["initContainers"], checked


@PROPERTY_SETTINGS
@given(pods(), contexts())
def test_patch_always_applies_to_the_object_as_received(pod: dict[str, Any],
                                                        ctx: Context) -> None:
    check_patch_applies(pod, ctx)


def check_patch_applies(pod: dict[str, Any], ctx: Context) -> None:
    """The answer's patch, applied to the object as received, gives the mutated pod (also
    run per annotation dialect, in test_dialects)."""
    review = pod_review(pod, namespace="team-a")
    body = orjson.loads(admit(orjson.dumps(review), context_for=lambda _ns: ctx).body)
    response = body["response"]
    expected = mutate(pod, ctx)
    assert response["allowed"] is (expected.denial is None)
    if "patch" in response:
        ops = orjson.loads(base64.b64decode(response["patch"]))
        assert jsonpatch.apply_patch(copy.deepcopy(pod), ops) == expected.pod
    else:
        assert expected.pod == pod


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=5), children, max_size=4)),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_diff_turns_any_document_into_any_other(a: Any, b: Any) -> None:
    document = {"root": a}
    target = {"root": b}
    ops = diff(document, target)
    check(document, ops, target)     # raises if the patch does not produce the target
    assert jsonpatch.apply_patch(copy.deepcopy(document), ops) == target
