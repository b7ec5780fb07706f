"""`kci-webhook mutate`: run as a user runs it, and compared with what the server does."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT, RunningServer, apply_response_patch, pod_review

CONFIG = """
mirrors:
  - endpoint: https://172.18.0.20:5000/v2/test-namespace
    hosts: [docker.io, gcr.io, somehost.io]
    pullSecret: mirror-pull
"""

# The seeds' Deployment (Kingsoft KCI, "使用自建仓库"), as written there.
SEED_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-rbkci
  namespace: default
  labels:
    app: nginx
spec:
  replicas: 1
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
        annotations:
            k8s.ksyun.com/kci-dns-config: '{"nameservers":["1.1.1.1"],"options":[{"name":"ndots","value":"2"},{"name":"timeout","value":"3"}],"searches":["test1.com"]}'
            k8s.ksyun.com/kci-host-aliases: '[{"ip":"1.2.3.4","hostnames":["www.privaterepo1.com"]},{"ip":"2.3.4.5","hostnames":["www.privaterepo2.com"]}]'
        labels:
            app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - key: type
                operator: In
                values:
                - virtual-kubelet
      tolerations:
      - key: rbkci-virtual-kubelet.io/provider
        value: kingsoftcloud
        effect: NoSchedule
"""  # noqa: E501


def run(tmp_path: Path, *args: str, stdin: str | None = None,
        config: str = CONFIG) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.yaml").write_text(config)
    return subprocess.run([sys.executable, "-m", "webhook", "mutate", "--config",
                           str(tmp_path / "config.yaml"), *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})


def manifest(tmp_path: Path, text: str, name: str = "in.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_seed_deployment_template_is_mutated(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, SEED_DEPLOYMENT))
    assert result.returncode == 0, result.stderr
    template = yaml.safe_load(result.stdout)["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == (
        "172.18.0.20:5000/test-namespace/library/nginx:latest")
    assert template["spec"]["imagePullSecrets"] == [{"name": "mirror-pull"}]
    assert [a["ip"] for a in template["spec"]["hostAliases"]] == ["1.2.3.4", "2.3.4.5"]
    assert template["spec"]["dnsConfig"]["nameservers"] == ["1.1.1.1"]


def test_preview_and_server_produce_the_same_pod(
        tmp_path: Path, server_factory: Callable[[str | None], RunningServer]) -> None:
    """The pods a ReplicaSet makes from the previewed template equal what the server makes
    of pods from the original template: one code path, two shells."""
    previewed = yaml.safe_load(run(tmp_path, "-f", manifest(tmp_path, SEED_DEPLOYMENT)).stdout)
    original = yaml.safe_load(SEED_DEPLOYMENT)["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", **original}
    review = pod_review(pod, namespace="default")
    response = server_factory(CONFIG).review(review).json()["response"]
    served = apply_response_patch(review, response)
    expected = previewed["spec"]["template"]
    assert served["spec"] == expected["spec"]
    assert served["metadata"]["annotations"] == expected["metadata"]["annotations"]


def test_diff_shows_the_changes_only(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, SEED_DEPLOYMENT), "--diff")
    added = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert any("image: 172.18.0.20:5000/test-namespace/library/nginx:latest" in line
               for line in added)
    assert "-        image: nginx:latest" in result.stdout
    assert result.stdout.startswith("---")


def test_denial_goes_to_stderr_with_a_non_zero_exit(tmp_path: Path) -> None:
    bad = SEED_DEPLOYMENT.replace('"ip":"1.2.3.4"', '"ip":"1.2.3"')
    result = run(tmp_path, "-f", manifest(tmp_path, bad))
    assert result.returncode == 1
    assert result.stderr.startswith(
        'denied: Deployment/nginx-rbkci: k8s.ksyun.com/kci-host-aliases (pod): item 1: "ip": '
        '"1.2.3" is not an IPv4 or IPv6 address')


def test_other_kinds_pass_through_and_every_workload_kind_is_handled(tmp_path: Path) -> None:
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "c"}, "data": {"image": "nginx"}}]
    template = {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        docs.append({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": kind.lower()},
                     "spec": {"template": template}})
    docs.append({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
                 "spec": {"jobTemplate": {"spec": {"template": template}}}})
    result = run(tmp_path, "-f", "-", stdin=json.dumps({"kind": "List", "items": docs}))
    assert result.returncode == 0, result.stderr
    items = yaml.safe_load(result.stdout)["items"]
    assert items[0] == docs[0]
    images = [json.dumps(item) for item in items[1:]]
    assert all("172.18.0.20:5000/test-namespace/library/nginx" in i for i in images)


def test_namespace_annotations_are_simulated(tmp_path: Path) -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n" \
          "  - {name: c, image: nginx}\n"
    result = run(tmp_path, "-f", manifest(tmp_path, pod), "--namespace", "team-a",
                 "--namespace-annotations", '{"kci-webhook/mirrors": "off", '
                 '"kci-webhook/image-pull-secrets": "team-pull"}')
    out = yaml.safe_load(result.stdout)
    assert out["spec"]["containers"][0]["image"] == "nginx"
    assert out["spec"]["imagePullSecrets"] == [{"name": "team-pull"}]


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    assert run(tmp_path, "-f", manifest(tmp_path, "a: [")).returncode == 2
    assert run(tmp_path, "-f", str(tmp_path / "missing.yaml")).returncode == 2
    assert run(tmp_path, "-f", "-", stdin="", config="onInvalidd: x").returncode == 2
