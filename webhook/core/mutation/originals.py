"""The record of original images, `kci-webhook/original-images`: what the webhook saw,
whatever the pod arrived with, and a record an UPDATE cannot change.

A platform rule like those of `webhook.core.mutation.rules`: a pod author can neither forge
the record at creation (only an entry this config's rewrite reproduces is kept) nor rewrite
it later with `kubectl annotate` (the stored value is put back).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from webhook.core.config import Config
from webhook.core.mutation.images import Pod, container_images, rewrites_to
from webhook.core.values.keys import IMAGE_RECORD, ORIGINAL_IMAGES
from webhook.core.values.size import MAX_ANNOTATIONS_BYTES

# The records the webhook writes at creation and an UPDATE may not change.
RECORDS = (ORIGINAL_IMAGES, IMAGE_RECORD)


def record_originals(annotations: dict[str, Any], seen: Pod,
                      rewritten: dict[str, tuple[str, str]], config: Config,
                      warnings: list[str]) -> None:
    """Record each rewritten container's image as the webhook saw it.

    A pod may arrive with this annotation already: the webhook's own, when it is called
    again on its output, or one its author wrote. Only an entry that this config's
    rewrite of it gives exactly the container's current image is the webhook's own and
    is kept (re-invocation must not forget the true original); any other entry is
    replaced by the image seen, or dropped when it names no container."""
    if ORIGINAL_IMAGES not in annotations:   # the first pass, usually: nothing claimed
        annotations[ORIGINAL_IMAGES] = orjson.dumps(
            {name: old for name, (old, _new) in rewritten.items()}).decode()
        return
    claimed = _claimed_originals(annotations[ORIGINAL_IMAGES], warnings)
    images_seen = container_images(seen) if claimed else {}
    originals: dict[str, str] = {}
    for name, original in claimed.items():
        image = images_seen.get(name)
        if image is None:
            warnings.append(f"{ORIGINAL_IMAGES}: no container {name[:100]!r}; entry dropped")
        elif original == image or rewrites_to(original, image, config):
            originals[name] = original
        else:
            warnings.append(f"{ORIGINAL_IMAGES}: container {name[:100]!r} was not rewritten "
                            f"from {original[:300]!r}; recorded as seen")
            originals[name] = image
    for name, (old, _new) in rewritten.items():
        originals[name] = old
    if originals:
        annotations[ORIGINAL_IMAGES] = orjson.dumps(originals).decode()
    else:
        annotations.pop(ORIGINAL_IMAGES, None)


def kept_record(annotations: Mapping[str, Any], before: Mapping[str, Any],
                warnings: list[str], *, record: str | None = None) -> dict[str, Any] | None:
    """On UPDATE: `annotations` with the stored pod's records — of original images and of
    what happened to each image (`kci-webhook/images`) — put back (or dropped, if the
    stored pod had none), or None when the update leaves them as they were. The records
    were written at creation; `kubectl annotate` may not rewrite history afterwards.
    Restored rather than refused, so the rest of the update (a label, a finalizer's
    removal) still goes through. `record`: the record this update's own images give
    (`webhook.core.mutation.record.updated_record`), written in place of the stored one."""
    kept: dict[str, Any] | None = None
    for key in RECORDS:
        old, new = before.get(key), annotations.get(key)
        target = record if key == IMAGE_RECORD and record is not None else old
        if new == target:
            continue
        if kept is None:
            kept = dict(annotations)
        if target is None:
            del kept[key]
        else:
            kept[key] = target
        if new != old:
            warnings.append(f"{key}: recorded by the webhook when the pod was created; "
                            "an update may not change it (kept as it was)")
    return kept


def _claimed_originals(value: object, warnings: list[str]) -> dict[str, str]:
    """The incoming record as container → image, or nothing (with a warning) when it is
    not the JSON object of strings the webhook writes. A record longer than the API
    server lets all annotations be cannot come from a pod it admitted."""
    if isinstance(value, str) and len(value) <= MAX_ANNOTATIONS_BYTES:
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict) and all(isinstance(v, str) for v in decoded.values()):
            return decoded
    warnings.append(f"{ORIGINAL_IMAGES}: not a JSON object of container name to image; "
                    "replaced")
    return {}


__all__ = ["RECORDS", "kept_record", "record_originals"]
