"""The webhook's own mutation on every unit `plan` read, and one finding per container.

Each unit goes through exactly what the server runs: `webhook.core.mutation.create.mutate`
for the pod (its containers and init containers, as at its next creation), and
`webhook.core.mutation.update.mutate_update` on the `ephemeralcontainers` subresource for
its ephemeral containers (what `kubectl debug` would get on the pod as it stands). The
Context is the server's: the config, the `KCI_*` environment, the Namespace's layer as the
namespace cache reads it, the webhook's own namespace.

Pure, in three steps around the shell's I/O:
1. `presence_questions`: what the `policy: if-present` mirrors must be asked first (the
   server asks them before it rewrites);
2. `mutate_all` with those answers: each container's image now and after, or the unit's
   denial or exclusion;
3. `mirror_questions` and `secrets_needed` (the image each container would pull from a
   mirror, the mirror's pull Secret in its namespace), then `classify` with the answers.

Findings, most severe first (a row shows its most severe; `also` keeps the others):
`deny`, `missing-image`, `missing-secret`, `unreachable`, `rewrite`, `unchanged`,
`excluded`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from webhook.adapters.registry.manifest import Presence, manifest_reference
from webhook.core.config import Config, Mirror
from webhook.core.errors import InvalidInput
from webhook.core.mutation.context import Context, MutationResult
from webhook.core.mutation.create import mutate
from webhook.core.mutation.create import presence_questions as create_questions
from webhook.core.mutation.images import (
    PresenceAnswers,
    PresenceQuestion,
    container_where,
    image_questions,
    mirrors_used,
    parse_image,
)
from webhook.core.mutation.update import EPHEMERAL, EPHEMERAL_LIST, mutate_update, update_questions
from webhook.core.reference import Reference

if TYPE_CHECKING:   # collect reads the cluster: the kubernetes client loads only for a plan
    from webhook.tools.plan.collect import Unit

DENY, MISSING_IMAGE, MISSING_SECRET = "deny", "missing-image", "missing-secret"
UNREACHABLE, REWRITE, UNCHANGED, EXCLUDED = "unreachable", "rewrite", "unchanged", "excluded"
FINDINGS = (DENY, MISSING_IMAGE, MISSING_SECRET, UNREACHABLE, REWRITE, UNCHANGED, EXCLUDED)
LISTS = ("initContainers", "containers", EPHEMERAL_LIST)
ROLES = {"initContainers": "init", "containers": "container", EPHEMERAL_LIST: "ephemeral"}

# (mirror, repository on the mirror, tag or digest): as `adapters.registry.survey` asks it
Question = tuple[Mirror, str, str]
# (namespace, Secret name) → None when it exists, else why it cannot be used
SecretAnswers = Mapping[tuple[str, str], str | None]


@dataclass(frozen=True)
class Row:
    """One container: where it lives, its image now and after, and what the plan found."""

    namespace: str
    kind: str
    name: str
    container: str
    role: str            # container, init or ephemeral
    image: str
    after: str
    finding: str
    detail: str = ""
    also: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.namespace, self.kind, self.name, self.role, self.container)

    @property
    def classes(self) -> tuple[str, ...]:
        return (self.finding, *self.also)


@dataclass
class Outcome:
    """A unit after the mutation: per container (list, name, image now, image after), and
    what stopped it, if anything (a denial's message, or why it is excluded)."""

    unit: Unit
    containers: list[tuple[str, str, str, str]] = field(default_factory=list)
    denied: dict[str, str] = field(default_factory=dict)    # list name → message
    excluded: str = ""
    notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # its warnings


ContextFor = Callable[[str], Context]


def presence_questions(units: Iterable[Unit], context_for: ContextFor
                       ) -> list[PresenceQuestion]:
    """What the server would ask `if-present` mirrors before mutating these units."""
    asked: dict[tuple[str, str], PresenceQuestion] = {}
    for unit in units:
        ctx = context_for(unit.namespace)
        found = create_questions(unit.pod, ctx)
        if _ephemerals(unit.pod):
            found += update_questions(unit.pod, _without_ephemerals(unit.pod), ctx,
                                      sub_resource=EPHEMERAL)
        for mirror, ref, image in found:
            asked.setdefault((mirror.endpoint, image), (mirror, ref, image))
    return list(asked.values())


def survey_question(question: PresenceQuestion) -> Question:
    """A presence question as the registry is asked it: the mirror's repository."""
    mirror, ref, _image = question
    return (mirror, mirror.repository(ref.path), manifest_reference(ref))


def presence_answers(asked: Iterable[PresenceQuestion],
                     answers: Mapping[Question, Presence]) -> PresenceAnswers:
    """The survey's answers in the form the mutation takes them."""
    out: dict[tuple[str, str], tuple[bool, str]] = {}
    for question in asked:
        mirror, _ref, image = question
        answer = answers.get(survey_question(question))
        if answer is not None:
            out[(mirror.endpoint, image)] = (answer.present, answer.detail)
    return out


def mutate_all(units: Iterable[Unit], context_for: ContextFor, *,
               presence: PresenceAnswers | None) -> list[Outcome]:
    return [mutate_one(unit, context_for(unit.namespace), presence=presence)
            for unit in units]


def mutate_one(unit: Unit, ctx: Context, *, presence: PresenceAnswers | None) -> Outcome:
    """The unit through the server's mutation (see the module docstring)."""
    outcome = Outcome(unit)
    pod = unit.pod
    result = _run(lambda: mutate(pod, ctx, presence=presence))
    after = pod
    warnings = [] if isinstance(result, str) else list(result.warnings)
    if isinstance(result, str):
        outcome.denied["initContainers"] = outcome.denied["containers"] = result
    elif result.skipped:
        outcome.excluded = result.skipped
    elif result.denial:
        outcome.denied["initContainers"] = outcome.denied["containers"] = result.denial
    else:
        after = result.pod
    ephemeral_after = pod
    if _ephemerals(pod) and not outcome.excluded:
        update = _run(lambda: mutate_update(pod, _without_ephemerals(pod), ctx,
                                            sub_resource=EPHEMERAL, presence=presence))
        message = update if isinstance(update, str) else update.denial
        warnings += [] if isinstance(update, str) else update.warnings
        if message:
            outcome.denied[EPHEMERAL_LIST] = message
        elif not isinstance(update, str):
            ephemeral_after = update.pod
    for list_name in LISTS:
        source = ephemeral_after if list_name == EPHEMERAL_LIST else after
        now, new = _containers(pod, list_name), _containers(source, list_name)
        for index, container in enumerate(now):
            image = container.get("image")
            if not isinstance(image, str):
                continue
            changed = new[index].get("image") if index < len(new) else image
            name = container.get("name")
            name = name if isinstance(name, str) else f"[{index}]"
            outcome.containers.append((list_name, name, image,
                                       changed if isinstance(changed, str) else image))
            # the mutation's warnings about this container name it so (images.rewrite)
            where = container_where(container, list_name, index) + ":"
            notes = [w[len(where):].strip() for w in warnings if w.startswith(where)]
            if notes:
                outcome.notes[(list_name, name)] = notes
    return outcome


def _run(step: Callable[[], MutationResult]) -> MutationResult | str:
    """A mutation, or the message of the InvalidInput it raised (a pod not shaped like a
    Pod is refused by the server with that message)."""
    try:
        return step()
    except InvalidInput as exc:
        return str(exc)


def _ephemerals(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec")
    return isinstance(spec, dict) and bool(spec.get(EPHEMERAL_LIST))


def _without_ephemerals(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as stored before its ephemeral containers were added."""
    spec = {k: v for k, v in pod["spec"].items() if k != EPHEMERAL_LIST}
    return {**pod, "spec": spec}


def _containers(pod: dict[str, Any], list_name: str) -> list[dict[str, Any]]:
    spec = pod.get("spec")
    items = spec.get(list_name) if isinstance(spec, dict) else None
    return [c if isinstance(c, dict) else {} for c in items] if isinstance(items, list) else []


# --- after the mutation: what to ask, and the findings --------------------------------------


def mirror_of(image: str, config: Config) -> tuple[Mirror, Reference] | None:
    """The mirror a pod pulling `image` pulls from, with the parsed reference; None when
    the image is not on a mirror."""
    ref = parse_image(image)
    if not isinstance(ref, Reference):
        return None
    used = mirrors_used([ref], config.mirrors)
    return (used[0], ref) if used else None


def mirror_questions(outcomes: Iterable[Outcome], config: Config) -> list[Question]:
    """Each image a container would pull from a mirror, asked of that mirror."""
    asked: dict[Question, None] = {}
    for outcome in outcomes:
        if outcome.excluded:
            continue
        for list_name, _name, _image, after in outcome.containers:
            on = mirror_of(after, config) if list_name not in outcome.denied else None
            if on is not None:
                mirror, ref = on
                asked[(mirror, ref.path, manifest_reference(ref))] = None
    return list(asked)


def secrets_needed(outcomes: Iterable[Outcome], config: Config) -> list[tuple[str, str]]:
    """(namespace, Secret) for each mirror with a `pullSecret` a container would pull from."""
    needed: dict[tuple[str, str], None] = {}
    for outcome in outcomes:
        if outcome.excluded:
            continue
        for list_name, _name, _image, after in outcome.containers:
            on = mirror_of(after, config) if list_name not in outcome.denied else None
            if on is not None and on[0].pull_secret:
                needed[(outcome.unit.namespace, on[0].pull_secret)] = None
    return list(needed)


def classify(outcomes: Iterable[Outcome], config: Config, *,
             answers: Mapping[Question, Presence], secrets: SecretAnswers) -> list[Row]:
    """One row per container, in unit order."""
    rows = []
    for outcome in outcomes:
        unit = outcome.unit
        for list_name, name, image, after in outcome.containers:
            found = _findings(outcome, list_name, image, after, config, answers=answers,
                              secrets=secrets)
            details = [d for _f, d in found if d] + outcome.notes.get((list_name, name), [])
            rows.append(Row(unit.namespace, unit.kind, unit.name, name, ROLES[list_name],
                            image, after, found[0][0], "; ".join(dict.fromkeys(details)),
                            tuple(f for f, _d in found[1:])))
    return rows


def _findings(outcome: Outcome, list_name: str, image: str, after: str, config: Config, *,
              answers: Mapping[Question, Presence],
              secrets: SecretAnswers) -> list[tuple[str, str]]:
    """(finding, detail) for one container, most severe first; never empty."""
    if outcome.excluded:
        return [(EXCLUDED, outcome.excluded)]
    if list_name in outcome.denied:
        return [(DENY, outcome.denied[list_name])]
    found: list[tuple[str, str]] = []
    on = mirror_of(after, config)
    if on is not None:
        mirror, ref = on
        repository, reference = ref.path, manifest_reference(ref)
        answer = answers.get((mirror, repository, reference))
        if answer is not None and answer.status == "absent":
            at = f"@{reference}" if ":" in reference else f":{reference}"   # digest, tag
            found.append((MISSING_IMAGE, f"mirror {mirror.host} has no {repository}{at}: "
                                         f"{answer.detail}"))
        if mirror.pull_secret:
            why = secrets.get((outcome.unit.namespace, mirror.pull_secret))
            if why:
                found.append((MISSING_SECRET, why))
        if answer is not None and answer.status == "error":
            found.append((UNREACHABLE, f"mirror {mirror.host}: {answer.detail}"))
    if after == image:   # kept: an if-present mirror that could not be asked may be why
        for mirror, ref, _image in image_questions([image], config):
            answer = answers.get((mirror, mirror.repository(ref.path),
                                  manifest_reference(ref)))
            if answer is not None and answer.status == "error":
                found.append((UNREACHABLE, f"mirror {mirror.host} (policy: if-present): "
                                           f"{answer.detail}; the webhook keeps the image "
                                           "when it cannot ask"))
                break
    found.sort(key=lambda item: FINDINGS.index(item[0]))
    found.append((REWRITE, "") if after != image else (UNCHANGED, ""))
    return found[:1] + [item for item in found[1:] if item[0] not in (REWRITE, UNCHANGED)]
