"""Builders the tests share: a pod, and the context it is admitted in.

A test file whose pods or contexts differ on purpose (one image with a fixed container
name, a stored pod with a uid, a body made large through its env) keeps its own builder.
"""

from __future__ import annotations

from typing import Any

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
