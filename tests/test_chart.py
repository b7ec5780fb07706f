"""The Helm chart, with Helm's own engine (helm-python-sdk binds Helm v4's Go SDK).

What tests/test_manifests.py checks on every render (schemas, hardening, 1.24) is not
repeated here. This file pins down what is the chart's own: strict lint for each values
file, the schema refusing typos and wrong types, the manifests and docs being renders of
the chart, the config values passing the server's own loader, the certificate modes, and
certificates that `helm upgrade` keeps, rendered against an HTTP stand-in of the API
server so that Helm's `lookup` finds the Secret the install made.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from hack import chart_render as chart
from tests.conftest import ROOT
from tests.test_manifests import CHART_MATRIX, chart_values, handshake, one, render
from webhook.adapters.tls.issue import service_dns_names
from webhook.adapters.tls.reload import ReloadingContext
from webhook.core import config

Objects = list[dict[str, Any]]
SERVICE_NAMES = service_dns_names("kci-webhook", "kci-webhook")


def lint_findings(values: dict[str, Any], **options: Any) -> list[str]:
    """Warnings and errors of `helm lint --strict` (info, e.g. "icon is recommended",
    is advice, not a finding)."""
    report = helm.lint(chart.CHART, values, strict=True, **options)
    return [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2] + [
        str(e) for e in report["errors"]]


# --- lint, metadata, schema -------------------------------------------------------------------

@pytest.mark.parametrize("path", CHART_MATRIX, ids=lambda p: p.name)
@pytest.mark.parametrize("kube_version", [None, "v1.24.0", "v1.37.0"],
                         ids=["default", "k8s-1.24", "k8s-1.37"])
def test_strict_lint_is_clean(path: Path, kube_version: str | None) -> None:
    assert lint_findings(chart_values(path), kube_version=kube_version) == []


def test_strict_lint_reports_values_the_schema_refuses() -> None:
    """The lint check must be able to fail. (Helm's lint mode turns a template's `fail`
    into an info line, so refusals made by templates are tested on the render below.)"""
    findings = lint_findings({"replica": 3})
    assert any("'replica' not allowed" in f for f in findings), findings


def test_chart_version_and_app_version_are_the_package_version() -> None:
    package = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    metadata = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())
    assert metadata["apiVersion"] == "v2" and metadata["kubeVersion"] == ">=1.24.0-0"
    assert metadata["version"] == metadata["appVersion"] == package


@pytest.mark.parametrize(("values", "message"), [
    ({"replica": 3}, "'replica' not allowed"),
    ({"image": {"tags": "v1"}}, "'tags' not allowed"),
    ({"certificates": {"mode": "generate", "generate": {"caDay": 10}}}, "'caDay' not allowed"),
    ({"config": {"mirrors": [{"endpoint": "mirror:5000", "host": ["docker.io"]}]}},
     "'host' not allowed"),
    ({"config": {"exclude": {"namespace": ["a"]}}}, "'namespace' not allowed"),
    ({"webhook": {"namespaceSelector": {"matchExpression": []}}}, "'matchExpression' not allowed"),
    ({"replicas": "3"}, "/replicas"),
    ({"webhook": {"timeoutSeconds": "5"}}, "/webhook/timeoutSeconds"),
    ({"webhook": {"timeoutSeconds": 31}}, "/webhook/timeoutSeconds"),
    ({"webhook": {"failurePolicy": "fail"}}, "/webhook/failurePolicy"),
    ({"certificates": {"mode": "selfSigned"}}, "/certificates/mode"),
    ({"image": {"digest": "sha256:abc"}}, "/image/digest"),
    ({"config": {"onInvalid": "allow"}}, "/config/onInvalid"),
    ({"podDisruptionBudget": {"enabled": "yes"}}, "/podDisruptionBudget/enabled"),
    ({"certificates": {"mode": "certManager", "certManager": {"issuerRef": {"name": "x"}}}},
     "/certificates/certManager/issuerRef"),
    ({"podLabels": {"app.kubernetes.io/name": "other"}}, "propertyName .app.kubernetes.io.name"),
    ({"events": {"queueSize": 0}}, "/events/queueSize"),
    ({"events": {"enable": True}}, "/events"),
    ({"logChanges": {"level": "warning"}}, "/logChanges/level"),
    ({"logChanges": {"sampleRate": 2}}, "/logChanges/sampleRate"),
], ids=["top-level-typo", "image-typo", "nested-typo", "mirror-typo", "exclude-typo",
        "selector-typo", "replicas-string", "timeout-string", "timeout-too-long",
        "policy-case", "unknown-mode", "short-digest", "on-invalid", "bool-string",
        "issuer-without-kind", "pod-label-that-selects", "events-queue-zero", "events-typo",
        "log-changes-level", "log-changes-rate"])
def test_schema_refuses_a_misspelt_key_or_a_wrong_type_at_install(
    values: dict[str, Any], message: str,
) -> None:
    with helm.Chart.load(chart.CHART) as loaded:
        with pytest.raises(helm.HelmValuesError, match=message.replace("/", ".")):
            loaded.validate_schema(values)
        # What `helm install` does: the render refuses before any object exists.
        with pytest.raises(helm.HelmValuesError, match="schema"):
            loaded.render(values, name="kci-webhook", namespace="kci-webhook")


def _schema_paths(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted key paths the schema names; a list's items share the list's path."""
    for key, child in node.get("properties", {}).items():
        yield f"{prefix}{key}"
        yield from _schema_paths(child, f"{prefix}{key}.")
    if isinstance(node.get("items"), dict):
        yield from _schema_paths(node["items"], prefix)


