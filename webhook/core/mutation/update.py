# Over 300 lines: the rules of a pod UPDATE and the fix each warning names, read together.
"""Pod UPDATE: rewrite the images an update brings, and nothing the API server would refuse.

After creation a pod is nearly immutable. What a kube-apiserver (1.24 and newer) lets an
update change — `ValidatePodUpdate`, `ValidatePodEphemeralContainersUpdate`
(pkg/apis/core/validation) and the pod strategies (pkg/registry/core/pod/strategy.go):

- `pods` UPDATE: `spec.containers[*].image`, `spec.initContainers[*].image`,
  `spec.activeDeadlineSeconds`, additions to `spec.tolerations`, and metadata (labels,
  annotations). Any other spec change is refused — `imagePullSecrets`, `hostAliases`,
  `dnsConfig`, and `ephemeralContainers` too (they are added through the subresource).
- `pods/ephemeralcontainers` UPDATE (`kubectl debug`): the object is the whole pod, but
  only its `spec.ephemeralContainers` is kept; the rest, annotations included, is reset to
  the stored pod. An ephemeral container that already exists may not change or go.
- `pods/status` and every other subresource: nothing a mutating webhook should touch.

Mutating admission runs before those rules, so an UPDATE's patch stays inside them:
- plain UPDATE: the containers and init containers whose image the update changed are
  rewritten as at CREATE (same mirrors, `if-present` answers, idempotency). The annotations
  the update adds or changes, in every dialect's keys, are validated, and the security
  rules apply to the registries it adds (a pod cannot declare a disallowed insecure
  registry, nor weaken TLS for a mirror's host, after creation; a mirror's own host, which
  the config declares HTTP or insecure, is allowed) and to the host aliases it adds (no
  platform hostname re-pointed); values that predate the update are not judged again, so
  a pod admitted under older rules stays editable. The update is judged on the pod as it
  will be: it may not drop the platform's alias of a host the pod, with this update's
  images, pulls from (`webhook.core.mutation.rules.dropped_pins`).
- ephemeral containers: the new (or changed) ones are rewritten; nothing else is patched.

A pod cannot gain a pull secret after creation, and the webhook adds no registry or host
annotation on UPDATE (through the subresource it could not; on a plain UPDATE it changes
images, and its record of them, only, so a running pod's registry trust is never widened
by anyone but its author). So when the chosen
mirror needs a pull secret that the pod lacks, an HTTP / insecure setting that the pod's
own annotations (as they stand after this update) lack, or the platform's alias of its
host where the pod's pulls resolve names (the dialect's hosts annotation after this
update; with no such key, the stored `spec.hostAliases`), the image is kept as written
with a warning that names the reason and the fix. The annotations a plain UPDATE may
patch are those it puts back as the stored pod has them (`check_patch_scope` holds the
patch to exactly that):
- `kci-webhook/original-images`: a change to it is undone (`kept_record`), so the record
  written at creation cannot be forged later; the update's own rewrites are recorded in the
  response's audit annotation.
- `kci-webhook/images`: likewise, except that the words of the containers whose image the
  update brings are replaced by what happened to them (`record.updated_record`), so the
  record never describes an image the pod no longer has.
- under `onInvalid: warn`, an annotation of the active dialect (or the mirror switch) that
  the update sets to an invalid value (`kept_as_stored`): the virtual kubelet reads the
  annotations, so the raw text that deny mode refuses is never left on the pod — the stored
  pod's value is put back, or the key removed when the stored pod had none. The pod is
  then judged with the value it keeps.

Pure: the shell asks the `if-present` mirrors (`update_questions`) and passes the answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from webhook.core.config import Mirror
from webhook.core.dialects import ALL_REGISTRIES, Dialect
from webhook.core.model import HostAlias
from webhook.core.mutation import record
from webhook.core.mutation.context import (
    Context,
    MutationResult,
    excluded,
)
from webhook.core.mutation.images import (
    CONTAINER_LISTS,
    Pod,
    PresenceAnswers,
    PresenceQuestion,
    Rewrites,
    Target,
    container_key,
    image_questions,
    image_refs,
    rewrite,
)
from webhook.core.mutation.judge import judge
from webhook.core.mutation.layers import (
    POD_KEYS,
    Layer,
    layer_from_annotations,
    mirrors_enabled,
)
from webhook.core.mutation.originals import RECORDS, kept_record
from webhook.core.mutation.pins import Pins, platform_pins, pulled_pins
from webhook.core.mutation.rules import (
    carries_pin,
    dropped_pins,
    spec_host_aliases,
)
from webhook.core.values.keys import IMAGE_RECORD

EPHEMERAL = "ephemeralcontainers"
SUBRESOURCES = ("", EPHEMERAL)          # the UPDATEs we patch; `status` and the rest never
EPHEMERAL_LIST = "ephemeralContainers"
# The annotations an UPDATE is judged on: every dialect's, the mirror switch, the records.
WATCHED = (*POD_KEYS, *RECORDS)
DEBUG_COPY = ("use `kubectl debug {pod} --copy-to={pod}-debug` instead, which creates a new "
              "pod that the webhook mutates in full")


# --- what changed ------------------------------------------------------------------------


def changes_nothing(pod: object, old: object, sub_resource: str) -> bool:
    """The fast path: no image and no KCI annotation we act on differs. Raw values only —
    no parsing — so an UPDATE we do not care about (labels, finalizers, a controller's
    bookkeeping) costs a few dictionary lookups."""
    if sub_resource == EPHEMERAL:
        return _images(pod, EPHEMERAL_LIST) == _images(old, EPHEMERAL_LIST)
    return (all(_images(pod, name) == _images(old, name) for name in CONTAINER_LISTS)
            and _kci(pod) == _kci(old))


def _images(pod: object, list_name: str) -> list[object]:
    spec = pod.get("spec") if isinstance(pod, dict) else None
    items = spec.get(list_name) if isinstance(spec, dict) else None
    if not isinstance(items, list):
        return []
    return [c.get("image") if isinstance(c, dict) else None for c in items]


def _annotations(pod: object) -> dict[str, Any]:
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def _kci(pod: object) -> list[object]:
    annotations = _annotations(pod)
    return [annotations.get(key) for key in WATCHED]


def targets(pod: Pod, old: object, sub_resource: str) -> Iterator[Target]:
    """The containers whose image this update brings. Plain UPDATE: by position, as the API
    server compares them (a list whose length changed is refused there; nothing to do).
    Ephemeral containers: by name, those that are new or whose image differs."""
    spec = pod.get("spec")
    old_spec = old.get("spec") if isinstance(old, dict) else None
    if not isinstance(spec, dict):
        return
    old_spec = old_spec if isinstance(old_spec, dict) else {}
    if sub_resource == EPHEMERAL:
        before = {_text(c.get("name")): c.get("image")
                  for c in _dicts(old_spec.get(EPHEMERAL_LIST))}
        for index, container in enumerate(_dicts(spec.get(EPHEMERAL_LIST))):
            image = container.get("image")
            if isinstance(image, str) and before.get(_text(container.get("name"))) != image:
                yield EPHEMERAL_LIST, index, container, image
        return
    for list_name in CONTAINER_LISTS:
        new_items, old_items = _dicts(spec.get(list_name)), _dicts(old_spec.get(list_name))
        if len(new_items) != len(old_items):
            continue
        for index, (container, previous) in enumerate(zip(new_items, old_items, strict=True)):
            image = container.get("image")
            if isinstance(image, str) and image != previous.get("image"):
                yield list_name, index, container, image


def _text(value: object) -> str | None:
    """A name as the API has it (a string), or None: values from the body may be anything."""
    return value if isinstance(value, str) else None


def _dicts(items: object) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        return []
    return [item if isinstance(item, dict) else {} for item in items]


# --- the shell's questions, and the mutation ------------------------------------------------


def update_questions(pod: object, old: object, ctx: Context, *,
                     sub_resource: str) -> list[PresenceQuestion]:
    """What to ask `policy: if-present` mirrors about the images this update brings."""
    if (not isinstance(pod, dict) or excluded(ctx)
            or changes_nothing(pod, old, sub_resource)):
        return []
    return image_questions((image for *_rest, image in targets(pod, old, sub_resource)),
                           ctx.config)


def mutate_update(pod: Pod, old: object, ctx: Context, *, sub_resource: str,
                  presence: PresenceAnswers | None = None) -> MutationResult:
    """The pod with the images this update brings rewritten to their mirrors (or a denial).

    Like a CREATE's mutation, the input is never modified and `pod is original` exactly
    when nothing changed. Raises InvalidInput when the object is not shaped like a Pod.
    The rules judge the pod as it will be: its annotations after the update, its images
    after the rewrite.
    """
    ephemeral = sub_resource == EPHEMERAL
    before = _annotations(old)
    # The subresource keeps the stored pod's annotations, whatever the object says.
    judged = judge(pod, ctx, annotations=before if ephemeral else None, before=before)
    if isinstance(judged, MutationResult):
        return judged
    config = ctx.config
    dialect = judged.dialect
    warnings = judged.warnings
    annotations = judged.annotations
    kept = judged.restored
    pod_layer = judged.layer
    spec = pod["spec"]
    old_spec = old.get("spec") if isinstance(old, dict) else None
    # What cannot change on UPDATE is the stored pod's, whatever the object says.
    stored = old_spec if isinstance(old_spec, dict) else spec
    pins = platform_pins(config, ctx.environment)
    if mirrors_enabled(pod_layer, ctx.namespace_layer):
        rewrites = _rewrites(pod, old, ctx, sub_resource=sub_resource, stored=stored,
                             pod_layer=pod_layer, pins=pins, dialect=dialect,
                             presence=presence)
    else:
        rewrites = Rewrites({}, {}, [], {
            container_key(container, list_name, index): record.OFF
            for list_name, index, container, _image in targets(pod, old, sub_resource)}
            if config.mirrors else {})
    lists, rewritten, words = rewrites.lists, rewrites.rewritten, rewrites.words
    warnings += rewrites.warnings
    new_spec = {**spec, **lists} if lists else spec
    new_annotations = None
    if not ephemeral:
        denied = _dropped_pins(annotations, before, new_spec, pins, dialect)
        if denied:
            return MutationResult(pod, denial="; ".join(denied), warnings=warnings)
        # Only a record the pod was created with is kept current; none is started.
        written = (record.updated_record(before[IMAGE_RECORD], words)
                   if words and IMAGE_RECORD in before else None)
        records = kept_record(annotations, before, warnings, record=written)
        new_annotations = kept if records is None else records
    if not lists and new_annotations is None:
        return MutationResult(pod, warnings=warnings, words=words, ignored=judged.ignored)
    new_pod = {**pod, "spec": new_spec} if lists else dict(pod)
    meta = pod.get("metadata")
    if new_annotations is not None and isinstance(meta, dict):
        new_pod["metadata"] = {**meta, "annotations": new_annotations}
    return MutationResult(new_pod, warnings=warnings, rewritten=rewritten, words=words,
                          ignored=judged.ignored)


def _rewrites(pod: Pod, old: object, ctx: Context, *, sub_resource: str, stored: Pod,
              pod_layer: Layer, pins: Pins, dialect: Dialect,
              presence: PresenceAnswers | None) -> Rewrites:
    """The images this update brings rewritten (the container lists that change, by list
    name, and the record of rewrites); an image the pod, as it stands, cannot pull from
    its mirror is kept, with a warning that says why."""
    # The stored pod's secrets: the list cannot change on UPDATE, whatever the object says.
    secrets = {_text(s.get("name")) for s in _dicts(stored.get("imagePullSecrets"))}
    # Where the pod's pulls resolve a hostname: the dialect's hosts annotation (as it
    # stands after this update), or, with none, the stored spec.hostAliases.
    resolving = (pod_layer.host_aliases if dialect.hosts_key
                 else spec_host_aliases(stored))
    pod_name = _text((pod.get("metadata") or {}).get("name")) or "POD"

    def unusable(mirror: Mirror) -> tuple[tuple[str, str] | None, list[str]]:
        return _unusable(mirror, secrets, pod_layer, sub_resource, pod_name=pod_name,
                         dialect=dialect, pin=_missing_pin(mirror, pins, resolving))

    return rewrite(pod["spec"], targets(pod, old, sub_resource), config=ctx.config,
                   presence=presence, unusable=unusable)


def _missing_pin(mirror: Mirror, pins: Pins,
                 resolving: tuple[HostAlias, ...] | None) -> HostAlias | None:
    """The platform's alias of `mirror`'s host when the pod lacks it, else None."""
    pulled = pulled_pins(pins, (mirror.host,))
    for alias in pulled:
        if not carries_pin(resolving, alias.hostnames[0], alias.ip):
            return alias
    return None


def _dropped_pins(annotations: Mapping[str, Any], before: Mapping[str, Any], spec: Pod,
                  pins: Pins, dialect: Dialect) -> list[str]:
    """A plain UPDATE that changes the dialect's hosts annotation may not drop the
    platform's alias of a host the pod, with this update's images, pulls from."""
    key = dialect.hosts_key
    if key is None or annotations.get(key) == before.get(key) or not pins:
        return []
    pulled = pulled_pins(pins, (ref.domain for ref in image_refs(spec)))
    if not pulled:
        return []
    old_layer = layer_from_annotations(before, level="pod", dialect=dialect)
    new_layer = layer_from_annotations(annotations, level="pod", dialect=dialect)
    return dropped_pins(old_layer.host_aliases, new_layer.host_aliases, pulled,
                        f"{key} (pod)")


def _unusable(mirror: Mirror, secrets: set[str | None], pod_layer: Layer,
              sub_resource: str, *, pod_name: str, dialect: Dialect,
              pin: HostAlias | None) -> tuple[tuple[str, str] | None, list[str]]:
    """Why the pod, as it stands, cannot pull from `mirror`, as the record's word and the
    reason with the fix (None if it can), and the warnings to give either way. `pin`: the
    platform's alias of the mirror's host, when the pod lacks it.

    Where the dialect has no key for what the mirror needs, nothing the pod could write
    would help: the image is rewritten as at creation, with creation's warning. An entry
    with a path (CCI) covers only part of the host, so it never counts as listing the
    mirror: the rewritten image's path is the mirror's, not the one the author listed."""
    ephemeral = sub_resource == EPHEMERAL
    notes: list[str] = []
    copy_it = DEBUG_COPY.format(pod=pod_name)
    if mirror.pull_secret and mirror.pull_secret not in secrets:
        return (record.NO_SECRET, (
            f"mirror {mirror.host} needs the pull secret {mirror.pull_secret!r}, which "
            "this pod does not have (spec.imagePullSecrets cannot change after "
            f"creation); a pod needs imagePullSecrets [{{name: {mirror.pull_secret}}}] "
            "from its creation to use this mirror (the webhook adds it then): "
            + (copy_it if ephemeral else "recreate the pod"))), notes
    for key, needed, listed, how, word in (
            (dialect.http_key, mirror.plain_http, pod_layer.http_registries,
             "plain HTTP", record.NO_HTTP),
            (dialect.insecure_key, mirror.skips_verification,
             pod_layer.insecure_registries, "TLS without verification", record.NO_INSECURE)):
        if needed and key is None:
            notes.append(dialect.cannot_say(mirror.host, how))
        elif needed and ALL_REGISTRIES not in listed and not any(
                mirror.is_host(entry) for entry in listed if "/" not in entry):
            need = f"mirror {mirror.host} is reached over {how}, and this pod's {key} "
            if ephemeral:
                return (word, need + "does not list it (annotations cannot change through "
                        f"the ephemeralcontainers subresource); a pod needs {key}: "
                        f"{mirror.host} from its creation to use this mirror (the webhook "
                        "adds it then): " + copy_it), notes
            return (word, need + f"does not list it; add {mirror.host} to the pod's {key} (in "
                    "this update or before it) to use the mirror"), notes
    if pin is not None:
        return (record.NO_ALIAS, _pin_fix(mirror, pin, dialect, ephemeral=ephemeral,
                                          copy_it=copy_it)), notes
    return None, notes


def _pin_fix(mirror: Mirror, pin: HostAlias, dialect: Dialect, *, ephemeral: bool,
             copy_it: str) -> str:
    """The reason a pod without the platform's alias of a mirror's host may not start
    pulling from it on UPDATE (its own resolver would answer for the name), and the fix."""
    name = pin.hostnames[0]
    need = (f"the platform aliases mirror {mirror.host}'s host {name!r} to {pin.ip}, and "
            "this pod's ")
    key = dialect.hosts_key
    if key is None:
        return (need + "spec.hostAliases does not (it cannot change after creation); the "
                "webhook adds the alias to a pod that pulls from the mirror at its creation: "
                + (copy_it if ephemeral else "recreate the pod"))
    if ephemeral:
        return (need + f"{key} does not (annotations cannot change through the "
                f"ephemeralcontainers subresource); the webhook adds it at creation: "
                + copy_it)
    return (need + f"{key} does not; add {name} at {pin.ip} to the pod's {key} (in this "
            "update or before it) to use the mirror")


__all__ = ["EPHEMERAL", "SUBRESOURCES", "WATCHED", "changes_nothing", "mutate_update",
           "targets", "update_questions"]
