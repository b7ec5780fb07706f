"""What to do with a decoded AdmissionReview, and the answer for it.

Pod CREATE is mutated (`webhook.core.mutation.create`); a Pod UPDATE, of the pod itself or
of its `ephemeralcontainers` subresource, gets the images it brings rewritten
(`webhook.core.mutation.update`); everything else — `pods/status` and other subresources
included — is admitted unchanged. A workload on `/validate` has its pod template judged as
a pod would be (`validate`). A mutated pod's patch is computed and checked against the
mutation (`webhook.core.admission.patch`), and an UPDATE's held to what that update may
change (`webhook.core.admission.scope`) before it is answered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import orjson

from webhook.core.admission import patch
from webhook.core.admission.envelope import Body, Decision, Request, answer, decode, pod_name
from webhook.core.admission.events import events_for
from webhook.core.admission.scope import check_patch_scope
from webhook.core.admission.workloads import (
    TEMPLATE_PATHS,
    WORKLOAD_GROUPS,
    pod_template,
    template_as_pod,
)
from webhook.core.errors import InvalidInput
from webhook.core.mutation import update as updates
from webhook.core.mutation.context import Context, MutationResult
from webhook.core.mutation.create import mutate, presence_questions
from webhook.core.mutation.images import (
    NO_ANSWER,
    PresenceAnswers,
    PresenceQuestion,
    asks_presence,
)
from webhook.core.mutation.record import record_text
from webhook.core.values.keys import IMAGE_RECORD


def questions(request: Request, ctx: Context) -> list[PresenceQuestion]:
    """What to ask `policy: if-present` mirrors before `decide` (none: ask nothing)."""
    if not asks_presence(ctx.config):   # the common case: no mirror to ask
        return []
    if _is_pod_update(request):
        return updates.update_questions(request.object, request.old_object, ctx,
                                        sub_resource=request.sub_resource)
    if not _is_pod_create(request) or not isinstance(request.object, dict):
        return []
    return presence_questions(request.object, ctx)


def worth_asking(request: Request, ctx: Context, *, asked: list[PresenceQuestion]
                 ) -> Decision | list[PresenceQuestion]:
    """Before any mirror is asked: the mutation with no answer at all (every `if-present`
    mirror as if it did not answer), noting which questions it consults. A pod it refuses
    is answered now, and no lookup is started for it: this is the answer the webhook gives
    whenever the mirrors do not answer. Otherwise, the questions the mutation really
    consults, in pod order (none when the pod or its namespace turns mirrors off).
    Called only when `questions` found some: a pod with no `if-present` mirror to ask
    is mutated once."""
    consulted = _Consulted()
    refusal = _refusal(request, lambda: _mutation(request, ctx, presence=consulted))
    if isinstance(refusal, Decision):
        return refusal
    return [q for q in asked if (q[0].endpoint, q[2]) in consulted.asked]


class _Consulted(Mapping[tuple[str, str], tuple[bool, str]]):
    """Presence answers that answer no question (silently: `NO_ANSWER`) and notes each one
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


def _mutation(request: Request, ctx: Context, *, presence: PresenceAnswers | None
              ) -> MutationResult:
    """The mutation a request with `questions` gets: a pod CREATE's, or an UPDATE's."""
    if _is_pod_create(request):
        return mutate(request.object, ctx, presence=presence)
    return updates.mutate_update(request.object, request.old_object, ctx,
                                 sub_resource=request.sub_resource, presence=presence)


def decide(request: Request, ctx: Context, *, presence: PresenceAnswers | None = None,
           notes: Sequence[str] = ()) -> Decision:
    """Answer a decoded AdmissionReview: pod CREATE is mutated, a pod UPDATE (of the pod or
    of its ephemeral containers) gets the images it brings rewritten, everything else is
    admitted unchanged. `presence` answers `questions(request, ctx)` (None: nobody could
    ask); `notes`: warnings of the shell's own (about the asking), shown first."""
    if _is_pod_create(request):   # the common case first: every pod passes here once
        return _decide(request, lambda: mutate(request.object, ctx, presence=presence),
                       notes=notes)
    if _is_pod_update(request):
        sub_resource = request.sub_resource
        if updates.changes_nothing(request.object, request.old_object, sub_resource):
            return answer(request, "unchanged", allowed=True, name=pod_name(request.object))
        return _decide(request, lambda: updates.mutate_update(
            request.object, request.old_object, ctx, sub_resource=sub_resource,
            presence=presence), scope=sub_resource, notes=notes)
    return answer(request, "skipped", allowed=True)


