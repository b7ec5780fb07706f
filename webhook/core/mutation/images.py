"""Image references in a pod spec, and the mirrors they can be pulled from.

For each image the plan is every mirror that serves its registry, in config order, with
the rewritten reference; `policy: if-present` mirrors are used only when the shell's
presence answers say they hold the image (containerd's fallback to upstream).
Plans are remembered per image and mirrors (a bounded cache of a pure function): the same
few images recur on every pod.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core.config import Config, Mirror, registry_key
from webhook.core.errors import ReferenceError_
from webhook.core.mutation import record
from webhook.core.reference import Reference, parse_normalized

Pod = dict[str, Any]
CONTAINER_LISTS = ("initContainers", "containers")
Target = tuple[str, int, dict[str, Any], str]     # list name, index, container, its image
# (mirror, source reference, image): one thing to ask a `policy: if-present` mirror
PresenceQuestion = tuple[Mirror, Reference, str]
# (mirror endpoint, image) → (present, why not): the shell's answers to the questions
PresenceAnswers = Mapping[tuple[str, str], tuple[bool, str]]
# An answer with no reason: the image is kept and no warning names it (the shell says
# once, for the whole pod, why it did not ask).
NO_ANSWER: tuple[bool, str] = (False, "")


@functools.lru_cache(maxsize=8192)
def parse_image(image: str) -> Reference | ReferenceError_:
    """Parsing is pure, and the same images recur across pods: remember recent results."""
    try:
        return parse_normalized(image)
    except ReferenceError_ as exc:
        return exc


def containers_of(spec: Pod) -> Iterator[Target]:
    """Every container and init container with an image: what a CREATE rewrites."""
    for list_name in CONTAINER_LISTS:
        for index, container in enumerate(spec.get(list_name) or ()):
            image = container.get("image")
            if isinstance(image, str):
                yield list_name, index, container, image


@dataclass(slots=True)
class Rewrites:
    """What the rewrite loop did: the container lists that changed (by list name, for the
    caller to put in its new spec), the record of rewrites, its warnings in order, and
    the record's word for each target (`webhook.core.mutation.record`)."""

    lists: dict[str, list[Any]]
    rewritten: dict[str, tuple[str, str]]   # container name → (old image, new image)
    warnings: list[str]
    words: dict[str, str]                   # container name → the record's word


def rewrite(spec: Pod, targets: Iterable[Target], *, config: Config,
            presence: PresenceAnswers | None,
            unusable: Callable[[Mirror], tuple[tuple[str, str] | None, list[str]]] | None
            = None) -> Rewrites:
    """Point each target's image at its mirror, tag and digest untouched: the one loop of
    CREATE (every container) and UPDATE (the images an update brings). `unusable` says
    why the pod cannot pull from the chosen mirror, as (the record's word, the reason;
    the image is then kept) and what to note either way; None: every mirror is usable."""
    lists: dict[str, list[Any]] = {}
    rewritten: dict[str, tuple[str, str]] = {}
    warnings: list[str] = []
    words: dict[str, str] = {}
    for list_name, index, container, image in targets:
        where = container_where(container, list_name, index)
        key = container_key(container, list_name, index)
        chosen, why_not, word = choose_mirror(image, config, where=where, presence=presence)
        words[key] = word
        if chosen is None:
            if why_not:
                warnings.append(why_not)
            continue
        mirror, new_image = chosen
        if unusable is not None:
            reason, notes = unusable(mirror)
            warnings.extend(notes)
            if reason:
                words[key] = reason[0]
                warnings.append(f"{where}: image {image!r} kept: {reason[1]}")
                continue
        changed = lists.get(list_name)
        if changed is None:
            changed = lists[list_name] = list(spec[list_name])
        changed[index] = {**container, "image": new_image}
        rewritten[key] = (image, new_image)
    return Rewrites(lists, rewritten, warnings, words)


def container_key(container: dict[str, Any], list_name: str, index: int) -> str:
    """How a container is named in the record of rewrites: by its name (unique in a pod),
    else by its position."""
    return str(container.get("name", f"{list_name}[{index}]"))


def container_where(container: dict[str, Any], list_name: str, index: int) -> str:
    """How warnings name a container: its field path, and its name when it has one."""
    return f"spec.{list_name}[{index}] ({container.get('name', '?')})"


def container_images(spec: Pod) -> dict[str, str]:
    """Container → image, for the containers and init containers that have one, each
    named by `container_key`, as `rewrite` names them."""
    return {container_key(container, list_name, index): container["image"]
            for list_name in CONTAINER_LISTS
            for index, container in enumerate(spec.get(list_name) or ())
            if isinstance(container.get("image"), str)}


def rewrites_to(original: str, image: str, config: Config) -> bool:
    """Whether this config rewrites `original` to exactly `image` (through any mirror that
    serves it): what a record of the webhook's own earlier pass must satisfy."""
    plan = _plan(original, config.mirrors)
    return not isinstance(plan, str) and any(new == image for _m, new, _p in plan)


