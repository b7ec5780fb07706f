"""webhook.core.values and the KCI grammar (webhook.core.dialects.kci): the KCI annotation
values, their validation messages and rendering."""

from __future__ import annotations

import json
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.core.dialects.kci import (
    dns_config_from_data,
    dns_config_json,
    host_aliases_from_data,
    host_aliases_json,
    parse_dns_config,
    parse_host_aliases,
)
from webhook.core.errors import AnnotationError
from webhook.core.model import (
    DnsConfig,
    DnsOption,
    HostAlias,
    dns_config_from_spec,
    dns_config_to_spec,
    host_aliases_to_spec,
)
from webhook.core.values.checks import dns_limit_problems, ip_key, is_dns1123_subdomain, is_ip
from webhook.core.values.keys import (
    IMAGE_PULL_SECRETS,
    KCI_DNS_CONFIG,
    KCI_HOST_ALIASES,
    KCI_HTTP_REGISTRY,
    KCI_INSECURE_REGISTRY,
    MIRRORS_SWITCH,
)
from webhook.core.values.lists import (
    parse_mirrors_switch,
    parse_name_list,
    parse_registry_list,
    registry_list_text,
)
from webhook.core.values.problems import MAX_PROBLEMS
from webhook.core.values.size import MAX_VALUE_BYTES

# The values exactly as the Kingsoft KCI document ("使用自建仓库") shows them.
DOC_DNS = ('{"nameservers":["1.1.1.1"],"options":[{"name":"ndots","value":"2"},'
            '{"name":"timeout","value":"3"}],"searches":["test1.com"]}')
DOC_HOST_ALIASES = ('[{"ip":"1.2.3.4","hostnames":["www.privaterepo1.com"]},'
                     '{"ip":"2.3.4.5","hostnames":["www.privaterepo2.com"]}]')

HA = f"{KCI_HOST_ALIASES} (pod): "
DNS = f"{KCI_DNS_CONFIG} (pod): "
HTTP = f"{KCI_HTTP_REGISTRY} (pod): "
RULE = "(lowercase letters, digits, '-' and '.'; labels of at most 63, 253 in all)"


def problems_of(call: Callable[[], object]) -> list[str]:
    with pytest.raises(AnnotationError) as info:
        call()
    return info.value.problems


def domain(length: int, seed: int = 0) -> str:
    """A valid, distinct DNS-1123 subdomain of exactly `length` characters (labels of 60)."""
    chars = list(f"x{seed}" + "a" * (length - len(f"x{seed}")))
    for dot in range(60, length - 1, 61):
        chars[dot] = "."
    return "".join(chars)


def hosts(*names: str) -> str:
    return orjson.dumps([{"ip": "10.0.0.1", "hostnames": list(names)}]).decode()


# --- the KCI document's examples ---------------------------------------------------------


def test_documented_dns_config_parses() -> None:
    assert parse_dns_config(DOC_DNS, level="pod") == DnsConfig(
        nameservers=("1.1.1.1",), searches=("test1.com",),
        options=(DnsOption("ndots", "2"), DnsOption("timeout", "3")),
    )


def test_documented_host_aliases_parse() -> None:
    assert parse_host_aliases(DOC_HOST_ALIASES, level="environment") == (
        HostAlias("1.2.3.4", ("www.privaterepo1.com",)),
        HostAlias("2.3.4.5", ("www.privaterepo2.com",)),
    )


@pytest.mark.parametrize(("raw", "expected"), [
    ("192.168.12.34:5000", ("192.168.12.34:5000",)),             # 192.168.xx.xx:5000
    ("harbor.example.com", ("harbor.example.com",)),
    ("kevin.harbor.com", ("kevin.harbor.com",)),
    ("harbor.example.com,192.168.1.2", ("harbor.example.com", "192.168.1.2")),
], ids=["http-registry-ip-port", "insecure-registry", "insecure-registry-2", "list"])
def test_documented_registry_lists_parse(raw: str, expected: tuple[str, ...]) -> None:
    for key in (KCI_HTTP_REGISTRY, KCI_INSECURE_REGISTRY):
        assert parse_registry_list(raw, key=key, level="pod") == expected


# --- one row per validation rule, with its exact message ----------------------------------

