"""Annotation dialects: each vendor's keys read and written in its own format, with the
same validation, precedence, namespace defaults, mirrors and security rules as KCI.

Vendor examples are taken from the vendors' documentation (see docs/dialects.md), with
their masked characters (`***`, `XX`) replaced by real ones so the values are usable.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import kubernetes_validate
import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests import builders
from tests.core.test_mutate import HTTP_MIRROR
from tests.core.test_properties import CONFIG as PROPERTY_CONFIG
from tests.core.test_properties import ENV as PROPERTY_ENV
from tests.core.test_properties import (
    PROPERTY_SETTINGS,
    WARN_CONFIG,
    WARN_MIRRORS,
    check_patch_applies,
    check_second_pass,
)
from tests.core.test_properties import pods as property_pods
from webhook.adapters.namespaces import NamespaceCache
from webhook.core.config import EnvironmentDefaults, load_config
from webhook.core.dialects import ALL_REGISTRIES, DIALECTS, foreign_key_warnings
from webhook.core.dialects.eci import custom_hosts_json, parse_custom_hosts
from webhook.core.dialects.eks import parse_resolv_conf, registries_text, resolv_conf_text
from webhook.core.errors import AnnotationError, ConfigError
from webhook.core.model import DnsConfig, DnsOption, HostAlias
from webhook.core.mutation.context import Context, MutationResult, dialect_of
from webhook.core.mutation.create import mutate
from webhook.core.mutation.layers import layer_from_annotations, namespace_layer, namespace_layer_as
from webhook.core.mutation.update import mutate_update
from webhook.tools.preview import load, preview

KCI, ECI, EKS, CCI = (DIALECTS[n] for n in ("kci", "eci", "eks", "cci"))
ROOT = Path(__file__).resolve().parents[2]

ECI_HTTP = "k8s.aliyun.com/plain-http-registry"
ECI_INSECURE = "k8s.aliyun.com/insecure-registry"
ECI_HOSTS = "k8s.aliyun.com/eci-custom-hosts"
EKS_HTTP = "eks.tke.cloud.tencent.com/registry-http-endpoint"
EKS_INSECURE = "eks.tke.cloud.tencent.com/registry-insecure-skip-verify"
EKS_DNS = "eks.tke.cloud.tencent.com/resolv-conf"
KCI_HTTP = "k8s.ksyun.com/kci-http-registry"
KCI_INSECURE = "k8s.ksyun.com/kci-insecure-registry"
KCI_HOSTS = "k8s.ksyun.com/kci-host-aliases"
KCI_DNS = "k8s.ksyun.com/kci-dns-config"
DIALECT = "kci-webhook/dialect"

# test_mutate's HTTP and insecure mirrors, and one for docker.io.
MIRRORS = HTTP_MIRROR + """\
  - endpoint: https://172.18.0.20:5000/v2/test-namespace
    hosts: [docker.io]
    pullSecret: mirror-pull
"""
ALLOWED = """
security:
  allowedInsecureRegistries: [harbor.example.com, "*.corp.example"]
"""


def pod(*images: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A pod of `team`, running nginx unless `images` says otherwise."""
    return builders.pod(*(images or ("nginx:1.27",)), namespace="team",
                        annotations=annotations, **spec)


def ctx(dialect: str = "kci", config_text: str = "", *, ns: dict[str, str] | None = None,
        override: str | None = None) -> Context:
    """A pod of `team` admitted under a config of `dialect`, without the webhook's own
    namespace (`own_namespace`) or KCI_* environment."""
    config = load_config(f"dialect: {dialect}\n{config_text}", source="test.yaml")
    return builders.context(config, namespace="team", ns=ns, own_namespace=None,
                            dialect=override)


def layer(dialect_name: str, annotations: dict[str, str]):  # type: ignore[no-untyped-def]
    return layer_from_annotations(annotations, level="pod", dialect=DIALECTS[dialect_name])


def problems_of(dialect_name: str, annotations: dict[str, str]) -> tuple[str, ...]:
    return layer(dialect_name, annotations).problems


# --- parsing: the vendors' own examples --------------------------------------------------

PARSED = [
    # (id, dialect, annotations, field, expected)
    ("eci-doc-plain-http-list", "eci",
     {ECI_HTTP: "harbor1.pre.com,192.168.1.10:5000,reg1.test.com:80"}, "http_registries",
     ("harbor1.pre.com", "192.168.1.10:5000", "reg1.test.com:80")),
    ("eci-doc-plain-http-one", "eci", {ECI_HTTP: "192.168.1.10:5000"}, "http_registries",
     ("192.168.1.10:5000",)),
    ("eci-doc-insecure-one", "eci", {ECI_INSECURE: "harbor1.pre.com"}, "insecure_registries",
     ("harbor1.pre.com",)),
    ("eci-insecure-case-and-spaces-fold", "eci", {ECI_INSECURE: " Harbor.Pre.com , harbor.pre.com"},
     "insecure_registries", ("harbor.pre.com",)),
    ("eci-doc-custom-hosts", "eci",
     {ECI_HOSTS: '[{"host":"example.com","ip":"100.100.1.1"},'
                 '{"host":"aliyundoc.com","ip":"100.100.1.1"}]'},
     "host_aliases", (HostAlias("100.100.1.1", ("example.com", "aliyundoc.com")),)),
    ("eci-custom-hosts-repeat-at-one-address-folds", "eci",
     {ECI_HOSTS: '[{"host":"a.example","ip":"10.0.0.1"},{"host":"a.example","ip":"10.0.0.1"},'
                 '{"ip":"10.0.0.2","host":"b.example"}]'},
     "host_aliases", (HostAlias("10.0.0.1", ("a.example",)),
                      HostAlias("10.0.0.2", ("b.example",)))),
    ("eci-custom-hosts-ipv6", "eci", {ECI_HOSTS: '[{"host":"v6.example","ip":"fd00::1"}]'},
     "host_aliases", (HostAlias("fd00::1", ("v6.example",)),)),
    ("eks-doc-http-endpoint", "eks", {EKS_HTTP: "harbor.example.com"}, "http_registries",
     ("harbor.example.com",)),
    ("eks-doc-port-kept", "eks", {EKS_INSECURE: "10.16.100.174:5000"}, "insecure_registries",
     ("10.16.100.174:5000",)),
    ("eks-doc-comma-list", "eks", {EKS_INSECURE: "harbor.example.com,10.16.100.174:5000"},
     "insecure_registries", ("harbor.example.com", "10.16.100.174:5000")),
    ("eks-doc-all", "eks", {EKS_HTTP: "all"}, "http_registries", (ALL_REGISTRIES,)),
    ("eks-all-any-case", "eks", {EKS_INSECURE: " ALL "}, "insecure_registries",
     (ALL_REGISTRIES,)),
    ("eks-doc-resolv-conf", "eks", {EKS_DNS: "nameserver 183.60.83.19"}, "dns_config",
     DnsConfig(nameservers=("183.60.83.19",))),
    ("eks-doc-resolv-conf-two", "eks", {EKS_DNS: "nameserver 4.4.4.4\n    nameserver 8.8.8.8\n"},
     "dns_config", DnsConfig(nameservers=("4.4.4.4", "8.8.8.8"))),
    ("eks-resolv-conf-full", "eks",
     {EKS_DNS: "# cluster DNS\nnameserver 10.0.0.10\nsearch a.example b.example.\n"
               "; tuning\noptions ndots:2\ttimeout:3 rotate\nsearch c.example\n"},
     "dns_config", DnsConfig(("10.0.0.10",), ("c.example",),
                             (DnsOption("ndots", "2"), DnsOption("timeout", "3"),
                              DnsOption("rotate")))),
    ("eks-resolv-conf-empty", "eks", {EKS_DNS: "\n# nothing\n"}, "dns_config", DnsConfig()),
    ("kci-unchanged", "kci", {KCI_HTTP: "192.168.1.5:5000"}, "http_registries",
     ("192.168.1.5:5000",)),
]


