"""The platform's rules hold whatever a pod says, in every dialect and on every path: the
alias of a mirror's host reaches every pod that pulls from it, whatever
`defaults.scope` says; another dialect's registry and hosts keys are judged as the active
dialect's are; an UPDATE is judged on the pod as it will be; a registry is the same
registry however it is spelt; and the record of original images cannot be rewritten."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import orjson
import pytest

from tests import builders
from tests.builders import pod
from tests.conftest import pod_review
from tests.k8s_schema import accepted
from webhook.core.admission.patch import PatchMismatch
from webhook.core.admission.pipeline import admit_offline as admit
from webhook.core.admission.scope import check_patch_scope
from webhook.core.config import (
    Config,
    load_config,
    mirror_keys,
    registry_allowed,
    registry_key,
)
from webhook.core.mutation.context import Context, MutationResult
from webhook.core.mutation.create import is_virtual_kubelet_pod, mutate
from webhook.core.mutation.record import read_record, updated_record
from webhook.core.mutation.update import mutate_update

KCI_HOSTS = "k8s.ksyun.com/kci-host-aliases"
KCI_DNS = "k8s.ksyun.com/kci-dns-config"
KCI_HTTP = "k8s.ksyun.com/kci-http-registry"
KCI_INSECURE = "k8s.ksyun.com/kci-insecure-registry"
ECI_HOSTS = "k8s.aliyun.com/eci-custom-hosts"
ECI_HTTP = "k8s.aliyun.com/plain-http-registry"
ECI_INSECURE = "k8s.aliyun.com/insecure-registry"
EKS_HTTP = "eks.tke.cloud.tencent.com/registry-http-endpoint"
EKS_INSECURE = "eks.tke.cloud.tencent.com/registry-insecure-skip-verify"
EKS_DNS = "eks.tke.cloud.tencent.com/resolv-conf"
DIALECT = "kci-webhook/dialect"
ORIGINALS = "kci-webhook/original-images"
PULL_SECRETS = "kci-webhook/image-pull-secrets"

# No allow-list (the default): only the mirrors' own declarations restrict TLS. The named
# mirror's host is pinned by the config's defaults; `files.corp.example` is an ordinary
# default alias, which `defaults.scope` governs.
CONFIG = """
defaults:
  scope: {scope}
  hostAliases:
    - {{ip: 10.0.0.20, hostnames: [mirror.corp.example]}}
    - {{ip: 10.0.0.30, hostnames: [files.corp.example]}}
mirrors:
  - endpoint: https://mirror.corp.example:5000/v2/cache
    hosts: [docker.io]
    pullSecret: mirror-pull
  - endpoint: https://skip-mirror.example:5443
    hosts: [ghcr.io]
    insecureSkipVerify: true
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
  - endpoint: https://[fd00::20]:5000
    hosts: [gcr.io]
    pullSecret: v6-pull
  - endpoint: https://portless.example
    hosts: [registry.k8s.io]
    pullSecret: portless-pull
