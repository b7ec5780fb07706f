"""What an UPDATE's patch may touch: the image fields that update may change, putting back
what the stored pod has under an annotation an UPDATE watches, and (a plain UPDATE) the
per-container record with the words of the images it brings.

The API server would refuse the whole update (or silently drop a change made through the
`ephemeralcontainers` subresource) for anything else, and a patch may never give a pod an
annotation value its author did not write or the webhook did not verify. The rule is
checked on every UPDATE patch before it is answered (`webhook.core.admission.dispatch`): a
bug in the mutation must never reach the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jsonpointer import escape

from webhook.core.admission.patch import Op, PatchMismatch
from webhook.core.mutation.update import EPHEMERAL, WATCHED
from webhook.core.values.keys import IMAGE_RECORD

# What each kind of UPDATE may patch: the image fields the API server lets it change.
_PATCHABLE = {"": re.compile(r"/spec/(?:initContainers|containers)/\d+/image"),
              EPHEMERAL: re.compile(r"/spec/ephemeralContainers/\d+/image")}
# A plain UPDATE may also put back what the stored pod has under the watched keys (the
# record, `kept_record`; an invalid value under `onInvalid: warn`, `kept_as_stored`): one
# such annotation, or the annotations map holding nothing else when the update left none.
_ANNOTATIONS_PATH = "/metadata/annotations"
_RESTORABLE = {f"{_ANNOTATIONS_PATH}/{escape(key)}": key for key in WATCHED}


def check_patch_scope(ops: list[Op], sub_resource: str, *, old: object,
                      record: str | None = None) -> None:
    """Every op of an UPDATE's patch must touch an image field that update may change, or
    (a plain UPDATE) put back exactly what the stored pod `old` has under one of the
    annotations an UPDATE watches (the record of original images, a KCI annotation): the
    API server would refuse the whole update (or silently drop a change through the
    subresource) otherwise, and a patch may never give a pod an annotation value that its
    author did not write or the webhook did not verify. `record`: the per-container record
    this UPDATE's own images give (`kci-webhook/images`, the stored one with their words
    replaced), which a plain UPDATE's patch may write. A bug here must never reach the
    cluster."""
    allowed = _PATCHABLE[sub_resource]
    stored = dict(_annotations(old)) if sub_resource == "" else {}
    if record is not None:    # the record a plain UPDATE's images give (updated_record)
        stored[IMAGE_RECORD] = record
    for op in ops:
        kind, path = op["op"], op["path"]
        if kind == "replace" and allowed.fullmatch(path):
            continue
        if sub_resource == "" and _puts_back(op, stored):
            continue
        raise PatchMismatch(f"an UPDATE ({sub_resource or 'pods'}) may not patch "
                            f"{kind} {path}")


def _puts_back(op: Op, stored: Mapping[str, Any]) -> bool:
    """Whether `op` restores a watched annotation to the stored pod's value (or removes one
    the stored pod lacks), or adds the whole annotations map holding only such values."""
    kind, path, value = op["op"], op["path"], op.get("value")
    key = _RESTORABLE.get(path)
    if key is not None:
        if kind == "remove":
            return key not in stored
        return kind in ("add", "replace") and key in stored and stored[key] == value
    return (path == _ANNOTATIONS_PATH and kind in ("add", "replace")
            and isinstance(value, dict) and bool(value)
            and all(key in WATCHED and key in stored and stored[key] == item
                    for key, item in value.items()))


def _annotations(pod: object) -> Mapping[str, Any]:
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else {}


__all__ = ["check_patch_scope"]