@pytest.mark.parametrize(("dialect", "annotations", "field", "expected"),
                         [p[1:] for p in PARSED], ids=[p[0] for p in PARSED])
def test_vendor_values_parse_to_the_canonical_model(dialect: str, annotations: dict[str, str],
                                                    field: str, expected: object) -> None:
    parsed = layer(dialect, annotations)
    assert parsed.problems == ()
    assert getattr(parsed, field) == expected


# --- validation: hostile and mistaken values, messages naming the vendor's key ------------

INVALID = [
    # (id, dialect, annotations, expected message fragments of the first problem)
    ("eci-http-scheme", "eci", {ECI_HTTP: "http://reg.example:80"},
     f'{ECI_HTTP} (pod): entry 1: "http://reg.example:80": no scheme: write reg.example:80'),
    ("eci-insecure-path", "eci", {ECI_INSECURE: "a.example,harbor.example/library"},
     f'{ECI_INSECURE} (pod): entry 2: "harbor.example/library": no path: write harbor.example'),
    ("eci-http-empty-entry", "eci", {ECI_HTTP: "a.example,,b.example"},
     f"{ECI_HTTP} (pod): entry 2: is empty"),
    ("eci-http-bad-port", "eci", {ECI_HTTP: "a.example:99999"},
     f'{ECI_HTTP} (pod): entry 1: "a.example:99999": port must be a number 1-65535'),
    ("eci-doc-mask-not-an-ip", "eci", {ECI_HOSTS: '[{"host":"example.com","ip":"100.100.XX.XX"}]'},
     f'{ECI_HOSTS} (pod): item 1: "ip": "100.100.XX.XX" is not an IPv4 or IPv6 address'),
    ("eci-hosts-kci-shape", "eci", {ECI_HOSTS: '[{"ip":"1.2.3.4","hostnames":["a.example"]}]'},
     f'{ECI_HOSTS} (pod): item 1: unknown key "hostnames" (expected "host", "ip")'),
    ("eci-hosts-uppercase", "eci", {ECI_HOSTS: '[{"host":"Example.com","ip":"1.2.3.4"}]'},
     f'{ECI_HOSTS} (pod): item 1: "host": "Example.com" is not a DNS-1123 subdomain'),
    ("eci-hosts-not-array", "eci", {ECI_HOSTS: '{"host":"a.example","ip":"1.2.3.4"}'},
     f"{ECI_HOSTS} (pod): expected a JSON array, got object"),
    ("eci-hosts-number-ip", "eci", {ECI_HOSTS: '[{"host":"a.example","ip":1}]'},
     f'{ECI_HOSTS} (pod): item 1: "ip": expected a string, got number 1'),
    ("eci-hosts-leading-zero", "eci", {ECI_HOSTS: '[{"host":"a.example","ip":"010.0.0.1"}]'},
     "(no leading zeros)"),
    ("eci-hosts-not-json", "eci", {ECI_HOSTS: "example.com=1.2.3.4"},
     f"{ECI_HOSTS} (pod): invalid JSON"),
    ("eci-hosts-oversized", "eci", {ECI_HOSTS: "[" + " " * (256 * 1024) + "]"},
     f"{ECI_HOSTS} (pod): value too large"),
    ("eks-http-scheme", "eks", {EKS_HTTP: "https://harbor.example.com"},
     f'{EKS_HTTP} (pod): entry 1: "https://harbor.example.com": no scheme: write '
     "harbor.example.com"),
    ("eks-all-with-path", "eks", {EKS_INSECURE: "all/library"},
     f'{EKS_INSECURE} (pod): entry 1: "all/library": no path: write all'),
    ("eks-resolv-bad-ip", "eks", {EKS_DNS: "nameserver 183.60.83"},
     f'{EKS_DNS} (pod): line 1: "183.60.83" is not an IPv4 or IPv6 address'),
    ("eks-resolv-two-on-a-line", "eks", {EKS_DNS: "nameserver 1.1.1.1 8.8.8.8"},
     f"{EKS_DNS} (pod): line 1: nameserver takes one address, got 2"),
    ("eks-resolv-four-nameservers", "eks",
     {EKS_DNS: "\n".join(f"nameserver 10.0.0.{i}" for i in range(1, 5))},
     f'{EKS_DNS} (pod): "nameservers": 4 nameservers, at most 3 allowed'),
    ("eks-resolv-unknown-keyword", "eks", {EKS_DNS: "domain corp.example"},
     f'{EKS_DNS} (pod): line 1: unknown keyword "domain" (expected nameserver, search or '
     "options)"),
    ("eks-resolv-bad-search", "eks", {EKS_DNS: "nameserver 1.1.1.1\nsearch Corp_Example"},
     f'{EKS_DNS} (pod): line 2: "Corp_Example" is not a DNS-1123 subdomain'),
    ("eks-resolv-empty-search", "eks", {EKS_DNS: "search"},
     f"{EKS_DNS} (pod): line 1: search needs at least one domain"),
    ("eks-resolv-option-without-name", "eks", {EKS_DNS: "options :5"},
     f'{EKS_DNS} (pod): line 1: option ":5" has no name'),
    ("eks-resolv-nbsp-separator", "eks", {EKS_DNS: "nameserver\u00a01.1.1.1"},
     f"{EKS_DNS} (pod): line 1: character U+00A0 is not allowed"),
    ("eks-resolv-line-separator-smuggled", "eks",
     {EKS_DNS: "nameserver 1.1.1.1\noptions ndots:1\u2028nameserver 6.6.6.6"},
     f"{EKS_DNS} (pod): line 2: character U+2028 is not allowed"),
    ("eks-resolv-carriage-return", "eks", {EKS_DNS: "nameserver 1.1.1.1\r\n"},
     f"{EKS_DNS} (pod): line 1: character U+000D is not allowed"),
    ("eks-resolv-nul", "eks", {EKS_DNS: "nameserver 1.1.1.1\x00"},
     "character U+0000 is not allowed"),
    ("eks-resolv-too-many-searches", "eks",
     {EKS_DNS: "search " + " ".join(f"d{i}.example" for i in range(7))},
     f'{EKS_DNS} (pod): "searches": 7 search domains, at most 6 allowed'),
    ("eks-resolv-search-dot", "eks", {EKS_DNS: "search ."},
     f'{EKS_DNS} (pod): line 1: "." is not a search domain'),
]