def _value_paths(values: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(values, dict):
        for key, child in values.items():
            yield f"{prefix}{key}"
            yield from _value_paths(child, f"{prefix}{key}.")
    elif isinstance(values, list):
        for child in values:
            yield from _value_paths(child, prefix)


def test_schema_is_closed_at_every_level() -> None:
    def closed(node: dict[str, Any], where: str) -> Iterator[str]:
        if "properties" in node and node.get("additionalProperties") is not False:
            yield where
        for key, child in node.get("properties", {}).items():
            yield from closed(child, f"{where}.{key}")
        if isinstance(node.get("items"), dict):
            yield from closed(node["items"], f"{where}[]")
    assert list(closed(chart.schema(), "values")) == []


def test_every_default_value_has_its_place_in_the_schema() -> None:
    assert set(_value_paths(chart.chart_defaults())) <= set(_schema_paths(chart.schema()))


def test_schema_config_keys_are_the_loaders_keys() -> None:
    """Every key the schema allows under `config` is one the server's loader accepts: a
    config with all of them set loads."""
    everything = {
        "onInvalid": "warn",
        "defaults": {"scope": "all", "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a.b"]}],
                     "dnsConfig": {"nameservers": ["10.0.0.2"], "searches": ["b.c"],
                                   "options": [{"name": "ndots", "value": "2"}]}},
        "mirrors": [{"endpoint": "https://mirror.example:5000/v2/hub", "hosts": ["docker.io"],
                     "pullSecret": "pull", "caFile": "/ca.crt", "insecureSkipVerify": False,
                     "policy": "if-present", "allowCredentialsOverHTTP": False,
                     "pullCredentialConfigPath": "/creds/config.json"}],
        "mirrorChecks": {"budgetSeconds": 1, "positiveTTLSeconds": 60,
                         "negativeTTLSeconds": 10, "cooldownSeconds": 5,
                         "maxLookupsPerAdmission": 8, "maxInFlightPerMirror": 4},
        "security": {"allowedInsecureRegistries": ["*.example:5443"]},
        "exclude": {"namespaces": ["kube-system"]},
    }
    assert set(_value_paths(everything)) == set(
        _schema_paths(chart.schema()["properties"]["config"]))
    with helm.Chart.load(chart.CHART) as loaded:
        loaded.validate_schema({"config": everything})
    config.config_from_data(everything, source="values")


# --- one source: manifests/ and the docs table are renders of the chart -------------------

