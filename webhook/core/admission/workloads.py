"""Where a workload keeps its pod template, for the kinds whose pods we act on.

Warnings on pods that a controller creates reach the controller, not a person; so the
templates of these kinds are validated when their author applies them (`/validate`) and
previewed offline (`kci-webhook mutate`), with the same code as pods.
"""

from __future__ import annotations

from typing import Any

# kind → path from the object to its pod template
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
WORKLOAD_GROUPS = {"Deployment": "apps", "StatefulSet": "apps", "DaemonSet": "apps",
                   "ReplicaSet": "apps", "Job": "batch", "CronJob": "batch"}


def pod_template(obj: object, kind: str) -> dict[str, Any] | None:
    """The pod template of a workload object, or None if it has none where expected."""
    node: Any = obj
    for key in TEMPLATE_PATHS.get(kind, ()):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) and kind in TEMPLATE_PATHS else None


def template_as_pod(template: dict[str, Any], namespace: str = "") -> dict[str, Any]:
    """A Pod built from a template, as the controller would create it (for the same code)."""
    raw = template.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {**metadata, **({"namespace": namespace} if namespace else {})},
            "spec": template.get("spec")}