@pytest.mark.parametrize(("dialect", "annotations", "message"),
                         [p[1:] for p in INVALID], ids=[p[0] for p in INVALID])
def test_invalid_values_are_named_by_the_vendors_key(dialect: str, annotations: dict[str, str],
                                                     message: str) -> None:
    problems = problems_of(dialect, annotations)
    assert problems, "the value must be refused"
    assert message in problems[0]


@pytest.mark.parametrize("dialect", ["kci", "eci", "eks"])
def test_an_invalid_value_denies_the_pod_in_every_dialect(dialect: str) -> None:
    key = DIALECTS[dialect].http_key
    assert key is not None
    outcome = mutate(pod(annotations={key: "http://reg.example"}), ctx(dialect))
    assert outcome.denial is not None and outcome.denial.startswith(f"{key} (pod): entry 1:")


@pytest.mark.parametrize(("dialect", "key"), [
    ("kci", KCI_DNS), ("kci", KCI_HOSTS), ("eci", ECI_HOSTS)], ids=["kci-dns", "kci-hosts",
                                                                   "eci-hosts"])
def test_an_empty_value_is_refused_the_first_time_too(dialect: str, key: str) -> None:
    # Alone on the pod, as after other annotations are added: the same answer both times.
    for values in ({key: ""}, {key: " ", KCI_HTTP: "a.example", ECI_HTTP: "a.example"}):
        outcome = mutate(pod(annotations=values), ctx(dialect))
        assert outcome.denial == f"{key} (pod): is empty; remove the annotation or give a value"


@pytest.mark.parametrize(("dialect", "key"), [
    ("eci", ECI_HTTP), ("eks", EKS_INSECURE), ("eks", EKS_DNS)], ids=["eci-http", "eks-insecure",
                                                                     "eks-resolv-conf"])
def test_an_empty_list_or_resolv_conf_is_refused_as_in_kci(dialect: str, key: str) -> None:
    assert problems_of(dialect, {key: ""}) == (
        f"{key} (pod): is empty; remove the annotation or give a value",)


def test_a_non_string_value_is_refused_by_key() -> None:
    assert problems_of("eci", {ECI_HTTP: 5}) == (  # type: ignore[dict-item]
        f"{ECI_HTTP} (pod): value must be a string",)


# --- writing back: what the vendor reads is what was parsed ------------------------------

ROUND_TRIPS = [
    ("eci-hosts", parse_custom_hosts, custom_hosts_json,
     (HostAlias("10.0.0.1", ("a.example", "b.example")), HostAlias("fd00::1", ("c.example",)))),
    ("eks-resolv-conf", parse_resolv_conf, resolv_conf_text,
     DnsConfig(("1.1.1.1", "fd00::53"), ("a.example", "b.example."),
               (DnsOption("ndots", "2"), DnsOption("rotate"), DnsOption("attempts", "")))),
    ("eks-resolv-conf-empty", parse_resolv_conf, resolv_conf_text, DnsConfig()),
]


@pytest.mark.parametrize(("read", "write", "value"), [r[1:] for r in ROUND_TRIPS],
                         ids=[r[0] for r in ROUND_TRIPS])
def test_written_values_read_back_unchanged(read: Any, write: Any, value: object) -> None:
    assert read(write(value), level="pod") == value


def test_eci_hosts_are_written_one_mapping_per_host() -> None:
    text = custom_hosts_json((HostAlias("10.0.0.1", ("a.example", "b.example")),))
    assert orjson.loads(text) == [{"host": "a.example", "ip": "10.0.0.1"},
                                  {"host": "b.example", "ip": "10.0.0.1"}]


@pytest.mark.parametrize(("entries", "text"), [
    (("a.example", "b.example:80"), "a.example,b.example:80"),
    ((ALL_REGISTRIES,), "all"),
    (("a.example", ALL_REGISTRIES, "10.0.0.9:5000"), "all"),
], ids=["list", "all", "all-covers-the-rest"])
def test_eks_registry_lists_are_written_with_all_alone(entries: tuple[str, ...],
                                                      text: str) -> None:
    assert registries_text(entries) == text


# --- choosing the dialect -----------------------------------------------------------------


def test_the_config_default_is_kci_and_can_be_set() -> None:
    assert load_config("", source="t").dialect == "kci"
    assert load_config("dialect: eks", source="t").dialect == "eks"


def test_an_unknown_config_dialect_is_refused() -> None:
    with pytest.raises(ConfigError, match="dialect: 'aws' is not one of kci, eci, eks, cci"):
        load_config("dialect: aws", source="t")


CHOICE = [
    # (id, config dialect, namespace annotations, preview override, expected)
    ("config-default", "eci", None, None, "eci"),
    ("namespace-overrides-config", "kci", {DIALECT: "EKS "}, None, "eks"),
    ("invalid-namespace-value-falls-back", "eci", {DIALECT: "aws"}, None, "eci"),
    ("preview-overrides-namespace", "kci", {DIALECT: "eks"}, "cci", "cci"),
]