def choose_mirror(image: str, config: Config, *, where: str, presence: PresenceAnswers | None
                  ) -> tuple[tuple[Mirror, str] | None, str | None, str]:
    """The first mirror (in config order) that serves the image's registry and, for
    `policy: if-present`, has the image, with the rewritten image; None keeps the
    original (upstream fallback), with the warning that says why when there is one.
    Last, the record's word for what happened. `where` names the container in warnings."""
    plan = _plan(image, config.mirrors)
    if isinstance(plan, str):
        return None, f"{where}: image {image[:300]!r} {plan}; left unchanged", record.INVALID
    misses = []
    word = None
    for mirror, new_image, problem in plan:
        if mirror.policy == "if-present" and presence is not None:
            present, detail = presence.get((mirror.endpoint, image), (False, "not asked"))
            if not present:
                if word is None:
                    word = record.presence_word(detail)
                if detail:
                    misses.append(f"mirror {mirror.host}: {detail}")
                continue
        if problem or new_image is None:
            return (None, f"{where}: image {image!r} {problem}; left unchanged",
                    record.INVALID_ON_MIRROR)
        return (mirror, new_image), None, record.MIRROR + mirror.host
    if misses:
        return None, (f"{where}: image {image!r} kept, pulled from its own registry "
                      f"({'; '.join(misses)})"), word or record.NO_MIRROR
    return None, None, word or _on_mirror(image, config.mirrors)


def _on_mirror(image: str, mirrors: tuple[Mirror, ...]) -> str:
    """The word for an image no mirror serves: `mirror:<host>` when it already points at
    a mirror (the webhook's own earlier pass, or its author wrote it so), else
    `kept:no-mirror`."""
    ref = parse_image(image)
    if isinstance(ref, Reference) and mirrors:
        used = mirrors_used([ref], mirrors)
        if used:
            return record.MIRROR + used[0].host
    return record.NO_MIRROR


Option = tuple[Mirror, str | None, str | None]   # mirror, rewritten image, problem


@functools.lru_cache(maxsize=8192)
def _plan(image: str, mirrors: tuple[Mirror, ...]) -> tuple[Option, ...] | str:
    """Every mirror that serves the image's registry, in order, with the rewritten image;
    or why the image cannot be rewritten. A pure function of frozen values, remembered:
    the same few images recur on every pod (a `Mirror` hashes in constant time)."""
    ref = parse_image(image)
    if isinstance(ref, ReferenceError_):
        return f"is not a valid reference ({ref.kind})" if mirrors else ()
    options: list[Option] = []
    for mirror in mirrors:
        if mirror.serves(ref.domain):
            try:
                options.append((mirror, str(ref.with_name(mirror.host,
                                                          mirror.repository(ref.path))), None))
            except ReferenceError_ as exc:
                options.append((mirror, None, f"on mirror {mirror.host} would be an invalid "
                                              f"reference ({exc.kind})"))
    return tuple(options)


def image_refs(spec: Pod) -> list[Reference]:
    """The valid image references of the pod's containers and init containers."""
    refs = []
    for list_name in CONTAINER_LISTS:
        for container in spec.get(list_name) or ():
            image = container.get("image")
            if not isinstance(image, str):      # none, or not a string: no reference
                continue
            ref = parse_image(image)
            if isinstance(ref, Reference):
                refs.append(ref)
    return refs


def mirrors_used(refs: list[Reference], mirrors: tuple[Mirror, ...]) -> list[Mirror]:
    """Mirrors the pod pulls from now, whether we rewrote the image or its author did
    (however the author spelt the mirror's host: `Mirror.is_host`)."""
    used: list[Mirror] = []
    for ref in refs:
        key = registry_key(ref.domain)
        for mirror in mirrors:
            if key in mirror.keys and mirror not in used and (
                    not mirror.namespace or ref.path.startswith(mirror.namespace + "/")):
                used.append(mirror)
    return used


def questions(spec: Pod, config: Config) -> list[PresenceQuestion]:
    """(mirror, source reference, image) for each `if-present` mirror that would be
    tried for an image of `spec`, up to the first `always` mirror; none without such
    mirrors."""
    return image_questions(_images_of(spec), config)


def _images_of(spec: Pod) -> Iterator[str]:
    """The image strings of the containers and init containers, read lazily: without an
    `if-present` mirror nobody asks for them."""
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        for container in containers if isinstance(containers, list) else ():
            image = container.get("image") if isinstance(container, dict) else None
            if isinstance(image, str):
                yield image


def asks_presence(config: Config) -> bool:
    """Whether any mirror has `policy: if-present` (a plain loop: this runs on every
    admission, and most configs have none)."""
    for mirror in config.mirrors:  # noqa: SIM110 - no generator on every admission's path
        if mirror.policy == "if-present":
            return True
    return False


def image_questions(images: Iterable[str], config: Config) -> list[PresenceQuestion]:
    """`questions` for a list of images: what a pod UPDATE asks about the images it
    changes, and a CREATE about all of its own."""
    if not asks_presence(config):
        return []
    asked: dict[tuple[str, str], PresenceQuestion] = {}
    for image in images:
        plan, ref = _plan(image, config.mirrors), parse_image(image)
        if isinstance(plan, str) or not isinstance(ref, Reference):
            continue
        for mirror, new_image, _problem in plan:
            if mirror.policy != "if-present":
                break
            if new_image:
                asked[(mirror.endpoint, image)] = (mirror, ref, image)
    return list(asked.values())
