"""Platform rules hold whatever a pod says: no label or annotation switches them off, no
pod or namespace re-points a platform hostname, recorded originals cannot be forged, and
a namespace's one bad registry entry costs it only that entry."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import builders
from tests.builders import pod
from tests.conftest import load_review
from tests.k8s_schema import accepted
from webhook.core.admission.pipeline import admit_offline as admit
from webhook.core.config import EnvironmentDefaults, environment_defaults, load_config
from webhook.core.mutation.context import Context, MutationResult
from webhook.core.mutation.create import mutate
from webhook.core.mutation.images import rewrites_to

HOST_ALIASES = "k8s.ksyun.com/kci-host-aliases"
HTTP = "k8s.ksyun.com/kci-http-registry"
INSECURE = "k8s.ksyun.com/kci-insecure-registry"
MIRRORS = "kci-webhook/mirrors"
ORIGINALS = "kci-webhook/original-images"
IGNORE = "kci-webhook.ksyun.com/ignore"   # the label an objectSelector once honoured

# Two mirrors: one addressed by name (its host is a DNS name a pod could alias), one by
# IP; a platform alias for the named one's host, and one for an ordinary name.
CONFIG = """
security:
  allowedInsecureRegistries: ["*.corp.example", "10.1.2.3:5000"]
defaults:
  hostAliases:
    - {ip: 10.0.0.20, hostnames: [mirror.corp.example]}
    - {ip: 10.0.0.30, hostnames: [files.corp.example]}
mirrors:
  - endpoint: https://mirror.corp.example:5000/v2/cache
    hosts: [docker.io]
    pullSecret: mirror-pull
  - endpoint: https://172.18.0.20:5000
    hosts: [gcr.io]
    pullSecret: gcr-pull
  - endpoint: https://unaliased-mirror.example:5443
    hosts: [ghcr.io]
    pullSecret: ghcr-pull
