"""The AdmissionReview envelope: decode a request, build and encode the answer.

The webhook never sees HTTP here: `decode` takes the body's bytes (or raises `BadRequest`,
which the transport turns into a 4xx) and `answer` builds the response's bytes as a plain
dict in the version the request came in (`admission.k8s.io/v1` or `v1beta1`), echoing the
`uid`, with its warnings bounded (the API server shows each one to the client). What to
answer is decided in `webhook.core.admission.dispatch`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.core.errors import BadRequest

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
# The largest review the API server can send for an object it accepts: an UPDATE carries
# two objects (object and oldObject), each up to its request limit of 3 MiB. It writes
# JSON with Go's encoding/json, which escapes `<`, `>` and `&` as `\u003c` (6 bytes for 1):
# an object made of them grows six-fold on the way to us. 2 x 3 MiB x 6 = 36 MiB, plus
# 1 MiB for the envelope (uid, kind, userInfo, options): 37 MiB. A smaller cap would
# refuse a pod that can be created (1.24 MiB of `<` is 7.4 MiB escaped) or, worse, one
# whose UPDATE could never pass again (finalizers stuck). Memory stays bounded by the
# body budget (webhook.server.transport.ByteBudget), not by this cap.
DEFAULT_MAX_BODY_BYTES = (2 * 3 * 6 + 1) * 1024 * 1024
MAX_WARNINGS = 20          # the API server shows each one to the client; keep it readable
MAX_WARNING_CHARS = 512
MAX_MESSAGE_CHARS = 4096
# A request body as the transport holds it: a bytearray it read into (a copy into bytes
# would hold a 37 MiB body twice), or bytes. orjson reads either.
Body = bytes | bytearray


@dataclass(slots=True)
class Decision:
    """The answer and what the shell needs for logs and metrics."""

    body: bytes
    outcome: str                # mutated | unchanged | denied | skipped | error
    uid: str = ""
    namespace: str = ""
    kind: str = ""              # of the object: Pod, or the workload /validate judged
    name: str = ""
    operation: str = ""
    sub_resource: str = ""
    warnings: list[str] = field(default_factory=list)
    rewritten: dict[str, tuple[str, str]] = field(default_factory=dict)
    message: str = ""
    # The record's word per container judged (webhook.core.mutation.record), and the
    # Events the shell sends after answering (webhook.core.admission.events).
    words: dict[str, str] = field(default_factory=dict)
    events: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    """What the webhook reads of an AdmissionReview's request."""

    api_version: str
    uid: str
    kind: str
    group: str
    resource: str
    sub_resource: str
    operation: str
    namespace: str
    object: Any
    old_object: Any = None
    dry_run: bool = False      # the answer is the same; nothing else may follow from it


def decode(body: Body) -> Request:
    """Parse and check the envelope; anything that is not an AdmissionReview is a BadRequest."""
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(review, dict):
        raise BadRequest("body is not a JSON object")
    api_version = review.get("apiVersion")
    if review.get("kind") != "AdmissionReview" or api_version not in API_VERSIONS:
        raise BadRequest("expected kind AdmissionReview with apiVersion "
                         f"{' or '.join(API_VERSIONS)}, got kind={review.get('kind')!r} "
                         f"apiVersion={api_version!r}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadRequest("AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadRequest("request.uid must be a non-empty string")
    kind = _mapping(request.get("kind"))
    resource = _mapping(request.get("resource"))
    return Request(
        api_version=str(api_version), uid=uid,
        kind=_text(kind.get("kind")), group=_text(kind.get("group")),
        resource=_text(resource.get("resource")), sub_resource=_text(request.get("subResource")),
        operation=_text(request.get("operation")), namespace=_text(request.get("namespace")),
        object=request.get("object"), old_object=request.get("oldObject"),
        dry_run=request.get("dryRun") is True,
    )


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def pod_name(obj: object) -> str:
    """How logs and answers name the object: its name, else its generateName."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return ""
    return _text(meta.get("name")) or _text(meta.get("generateName"))


def answer(request: Request, outcome: str, *, allowed: bool, message: str = "",
           name: str = "", warnings: list[str] | None = None,
           patch_ops: list[dict[str, Any]] | None = None,
           audit: dict[str, str] | None = None) -> Decision:
    """The encoded AdmissionReview response, and the Decision that carries it; a denial
    says why with code 403; warnings and the message are bounded."""
    warnings = _bounded(warnings or [])
    response: dict[str, Any] = {"uid": request.uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "status": "Failure",
                              "message": _clip(message, MAX_MESSAGE_CHARS)}
    if patch_ops:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(patch_ops)).decode()
    if warnings:
        response["warnings"] = warnings
    if audit:
        response["auditAnnotations"] = audit
    body = orjson.dumps({"apiVersion": request.api_version, "kind": "AdmissionReview",
                         "response": response})
    return Decision(body=body, outcome=outcome, uid=request.uid, namespace=request.namespace,
                    kind=request.kind, name=name, operation=request.operation,
                    sub_resource=request.sub_resource, warnings=warnings, message=message)


def errored(request_body: Body, message: str) -> bytes:
    """A response for an unexpected failure: still an AdmissionReview carrying the uid when
    one can be read, refusing with code 500 (the API server then reports the message)."""
    try:
        request = decode(request_body)
    except BadRequest:
        return orjson.dumps({"error": message})
    response = {"uid": request.uid, "allowed": False,
                "status": {"code": 500, "reason": "InternalError", "status": "Failure",
                           "message": _clip(message, MAX_MESSAGE_CHARS)}}
    return orjson.dumps({"apiVersion": request.api_version, "kind": "AdmissionReview",
                         "response": response})


def _bounded(warnings: list[str]) -> list[str]:
    """Each warning once, clipped, at most MAX_WARNINGS of them (the last says how many
    more there were)."""
    out = [_clip(w, MAX_WARNING_CHARS) for w in dict.fromkeys(warnings)]
    if len(out) > MAX_WARNINGS:
        out = out[:MAX_WARNINGS - 1] + [f"... and {len(out) - MAX_WARNINGS + 1} more warnings"]
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
