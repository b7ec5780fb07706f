"""What the webhook leaves on a pod is what its own parser accepts, in every dialect.

The virtual kubelet reads the annotations; the webhook judges its parse of them. So an
invalid value that `onInvalid: warn` ignores is replaced by the effective value (or
removed), a hostname may not carry two addresses nor a JSON object one key twice, and
what the webhook writes back from the pod's own spec (host-alias IPs, DNS options) reads
back as the value it judged. Each scenario also runs the reinvocation: the second pass
changes nothing, warns of nothing new and refuses nothing the first admitted.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import builders
from tests.core.test_properties import PROPERTY_SETTINGS
from webhook.core.config import EnvironmentDefaults, environment_defaults, load_config
from webhook.core.dialects import DIALECTS
from webhook.core.dialects.eks import parse_resolv_conf, resolv_conf_text, unwritable_option
from webhook.core.errors import AnnotationError, ConfigError
from webhook.core.model import DnsConfig, DnsOption
from webhook.core.mutation.context import Context, MutationResult
from webhook.core.mutation.create import mutate
from webhook.core.mutation.layers import layer_from_annotations
from webhook.core.values.checks import spec_ip
from webhook.core.values.jsontext import load_json
from webhook.core.values.keys import KCI_HOST_ALIASES
from webhook.core.values.problems import Problems

KCI_HTTP = "k8s.ksyun.com/kci-http-registry"
KCI_INSECURE = "k8s.ksyun.com/kci-insecure-registry"
KCI_HOSTS = "k8s.ksyun.com/kci-host-aliases"
KCI_DNS = "k8s.ksyun.com/kci-dns-config"
ECI_HTTP = "k8s.aliyun.com/plain-http-registry"
ECI_INSECURE = "k8s.aliyun.com/insecure-registry"
ECI_HOSTS = "k8s.aliyun.com/eci-custom-hosts"
EKS_HTTP = "eks.tke.cloud.tencent.com/registry-http-endpoint"
EKS_INSECURE = "eks.tke.cloud.tencent.com/registry-insecure-skip-verify"
EKS_DNS = "eks.tke.cloud.tencent.com/resolv-conf"
MIRRORS_SWITCH = "kci-webhook/mirrors"

MIRROR = """
mirrors:
  - endpoint: mirror.example:5443/cache
    hosts: [ghcr.io]
    insecureSkipVerify: true
    pullSecret: ghcr-pull
"""


def pod(image: str = "nginx:1.27", annotations: dict[str, str] | None = None,
        **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "team", "annotations": annotations or {}},
            "spec": {"containers": [{"name": "app", "image": image}], **spec}}


def ctx(dialect: str, *, on_invalid: str = "warn", extra: str = "",
        ns: dict[str, str] | None = None,
        environment: EnvironmentDefaults | None = None) -> Context:
    config = load_config(f"dialect: {dialect}\nonInvalid: {on_invalid}\n{extra}",
                         source="test.yaml")
    return builders.context(config, namespace="team", ns=ns, environment=environment,
                            own_namespace=None)


def annotations_of(outcome: MutationResult) -> dict[str, str]:
    return dict(outcome.pod["metadata"].get("annotations") or {})


def twice(the_pod: dict[str, Any], context: Context) -> MutationResult:
    """The first pass, admitted; then the reinvocation on its output, which must change
    nothing, add no warning and refuse nothing; and every value of the active dialect
    left on the pod must be one the webhook's parser accepts."""
    first = mutate(the_pod, context)
    assert first.denial is None, first.denial
    left = layer_from_annotations(annotations_of(first), level="pod",
                                  dialect=DIALECTS[context.config.dialect])
    assert left.problems == ()
    output = copy.deepcopy(first.pod)
    second = mutate(output, context)
    assert second.denial is None, second.denial
    assert second.pod is output
    assert [w for w in second.warnings if w not in first.warnings] == []
    return first


# --- onInvalid: warn replaces an invalid value by the effective one, or removes it ------