RULES: list[tuple[str, Callable[[], object], list[str]]] = [
    # host aliases
    ("design-doc-example", lambda: parse_host_aliases('[{"ip":"1.2.3","hostnames":["a.b"]}]',
                                                      level="pod"),
     [f'{HA}item 1: "ip": "1.2.3" is not an IPv4 or IPv6 address']),
    ("ip-leading-zeros", lambda: parse_host_aliases('[{"ip":"010.1.1.1","hostnames":["a"]}]',
                                                    level="pod"),
     [f'{HA}item 1: "ip": "010.1.1.1" is not an IPv4 or IPv6 address (no leading zeros)']),
    ("ip-zone-id", lambda: parse_host_aliases('[{"ip":"fe80::1%eth0","hostnames":["a"]}]',
                                              level="pod"),
     [f'{HA}item 1: "ip": "fe80::1%eth0" is not an IPv4 or IPv6 address (no zone id)']),
    ("ip-required", lambda: parse_host_aliases('[{"hostnames":["a"]}]', level="pod"),
     [f'{HA}item 1: "ip" is required']),
    ("ip-not-a-string", lambda: parse_host_aliases('[{"ip":true,"hostnames":["a"]}]',
                                                   level="pod"),
     [f'{HA}item 1: "ip": expected a string, got boolean true']),
    ("typo-hostname", lambda: parse_host_aliases('[{"ip":"1.2.3.4","hostname":["a"]}]',
                                                 level="pod"),
     [f'{HA}item 1: unknown key "hostname" (expected "ip", "hostnames")',
      f'{HA}item 1: "hostnames" is required']),
    ("hostnames-empty", lambda: parse_host_aliases('[{"ip":"1.2.3.4","hostnames":[]}]',
                                                   level="pod"),
     [f'{HA}item 1: "hostnames": expected a non-empty array of strings, got an empty array']),
    ("hostnames-not-array", lambda: parse_host_aliases('[{"ip":"1.2.3.4","hostnames":"a"}]',
                                                       level="pod"),
     [f'{HA}item 1: "hostnames": expected a non-empty array of strings, got string']),
    ("hostname-not-a-string", lambda: parse_host_aliases(
        '[{"ip":"1.2.3.4","hostnames":["a"]},{"ip":"1.2.3.5","hostnames":["b",7]}]', level="pod"),
     [f'{HA}item 2: "hostnames" item 2: expected a string, got number 7 (write "7")']),
    ("hostname-not-dns1123", lambda: parse_host_aliases(
        '[{"ip":"1.2.3.4","hostnames":["a"]},{"ip":"::1","hostnames":["b","c","Foo_1"]}]',
        level="pod"),
     [f'{HA}item 2: "hostnames" item 3: "Foo_1" is not a DNS-1123 subdomain {RULE}']),
    ("hostname-label-over-63", lambda: parse_host_aliases(hosts("a" * 64 + ".com"), level="pod"),
     [f'{HA}item 1: "hostnames" item 1: "{"a" * 64}"... is not a DNS-1123 subdomain {RULE}']),
    ("hostname-over-253", lambda: parse_host_aliases(hosts(domain(254)), level="pod"),
     [f'{HA}item 1: "hostnames" item 1: "{domain(254)[:64]}"... is not a DNS-1123 subdomain '
      f'{RULE}']),
    ("item-not-object", lambda: parse_host_aliases('["1.2.3.4 a"]', level="pod"),
     [f'{HA}item 1: expected a JSON object, got string']),
    ("aliases-not-array", lambda: parse_host_aliases('{"ip":"1.2.3.4"}', level="pod"),
     [f'{HA}expected a JSON array, got object']),
    ("empty-value", lambda: parse_host_aliases("  ", level="pod"),
     [f"{HA}invalid JSON: the value is empty"]),
    ("level-in-message", lambda: host_aliases_from_data([{"ip": "x", "hostnames": ["a"]}],
                                                        level="namespace team-a"),
     [f'{KCI_HOST_ALIASES} (namespace team-a): item 1: "ip": "x" is not an IPv4 or IPv6 address']),
    # DNS config
    ("nameserver-not-ip", lambda: parse_dns_config('{"nameservers":["dns.google"]}', level="pod"),
     [f'{DNS}"nameservers" item 1: "dns.google" is not an IPv4 or IPv6 address']),
    ("nameservers-over-3", lambda: parse_dns_config(
        '{"nameservers":["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4"]}', level="pod"),
     [f'{DNS}"nameservers": 4 nameservers, at most 3 allowed']),
    ("nameservers-not-array", lambda: parse_dns_config('{"nameservers":"1.1.1.1"}', level="pod"),
     [f'{DNS}"nameservers": expected an array of strings, got string']),
    ("search-not-dns1123", lambda: parse_dns_config('{"searches":["ok.com","Bad.com"]}',
                                                    level="pod"),
     [f'{DNS}"searches" item 2: "Bad.com" is not a DNS-1123 subdomain {RULE}, '
      "optionally ending in '.'"]),
    ("search-two-trailing-dots", lambda: parse_dns_config('{"searches":["a.."]}', level="pod"),
     [f'{DNS}"searches" item 1: "a.." is not a DNS-1123 subdomain {RULE}, '
      "optionally ending in '.'"]),
    ("searches-over-6", lambda: parse_dns_config(
        orjson.dumps({"searches": [f"s{i}.com" for i in range(7)]}).decode(), level="pod"),
     [f'{DNS}"searches": 7 search domains, at most 6 allowed (the limit of Kubernetes 1.24, '
      "the oldest supported release)"]),
    ("searches-over-256-chars", lambda: dns_config_from_data(
        {"searches": [domain(128, 1), domain(128, 2)]}, level="pod"),
     [f'{DNS}"searches": 257 characters in all (with one space between domains), '
      "at most 256 allowed (the limit of Kubernetes 1.24, the oldest supported release)"]),
    ("option-value-number", lambda: parse_dns_config(
        '{"options":[{"name":"ndots","value":2}]}', level="pod"),
     [f'{DNS}"options" item 1: "value": expected a string, got number 2 (write "2")']),
    ("option-name-empty", lambda: parse_dns_config(
        '{"options":[{"name":"ndots","value":"2"},{"name":""}]}', level="pod"),
     [f'{DNS}"options" item 2: "name": must not be empty']),
    ("option-name-required", lambda: parse_dns_config('{"options":[{"value":"2"}]}', level="pod"),
     [f'{DNS}"options" item 1: "name" is required']),
    ("option-unknown-key", lambda: parse_dns_config('{"options":[{"name":"a","val":"2"}]}',
                                                    level="pod"),
     [f'{DNS}"options" item 1: unknown key "val" (expected "name", "value")']),
    ("option-not-object", lambda: parse_dns_config('{"options":["ndots:2"]}', level="pod"),
     [f'{DNS}"options" item 1: expected a JSON object, got string']),
    ("options-not-array", lambda: parse_dns_config('{"options":{"ndots":"2"}}', level="pod"),
     [f'{DNS}"options": expected an array of objects, got object']),
    ("dns-unknown-key", lambda: parse_dns_config('{"nameserver":["1.1.1.1"]}', level="pod"),
     [f'{DNS}unknown key "nameserver" (expected "nameservers", "searches", "options")']),
    ("dns-not-object", lambda: parse_dns_config('["1.1.1.1"]', level="pod"),
     [f"{DNS}expected a JSON object, got array"]),
    # registry lists
    ("registry-trailing-comma", lambda: parse_registry_list("a.com,", key=KCI_HTTP_REGISTRY,
                                                            level="pod"),
     [f"{HTTP}entry 2: is empty (remove the extra comma)"]),
    ("registry-scheme", lambda: parse_registry_list("http://harbor.example.com",
                                                    key=KCI_HTTP_REGISTRY, level="pod"),
     [f'{HTTP}entry 1: "http://harbor.example.com": no scheme: write harbor.example.com']),
    ("registry-scheme-and-path", lambda: parse_registry_list(
        "a.com, https://h.io:5000/v2/x", key=KCI_HTTP_REGISTRY, level="pod"),
     [f'{HTTP}entry 2: "https://h.io:5000/v2/x": no scheme, no path: write h.io:5000']),
    ("registry-path", lambda: parse_registry_list("h.io/library", key=KCI_HTTP_REGISTRY,
                                                  level="pod"),
     [f'{HTTP}entry 1: "h.io/library": no path: write h.io']),
    ("registry-port-zero", lambda: parse_registry_list("h.io:0", key=KCI_HTTP_REGISTRY,
                                                       level="pod"),
     [f'{HTTP}entry 1: "h.io:0": port must be a number 1-65535, got "0"']),
    ("registry-port-too-big", lambda: parse_registry_list("h.io:65536", key=KCI_HTTP_REGISTRY,
                                                          level="pod"),
     [f'{HTTP}entry 1: "h.io:65536": port must be a number 1-65535, got "65536"']),
    ("registry-port-not-number", lambda: parse_registry_list("h.io:http", key=KCI_HTTP_REGISTRY,
                                                             level="pod"),
     [f'{HTTP}entry 1: "h.io:http": port must be a number 1-65535, got "http"']),
    ("registry-ipv6-unbracketed", lambda: parse_registry_list("fe80::1", key=KCI_HTTP_REGISTRY,
                                                              level="pod"),
     [f'{HTTP}entry 1: "fe80::1": an IPv6 address must be in brackets: write [fe80::1]']),
    ("registry-bad-host", lambda: parse_registry_list("bad_host.io", key=KCI_HTTP_REGISTRY,
                                                      level="pod"),
     [f'{HTTP}entry 1: "bad_host.io": expected host[:port]: a DNS name, an IPv4 address or '
      "a bracketed IPv6 address"]),
    # the switch and name lists
    ("mirrors-switch", lambda: parse_mirrors_switch("maybe", level="pod"),
     [f'{MIRRORS_SWITCH} (pod): expected "on" or "off", got "maybe"']),
    ("pull-secret-name", lambda: parse_name_list("ok,Bad_Name", key=IMAGE_PULL_SECRETS,
                                                 level="namespace team-a"),
     [f'{IMAGE_PULL_SECRETS} (namespace team-a): entry 2: "Bad_Name" is not a DNS-1123 '
      f"subdomain {RULE}"]),
]


