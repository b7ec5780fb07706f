"""What the webhook writes is what the API server and the virtual kubelet accept.

Every pod the mutation produces here is checked by `tests.k8s_schema.accepted`: the strict
OpenAPI schemas of 1.25 and 1.37, and the 1.24 API server's own rules for the fields the
webhook writes (DNS config, host aliases, total annotation size), written down there
independently of the webhook's code.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import orjson
import pytest

from tests.core.test_mutate import DNS, DOC_ALIASES, HOST_ALIASES, HTTP, INSECURE, ctx, pod
from tests.k8s_schema import accepted, api_server_problems
from webhook.core.mutation.context import Context, MutationResult
from webhook.core.mutation.create import mutate
from webhook.core.mutation.writeback import annotations_bytes
from webhook.core.values.size import MAX_ANNOTATIONS_BYTES

MIRRORS = "kci-webhook/mirrors"
QUAY_HTTP_MIRROR = "mirrors:\n  - endpoint: http://10.0.0.9:5000\n    hosts: [quay.io]\n"
LOCKED_DOWN = QUAY_HTTP_MIRROR + """\
  - endpoint: mirror.example:5443/cache
    hosts: [ghcr.io]
    insecureSkipVerify: true
security:
  allowedInsecureRegistries: ["*.corp.example"]
