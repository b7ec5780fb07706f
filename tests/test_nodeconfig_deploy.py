"""The node-config DaemonSet, as the chart renders it and the kustomize overlay applies it.

Opt-in: the chart's defaults and manifests/base have none. Rendered, it is validated like
every other object (tests/test_manifests.py runs the chart's ci values files, one of which
enables it) and held here to what it may touch on a node: containerd's certs.d only, as a
hostPath; a read-only root filesystem; no privilege, no capability, no API token; and a
readiness probe on the port `--listen` serves /readyz on. Its arguments are parsed by the
command itself, so a flag the DaemonSet passes and the command lacks fails here.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import yaml

from hack import chart_render as chart
from tests.test_manifests import MANIFESTS, newer_than_1_24, one, render, validate
from webhook import cli

Objects = list[dict[str, Any]]
NODE_CONFIG_CI = chart.CHART / "ci" / "node-config-values.yaml"


@pytest.fixture(scope="module")
def overlay() -> Objects:
    """Module-scoped, read-only: the overlay as `kubectl kustomize` renders it."""
    return render(MANIFESTS / "overlays" / "node-config")


@pytest.fixture(scope="module", params=["overlay", "chart-ci"])
def objects(request: pytest.FixtureRequest, overlay: Objects) -> Objects:
    if request.param == "overlay":
        return overlay
    return chart.render(yaml.safe_load(NODE_CONFIG_CI.read_text()))


@pytest.fixture(scope="module")
def daemonset(objects: Objects) -> dict[str, Any]:
    return one(objects, "DaemonSet", "kci-webhook-node-config")


def parse(args: list[str]) -> argparse.Namespace:
    return cli._parser().parse_args(args)


def test_opt_in_nothing_by_default() -> None:
    assert not [o for o in chart.render({}) if o["kind"] == "DaemonSet"]
    assert not [o for o in render(MANIFESTS) if o["kind"] == "DaemonSet"]


def test_overlay_adds_only_the_daemonset_and_validates(overlay: Objects) -> None:
    base = render(MANIFESTS)
    assert len(overlay) == len(base) + 1
    for obj in overlay:
        validate(obj)
    assert [p for obj in overlay for p in newer_than_1_24(obj)] == []


def test_it_touches_only_certs_d_read_only_root_no_privilege(daemonset: dict[str, Any]) -> None:
    spec = daemonset["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    host_paths = [v["hostPath"] for v in spec["volumes"] if "hostPath" in v]
    assert host_paths == [{"path": "/etc/containerd/certs.d", "type": "Directory"}]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["certs-d"]["mountPath"] == "/host/certs.d"
    assert "--hosts-dir=/host/certs.d" in container["args"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["privileged"] is False
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(host), host
    # root only to write the root-owned directory, and then with no capability at all
    assert spec["securityContext"]["runAsUser"] == 0 == sc["runAsUser"]
    assert sc["runAsNonRoot"] is False


def test_a_uid_that_owns_the_directory_runs_non_root() -> None:
    objects = chart.render({"nodeConfig": {"enabled": True, "runAsUser": 65532}})
    spec = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["containers"][0]["securityContext"]["runAsNonRoot"] is True
    assert spec["containers"][0]["securityContext"]["runAsUser"] == 65532


def test_the_command_accepts_the_args_and_the_probe_hits_its_listener(
        daemonset: dict[str, Any]) -> None:
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    args = parse(container["args"])
    assert args.func.__module__ == "webhook.tools.nodeconfig.command"
    assert args.watch and args.config == "/etc/kci-webhook/config/config.yaml"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args.listen == ("0.0.0.0", ports["status"])
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "status"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "status"}


def test_it_reads_the_webhooks_config_and_ca_mounts(objects: Objects,
                                                    daemonset: dict[str, Any]) -> None:
    spec = daemonset["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    configmap = one(objects, "ConfigMap", "kci-webhook-config")
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert mounts["config"]["mountPath"] == "/etc/kci-webhook/config"
    assert "subPath" not in mounts["config"]  # updated in place; the watch follows it
    webhook = one(objects, "Deployment")["spec"]["template"]["spec"]
    webhook_mounts = {m["name"]: m for m in webhook["containers"][0]["volumeMounts"]}
    for name in set(webhook_mounts) - {"tls"}:
        assert mounts[name] == webhook_mounts[name], name


def test_its_pods_are_never_selected_as_the_webhooks(objects: Objects,
                                                     daemonset: dict[str, Any]) -> None:
    labels = daemonset["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        obj = one(objects, kind)
        selector = obj["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert not selector.items() <= labels.items(), kind
    selector = daemonset["spec"]["selector"]["matchLabels"]
    webhook = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items() and not selector.items() <= webhook.items()


def test_not_on_virtual_kubelet_nodes(daemonset: dict[str, Any]) -> None:
    affinity = daemonset["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]} in term[
        "matchExpressions"]


@pytest.mark.parametrize("source", ["overlay", "chart"])
def test_the_namespace_admits_the_hostpath_and_still_audits_restricted(
        overlay: Objects, source: str) -> None:
    objects = overlay if source == "overlay" else chart.render(
        {"namespace": {"create": True}, "nodeConfig": {"enabled": True}})
    labels = one(objects, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    default = one(chart.render({"namespace": {"create": True}}), "Namespace")["metadata"]
    assert default["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("node_mirrors", [True, False])
def test_node_mirrors_value_passes_the_flag(node_mirrors: bool) -> None:
    objects = chart.render({"nodeConfig": {"enabled": True, "nodeMirrors": node_mirrors}})
    (container,) = one(objects, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    assert parse(container["args"]).node_mirrors is node_mirrors