@pytest.mark.parametrize(("call", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule_message(call: Callable[[], object], expected: list[str]) -> None:
    assert problems_of(call) == expected


def test_invalid_json_names_the_reason() -> None:
    (message,) = problems_of(lambda: parse_host_aliases('[{"ip":', level="pod"))
    assert message.startswith(f"{HA}invalid JSON: ")
    assert "end of data" in message


def test_every_problem_of_one_value_is_reported() -> None:
    raw = '[{"ip":"1.2.3","hostnames":["A"]},{"ip":"1.2.3.4","hostnames":["ok","B"],"x":1}]'
    assert problems_of(lambda: parse_host_aliases(raw, level="pod")) == [
        f'{HA}item 1: "ip": "1.2.3" is not an IPv4 or IPv6 address',
        f'{HA}item 1: "hostnames" item 1: "A" is not a DNS-1123 subdomain {RULE}',
        f'{HA}item 2: unknown key "x" (expected "ip", "hostnames")',
        f'{HA}item 2: "hostnames" item 2: "B" is not a DNS-1123 subdomain {RULE}',
    ]


def test_problems_are_capped_with_a_count_of_the_rest() -> None:
    problems = problems_of(lambda: parse_host_aliases("[" + ",".join(["1"] * 25) + "]",
                                                      level="pod"))
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[0] == f"{HA}item 1: expected a JSON object, got number 1"
    assert problems[-1] == f"{HA}... and 5 more"


def test_dns_limits_after_merging_name_the_context() -> None:
    merged = DnsConfig(nameservers=("1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"))
    assert dns_limit_problems(merged, level="pod", context="after merging with spec.dnsConfig") == [
        f'{DNS}after merging with spec.dnsConfig: "nameservers": 4 nameservers, at most 3 allowed'
    ]
    assert dns_limit_problems(DnsConfig(nameservers=("1.1.1.1",)), level="pod") == []


def test_search_list_of_exactly_256_chars_is_allowed() -> None:
    searches = [domain(127, 1), domain(128, 2)]
    assert len(" ".join(searches)) == 256
    assert dns_config_from_data({"searches": searches}, level="pod").searches == tuple(searches)


def test_six_search_domains_are_allowed() -> None:
    searches = [f"s{i}.example" for i in range(6)]
    assert dns_config_from_data({"searches": searches}, level="pod").searches == tuple(searches)


# What the oldest supported API server (1.24) refuses in spec.dnsConfig and spec.hostAliases
# must be refused here, naming the annotation, before it reaches the API server.
API_1_24_REFUSES = [
    # (id, annotation value, message after the key and level)
    ("search-root-dot", '{"searches":["."]}',
     '"searches" item 1: "." is not a search domain: the API server (1.24) trims the trailing '
     "'.' and refuses the empty rest; remove it"),
    ("search-underscore", '{"searches":["_tcp.example.com"]}',
     f'"searches" item 1: "_tcp.example.com" is not a DNS-1123 subdomain {RULE}, '
     "optionally ending in '.'"),
    ("search-underscore-inside-label", '{"searches":["svc_a.example.com."]}',
     f'"searches" item 1: "svc_a.example.com." is not a DNS-1123 subdomain {RULE}, '
     "optionally ending in '.'"),
    ("search-empty", '{"searches":[""]}',
     f'"searches" item 1: "" is not a DNS-1123 subdomain {RULE}, optionally ending in \'.\''),
    ("nameserver-ipv4-mapped-ipv6", '{"nameservers":["::ffff:1.1.1.1"]}',
     '"nameservers" item 1: "::ffff:1.1.1.1" is not an IPv4 or IPv6 address '
     "(no IPv4-mapped IPv6: write 1.1.1.1)"),
]


@pytest.mark.parametrize(("raw", "message"), [r[1:] for r in API_1_24_REFUSES],
                         ids=[r[0] for r in API_1_24_REFUSES])
def test_dns_value_the_1_24_api_server_refuses_is_refused_naming_the_annotation(
        raw: str, message: str) -> None:
    with pytest.raises(AnnotationError) as caught:
        parse_dns_config(raw, level="pod")
    assert caught.value.problems == [DNS + message]


@pytest.mark.parametrize(("alias", "message"), [
    ({"ip": "1.2.3.4", "hostnames": ["registry_1.example"]},
     f'item 1: "hostnames" item 1: "registry_1.example" is not a DNS-1123 subdomain {RULE}'),
    ({"ip": "1.2.3.4", "hostnames": ["registry.example."]},
     f'item 1: "hostnames" item 1: "registry.example." is not a DNS-1123 subdomain {RULE}'),
    ({"ip": "::ffff:10.0.0.1", "hostnames": ["a.example"]},
     'item 1: "ip": "::ffff:10.0.0.1" is not an IPv4 or IPv6 address '
     "(no IPv4-mapped IPv6: write 10.0.0.1)"),
], ids=["hostname-underscore", "hostname-trailing-dot", "ip-ipv4-mapped-ipv6"])
def test_host_alias_the_api_server_refuses_is_refused_naming_the_annotation(
        alias: dict[str, object], message: str) -> None:
    with pytest.raises(AnnotationError) as caught:
        parse_host_aliases(orjson.dumps([alias]).decode(), level="pod")
    assert caught.value.problems == [f"{KCI_HOST_ALIASES} (pod): {message}"]


# --- accepted forms, folding and canonical values -----------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ('{"searches":["example.com."]}', DnsConfig(searches=("example.com.",))),
    ('{"nameservers":["1.1.1.1","2001:db8::1","1.1.1.1"],"searches":["a.io","b.io","a.io"]}',
     DnsConfig(nameservers=("1.1.1.1", "2001:db8::1"), searches=("a.io", "b.io"))),
    ('{"options":[{"name":"rotate"},{"name":"ndots","value":null}]}',
     DnsConfig(options=(DnsOption("rotate"), DnsOption("ndots")))),
    ('{"nameservers":null,"searches":null,"options":null}', DnsConfig()),
    ("{}", DnsConfig()),
], ids=["search-trailing-dot", "duplicates-fold", "option-without-value",
        "nulls-are-absent", "empty-object"])