"""
MIRRORED = "mirror.corp.example:5000/cache/library/nginx:1.25"
PIN = {"ip": "10.0.0.20", "hostnames": ["mirror.corp.example"]}
OWN_RESOLVER = '{"nameservers":["6.6.6.6"]}'


def config(scope: str = "all", *, on_invalid: str = "deny", extra: str = "") -> Config:
    return load_config(f"onInvalid: {on_invalid}\n" + CONFIG.format(scope=scope) + extra,
                       source="test")


def ctx(scope: str = "all", *, dialect: str | None = None, ns: dict[str, str] | None = None,
        env: dict[str, str] | None = None, on_invalid: str = "deny", extra: str = "") -> Context:
    return builders.context(config(scope, on_invalid=on_invalid, extra=extra), ns=ns, env=env,
                            dialect=dialect)


def admitted(outcome: MutationResult) -> dict[str, Any]:
    assert outcome.denial is None, outcome.denial
    return accepted(outcome.pod)


def aliases_of(result: dict[str, Any]) -> dict[str, str]:
    return {h: a["ip"] for a in result["spec"].get("hostAliases", []) for h in a["hostnames"]}


def denied_with(outcome: MutationResult, fragment: str) -> None:
    assert outcome.denial is not None, "admitted"
    assert fragment in outcome.denial, outcome.denial


# --- the alias of a mirror's host, whatever defaults.scope says ----------------------------

SCOPE_CASES = [
    # (id, spec fields, recognised as bound for a virtual kubelet)
    ("toleration-of-every-taint", {"tolerations": [{"operator": "Exists"}]}, True),
    ("toleration-of-every-noschedule-taint",
     {"tolerations": [{"operator": "Exists", "effect": "NoSchedule"}]}, True),
    ("node-name-set", {"nodeName": "rbkci-virtual-kubelet"}, False),
    ("toleration-of-every-noexecute-taint-only",
     {"tolerations": [{"operator": "Exists", "effect": "NoExecute"}]}, False),
    ("no-mark-at-all", {}, False),
    ("the-documented-toleration", {"tolerations": [
        {"key": "rbkci-virtual-kubelet.io/provider", "value": "kingsoftcloud",
         "effect": "NoSchedule"}]}, True),
]


@pytest.mark.parametrize(("spec", "recognised"), [c[1:] for c in SCOPE_CASES],
                         ids=[c[0] for c in SCOPE_CASES])
def test_a_pod_that_pulls_from_a_mirror_gets_its_alias_whatever_the_scope(
        spec: dict[str, Any], recognised: bool) -> None:
    """The pod names its own resolver: the mirror's name must not be left to it."""
    assert is_virtual_kubelet_pod(spec) is recognised
    context = ctx("virtual-kubelet")
    outcome = mutate(pod("nginx:1.25", annotations={KCI_DNS: OWN_RESOLVER}, **spec), context)
    result = admitted(outcome)
    assert result["spec"]["containers"][0]["image"] == MIRRORED
    assert result["spec"]["imagePullSecrets"] == [{"name": "mirror-pull"}]
    assert aliases_of(result)["mirror.corp.example"] == "10.0.0.20"
    written = json.loads(result["metadata"]["annotations"][KCI_HOSTS])
    assert {h: a["ip"] for a in written for h in a["hostnames"]}["mirror.corp.example"] == (
        "10.0.0.20")
    # The other defaults stay the scope's: only a recognised pod gets them.
    assert ("files.corp.example" in aliases_of(result)) is recognised
    again = mutate(copy.deepcopy(result), context)          # reinvocation: a no-op
    assert again.denial is None and again.pod == result


def test_outside_the_scope_a_pod_that_pulls_from_no_pinned_host_gets_no_alias() -> None:
    outcome = mutate(pod("quay.io/a/b:1", "ghcr.io/o/r:1", nodeName="vk-1"),
                     ctx("virtual-kubelet"))
    result = admitted(outcome)
    assert "hostAliases" not in result["spec"]
    assert KCI_HOSTS not in result["metadata"]["annotations"]


def test_outside_the_scope_the_environments_pin_reaches_the_pod_too() -> None:
    env = {"KCI_HOST_ALIASES": '[{"ip":"10.0.0.21","hostnames":["mirror.corp.example"]}]'}
    result = admitted(mutate(pod("nginx:1.25", nodeName="vk-1"),
                             ctx("virtual-kubelet", env=env)))
    assert aliases_of(result) == {"mirror.corp.example": "10.0.0.21"}


def test_outside_the_scope_a_pod_pulling_from_the_mirror_directly_gets_the_pin() -> None:
    # Written by its author as the mirror's image (port spelt with a leading zero).
    result = admitted(mutate(pod("mirror.corp.example:05000/cache/library/nginx:1"),
                             ctx("virtual-kubelet")))
    assert aliases_of(result) == {"mirror.corp.example": "10.0.0.20"}
    assert result["spec"]["imagePullSecrets"] == [{"name": "mirror-pull"}]


@pytest.mark.parametrize(("dialect", "hosts_key"), [("eci", ECI_HOSTS), ("eks", None),
                                                    ("cci", None)])
def test_outside_the_scope_the_pin_reaches_the_pod_in_every_dialect(
        dialect: str, hosts_key: str | None) -> None:
    result = admitted(mutate(pod("nginx:1.25", nodeName="vk-1"),
                             ctx("virtual-kubelet", dialect=dialect)))
    assert aliases_of(result) == {"mirror.corp.example": "10.0.0.20"}
    if hosts_key:
        assert json.loads(result["metadata"]["annotations"][hosts_key]) == [
            {"host": "mirror.corp.example", "ip": "10.0.0.20"}]


def test_a_pod_alias_of_the_mirror_is_refused_outside_the_scope_too() -> None:
    outcome = mutate(pod("nginx:1.25", nodeName="vk-1", annotations={
        KCI_HOSTS: '[{"ip":"6.6.6.6","hostnames":["mirror.corp.example"]}]'}),
        ctx("virtual-kubelet"))
    denied_with(outcome, "'mirror.corp.example' is aliased by the platform to 10.0.0.20")


