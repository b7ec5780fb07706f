"""What a mutation is judged in and what it answers: shared by CREATE and UPDATE.

`Context` is everything besides the pod (config, environment, the namespace's layer);
`MutationResult` is what the mutation answers admission. The shape check, the dialect in
force and the namespace exclusion are read the same way by every path, so they live here,
below both `webhook.core.mutation.create` and `webhook.core.mutation.update`, which do not
import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from webhook.core.config import Config, EnvironmentDefaults
from webhook.core.dialects import DIALECTS, Dialect
from webhook.core.errors import InvalidInput
from webhook.core.mutation.images import CONTAINER_LISTS, Pod
from webhook.core.mutation.layers import Layer


@dataclass(frozen=True, slots=True)
class Context:
    """Everything besides the pod that decides its mutation; built once, shared by requests."""

    config: Config
    environment: EnvironmentDefaults = field(default_factory=EnvironmentDefaults)
    namespace: str = ""
    namespace_layer: Layer | None = None
    own_namespace: str | None = None
    dialect: str | None = None  # overrides the namespace's and the config's (a preview)


def dialect_of(ctx: Context) -> Dialect:
    """The preview's choice, else the Namespace's, else the config's."""
    ns_layer = ctx.namespace_layer
    return DIALECTS[ctx.dialect or (ns_layer.dialect if ns_layer else None)
                    or ctx.config.dialect]


def excluded(ctx: Context) -> bool:
    """Pods of an excluded namespace, and of the webhook's own, are never touched."""
    return (ctx.namespace in ctx.config.exclude_namespaces
            or ctx.namespace == ctx.own_namespace)


@dataclass(slots=True)
class MutationResult:
    """What admission answers. `pod is original` exactly when nothing changed.

    For the Events (`webhook.core.admission.events`): `words`, the record's word for each
    container judged (`webhook.core.mutation.record`); `ignored`, the pod's annotation
    problems ignored under `onInvalid: warn`; `namespace_ignored`, the namespace's
    defaults ignored as invalid or not allowed."""

    pod: Pod
    warnings: list[str] = field(default_factory=list)
    denial: str | None = None
    rewritten: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (old, new)
    skipped: str | None = None
    words: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    namespace_ignored: list[str] = field(default_factory=list)


_OBJECT_LISTS = (*CONTAINER_LISTS, "imagePullSecrets", "hostAliases", "tolerations")


def check_shape(pod: object) -> None:
    """The fields we read must have the types the Pod API gives them; say which does not."""
    if not isinstance(pod, dict):
        raise InvalidInput("object: expected a Pod object")
    meta = pod.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise InvalidInput("metadata: expected an object")
    annotations = (meta or {}).get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise InvalidInput("metadata.annotations: expected an object")
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise InvalidInput("spec: expected an object")
    for list_name in _OBJECT_LISTS:
        items = spec.get(list_name)
        if items is None:
            continue
        if not isinstance(items, list):
            raise InvalidInput(f"spec.{list_name}: expected a list of objects")
        for item in items:   # a plain loop: this runs on every admission
            if not isinstance(item, dict):
                raise InvalidInput(f"spec.{list_name}: expected a list of objects")
    for index, secret in enumerate(spec.get("imagePullSecrets") or ()):
        if not isinstance(secret.get("name", ""), str):
            raise InvalidInput(f"spec.imagePullSecrets[{index}].name: expected a string")
    dns = spec.get("dnsConfig")
    if dns is not None and not isinstance(dns, dict):
        raise InvalidInput("spec.dnsConfig: expected an object")