def test_dns_config_accepts(raw: str, expected: DnsConfig) -> None:
    assert parse_dns_config(raw, level="pod") == expected


def test_a_hostname_repeated_at_its_address_folds() -> None:
    raw = ('[{"ip":"1.1.1.1","hostnames":["a.io","b.io","a.io"]},'
           '{"ip":"FD00:0::1","hostnames":["c.io"]},{"ip":"fd00::1","hostnames":["c.io"]},'
           '{"ip":"1.1.1.1","hostnames":["b.io"]}]')
    assert parse_host_aliases(raw, level="pod") == (
        HostAlias("1.1.1.1", ("a.io", "b.io")), HostAlias("fd00::1", ("c.io",)),
    )


def test_a_hostname_given_a_second_address_is_refused() -> None:
    raw = ('[{"ip":"1.1.1.1","hostnames":["a.io","b.io"]},'
           '{"ip":"2.2.2.2","hostnames":["c.io","b.io"]}]')
    with pytest.raises(AnnotationError) as caught:
        parse_host_aliases(raw, level="pod")
    assert caught.value.problems == [
        'k8s.ksyun.com/kci-host-aliases (pod): item 2: "hostnames" item 2: "b.io" is already '
        "mapped to 1.1.1.1 by item 1: one hostname, one address (remove one of the mappings)"]