# --- another dialect's registry keys: the whole rule, allow-list or not --------------------

FOREIGN_REGISTRIES = [
    # (id, active dialect, pod annotations, fragment of the denial or None)
    ("eks-http-all-on-a-kci-pod", "kci", {EKS_HTTP: "all"},
     f"{EKS_HTTP} (pod): 'all' (every registry) would weaken TLS for the configured mirror"),
    ("eci-insecure-https-mirror-on-a-kci-pod", "kci",
     {ECI_INSECURE: "mirror.corp.example:5000"},
     f"{ECI_INSECURE} (pod): registry 'mirror.corp.example:5000' is a configured mirror's"),
    ("the-same-in-the-active-dialects-key", "kci", {KCI_INSECURE: "mirror.corp.example:5000"},
     f"{KCI_INSECURE} (pod): registry 'mirror.corp.example:5000' is a configured mirror's"),
    ("kci-http-mirror-spelt-otherwise-on-an-eci-pod", "eci",
     {KCI_HTTP: "Mirror.Corp.Example:05000"}, "is a configured mirror's host"),
    ("eks-insecure-ipv6-mirror-spelt-otherwise", "cci", {EKS_INSECURE: "[fd00:0::20]:5000"},
     "is a configured mirror's host ([fd00::20]:5000)"),
    ("eks-all-insecure-names-the-verified-mirror", "eci", {EKS_INSECURE: "all"},
     "would weaken TLS for the configured mirror"),
    ("unreadable-foreign-list-with-mirrors-configured", "kci",
     {ECI_INSECURE: "mirror.corp.example:5000,http://x"},
     "another dialect's registry list that cannot be read"),
    ("skip-verify-mirror-as-its-config-says", "kci", {ECI_INSECURE: "skip-mirror.example:5443"},
     None),
    ("http-mirror-as-its-config-says", "kci", {EKS_HTTP: "10.0.0.9:5000"}, None),
    ("an-unrelated-registry-without-allow-list", "kci", {EKS_INSECURE: "harbor.example.com"},
     None),
]


@pytest.mark.parametrize(("active", "annotations", "fragment"),
                         [f[1:] for f in FOREIGN_REGISTRIES],
                         ids=[f[0] for f in FOREIGN_REGISTRIES])
@pytest.mark.parametrize("on_invalid", ["deny", "warn"])
def test_every_dialects_registry_keys_are_held_to_the_mirror_rules(
        active: str, annotations: dict[str, str], fragment: str | None,
        on_invalid: str) -> None:
    outcome = mutate(pod("nginx:1.25", annotations=annotations),
                     ctx(dialect=active, on_invalid=on_invalid))
    if fragment is None:
        admitted(outcome)
    else:
        denied_with(outcome, fragment)


@pytest.mark.parametrize("annotations", [
    {ECI_INSECURE: "mirror.corp.example:5000"}, {KCI_INSECURE: "mirror.corp.example:5000"},
    {EKS_HTTP: "all"}], ids=["eci-key", "kci-key", "eks-all"])
def test_the_decision_does_not_wait_for_the_namespace_cache(annotations: dict[str, str]
                                                            ) -> None:
    """A Namespace just annotated `kci-webhook/dialect: eci`: before the cache sees it the
    pod is read in the config's dialect, after in eci; it is refused both times."""
    unseen = mutate(pod("nginx:1.25", annotations=annotations), ctx())
    seen = mutate(pod("nginx:1.25", annotations=annotations), ctx(ns={DIALECT: "eci"}))
    assert unseen.denial is not None and seen.denial is not None
    # And as `kubectl annotate` on a pod created before.
    for context in (ctx(), ctx(ns={DIALECT: "eci"})):
        stored = created("nginx:1.25", context=context)
        new = copy.deepcopy(stored)
        new["metadata"]["annotations"].update(annotations)
        assert mutate_update(new, stored, context, sub_resource="").denial is not None


# --- another dialect's hosts key may not re-point a platform hostname -----------------------