def _decide(request: Request, mutation: Callable[[], MutationResult], *,
            scope: str | None = None, notes: Sequence[str] = ()) -> Decision:
    """The answer for a mutation's outcome; `scope`: the UPDATE whose patch rules apply."""
    outcome = _refusal(request, mutation, notes=notes)
    if isinstance(outcome, Decision):
        return outcome
    warnings = [*notes, *outcome.warnings]
    name = pod_name(request.object)
    # What an UPDATE did with the images it brings is in its audit annotation too (through
    # `ephemeralcontainers`, which cannot change annotations, only there).
    audit = ({"images": record_text(outcome.words)} if scope is not None and outcome.words
             else {})
    if outcome.pod is request.object:
        decision = answer(request, "skipped" if outcome.skipped else "unchanged",
                          allowed=True, warnings=warnings, name=name, audit=audit)
    else:
        decision = _patched(request, outcome, name, scope=scope, warnings=warnings,
                            audit=audit)
    decision.words = outcome.words
    if outcome.words or outcome.ignored or outcome.namespace_ignored:
        decision.events = events_for(request, outcome)
    return decision


def _refusal(request: Request, mutation: Callable[[], MutationResult], *,
             notes: Sequence[str] = ()) -> Decision | MutationResult:
    """The denial answer when the mutation refuses the object, else its outcome."""
    try:
        outcome = mutation()
    except InvalidInput as exc:
        return answer(request, "denied", allowed=False, message=str(exc),
                      name=pod_name(request.object), warnings=list(notes))
    if outcome.denial:
        return answer(request, "denied", allowed=False, message=outcome.denial,
                      name=pod_name(request.object), warnings=[*notes, *outcome.warnings])
    return outcome


def validate(body: Body, *, context_for: Callable[[str], Context]) -> Decision:
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
        return answer(request, "skipped", allowed=True)
    template = pod_template(request.object, request.kind)
    if template is None:
        return answer(request, "skipped", allowed=True)
    name = pod_name(request.object)
    ctx = context_for(request.namespace)
    try:
        outcome = mutate(template_as_pod(template, request.namespace), ctx)
    except InvalidInput as exc:
        return answer(request, "denied", allowed=False, name=name,
                      message=f"pod template: {exc}")
    if outcome.denial and not _old_template_denied(request, ctx):
        return answer(request, "denied", allowed=False, message=outcome.denial, name=name,
                      warnings=outcome.warnings)
    warnings = [*([outcome.denial] if outcome.denial else []), *outcome.warnings]
    return answer(request, "unchanged", allowed=True, warnings=warnings, name=name)


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


def _patched(request: Request, outcome: MutationResult, name: str, *,
             scope: str | None = None, warnings: list[str],
             audit: dict[str, str]) -> Decision:
    ops = patch.diff(request.object, outcome.pod)
    patch.check(request.object, ops, outcome.pod)
    if scope is not None:
        annotations = (outcome.pod.get("metadata") or {}).get("annotations") or {}
        check_patch_scope(ops, scope, old=request.old_object,
                          record=annotations.get(IMAGE_RECORD) if scope == "" else None)
    if outcome.rewritten:
        audit["original-images"] = orjson.dumps(
            {n: old for n, (old, _new) in outcome.rewritten.items()}).decode()
    decision = answer(request, "mutated", allowed=True, warnings=warnings, name=name,
                      patch_ops=ops, audit=audit)
    decision.rewritten = outcome.rewritten
    return decision
