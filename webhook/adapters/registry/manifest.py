"""The question a presence check asks a mirror, and the answer it gets.

The question is containerd's first one when it resolves an image:
`HEAD /v2/<namespace>/<repository>/manifests/<tag|digest>` with the OCI and Docker
manifest `Accept` types. The answer is a `Presence`: present, absent, or error with a
detail that says why in the words a person searches for (`x509: certificate signed by
unknown authority`, `401 unauthorized`, `timeout after 1s`). Errors are never taken for
absent: the caller keeps the original image either way, but only absent is a fact worth
caching.

No I/O here: `kci-webhook doctor` reads these without loading the HTTP client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from webhook.core.reference import Reference

# What containerd's resolver accepts for a manifest (index/list first, as it asks).
MANIFEST_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "*/*",
))

# "unanswered": no answer came (the admission's budget ended, the lookup was cancelled);
# like an error, the image is kept, but nothing is said about the mirror.
Status = Literal["present", "absent", "error", "unanswered"]


@dataclass(frozen=True, slots=True)
class Presence:
    """The mirror's answer. `detail` says why, for a warning or a log line (empty when
    present); `digest` is the manifest digest the mirror reported, when present;
    `timed_out`: the error or the missing answer is a clock's (the lookup's timeout, the
    admission's budget), which the server counts apart from other failures. Not part of
    the answer's identity: two answers with the same words are the same answer."""

    status: Status
    detail: str = ""
    digest: str | None = None
    timed_out: bool = field(default=False, compare=False)

    @property
    def present(self) -> bool:
        return self.status == "present"


def manifest_reference(ref: Reference) -> str:
    """What to ask the mirror for: the digest when pinned (what containerd pulls), else the
    tag, else "latest" (the reference grammar does not add it; the pull does)."""
    return ref.digest or ref.tag or "latest"