FOREIGN_HOSTS = [
    # (id, active dialect, pod annotations, fragment of the denial or None)
    ("eci-hosts-on-a-kci-pod", "kci",
     {ECI_HOSTS: '[{"host":"mirror.corp.example","ip":"6.6.6.6"}]'},
     f"{ECI_HOSTS} (pod): hostname 'mirror.corp.example' is aliased by the platform"),
    ("kci-hosts-on-an-eci-pod", "eci",
     {KCI_HOSTS: '[{"ip":"6.6.6.6","hostnames":["files.corp.example"]}]'},
     f"{KCI_HOSTS} (pod): hostname 'files.corp.example' is aliased by the platform"),
    ("kci-hosts-on-an-eks-pod-names-an-unaliased-mirror", "eks",
     {KCI_HOSTS: '[{"ip":"6.6.6.6","hostnames":["portless.example"]}]'},
     "'portless.example' is a registry mirror's host"),
    # A hostname given two addresses does not parse in any dialect: refused as unreadable.
    ("a-second-mapping-behind-the-platforms-own", "kci",
     {ECI_HOSTS: '[{"host":"mirror.corp.example","ip":"10.0.0.20"},'
                 '{"host":"mirror.corp.example","ip":"6.6.6.6"}]'},
     f"{ECI_HOSTS} (pod): another dialect's host entries that cannot be read"),
    ("a-second-mapping-spelt-with-a-json-escape", "kci",
     {ECI_HOSTS: '[{"host":"mirror.corp.example","ip":"10.0.0.20"},'
                 '{"host":"mirror.corp.\\u0065xample","ip":"6.6.6.6"}]'},
     f"{ECI_HOSTS} (pod): another dialect's host entries that cannot be read"),
    ("unreadable-foreign-hosts", "kci", {ECI_HOSTS: '[{"host":"mirror.corp.example"}]'},
     f"{ECI_HOSTS} (pod): another dialect's host entries that cannot be read"),
    ("the-platforms-own-address-repeated", "kci",
     {ECI_HOSTS: '[{"host":"mirror.corp.example","ip":"10.0.0.20"}]'}, None),
    ("an-ordinary-name", "kci", {ECI_HOSTS: '[{"host":"team.example","ip":"6.6.6.6"}]'}, None),
    ("foreign-resolver-is-a-resolver-like-the-active-ones", "kci",
     {EKS_DNS: "nameserver 6.6.6.6"}, None),
]


@pytest.mark.parametrize(("active", "annotations", "fragment"),
                         [f[1:] for f in FOREIGN_HOSTS], ids=[f[0] for f in FOREIGN_HOSTS])
@pytest.mark.parametrize("on_invalid", ["deny", "warn"])
def test_every_dialects_hosts_key_is_held_to_the_platforms_hostnames(
        active: str, annotations: dict[str, str], fragment: str | None,
        on_invalid: str) -> None:
    outcome = mutate(pod("nginx:1.25", annotations=annotations),
                     ctx(dialect=active, on_invalid=on_invalid))
    if fragment is None:
        result = admitted(outcome)
        assert aliases_of(result)["mirror.corp.example"] == "10.0.0.20"
    else:
        denied_with(outcome, fragment)


# --- UPDATE: through the API, as `kubectl annotate` / `kubectl set image` send it ----------


def update(old: dict[str, Any], new: dict[str, Any], context: Context) -> dict[str, Any]:
    """The answer to a pod UPDATE review, with the patched object under "result"."""
    review = pod_review(new, namespace="team-a", operation="UPDATE")
    review["request"]["oldObject"] = old
    body = orjson.loads(admit(orjson.dumps(review), context_for=lambda _ns: context).body)
    response: dict[str, Any] = body["response"]
    result = copy.deepcopy(new)
    if "patch" in response:
        ops = orjson.loads(base64.b64decode(response["patch"]))
        check_patch_scope(ops, "", old=old, record=written_record(old, response))
        result = jsonpatch.apply_patch(result, ops)
    response["result"] = result
    return response


def written_record(old: dict[str, Any], response: dict[str, Any]) -> str | None:
    """The record an UPDATE may write: the stored one with the words its audit annotation
    gives for the images it brought (none when the stored pod has no record)."""
    stored = (old["metadata"].get("annotations") or {}).get("kci-webhook/images")
    audit = (response.get("auditAnnotations") or {}).get("images")
    if stored is None or audit is None:
        return None
    return updated_record(stored, read_record(audit))


def created(*images: str, context: Context, **kwargs: Any) -> dict[str, Any]:
    """A pod as the webhook admitted it at creation."""
    return admitted(mutate(pod(*images, **kwargs), context))