@pytest.mark.parametrize(("raw", "expected"), [
    (" a.io , b.io:5000 ,a.io", ("a.io", "b.io:5000")),
    ("Harbor.Example.COM,harbor.example.com", ("harbor.example.com",)),
    ("[::1]:5000,[2001:DB8::1]", ("[::1]:5000", "[2001:db8::1]")),
    ("localhost:65535,registry:1", ("localhost:65535", "registry:1")),
    ("", ()),
    ("   ", ()),
], ids=["trim-and-fold", "uppercase-folds", "ipv6-bracketed", "port-range-ends", "empty",
        "blank"])
def test_registry_list_accepts(raw: str, expected: tuple[str, ...]) -> None:
    assert parse_registry_list(raw, key=KCI_INSECURE_REGISTRY, level="pod") == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("on", True), ("OFF", False), ("  On \n", True), (" off", False),
], ids=["on", "upper", "trimmed", "leading-space"])
def test_mirrors_switch(raw: str, expected: bool) -> None:
    assert parse_mirrors_switch(raw, level="pod") is expected


def test_name_list_folds_duplicates_in_order() -> None:
    assert parse_name_list("b, a ,b", key=IMAGE_PULL_SECRETS, level="pod") == ("b", "a")


@pytest.mark.parametrize(("text", "ok"), [
    ("1.2.3.4", True), ("::1", True), ("2001:db8::1", True), ("1.2.3", False),
    ("01.2.3.4", False), ("fe80::1%eth0", False), ("256.1.1.1", False), ("", False),
    ("١.٢.٣.٤", False), ("::ffff:1.2.3.4", False), ("::ffff:0:1.2.3.4", True),
], ids=["v4", "v6-loopback", "v6", "short", "leading-zero", "zone", "octet-range", "empty",
        "arabic-digits", "ipv4-mapped-v6", "ipv4-translated-v6-is-plain-v6"])
