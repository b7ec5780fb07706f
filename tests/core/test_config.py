"""The config file and the KCI_* environment: everything valid loads, everything else is named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLES, ROOT
from webhook.adapters.registry.files import check_config_files, config_files
from webhook.adapters.tls.issue import ensure_dev_certificates
from webhook.core.config import (
    DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
    Config,
    budget_limit,
    environment_defaults,
    load_config,
    parse_webhook_timeout,
    registry_allowed,
)
from webhook.core.errors import ConfigError


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
    ("not-yaml", "a: [", "cfg.yaml:2:1: did not find expected node content"),
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
    # an invalid mirror before it is left out, and the cycle still names its own position
    ("cycle-after-an-invalid-mirror", "mirrors: [{endpoint: 'ftp://x.example', hosts: [b.io]},"
                                      " {endpoint: m.example, hosts: [a.io, m.example]}]",
     "mirrors[1]: endpoint host 'm.example' is also a source in mirrors[1].hosts"),
    ("bad-pattern", "security: {allowedInsecureRegistries: ['http://x']}",
     "allowedInsecureRegistries[0]"),
    ("bad-excluded", "exclude: {namespaces: [Kube_System]}", "exclude.namespaces[0]"),
    ("excluded-trailing-newline", 'exclude: {namespaces: ["kube-system\\n"]}',
     "exclude.namespaces[0]"),
    ("oversized", "a" * (1024 * 1024 + 1), "larger than"),
]


@pytest.mark.parametrize(("text", "fragment"), [i[1:] for i in INVALID],
                         ids=[i[0] for i in INVALID])
def test_invalid_config_is_refused_with_a_message_naming_file_and_key(text: str,
                                                                      fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert str(caught.value).startswith("cfg.yaml:")
    assert fragment in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("onInvalid: deny\nmirrors: [\n", "cfg.yaml:3:1: did not find expected node "
                 "content (while parsing a flow node)", id="unclosed-flow"),
    pytest.param("defaults:\n\tscope: all\n", "cfg.yaml:2:1: found character that cannot "
                 "start any token (while scanning for the next token); a tab: YAML indents "
                 "with spaces only", id="tab"),
    pytest.param("onInvalid: deny\nonInvalid: warn\n", "cfg.yaml:2:1: duplicate key "
                 "'onInvalid' (first at line 1)", id="duplicate-key"),
])
def test_yaml_errors_name_file_line_and_column(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert str(caught.value).startswith(message), caught.value
    assert "^" not in str(caught.value) and "<byte string>" not in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("onInvalid: True", "onInvalid: true is not one of deny, warn", id="bool"),
    pytest.param("onInvalid: ~", "onInvalid: null is not one of deny, warn", id="null"),
    pytest.param("mirrors: [{endpoint: m.example, hosts: [a.io], insecureSkipVerify: 'yes'}]",
                 "mirrors[0].insecureSkipVerify: expected true or false, got 'yes'", id="string"),
    pytest.param("mirrorChecks: {budgetSeconds: [1, 2]}", "mirrorChecks.budgetSeconds: "
                 "expected a number of seconds from 0.05 to 10, got [1, 2]", id="list"),
])
def test_values_are_shown_as_yaml_spells_them(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text)
    assert str(caught.value) == f"cfg.yaml: {message}"


def test_a_mirror_that_is_not_a_mapping_is_one_problem_not_two() -> None:
    with pytest.raises(ConfigError) as caught:
        load("mirrors: [foo]")
    lines = str(caught.value).splitlines()
    assert len(lines) == 1, lines


def test_a_host_two_mirrors_serve_is_a_warning_at_load() -> None:
    config = load("mirrors:\n- {endpoint: m.example, hosts: [docker.io, gcr.io]}\n"
                  "- {endpoint: n.example, hosts: [quay.io, index.docker.io]}\n")
    assert config.warnings == (
        "mirrors[1].hosts: docker.io is also listed by mirrors[0], which serves it (the first "
        "mirror that lists a host does); mirrors[1] is never used for docker.io",)
    assert load("mirrors: [{endpoint: m.example, hosts: [docker.io]}]").warnings == ()


def test_credentials_over_http_allowed_when_asked() -> None:
    config = load("mirrors: [{endpoint: 'http://m.example', hosts: [a.io], pullSecret: s,"
                  " allowCredentialsOverHTTP: true}]")
    assert config.mirrors[0].scheme == "http"


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load("onInvalid: x\ndefaults: {scope: y}\n")
    assert len(str(caught.value).splitlines()) == 2


DOC_ENV = {
    "KCI_HOST_ALIASES": '[{"ip":"1.2.3.4","hostnames":["www.privaterepo1.com"]},'
                        '{"ip":"2.3.4.5","hostnames":["www.privaterepo2.com"]}]',
    "KCI_DNS_CONFIG": '{"nameservers":["1.1.1.1"],"options":[{"name":"ndots","value":"2"},'
                      '{"name":"timeout","value":"3"}],"searches":["test1.com"]}',
}


def test_documented_environment_values_load() -> None:
    env = environment_defaults(DOC_ENV)
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


# --- the mirror checks' budget fits in the webhook's timeout --------------------------------

BUDGETS = [
    # (id, webhook timeout, budgetSeconds (None: unset), effective budget (None: refused))
    ("default-timeout-default-budget", 5, None, 1.0),
    ("default-timeout-largest-budget", 5, 4, 4.0),
    ("default-timeout-budget-too-close", 5, 4.5, None),
    ("default-timeout-former-maximum-refused", 5, 10, None),
    ("two-seconds-keeps-one", 2, 1.5, None),
    ("one-second-halves", 1, 0.5, 0.5),
    ("one-second-default-budget-follows", 1, None, 0.5),
    ("one-second-budget-over-half-refused", 1, 0.6, None),
    ("thirty-seconds-allows-ten", 30, 10, 10.0),
]


@pytest.mark.parametrize(("timeout", "budget", "effective"), [b[1:] for b in BUDGETS],
                         ids=[b[0] for b in BUDGETS])
def test_mirror_check_budget_leaves_room_in_the_webhook_timeout(
        timeout: int, budget: float | None, effective: float | None) -> None:
    text = f"mirrorChecks: {{budgetSeconds: {budget}}}\n" if budget is not None else ""
    if effective is not None:
        config = load_config(text, source="cfg.yaml", webhook_timeout=timeout)
        assert config.mirror_checks.budget_seconds == effective
        assert effective <= budget_limit(timeout) < timeout
        return
    with pytest.raises(ConfigError) as caught:
        load_config(text, source="cfg.yaml", webhook_timeout=timeout)
    message = str(caught.value)
    assert message.startswith(f"cfg.yaml: mirrorChecks.budgetSeconds: {budget:g} s ")
    assert f"webhook's {timeout} s timeout" in message and "--webhook-timeout" in message
    assert f"at most {budget_limit(timeout):g} s" in message


@pytest.mark.parametrize(("text", "value"), [
    ("5", 5), (" 30 ", 30), ("1", 1), ("0", None), ("31", None), ("5.5", None),
    ("five", None), ("", None),
], ids=["default", "largest-spaced", "smallest", "zero", "over-thirty", "fraction", "word",
        "empty"])
def test_webhook_timeout_is_whole_seconds_the_api_accepts(text: str, value: int | None) -> None:
    if value is not None:
        assert parse_webhook_timeout(text, where="KCI_WEBHOOK_TIMEOUT_SECONDS") == value
        return
    with pytest.raises(ConfigError, match=r"^KCI_WEBHOOK_TIMEOUT_SECONDS: expected whole "
                                          r"seconds from 1 to 30"):
        parse_webhook_timeout(text, where="KCI_WEBHOOK_TIMEOUT_SECONDS")


def test_default_webhook_timeout_is_the_one_the_manifests_declare() -> None:
    """One value for both: the webhooks' timeoutSeconds and the server's default."""
    declared = []
    for name in ("mutatingwebhookconfiguration.yaml", "validatingwebhookconfiguration.yaml"):
        document = yaml.safe_load((ROOT / "manifests" / "base" / name).read_text())
        declared += [hook["timeoutSeconds"] for hook in document["webhooks"]]
    assert declared and set(declared) == {DEFAULT_WEBHOOK_TIMEOUT_SECONDS}
    deployment = yaml.safe_load((ROOT / "manifests" / "base" / "deployment.yaml").read_text())
    given = []
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        args = container.get("args") or []
        given += [arg.partition("=")[2] for arg in args if arg.startswith("--webhook-timeout=")]
        given += [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--webhook-timeout"]
        given += [e["value"] for e in container.get("env") or ()
                  if e["name"] == "KCI_WEBHOOK_TIMEOUT_SECONDS"]
    assert [int(value) for value in given] == [DEFAULT_WEBHOOK_TIMEOUT_SECONDS]


# --- the files a config names ---------------------------------------------------------------

DIRECTORY = object()   # the named path is a directory
FILES = [
    # (id, key, content (None: missing, DIRECTORY), fragment of the message after the path)
    ("ca-file-missing", "caFile", None, "not found on this machine"),
    ("ca-file-is-a-directory", "caFile", DIRECTORY, "cannot load a PEM certificate: Is a "
                                                    "directory"),
    ("ca-file-not-pem", "caFile", "not a certificate\n", "no certificate in it"),
    ("ca-file-empty", "caFile", "", "no certificate in it"),
    ("credentials-missing", "pullCredentialConfigPath", None, "not found on this machine"),
    ("credentials-not-json", "pullCredentialConfigPath", "{", "not valid JSON"),
    ("credentials-auths-not-an-object", "pullCredentialConfigPath", '{"auths": []}',
     '"auths" must be an object'),
    ("credentials-auth-not-base64", "pullCredentialConfigPath",
     '{"auths": {"m.example:5000": {"auth": "%%%"}}}', "is not base64"),
]


def _named_file(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "named-file"
    if content is DIRECTORY:
        path.mkdir()
    elif isinstance(content, str):
        path.write_text(content)
    return path


@pytest.mark.parametrize(("key", "content", "fragment"), [f[1:] for f in FILES],
                         ids=[f[0] for f in FILES])
def test_unusable_file_named_by_the_config_is_refused_naming_key_and_file(
        tmp_path: Path, key: str, content: object, fragment: str) -> None:
    path = _named_file(tmp_path, content)
    config = load(f"mirrors: [{{endpoint: 'https://m.example:5000', hosts: [a.io], "
                  f"{key}: '{path}'}}]")
    with pytest.raises(ConfigError) as caught:
        check_config_files(config)
    assert str(caught.value).startswith(f"cfg.yaml: mirrors[0].{key} ({path}): ")
    assert fragment in str(caught.value)


def test_relative_file_is_named_with_where_it_led(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load("mirrors: [{endpoint: 'https://m.example', hosts: [a.io], "
                  "caFile: certs/mirror-ca.crt}]")
    with pytest.raises(ConfigError) as caught:
        check_config_files(config)
    assert (f"mirrors[0].caFile (certs/mirror-ca.crt = {tmp_path}/certs/mirror-ca.crt)"
            in str(caught.value))


def test_usable_files_pass_and_are_listed(tmp_path: Path) -> None:
    _cert, _key, ca = ensure_dev_certificates(tmp_path / "certs")
    creds = tmp_path / "config.json"
    creds.write_text('{"auths": {"m.example:5000": {"username": "u", "password": "p"}}}')
    config = load(f"mirrors: [{{endpoint: 'https://m.example:5000', hosts: [a.io], "
                  f"caFile: '{ca}', pullCredentialConfigPath: '{creds}'}},"
                  f" {{endpoint: 'https://n.example', hosts: [b.io], caFile: '{ca}'}}]")
    check_config_files(config)
    assert config_files(config) == (str(ca), str(creds))