def annotated(stored: dict[str, Any], **changes: str | None) -> dict[str, Any]:
    """`stored` with annotations set (None: removed), as `kubectl annotate` sends it."""
    new = copy.deepcopy(stored)
    annotations = new["metadata"].setdefault("annotations", {})
    for key, value in changes.items():
        real = {"hosts": KCI_HOSTS, "dns": KCI_DNS, "eci_hosts": ECI_HOSTS,
                "eci_insecure": ECI_INSECURE, "eks_http": EKS_HTTP, "kci_http": KCI_HTTP,
                "originals": ORIGINALS}[key]
        if value is None:
            annotations.pop(real, None)
        else:
            annotations[real] = value
    return new


def with_image(stored: dict[str, Any], image: str, index: int = 0) -> dict[str, Any]:
    new = copy.deepcopy(stored)
    new["spec"]["containers"][index]["image"] = image
    return new


FOREIGN_UPDATES = [
    # (id, annotation changes, fragment of the denial)
    ("annotate-eks-http-all", {"eks_http": "all"}, "'all' (every registry) would weaken TLS"),
    ("annotate-eci-insecure-mirror", {"eci_insecure": "mirror.corp.example:5000"},
     "is a configured mirror's host"),
    ("annotate-eci-hosts-repointing-the-mirror",
     {"eci_hosts": '[{"host":"mirror.corp.example","ip":"6.6.6.6"}]'},
     "it may not be pointed at 6.6.6.6"),
    ("annotate-eci-hosts-second-mapping",
     {"eci_hosts": '[{"host":"mirror.corp.example","ip":"10.0.0.20"},'
                   '{"host":"mirror.corp.example","ip":"6.6.6.6"}]'},
     "another dialect's host entries that cannot be read"),
]


@pytest.mark.parametrize(("changes", "fragment"), [f[1:] for f in FOREIGN_UPDATES],
                         ids=[f[0] for f in FOREIGN_UPDATES])
def test_an_update_holds_every_dialects_keys_to_the_rules(changes: dict[str, str],
                                                          fragment: str) -> None:
    context = ctx()
    stored = created("nginx:1.25", context=context)
    response = update(stored, annotated(stored, **changes), context)
    assert response["allowed"] is False
    assert fragment in response["status"]["message"]


def test_an_update_does_not_judge_again_what_predates_it() -> None:
    # Admitted under an older config (no such rule then): stays editable.
    context = ctx()
    stored = annotated(created("nginx:1.25", context=context),
                       eci_hosts='[{"host":"mirror.corp.example","ip":"6.6.6.6"}]',
                       eks_http="all")
    response = update(stored, annotated(stored, eci_hosts=(
        '[{"host":"mirror.corp.example","ip":"6.6.6.6"},{"host":"t.example","ip":"1.2.3.4"}]')),
        context)
    assert response["allowed"] is True


PIN_UPDATES = [
    # (id, the update as a function of the stored pod, fragment of the denial or None,
    #  the containers' images afterwards)
    ("drop-the-pin-set-a-resolver-and-bring-an-image-while-pulling-from-the-mirror",
     lambda s: with_image(annotated(s, hosts=None, dns=OWN_RESOLVER), "nginx:1.26"),
     "this update drops hostname 'mirror.corp.example', which the platform aliases to "
     "10.0.0.20", None),
    ("drop-the-pin-alone-while-pulling-from-the-mirror",
     lambda s: annotated(s, hosts='[{"ip":"10.0.0.30","hostnames":["files.corp.example"]}]'),
     "this update drops hostname 'mirror.corp.example'", None),
    ("drop-the-pin-and-leave-the-mirror-the-new-image-is-not-rewritten",
     lambda s: with_image(with_image(annotated(s, hosts=None, dns=OWN_RESOLVER), "nginx:1.26"),
                          "quay.io/a/b:1", 1),
     None, ["nginx:1.26", "10.0.0.9:5000/a/b:1"]),
    ("change-another-alias-and-keep-the-pin",
     lambda s: with_image(annotated(s, dns=OWN_RESOLVER, hosts=(
         '[{"ip":"10.0.0.20","hostnames":["mirror.corp.example"]},'
         '{"ip":"1.2.3.4","hostnames":["team.example"]}]')), "nginx:1.26"),
     None, ["mirror.corp.example:5000/cache/library/nginx:1.26", MIRRORED]),
]


@pytest.mark.parametrize(("edit", "fragment", "images"), [p[1:] for p in PIN_UPDATES],
                         ids=[p[0] for p in PIN_UPDATES])