WARN_REMOVED = [
    # (id, dialect, annotations, the key whose raw text must go)
    ("kci-trailing-comma", "kci", {KCI_HTTP: "evil.example.com,"}, KCI_HTTP),
    ("eci-trailing-comma", "eci", {ECI_HTTP: "evil.example.com,"}, ECI_HTTP),
    ("eks-trailing-comma", "eks", {EKS_HTTP: "evil.example.com,"}, EKS_HTTP),
    ("kci-alias-with-unknown-key", "kci",
     {KCI_HOSTS: '[{"ip":"6.6.6.6","hostnames":["mirror.example"],"note":"x"}]'}, KCI_HOSTS),
    ("eci-host-with-unknown-key", "eci",
     {ECI_HOSTS: '[{"host":"mirror.example","ip":"6.6.6.6","note":"x"}]'}, ECI_HOSTS),
    ("kci-dns-bad-nameserver", "kci", {KCI_DNS: '{"nameservers":["6.6.6.6",""]}'}, KCI_DNS),
    ("eks-resolv-conf-unknown-line", "eks", {EKS_DNS: "nameserver 6.6.6.6\nbogus x"},
     EKS_DNS),
    ("cci-mirror-switch", "cci", {MIRRORS_SWITCH: "maybe"}, MIRRORS_SWITCH),
]


@pytest.mark.parametrize(("dialect", "annotations", "key"),
                         [case[1:] for case in WARN_REMOVED],
                         ids=[case[0] for case in WARN_REMOVED])
def test_an_ignored_value_with_nothing_in_its_place_is_removed(
        dialect: str, annotations: dict[str, str], key: str) -> None:
    first = twice(pod("ghcr.io/org/app:1", annotations), ctx(dialect, extra=MIRROR))
    assert any(w.startswith(f"{key} (pod): ") and w.endswith("(ignored)")
               for w in first.warnings)
    assert key not in annotations_of(first)
    assert all(alias["ip"] != "6.6.6.6" for alias in first.pod["spec"].get("hostAliases", []))
    assert "6.6.6.6" not in str(first.pod["spec"].get("dnsConfig"))


WARN_REPLACED = [
    # (id, dialect, annotations, key, the value left there: the mirror's own entry)
    ("kci-insecure-with-a-scheme", "kci", {KCI_INSECURE: "mirror-host:5000,http://x"},
     KCI_INSECURE, "mirror.example:5443"),
    ("eci-insecure-with-a-scheme", "eci", {ECI_INSECURE: "mirror-host:5000,http://x"},
     ECI_INSECURE, "mirror.example:5443"),
    ("eks-insecure-with-a-scheme", "eks", {EKS_INSECURE: "mirror-host:5000,http://x"},
     EKS_INSECURE, "mirror.example:5443"),
]


@pytest.mark.parametrize(("dialect", "annotations", "key", "value"),
                         [case[1:] for case in WARN_REPLACED],
                         ids=[case[0] for case in WARN_REPLACED])
def test_an_ignored_value_is_replaced_by_the_effective_one(
        dialect: str, annotations: dict[str, str], key: str, value: str) -> None:
    first = twice(pod("ghcr.io/org/app:1", annotations), ctx(dialect, extra=MIRROR))
    assert annotations_of(first)[key] == value     # `mirror-host:5000` is gone with the rest


@pytest.mark.parametrize(("dialect", "hosts", "bad", "good"), [
    ("kci", KCI_HOSTS, '[{"ip":"6.6.6.6","hostnames":["mirror.example"],"x":1}]',
     '[{"ip":"10.0.0.2","hostnames":["ns.example"]}]'),
    ("eci", ECI_HOSTS, '[{"host":"mirror.example","ip":"6.6.6.6","x":1}]',
     '[{"host":"ns.example","ip":"10.0.0.2"}]'),
])
def test_an_ignored_host_alias_gives_way_to_the_namespaces(dialect: str, hosts: str,
                                                           bad: str, good: str) -> None:
    first = twice(pod(annotations={hosts: bad}), ctx(dialect, ns={hosts: good}))
    assert annotations_of(first)[hosts] == good
    assert first.pod["spec"]["hostAliases"] == [{"ip": "10.0.0.2",
                                                 "hostnames": ["ns.example"]}]