@pytest.mark.parametrize(("config_dialect", "ns", "override", "expected"),
                         [c[1:] for c in CHOICE], ids=[c[0] for c in CHOICE])
def test_the_dialect_comes_from_preview_then_namespace_then_config(
        config_dialect: str, ns: dict[str, str] | None, override: str | None,
        expected: str) -> None:
    assert dialect_of(ctx(config_dialect, ns=ns, override=override)).name == expected


def test_an_invalid_namespace_dialect_is_reported_and_ignored() -> None:
    outcome = mutate(pod(), ctx("kci", ns={DIALECT: "aws"}))
    assert outcome.denial is None
    assert any(w.startswith(f'{DIALECT} (namespace team): unknown dialect "aws"')
               for w in outcome.warnings)


def test_a_namespace_in_eci_has_its_pods_read_in_eci() -> None:
    outcome = mutate(pod("harbor.pre.com/app:1", annotations={ECI_INSECURE: "harbor.pre.com"}),
                     ctx("kci", ns={DIALECT: "eci"}))
    assert outcome.denial is None and outcome.warnings == []
    assert outcome.pod["metadata"]["annotations"] == {ECI_INSECURE: "harbor.pre.com"}


def test_a_pod_cannot_switch_its_dialect() -> None:
    # In a kci namespace, a pod asking for eci still speaks kci: its eci key does nothing.
    annotations = {DIALECT: "eci", ECI_HTTP: "harbor.pre.com"}
    outcome = mutate(pod("harbor.pre.com/app:1", annotations=annotations), ctx("kci"))
    assert outcome.pod["metadata"]["annotations"] == annotations
    assert f"{DIALECT} (pod): a pod cannot choose its dialect; the platform sets it on the " \
           "Namespace (ignored)" in outcome.warnings
    assert any(w.startswith(f"{ECI_HTTP} (pod): that is the eci dialect's annotation")
               for w in outcome.warnings)


FOREIGN_SECURITY = [
    # (id, active dialect, pod annotations, denial)
    ("kci-key-in-eci-namespace", "eci", {DIALECT: "kci", KCI_INSECURE: "evil.example"},
     f"{KCI_INSECURE} (pod): registry 'evil.example' is not in "
     "security.allowedInsecureRegistries"),
    ("eks-all-in-kci-namespace", "kci", {EKS_HTTP: "all"},
     f"{EKS_HTTP} (pod): 'all' (every registry) is not allowed"),
    ("eci-key-in-cci-namespace", "cci", {ECI_HTTP: "harbor.example.com,evil.example"},
     f"{ECI_HTTP} (pod): registry 'evil.example' is not in"),
    ("unreadable-foreign-list", "kci", {ECI_INSECURE: "http://evil.example/x"},
     f"{ECI_INSECURE} (pod): another dialect's registry list that cannot be read"),
]


@pytest.mark.parametrize(("active", "annotations", "denial"),
                         [f[1:] for f in FOREIGN_SECURITY], ids=[f[0] for f in FOREIGN_SECURITY])
def test_another_dialects_tls_keys_are_held_to_the_security_rule(
        active: str, annotations: dict[str, str], denial: str) -> None:
    # Not acted on here, but another vendor's virtual kubelet would read them.
    outcome = mutate(pod("evil.example/x:1", annotations=annotations), ctx(active, ALLOWED))
    assert outcome.denial is not None and denial in outcome.denial


def test_another_dialects_allowed_tls_keys_only_draw_the_hint() -> None:
    outcome = mutate(pod(annotations={EKS_INSECURE: "harbor.example.com"}), ctx("kci", ALLOWED))
    assert outcome.denial is None
    assert [w for w in outcome.warnings if w.startswith(EKS_INSECURE)]


HINTS = [
    # (id, active dialect, foreign key, expected advice)
    ("kci-key-in-eci", "eci", KCI_HTTP, f"did you mean {ECI_HTTP}?"),
    ("eci-key-in-eks", "eks", ECI_INSECURE, f"did you mean {EKS_INSECURE}?"),
    ("eks-key-in-kci", "kci", EKS_DNS, f"did you mean {KCI_DNS}?"),
    ("eci-hosts-in-kci", "kci", ECI_HOSTS, f"did you mean {KCI_HOSTS}?"),
    ("kci-hosts-in-eks", "eks", KCI_HOSTS,
     "the eks dialect has no such annotation; set spec.hostAliases instead"),
    ("kci-dns-in-eci", "eci", KCI_DNS,
     "the eci dialect has no such annotation; set spec.dnsConfig instead"),
    ("eci-http-in-cci", "cci", ECI_HTTP,
     "the cci dialect has no such annotation; it cannot be expressed there"),
]


@pytest.mark.parametrize(("active", "key", "advice"), [h[1:] for h in HINTS],
                         ids=[h[0] for h in HINTS])
def test_another_dialects_key_gets_a_hint(active: str, key: str, advice: str) -> None:
    outcome = mutate(pod(annotations={key: "x"}), ctx(active))
    hints = [w for w in outcome.warnings if w.startswith(f"{key} (pod): that is the ")]
    assert len(hints) == 1
    assert advice in hints[0] and hints[0].endswith("(ignored)")
    assert outcome.pod["metadata"]["annotations"][key] == "x"


def test_the_active_dialects_own_keys_get_no_hint() -> None:
    for dialect in DIALECTS.values():
        own = dict.fromkeys(dialect.annotation_keys(), "x")
        assert foreign_key_warnings(own, dialect) == []


def test_a_namespace_read_in_another_dialect_is_read_again() -> None:
    # Parsed while the config said kci; the config now says eci (a reload).
    layer_as_kci = namespace_layer("team", {ECI_INSECURE: "harbor.pre.com"}, "kci")
    assert layer_as_kci.insecure_registries == ()
    again = namespace_layer_as(layer_as_kci, ECI)
    assert again.insecure_registries == ("harbor.pre.com",)
    assert namespace_layer_as(again, ECI) is again


# --- precedence and namespace defaults, the same in every dialect ----------------------

