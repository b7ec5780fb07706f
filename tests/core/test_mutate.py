"""The mutation as a pure function: documented examples, precedence, mirrors, opt-outs."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests import builders
from webhook.core.config import load_config
from webhook.core.mutation.context import Context
from webhook.core.mutation.create import mutate

HOST_ALIASES = "k8s.ksyun.com/kci-host-aliases"
DNS = "k8s.ksyun.com/kci-dns-config"
HTTP = "k8s.ksyun.com/kci-http-registry"
INSECURE = "k8s.ksyun.com/kci-insecure-registry"
ORIGINALS = "kci-webhook/original-images"

# The KCI documentation's examples (Kingsoft KCI "使用自建仓库"), verbatim.
DOC_DNS = ('{"nameservers":["1.1.1.1"],"options":[{"name":"ndots","value":"2"},'
            '{"name":"timeout","value":"3"}],"searches":["test1.com"]}')
DOC_ALIASES = ('[{"ip":"1.2.3.4","hostnames":["www.privaterepo1.com"]},'
                '{"ip":"2.3.4.5","hostnames":["www.privaterepo2.com"]}]')
DOC_TOLERATION = {"key": "rbkci-virtual-kubelet.io/provider", "value": "kingsoftcloud",
                   "effect": "NoSchedule"}

GDC = """
mirrors:
  - endpoint: https://172.18.0.20:5000/v2/test-namespace
    hosts: [docker.io, gcr.io, somehost.io]
    pullSecret: mirror-pull
"""
HTTP_MIRROR = """
mirrors:
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
  - endpoint: mirror.example:5443/cache
    hosts: [ghcr.io]
    insecureSkipVerify: true
    pullSecret: ghcr-pull