def test_committed_manifests_are_the_charts_render() -> None:
    assert chart.stale_manifests() == [], "run `make manifests`"


def _without_helm_labels(objects: Objects) -> Objects:
    for obj in objects:
        for labels in (obj["metadata"].get("labels", {}),
                       obj.get("spec", {}).get("template", {}).get("metadata", {}).get(
                           "labels", {})):
            labels.pop("helm.sh/chart", None)
            labels.pop("app.kubernetes.io/managed-by", None)
    return objects


def _by_identity(objects: Objects) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize(("overlay", "values"), [
    ("", chart.base_values), ("overlays/cert-manager", chart.cert_manager_values),
    ("overlays/node-config", chart.node_config_values),
], ids=["base", "cert-manager-overlay", "node-config-overlay"])
def test_kustomize_renders_exactly_the_charts_objects(overlay: str, values: Any) -> None:
    """Whatever the files say, what `kubectl apply -k` would send is what the chart makes
    (less the labels that say Helm manages it, and the Helm hooks: kustomize has none)."""
    kustomized = render(chart.MANIFESTS / overlay)
    released = [o for o in chart.render(values()) if not _is_hook(o)]
    assert _by_identity(kustomized) == _by_identity(_without_helm_labels(released))
    assert not [o for o in kustomized if _is_hook(o)]


def _is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def test_docs_values_table_is_generated_from_the_schema() -> None:
    text = chart.DOCS.read_text()
    assert text == chart.docs_with_table(text), "run `make chart-docs`"

    def described(node: dict[str, Any], prefix: str) -> Iterator[str]:
        for key, child in node.get("properties", {}).items():
            if "description" in child:
                yield f"{prefix}{key}"
            yield from described(child, f"{prefix}{key}.")
    documented = list(described(chart.schema(), ""))
    assert len(documented) > 50
    for path in documented:
        assert f"| `{path}` |" in text, path


# --- config and environment as values ------------------------------------------------------

def _configmap_text(objects: Objects) -> str:
    text: str = one(objects, "ConfigMap", "kci-webhook-config")["data"]["config.yaml"]
    return text


def test_config_values_load_with_the_servers_loader() -> None:
    values = chart_values(chart.CHART / "ci" / "platform-values.yaml")
    loaded = config.load_config(_configmap_text(chart.render(values)), source="ConfigMap")
    (mirror,) = loaded.mirrors
    assert loaded.on_invalid == "warn" and loaded.defaults.scope == "virtual-kubelet"
    assert mirror.pull_secret == "mirror-pull" and mirror.policy == "if-present"
    assert loaded.mirror_checks.budget_seconds == 2.0


def test_a_config_the_loader_refuses_renders_but_is_refused_at_start() -> None:
    """The schema checks shape; the loader checks meaning (here: a mirror that serves
    itself). The rendered file carries the value as given, and the same loader that
    runs at start refuses it with the key's name."""
    cycle = {"config": {"mirrors": [{"endpoint": "mirror.example:5000/hub",
                                     "hosts": ["mirror.example:5000"]}]}}
    text = _configmap_text(chart.render(cycle))
    with pytest.raises(config.ConfigError, match="mirrors"):
        config.load_config(text, source="ConfigMap")


