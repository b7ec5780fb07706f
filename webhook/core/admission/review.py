"""AdmissionReview in and out: decode, decide, patch, self-check, encode.

The handler never sees HTTP: it takes the body's bytes and returns the response's bytes
(or raises `BadRequest`, which the transport turns into a 4xx). Pod CREATE is mutated
(`webhook.core.mutation.create`); a Pod UPDATE, of the pod itself or of its `ephemeralcontainers`
subresource, gets the images it brings rewritten (`webhook.core.mutation.update`); everything else —
`pods/status` and other subresources included — is admitted unchanged. Responses are built
as plain dicts in the version the request came in (`admission.k8s.io/v1` or `v1beta1`),
echoing the `uid`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.core.admission import patch
from webhook.core.admission.scope import check_patch_scope
from webhook.core.admission.workloads import (
    TEMPLATE_PATHS,
    WORKLOAD_GROUPS,
    pod_template,
    template_as_pod,
)
from webhook.core.config import Mirror
from webhook.core.errors import BadRequest, InvalidInput
from webhook.core.mutation import update as updates
from webhook.core.mutation.create import Context, Outcome, mutate, presence_questions
from webhook.core.mutation.images import NO_ANSWER, Availability
from webhook.core.reference import Reference

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


@dataclass(frozen=True, slots=True)
class Request:
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


def decode(body: bytes) -> Request:
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


def admit(body: bytes, *, context_for: Callable[[str], Context]) -> Decision:
    """Answer one AdmissionReview. `context_for(namespace)` supplies config and defaults."""
    request = decode(body)
    return admit_request(request, context_for(request.namespace))


# (mirror, source reference, image): one thing to ask a `policy: if-present` mirror
Question = tuple[Mirror, Reference, str]


def questions(request: Request, ctx: Context) -> list[Question]:
    """What to ask `policy: if-present` mirrors before `admit_request` (none: ask nothing)."""
    if _is_pod_update(request):
        return updates.update_questions(request.object, request.old_object, ctx,
                                        sub_resource=request.sub_resource)
    if not _is_pod_create(request) or not isinstance(request.object, dict):
        return []
    return presence_questions(request.object, ctx)


def judge(request: Request, ctx: Context, asked: list[Question]) -> Decision | list[Question]:
    """Before any mirror is asked: the mutation with no answer at all (every `if-present`
    mirror as if it did not answer), noting which questions it consults. A pod it refuses
    is answered now, and no lookup is started for it: this is the answer the webhook gives
    whenever the mirrors do not answer. Otherwise, the questions the mutation really
    consults, in pod order (none when the pod or its namespace turns mirrors off).
    Called only when `questions` found some: a pod with no `if-present` mirror to ask
    is mutated once."""
    consulted = _Consulted()
    refusal = _refusal(request, lambda: _mutation(request, ctx, consulted))
    if isinstance(refusal, Decision):
        return refusal
    return [q for q in asked if (q[0].endpoint, q[2]) in consulted.asked]


class _Consulted(Mapping[tuple[str, str], tuple[bool, str]]):
    """Availability that answers no question (silently: `NO_ANSWER`) and notes each one
    asked of it. Only `get` is used by the mutation; it holds no entries."""

    def __init__(self) -> None:
        self.asked: dict[tuple[str, str], None] = {}

    def __getitem__(self, key: tuple[str, str]) -> tuple[bool, str]:
        self.asked[key] = None
        return NO_ANSWER

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _mutation(request: Request, ctx: Context, availability: Availability | None) -> Outcome:
    """The mutation a request with `questions` gets: a pod CREATE's, or an UPDATE's."""
    if _is_pod_create(request):
        return mutate(request.object, ctx, availability=availability)
    return updates.mutate_update(request.object, request.old_object, ctx,
                                 sub_resource=request.sub_resource, availability=availability)


def admit_request(request: Request, ctx: Context, *, availability: Availability | None = None,
                  notes: Sequence[str] = ()) -> Decision:
    """Answer a decoded AdmissionReview; `availability` answers `questions(request, ctx)`;
    `notes`: warnings of the shell's own (about the asking), shown first."""
    if _is_pod_create(request):   # the common case first: every pod passes here once
        return _decide(request, lambda: mutate(request.object, ctx, availability=availability),
                       notes=notes)
    if _is_pod_update(request):
        sub_resource = request.sub_resource
        if updates.changes_nothing(request.object, request.old_object, sub_resource):
            return _answer(request, "unchanged", allowed=True, name=_pod_name(request.object))
        return _decide(request, lambda: updates.mutate_update(
            request.object, request.old_object, ctx, sub_resource=sub_resource,
            availability=availability), scope=sub_resource, notes=notes)
    return _answer(request, "skipped", allowed=True)


def _decide(request: Request, decide: Callable[[], Outcome], *,
            scope: str | None = None, notes: Sequence[str] = ()) -> Decision:
    """The answer for a mutation's outcome; `scope`: the UPDATE whose patch rules apply."""
    outcome = _refusal(request, decide, notes=notes)
    if isinstance(outcome, Decision):
        return outcome
    warnings = [*notes, *outcome.warnings]
    name = _pod_name(request.object)
    if outcome.pod is request.object:
        return _answer(request, "skipped" if outcome.skipped else "unchanged", allowed=True,
                       warnings=warnings, name=name)
    return _patched(request, outcome, name, scope=scope, warnings=warnings)