@pytest.mark.parametrize(("dialect", "dns", "pod_value", "ns_value", "written"), [
    ("kci", KCI_DNS, '{"nameservers":["1.1.1.1","2.2.2.2"]}', '{"nameservers":["10.0.0.2"]}',
     '{"nameservers":["10.0.0.2"]}'),
    ("eks", EKS_DNS, "nameserver 1.1.1.1\nnameserver 2.2.2.2", "nameserver 10.0.0.2",
     "nameserver 10.0.0.2"),
])
def test_a_pod_dns_value_over_the_limits_once_merged_gives_way_in_warn_mode(
        dialect: str, dns: str, pod_value: str, ns_value: str, written: str) -> None:
    """Valid alone, over the limit with the spec's own two nameservers: deny refuses it;
    warn ignores it as if unset, so the namespace's value takes its place, on the pod too."""
    the_pod = pod(annotations={dns: pod_value},
                  dnsConfig={"nameservers": ["8.8.8.8", "8.8.4.4"]})
    assert mutate(the_pod, ctx(dialect, on_invalid="deny", ns={dns: ns_value})).denial
    first = twice(the_pod, ctx(dialect, ns={dns: ns_value}))
    assert annotations_of(first)[dns] == written
    assert first.pod["spec"]["dnsConfig"]["nameservers"] == ["8.8.8.8", "8.8.4.4", "10.0.0.2"]
    alone = twice(the_pod, ctx(dialect))              # no other level: the value goes
    assert dns not in annotations_of(alone)
    assert alone.pod["spec"]["dnsConfig"] == {"nameservers": ["8.8.8.8", "8.8.4.4"]}


# --- one key, one hostname, one meaning ---------------------------------------------------

REPEATED = [
    # (id, dialect, annotations, start of the problem)
    ("kci-ip-key-twice", "kci",
     {KCI_HOSTS: '[{"ip":"10.0.0.9","hostnames":["mirror.example"],"ip":"6.6.6.6"}]'},
     'k8s.ksyun.com/kci-host-aliases (pod): invalid JSON: key "ip" appears twice'),
    ("kci-escaped-key-twice", "kci",
     {KCI_HOSTS: '[{"ip":"6.6.6.6","hostnames":["a.example"],"\\u0069p":"1.2.3.4"}]'},
     'k8s.ksyun.com/kci-host-aliases (pod): invalid JSON: key "ip" appears twice'),
    ("kci-dns-key-twice", "kci",
     {KCI_DNS: '{"nameservers":["fd00::1"],"nameservers":["6.6.6.6"]}'},
     'k8s.ksyun.com/kci-dns-config (pod): invalid JSON: key "nameservers" appears twice'),
    ("eci-ip-key-twice", "eci",
     {ECI_HOSTS: '[{"host":"mirror.example","ip":"10.0.0.9","ip":"6.6.6.6"}]'},
     'k8s.aliyun.com/eci-custom-hosts (pod): invalid JSON: key "ip" appears twice'),
    ("kci-hostname-twice", "kci",
     {KCI_HOSTS: '[{"ip":"10.0.0.9","hostnames":["a.example"]},'
                 '{"ip":"6.6.6.6","hostnames":["a.example"]}]'},
     'k8s.ksyun.com/kci-host-aliases (pod): item 2: "hostnames" item 1: "a.example" is already '
     "mapped to 10.0.0.9 by item 1"),
    ("eci-host-twice", "eci",
     {ECI_HOSTS: '[{"host":"a.example","ip":"10.0.0.9"},{"host":"a.example","ip":"6.6.6.6"}]'},
     'k8s.aliyun.com/eci-custom-hosts (pod): item 2: "host": "a.example" is already mapped '
     "to 10.0.0.9 by item 1"),
]


@pytest.mark.parametrize(("dialect", "annotations", "problem"), [case[1:] for case in REPEATED],
                         ids=[case[0] for case in REPEATED])