"""


def admitted(outcome: MutationResult) -> dict[str, Any]:
    assert outcome.denial is None, outcome.denial
    return accepted(outcome.pod)


def annotation(result: dict[str, Any], key: str) -> Any:
    return orjson.loads(result["metadata"]["annotations"][key])


def disagreements(result: dict[str, Any], keys: tuple[str, ...] = (HOST_ALIASES, DNS)
                  ) -> list[str]:
    """Where the annotations `keys` say something else than the spec the container gets:
    a hostname with another IP, an option with another value."""
    spec = result["spec"]
    present = {key for key in keys if key in (result["metadata"].get("annotations") or {})}
    problems = []
    ip_of: dict[str, str] = {}
    for alias in spec.get("hostAliases") or []:
        for name in alias["hostnames"]:
            ip_of.setdefault(name, alias["ip"])         # /etc/hosts: the first line wins
    for alias in annotation(result, HOST_ALIASES) if HOST_ALIASES in present else []:
        problems += [f"{name}: annotation {alias['ip']}, spec {ip_of.get(name)}"
                     for name in alias["hostnames"]
                     if not _same_address(ip_of.get(name), alias["ip"])]
    if DNS in present:
        written = annotation(result, DNS)
        value_of = {o["name"]: o.get("value") for o in spec["dnsConfig"].get("options", [])}
        problems += [f"option {o['name']}: annotation {o.get('value')}, spec "
                     f"{value_of.get(o['name'], 'absent')}"
                     for o in written.get("options", []) if value_of.get(o["name"], 0) !=
                     o.get("value")]
        for field in ("nameservers", "searches"):
            problems += [f"{field} {v}: not in the spec" for v in written.get(field, [])
                         if v not in spec["dnsConfig"].get(field, [])]
    return problems


def _same_address(spec_ip: str | None, written: str) -> bool:
    """The annotation writes an address in one canonical form (`fd00::1`), whatever
    spelling the spec gives it (`fd00:0:0::1`)."""
    try:
        return ipaddress.ip_address(spec_ip or "") == ipaddress.ip_address(written)
    except ValueError:
        return spec_ip == written


# --- DNS and host-alias values: the 1.24 API server's rules -------------------------------

REFUSED_AT_ADMISSION = [
    # (id, pod annotations, spec fields, start of the denial)
    ("search-root-dot", {DNS: '{"searches":["."]}'}, {},
     'k8s.ksyun.com/kci-dns-config (pod): "searches" item 1: "." is not a search domain'),
    ("search-with-underscore", {DNS: '{"searches":["_ldap._tcp.example.com"]}'}, {},
     'k8s.ksyun.com/kci-dns-config (pod): "searches" item 1: "_ldap._tcp.example.com" is not a '
     "DNS-1123 subdomain"),
    ("hostname-with-underscore", {HOST_ALIASES: '[{"ip":"1.2.3.4","hostnames":["my_reg.io"]}]'},
     {}, 'k8s.ksyun.com/kci-host-aliases (pod): item 1: "hostnames" item 1: "my_reg.io" is not a '
         "DNS-1123 subdomain"),
    ("nameserver-ipv4-mapped", {DNS: '{"nameservers":["::ffff:8.8.8.8"]}'}, {},
     'k8s.ksyun.com/kci-dns-config (pod): "nameservers" item 1: "::ffff:8.8.8.8" is not an IPv4 '
     "or IPv6 address (no IPv4-mapped IPv6: write 8.8.8.8)"),
    ("seventh-search-domain-once-merged",
     {DNS: orjson.dumps({"searches": [f"a{i}.example" for i in range(4)]}).decode()},
     {"dnsConfig": {"searches": ["s1.example", "s2.example", "s3.example"]}},
     'k8s.ksyun.com/kci-dns-config (pod): after merging with spec.dnsConfig: "searches": 7 '
     "search domains, at most 6 allowed"),
]


@pytest.mark.parametrize(("annotations", "spec", "message"),
                         [r[1:] for r in REFUSED_AT_ADMISSION],
                         ids=[r[0] for r in REFUSED_AT_ADMISSION])
def test_value_the_1_24_api_server_refuses_is_denied_with_a_message_naming_the_annotation(
        annotations: dict[str, str], spec: dict[str, Any], message: str) -> None:
    candidate = pod("quay.io/a/b:1", annotations=annotations, **spec)
    # what would reach the API server if the webhook passed the value on
    assert api_server_problems(mutate(candidate, ctx("onInvalid: warn\n")).pod) == []
    outcome = mutate(candidate, ctx())
    assert outcome.denial is not None and outcome.denial.startswith(message)


@pytest.mark.parametrize("value", ['{"searches":["."]}', '{"searches":["corp_net.example"]}'],
                         ids=["root-dot", "underscore"])
def test_namespace_value_the_api_server_refuses_is_ignored_and_the_pod_stays_valid(
        value: str) -> None:
    outcome = mutate(pod("quay.io/a/b:1"), ctx(namespace="team-a", ns_annotations={DNS: value}))
    result = admitted(outcome)
    assert "dnsConfig" not in result["spec"]
    assert any(w.startswith(f"{DNS} (namespace team-a): \"searches\" item 1") for w in
               outcome.warnings)


# --- spec.hostAliases is a list-map keyed on ip -------------------------------------------

MERGE_BY_IP = [
    # (id, spec.hostAliases, pod annotation, namespace annotation, expected spec.hostAliases)
    ("annotation-ip-already-in-spec",
     [{"ip": "1.2.3.4", "hostnames": ["a.example"]}],
     '[{"ip":"1.2.3.4","hostnames":["b.example"]}]', None,
     [{"ip": "1.2.3.4", "hostnames": ["a.example", "b.example"]}]),
    ("namespace-default-for-an-ip-in-spec",
     [{"ip": "10.0.0.2", "hostnames": ["own.example"]}, {"ip": "9.9.9.9", "hostnames": ["x"]}],
     None, '[{"ip":"10.0.0.2","hostnames":["ns.example"]},{"ip":"9.9.9.9","hostnames":["y"]}]',
     [{"ip": "10.0.0.2", "hostnames": ["own.example", "ns.example"]},
      {"ip": "9.9.9.9", "hostnames": ["x", "y"]}]),
    ("hostname-already-in-spec-not-repeated",
     [{"ip": "1.2.3.4", "hostnames": ["a.example"]}],
     '[{"ip":"1.2.3.4","hostnames":["a.example","b.example"]},'
     '{"ip":"2.3.4.5","hostnames":["c.example"]}]', None,
     [{"ip": "1.2.3.4", "hostnames": ["a.example", "b.example"]},
      {"ip": "2.3.4.5", "hostnames": ["c.example"]}]),
    ("one-ip-twice-in-the-annotation", [],
     '[{"ip":"1.2.3.4","hostnames":["a.example"]},{"ip":"1.2.3.4","hostnames":["b.example"]}]',
     None, [{"ip": "1.2.3.4", "hostnames": ["a.example", "b.example"]}]),
    ("same-address-from-two-levels", [],
     '[{"ip":"fd00::1","hostnames":["a.example"]}]',
     '[{"ip":"FD00:0:0::1","hostnames":["b.example"]}]',
     [{"ip": "fd00::1", "hostnames": ["a.example", "b.example"]}]),
    ("same-ipv6-written-two-ways",
     [{"ip": "fd00:0:0::1", "hostnames": ["a.example"]}],
     '[{"ip":"fd00::1","hostnames":["b.example"]}]', None,
     [{"ip": "fd00:0:0::1", "hostnames": ["a.example", "b.example"]}]),
]


@pytest.mark.parametrize(("spec_aliases", "pod_value", "ns_value", "expected"),
                         [m[1:] for m in MERGE_BY_IP], ids=[m[0] for m in MERGE_BY_IP])
def test_host_aliases_merge_into_the_spec_entry_of_their_ip(
        spec_aliases: list[dict[str, Any]], pod_value: str | None, ns_value: str | None,
        expected: list[dict[str, Any]]) -> None:
    original = pod("quay.io/a/b:1", annotations={HOST_ALIASES: pod_value} if pod_value else {},
                   hostAliases=spec_aliases)
    snapshot = copy.deepcopy(original)
    context = ctx(namespace="team-a", ns_annotations={HOST_ALIASES: ns_value} if ns_value
                  else None)
    result = admitted(mutate(original, context))
    assert result["spec"]["hostAliases"] == expected
    assert original == snapshot                      # the spec's entries were copied, not edited
    assert disagreements(result) == []
    assert mutate(copy.deepcopy(result), context).pod == result


# --- the written-back values are the spec's ----------------------------------------------

SPEC_WINS = [
    # (id, pod annotations, namespace annotations, spec fields, expected written-back values)
    ("spec-hostname-over-namespace", {},
     {HOST_ALIASES: '[{"ip":"10.0.0.2","hostnames":["shared.example","ns.example"]}]'},
     {"hostAliases": [{"ip": "9.9.9.9", "hostnames": ["shared.example"]}]},
     {HOST_ALIASES: [{"ip": "9.9.9.9", "hostnames": ["shared.example"]},
                     {"ip": "10.0.0.2", "hostnames": ["ns.example"]}]}),
    ("spec-hostname-over-pod-annotation",
     {HOST_ALIASES: '[{"ip":"1.2.3.4","hostnames":["reg.example"]}]'}, None,
     {"hostAliases": [{"ip": "9.9.9.9", "hostnames": ["reg.example"]}]},
     {HOST_ALIASES: [{"ip": "9.9.9.9", "hostnames": ["reg.example"]}]}),
    ("spec-option-over-namespace", {},
     {DNS: '{"nameservers":["10.0.0.2"],"options":[{"name":"ndots","value":"2"},'
           '{"name":"timeout","value":"3"}]}'},
     {"dnsConfig": {"options": [{"name": "ndots", "value": "5"}]}},
     {DNS: {"nameservers": ["10.0.0.2"], "options": [{"name": "ndots", "value": "5"},
                                                     {"name": "timeout", "value": "3"}]}}),
    ("spec-flag-option-over-pod-value", {DNS: '{"options":[{"name":"ndots","value":"2"}]}'},
     None, {"dnsConfig": {"options": [{"name": "ndots"}]}},
     {DNS: {"options": [{"name": "ndots"}]}}),
    ("last-spec-option-of-a-name-wins", {DNS: '{"options":[{"name":"ndots","value":"2"}]}'},
     None, {"dnsConfig": {"options": [{"name": "ndots", "value": "4"},
                                      {"name": "ndots", "value": "5"}]}},
     {DNS: {"options": [{"name": "ndots", "value": "5"}]}}),
]


@pytest.mark.parametrize(("pod_ann", "ns_ann", "spec", "written"),
                         [s[1:] for s in SPEC_WINS], ids=[s[0] for s in SPEC_WINS])
def test_written_back_values_are_what_the_spec_gives_the_container(
        pod_ann: dict[str, str], ns_ann: dict[str, str] | None, spec: dict[str, Any],
        written: dict[str, Any]) -> None:
    context = ctx(namespace="team-a", ns_annotations=ns_ann)
    result = admitted(mutate(pod("quay.io/a/b:1", annotations=dict(pod_ann), **spec), context))
    for key, value in written.items():
        assert annotation(result, key) == value
    assert disagreements(result) == []
    assert mutate(copy.deepcopy(result), context).pod == result


# --- 256 KiB of annotations ------------------------------------------------------------------

FILLER = "example.com/filler"


def _filled_to(total: int, *, char: str = "x") -> tuple[dict[str, Any], Context]:
    """A pod whose annotations, once the namespace's host aliases and registries are written
    back, total `total` bytes (the filler is sized from a first mutation)."""
    context = ctx(namespace="team-a", ns_annotations={
        HOST_ALIASES: DOC_ALIASES, HTTP: "reg.example:5000"})
    probe = mutate(pod("quay.io/a/b:1", annotations={FILLER: ""}), context).pod
    missing = total - annotations_bytes(probe["metadata"]["annotations"])
    filler = char * (missing // len(char.encode())) + "x" * (missing % len(char.encode()))
    return pod("quay.io/a/b:1", annotations={FILLER: filler}), context


@pytest.mark.parametrize(("total", "char", "allowed"), [
    (MAX_ANNOTATIONS_BYTES, "x", True),
    (MAX_ANNOTATIONS_BYTES + 1, "x", False),
    (MAX_ANNOTATIONS_BYTES + 1, "é", False),      # 2 bytes a character: counted in bytes
    (MAX_ANNOTATIONS_BYTES, "\N{CJK UNIFIED IDEOGRAPH-4E2D}", True),
], ids=["exactly-the-limit", "one-byte-over", "over-in-bytes-not-in-characters",
        "three-byte-characters-up-to-the-limit"])
def test_write_back_never_takes_the_annotations_over_256_kib(total: int, char: str,
                                                             allowed: bool) -> None:
    candidate, context = _filled_to(total, char=char)
    assert annotations_bytes(candidate["metadata"]["annotations"]) < MAX_ANNOTATIONS_BYTES
    outcome = mutate(candidate, context)
    if allowed:
        result = admitted(outcome)
        assert annotations_bytes(result["metadata"]["annotations"]) == total
        return
    assert outcome.denial is not None
    assert outcome.denial.startswith(f"metadata.annotations: {total} bytes once the webhook "
                                     "writes back ")
    assert HOST_ALIASES in outcome.denial and HTTP in outcome.denial
    assert f"more than {MAX_ANNOTATIONS_BYTES} bytes" in outcome.denial


def test_pod_over_the_limit_with_nothing_to_write_is_left_to_the_api_server() -> None:
    big = pod("quay.io/a/b:1", annotations={FILLER: "x" * MAX_ANNOTATIONS_BYTES})
    outcome = mutate(big, ctx())
    assert outcome.pod is big and outcome.denial is None


# --- empty values: one rule at every level ----------------------------------------------------

EMPTY = "is empty; remove the annotation or give a value"
EMPTY_VALUES = [
    # (id, pod annotations, namespace annotations, onInvalid, denial or warning expected)
    ("alone-on-the-pod", {DNS: ""}, None, "deny", f"{DNS} (pod): {EMPTY}"),
    ("beside-another-on-the-pod", {DNS: "", HOST_ALIASES: DOC_ALIASES}, None, "deny",
     f"{DNS} (pod): {EMPTY}"),
    ("whitespace-registry-list", {HTTP: "  "}, None, "deny", f"{HTTP} (pod): {EMPTY}"),
    ("mirrors-switch", {MIRRORS: ""}, None, "deny", f"{MIRRORS} (pod): {EMPTY}"),
    ("alone-on-the-pod-warn-mode", {HOST_ALIASES: ""}, None, "warn",
     f"{HOST_ALIASES} (pod): {EMPTY} (ignored)"),
    ("alone-on-the-namespace", {}, {HOST_ALIASES: ""}, "deny",
     f"{HOST_ALIASES} (namespace team-a): {EMPTY} (ignored)"),
    ("beside-another-on-the-namespace", {}, {HOST_ALIASES: "", HTTP: "reg.example"}, "deny",
     f"{HOST_ALIASES} (namespace team-a): {EMPTY} (ignored)"),
]


@pytest.mark.parametrize(("pod_ann", "ns_ann", "on_invalid", "message"),
                         [e[1:] for e in EMPTY_VALUES], ids=[e[0] for e in EMPTY_VALUES])
def test_empty_value_is_invalid_whatever_else_is_set(
        pod_ann: dict[str, str], ns_ann: dict[str, str] | None, on_invalid: str,
        message: str) -> None:
    outcome = mutate(pod("quay.io/a/b:1", annotations=dict(pod_ann)),
                     ctx(f"onInvalid: {on_invalid}\n", namespace="team-a",
                         ns_annotations=ns_ann))
    if outcome.denial is not None:
        assert outcome.denial == message
        return
    admitted(outcome)
    assert message in outcome.warnings


# --- reinvocation is silent --------------------------------------------------------------------

NS_DEFAULTS = {HTTP: "ns-registry.example:5000", INSECURE: "harbor.example",
               HOST_ALIASES: '[{"ip":"10.0.0.2","hostnames":["ns.example"]}]',
               DNS: '{"nameservers":["10.0.0.2"],"options":[{"name":"ndots","value":"2"}]}'}
ENVIRONMENT = {"KCI_HOST_ALIASES": '[{"ip":"10.0.0.3","hostnames":["env.example"]}]',
               "KCI_DNS_CONFIG": '{"nameservers":["10.0.0.3"]}'}
REINVOCATIONS = [
    # (id, pod annotations, namespace annotations, environment, config, images)
    ("namespace-registries-unused-by-the-pod", {}, NS_DEFAULTS, None, "", ("nginx:1",)),
    ("environment-defaults-only", {}, None, ENVIRONMENT, "", ("nginx:1",)),
    ("pod-typo-beside-namespace-registry", {HTTP: "typo.example"}, NS_DEFAULTS, ENVIRONMENT,
     "", ("nginx:1",)),
    ("mirror-registry-added-to-the-pod-list", {HTTP: "reg.example"}, None, None,
     QUAY_HTTP_MIRROR, ("reg.example/app:1", "quay.io/a/b:1")),
    ("mirrors-outside-the-allowed-insecure-registries", {}, {HTTP: "ns.corp.example"}, None,
     LOCKED_DOWN, ("quay.io/a/b:1", "ghcr.io/c/d:2")),
]


@pytest.mark.parametrize(("pod_ann", "ns_ann", "env", "config", "images"),
                         [r[1:] for r in REINVOCATIONS], ids=[r[0] for r in REINVOCATIONS])
def test_second_pass_over_the_output_gives_no_patch_and_no_new_warning(
        pod_ann: dict[str, str], ns_ann: dict[str, str] | None, env: dict[str, str] | None,
        config: str, images: tuple[str, ...]) -> None:
    context = ctx(config, namespace="team-a", ns_annotations=ns_ann, env=env)
    first = mutate(pod(*images, annotations=dict(pod_ann)), context)
    output = admitted(first)
    second = mutate(output, context)
    assert second.denial is None
    assert second.pod is output                      # no patch
    assert [w for w in second.warnings if w not in first.warnings] == []


def test_sidecar_added_between_passes_is_handled_without_new_warnings() -> None:
    context = ctx(QUAY_HTTP_MIRROR, namespace="team-a", ns_annotations=NS_DEFAULTS)
    first = mutate(pod("nginx:1"), context)
    output = copy.deepcopy(admitted(first))
    output["spec"]["containers"].append({"name": "sidecar", "image": "quay.io/mesh/proxy:2"})
    second = mutate(output, context)
    result = admitted(second)       # the sidecar's image rewritten, its mirror declared
    assert result["spec"]["containers"][1]["image"] == "10.0.0.9:5000/mesh/proxy:2"
    assert annotation_text(result, HTTP) == "ns-registry.example:5000,10.0.0.9:5000"
    new = [w for w in second.warnings if w not in first.warnings]
    assert new == ["images rewritten to mirror 10.0.0.9:5000, which has no pullSecret "
                   "configured: the node must be able to pull from it anonymously"]  # the sidecar's
    third = mutate(result, context)
    assert third.denial is None and third.pod is result


def annotation_text(result: dict[str, Any], key: str) -> str:
    return str(result["metadata"]["annotations"][key])


PLATFORM_ENTRIES = [
    # (id, the pod's own annotations, allowed)
    ("the-http-mirror-host-as-http", {HTTP: "10.0.0.9:5000"}, True),
    ("the-insecure-mirror-host-as-insecure", {INSECURE: "mirror.example:5443"}, True),
    ("the-namespace-entry", {HTTP: "ns.corp.example"}, True),
    ("the-http-mirror-host-as-insecure", {INSECURE: "10.0.0.9:5000"}, False),
    ("another-port-of-the-mirror-host", {HTTP: "10.0.0.9:5001"}, False),
    ("an-entry-slipped-into-a-written-back-list",
     {HTTP: "ns.corp.example,10.0.0.9:5000,registry.evil.example"}, False),
]


@pytest.mark.parametrize(("annotations", "allowed"), [p[1:] for p in PLATFORM_ENTRIES],
                         ids=[p[0] for p in PLATFORM_ENTRIES])
def test_pod_may_repeat_what_the_platform_declares_and_nothing_more(
        annotations: dict[str, str], allowed: bool) -> None:
    """A second pass finds the mirror and namespace entries in the pod's own lists; they
    are the platform's, so they pass the security rule, and nothing else does."""
    context = ctx(LOCKED_DOWN, namespace="team-a", ns_annotations={HTTP: "ns.corp.example"})
    outcome = mutate(pod("quay.io/a/b:1", "ghcr.io/c/d:2", annotations=annotations), context)
    if allowed:
        admitted(outcome)
    else:
        assert outcome.denial is not None and "TLS may not be weakened" in outcome.denial