def _refusal(request: Request, decide: Callable[[], Outcome], *,
             notes: Sequence[str] = ()) -> Decision | Outcome:
    """The denial answer when the mutation refuses the object, else its outcome."""
    try:
        outcome = decide()
    except InvalidInput as exc:
        return _answer(request, "denied", allowed=False, message=str(exc),
                       name=_pod_name(request.object), warnings=list(notes))
    if outcome.denial:
        return _answer(request, "denied", allowed=False, message=outcome.denial,
                       name=_pod_name(request.object), warnings=[*notes, *outcome.warnings])
    return outcome


def validate(body: bytes, *, context_for: Callable[[str], Context]) -> Decision:
    """The validating webhook for workloads: their pod template's KCI annotations are
    checked with the same code as a pod's, so `kubectl apply` fails at once with the
    message a pod would get, instead of a controller whose pods never appear.

    On UPDATE, the old template is judged too, under the same (current) context: when
    it would be denied as well, the object predates the rule and stays editable (labels,
    image bumps), admitted with the problem as a warning; when it would not, this edit
    introduces the problem — through an annotation or anything else the outcome depends
    on (spec.dnsConfig, other annotations' size) — and is refused.
    """
    request = decode(body)
    if (request.operation not in ("CREATE", "UPDATE") or request.sub_resource
            or request.kind not in TEMPLATE_PATHS
            or request.group != WORKLOAD_GROUPS[request.kind]):
        return _answer(request, "skipped", allowed=True)
    template = pod_template(request.object, request.kind)
    if template is None:
        return _answer(request, "skipped", allowed=True)
    name = _pod_name(request.object)
    ctx = context_for(request.namespace)
    try:
        outcome = mutate(template_as_pod(template, request.namespace), ctx)
    except InvalidInput as exc:
        return _answer(request, "denied", allowed=False, name=name,
                       message=f"pod template: {exc}")
    if outcome.denial and not _old_template_denied(request, ctx):
        return _answer(request, "denied", allowed=False, message=outcome.denial, name=name,
                       warnings=outcome.warnings)
    warnings = [*([outcome.denial] if outcome.denial else []), *outcome.warnings]
    return _answer(request, "unchanged", allowed=True, warnings=warnings, name=name)


def _old_template_denied(request: Request, ctx: Context) -> bool:
    """Whether the object as it was would be denied now: only then is a denial of the new
    one not this edit's doing. Asked only when the new template is denied."""
    if request.operation != "UPDATE":
        return False
    old = pod_template(request.old_object, request.kind)
    if old is None:
        return False
    try:
        return mutate(template_as_pod(old, request.namespace), ctx).denial is not None
    except InvalidInput:
        return True


def _is_pod(request: Request, operation: str) -> bool:
    return (request.operation == operation and request.kind == "Pod" and request.group == ""
            and request.resource in ("pods", ""))


def _is_pod_create(request: Request) -> bool:
    return _is_pod(request, "CREATE") and not request.sub_resource


def _is_pod_update(request: Request) -> bool:
    """An UPDATE of a pod or of its ephemeral containers, with the pod before it to compare
    (the API server always sends `oldObject` on UPDATE; without it there is no "what
    changed", and the request is admitted unchanged)."""
    return (_is_pod(request, "UPDATE") and request.sub_resource in updates.SUBRESOURCES
            and isinstance(request.object, dict) and isinstance(request.old_object, dict))


def _pod_name(obj: object) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return ""
    return _text(meta.get("name")) or _text(meta.get("generateName"))


def _patched(request: Request, outcome: Outcome, name: str, *,
             scope: str | None = None, warnings: list[str]) -> Decision:
    ops = patch.diff(request.object, outcome.pod)
    patch.check(request.object, ops, outcome.pod)
    if scope is not None:
        check_patch_scope(ops, scope, old=request.old_object)
    audit = {}
    if outcome.rewritten:
        audit["original-images"] = orjson.dumps(
            {n: old for n, (old, _new) in outcome.rewritten.items()}).decode()
    decision = _answer(request, "mutated", allowed=True, warnings=warnings, name=name,
                       patch_ops=ops, audit=audit)
    decision.rewritten = outcome.rewritten
    return decision


def _answer(request: Request, outcome: str, *, allowed: bool, message: str = "",
            name: str = "", warnings: list[str] | None = None,
            patch_ops: list[dict[str, Any]] | None = None,
            audit: dict[str, str] | None = None) -> Decision:
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


def errored(request_body: bytes, message: str) -> bytes:
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
    out = [_clip(w, MAX_WARNING_CHARS) for w in dict.fromkeys(warnings)]
    if len(out) > MAX_WARNINGS:
        out = out[:MAX_WARNINGS - 1] + [f"... and {len(out) - MAX_WARNINGS + 1} more warnings"]
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