def test_environment_defaults_reach_the_server_as_the_loader_reads_them() -> None:
    values = chart_values(chart.CHART / "ci" / "platform-values.yaml")
    container = one(chart.render(values), "Deployment")["spec"]["template"]["spec"][
        "containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    defaults = config.environment_defaults(env)
    assert [(a.ip, list(a.hostnames)) for a in defaults.host_aliases] == [
        ("172.18.0.20", ["mirror.registry.internal"])]
    assert defaults.dns_config is not None
    assert json.loads(env["KCI_DNS_CONFIG"]) == values["environment"]["dnsConfig"]


def test_unset_environment_defaults_are_not_rendered() -> None:
    container = one(chart.render({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in container["env"]}
    assert names == {"KCI_WEBHOOK_CONFIG", "POD_NAMESPACE", "POD_NAME", *REGISTRATION_ENV}


# What the server needs to activate its own webhook configurations (always rendered).
REGISTRATION_ENV = {"KCI_WEBHOOK_REGISTER_MUTATING", "KCI_WEBHOOK_CREATE_FAILURE_POLICY",
                    "KCI_WEBHOOK_UPDATE_FAILURE_POLICY", "KCI_WEBHOOK_REGISTER_VALIDATING",
                    "KCI_WEBHOOK_VALIDATING_FAILURE_POLICY"}


# --- values a platform team sets ------------------------------------------------------------

def _container(objects: Objects) -> dict[str, Any]:
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    container: dict[str, Any] = spec["containers"][0]
    return container


@pytest.mark.parametrize(("image", "expected"), [
    ({}, "kci-webhook:0.1.0"),
    ({"repository": "registry.example/kci-webhook", "tag": "1.2.3"},
     "registry.example/kci-webhook:1.2.3"),
    ({"tag": "1.2.3", "digest": "sha256:" + "ab" * 32}, "kci-webhook@sha256:" + "ab" * 32),
], ids=["app-version", "tag", "digest-wins"])
def test_image_reference(image: dict[str, Any], expected: str) -> None:
    assert _container(chart.render({"image": image}))["image"] == expected


def test_timeout_and_drain_flags_follow_their_values() -> None:
    objects = chart.render({"webhook": {"timeoutSeconds": 9}, "shutdownDelaySeconds": 7,
                            "terminationGracePeriodSeconds": 40})
    args = _container(objects)["args"]
    assert "--webhook-timeout=9" in args and "--shutdown-delay=7" in args
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        assert {h["timeoutSeconds"] for h in one(objects, kind)["webhooks"]} == {9}


@pytest.mark.parametrize("values", [
    {"terminationGracePeriodSeconds": 10},  # 5 + 5
    {"shutdownDelaySeconds": 20, "terminationGracePeriodSeconds": 25},
    {"webhook": {"timeoutSeconds": 30}, "shutdownDelaySeconds": 10},
], ids=["grace-equals-delay-plus-timeout", "long-delay", "long-timeout"])
def test_a_grace_period_that_leaves_no_room_to_drain_is_refused(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmRenderError, match="terminationGracePeriodSeconds"):
        chart.render(values)


@pytest.mark.parametrize("values", [
    {"replicas": 1}, {"replicas": 2, "podDisruptionBudget": {"minAvailable": 2}},
], ids=["one-replica", "min-available-equals-replicas"])
def test_a_budget_that_blocks_every_drain_is_refused(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmRenderError, match="blocks every node drain"):
        chart.render(values)


def test_one_replica_renders_without_a_budget() -> None:
    objects = chart.render({"replicas": 1, "podDisruptionBudget": {"enabled": False}})
    assert one(objects, "Deployment")["spec"]["replicas"] == 1
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]


def test_packaged_chart_renders_as_the_directory(tmp_path: Path) -> None:
    """What `helm package` ships (after .helmignore) is the whole chart."""
    archive = helm.package(chart.CHART, destination=tmp_path)
    values = chart_values(chart.CHART / "ci" / "existing-secret-values.yaml")
    with helm.Chart.load(archive) as packaged, helm.Chart.load(chart.CHART) as directory:
        assert packaged.render(values, name="kci-webhook", namespace="kci-webhook") == (
            directory.render(values, name="kci-webhook", namespace="kci-webhook"))
        assert packaged.schema == directory.schema


def test_release_name_and_namespace_name_everything() -> None:
    objects = chart.render({}, name="platform", namespace="infra")
    names = {o["metadata"]["name"] for o in objects}
    assert names == {"platform-kci-webhook", "platform-kci-webhook-config",
                     "platform-kci-webhook-config-check", "platform-kci-webhook-tls"}
    for obj in objects:
        assert obj["metadata"].get("namespace") in {None, "infra"}
    hook = one(objects, "MutatingWebhookConfiguration")["webhooks"][0]
    assert hook["clientConfig"]["service"]["namespace"] == "infra"
    env = {e["name"]: e.get("value") for e in _container(objects)["env"]}
    assert env["KCI_WEBHOOK_REGISTER_MUTATING"] == env["KCI_WEBHOOK_REGISTER_VALIDATING"] == (
        "platform-kci-webhook")
    role = one(objects, "ClusterRole")
    assert [r.get("resourceNames") for r in role["rules"]] == [
        None, None, ["platform-kci-webhook"], ["platform-kci-webhook"]]


def test_pod_disruption_budget_eviction_policy_only_when_asked() -> None:
    pdb = one(chart.render({"podDisruptionBudget": {
        "unhealthyPodEvictionPolicy": "AlwaysAllow"}}), "PodDisruptionBudget")
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert "unhealthyPodEvictionPolicy" not in one(chart.render({}), "PodDisruptionBudget")["spec"]


def test_service_monitor_scrapes_metrics_over_tls_with_the_webhooks_ca() -> None:
    objects = chart.render(chart_values(chart.CHART / "ci" / "monitoring-values.yaml"))
    monitor = one(objects, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["scheme"]) == ("https", "/metrics",
                                                                        "https")
    assert endpoint["tlsConfig"]["serverName"] == "kci-webhook.kci-webhook.svc"
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": "kci-webhook-tls", "key": "ca.crt"}
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = one(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    policy = one(objects, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 8443, "protocol": "TCP"}]


def _api_server_reaches_the_port(policy: dict[str, Any]) -> bool:
    """Whether a source that is not a pod (the API server, on most CNIs) may reach 8443:
    a rule for the port with no `from` (every source) or with an ipBlock peer."""
    for rule in policy["spec"].get("ingress") or ():
        ports = {p.get("port") for p in rule.get("ports") or ()}
        if rule.get("ports") and 8443 not in ports:
            continue
        peers = rule.get("from")
        if not peers or any("ipBlock" in peer for peer in peers):
            return True
    return False


@pytest.mark.parametrize("path", CHART_MATRIX, ids=lambda p: p.name)
def test_no_example_network_policy_blocks_the_api_servers_calls(path: Path) -> None:
    """Every example values file, with the policy switched on: the webhook port stays
    reachable by a source that no pod or namespace selector matches."""
    values = chart_values(path)
    values.setdefault("networkPolicy", {})["enabled"] = True
    policy = one(chart.render(values), "NetworkPolicy")
    assert _api_server_reaches_the_port(policy)


def test_the_default_network_policy_leaves_the_webhook_port_open() -> None:
    policy = one(chart.render({"networkPolicy": {"enabled": True}}), "NetworkPolicy")
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 8443, "protocol": "TCP"}]}]


