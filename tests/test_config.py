"""The config file and the KCI_* environment: everything valid loads, everything else is named."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLES
from webhook.config import (
    Config,
    environment_defaults,
    load_config,
    registry_allowed,
)
from webhook.errors import ConfigError


def load(text: str) -> Config:
    return load_config(text, source="cfg.yaml")


def test_empty_file_gives_the_defaults() -> None:
    config = load("")
    assert config.on_invalid == "deny" and config.mirrors == ()
    assert config.exclude_namespaces == {"kube-system", "kube-public"}


def test_example_config_loads() -> None:
    config = load_config((EXAMPLES / "config.yaml").read_text(), source="examples/config.yaml")
    assert [m.host for m in config.mirrors] == ["172.18.0.20:5000",
                                                 "gcr-mirror.registry.internal:5443"]


ENDPOINTS = [
    # (endpoint, scheme, host, namespace)
    ("https://172.18.0.20:5000/v2/test-namespace", "https", "172.18.0.20:5000", "test-namespace"),
    ("https://172.18.0.20:5000", "https", "172.18.0.20:5000", ""),
    ("https://172.18.0.20:5000/v2/", "https", "172.18.0.20:5000", ""),
    ("172.18.0.20:5000/test-namespace", "https", "172.18.0.20:5000", "test-namespace"),
    ("http://Mirror.Example:80/v2/a/b", "http", "mirror.example:80", "a/b"),
    ("https://[fd00::1]:5000/v2/ns", "https", "[fd00::1]:5000", "ns"),
]


@pytest.mark.parametrize(("endpoint", "scheme", "host", "namespace"), ENDPOINTS)
def test_mirror_endpoint_forms(endpoint: str, scheme: str, host: str, namespace: str) -> None:
    mirror = load(f"mirrors:\n- endpoint: '{endpoint}'\n  hosts: [docker.io]\n").mirrors[0]
    assert (mirror.scheme, mirror.host, mirror.namespace) == (scheme, host, namespace)


def test_source_hosts_are_normalized() -> None:
    mirror = load("mirrors:\n- endpoint: m.example\n"
                  "  hosts: [index.docker.io, registry-1.docker.io, GCR.io]\n").mirrors[0]
    assert mirror.hosts == ("docker.io", "gcr.io")


INVALID = [
    # (id, config text, expected fragment of the message)
    ("not-yaml", "a: [", "not valid YAML"),
    ("top-list", "- a", "expected a mapping"),
    ("unknown-top", "onInvalidd: deny", "unknown key 'onInvalidd'"),
    ("bad-on-invalid", "onInvalid: maybe", "onInvalid: 'maybe' is not one of deny, warn"),
    ("bad-scope", "defaults: {scope: some}", "defaults.scope"),
    ("bad-default-alias", "defaults: {hostAliases: [{ip: 1.2.3, hostnames: [a]}]}",
     'defaults.hostAliases: k8s.ksyun.com/kci-host-aliases (config): item 1: "ip"'),
    ("bad-default-dns", "defaults: {dnsConfig: {nameserver: [1.1.1.1]}}",
     "defaults.dnsConfig: k8s.ksyun.com/kci-dns-config (config)"),
    ("mirror-unknown-key", "mirrors: [{endpoint: m.example, hosts: [a.io], pullsecret: x}]",
     "mirrors[0]: unknown key 'pullsecret'"),
    ("mirror-no-endpoint", "mirrors: [{hosts: [a.io]}]", 'mirrors[0]: "endpoint" is required'),
    ("mirror-bad-scheme", "mirrors: [{endpoint: 'ftp://m.example', hosts: [a.io]}]",
     "scheme 'ftp'"),
    ("mirror-bad-namespace", "mirrors: [{endpoint: 'm.example/v2/UPPER', hosts: [a.io]}]",
     "namespace 'UPPER'"),
    ("mirror-no-hosts", "mirrors: [{endpoint: m.example, hosts: []}]", "mirrors[0].hosts"),
    ("mirror-host-with-scheme", "mirrors: [{endpoint: m.example, hosts: ['https://a.io']}]",
     "mirrors[0].hosts[0]"),
    ("mirror-bad-policy", "mirrors: [{endpoint: m.example, hosts: [a.io], policy: never}]",
     "mirrors[0].policy"),
    ("mirror-bad-secret", "mirrors: [{endpoint: m.example, hosts: [a.io], pullSecret: A_B}]",
     "mirrors[0].pullSecret"),
    ("credentials-over-http",
     "mirrors: [{endpoint: 'http://m.example', hosts: [a.io], pullSecret: s}]",
     "would travel in clear"),
    ("self-cycle", "mirrors: [{endpoint: m.example, hosts: [a.io, m.example]}]", "cycle"),
    ("cross-cycle", "mirrors: [{endpoint: m.example, hosts: [a.io]},"
                    " {endpoint: n.example, hosts: [m.example]}]",
     "mirrors[0]: endpoint host 'm.example' is also a source in mirrors[1].hosts"),
    ("bad-pattern", "security: {allowedInsecureRegistries: ['http://x']}",
     "allowedInsecureRegistries[0]"),
    ("bad-excluded", "exclude: {namespaces: [Kube_System]}", "exclude.namespaces[0]"),
    ("oversized", "a" * (1024 * 1024 + 1), "larger than"),
]


@pytest.mark.parametrize(("text", "fragment"), [i[1:] for i in INVALID],
                         ids=[i[0] for i in INVALID])
def test_invalid_config_is_refused_with_a_message_naming_file_and_key(text: str,
                                                                      fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert str(caught.value).startswith("cfg.yaml: ")
    assert fragment in str(caught.value)


def test_credentials_over_http_allowed_when_asked() -> None:
    config = load("mirrors: [{endpoint: 'http://m.example', hosts: [a.io], pullSecret: s,"
                  " allowCredentialsOverHTTP: true}]")
    assert config.mirrors[0].scheme == "http"


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load("onInvalid: x\ndefaults: {scope: y}\n")
    assert len(str(caught.value).splitlines()) == 2


SEED_ENV = {
    "KCI_HOST_ALIASES": '[{"ip":"1.2.3.4","hostnames":["www.privaterepo1.com"]},'
                        '{"ip":"2.3.4.5","hostnames":["www.privaterepo2.com"]}]',
    "KCI_DNS_CONFIG": '{"nameservers":["1.1.1.1"],"options":[{"name":"ndots","value":"2"},'
                      '{"name":"timeout","value":"3"}],"searches":["test1.com"]}',
}


def test_seed_environment_values_load() -> None:
    env = environment_defaults(SEED_ENV)
    assert [a.ip for a in env.host_aliases] == ["1.2.3.4", "2.3.4.5"]
    assert env.dns_config is not None and env.dns_config.nameservers == ("1.1.1.1",)


@pytest.mark.parametrize(("name", "value"), [
    ("KCI_HOST_ALIASES", '{"ip":"1.2.3.4"}'),
    ("KCI_HOST_ALIASES", '[{"ip":"1.2.3.4","hostnames":["UPPER_case"]}]'),
    ("KCI_DNS_CONFIG", '{"nameservers":"1.1.1.1"}'),
    ("KCI_DNS_CONFIG", "not json"),
])
def test_invalid_environment_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        environment_defaults({name: value})
    assert str(caught.value).startswith(f"{name}: k8s.ksyun.com/")
    assert "(environment)" in str(caught.value)


@pytest.mark.parametrize(("registry", "patterns", "allowed"), [
    ("anything.example", (), True),
    ("harbor.corp.example", ("*.corp.example",), True),
    ("corp.example", ("*.corp.example",), False),
    ("evilcorp.example", ("*.corp.example",), False),
    ("10.0.0.1:5000", ("10.0.0.1",), True),
    ("10.0.0.1:5000", ("10.0.0.1:5000",), True),
    ("10.0.0.1:5001", ("10.0.0.1:5000",), False),
    ("10.0.0.1", ("10.0.0.1:5000",), False),
    ("[fd00::1]:5000", ("[fd00::1]",), True),
])
def test_registry_allowed_patterns(registry: str, patterns: tuple[str, ...],
                                   allowed: bool) -> None:
    assert registry_allowed(registry, patterns) is allowed