def equivalent(dialect: str, *, http: str = "", insecure: str = "",
               hosts: tuple[tuple[str, str], ...] = (), dns: DnsConfig | None = None
               ) -> dict[str, str]:
    """The same settings written in `dialect`'s keys and format (where it has them)."""
    d = DIALECTS[dialect]
    out: dict[str, str] = {}
    if http and d.http_key:
        out[d.http_key] = http
    if insecure and d.insecure_key:
        out[d.insecure_key] = insecure
    if hosts and d.hosts_key and d.write_hosts:
        aliases = tuple(HostAlias(ip, (host,)) for host, ip in hosts)
        out[d.hosts_key] = d.write_hosts(aliases)
    if dns is not None and d.dns_key and d.write_dns:
        out[d.dns_key] = d.write_dns(dns)
    return out


@pytest.mark.parametrize("dialect", ["kci", "eci", "eks"])
def test_pod_and_namespace_registry_lists_are_a_union_pod_first(dialect: str) -> None:
    d = DIALECTS[dialect]
    outcome = mutate(
        pod("a.example/x:1", "b.example/y:1",
            annotations=equivalent(dialect, insecure="a.example")),
        ctx(dialect, ns=equivalent(dialect, insecure="b.example,a.example")))
    assert outcome.denial is None
    assert d.insecure_key is not None
    assert outcome.pod["metadata"]["annotations"][d.insecure_key] == "a.example,b.example"


@pytest.mark.parametrize("dialect", ["kci", "eci"])
def test_a_pods_host_entry_wins_its_hostname_over_the_namespaces(dialect: str) -> None:
    outcome = mutate(
        pod(annotations=equivalent(dialect, hosts=(("shared.example", "10.0.0.1"),))),
        ctx(dialect, ns=equivalent(dialect, hosts=(("shared.example", "10.0.0.2"),
                                                   ("ns.example", "10.0.0.2")))))
    assert outcome.pod["spec"]["hostAliases"] == [
        {"ip": "10.0.0.1", "hostnames": ["shared.example"]},
        {"ip": "10.0.0.2", "hostnames": ["ns.example"]}]


@pytest.mark.parametrize("dialect", ["kci", "eks"])
def test_dns_over_the_limits_once_merged_with_the_spec_names_the_dialects_key(
        dialect: str) -> None:
    d = DIALECTS[dialect]
    outcome = mutate(pod(annotations=equivalent(dialect, dns=DnsConfig(("1.1.1.1", "2.2.2.2"))),
                         dnsConfig={"nameservers": ["8.8.8.8", "9.9.9.9"]}), ctx(dialect))
    assert outcome.denial == (f'{d.dns_key} (pod): after merging with spec.dnsConfig: '
                              '"nameservers": 4 nameservers, at most 3 allowed')


@pytest.mark.parametrize("dialect", ["kci", "eks"])
def test_the_pods_dns_wins_whole_over_the_namespaces(dialect: str) -> None:
    mine, theirs = DnsConfig(("1.1.1.1",)), DnsConfig(("2.2.2.2",), ("ns.example",))
    outcome = mutate(pod(annotations=equivalent(dialect, dns=mine)),
                     ctx(dialect, ns=equivalent(dialect, dns=theirs)))
    assert outcome.pod["spec"]["dnsConfig"] == {"nameservers": ["1.1.1.1"]}


@pytest.mark.parametrize("dialect", ["eks", "cci", "eci"])
def test_namespace_defaults_reach_a_pod_that_sets_nothing(dialect: str) -> None:
    ns = {**equivalent(dialect, hosts=(("ns.example", "10.0.0.2"),),
                       dns=DnsConfig(("2.2.2.2",))),
          "kci-webhook/image-pull-secrets": "team-pull"}
    result = mutate(pod(), ctx(dialect, ns=ns)).pod
    d = DIALECTS[dialect]
    assert result["spec"]["imagePullSecrets"] == [{"name": "team-pull"}]
    assert ("hostAliases" in result["spec"]) is bool(d.hosts_key)
    assert ("dnsConfig" in result["spec"]) is bool(d.dns_key)
    written = result["metadata"].get("annotations", {})
    assert set(written) == {k for k in (d.hosts_key, d.dns_key) if k}


# --- security: allowedInsecureRegistries in every dialect ---------------------------------

SECURITY = [
    # (id, dialect, annotations, denied with)
    ("kci-not-allowed", "kci", {KCI_INSECURE: "evil.example"},
     f"{KCI_INSECURE} (pod): registry 'evil.example' is not in "
     "security.allowedInsecureRegistries"),
    ("eci-http-not-allowed", "eci", {ECI_HTTP: "harbor.example.com,evil.example:5000"},
     f"{ECI_HTTP} (pod): registry 'evil.example:5000' is not in "
     "security.allowedInsecureRegistries"),
    ("eks-insecure-not-allowed", "eks", {EKS_INSECURE: "10.16.100.174:5000"},
     f"{EKS_INSECURE} (pod): registry '10.16.100.174:5000' is not in "
     "security.allowedInsecureRegistries"),
    ("eks-all-under-restriction", "eks", {EKS_HTTP: "all"},
     f"{EKS_HTTP} (pod): 'all' (every registry) is not allowed while "
     "security.allowedInsecureRegistries restricts"),
    ("eks-wildcard-apex-not-covered", "eks", {EKS_HTTP: "corp.example"},
     f"{EKS_HTTP} (pod): registry 'corp.example' is not in"),
]


@pytest.mark.parametrize(("dialect", "annotations", "denial"), [s[1:] for s in SECURITY],
                         ids=[s[0] for s in SECURITY])
def test_tls_may_only_be_weakened_for_allowed_registries(dialect: str,
                                                         annotations: dict[str, str],
                                                         denial: str) -> None:
    outcome = mutate(pod(annotations=annotations), ctx(dialect, ALLOWED))
    assert outcome.denial is not None and denial in outcome.denial


@pytest.mark.parametrize(("dialect", "annotations"), [
    ("eci", {ECI_INSECURE: "harbor.example.com,r.corp.example:443"}),
    ("eks", {EKS_HTTP: "harbor.example.com:8080", EKS_INSECURE: "x.corp.example"}),
], ids=["eci-allowed", "eks-allowed"])
def test_allowed_registries_pass(dialect: str, annotations: dict[str, str]) -> None:
    assert mutate(pod(annotations=annotations), ctx(dialect, ALLOWED)).denial is None


EKS_HTTP_ONLY_MIRROR = """
mirrors:
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
"""


