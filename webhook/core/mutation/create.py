"""Pod CREATE: `mutate(pod, context) -> MutationResult`, a pure and idempotent function.

The input pod is never modified. The result shares every untouched subtree with the
input (same objects), and copies only the spine down to what changed; so the patch can be
computed by walking the changed spine alone (see `webhook.core.admission.patch`), and
comparing the two pods stays cheap.
"""

from __future__ import annotations

from webhook.core.config import Mirror, registry_key
from webhook.core.dialects import (
    ALL_REGISTRIES,
    Dialect,
)
from webhook.core.mutation import record
from webhook.core.mutation.context import (
    Context,
    MutationResult,
    excluded,
)
from webhook.core.mutation.images import (
    Pod,
    PresenceAnswers,
    PresenceQuestion,
    container_key,
    containers_of,
    image_refs,
    mirrors_used,
    questions,
    rewrite,
)
from webhook.core.mutation.judge import judge
from webhook.core.mutation.layers import (
    Layer,
    config_layer,
    environment_layer,
    mirrors_enabled,
)
from webhook.core.mutation.originals import record_originals
from webhook.core.mutation.pins import pin_layer, platform_pins
from webhook.core.mutation.writeback import (
    annotations_size_problem,
    apply_dns,
    apply_host_aliases,
    apply_pull_secrets,
    apply_registries,
)
from webhook.core.values.keys import ORIGINAL_IMAGES


def mutate(pod: Pod, ctx: Context, *, presence: PresenceAnswers | None = None
           ) -> MutationResult:
    """Validate the pod's KCI annotations and return the mutated pod (or a denial).

    `presence` answers `presence_questions` for mirrors with `policy: if-present`
    ((mirror endpoint, image) → (present, why not)); None means nobody could ask (the
    offline preview): such mirrors are then used as if the image were there.
    Raises InvalidInput when the object is not shaped like a Pod at all.
    """
    judged = judge(pod, ctx)
    if isinstance(judged, MutationResult):
        return judged
    config = ctx.config
    meta = pod.get("metadata") or {}
    spec = pod["spec"]
    annotations = judged.annotations
    warnings = judged.warnings
    dialect = judged.dialect
    pod_layer, ns_layer = judged.layer, judged.namespace_layer
    own = judged.own if judged.own is not None else pod_layer

    new_spec = dict(spec)
    mirrors_on = mirrors_enabled(pod_layer, ns_layer)
    rewritten: dict[str, tuple[str, str]] = {}
    words: dict[str, str] = {}
    if mirrors_on:
        rewrites = rewrite(spec, containers_of(spec), config=config, presence=presence)
        new_spec.update(rewrites.lists)
        warnings += rewrites.warnings
        rewritten, words = rewrites.rewritten, rewrites.words
    elif config.mirrors:
        words = {container_key(container, list_name, index): record.OFF
                 for list_name, index, container, _image in containers_of(spec)}
    refs = image_refs(new_spec)
    used = mirrors_used(refs, config.mirrors)
    warnings.extend(_advice(own, used, rewritten, {ref.domain for ref in refs}, dialect))

    layers = [pod_layer]
    if ns_layer is not None:
        layers.append(ns_layer)
    if config.defaults.scope == "all" or is_virtual_kubelet_pod(spec):
        layers += [environment_layer(ctx.environment), config_layer(config)]
    else:   # outside the defaults' scope, but a pod pulls from a pinned host by its pin
        layers.append(pin_layer(platform_pins(config, ctx.environment),
                                (ref.domain for ref in refs)))

    new_annotations = dict(annotations)
    denial = (apply_registries(new_annotations, judged, layers=layers, used=used)
              or apply_host_aliases(new_spec, new_annotations, judged=judged, layers=layers)
              or apply_dns(new_spec, new_annotations, judged=judged, layers=layers,
                            config=config))
    if denial:
        return MutationResult(pod, denial=denial)
    for key in pod_layer.invalid:   # onInvalid: warn, and no effective value took its place:
        if new_annotations.get(key) == annotations.get(key):   # never leave what was refused
            del new_annotations[key]
    apply_pull_secrets(new_spec, ns_layer, used)
    if rewritten or ORIGINAL_IMAGES in annotations:
        record_originals(new_annotations, spec, rewritten, config, warnings)
    if config.mirrors:   # with no mirror at all there is nothing to explain
        record.write_record(new_annotations, words)

    changed_spec = new_spec != spec
    changed_meta = new_annotations != annotations
    if not changed_spec and not changed_meta:
        return MutationResult(pod, warnings=warnings, words=words, ignored=judged.ignored,
                              namespace_ignored=judged.namespace_ignored)
    if changed_meta:
        too_large = annotations_size_problem(annotations, new_annotations)
        if too_large:
            return MutationResult(pod, denial=too_large, warnings=warnings)
    new_pod = dict(pod)
    if changed_meta:
        new_pod["metadata"] = {**meta, "annotations": new_annotations}
    if changed_spec:
        new_pod["spec"] = new_spec
    return MutationResult(new_pod, warnings=warnings, rewritten=rewritten, words=words,
                          ignored=judged.ignored, namespace_ignored=judged.namespace_ignored)


