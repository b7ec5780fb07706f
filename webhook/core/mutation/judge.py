"""The one judging step of every pod mutation: CREATE, UPDATE and `ephemeralcontainers`.

Before anything is rewritten, a pod is judged: its shape, whether its namespace is
excluded, the dialect in force, its annotations read in that dialect (`onInvalid`: an
invalid value refuses the pod, or is ignored with a warning), and the platform rules no
pod value switches off (`webhook.core.mutation.rules`). A CREATE is judged on all of its
annotations and its namespace's; an UPDATE on what it adds or changes (values that predate
it are not judged again, so a pod admitted under older rules stays editable), and then as
it will be, with the values it keeps; an `ephemeralcontainers` UPDATE changes no
annotation, so only the first steps apply. The verdict (`Judged`) carries what the
mutation goes on with: the dialect, the layers, the platform's pins and the warnings so
far.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from webhook.core.config import Config
from webhook.core.dialects import Dialect, carries_foreign_hosts, foreign_key_warnings
from webhook.core.model import HostAlias
from webhook.core.mutation.context import (
    Context,
    MutationResult,
    check_shape,
    dialect_of,
    excluded,
)
from webhook.core.mutation.images import Pod
from webhook.core.mutation.layers import (
    POD_KEYS,
    Layer,
    layer_from_annotations,
    namespace_layer_as,
)
from webhook.core.mutation.pins import NO_PINS, Pins, platform_pins
from webhook.core.mutation.rules import (
    declared_by_author,
    foreign_alias_problems,
    foreign_registry_problems,
    repointed_in_spec,
    restricted,
)


@dataclass(slots=True)
class Judged:
    """A pod that passed judging, and what the mutation goes on with.

    `layer`: the pod's own annotations read in `dialect` (on UPDATE, as the pod will have
    them); `namespace_layer`: its namespace's, as it applies (CREATE only); `own`: what the
    pod itself declares beside the platform's entries (`declared_by_author`); `pins`: the
    platform's pins the rules held it to (NO_PINS when nothing aliased a name);
    `annotations`: the annotations it is judged with; `restored`: on UPDATE under
    `onInvalid: warn`, those annotations with each invalid value put back as stored
    (`kept_as_stored`), else None; `warnings`: in order, so far (the mutation goes on
    adding to them); `ignored` and `namespace_ignored`: the problems of the pod's
    annotations ignored under `onInvalid: warn`, and of its namespace's defaults, for the
    Events (`MutationResult`)."""

    dialect: Dialect
    layer: Layer
    annotations: Mapping[str, Any]
    warnings: list[str]
    namespace_layer: Layer | None = None
    own: Layer | None = None
    pins: Pins = NO_PINS
    restored: dict[str, Any] | None = None
    ignored: list[str] = field(default_factory=list)
    namespace_ignored: list[str] = field(default_factory=list)


def judge(pod: Pod, ctx: Context, *, annotations: Mapping[str, Any] | None = None,
          before: Mapping[str, Any] | None = None) -> Judged | MutationResult:
    """Judge `pod` with `annotations` (None: its own, as on CREATE and plain UPDATE; the
    stored pod's through `ephemeralcontainers`). `before`: on UPDATE, the stored pod's
    annotations; None on CREATE. Returns the verdict, or the answer when there is nothing
    more to do: the pod is skipped (excluded namespace) or refused. Raises InvalidInput
    when the object is not shaped like a Pod at all."""
    check_shape(pod)
    if excluded(ctx):
        return MutationResult(pod, skipped=f"namespace {ctx.namespace} is excluded")
    dialect = dialect_of(ctx)
    if annotations is None:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if before is None:
        return _judge_create(pod, ctx, annotations=annotations, dialect=dialect)
    return _judge_update(ctx, annotations=annotations, before=before, dialect=dialect,
                         pod=pod)


def on_invalid(problems: Sequence[str], config: Config, *, deny: bool = True
               ) -> tuple[str | None, list[str]]:
    """`onInvalid` for `problems`: under `deny` (and when `deny` applies: a namespace's
    problems never refuse a pod) the denial; else each problem as an ignored warning."""
    if deny and config.on_invalid == "deny":
        return "; ".join(problems), []
    return None, [f"{p} (ignored)" for p in problems]


def platform_problems(declared: Layer, annotations: Mapping[str, Any], *, config: Config,
                      pins: Pins, dialect: Dialect,
                      exempt: Mapping[str, Any] | None = None,
                      remember: bool = False) -> list[str]:
    """Why the pod may not be admitted whatever `onInvalid` says: what it declares
    (`declared`, in the active dialect) against the rules, and every other dialect's keys
    too (another vendor's kubelet would read them); `exempt`: values that predate an
    update, not judged again."""
    denied = (restricted(declared, config, pins, dialect, remember=remember)[1]
              if pins or declared.http_registries or declared.insecure_registries else [])
    denied += foreign_registry_problems(annotations, config, dialect, exempt=exempt)
    denied += foreign_alias_problems(annotations, pins, dialect, exempt=exempt)
    return denied


def _judge_create(pod: Pod, ctx: Context, *, annotations: Mapping[str, Any],
                  dialect: Dialect) -> Judged | MutationResult:
    """A new pod: every annotation it carries, and its namespace's."""
    config = ctx.config
    spec = pod["spec"]
    pod_layer = layer_from_annotations(annotations, level="pod", dialect=dialect)
    warnings: list[str] = []
    if pod_layer.problems:
        denial, warnings = on_invalid(pod_layer.problems, config)
        if denial:
            return MutationResult(pod, denial=denial)
    ignored = list(pod_layer.problems)
    warnings.extend(foreign_key_warnings(annotations, dialect))
    ns_layer = ctx.namespace_layer
    namespace_ignored: list[str] = []
    if ns_layer is not None:
        ns_layer = namespace_layer_as(ns_layer, dialect)
        namespace_ignored += ns_layer.problems
        warnings.extend(f"{p} (ignored)" for p in ns_layer.problems)
    # The platform's pins, looked up only when something here aliases a name.
    pins = (platform_pins(config, ctx.environment) if pod_layer.host_aliases
            or spec.get("hostAliases") or (ns_layer is not None and ns_layer.host_aliases)
            or carries_foreign_hosts(annotations, dialect)
            else NO_PINS)
    if ns_layer is not None:
        ns_layer, ns_denied = restricted(ns_layer, config, pins, dialect,
                                         remember=ns_layer is ctx.namespace_layer)
        namespace_ignored += ns_denied
        warnings.extend(f"{p} (ignored)" for p in ns_denied)
    own = declared_by_author(pod_layer, config, besides=ns_layer)
    denied = platform_problems(own, annotations, config=config, pins=pins, dialect=dialect,
                               remember=own is pod_layer)
    if pins and spec.get("hostAliases"):
        denied += repointed_in_spec(spec, pins)
    if denied:   # whatever onInvalid says: a pod may not switch a platform rule off
        return MutationResult(pod, denial="; ".join(denied))
    return Judged(dialect, pod_layer, annotations, warnings, namespace_layer=ns_layer,
                  own=own, pins=pins, ignored=ignored, namespace_ignored=namespace_ignored)


def _judge_update(ctx: Context, *, annotations: Mapping[str, Any],
                  before: Mapping[str, Any], dialect: Dialect,
                  pod: Pod) -> Judged | MutationResult:
    """An UPDATE: the KCI annotations it adds or changes are validated as at CREATE, and
    the security rules judge the registries and host aliases it adds, in every dialect's
    keys. Under `onInvalid: warn` an invalid new value is put back as the stored pod has
    it, and the pod is judged with the value it keeps."""
    config = ctx.config
    warnings: list[str] = []
    # Through `ephemeralcontainers` the annotations are the stored pod's: nothing changed.
    changed = {key: annotations[key] for key in POD_KEYS
               if key in annotations and annotations[key] != before.get(key)
               } if annotations is not before else None
    restored = None
    ignored: list[str] = []
    if changed:
        layer = layer_from_annotations(changed, level="pod", dialect=dialect)
        ignored = list(layer.problems)
        if layer.problems:
            denial, warnings = on_invalid(layer.problems, config)
            if denial:
                return MutationResult(pod, denial=denial, warnings=warnings)
        old_layer = layer_from_annotations(before, level="pod", dialect=dialect)
        old_aliases = {(name, alias.ip) for alias in old_layer.host_aliases or ()
                       for name in alias.hostnames}
        new_aliases = tuple(HostAlias(ip=alias.ip, hostnames=names)
                            for alias in layer.host_aliases or ()
                            if (names := tuple(n for n in alias.hostnames
                                               if (n, alias.ip) not in old_aliases)))
        # A mirror's own host is the platform's declaration (its `http://` endpoint or
        # `insecureSkipVerify`), as the webhook writes it at creation: adding it is
        # allowed, and is the fix the warnings of a rewrite give for a pod created
        # without it.
        added = replace(declared_by_author(layer, config, besides=old_layer),
                        host_aliases=new_aliases or None)
        pins = (platform_pins(config, ctx.environment)
                if new_aliases or carries_foreign_hosts(changed, dialect) else NO_PINS)
        denied = platform_problems(added, changed, config=config, pins=pins, dialect=dialect,
                                   exempt=before)
        if denied:
            return MutationResult(pod, denial="; ".join(denied), warnings=warnings)
        for key, value, field_path in (
                (dialect.hosts_key, layer.host_aliases, "spec.hostAliases"),
                (dialect.dns_key, layer.dns_config, "spec.dnsConfig")):
            if value is not None:
                warnings.append(f"{key} (pod): changed after creation; {field_path} cannot "
                                "change on an existing pod, so the new value applies to pods "
                                "created with it")
        restored, notes = kept_as_stored(annotations, before, keys=layer.invalid)
        warnings += notes
        if restored is not None:    # the pod as it will be: judged with the values it keeps
            annotations = restored
    pod_layer = layer_from_annotations(annotations, level="pod", dialect=dialect)
    return Judged(dialect, pod_layer, annotations, warnings, restored=restored,
                  ignored=ignored)


def kept_as_stored(annotations: Mapping[str, Any], before: Mapping[str, Any], *,
                   keys: tuple[str, ...]) -> tuple[dict[str, Any] | None, list[str]]:
    """`annotations` with each of `keys` put back as the stored pod (`before`) has it, or
    removed when it has none (None when `keys` is empty), and a warning for each.

    Under `onInvalid: warn` an invalid value is ignored as if unset; on CREATE the
    write-back replaces it, but an UPDATE writes nothing back, so its raw text would stay on
    the pod for the virtual kubelet to read — what deny mode refuses. Put back rather than
    refused, so the rest of the update (a label, a finalizer's removal) still goes
    through, as warn mode promises."""
    if not keys:
        return None, []
    kept = dict(annotations)
    warnings = []
    for key in keys:
        if key in before:
            kept[key] = before[key]
            warnings.append(f"{key} (pod): the update's value is invalid, so the pod keeps "
                            "the value it had")
        else:
            del kept[key]
            warnings.append(f"{key} (pod): the update's value is invalid, so the annotation "
                            "is removed (the pod had none)")
    return kept, warnings