def test_a_selector_only_network_policy_is_refused() -> None:
    """`from: namespaceSelector: monitoring` alone would drop the API server's calls on
    most clusters (and with them every pod creation): the chart says so instead."""
    monitoring = [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}]
    with pytest.raises(helm.HelmRenderError, match="apiServerCIDRs"):
        chart.render({"networkPolicy": {"enabled": True, "from": monitoring}})


def test_api_server_addresses_narrow_the_port_with_the_other_peers() -> None:
    monitoring = {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}
    policy = one(chart.render({"networkPolicy": {
        "enabled": True, "apiServerCIDRs": ["10.0.0.10/32", "fd00::10/128"],
        "from": [monitoring]}}), "NetworkPolicy")
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"ipBlock": {"cidr": "10.0.0.10/32"}},
                            {"ipBlock": {"cidr": "fd00::10/128"}}, monitoring]
    assert _api_server_reaches_the_port(policy)


def test_serving_limits_reach_the_servers_args() -> None:
    deployment = one(chart.render({"limits": {
        "maxConnections": 64, "headerTimeoutSeconds": 3, "bodyTimeoutSeconds": 4,
        "maxBodyBytes": 50_000_000, "bodyMemoryBytes": 60_000_000}}), "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--max-connections=64", "--header-timeout=3", "--body-timeout=4",
            "--max-body-bytes=50000000", "--body-memory-bytes=60000000"} <= set(args)