def test_is_ip(text: str, ok: bool) -> None:
    assert is_ip(text) is ok


@pytest.mark.parametrize(("text", "ok"), [
    ("a", True), ("a-b.c", True), ("a" * 63, True), ("a" * 64, False), (domain(253), True),
    (domain(254), False), ("-a", False), ("a-", False), ("A", False), ("a..b", False),
    ("a\n", False), ("", False),
], ids=["one-char", "dashes-dots", "label-63", "label-64", "total-253", "total-254",
        "leading-dash", "trailing-dash", "uppercase", "empty-label", "trailing-newline", "empty"])
def test_is_dns1123_subdomain(text: str, ok: bool) -> None:
    assert is_dns1123_subdomain(text) is ok


# --- rendering ----------------------------------------------------------------------------


def test_canonical_json() -> None:
    assert host_aliases_json(parse_host_aliases(DOC_HOST_ALIASES, level="pod")) == \
        DOC_HOST_ALIASES
    assert dns_config_json(parse_dns_config(DOC_DNS, level="pod")) == (
        '{"nameservers":["1.1.1.1"],"searches":["test1.com"],'
        '"options":[{"name":"ndots","value":"2"},{"name":"timeout","value":"3"}]}')
    assert dns_config_json(DnsConfig(options=(DnsOption("rotate"),))) == \
        '{"options":[{"name":"rotate"}]}'
    assert dns_config_json(DnsConfig()) == "{}"
    assert registry_list_text(("a.io", "b.io:5000")) == "a.io,b.io:5000"