def test_a_value_that_says_two_things_is_refused_and_never_left_on_the_pod(
        dialect: str, annotations: dict[str, str], problem: str) -> None:
    denial = mutate(pod(annotations=annotations), ctx(dialect, on_invalid="deny")).denial
    assert denial is not None and denial.startswith(problem), denial
    first = twice(pod(annotations=annotations), ctx(dialect))
    assert any(w.startswith(problem) for w in first.warnings)
    assert not set(annotations) & set(annotations_of(first))


def test_a_hostname_repeated_at_one_address_still_folds_in_every_form() -> None:
    value = ('[{"ip":"10.0.0.9","hostnames":["a.example"]},'
             '{"ip":"10.0.0.9","hostnames":["a.example","b.example"]}]')
    first = twice(pod(annotations={KCI_HOSTS: value}), ctx("kci", on_invalid="deny"))
    assert first.pod["spec"]["hostAliases"] == [
        {"ip": "10.0.0.9", "hostnames": ["a.example", "b.example"]}]


def test_an_environment_value_with_a_key_twice_stops_the_start() -> None:
    with pytest.raises(ConfigError, match='KCI_HOST_ALIASES: .*key "ip" appears twice'):
        environment_defaults({"KCI_HOST_ALIASES":
                              '[{"ip":"1.2.3.4","ip":"6.6.6.6","hostnames":["a.example"]}]'})


json_values = st.recursive(      # what orjson reads: no integer past 64 bits
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
              st.text(max_size=5)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=5), children, max_size=4)),
    max_leaves=20)


@PROPERTY_SETTINGS
@given(obj=st.dictionaries(st.text(max_size=4), json_values, min_size=1, max_size=4),
       data=st.data())
def test_a_key_given_twice_is_found_at_any_depth_and_none_is_invented(
        obj: dict[str, Any], data: st.DataObject) -> None:
    """orjson keeps one of two equal keys; the check finds the other, escapes or not."""
    text = orjson.dumps(obj).decode()
    wrap = data.draw(st.sampled_from(["{}", "[{}]", '{"outer":{}}', '[1,{"k":[{}]}]']))
    assert load_json(wrap.replace("{}", text), Problems("k", "pod")) is not None
    key = data.draw(st.sampled_from(sorted(obj)))
    twice_text = text[:-1] + "," + orjson.dumps({key: None}).decode()[1:]
    with pytest.raises(AnnotationError, match="appears twice in one object"):
        load_json(wrap.replace("{}", twice_text), Problems("k", "pod"))


@pytest.mark.parametrize("raw", [
    '[{"ip":"::1","hostnames":["v6.example"]}]',                  # colons inside strings
    '[{"ip":"1.2.3.4","hostnames":["a.example"],"a:b":1}]',       # ... and inside a key
    '{"options":[{"name":"x","value":"a\\"b"}]}',                 # an escape: the slow path
])
def test_values_with_colons_or_escapes_but_no_repeated_key_pass_the_check(raw: str) -> None:
    load_json(raw, Problems(KCI_HOST_ALIASES, "pod"))     # raises if a key were refused


# --- IPs from the pod's own spec.hostAliases are written as Kubernetes reads them --------

@pytest.mark.parametrize(("dialect", "hosts"), [("kci", KCI_HOSTS), ("eci", ECI_HOSTS)])
@pytest.mark.parametrize(("spec_text", "written"), [
    ("010.0.0.1", "10.0.0.1"), ("::ffff:10.0.0.1", "10.0.0.1"), ("FD00:0::01", "fd00::1"),
    ("::FFFF:010.000.000.001", "10.0.0.1")])
def test_a_spec_ip_is_written_back_as_kubernetes_reads_it(
        dialect: str, hosts: str, spec_text: str, written: str) -> None:
    ns = {hosts: DIALECTS[dialect].write_hosts(  # type: ignore[misc]
        layer_from_annotations({KCI_HOSTS: '[{"ip":"10.0.0.2","hostnames":["ns.example"]}]'},
                               level="ns").host_aliases)}
    the_pod = pod(hostAliases=[{"ip": spec_text, "hostnames": ["ns.example"]}])
    first = twice(the_pod, ctx(dialect, on_invalid="deny", ns=ns))
    alias = layer_from_annotations(annotations_of(first), level="pod",
                                   dialect=DIALECTS[dialect]).host_aliases
    assert alias is not None and [(a.ip, a.hostnames) for a in alias] == [
        (written, ("ns.example",))]
    assert first.pod["spec"]["hostAliases"][0] == {"ip": spec_text, "hostnames": ["ns.example"]}
    warned = [w for w in first.warnings if w.startswith("spec.hostAliases: ")]
    assert len(warned) == (0 if spec_text.startswith("FD00") else 1)