# --- images ----------------------------------------------------------------------------


def presence_questions(pod: Pod, ctx: Context) -> list[PresenceQuestion]:
    """What to ask mirrors with `policy: if-present` before mutating this pod: for each
    image, each such mirror up to the first `always` one, as (mirror, source reference,
    image). Pure: the shell asks, within its time budget, and passes the answers back."""
    if excluded(ctx):
        return []
    spec = pod.get("spec") if isinstance(pod, dict) else None
    return questions(spec, ctx.config) if isinstance(spec, dict) else []


def _advice(pod_layer: Layer, used: list[Mirror], rewritten: dict[str, tuple[str, str]],
            domains: set[str], dialect: Dialect) -> list[str]:
    """Likely mistakes worth a warning, not a denial. `domains`: registries of the images
    (compared as `registry_key`s); `pod_layer`: what the pod itself declares
    (`declared_by_author`)."""
    advice = []
    hosts = {new.split("/", 1)[0] for _old, new in rewritten.values()}
    for mirror in used:
        if mirror.host in hosts and not mirror.pull_secret:
            advice.append(f"images rewritten to mirror {mirror.host}, which has no pullSecret "
                          "configured: the node must be able to pull from it anonymously")
    lists = ((dialect.http_key, pod_layer.http_registries),
             (dialect.insecure_key, pod_layer.insecure_registries))
    used_keys = ({registry_key(domain) for domain in domains}
                 if any(registries for _key, registries in lists) else set())
    for key, registries in lists:
        for registry in registries:
            if registry_key(registry) not in used_keys and registry != ALL_REGISTRIES:
                advice.append(f"{key} (pod): registry {registry!r} is not used by any image "
                              "of this pod (a typo?)")
    return advice


# --- virtual kubelet -------------------------------------------------------------------


def is_virtual_kubelet_pod(spec: Pod) -> bool:
    """Pods bound for a virtual kubelet, recognised as the KCI documentation's Deployments
    mark them, and pods that tolerate its taint without naming it.

    A toleration whose key names a virtual-kubelet taint
    (`rbkci-virtual-kubelet.io/provider`, `virtual-kubelet.io/provider`), a toleration of
    every taint (`operator: Exists` with no key, for every effect or `NoSchedule`, the
    virtual node's), or a node selector / required node affinity on
    `type: virtual-kubelet`. A `spec.nodeName` says nothing of the node's kind, so it is
    not recognised; such a pod still gets the platform's alias of every host it pulls
    from (`webhook.core.mutation.pins.pin_layer`).
    """
    for toleration in spec.get("tolerations") or ():
        key = toleration.get("key")
        if isinstance(key, str) and "virtual-kubelet" in key:
            return True
        if (not key and toleration.get("operator") == "Exists"
                and toleration.get("effect") in (None, "", "NoSchedule")):
            return True
    selector = spec.get("nodeSelector")
    if isinstance(selector, dict) and selector.get("type") == "virtual-kubelet":
        return True
    return _affinity_selects_virtual_kubelet(spec.get("affinity"))


def _affinity_selects_virtual_kubelet(affinity: object) -> bool:
    try:
        terms = affinity["nodeAffinity"][  # type: ignore[index]
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        return any(
            expr.get("key") == "type" and expr.get("operator") == "In"
            and "virtual-kubelet" in (expr.get("values") or ())
            for term in terms for expr in term.get("matchExpressions") or ())
    except (KeyError, TypeError, AttributeError):
        return False


__all__ = ["is_virtual_kubelet_pod", "mutate", "presence_questions"]
