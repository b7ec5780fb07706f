"""Which Kubernetes Events an admission asks for: pure data, sent later by the shell.

Admission warnings reach whoever sent the request, and a ReplicaSet's pods are sent by its
controller, not a person; so what needs a person is also said where `kubectl describe`
shows it, as an Event (`events.k8s.io/v1`):

    reason                   when                                            action
    MirrorLacksImage         an `if-present` mirror lacks an image: kept      KeepImage
    MirrorUnanswered         it did not answer in time, or the check failed   KeepImage
    MirrorUnusable           (UPDATE, kubectl debug) the pod cannot use it    KeepImage
    NamespaceDefaultIgnored  a namespace default ignored as invalid/refused   IgnoreDefault
    AnnotationIgnored        a pod annotation ignored under onInvalid: warn   IgnoreAnnotation

A pod being created has no uid yet and, made by a controller, no name either: each Event
is put on the pod's owner (the controller of its `ownerReferences`, else the first; a
Node, the owner of a static pod's mirror, is cluster-scoped and skipped) and on the pod
itself when it has a name. Never on a dry run. The owner is whatever the pod says: a pod
author can put an Event on another object of its own namespace, no more (the namespace
is the request's, never the object's).

The shell (`webhook.server.events`, `webhook.adapters.events`) names, times, aggregates
and sends them, off the admission's path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from webhook.core.admission.envelope import Request
from webhook.core.mutation import record
from webhook.core.mutation.context import MutationResult
from webhook.core.mutation.images import container_key

WARNING = "Warning"
# The API's limits on an Event (pkg/apis/core/validation/events.go): note 1 KiB, in bytes.
MAX_NOTE_BYTES = 1024
# What the object's fields must look like before they go into an Event: names as the API
# has them (DNS-1123 subdomains), a kind, an apiVersion, a uid of sane length.
_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_API_VERSION = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?v[0-9][a-z0-9]{0,20}")
_UID = re.compile(r"[A-Za-z0-9-]{1,128}")
_CLUSTER_SCOPED_OWNERS = frozenset({"Node"})

# The record's words that need a person → (reason, what happened, in the note's words).
_KEPT = {
    record.ABSENT: ("MirrorLacksImage", "the if-present mirror does not have the image"),
    record.TIMEOUT: ("MirrorUnanswered", "the if-present mirror did not answer in time"),
    record.CHECK_FAILED: ("MirrorUnanswered", "checking the if-present mirror failed"),
    record.NOT_CHECKED: ("MirrorUnanswered", "not checked: the lookup limit was reached"),
    record.NO_SECRET: ("MirrorUnusable", "the pod lacks the mirror's pull secret"),
    record.NO_HTTP: ("MirrorUnusable", "the pod does not list the mirror as HTTP"),
    record.NO_INSECURE: ("MirrorUnusable", "the pod does not list the mirror as insecure"),
    record.NO_ALIAS: ("MirrorUnusable", "the pod lacks the platform's alias of the mirror"),
}


@dataclass(frozen=True, slots=True)
class Regarding:
    """The object an Event is about, as the Event's `regarding` names it."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str = ""


@dataclass(frozen=True, slots=True)
class EventIntent:
    """One Event to send: about `regarding`, `reason` (one per object and reason, counted
    by the shell), `action`, a `note` within the API's limit, `type` Warning."""

    regarding: Regarding
    reason: str
    action: str
    note: str
    type: str = WARNING


def events_for(request: Request, outcome: MutationResult) -> tuple[EventIntent, ...]:
    """The Events a pod's admission asks for (none on a dry run or with nothing to say)."""
    if request.dry_run or not request.namespace:
        return ()
    findings = _findings(request, outcome)
    if not findings:
        return ()
    targets = regarding_for(request.object, request.namespace)
    return tuple(EventIntent(target, reason, action, _clip(note))
                 for target in targets for reason, action, note in findings)