def test_a_body_memory_budget_below_the_body_cap_is_refused() -> None:
    with pytest.raises(helm.HelmRenderError, match="bodyMemoryBytes"):
        chart.render({"limits": {"maxBodyBytes": 50_000_000, "bodyMemoryBytes": 1_000_000}})


# --- certificates -----------------------------------------------------------------------------

def _hooks(objects: Objects) -> list[dict[str, Any]]:
    return [hook for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
            for hook in one(objects, kind)["webhooks"]]


def test_existing_secret_mode_uses_the_secret_and_its_ca() -> None:
    values = chart_values(chart.CHART / "ci" / "existing-secret-values.yaml")
    objects = chart.render(values)
    assert not [o for o in objects if o["kind"] == "Secret"]
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"secretName": "webhook-serving", "defaultMode": 0o440} in [
        v.get("secret") for v in volumes]
    for hook in _hooks(objects):
        assert hook["clientConfig"]["caBundle"] == values["certificates"]["secret"]["caBundle"]


def test_existing_secret_mode_without_a_ca_is_refused() -> None:
    with pytest.raises(helm.HelmRenderError, match="certificates.secret.caBundle is required"):
        chart.render({"certificates": {"mode": "secret"}})


def test_cert_manager_with_an_existing_issuer_makes_only_the_serving_certificate() -> None:
    values = chart_values(chart.CHART / "ci" / "cert-manager-issuer-values.yaml")
    objects = chart.render(values)
    made = [o for o in objects if o["apiVersion"] == "cert-manager.io/v1"]
    (serving,) = made
    assert serving["spec"]["issuerRef"] == values["certificates"]["certManager"]["issuerRef"]
    assert serving["spec"]["dnsNames"] == SERVICE_NAMES
    assert serving["spec"]["duration"] == "720h"
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        webhook = one(objects, kind)
        assert webhook["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": "kci-webhook/kci-webhook-serving"}
        assert "caBundle" not in webhook["webhooks"][0]["clientConfig"]


def _secret(objects: Objects) -> dict[str, Any]:
    return one(objects, "Secret", "kci-webhook-tls")


@pytest.mark.parametrize("hostname", SERVICE_NAMES)
def test_generated_certificate_serves_each_service_name_under_the_ca_bundle(
    tmp_path: Path, hostname: str,
) -> None:
    """What the API server does: trust caBundle, call the Service, check the names; the
    server loads the generated pair as it loads any other."""
    objects = chart.render({})
    secret = _secret(objects)
    assert secret["type"] == "kubernetes.io/tls"
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).write_bytes(base64.b64decode(secret["data"][name]))
    for hook in _hooks(objects):
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    ca_pem = base64.b64decode(secret["data"]["ca.crt"]).decode()
    server_context = ReloadingContext(tmp_path / "tls.crt", tmp_path / "tls.key").context
    handshake(server_context, ssl.create_default_context(cadata=ca_pem), hostname)


# An HTTP stand-in of the API server, for Helm's `lookup`: discovery of the core and the
# admissionregistration groups, the Secrets it holds (by (namespace, name)) and the webhook
# configurations (cluster-scoped: by ("", "RESOURCE/NAME")). Real HTTP on loopback,
# Kubernetes' JSON; nothing else is served.

ADMISSION = "/apis/admissionregistration.k8s.io/v1"


