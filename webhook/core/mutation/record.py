"""The per-container record, `kci-webhook/images`: what happened to each container's image
and why, in a short fixed vocabulary that people and tools read back.

    {"v":1,"c":{"app":"mirror:172.18.0.20:5000","sidecar":"kept:no-mirror"}}

`v` is the format's version (a reader that does not know it should not guess); `c` maps
each container (by name, else `initContainers[0]`-style, as the record of original images
names them) to one word:

    mirror:<host>          pulls from the mirror at <host>: rewritten to it (or already so)
    kept:no-mirror         no mirror serves the image's registry
    kept:absent            the `if-present` mirror does not have the image
    kept:timeout           the `if-present` mirror did not answer within the budget
    kept:check-failed      asking the `if-present` mirror failed (TLS, auth, 5xx, cool-down)
    kept:not-checked       not asked: the admission's lookup limit was reached
    kept:invalid           the image reference is not valid
    kept:invalid-on-mirror the reference would not be valid on the mirror (too long)
    kept:off               mirrors are off for the pod or its namespace
    kept:no-secret         (UPDATE, kubectl debug) the pod lacks the mirror's pull secret
    kept:no-http           (UPDATE, kubectl debug) the pod does not list the mirror as HTTP
    kept:no-insecure       (UPDATE, kubectl debug) ... nor as insecure
    kept:no-alias          (UPDATE, kubectl debug) the pod lacks the platform's alias of it

Every word is recomputed on every pass from the pod and this config: a record the pod
arrives with at creation is never read, so its author cannot forge one (whatever it says
is replaced), and a second pass over the webhook's own output computes the same bytes (its
images are on the mirror now: `mirror:<host>` again), so re-invocation patches nothing.
A plain UPDATE replaces the words of the containers whose image it brings in the stored
pod's record (`updated_record`); any other change to the record is undone
(`webhook.core.mutation.originals.kept_record`). Through `ephemeralcontainers` no
annotation can change: what `kubectl debug` did is in the audit annotation only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from webhook.core.values.keys import IMAGE_RECORD
from webhook.core.values.size import MAX_ANNOTATIONS_BYTES

VERSION = 1
MIRROR = "mirror:"          # + the mirror's host[:port]
NO_MIRROR = "kept:no-mirror"
ABSENT = "kept:absent"
TIMEOUT = "kept:timeout"
CHECK_FAILED = "kept:check-failed"
NOT_CHECKED = "kept:not-checked"
INVALID = "kept:invalid"
INVALID_ON_MIRROR = "kept:invalid-on-mirror"
OFF = "kept:off"
NO_SECRET = "kept:no-secret"
NO_HTTP = "kept:no-http"
NO_INSECURE = "kept:no-insecure"
NO_ALIAS = "kept:no-alias"
WORDS = (NO_MIRROR, ABSENT, TIMEOUT, CHECK_FAILED, NOT_CHECKED, INVALID, INVALID_ON_MIRROR,
         OFF, NO_SECRET, NO_HTTP, NO_INSECURE, NO_ALIAS)

# How the shell words a presence answer's "why not" (webhook.server.mirrors): the word
# is read back from its beginning, so the answers stay a (present, why not) pair.
ABSENT_DETAIL = "does not have it"
FAILED_DETAIL = "check failed: "


def presence_word(detail: str) -> str:
    """The record's word for an `if-present` mirror that did not give the image."""
    if not detail:
        return NOT_CHECKED
    if detail.startswith(ABSENT_DETAIL):
        return ABSENT
    if detail.startswith(FAILED_DETAIL):
        return CHECK_FAILED
    return TIMEOUT


def record_text(words: Mapping[str, str]) -> str:
    """The annotation's value: compact JSON, containers in pod order."""
    return orjson.dumps({"v": VERSION, "c": words}).decode()


def read_record(value: object) -> dict[str, str]:
    """The words of a record as the webhook wrote it, or nothing when `value` is not one
    (another version, or not this shape)."""
    if isinstance(value, str) and len(value) <= MAX_ANNOTATIONS_BYTES:
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        if isinstance(decoded, dict) and decoded.get("v") == VERSION:
            words = decoded.get("c")
            if isinstance(words, dict) and all(isinstance(w, str) for w in words.values()):
                return words
    return {}


def updated_record(stored: object, words: Mapping[str, str]) -> str:
    """A plain UPDATE's record: the stored pod's (written at its creation and kept since),
    with the word of each container whose image this update brought replaced."""
    return record_text({**read_record(stored), **words})


def write_record(annotations: dict[str, Any], words: Mapping[str, str]) -> None:
    """Put the record into `annotations` (a new dict of the mutation's own): replaced
    whole, whatever the pod arrived with."""
    text = record_text(words)
    if annotations.get(IMAGE_RECORD) != text:
        annotations[IMAGE_RECORD] = text


__all__ = ["ABSENT", "CHECK_FAILED", "INVALID", "INVALID_ON_MIRROR", "MIRROR", "NOT_CHECKED",
           "NO_ALIAS", "NO_HTTP", "NO_INSECURE", "NO_MIRROR", "NO_SECRET", "OFF", "TIMEOUT",
           "VERSION", "WORDS", "presence_word", "read_record", "record_text", "updated_record",
           "write_record"]