def _findings(request: Request, outcome: MutationResult) -> list[tuple[str, str, str]]:
    """(reason, action, note) for each thing that needs a person, the pod named first."""
    kept: dict[str, list[str]] = {}
    for container, word in outcome.words.items():
        if word in _KEPT:
            kept.setdefault(word, []).append(container)
    if not (kept or outcome.ignored or outcome.namespace_ignored):
        return []
    pod = _pod_label(request.object)
    found: list[tuple[str, str, str]] = []
    if kept:
        images = _images(request.object)
        by_reason: dict[str, list[str]] = {}
        for word, containers in kept.items():
            reason, why = _KEPT[word]
            listed = ", ".join(f"{name} ({images.get(name, '?')[:200]})" for name in containers)
            by_reason.setdefault(reason, []).append(f"{why}: {listed}")
        for reason, parts in by_reason.items():
            found.append((reason, "KeepImage",
                          f"{pod}: image kept on its own registry, {'; '.join(parts)}"))
    if outcome.namespace_ignored:
        found.append(("NamespaceDefaultIgnored", "IgnoreDefault",
                      f"{pod}: namespace default ignored: "
                      + "; ".join(outcome.namespace_ignored)))
    if outcome.ignored:
        found.append(("AnnotationIgnored", "IgnoreAnnotation",
                      f"{pod}: annotation ignored (onInvalid: warn): "
                      + "; ".join(outcome.ignored)))
    return found


def regarding_for(pod: object, namespace: str) -> list[Regarding]:
    """The pod's owner (when it names a valid one) and the pod (when it has a name)."""
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    if not isinstance(meta, dict):
        return []
    targets = []
    owner = _owner(meta.get("ownerReferences"), namespace)
    if owner is not None:
        targets.append(owner)
    name, uid = meta.get("name"), meta.get("uid")
    if _valid(_NAME, name):
        targets.append(Regarding("v1", "Pod", str(name), namespace,
                                 str(uid) if _valid(_UID, uid) else ""))
    return targets


def _owner(references: object, namespace: str) -> Regarding | None:
    """The controller among the owner references, else the first, if well formed."""
    if not isinstance(references, list):
        return None
    chosen = None
    for reference in references:
        if isinstance(reference, dict):
            if reference.get("controller") is True:
                chosen = reference
                break
            if chosen is None:
                chosen = reference
    if chosen is None:
        return None
    api_version, kind = chosen.get("apiVersion"), chosen.get("kind")
    name, uid = chosen.get("name"), chosen.get("uid")
    if (_valid(_API_VERSION, api_version) and _valid(_KIND, kind) and _valid(_NAME, name)
            and _valid(_UID, uid) and kind not in _CLUSTER_SCOPED_OWNERS):
        return Regarding(str(api_version), str(kind), str(name), namespace, str(uid))
    return None


def _valid(pattern: re.Pattern[str], value: object) -> TypeGuard[str]:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _pod_label(pod: object) -> str:
    """How a note names the pod: `pod NAME`, or `pod PREFIX*` for a generated name."""
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    name, prefix = meta.get("name"), meta.get("generateName")
    if isinstance(name, str) and name:
        return f"pod {name[:253]}"
    if isinstance(prefix, str) and prefix:
        return f"pod {prefix[:253]}*"
    return "pod"


def _images(pod: object) -> Mapping[str, str]:
    """Container (named as the record names it) → image, ephemeral containers included."""
    spec = pod.get("spec") if isinstance(pod, dict) else None
    images: dict[str, str] = {}
    if not isinstance(spec, dict):
        return images
    for list_name in ("initContainers", "containers", "ephemeralContainers"):
        items = spec.get(list_name)
        for index, container in enumerate(items if isinstance(items, list) else ()):
            if isinstance(container, dict) and isinstance(container.get("image"), str):
                images[container_key(container, list_name, index)] = container["image"]
    return images


def _clip(note: str) -> str:
    """Within the API's 1 KiB (in UTF-8 bytes), cut at a character boundary."""
    data = note.encode()
    if len(data) <= MAX_NOTE_BYTES:
        return note
    return data[:MAX_NOTE_BYTES - 3].decode(errors="ignore") + "..."


def event_fields(intent: EventIntent) -> dict[str, Any]:
    """The intent's fields as the Event's JSON has them (the shell adds name and times)."""
    regarding = {"apiVersion": intent.regarding.api_version, "kind": intent.regarding.kind,
                 "name": intent.regarding.name, "namespace": intent.regarding.namespace}
    if intent.regarding.uid:
        regarding["uid"] = intent.regarding.uid
    return {"regarding": regarding, "reason": intent.reason, "action": intent.action,
            "note": intent.note, "type": intent.type}


__all__ = ["EventIntent", "Regarding", "event_fields", "events_for", "regarding_for"]