"""
MIRRORED = "mirror.corp.example:5000/cache/library/nginx:1.25"


def ctx(config: str = CONFIG, *, ns: dict[str, str] | None = None,
        env: dict[str, str] | None = None, on_invalid: str = "deny") -> Context:
    """A pod of team-a admitted under `config` with `onInvalid: on_invalid`."""
    return builders.context(load_config(f"onInvalid: {on_invalid}\n{config}", source="test"),
                            ns=ns, env=env)


def admitted(outcome: MutationResult) -> dict[str, Any]:
    """The mutated pod, after checking it is one the API server accepts (the 1.25 and
    newest schemas, and the 1.24 rules the schema cannot express)."""
    assert outcome.denial is None, outcome.denial
    return accepted(outcome.pod)


def aliases_of(result: dict[str, Any]) -> dict[str, str]:
    return {h: a["ip"] for a in result["spec"].get("hostAliases", []) for h in a["hostnames"]}


# --- no label or annotation switches validation or security off ---------------------------

BYPASSES = [
    # (id, labels, pod annotations, namespace annotations, onInvalid, fragment of the denial)
    ("ignore-label-with-insecure-registry", {IGNORE: "true"},
     {INSECURE: "registry.evil.example"}, None, "deny", "'registry.evil.example'"),
    ("ignore-label-and-mirrors-off-with-insecure-registry", {IGNORE: "true"},
     {MIRRORS: "off", INSECURE: "registry.evil.example"}, None, "deny",
     "'registry.evil.example'"),
    ("mirrors-off-in-warn-mode-with-http-registry", {IGNORE: "true"},
     {MIRRORS: "off", HTTP: "10.1.2.3:5001"}, None, "warn", "'10.1.2.3:5001'"),
    ("ignore-as-annotation-with-http-registry", None,
     {IGNORE: "true", HTTP: "registry.evil.example:80"}, None, "warn",
     "'registry.evil.example:80'"),
    ("namespace-mirrors-off-pod-insecure-registry", None,
     {INSECURE: "registry.evil.example"}, {MIRRORS: "off"}, "deny", "'registry.evil.example'"),
    ("mirrors-off-with-repointed-mirror-host", {IGNORE: "true"},
     {MIRRORS: "off", HOST_ALIASES: '[{"ip":"6.6.6.6","hostnames":["mirror.corp.example"]}]'},
     None, "warn", "'mirror.corp.example'"),
    ("mirrors-off-with-invalid-annotation", {IGNORE: "true"},
     {MIRRORS: "off", HOST_ALIASES: '[{"ip":"1.2.3","hostnames":["a.example"]}]'}, None,
     "deny", '"ip": "1.2.3" is not an IPv4 or IPv6 address'),
]


@pytest.mark.parametrize(("labels", "annotations", "ns", "on_invalid", "fragment"),
                         [b[1:] for b in BYPASSES], ids=[b[0] for b in BYPASSES])
def test_no_pod_label_or_annotation_skips_validation_or_security(
        labels: dict[str, str] | None, annotations: dict[str, str], ns: dict[str, str] | None,
        on_invalid: str, fragment: str) -> None:
    outcome = mutate(pod("nginx:1.25", annotations=annotations, labels=labels),
                     ctx(ns=ns, on_invalid=on_invalid))
    assert outcome.denial is not None and fragment in outcome.denial


def test_mirrors_off_keeps_images_and_still_applies_allowed_values() -> None:
    result = admitted(mutate(pod("nginx:1.25", labels={IGNORE: "true"}, annotations={
        MIRRORS: "off", INSECURE: "harbor.corp.example"}), ctx()))
    assert [c["image"] for c in result["spec"]["containers"]] == ["nginx:1.25"]
    assert aliases_of(result)["mirror.corp.example"] == "10.0.0.20"


# --- platform hostnames: mirrors' hosts and the platform's aliases ------------------------

ENV = {"KCI_HOST_ALIASES": '[{"ip":"10.0.0.40","hostnames":["env-pinned.example"]}]'}
REPOINTS = [
    # (id, pod annotations, spec.hostAliases, environment, onInvalid, fragment or None)
    ("annotation-repoints-mirror-host",
     {HOST_ALIASES: '[{"ip":"6.6.6.6","hostnames":["mirror.corp.example"]}]'}, None, None,
     "deny", "'mirror.corp.example' is aliased by the platform to 10.0.0.20"),
    ("annotation-repoints-mirror-host-in-warn-mode",
     {HOST_ALIASES: '[{"ip":"6.6.6.6","hostnames":["mirror.corp.example"]}]'}, None, None,
     "warn", "it may not be pointed at 6.6.6.6"),
    ("annotation-aliases-unaliased-mirror-host",
     {HOST_ALIASES: '[{"ip":"6.6.6.6","hostnames":["unaliased-mirror.example"]}]'}, None,
     None, "deny", "'unaliased-mirror.example' is a registry mirror's host"),
    ("annotation-aliases-ip-endpoint-mirror-host",
     {HOST_ALIASES: '[{"ip":"6.6.6.6","hostnames":["172.18.0.20"]}]'}, None, None, "deny",
     "'172.18.0.20' is a registry mirror's host"),
    ("annotation-repoints-config-default-alias",
     {HOST_ALIASES: '[{"ip":"6.6.6.6","hostnames":["files.corp.example"]}]'}, None, None,
     "deny", "'files.corp.example' is aliased by the platform to 10.0.0.30"),
    ("annotation-repoints-environment-alias",
     {HOST_ALIASES: '[{"ip":"6.6.6.6","hostnames":["env-pinned.example"]}]'}, None, ENV,
     "deny", "'env-pinned.example' is aliased by the platform to 10.0.0.40"),
    ("spec-host-aliases-repoint-mirror-host", None,
     [{"ip": "6.6.6.6", "hostnames": ["pod.example", "mirror.corp.example"]}], None, "warn",
     "spec.hostAliases[0]: hostname 'mirror.corp.example'"),
    ("platform-address-repeated-is-allowed",
     {HOST_ALIASES: '[{"ip":"10.0.0.20","hostnames":["mirror.corp.example"]}]'},
     [{"ip": "10.0.0.20", "hostnames": ["mirror.corp.example"]}], None, "deny", None),
    ("same-address-spelled-otherwise-is-allowed", None,
     [{"ip": "fd00:0:0::20", "hostnames": ["env-pinned.example"]}],
     {"KCI_HOST_ALIASES": '[{"ip":"fd00::20","hostnames":["env-pinned.example"]}]'},
     "deny", None),
    ("ordinary-hostname-is-the-pods-own",
     {HOST_ALIASES: '[{"ip":"6.6.6.6","hostnames":["corp.example"]}]'}, None, None, "deny",
     None),
]


@pytest.mark.parametrize(("annotations", "spec_aliases", "env", "on_invalid", "fragment"),
                         [r[1:] for r in REPOINTS], ids=[r[0] for r in REPOINTS])
def test_pod_may_not_repoint_a_platform_hostname(
        annotations: dict[str, str] | None, spec_aliases: list[dict[str, Any]] | None,
        env: dict[str, str] | None, on_invalid: str, fragment: str | None) -> None:
    extra: dict[str, Any] = {"hostAliases": spec_aliases} if spec_aliases else {}
    context = ctx(env=env, on_invalid=on_invalid)
    outcome = mutate(pod("nginx:1.25", annotations=annotations, **extra), context)
    again = mutate(pod("nginx:1.25", annotations=annotations, **extra), context)
    assert again.denial == outcome.denial          # a remembered judgement says the same
    if fragment is None:
        result = admitted(outcome)
        assert result["spec"]["containers"][0]["image"] == MIRRORED
        return
    assert outcome.denial is not None and fragment in outcome.denial


NS_REPOINTS = [
    # (id, namespace host aliases, expected hostname → IP in the pod, warned hostnames)
    ("mirror-host-dropped-other-kept",
     '[{"ip":"6.6.6.6","hostnames":["mirror.corp.example","team.example"]}]',
     {"mirror.corp.example": "10.0.0.20", "team.example": "6.6.6.6"}, ["mirror.corp.example"]),
    ("unaliased-mirror-host-dropped",
     '[{"ip":"6.6.6.6","hostnames":["unaliased-mirror.example"]}]',
     {"mirror.corp.example": "10.0.0.20"}, ["unaliased-mirror.example"]),
    ("config-alias-dropped-in-a-second-entry",
     '[{"ip":"10.9.9.9","hostnames":["team.example"]},'
     '{"ip":"6.6.6.6","hostnames":["files.corp.example"]}]',
     {"team.example": "10.9.9.9", "files.corp.example": "10.0.0.30"}, ["files.corp.example"]),
    ("platform-address-repeated-is-kept",
     '[{"ip":"10.0.0.20","hostnames":["mirror.corp.example"]}]',
     {"mirror.corp.example": "10.0.0.20"}, []),
]


@pytest.mark.parametrize(("ns_aliases", "expected", "warned"),
                         [r[1:] for r in NS_REPOINTS], ids=[r[0] for r in NS_REPOINTS])
def test_namespace_alias_of_a_platform_hostname_is_dropped_with_a_warning(
        ns_aliases: str, expected: dict[str, str], warned: list[str]) -> None:
    outcome = mutate(pod("nginx:1.25"), ctx(ns={HOST_ALIASES: ns_aliases}))
    result = admitted(outcome)
    ip_of = aliases_of(result)
    assert {name: ip_of.get(name) for name in expected} == expected
    assert json.loads(result["metadata"]["annotations"][HOST_ALIASES]) == [
        {"ip": ip, "hostnames": names} for ip, names in _grouped(ip_of).items()]
    repoint = [w for w in outcome.warnings if "may not be pointed at" in w]
    assert len(repoint) == len(warned)
    for warning, name in zip(repoint, warned, strict=True):
        assert warning.startswith(f"{HOST_ALIASES} (namespace team-a): hostname {name!r}")
        assert warning.endswith("(ignored)")
    assert result["spec"]["imagePullSecrets"] == [{"name": "mirror-pull"}]


def _grouped(ip_of: dict[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name, ip in ip_of.items():
        groups.setdefault(ip, []).append(name)
    return groups


@pytest.mark.parametrize("env", [None, ENV], ids=["config-aliases", "environment-too"])
def test_reinvocation_on_own_output_with_platform_aliases_changes_nothing(
        env: dict[str, str] | None) -> None:
    context = ctx(env=env, ns={HOST_ALIASES: '[{"ip":"10.9.9.9","hostnames":["t.example"]}]'})
    first = admitted(mutate(pod("nginx:1.25", "gcr.io/a/b:1"), context))
    second = mutate(copy.deepcopy(first), context)
    assert second.denial is None and second.warnings == []
    assert second.pod == first


# --- a mirror's host: TLS as its config says, whatever a pod declares ---------------------

# No allowedInsecureRegistries (the default): the mirrors' own declarations still hold.
TLS_CONFIG = """
mirrors:
  - endpoint: https://verified-mirror.example:5000
    hosts: [docker.io]
    pullSecret: mirror-pull
  - endpoint: https://skip-mirror.example:5443
    hosts: [ghcr.io]
    insecureSkipVerify: true
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
"""
MIRROR_TLS = [
    # (id, pod annotations, namespace annotations, onInvalid, fragment of the denial or None,
    #  the pod's kci-insecure-registry afterwards)
    ("verified-mirror-declared-insecure", {INSECURE: "verified-mirror.example:5000"}, None,
     "deny", "'verified-mirror.example:5000' is a configured mirror's host", None),
    ("verified-mirror-declared-http-in-warn-mode", {HTTP: "verified-mirror.example:5000"},
     None, "warn", "its pull secret goes there", None),
    ("http-mirror-declared-insecure", {INSECURE: "10.0.0.9:5000"}, None, "deny",
     "'10.0.0.9:5000' is a configured mirror's host", None),
    ("skip-verify-mirror-as-its-config-says", {INSECURE: "skip-mirror.example:5443"}, None,
     "deny", None, "skip-mirror.example:5443"),
    ("another-port-is-another-registry", {INSECURE: "verified-mirror.example:5001"}, None,
     "deny", None, "verified-mirror.example:5001"),
    ("namespace-entry-for-verified-mirror-dropped-alone", {},
     {INSECURE: "verified-mirror.example:5000,harbor.example"}, "deny", None,
     "harbor.example"),
]


@pytest.mark.parametrize(("annotations", "ns", "on_invalid", "fragment", "insecure"),
                         [m[1:] for m in MIRROR_TLS], ids=[m[0] for m in MIRROR_TLS])
def test_pod_may_not_weaken_tls_for_a_mirror_beyond_its_config(
        annotations: dict[str, str], ns: dict[str, str] | None, on_invalid: str,
        fragment: str | None, insecure: str | None) -> None:
    outcome = mutate(pod("nginx:1.25", annotations=annotations),
                     ctx(TLS_CONFIG, ns=ns, on_invalid=on_invalid))
    if fragment is not None:
        assert outcome.denial is not None and fragment in outcome.denial
        return
    result = admitted(outcome)
    assert result["metadata"]["annotations"].get(INSECURE) == insecure
    assert result["spec"]["containers"][0]["image"] == (
        "verified-mirror.example:5000/library/nginx:1.25")
    dropped = [w for w in outcome.warnings if "is a configured mirror's host" in w]
    assert len(dropped) == (1 if ns else 0)
    assert all(w.startswith(f"{INSECURE} (namespace team-a): registry "
                            "'verified-mirror.example:5000'") for w in dropped)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["verified-mirror.example", "VERIFIED-MIRROR.example",
                        "Verified-Mirror.Example"]),
       st.sampled_from(["5000", "05000"]),
       st.sampled_from([INSECURE, HTTP, "k8s.aliyun.com/insecure-registry",
                        "eks.tke.cloud.tencent.com/registry-http-endpoint"]),
       st.lists(st.sampled_from(["harbor.example", "10.1.1.1:5000"]), max_size=2,
                unique=True),
       st.sampled_from(["deny", "warn"]))
def test_a_mirrors_host_however_spelt_in_any_dialects_key_is_refused(
        host: str, port: str, key: str, others: list[str], on_invalid: str) -> None:
    value = ",".join([*others, f"{host}:{port}"])
    outcome = mutate(pod("nginx:1.25", annotations={key: value}),
                     ctx(TLS_CONFIG, on_invalid=on_invalid))
    assert outcome.denial is not None
    assert "is a configured mirror's host (verified-mirror.example:5000)" in outcome.denial


# --- the recorded originals are what the webhook saw ---------------------------------------

ORIGINAL_CASES = [
    # (id, incoming images, incoming original-images value, recorded afterwards (None:
    #  no annotation), fragment of a warning or None)
    ("forged-original-on-a-rewritten-container", ["nginx:1.25"],
     '{"c0":"registry.evil.example/x:1"}', {"c0": "nginx:1.25"},
     "container 'c0' was not rewritten from 'registry.evil.example/x:1'"),
    ("forged-original-on-an-unmirrored-image", ["quay.io/a/b:1"], '{"c0":"nginx:1.25"}',
     {"c0": "quay.io/a/b:1"}, "container 'c0' was not rewritten from 'nginx:1.25'"),
    ("forged-original-of-another-image-on-the-mirror", [MIRRORED],
     '{"c0":"docker.io/library/busybox:1"}', {"c0": MIRRORED}, "recorded as seen"),
    ("entry-for-a-container-that-does-not-exist", ["nginx:1.25"],
     '{"ghost":"nginx:1.25"}', {"c0": "nginx:1.25"}, "no container 'ghost'; entry dropped"),
    ("only-an-entry-for-a-missing-container", ["quay.io/a/b:1"], '{"ghost":"nginx:1"}', None,
     "no container 'ghost'"),
    ("not-json", ["quay.io/a/b:1"], "{not json", None, "not a JSON object"),
    ("json-but-not-an-object", ["nginx:1.25"], '["nginx:1.25"]', {"c0": "nginx:1.25"},
     "not a JSON object"),
    ("values-that-are-not-strings", [MIRRORED], '{"c0":{"image":"nginx:1.25"}}', None,
     "not a JSON object"),
    ("oversized-value", [MIRRORED],
     json.dumps({"c0": "nginx:1.25", "pad": "x" * (256 * 1024)}), None, "not a JSON object"),
    ("own-record-on-reinvocation-is-kept", [MIRRORED, "quay.io/a/b:1"],
     '{"c0":"nginx:1.25"}', {"c0": "nginx:1.25"}, None),
    ("own-record-through-the-ip-mirror-is-kept", ["172.18.0.20:5000/a/b:1"],
     '{"c0":"gcr.io/a/b:1"}', {"c0": "gcr.io/a/b:1"}, None),
]


@pytest.mark.parametrize(("images", "incoming", "recorded", "warning"),
                         [c[1:] for c in ORIGINAL_CASES], ids=[c[0] for c in ORIGINAL_CASES])
def test_recorded_originals_are_what_the_webhook_saw(
        images: list[str], incoming: str, recorded: dict[str, str] | None,
        warning: str | None) -> None:
    context = ctx()
    outcome = mutate(pod(*images, annotations={ORIGINALS: incoming}), context)
    result = admitted(outcome)
    annotations = result["metadata"].get("annotations", {})
    got = json.loads(annotations[ORIGINALS]) if ORIGINALS in annotations else None
    assert got == recorded
    if warning is None:
        assert not [w for w in outcome.warnings if ORIGINALS in w]
    else:
        assert any(w.startswith(ORIGINALS) and warning in w for w in outcome.warnings)
    again = mutate(copy.deepcopy(result), context)   # and the record is stable from then on
    assert again.pod == result and again.warnings == []


# --- a namespace's one bad registry entry ---------------------------------------------------

NS_REGISTRIES = [
    # (id, namespace annotations, pod annotations, expected http, expected insecure, dropped)
    ("one-bad-http-entry-dropped-alone",
     {HTTP: "a.corp.example, registry.evil.example, 10.1.2.3:5000",
      INSECURE: "b.corp.example"}, {},
     "a.corp.example,10.1.2.3:5000", "b.corp.example", [(HTTP, "registry.evil.example")]),
    ("bad-insecure-entry-keeps-the-http-list",
     {HTTP: "a.corp.example", INSECURE: "10.1.2.3:5001,b.corp.example"}, {},
     "a.corp.example", "b.corp.example", [(INSECURE, "10.1.2.3:5001")]),
    ("every-entry-bad-leaves-the-pods-own",
     {HTTP: "x.evil.example", INSECURE: "corp.example"}, {HTTP: "c.corp.example"},
     "c.corp.example", None, [(HTTP, "x.evil.example"), (INSECURE, "corp.example")]),
    ("all-allowed-nothing-dropped",
     {HTTP: "a.corp.example", INSECURE: "10.1.2.3:5000"}, {}, "a.corp.example",
     "10.1.2.3:5000", []),
]


@pytest.mark.parametrize(("ns", "annotations", "http", "insecure", "dropped"),
                         [r[1:] for r in NS_REGISTRIES], ids=[r[0] for r in NS_REGISTRIES])
def test_namespace_registry_entry_not_allowed_is_dropped_alone(
        ns: dict[str, str], annotations: dict[str, str], http: str | None,
        insecure: str | None, dropped: list[tuple[str, str]]) -> None:
    context = ctx(ns=ns)
    outcome = mutate(pod("quay.io/a/b:1", annotations=annotations), context)
    again = mutate(pod("quay.io/a/b:1", annotations=annotations), context)  # judged once
    assert (again.pod, again.warnings) == (outcome.pod, outcome.warnings)
    result = admitted(outcome)
    written = result["metadata"].get("annotations", {})
    assert (written.get(HTTP), written.get(INSECURE)) == (http, insecure)
    refused = [w for w in outcome.warnings if "allowedInsecureRegistries" in w]
    assert refused == [f"{key} (namespace team-a): registry {entry!r} is not in "
                       "security.allowedInsecureRegistries; TLS may not be weakened for it "
                       "(ignored)" for key, entry in dropped]


_CLAIMED_IMAGES = st.sampled_from(["nginx:1.25", MIRRORED, "registry.evil.example/x:1",
                                   "gcr.io/a/b:1", "quay.io/a/b:1", "", "Not A Ref"])
_CLAIMS = st.one_of(
    st.dictionaries(st.sampled_from(["c0", "c1", "i0", "ghost"]), _CLAIMED_IMAGES,
                    max_size=4).map(lambda d: json.dumps(d)),
    st.text(max_size=30))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_CLAIMED_IMAGES, min_size=1, max_size=3), _CLAIMS)
def test_any_incoming_record_ends_verified_and_stable(images: list[str], claim: str) -> None:
    """Whatever a pod claims: each recorded entry names a container of the pod and is its
    image as seen or an image this config rewrites to it; a second pass keeps it all."""
    context = ctx()
    outcome = mutate(pod(*images, annotations={ORIGINALS: claim}), context)
    assert outcome.denial is None
    result = outcome.pod
    current = {c["name"]: c["image"] for c in result["spec"]["containers"]}
    record = json.loads(result["metadata"]["annotations"].get(ORIGINALS, "{}"))
    for name, original in record.items():
        assert name in current
        assert original == current[name] or rewrites_to(original, current[name],
                                                        context.config)
    again = mutate(copy.deepcopy(result), context)
    assert again.pod == result
    assert not [w for w in again.warnings if w.startswith(ORIGINALS)]


# --- an UPDATE may not re-point a platform hostname either ---------------------------------

PRIVATE = '[{"ip":"1.2.3.4","hostnames":["www.privaterepo1.com"]}]'

UPDATES = [
    # (id, host aliases before, host aliases after, denied)
    ("update-repoints-mirror-host", PRIVATE,
     '[{"ip":"6.6.6.6","hostnames":["www.privaterepo1.com","mirror.corp.example"]}]', True),
    ("update-aliases-ip-endpoint-mirror-host", PRIVATE,
     '[{"ip":"6.6.6.6","hostnames":["172.18.0.20"]}]', True),
    ("update-adds-the-platform-address", PRIVATE,
     '[{"ip":"10.0.0.20","hostnames":["mirror.corp.example"]}]', False),
    ("update-keeps-an-alias-that-predates-the-rule",
     '[{"ip":"6.6.6.6","hostnames":["mirror.corp.example"]}]',
     '[{"ip":"6.6.6.6","hostnames":["mirror.corp.example"]},'
     '{"ip":"1.2.3.5","hostnames":["other.example"]}]', False),
]


@pytest.mark.parametrize(("before", "after", "denied"), [u[1:] for u in UPDATES],
                         ids=[u[0] for u in UPDATES])
def test_pod_update_may_not_repoint_a_platform_hostname(before: str, after: str,
                                                        denied: bool) -> None:
    review = load_review("pod-update-annotate.json")
    request = review["request"]
    request["oldObject"]["metadata"]["annotations"] = {HOST_ALIASES: before}
    request["object"]["metadata"]["annotations"] = {HOST_ALIASES: after}
    context = ctx()
    body = json.loads(admit(json.dumps(review).encode(), context_for=lambda _ns: context).body)
    response = body["response"]
    assert response["allowed"] is not denied
    if denied:
        assert "may not be pointed at 6.6.6.6" in response["status"]["message"]


@pytest.mark.parametrize("order", [("env", "none"), ("none", "env")],
                         ids=["environment-first", "environment-second"])
def test_platform_hostnames_follow_the_environment_they_are_asked_with(
        order: tuple[str, str]) -> None:
    """One config, two environments in turn (the preview and a server, tests): the
    platform's hostnames are those of the environment at hand, never a remembered one."""
    config = load_config(CONFIG, source="test")
    environments = {"env": environment_defaults(ENV), "none": EnvironmentDefaults()}
    aliased = pod("nginx:1.25", annotations={
        HOST_ALIASES: '[{"ip":"6.6.6.6","hostnames":["env-pinned.example"]}]'})
    for name in order:
        outcome = mutate(aliased, Context(config=config, environment=environments[name],
                                          namespace="team-a"))
        assert (outcome.denial is not None) is (name == "env")