def test_spec_forms() -> None:
    aliases = (HostAlias("1.2.3.4", ("a.io", "b.io")),)
    assert host_aliases_to_spec(aliases) == [{"ip": "1.2.3.4", "hostnames": ["a.io", "b.io"]}]
    dns = DnsConfig(("1.1.1.1",), ("a.io",), (DnsOption("ndots", "2"), DnsOption("rotate")))
    spec = dns_config_to_spec(dns)
    assert spec == {"nameservers": ["1.1.1.1"], "searches": ["a.io"],
                    "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}
    assert dns_config_from_spec(spec) == dns


@pytest.mark.parametrize(("data", "expected"), [
    (None, DnsConfig()),
    ("nameservers", DnsConfig()),
    ({"nameservers": ["1.1.1.1", 5], "searches": "a.io",
      "options": [{"name": "a", "value": 3}, {"value": "x"}, "ndots"]},
     DnsConfig(nameservers=("1.1.1.1",), options=(DnsOption("a"),))),
], ids=["none", "not-an-object", "wrong-types-skipped"])
def test_dns_config_from_spec_is_lenient(data: object, expected: DnsConfig) -> None:
    assert dns_config_from_spec(data) == expected


@pytest.mark.parametrize("raw", [DOC_DNS,
                                 '{"searches":["a."],"options":[{"name":"x","value":""}]}',
                                 "{}"], ids=["documented", "trailing-dot-and-empty-value", "empty"])
def test_dns_config_round_trips(raw: str) -> None:
    dns = parse_dns_config(raw, level="pod")
    assert parse_dns_config(dns_config_json(dns), level="pod") == dns
    assert dns_config_from_data(dns_config_to_spec(dns), level="config") == dns


@pytest.mark.parametrize("raw", [DOC_HOST_ALIASES, "[]"], ids=["documented", "empty"])
def test_host_aliases_round_trip(raw: str) -> None:
    aliases = parse_host_aliases(raw, level="pod")
    assert parse_host_aliases(host_aliases_json(aliases), level="pod") == aliases
    assert host_aliases_from_data(host_aliases_to_spec(aliases), level="config") == aliases


# --- hostile input ------------------------------------------------------------------------

JSON_PARSERS = {
    "host-aliases": lambda raw: parse_host_aliases(raw, level="pod"),
    "dns-config": lambda raw: parse_dns_config(raw, level="pod"),
}
ALL_PARSERS = {
    **JSON_PARSERS,
    "registry": lambda raw: parse_registry_list(raw, key=KCI_HTTP_REGISTRY, level="pod"),
    "names": lambda raw: parse_name_list(raw, key=IMAGE_PULL_SECRETS, level="pod"),
    "mirrors": lambda raw: parse_mirrors_switch(raw, level="pod"),
}

HOSTILE = [
    ("1-MiB", "a" * (1 << 20), "value too large: more than 262144 bytes"),
    ("1-MiB-multibyte", "é" * (MAX_VALUE_BYTES // 2 + 1), "value too large"),
    ("deep-nesting", "[" * 10_000, "invalid JSON: "),
    ("nul-byte", '[{"ip":"1.2.3.4\x00","hostnames":["a"]}]', "invalid JSON: contains a NUL byte"),
    ("escaped-lone-surrogate", '["\\ud800"]', "invalid JSON: "),
    ("raw-lone-surrogate", '["\udcff"]', "invalid JSON: not valid UTF-8"),
    ("numbers-for-strings", {"host-aliases": '[{"ip":1,"hostnames":[2]}]',
                             "dns-config": '{"nameservers":[1],"options":[{"name":2.5}]}'},
     "expected a string, got number"),
    ("huge-list", {"host-aliases": "[" + ",".join(["[]"] * 80_000) + "]",
                   "dns-config": '{"searches":[' + ",".join(['"A"'] * 50_000) + "]}"},
     "... and "),
    ("huge-number", "[" + "9" * 100_000 + "]", ""),
]


@pytest.mark.parametrize(("raw", "fragment"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("name", sorted(JSON_PARSERS))
def test_hostile_json_is_refused_with_a_bounded_report(name: str, raw: str | dict[str, str],
                                                       fragment: str) -> None:
    raw = raw[name] if isinstance(raw, dict) else raw
    problems = problems_of(lambda: JSON_PARSERS[name](raw))
    assert 1 <= len(problems) <= MAX_PROBLEMS + 1
    assert all(len(p) < 600 for p in problems)
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(("raw", "fragment"), [
    ("a" * (1 << 20), "value too large"),
    ("," * 200_000, "... and 199981 more"),
    ("\udcff.io", '"\\udcff.io"'),
    ("h.io:" + "9" * 10_000, '"h.io:9999'),
    ("a\x00b", '"a\\u0000b"'),
], ids=["1-MiB", "only-commas", "lone-surrogate", "10k-digit-port", "nul"])
@pytest.mark.parametrize("name", ["registry", "names", "mirrors"])
def test_hostile_text_is_refused_with_a_bounded_report(name: str, raw: str,
                                                       fragment: str) -> None:
    problems = problems_of(lambda: ALL_PARSERS[name](raw))
    assert problems and all(len(p) < 600 for p in problems)
    if name != "mirrors":  # the switch just says it wants "on" or "off"
        assert any(fragment in p for p in problems), problems
    for p in problems:
        p.encode("utf-8")  # messages are always encodable, even for a lone surrogate


# --- properties ---------------------------------------------------------------------------

LEVELS = st.sampled_from(["pod", "namespace team-a", "environment", "config"])
PREFIX = {
    "host-aliases": KCI_HOST_ALIASES, "dns-config": KCI_DNS_CONFIG, "registry": KCI_HTTP_REGISTRY,
    "names": IMAGE_PULL_SECRETS, "mirrors": MIRRORS_SWITCH,
}
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.sampled_from(["ip", "hostnames", "hostname", "nameservers", "searches",
                                       "options", "name", "value", "x"]) | st.text(max_size=5),
                      inner, max_size=4),
    max_leaves=30,
)


def call_with_level(name: str, raw: str, level: str) -> object:
    if name == "host-aliases":
        return parse_host_aliases(raw, level=level)
    if name == "dns-config":
        return parse_dns_config(raw, level=level)
    if name == "registry":
        return parse_registry_list(raw, key=KCI_HTTP_REGISTRY, level=level)
    if name == "names":
        return parse_name_list(raw, key=IMAGE_PULL_SECRETS, level=level)
    return parse_mirrors_switch(raw, level=level)


def assert_only_annotation_errors(call: Callable[[], object], key: str, level: str) -> None:
    try:
        call()
    except AnnotationError as exc:
        assert exc.problems
        for message in exc.problems:
            assert message.startswith(f"{key} ({level}): "), message
            message.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(PREFIX)), level=LEVELS,
       # Any code point, lone surrogates included (an env var with invalid UTF-8 has them).
       raw=st.text(st.characters(exclude_categories=[])) | JSONISH.map(json.dumps))
def test_any_text_returns_or_raises_annotation_error(name: str, raw: str, level: str) -> None:
    assert_only_annotation_errors(lambda: call_with_level(name, raw, level), PREFIX[name], level)


@settings(max_examples=300, deadline=None)
@given(data=JSONISH, level=LEVELS)
def test_any_data_returns_or_raises_annotation_error(data: object, level: str) -> None:
    assert_only_annotation_errors(lambda: host_aliases_from_data(data, level=level),
                                  KCI_HOST_ALIASES, level)
    assert_only_annotation_errors(lambda: dns_config_from_data(data, level=level),
                                  KCI_DNS_CONFIG, level)
    assert isinstance(dns_config_from_spec(data), DnsConfig)


LABEL = st.text("abcxyz0189-", min_size=1, max_size=12).map(lambda s: f"a{s}z")
SUBDOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
IPS = st.ip_addresses().filter(lambda ip: ip.version == 4 or not ip.ipv4_mapped).map(str)


@st.composite
def host_alias_values(draw: st.DrawFn) -> tuple[HostAlias, ...]:
    names = draw(st.lists(SUBDOMAIN, unique=True, max_size=12))
    cuts = sorted(draw(st.lists(st.integers(1, max(len(names) - 1, 1)), unique=True, max_size=3)))
    groups = [names[a:b] for a, b in zip([0, *cuts], [*cuts, len(names)], strict=True)]
    return tuple(HostAlias(draw(IPS), tuple(g)) for g in groups if g)


DNS_VALUES = st.builds(
    DnsConfig,
    nameservers=st.lists(IPS, unique=True, max_size=3).map(tuple),
    searches=st.lists(SUBDOMAIN | SUBDOMAIN.map(lambda s: s + "."), unique=True,
                      max_size=6).filter(lambda s: len(" ".join(s)) <= 256).map(tuple),
    options=st.lists(st.builds(DnsOption, st.text(min_size=1, max_size=10),
                               st.none() | st.text(max_size=10)), max_size=4).map(tuple),
)
REGISTRIES = st.lists(
    st.tuples(SUBDOMAIN, st.none() | st.integers(1, 65535)).map(
        lambda hp: hp[0] if hp[1] is None else f"{hp[0]}:{hp[1]}"),
    unique=True, max_size=5).map(tuple)


@settings(max_examples=200, deadline=None)
@given(aliases=host_alias_values(), dns=DNS_VALUES, registries=REGISTRIES,
       names=st.lists(SUBDOMAIN, unique=True, max_size=5).map(tuple))
def test_valid_values_round_trip(aliases: tuple[HostAlias, ...], dns: DnsConfig,
                                 registries: tuple[str, ...], names: tuple[str, ...]) -> None:
    assert parse_host_aliases(host_aliases_json(aliases), level="pod") == aliases
    assert parse_dns_config(dns_config_json(dns), level="pod") == dns
    assert parse_registry_list(registry_list_text(registries), key=KCI_HTTP_REGISTRY,
                               level="pod") == registries
    assert parse_name_list(",".join(names), key=IMAGE_PULL_SECRETS, level="pod") == names


@pytest.mark.parametrize(("a", "b", "same"), [
    ("fd00::1", "FD00:0:0::1", True), ("10.0.0.1", "10.0.0.1", True),
    ("10.0.0.1", "10.0.0.2", False), ("not-an-ip", "not-an-ip", True),
    ("x" * 100_000, "x" * 100_000, True),
], ids=["ipv6-two-ways", "same-v4", "other-v4", "garbage-stands-for-itself", "hostile-long"])
def test_ip_key_identifies_an_address_however_written(a: str, b: str, same: bool) -> None:
    assert (ip_key(a) == ip_key(b)) is same


def test_ip_key_remembers_no_text_too_long_to_be_an_address() -> None:
    from webhook.core.values.checks import _ip_key

    before = _ip_key.cache_info().currsize
    ip_key("1" * 10_000)
    assert _ip_key.cache_info().currsize == before