def test_eks_all_is_allowed_without_restriction() -> None:
    outcome = mutate(pod("quay.io/a/b:1", annotations={EKS_HTTP: "all"}),
                     ctx("eks", EKS_HTTP_ONLY_MIRROR))
    assert outcome.denial is None
    assert outcome.pod["metadata"]["annotations"][EKS_HTTP] == "all"
    assert not any("a typo?" in w for w in outcome.warnings)


def test_eks_all_may_not_weaken_tls_for_a_verified_mirror() -> None:
    # 'all' would send the docker.io mirror's pull secret over plain HTTP too.
    outcome = mutate(pod("quay.io/a/b:1", annotations={EKS_HTTP: "all"}), ctx("eks", MIRRORS))
    assert outcome.denial is not None
    assert (f"{EKS_HTTP} (pod): 'all' (every registry) would weaken TLS for the configured "
            "mirror '172.18.0.20:5000' too") in outcome.denial


_TLS_KEYS = [(d.name, key) for d in DIALECTS.values() for key in (d.http_key, d.insecure_key)
             if key is not None]


@pytest.mark.parametrize("active", sorted(DIALECTS))
@pytest.mark.parametrize(("owner", "key"), _TLS_KEYS, ids=[k for _d, k in _TLS_KEYS])
def test_every_dialects_key_is_held_to_the_mirror_rule_in_every_dialect(
        active: str, owner: str, key: str) -> None:
    """No allow-list: the verified mirror's host, in any dialect's HTTP / insecure key, is
    refused whichever dialect the pod is read in (the vendor whose key it is would act on
    it); and so is `all` wherever a dialect has the word."""
    for value in ("172.18.0.20:5000", "172.18.0.20:05000"):
        outcome = mutate(pod(annotations={key: value}), ctx(active, MIRRORS))
        assert outcome.denial is not None, (active, key, value)
        assert f"{key} (pod): registry {value!r} is a configured mirror's host" in (
            outcome.denial)
    if owner == "eks":
        outcome = mutate(pod(annotations={key: "all"}), ctx(active, MIRRORS))
        assert outcome.denial is not None
        assert f"{key} (pod): 'all' (every registry)" in outcome.denial


@pytest.mark.parametrize("dialect", ["eci", "eks"])
def test_a_namespace_value_the_rule_refuses_is_dropped_not_applied(dialect: str) -> None:
    d = DIALECTS[dialect]
    assert d.insecure_key is not None
    outcome = mutate(pod(), ctx(dialect, ALLOWED, ns={d.insecure_key: "evil.example"}))
    assert outcome.denial is None
    assert d.insecure_key not in outcome.pod["metadata"].get("annotations", {})
    assert any(w.startswith(f"{d.insecure_key} (namespace team): registry 'evil.example'")
               for w in outcome.warnings)


# --- mirror-driven entries --------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["kci", "eci", "eks"])
def test_mirrors_add_their_hosts_to_the_dialects_lists(dialect: str) -> None:
    d = DIALECTS[dialect]
    outcome = mutate(pod("quay.io/prom/node:1", "ghcr.io/org/app:2"), ctx(dialect, MIRRORS))
    written = outcome.pod["metadata"]["annotations"]
    assert d.http_key is not None and d.insecure_key is not None
    assert written[d.http_key] == "10.0.0.9:5000"
    assert written[d.insecure_key] == "mirror.example:5443"


def test_cci_warns_that_a_mirror_needs_what_it_cannot_say() -> None:
    outcome = mutate(pod("quay.io/prom/node:1", "ghcr.io/org/app:2"), ctx("cci", MIRRORS))
    assert "10.0.0.9:5000: needs plain HTTP, but the cci dialect (Huawei Cloud CCI 2.0) has " \
           "no annotation to say so; pulls from it may fail" in outcome.warnings
    assert any(w.startswith("mirror.example:5443: needs TLS verification skipped")
               for w in outcome.warnings)
    assert set(outcome.pod["metadata"]["annotations"]) == {"kci-webhook/original-images",
                                                           "kci-webhook/images"}


# --- one pod, four dialects --------------------------------------------------------------

SETTINGS: dict[str, Any] = {
    "http": "registry.corp.example:5000",
    "insecure": "harbor.corp.example",
    "hosts": (("registry.corp.example", "10.1.0.5"), ("harbor.corp.example", "10.1.0.6")),
    "dns": DnsConfig(("10.1.0.53",), ("corp.example",), (DnsOption("ndots", "2"),)),
}
IMAGES = ("nginx:1.27", "quay.io/prom/node:1", "ghcr.io/org/app:2",
          "registry.corp.example:5000/team/api:3", "harbor.corp.example/team/web:4")


def _pulled(dialect: str) -> tuple[dict[str, Any], Any]:
    d = DIALECTS[dialect]
    annotations = equivalent(dialect, **SETTINGS)
    # Where the vendor has no annotation, the author writes the pod's own fields.
    spec: dict[str, Any] = {}
    if not d.hosts_key:
        spec["hostAliases"] = [{"ip": ip, "hostnames": [host]} for host, ip in SETTINGS["hosts"]]
    if not d.dns_key:
        spec["dnsConfig"] = {"nameservers": ["10.1.0.53"], "searches": ["corp.example"],
                             "options": [{"name": "ndots", "value": "2"}]}
    outcome = mutate(pod(*IMAGES, annotations=annotations, **spec),
                     ctx(dialect, MIRRORS, ns={"kci-webhook/image-pull-secrets": "team-pull"}))
    assert outcome.denial is None
    return outcome.pod, layer(dialect, annotations)


def test_the_same_pod_pulls_from_the_same_mirrors_with_the_same_secrets_in_every_dialect(
        ) -> None:
    results = {name: _pulled(name) for name in DIALECTS}
    kci_pod, kci_layer = results["kci"]
    assert [c["image"] for c in kci_pod["spec"]["containers"]] == [
        "172.18.0.20:5000/test-namespace/library/nginx:1.27", "10.0.0.9:5000/prom/node:1",
        "mirror.example:5443/cache/org/app:2", "registry.corp.example:5000/team/api:3",
        "harbor.corp.example/team/web:4"]
    for name, (result, parsed) in results.items():
        for field in ("containers", "imagePullSecrets", "hostAliases", "dnsConfig"):
            assert result["spec"][field] == kci_pod["spec"][field], (name, field)
        d = DIALECTS[name]
        for field, key in (("http_registries", d.http_key),
                           ("insecure_registries", d.insecure_key),
                           ("host_aliases", d.hosts_key), ("dns_config", d.dns_key)):
            if key:
                assert getattr(parsed, field) == getattr(kci_layer, field), (name, field)