def test_an_update_is_judged_on_the_pod_as_it_will_be(edit: Any, fragment: str | None,
                                                      images: list[str] | None) -> None:
    context = ctx()
    stored = created("nginx:1.25", "nginx:1.25", context=context,
                     annotations={KCI_HTTP: "10.0.0.9:5000"})
    assert PIN in json.loads(stored["metadata"]["annotations"][KCI_HOSTS])
    response = update(stored, edit(stored), context)
    if fragment is not None:
        assert response["allowed"] is False
        assert fragment in response["status"]["message"]
        return
    assert response["allowed"] is True
    assert [c["image"] for c in response["result"]["spec"]["containers"]] == images
    if images and images[0] == "nginx:1.26":
        assert any("'nginx:1.26' kept" in w and "does not; add mirror.corp.example at "
                   "10.0.0.20" in w for w in response["warnings"])


def test_dropping_an_alias_of_a_host_the_pod_does_not_pull_from_is_allowed() -> None:
    context = ctx()
    stored = created("quay.io/a/b:1", context=context)
    response = update(stored, annotated(stored, hosts=None, dns=OWN_RESOLVER), context)
    assert response["allowed"] is True


def test_a_pod_without_the_pin_does_not_start_pulling_from_the_mirror_on_update() -> None:
    """Created outside the defaults' scope pulling from no mirror, with the mirror's secret
    from its namespace and its own resolver: an image change may not send that secret to
    whatever the resolver says the mirror is."""
    context = ctx("virtual-kubelet", ns={PULL_SECRETS: "mirror-pull"})
    stored = created("quay.io/a/b:1", context=context, nodeName="vk-1",
                     annotations={KCI_DNS: OWN_RESOLVER})
    assert "hostAliases" not in stored["spec"]
    response = update(stored, with_image(stored, "nginx:1.26"), context)
    assert response["allowed"] is True       # the image kept; the record says why
    assert response["result"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert response["result"]["metadata"]["annotations"]["kci-webhook/images"] == (
        '{"v":1,"c":{"c0":"kept:no-alias"}}')
    assert any("'nginx:1.26' kept" in w and "add mirror.corp.example at 10.0.0.20 to the "
               f"pod's {KCI_HOSTS}" in w for w in response["warnings"])
    # The fix the warning gives: the alias in the same update.
    fixed = annotated(with_image(stored, "nginx:1.26"), hosts=json.dumps([PIN]))
    response = update(stored, fixed, context)
    assert response["allowed"] is True
    assert response["result"]["spec"]["containers"][0]["image"] == (
        "mirror.corp.example:5000/cache/library/nginx:1.26")


def test_without_a_hosts_key_the_stored_spec_must_carry_the_pin() -> None:
    context = ctx("virtual-kubelet", dialect="eks", ns={PULL_SECRETS: "mirror-pull"})
    stored = created("quay.io/a/b:1", context=context, nodeName="vk-1",
                     annotations={EKS_DNS: "nameserver 6.6.6.6"})
    outcome = mutate_update(with_image(stored, "nginx:1.26"), stored, context, sub_resource="")
    assert outcome.pod["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert any("spec.hostAliases does not (it cannot change after creation)" in w
               for w in outcome.warnings)
    # A pod created pulling from the mirror has it: the new image is rewritten.
    stored = created("nginx:1.25", context=context, nodeName="vk-1")
    outcome = mutate_update(with_image(stored, "nginx:1.26"), stored, context, sub_resource="")
    assert outcome.pod["spec"]["containers"][0]["image"] == (
        "mirror.corp.example:5000/cache/library/nginx:1.26")


# --- one registry however it is spelt --------------------------------------------------------

SAME_REGISTRY = [
    ("mirror:05000", "mirror:5000"),
    ("Mirror.Example:5000", "mirror.example:5000"),
    ("[0:0::1]:5000", "[::1]:5000"),
    ("[FD00::20]", "[fd00::20]"),
    ("[::ffff:a00:1]:5000", "10.0.0.1:5000"),
]


@pytest.mark.parametrize(("spelling", "canonical"), SAME_REGISTRY,
                         ids=[s[0] for s in SAME_REGISTRY])
def test_a_registry_is_one_key_however_it_is_spelt(spelling: str, canonical: str) -> None:
    assert registry_key(spelling) == registry_key(canonical)


def test_a_mirror_host_without_a_port_is_its_schemes_default_port() -> None:
    mirrors = {m.host: m for m in config().mirrors}
    https, http = mirrors["portless.example"], mirrors["10.0.0.9:5000"]
    assert https.is_host("portless.example:443") and https.is_host("PORTLESS.example")
    assert not https.is_host("portless.example:80")
    assert mirror_keys(http) == {("10.0.0.9", 5000)}
    assert not http.is_host("10.0.0.9")
    plain = load_config("mirrors: [{endpoint: 'http://plain.example', hosts: [quay.io]}]",
                        source="test").mirrors[0]
    assert plain.is_host("plain.example:80") and not plain.is_host("plain.example:443")


SPELLINGS = [
    # (id, pod annotations: a mirror's host spelt otherwise, fragment of the denial)
    ("leading-zero-port", {KCI_INSECURE: "mirror.corp.example:05000"},
     "'mirror.corp.example:05000' is a configured mirror's host (mirror.corp.example:5000)"),
    ("ipv6-spelt-otherwise", {KCI_INSECURE: "[fd00:0:0::20]:5000"},
     "is a configured mirror's host ([fd00::20]:5000)"),
    ("explicit-default-port", {KCI_HTTP: "portless.example:443"},
     "'portless.example:443' is a configured mirror's host (portless.example)"),
    ("http-mirror-declared-insecure-spelt-otherwise", {KCI_INSECURE: "10.0.0.9:05000"},
     "is a configured mirror's host (10.0.0.9:5000)"),
]


@pytest.mark.parametrize(("annotations", "fragment"), [s[1:] for s in SPELLINGS],
                         ids=[s[0] for s in SPELLINGS])
def test_a_mirrors_host_spelt_otherwise_is_still_the_mirrors(annotations: dict[str, str],
                                                            fragment: str) -> None:
    denied_with(mutate(pod("nginx:1.25", annotations=annotations), ctx()), fragment)


def test_the_allow_list_compares_canonical_registries() -> None:
    patterns = ("10.1.2.3:5000", "[fd00::1]", "*.corp.example:443")
    assert registry_allowed("10.1.2.3:05000", patterns)
    assert registry_allowed("[fd00:0::1]:8443", patterns)
    assert registry_allowed("Harbor.CORP.example:0443", patterns)
    assert not registry_allowed("10.1.2.3:5001", patterns)
    assert not registry_allowed("harbor.corp.example", patterns)


def test_the_webhooks_own_entry_spelt_otherwise_is_not_the_authors() -> None:
    # The author spelt the http mirror as its config does, but with a leading zero: it is
    # the platform's own declaration, allowed whatever the allow-list says.
    context = ctx(extra="security:\n  allowedInsecureRegistries: [harbor.example]\n")
    result = admitted(mutate(pod("quay.io/a/b:1", annotations={KCI_HTTP: "10.0.0.9:05000"}),
                             context))
    assert result["spec"]["containers"][0]["image"] == "10.0.0.9:5000/a/b:1"


def test_an_update_finds_the_mirror_in_a_list_that_spells_it_otherwise() -> None:
    context = ctx()
    stored = created("quay.io/a/b:1", context=context,
                     annotations={KCI_HTTP: "10.0.0.9:05000"})
    response = update(stored, with_image(stored, "quay.io/a/b:2"), context)
    assert response["allowed"] is True
    assert response["result"]["spec"]["containers"][0]["image"] == "10.0.0.9:5000/a/b:2"


# --- the record of original images on UPDATE -----------------------------------------------

RECORD_UPDATES = [
    # (id, the update as a function of the stored pod)
    ("annotate-overwrites-the-record",
     lambda s: annotated(s, originals='{"c0":"registry.evil.example/x:1"}')),
    ("annotate-removes-the-record", lambda s: annotated(s, originals=None)),
    # Every annotation at once; the pin of a mirror the pod pulls from would be refused.
    ("update-drops-every-annotation",
     lambda s: {**s, "metadata": {k: v for k, v in s["metadata"].items()
                                  if k != "annotations"}}),
    ("update-sets-annotations-to-null",
     lambda s: {**s, "metadata": {**s["metadata"], "annotations": None}}),
    ("record-changed-with-an-image",
     lambda s: with_image(annotated(s, originals='{"c0":"nginx:1.0"}'),
                          "registry.k8s.io/pause:3.10")),
]


@pytest.mark.parametrize("edit", [r[1] for r in RECORD_UPDATES],
                         ids=[r[0] for r in RECORD_UPDATES])
def test_the_record_of_original_images_survives_an_update(edit: Any) -> None:
    context = ctx()
    # From a mirror with no platform alias: the update may drop every other annotation.
    stored = created("registry.k8s.io/pause:3.9", context=context)
    record = stored["metadata"]["annotations"][ORIGINALS]
    assert json.loads(record) == {"c0": "registry.k8s.io/pause:3.9"}
    response = update(stored, edit(stored), context)
    assert response["allowed"] is True
    assert response["result"]["metadata"]["annotations"][ORIGINALS] == record
    assert any(w.startswith(f"{ORIGINALS}: recorded by the webhook when the pod was "
                            "created; an update may not change it") for w in response["warnings"])


def test_a_record_an_update_adds_to_a_pod_without_one_is_dropped() -> None:
    context = ctx()
    stored = created("quay.io/a/b:1", context=ctx(extra="exclude: {namespaces: [team-a]}"))
    assert ORIGINALS not in (stored["metadata"].get("annotations") or {})
    stored["metadata"]["annotations"] = {"team": "a"}
    response = update(stored, annotated(stored, originals='{"c0":"nginx:1"}'), context)
    assert response["allowed"] is True
    assert response["result"]["metadata"]["annotations"] == {"team": "a"}


def test_an_update_that_leaves_the_record_alone_is_not_patched() -> None:
    context = ctx()
    stored = created("nginx:1.25", context=context)
    new = copy.deepcopy(stored)
    new["metadata"]["labels"] = {"app": "web"}
    new["metadata"]["annotations"]["team"] = "a"
    response = update(stored, new, context)
    assert response["allowed"] is True and "patch" not in response


def test_the_record_is_restored_through_a_reinvocation_as_well() -> None:
    context = ctx()
    stored = created("nginx:1.25", context=context)
    first = update(stored, annotated(stored, originals='{"c0":"x"}'), context)
    second = update(stored, first["result"], context)
    assert second["allowed"] is True and "patch" not in second


def test_the_patch_scope_admits_the_stored_record_and_nothing_beside_it() -> None:
    path = "/metadata/annotations/kci-webhook~1original-images"
    with_record = {"metadata": {"annotations": {ORIGINALS: "{}"}}}
    for op in ({"op": "replace", "path": path, "value": "{}"},
               {"op": "add", "path": path, "value": "{}"},
               {"op": "add", "path": "/metadata/annotations", "value": {ORIGINALS: "{}"}},
               {"op": "replace", "path": "/metadata/annotations", "value": {ORIGINALS: "{}"}}):
        check_patch_scope([op], "", old=with_record)
    check_patch_scope([{"op": "remove", "path": path}], "", old={"metadata": {}})
    for op, sub, old in [
            ({"op": "replace", "path": path, "value": "{}"}, "ephemeralcontainers",
             with_record),
            ({"op": "replace", "path": path, "value": '{"c":"x"}'}, "", with_record),
            ({"op": "add", "path": path, "value": "{}"}, "", {"metadata": {}}),
            ({"op": "remove", "path": path}, "", with_record),
            ({"op": "add", "path": "/metadata/annotations",
              "value": {ORIGINALS: "{}", "x": "y"}}, "", with_record),
            ({"op": "add", "path": "/metadata/annotations", "value": {ORIGINALS: 1}}, "",
             with_record),
            ({"op": "add", "path": "/metadata/annotations", "value": {}}, "", with_record),
            ({"op": "remove", "path": "/metadata/annotations"}, "", with_record),
            ({"op": "replace", "path": "/metadata/annotations/k8s.ksyun.com~1kci-host-aliases",
              "value": "[]"}, "", with_record),
            ({"op": "add", "path": "/metadata", "value": {}}, "", with_record)]:
        with pytest.raises(PatchMismatch):
            check_patch_scope([op], sub, old=old)


def test_a_namespace_entry_naming_a_mirror_spelt_otherwise_is_dropped() -> None:
    outcome = mutate(pod("nginx:1.25"), ctx(ns={
        KCI_INSECURE: "mirror.corp.example:05000,harbor.example.com"}))
    result = admitted(outcome)
    assert result["metadata"]["annotations"][KCI_INSECURE] == "harbor.example.com"
    assert any(w.startswith(f"{KCI_INSECURE} (namespace team-a): registry "
                            "'mirror.corp.example:05000' is a configured mirror's host")
               for w in outcome.warnings)


def test_a_listed_registry_spelt_otherwise_than_the_image_is_no_typo() -> None:
    outcome = mutate(pod("harbor.example.com:5000/a/b:1", annotations={
        KCI_INSECURE: "Harbor.Example.com:05000,harbor.example.com:5001"}), ctx())
    admitted(outcome)
    typos = [w for w in outcome.warnings if "a typo?" in w]
    assert typos == [f"{KCI_INSECURE} (pod): registry 'harbor.example.com:5001' is not used "
                     "by any image of this pod (a typo?)"]