"""


def pod(*images: str, **fields: Any) -> dict[str, Any]:
    """A pod of `default`, the namespace these tests admit it in (`ctx`)."""
    return builders.pod(*images, namespace="default", **fields)


def ctx(config_text: str = "", *, namespace: str = "default",
        ns_annotations: dict[str, str] | None = None,
        env: dict[str, str] | None = None) -> Context:
    return builders.context(load_config(config_text, source="test.yaml"), namespace=namespace,
                            ns=ns_annotations, env=env)


def images(result: dict[str, Any], list_name: str = "containers") -> list[str]:
    return [c["image"] for c in result["spec"].get(list_name, [])]


# --- image rewriting ---------------------------------------------------------------------

REWRITES = [
    # (id, config, source image, expected image)
    ("gdc-doc-somehost", GDC, "somehost.io/kubernetes-e2e-test-images/nautilus:1.0",
     "172.18.0.20:5000/test-namespace/kubernetes-e2e-test-images/nautilus:1.0"),
    ("gdc-doc-gcr", GDC, "gcr.io/kubernetes-e2e-test-images/nautilus:1.0",
     "172.18.0.20:5000/test-namespace/kubernetes-e2e-test-images/nautilus:1.0"),
    ("docker-official-short", GDC, "nginx", "172.18.0.20:5000/test-namespace/library/nginx"),
    ("docker-official-tag", GDC, "nginx:latest",
     "172.18.0.20:5000/test-namespace/library/nginx:latest"),
    ("docker-user-repo", GDC, "envoyproxy/envoy:v1.29.4",
     "172.18.0.20:5000/test-namespace/envoyproxy/envoy:v1.29.4"),
    ("docker-io-alias-index", GDC, "index.docker.io/library/redis:7",
     "172.18.0.20:5000/test-namespace/library/redis:7"),
    ("docker-io-alias-registry-1", GDC, "registry-1.docker.io/bitnami/redis:7",
     "172.18.0.20:5000/test-namespace/bitnami/redis:7"),
    ("digest-kept", GDC, "gcr.io/distroless/static@sha256:" + "b" * 64,
     "172.18.0.20:5000/test-namespace/distroless/static@sha256:" + "b" * 64),
    ("tag-and-digest-kept", GDC, "docker.io/library/busybox:1.36@sha256:" + "c" * 64,
     "172.18.0.20:5000/test-namespace/library/busybox:1.36@sha256:" + "c" * 64),
    ("unmirrored-host-untouched", GDC, "quay.io/prometheus/node-exporter:v1",
     "quay.io/prometheus/node-exporter:v1"),
    ("lookalike-host-untouched", GDC, "docker.io.evil.example/library/nginx:1",
     "docker.io.evil.example/library/nginx:1"),
    ("already-on-mirror-untouched", GDC, "172.18.0.20:5000/test-namespace/library/nginx:1",
     "172.18.0.20:5000/test-namespace/library/nginx:1"),
    ("http-mirror-root-namespace", HTTP_MIRROR, "quay.io/coreos/etcd:v3.5",
     "10.0.0.9:5000/coreos/etcd:v3.5"),
    ("host-port-namespace-form", HTTP_MIRROR, "ghcr.io/org/app:2",
     "mirror.example:5443/cache/org/app:2"),
]


@pytest.mark.parametrize(("config", "image", "expected"), [r[1:] for r in REWRITES],
                         ids=[r[0] for r in REWRITES])
def test_rewrites_images_to_their_mirror(config: str, image: str, expected: str) -> None:
    outcome = mutate(pod(image), ctx(config))
    assert outcome.denial is None
    assert images(outcome.pod) == [expected]


def test_init_containers_are_rewritten_too() -> None:
    outcome = mutate(pod("nginx:1", init=("busybox:1.36",)), ctx(GDC))
    assert images(outcome.pod, "initContainers") == [
        "172.18.0.20:5000/test-namespace/library/busybox:1.36"]


def test_original_images_are_recorded_by_container_name() -> None:
    outcome = mutate(pod("nginx:1", "quay.io/a/b:1", init=("busybox",)), ctx(GDC))
    recorded = json.loads(outcome.pod["metadata"]["annotations"][ORIGINALS])
    assert recorded == {"c0": "nginx:1", "i0": "busybox"}


def test_used_mirror_pull_secret_is_added_after_existing_ones() -> None:
    # The Tanzu documentation's Pod already names its registry secret; ours comes after it.
    outcome = mutate(pod("nginx", imagePullSecrets=[{"name": "registry-secret"}]), ctx(GDC))
    assert outcome.pod["spec"]["imagePullSecrets"] == [{"name": "registry-secret"},
                                                       {"name": "mirror-pull"}]


def test_unused_mirror_adds_no_pull_secret() -> None:
    outcome = mutate(pod("quay.io/a/b:1"), ctx(GDC))
    assert "imagePullSecrets" not in outcome.pod["spec"]


@pytest.mark.parametrize(("image", "key", "entry"), [
    ("quay.io/coreos/etcd:v3.5", HTTP, "10.0.0.9:5000"),
    ("ghcr.io/org/app:2", INSECURE, "mirror.example:5443"),
], ids=["http-endpoint", "insecure-skip-verify"])
def test_mirror_that_needs_it_is_declared_in_kci_annotations(image: str, key: str,
                                                             entry: str) -> None:
    outcome = mutate(pod(image, annotations={key: "registry.example.com"}), ctx(HTTP_MIRROR))
    assert outcome.pod["metadata"]["annotations"][key] == f"registry.example.com,{entry}"


def test_invalid_image_reference_is_left_with_a_warning() -> None:
    outcome = mutate(pod("Nginx:1"), ctx(GDC))
    assert images(outcome.pod) == ["Nginx:1"]
    assert any("is not a valid reference" in w for w in outcome.warnings)


def test_rewrite_that_would_pass_255_characters_is_left_with_a_warning() -> None:
    long_image = "docker.io/" + "a" * 235 + ":1"   # valid (245 chars), too long with the prefix
    outcome = mutate(pod(long_image), ctx(GDC))
    assert images(outcome.pod) == [long_image]
    assert any("would be an invalid reference" in w for w in outcome.warnings)


# --- KCI annotations: documented examples, validation, onInvalid ----------------------


def test_documented_deployment_annotations_are_injected_into_the_pod() -> None:
    spec_pod = pod("nginx:latest", annotations={DNS: DOC_DNS, HOST_ALIASES: DOC_ALIASES},
                   tolerations=[DOC_TOLERATION])
    result = mutate(spec_pod, ctx()).pod
    assert result["spec"]["hostAliases"] == [
        {"ip": "1.2.3.4", "hostnames": ["www.privaterepo1.com"]},
        {"ip": "2.3.4.5", "hostnames": ["www.privaterepo2.com"]}]
    assert result["spec"]["dnsConfig"] == {
        "nameservers": ["1.1.1.1"], "searches": ["test1.com"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "timeout", "value": "3"}]}
    # already valid: the author's text is kept, not re-rendered
    assert result["metadata"]["annotations"][DNS] == DOC_DNS


@pytest.mark.parametrize(("annotations", "message"), [
    ({HOST_ALIASES: '[{"ip":"1.2.3","hostnames":["a.example"]}]'},
     'k8s.ksyun.com/kci-host-aliases (pod): item 1: "ip": "1.2.3" is not an IPv4 or IPv6 address'),
    ({HOST_ALIASES: '[{"ip":"1.2.3.4","hostname":["a.example"]}]'},
     'k8s.ksyun.com/kci-host-aliases (pod): item 1: unknown key "hostname"'),
    ({DNS: '{"nameservers":["1.1.1.1","2.2.2.2","3.3.3.3","4.4.4.4"]}'},
     "k8s.ksyun.com/kci-dns-config (pod)"),
    ({HTTP: "http://192.168.1.5:5000"}, "k8s.ksyun.com/kci-http-registry (pod): entry 1"),
    ({INSECURE: "harbor.example.com,"}, "k8s.ksyun.com/kci-insecure-registry (pod): entry 2"),
    ({DNS: "{not json"}, "k8s.ksyun.com/kci-dns-config (pod): invalid JSON"),
    ({"kci-webhook/mirrors": "maybe"}, "kci-webhook/mirrors (pod)"),
], ids=["bad-ip", "unknown-key", "too-many-nameservers", "scheme-in-registry",
        "empty-registry-entry", "bad-json", "bad-switch"])
def test_invalid_pod_annotation_is_denied_with_a_message_naming_it(
        annotations: dict[str, str], message: str) -> None:
    outcome = mutate(pod("nginx", annotations=annotations), ctx(GDC))
    assert outcome.denial is not None and outcome.denial.startswith(message)
    assert outcome.pod is not None


def test_on_invalid_warn_admits_ignores_the_value_and_warns() -> None:
    bad = '[{"ip":"1.2.3","hostnames":["a.example"]}]'
    outcome = mutate(pod("nginx", annotations={HOST_ALIASES: bad}),
                     ctx("onInvalid: warn\n" + GDC))
    assert outcome.denial is None
    assert images(outcome.pod) == ["172.18.0.20:5000/test-namespace/library/nginx"]
    assert "hostAliases" not in outcome.pod["spec"]
    assert any(w.startswith("k8s.ksyun.com/kci-host-aliases (pod): item 1") and "ignored" in w
               for w in outcome.warnings)


def test_dns_limits_are_checked_after_merging_with_the_spec() -> None:
    dns = '{"nameservers":["1.1.1.1","2.2.2.2"]}'
    outcome = mutate(pod("nginx", annotations={DNS: dns},
                         dnsConfig={"nameservers": ["8.8.8.8", "9.9.9.9"]}), ctx())
    assert outcome.denial is not None
    assert "after merging with spec.dnsConfig" in outcome.denial


def test_spec_dns_entries_come_first_and_spec_options_win() -> None:
    dns = '{"nameservers":["1.1.1.1","8.8.8.8"],"options":[{"name":"ndots","value":"2"}]}'
    spec_dns = {"nameservers": ["8.8.8.8"], "options": [{"name": "ndots", "value": "5"}]}
    result = mutate(pod("nginx", annotations={DNS: dns}, dnsConfig=spec_dns), ctx()).pod
    assert result["spec"]["dnsConfig"]["nameservers"] == ["8.8.8.8", "1.1.1.1"]
    assert result["spec"]["dnsConfig"]["options"] == [{"name": "ndots", "value": "5"}]


def test_spec_host_aliases_are_kept_and_win() -> None:
    existing = [{"ip": "9.9.9.9", "hostnames": ["www.privaterepo1.com"]}]
    result = mutate(pod("nginx", annotations={HOST_ALIASES: DOC_ALIASES},
                        hostAliases=existing), ctx()).pod
    assert result["spec"]["hostAliases"] == [
        *existing, {"ip": "2.3.4.5", "hostnames": ["www.privaterepo2.com"]}]


# --- precedence --------------------------------------------------------------------------

CONFIG_DEFAULTS = """
defaults:
  hostAliases: [{ip: 10.0.0.4, hostnames: [config.example, shared.example]}]
  dnsConfig: {nameservers: [10.0.0.4]}
