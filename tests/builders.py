"""Builders the tests share: a pod, the context it is admitted in, a workload as the API
server stores it, a kubeconfig.

A test file whose pods or contexts differ on purpose (one image with a fixed container
name, a stored pod with a uid, a body made large through its env) keeps its own builder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from webhook.core.config import Config, EnvironmentDefaults, environment_defaults
from webhook.core.mutation.context import Context
from webhook.core.mutation.layers import namespace_layer


def pod(*images: str, namespace: str = "team-a", annotations: dict[str, str] | None = None,
        labels: dict[str, str] | None = None, init: tuple[str, ...] = (),
        **spec: Any) -> dict[str, Any]:
    """A Pod with one container per image (`c0`, `c1`, …) and one init container per
    `init` image (`i0`, …); `spec` adds fields to its spec. No annotations or labels map
    unless given, so a test can tell a missing map from an empty one."""
    meta: dict[str, Any] = {"name": "p", "namespace": namespace}
    if annotations is not None:
        meta["annotations"] = annotations
    if labels is not None:
        meta["labels"] = labels
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"containers": [{"name": f"c{i}", "image": image}
                                for i, image in enumerate(images)], **spec},
    }
    if init:
        body["spec"]["initContainers"] = [{"name": f"i{i}", "image": image}
                                          for i, image in enumerate(init)]
    return body


def context(config: Config, *, namespace: str = "team-a", ns: dict[str, str] | None = None,
            env: dict[str, str] | None = None, environment: EnvironmentDefaults | None = None,
            own_namespace: str | None = "kci-webhook", dialect: str | None = None) -> Context:
    """The Context a pod in `namespace` is admitted in, as the server builds it: the
    Namespace's annotations `ns` read in the config's dialect, the KCI_* environment `env`
    (or an `environment` already read), the webhook's own namespace."""
    if environment is None:
        environment = environment_defaults(env) if env else EnvironmentDefaults()
    return Context(config=config, environment=environment, namespace=namespace,
                   namespace_layer=namespace_layer(namespace, ns, config.dialect) if ns else None,
                   own_namespace=own_namespace, dialect=dialect)


API_VERSIONS = {"Pod": "v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1",
                "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1", "Job": "batch/v1",
                "CronJob": "batch/v1"}


def workload(kind: str, name: str, *images: str, namespace: str = "team-a",
             annotations: dict[str, str] | None = None, init: tuple[str, ...] = (),
             ephemeral: tuple[str, ...] = (), owner: str | None = None,
             **spec: Any) -> dict[str, Any]:
    """A Pod or a workload as the API server stores it: `images` in its (template's)
    containers `c0`, `c1`, …, `init` in its init containers, `ephemeral` (a Pod's) in its
    ephemeral containers `debug0`, …; `annotations` on the pod (template); `owner`: the
    kind of a controller that owns it (a Deployment's ReplicaSet, a CronJob's Job)."""
    body = pod(*images, namespace=namespace, annotations=annotations, init=init, **spec)
    if ephemeral:
        body["spec"]["ephemeralContainers"] = [
            {"name": f"debug{i}", "image": image, "stdin": True, "tty": True}
            for i, image in enumerate(ephemeral)]
    meta: dict[str, Any] = {"name": name, "namespace": namespace,
                            "creationTimestamp": "2026-12-01T00:00:00Z"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": API_VERSIONS[owner], "kind": owner,
                                    "name": f"{name}-owner", "uid": f"uid-{name}-owner",
                                    "controller": True, "blockOwnerDeletion": True}]
    if kind == "Pod":
        return {**body, "metadata": {**body["metadata"], **meta}}
    template: dict[str, Any] = {"metadata": {"labels": {"app": name}}, "spec": body["spec"]}
    if annotations is not None:
        template["metadata"]["annotations"] = annotations
    spec_of: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": template}
    if kind == "Job":
        spec_of = {"template": {**template, "spec": {**template["spec"],
                                                     "restartPolicy": "Never"}}}
    if kind == "CronJob":
        spec_of = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
            **template, "spec": {**template["spec"], "restartPolicy": "OnFailure"}}}}}
    return {"apiVersion": API_VERSIONS[kind], "kind": kind, "metadata": meta, "spec": spec_of}


def kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig file pointing at `server` (the API server stand-in), with a token."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "token-of-the-tester"}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin",
                                                     "user": "tester"}}]}))
    return path