@pytest.mark.parametrize("version", ["1.25.0", kubernetes_validate.latest_version()])
@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_mutated_pods_are_valid_pods(dialect: str, version: str) -> None:
    result, _ = _pulled(dialect)
    kubernetes_validate.validate(result, version, strict=True)


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_mutating_twice_changes_nothing_more(dialect: str) -> None:
    first, _ = _pulled(dialect)
    again = mutate(copy.deepcopy(first), ctx(dialect, MIRRORS,
                                             ns={"kci-webhook/image-pull-secrets": "team-pull"}))
    assert again.pod == first


# --- the offline preview ----------------------------------------------------------------


def test_preview_speaks_the_dialect_it_is_given() -> None:
    documents = load(orjson.dumps(pod("quay.io/prom/node:1")).decode(), "pod.json")
    config = load_config(MIRRORS, source="t")

    def written(dialect: str | None) -> dict[str, str]:
        result = preview(documents, filename="pod.json", config=config,
                         environment=EnvironmentDefaults(), namespace="team",
                         namespace_annotations={DIALECT: "eci"}, dialect=dialect)
        assert not [f for f in result.findings
                    if "annotation" in f.text and "pullSecret" not in f.text], result.findings
        return result.documents[0]["metadata"]["annotations"]

    assert written("kci")[KCI_HTTP] == "10.0.0.9:5000"
    assert written("eks")[EKS_HTTP] == "10.0.0.9:5000"
    assert written(None)[ECI_HTTP] == "10.0.0.9:5000"    # the namespace's


def test_dialect_readers_raise_annotation_errors() -> None:
    with pytest.raises(AnnotationError):
        parse_resolv_conf("bogus", level="pod")
    with pytest.raises(AnnotationError):
        parse_custom_hosts("[1]", level="pod")


def test_replace_keeps_contexts_frozen() -> None:
    base = ctx("kci")
    assert dialect_of(replace(base, dialect="eks")).name == "eks"
    assert dialect_of(base).name == "kci"


# --- properties, for every dialect (Hypothesis) -----------------------------------------

DIALECT_VALUES: dict[str, Any] = {
    ECI_HTTP: st.one_of(st.just("harbor1.pre.com,192.168.1.10:5000,reg1.test.com:80"),
                        st.just("quay.io"), st.text(max_size=20)),
    ECI_INSECURE: st.one_of(st.just("harbor1.pre.com"), st.just("ghcr.io, GHCR.io"),
                            st.text(max_size=20)),
    ECI_HOSTS: st.one_of(
        st.just('[{"host":"example.com","ip":"100.100.1.1"},'
                '{"host":"shared.example","ip":"100.100.1.1"}]'),
        st.just('[{"host":"v6.example","ip":"::1"},{"host":"v6.example","ip":"1.2.3.4"}]'),
        st.just('[{"host":"example.com","ip":"100.100.XX.XX"}]'), st.text(max_size=20)),
    EKS_HTTP: st.one_of(st.just("all"), st.just("10.16.100.174:5000,quay.io"),
                        st.text(max_size=20)),
    EKS_INSECURE: st.one_of(st.just("harbor.example.com"), st.just("ALL,ghcr.io"),
                            st.text(max_size=20)),
    EKS_DNS: st.one_of(st.just("nameserver 183.60.83.19"),
                       st.just("nameserver 1.1.1.1\nsearch a.example\noptions ndots:5 rotate"),
                       st.just("nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3"),
                       st.text(alphabet="nameserv 1.2\n#;:", max_size=30)),
    DIALECT: st.sampled_from(["eci", "kci", "nope"]),
}


@st.composite
def dialect_pods(draw: st.DrawFn, dialect: str) -> dict[str, Any]:
    """Pods of the KCI properties, with keys of `dialect` and, now and then, of others."""
    base = draw(property_pods())
    own = [k for k in DIALECT_VALUES if k in DIALECTS[dialect].annotation_keys()]
    pool = own + draw(st.lists(st.sampled_from(sorted(DIALECT_VALUES)), max_size=2))
    chosen = draw(st.lists(st.sampled_from(pool), unique=True, max_size=4)) if pool else []
    extra = {key: draw(DIALECT_VALUES[key]) for key in chosen}
    if extra:
        meta = base["metadata"]
        meta["annotations"] = {**(meta.get("annotations") or {}), **extra}
    return base


def dialect_context(dialect: str, config: Any, ns: bool) -> Context:
    d = DIALECTS[dialect]
    ns_annotations = {"kci-webhook/image-pull-secrets": "team-pull"}
    if d.hosts_key and d.write_hosts:
        ns_annotations[d.hosts_key] = d.write_hosts(
            (HostAlias("10.0.0.2", ("ns.example", "shared.example")),))
    if d.insecure_key:
        ns_annotations[d.insecure_key] = "ns-registry.example"
    return Context(config=replace(config, dialect=dialect), environment=PROPERTY_ENV,
                   namespace="team-a",
                   namespace_layer=namespace_layer("team-a", ns_annotations, dialect)
                   if ns else None)


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_mutation_is_idempotent_in_every_dialect(dialect: str) -> None:
    checked: Counter[bool] = Counter()

    @PROPERTY_SETTINGS
    @given(data=st.data())
    def second_pass(data: st.DataObject) -> None:
        config = data.draw(st.sampled_from([PROPERTY_CONFIG, WARN_CONFIG, WARN_MIRRORS]))
        checked[check_second_pass(data.draw(dialect_pods(dialect)),
                                  dialect_context(dialect, config, data.draw(st.booleans())))] += 1

    second_pass()
    assert checked[True], "no example was admitted: no second pass was checked"


@pytest.mark.parametrize("dialect", list(DIALECTS))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_patch_applies_in_every_dialect(dialect: str, data: st.DataObject) -> None:
    the_pod = data.draw(dialect_pods(dialect))
    snapshot = copy.deepcopy(the_pod)
    check_patch_applies(the_pod, dialect_context(dialect, PROPERTY_CONFIG,
                                                 data.draw(st.booleans())))
    assert the_pod == snapshot


# --- pod UPDATE, in every dialect ---------------------------------------------------------