"""
ENV = {"KCI_HOST_ALIASES": '[{"ip":"10.0.0.3","hostnames":["env.example","shared.example"]}]',
       "KCI_DNS_CONFIG": '{"nameservers":["10.0.0.3"]}'}
# Pod and namespace share team.example; the platform's levels (environment and config)
# share shared.example, which pods and namespaces may not re-point (see test_security).
NS = {HOST_ALIASES: '[{"ip":"10.0.0.2","hostnames":["ns.example","team.example"]}]',
      DNS: '{"nameservers":["10.0.0.2"]}'}
POD = {HOST_ALIASES: '[{"ip":"10.0.0.1","hostnames":["pod.example","team.example"]}]',
       DNS: '{"nameservers":["10.0.0.1"]}'}

PRECEDENCE = [
    # (id, pod annotations, namespace annotations, environment,
    #  winner of team.example + DNS, winner of shared.example)
    ("config-only", {}, None, None, "10.0.0.4", "10.0.0.4"),
    ("env-over-config", {}, None, ENV, "10.0.0.3", "10.0.0.3"),
    ("namespace-over-env", {}, NS, ENV, "10.0.0.2", "10.0.0.3"),
    ("pod-over-all", POD, NS, ENV, "10.0.0.1", "10.0.0.3"),
    ("pod-over-config", POD, None, None, "10.0.0.1", "10.0.0.4"),
]


@pytest.mark.parametrize(("pod_ann", "ns_ann", "env", "winner", "platform"),
                         [p[1:] for p in PRECEDENCE], ids=[p[0] for p in PRECEDENCE])
def test_precedence_pod_namespace_environment_config(
        pod_ann: dict[str, str], ns_ann: dict[str, str] | None, env: dict[str, str] | None,
        winner: str, platform: str) -> None:
    outcome = mutate(pod("nginx", annotations=dict(pod_ann)),
                     ctx(CONFIG_DEFAULTS, ns_annotations=ns_ann, env=env))
    result = outcome.pod
    ip_of = {h: a["ip"] for a in result["spec"]["hostAliases"] for h in a["hostnames"]}
    if pod_ann or ns_ann:
        assert ip_of["team.example"] == winner
    assert ip_of["shared.example"] == platform       # environment over config
    assert ip_of["config.example"] == "10.0.0.4"     # lower levels still contribute names
    assert result["spec"]["dnsConfig"]["nameservers"] == [winner]   # DNS: winner takes all
    written = json.loads(result["metadata"]["annotations"][DNS])
    assert written == {"nameservers": [winner]}
    assert outcome.warnings == []


@pytest.mark.parametrize(("vk", "expected"), [(True, True), (False, False)],
                         ids=["virtual-kubelet-pod", "ordinary-pod"])
def test_virtual_kubelet_scope_limits_defaults(vk: bool, expected: bool) -> None:
    config = "defaults:\n  scope: virtual-kubelet\n"
    extra = {"tolerations": [DOC_TOLERATION]} if vk else {}
    result = mutate(pod("nginx", **extra), ctx(config, env=ENV)).pod
    assert ("hostAliases" in result["spec"]) is expected


def test_virtual_kubelet_recognised_by_node_affinity_as_the_vendor_documents() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "type", "operator": "In", "values": ["virtual-kubelet"]}]}]}}}
    result = mutate(pod("nginx", affinity=affinity),
                    ctx("defaults:\n  scope: virtual-kubelet\n", env=ENV)).pod
    assert "hostAliases" in result["spec"]


def test_registry_lists_are_the_union_of_levels() -> None:
    outcome = mutate(pod("nginx", annotations={HTTP: "a.example:5000"}),
                     ctx(ns_annotations={HTTP: "b.example, a.example:5000"}))
    assert outcome.pod["metadata"]["annotations"][HTTP] == "a.example:5000,b.example"


def test_invalid_namespace_annotation_is_ignored_with_a_warning() -> None:
    outcome = mutate(pod("nginx"), ctx(GDC, namespace="team-a",
                                       ns_annotations={HOST_ALIASES: "[{"}))
    assert outcome.denial is None
    assert any(w.startswith("k8s.ksyun.com/kci-host-aliases (namespace team-a)")
               for w in outcome.warnings)


def test_namespace_pull_secrets_are_added() -> None:
    outcome = mutate(pod("quay.io/a/b"), ctx(ns_annotations={
        "kci-webhook/image-pull-secrets": "team-pull, other-pull"}))
    assert outcome.pod["spec"]["imagePullSecrets"] == [{"name": "team-pull"},
                                                       {"name": "other-pull"}]


# --- opt-outs and security ---------------------------------------------------------------


def test_pod_opt_out_keeps_images_but_still_injects_aliases() -> None:
    outcome = mutate(pod("nginx", annotations={"kci-webhook/mirrors": "off",
                                               HOST_ALIASES: DOC_ALIASES}), ctx(GDC))
    assert images(outcome.pod) == ["nginx"]
    assert len(outcome.pod["spec"]["hostAliases"]) == 2


def test_namespace_off_cannot_be_turned_back_on_by_the_pod() -> None:
    outcome = mutate(pod("nginx", annotations={"kci-webhook/mirrors": "on"}),
                     ctx(GDC, ns_annotations={"kci-webhook/mirrors": "off"}))
    assert images(outcome.pod) == ["nginx"]


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kci-webhook"])
def test_excluded_namespaces_are_never_touched(namespace: str) -> None:
    original = pod("nginx", annotations={HOST_ALIASES: "not json"})
    outcome = mutate(original, ctx(GDC, namespace=namespace))
    assert outcome.pod is original and outcome.denial is None and not outcome.warnings


@pytest.mark.parametrize(("declared", "allowed"), [
    ("harbor.corp.example", True),
    ("10.1.2.3:5000", True),
    ("registry.evil.example", False),
    ("10.1.2.3:5001", False),
], ids=["wildcard", "exact-port", "other-domain", "other-port"])
def test_allowed_insecure_registries_refuse_others(declared: str, allowed: bool) -> None:
    config = 'security:\n  allowedInsecureRegistries: ["*.corp.example", "10.1.2.3:5000"]\n'
    outcome = mutate(pod("nginx", annotations={INSECURE: declared}), ctx(config))
    assert (outcome.denial is None) is allowed
    if not allowed:
        assert declared in (outcome.denial or "")


# --- idempotency and purity --------------------------------------------------------------


def test_mutation_is_idempotent_and_never_modifies_its_input() -> None:
    original = pod("nginx:1", "quay.io/coreos/etcd:v3.5", init=("ghcr.io/org/app:2",),
                   annotations={DNS: DOC_DNS, HOST_ALIASES: DOC_ALIASES, HTTP: "x.example"},
                   imagePullSecrets=[{"name": "s"}], tolerations=[DOC_TOLERATION])
    snapshot = copy.deepcopy(original)
    config = GDC + HTTP_MIRROR.replace("mirrors:\n", "")
    outcome = mutate(original, ctx(config, ns_annotations=NS, env=ENV))
    first = outcome.pod
    second = mutate(copy.deepcopy(first), ctx(config, ns_annotations=NS, env=ENV))
    assert original == snapshot
    assert second.pod == first
    # advice only, and nothing new: the pod's own http registry is unused; the mirror's
    # host the first pass added to that list is not the author's typo
    typo = ("k8s.ksyun.com/kci-http-registry (pod): registry 'x.example' is not used by any "
            "image of this pod (a typo?)")
    assert typo in outcome.warnings
    assert second.warnings == [typo]


def test_unchanged_pod_is_returned_as_the_same_object() -> None:
    original = pod("quay.io/a/b:1")     # no mirror serves it: the first pass says so
    original["metadata"]["annotations"] = {
        "kci-webhook/images": '{"v":1,"c":{"c0":"kept:no-mirror"}}'}
    assert mutate(original, ctx(GDC)).pod is original


def test_with_no_mirror_configured_a_pod_is_left_as_it_came() -> None:
    original = pod("quay.io/a/b:1")
    assert mutate(original, ctx("")).pod is original


@pytest.mark.parametrize("bad", [
    {"spec": []}, {"spec": {"containers": "nginx"}}, {"spec": {"containers": [1]}},
    {"metadata": "x", "spec": {}}, {"metadata": {"annotations": []}, "spec": {}},
    {"spec": {"containers": [], "dnsConfig": []}},
    {"spec": {"containers": [], "imagePullSecrets": [{"name": ["a"]}]}},
], ids=["spec-list", "containers-string", "container-int", "metadata-string",
        "annotations-list", "dns-list", "pull-secret-name-list"])
def test_object_not_shaped_like_a_pod_is_an_invalid_input(bad: dict[str, Any]) -> None:
    from webhook.core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        mutate(bad, ctx(GDC))


# --- precedence × onInvalid × scope --------------------------------------------------------

BAD_POD = {HOST_ALIASES: '[{"ip":"1.2.3","hostnames":["team.example"]}]'}
MATRIX = [
    # (id, onInvalid, scope, virtual-kubelet pod, pod annotations, denied, team.example IP)
    ("deny-all-valid", "deny", "all", False, POD, False, "10.0.0.1"),
    ("deny-all-invalid", "deny", "all", False, BAD_POD, True, None),
    ("warn-all-invalid-falls-to-namespace", "warn", "all", False, BAD_POD, False, "10.0.0.2"),
    ("warn-vk-invalid-falls-to-namespace", "warn", "virtual-kubelet", True, BAD_POD, False,
     "10.0.0.2"),
    ("vk-scope-ordinary-pod-no-env-config", "deny", "virtual-kubelet", False, {}, False,
     "10.0.0.2"),
    ("vk-scope-vk-pod-gets-all", "deny", "virtual-kubelet", True, {}, False, "10.0.0.2"),
]


@pytest.mark.parametrize(("on_invalid", "scope", "vk", "pod_ann", "denied", "winner"),
                         [m[1:] for m in MATRIX], ids=[m[0] for m in MATRIX])
def test_precedence_with_both_modes_and_both_scopes(
        on_invalid: str, scope: str, vk: bool, pod_ann: dict[str, str], denied: bool,
        winner: str | None) -> None:
    config = f"onInvalid: {on_invalid}\n" + CONFIG_DEFAULTS + f"  scope: {scope}\n"
    extra = {"tolerations": [DOC_TOLERATION]} if vk else {}
    outcome = mutate(pod("nginx", annotations=dict(pod_ann), **extra),
                     ctx(config, ns_annotations=NS, env=ENV))
    assert (outcome.denial is not None) is denied
    if denied:
        return
    ip_of = {h: a["ip"] for a in outcome.pod["spec"]["hostAliases"] for h in a["hostnames"]}
    assert ip_of["team.example"] == winner
    env_and_config_apply = scope == "all" or vk
    assert ("env.example" in ip_of) is env_and_config_apply
    assert ("config.example" in ip_of) is env_and_config_apply