def test_a_spec_ip_nobody_can_read_is_refused_with_a_message_about_the_spec() -> None:
    the_pod = pod(hostAliases=[{"ip": "10.0.0", "hostnames": ["ns.example"]}])
    denial = mutate(the_pod, ctx("kci", ns={
        KCI_HOSTS: '[{"ip":"10.0.0.2","hostnames":["ns.example"]}]'})).denial
    assert denial == ("spec.hostAliases: hostname 'ns.example': \"10.0.0\" is not an IPv4 or "
                      "IPv6 address")


# Go 1.16's net.ParseIP (ParseIPSloppy), the spellings 1.24's IsValidIP accepts.
_octet = st.integers(0, 255)
_zeros = st.sampled_from(["", "0", "00"])
sloppy_ipv4 = st.builds(lambda parts, pads: ".".join(p + str(n) for n, p in zip(parts, pads,
                                                                                strict=True)),
                        st.lists(_octet, min_size=4, max_size=4),
                        st.lists(_zeros, min_size=4, max_size=4))
spec_ips = st.one_of(
    sloppy_ipv4,
    sloppy_ipv4.map(lambda v4: "::ffff:" + v4), sloppy_ipv4.map(lambda v4: "::FFFF:" + v4),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.ip_addresses(v=6).map(lambda a: str(a).upper()),
    st.ip_addresses().map(str))


def _go_reading(text: str) -> tuple[int, ...]:
    """The 16 bytes Go reads from `text` (a spelling generated above), independently of
    `spec_ip`: IPv4 parts are decimal, IPv4 is IPv4-mapped IPv6."""
    import ipaddress
    head, _sep, tail = text.rpartition(":")
    if "." in tail:
        v4 = bytes(int(part) for part in tail.split("."))
        text = (head + ":" if head else "") + str(ipaddress.IPv4Address(v4))
        if not head:
            return tuple(ipaddress.IPv6Address("::ffff:" + text).packed)
    return tuple(ipaddress.IPv6Address(text).packed)


@PROPERTY_SETTINGS
@given(ip=spec_ips, dialect=st.sampled_from(["kci", "eci"]),
       on_invalid=st.sampled_from(["deny", "warn"]))
def test_any_spec_ip_the_api_accepts_survives_the_second_pass(ip: str, dialect: str,
                                                              on_invalid: str) -> None:
    written = spec_ip(ip)
    assert written is not None
    assert _go_reading(written) == _go_reading(ip)          # the same address
    hosts = DIALECTS[dialect].hosts_key
    assert hosts is not None
    the_pod = pod(hostAliases=[{"ip": ip, "hostnames": ["ns.example"]}])
    ns = {KCI_HOSTS if dialect == "kci" else hosts:
          '[{"ip":"10.0.0.2","hostnames":["ns.example"]}]' if dialect == "kci"
          else '[{"host":"ns.example","ip":"10.0.0.2"}]'}
    twice(the_pod, ctx(dialect, on_invalid=on_invalid, ns=ns))


# --- eks: resolv-conf reads back as the value judged -------------------------------------

def test_an_eks_spec_option_that_would_add_a_line_is_refused() -> None:
    the_pod = pod(annotations={EKS_DNS: "nameserver 10.0.0.2\noptions ndots:2"},
                  dnsConfig={"options": [{"name": "ndots", "value": "1\nnameserver 6.6.6.6"}]})
    for on_invalid in ("deny", "warn"):
        denial = mutate(the_pod, ctx("eks", on_invalid=on_invalid)).denial
        assert denial == (
            'spec.dnsConfig.options[0]: "ndots"="1\\nnameserver 6.6.6.6" cannot be written '
            "into eks.tke.cloud.tencent.com/resolv-conf: a resolv.conf option value is "
            "printable ASCII with no blank")