def _update(dialect: str, old_annotations: dict[str, str], new_annotations: dict[str, str],
            old_image: str, new_image: str, config_text: str = MIRRORS) -> MutationResult:
    old = pod(old_image, annotations=old_annotations)
    new = pod(new_image, annotations=new_annotations)
    return mutate_update(new, old, ctx(dialect, config_text), sub_resource="")


UPDATES = [
    # (id, dialect, old annotations, new annotations, new image, expected image or denial)
    ("eks-all-covers-the-http-mirror", "eks", {EKS_HTTP: "all"}, {EKS_HTTP: "all"},
     "quay.io/prom/node:2", "10.0.0.9:5000/prom/node:2"),
    ("eci-listed-http-mirror", "eci", {ECI_HTTP: "10.0.0.9:5000"}, {ECI_HTTP: "10.0.0.9:5000"},
     "quay.io/prom/node:2", "10.0.0.9:5000/prom/node:2"),
    ("eci-unlisted-http-mirror-kept", "eci", {}, {}, "quay.io/prom/node:2",
     "quay.io/prom/node:2"),
    ("cci-http-mirror-as-at-creation", "cci", {}, {}, "quay.io/prom/node:2",
     "10.0.0.9:5000/prom/node:2"),
]


@pytest.mark.parametrize(("dialect", "old", "new", "image", "expected"),
                         [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES])
def test_an_update_reads_the_pods_lists_in_its_dialect(dialect: str, old: dict[str, str],
                                                       new: dict[str, str], image: str,
                                                       expected: str) -> None:
    outcome = _update(dialect, old, new, "quay.io/prom/node:1", image)
    assert outcome.denial is None
    assert outcome.pod["spec"]["containers"][0]["image"] == expected


def test_an_unlisted_mirror_on_update_names_the_dialects_key() -> None:
    outcome = _update("eks", {}, {}, "quay.io/prom/node:1", "quay.io/prom/node:2")
    assert any(f"add 10.0.0.9:5000 to the pod's {EKS_HTTP}" in w for w in outcome.warnings)


UPDATE_DENIALS = [
    # (id, dialect, old annotations, new annotations, denial or None)
    ("eci-adds-disallowed", "eci", {}, {ECI_INSECURE: "evil.example"},
     f"{ECI_INSECURE} (pod): registry 'evil.example' is not in"),
    ("eks-adds-all", "eks", {}, {EKS_HTTP: "all"}, f"{EKS_HTTP} (pod): 'all' (every registry)"),
    ("foreign-adds-disallowed", "kci", {}, {EKS_INSECURE: "evil.example"},
     f"{EKS_INSECURE} (pod): registry 'evil.example' is not in"),
    ("foreign-entry-that-predates-is-not-judged", "kci", {EKS_INSECURE: "evil.example"},
     {EKS_INSECURE: "evil.example,harbor.example.com"}, None),
    ("eci-invalid-value", "eci", {}, {ECI_HOSTS: "[1]"},
     f"{ECI_HOSTS} (pod): item 1: expected a JSON object"),
]


@pytest.mark.parametrize(("dialect", "old", "new", "denial"),
                         [u[1:] for u in UPDATE_DENIALS], ids=[u[0] for u in UPDATE_DENIALS])
def test_an_update_holds_its_added_registries_to_the_security_rule(
        dialect: str, old: dict[str, str], new: dict[str, str], denial: str | None) -> None:
    outcome = _update(dialect, old, new, "nginx:1", "nginx:1", MIRRORS + ALLOWED)
    if denial is None:
        assert outcome.denial is None
    else:
        assert outcome.denial is not None and denial in outcome.denial


# --- the command line and the namespace cache -----------------------------------------

def test_mutate_command_takes_a_dialect(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(MIRRORS)
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        "    eks.tke.cloud.tencent.com/registry-insecure-skip-verify: harbor.example.com\n"
        "spec:\n"
        "  containers:\n  - {name: c, image: 'quay.io/prom/node:1'}\n")
    command = [sys.executable, "-m", "webhook", "mutate", "--config",
               str(tmp_path / "config.yaml"), "-f", str(tmp_path / "pod.yaml")]
    run = partial(subprocess.run, cwd=ROOT, capture_output=True, text=True, timeout=60,
                  check=False, env={"PATH": "/usr/bin:/bin"})
    as_eks = run([*command, "--dialect", "eks"])
    assert as_eks.returncode == 0, as_eks.stderr
    written = yaml.safe_load(as_eks.stdout)["metadata"]["annotations"]
    assert written[EKS_HTTP] == "10.0.0.9:5000"
    assert written[EKS_INSECURE] == "harbor.example.com"
    assert "dialect's annotation" not in as_eks.stderr
    as_kci = run(command)
    assert f"{EKS_INSECURE} (pod): that is the eks dialect's annotation" in as_kci.stderr
    assert run([*command, "--dialect", "aws"]).returncode == 2


def test_the_namespace_cache_reads_namespaces_in_the_configs_dialect() -> None:
    cache = NamespaceCache(None, dialect="eci")
    cache._update("team", ((ECI_INSECURE, "harbor.pre.com"),))
    cache._update("other", ((DIALECT, "eks"), (EKS_INSECURE, "all")))
    team, other = cache.get("team"), cache.get("other")
    assert team is not None and team.insecure_registries == ("harbor.pre.com",)
    assert other is not None and other.dialect == "eks"
    assert other.insecure_registries == (ALL_REGISTRIES,)


def test_a_reload_that_changes_the_dialect_reads_cached_namespaces_again_once() -> None:
    cache = NamespaceCache(None, dialect="kci")
    cache._update("team", ((ECI_INSECURE, "harbor.pre.com"), (KCI_INSECURE, "r.example")))
    cache._update("other", ((DIALECT, "eks"), (EKS_INSECURE, "all")))
    before = cache.get("team")
    assert before is not None and before.insecure_registries == ("r.example",)
    other_before = cache.get("other")
    cache.set_dialect("eci")
    team = cache.get("team")
    assert team is not None and team.read_as == "eci"
    assert team.insecure_registries == ("harbor.pre.com",)
    assert cache.get("team") is team                 # read once, not on every admission
    other = cache.get("other")                       # names its own dialect: read the same
    assert other is not None and other_before is not None
    assert other.insecure_registries == other_before.insecure_registries == (ALL_REGISTRIES,)