class _ApiServer(BaseHTTPRequestHandler):
    secrets: dict[tuple[str, str], dict[str, Any]] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if path == "/api/v1":
            self._send(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "secrets", "singularName": "secret", "namespaced": True,
                 "kind": "Secret", "verbs": ["get", "list"]}]})
        elif len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and (
                parts[4] == "secrets") and (parts[3], parts[5]) in self.secrets:
            self._send(200, self.secrets[(parts[3], parts[5])])
        elif path == ADMISSION:
            self._send(200, {"kind": "APIResourceList",
                             "groupVersion": "admissionregistration.k8s.io/v1", "resources": [
                {"name": f"{kind.lower()}s", "singularName": kind.lower(), "namespaced": False,
                 "kind": kind, "verbs": ["get", "list", "patch"]}
                for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")]})
        elif path.startswith(ADMISSION + "/") and (
                "", path.removeprefix(ADMISSION + "/")) in self.secrets:
            self._send(200, self.secrets[("", path.removeprefix(ADMISSION + "/"))])
        else:
            self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "reason": "NotFound", "code": 404})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def cluster() -> Iterator[tuple[helm.Config, dict[tuple[str, str], dict[str, Any]]]]:
    """A Helm configuration whose kubeconfig points at the stand-in; the dict is the
    cluster's Secrets by (namespace, name)."""
    secrets: dict[tuple[str, str], dict[str, Any]] = {}
    handler = type("Handler", (_ApiServer,), {"secrets": secrets})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {
            "server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "test", "user": {"token": "test"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test",
                                                  "namespace": "kci-webhook"}}]})
    try:
        with helm.Config(kubeconfig_content=kubeconfig, namespace="kci-webhook") as helm_config:
            yield helm_config, secrets
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _upgrade_render(helm_config: helm.Config, values: dict[str, Any]) -> Objects:
    with helm.Chart.load(chart.CHART) as loaded:
        rendered = helm_config.render(loaded, values, name="kci-webhook",
                                      namespace="kci-webhook", revision=2, is_upgrade=True)
    return [yaml.safe_load(doc) for doc in chart.documents(rendered)]