def test_an_eks_spec_option_with_a_blank_in_its_value_is_refused_too() -> None:
    the_pod = pod(annotations={EKS_DNS: "options timeout:2"},
                  dnsConfig={"options": [{"name": "timeout", "value": "1 rotate"}]})
    assert "cannot be written into" in (mutate(the_pod, ctx("eks")).denial or "")


def test_an_eks_spec_option_with_a_name_the_annotation_does_not_use_is_not_written() -> None:
    the_pod = pod(annotations={EKS_DNS: "nameserver 10.0.0.2"},
                  dnsConfig={"options": [{"name": "weird name", "value": "a\nb"}]})
    first = twice(the_pod, ctx("eks", on_invalid="deny"))
    assert annotations_of(first)[EKS_DNS] == "nameserver 10.0.0.2"


def test_an_eks_option_from_a_json_default_that_resolv_conf_cannot_carry_is_left_out() -> None:
    env = environment_defaults({"KCI_DNS_CONFIG": '{"nameservers":["10.0.0.3"],'
                                '"options":[{"name":"a b"},{"name":"ndots","value":"2"}]}'})
    first = twice(pod(), ctx("eks", environment=env))
    assert annotations_of(first)[EKS_DNS] == "nameserver 10.0.0.3\noptions ndots:2"
    assert any('option "a b" from the environment defaults cannot be written' in w
               for w in first.warnings)


dns_options = st.builds(DnsOption, st.text(max_size=6),
                        st.one_of(st.none(), st.text(max_size=6)))


@PROPERTY_SETTINGS
@given(options=st.lists(dns_options, max_size=4, unique_by=lambda o: o.name))
def test_every_option_eks_agrees_to_write_reads_back_as_itself(
        options: list[DnsOption]) -> None:
    writable = tuple(o for o in options if unwritable_option(o) is None)
    dns = DnsConfig(nameservers=("10.0.0.1",), options=writable)
    back = parse_resolv_conf(resolv_conf_text(dns), level="pod")
    assert back == dns
    for option in options:        # and what it refuses would not read back as itself
        if unwritable_option(option) is None:
            continue
        alone = DnsConfig(options=(option,))
        with contextlib.suppress(AnnotationError):
            assert parse_resolv_conf(resolv_conf_text(alone), level="pod") != alone


# --- an option named twice is written once, on the first pass -----------------------------

@pytest.mark.parametrize(("dialect", "dns", "value", "written"), [
    ("kci", KCI_DNS, '{"options":[{"name":"ndots","value":"1"},{"name":"ndots","value":"5"},'
                     '{"name":"rotate"}]}',
     '{"options":[{"name":"ndots","value":"5"},{"name":"rotate"}]}'),
    ("eks", EKS_DNS, "options ndots:1 rotate ndots:5", "options ndots:5 rotate"),
])
@pytest.mark.parametrize("on_invalid", ["deny", "warn"])
def test_an_option_named_twice_is_written_back_folded_on_the_first_pass(
        dialect: str, dns: str, value: str, written: str, on_invalid: str) -> None:
    first = twice(pod(annotations={dns: value}), ctx(dialect, on_invalid=on_invalid))
    assert annotations_of(first)[dns] == written
    assert first.pod["spec"]["dnsConfig"]["options"] == [{"name": "ndots", "value": "5"},
                                                          {"name": "rotate"}]


def test_a_spec_option_named_twice_wins_with_its_last_value() -> None:
    the_pod = pod(annotations={KCI_DNS: '{"options":[{"name":"ndots","value":"2"}]}'},
                  dnsConfig={"options": [{"name": "ndots", "value": "3"},
                                         {"name": "ndots", "value": "4"}]})
    first = twice(the_pod, ctx("kci"))
    assert annotations_of(first)[KCI_DNS] == '{"options":[{"name":"ndots","value":"4"}]}'