def test_helm_upgrade_keeps_the_generated_certificates(
    cluster: tuple[helm.Config, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    helm_config, secrets = cluster
    installed = chart.render({})
    secret = _secret(installed)
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # Without the Secret in the cluster, a render makes a new pair: the comparison below
    # can tell a kept pair from a new one.
    assert _secret(_upgrade_render(helm_config, {}))["data"] != secret["data"]
    secrets[("kci-webhook", "kci-webhook-tls")] = secret
    upgraded = _upgrade_render(helm_config, {"replicas": 3})
    assert _secret(upgraded)["data"] == secret["data"]
    for hook in _hooks(upgraded):
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]


def test_an_incomplete_secret_is_replaced_not_half_reused(
    cluster: tuple[helm.Config, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    helm_config, secrets = cluster
    secret = _secret(chart.render({}))
    del secret["data"]["ca.crt"]
    secrets[("kci-webhook", "kci-webhook-tls")] = secret
    upgraded = _secret(_upgrade_render(helm_config, {}))
    assert set(upgraded["data"]) == {"ca.crt", "tls.crt", "tls.key"}
    assert upgraded["data"]["tls.crt"] != secret["data"]["tls.crt"]


# --- the webhook configurations: inert as installed, kept active by an upgrade ----------------

NAME_TERM_KEY = "kubernetes.io/metadata.name"


def _activated(kind: str, objects: Objects, excluded: list[str]) -> dict[str, Any]:
    """The configuration as a serving replica leaves it (webhook.core.registration)."""
    live = json.loads(json.dumps(one(objects, kind)))
    for hook in live["webhooks"]:
        hook["namespaceSelector"]["matchExpressions"][0] = {
            "key": NAME_TERM_KEY, "operator": "NotIn", "values": excluded}
        hook["failurePolicy"] = "Ignore" if hook["name"].startswith("mutate-updates") else (
            "Fail" if kind.startswith("Mutating") else "Ignore")
    return live


def test_a_first_install_renders_every_entry_inert() -> None:
    for hook in _hooks(chart.render({"webhook": {"failurePolicy": "Fail"}})):
        assert hook["failurePolicy"] == "Ignore"
        assert hook["namespaceSelector"]["matchExpressions"][0] == {
            "key": NAME_TERM_KEY, "operator": "DoesNotExist"}


def test_helm_upgrade_keeps_active_configurations_active(
    cluster: tuple[helm.Config, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    """An upgrade renders what a replica made live (`lookup`), so applying it never turns
    the webhook off; new selector terms from the values still come through, after the
    server's own term; an entry not yet live (new in this chart version) is inert."""
    helm_config, objects = cluster
    installed = chart.render({})
    excluded = ["kci-webhook", "kube-public", "kube-system"]
    mutating = _activated("MutatingWebhookConfiguration", installed, excluded)
    del mutating["webhooks"][1]          # as an older release had it: one entry
    objects[("", "mutatingwebhookconfigurations/kci-webhook")] = mutating
    objects[("", "validatingwebhookconfigurations/kci-webhook")] = _activated(
        "ValidatingWebhookConfiguration", installed, excluded)
    extra = {"key": "team", "operator": "Exists"}
    upgraded = _upgrade_render(helm_config, {"webhook": {"namespaceSelector": {
        "matchExpressions": [extra]}}})
    create, update = one(upgraded, "MutatingWebhookConfiguration")["webhooks"]
    (validate,) = one(upgraded, "ValidatingWebhookConfiguration")["webhooks"]
    active = {"key": NAME_TERM_KEY, "operator": "NotIn", "values": excluded}
    assert create["failurePolicy"] == "Fail" and validate["failurePolicy"] == "Ignore"
    for hook in (create, validate):
        assert hook["namespaceSelector"] == {"matchExpressions": [active, extra]}
    assert update["failurePolicy"] == "Ignore"
    assert update["namespaceSelector"] == {"matchExpressions": [
        {"key": NAME_TERM_KEY, "operator": "DoesNotExist"}, extra]}


def test_a_selector_term_on_the_namespace_name_is_refused() -> None:
    """That term is the server's (made from config.exclude.namespaces): one source."""
    with pytest.raises(helm.HelmRenderError, match="config.exclude.namespaces"):
        chart.render({"webhook": {"namespaceSelector": {"matchExpressions": [
            {"key": NAME_TERM_KEY, "operator": "NotIn", "values": ["team-a"]}]}}})


def test_the_failure_policy_values_reach_the_replicas_not_the_installed_objects() -> None:
    """The objects are installed inert whatever the values say; the replicas set the
    policies the values name when they activate them."""
    objects = chart.render({"webhook": {"failurePolicy": "Ignore", "updateFailurePolicy": "Fail",
                                        "validating": {"failurePolicy": "Fail"}}})
    env = {e["name"]: e.get("value") for e in _container(objects)["env"]}
    assert (env["KCI_WEBHOOK_CREATE_FAILURE_POLICY"], env["KCI_WEBHOOK_UPDATE_FAILURE_POLICY"],
            env["KCI_WEBHOOK_VALIDATING_FAILURE_POLICY"]) == ("Ignore", "Fail", "Fail")
    assert {hook["failurePolicy"] for hook in _hooks(objects)} == {"Ignore"}
    without = chart.render({"webhook": {"validating": {"enabled": False}}})
    names = {e["name"] for e in _container(without)["env"]}
    assert "KCI_WEBHOOK_REGISTER_VALIDATING" not in names
    assert "KCI_WEBHOOK_REGISTER_MUTATING" in names
    assert [r["resources"] for r in one(without, "ClusterRole")["rules"]] == [
        ["namespaces"], ["events"], ["mutatingwebhookconfigurations"]]


@pytest.mark.parametrize(("values", "args", "events_rule"), [
    ({}, ["--log-changes=off", "--log-changes-sample-rate=1", "--events=on",
          "--events-queue-size=1000"], True),
    ({"events": {"enabled": False, "queueSize": 50},
      "logChanges": {"level": "info", "sampleRate": 0.1}},
     ["--log-changes=info", "--log-changes-sample-rate=0.1", "--events=off",
      "--events-queue-size=50"], False),
])
def test_events_and_change_log_values_reach_serve_and_the_role(
        values: dict[str, Any], args: list[str], events_rule: bool) -> None:
    objects = chart.render(values)
    assert _container(objects)["args"][-4:] == args
    rules = one(objects, "ClusterRole")["rules"]
    assert ({"apiGroups": ["events.k8s.io"], "resources": ["events"],
             "verbs": ["create", "patch"]} in rules) is events_rule
