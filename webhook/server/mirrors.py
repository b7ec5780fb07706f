"""Asking the `if-present` mirrors for one admission, within its budget.

The answers come from the worker's presence checker (`webhook.adapters.registry`), made
from the config on first use and kept on the `AppState` until a config reload retires it.
Each answer is counted here, by the configured mirror's host and the kind of answer
(`metrics.MIRROR_LOOKUPS`): the adapter knows nothing of Prometheus.
"""

from __future__ import annotations

from collections import Counter

from webhook.adapters.registry.manifest import Presence
from webhook.adapters.registry.presence import PresenceChecker
from webhook.core import config as config_mod
from webhook.core.mutation.images import NO_ANSWER, PresenceAnswers, PresenceQuestion
from webhook.core.mutation.record import ABSENT_DETAIL, FAILED_DETAIL
from webhook.server import metrics
from webhook.server.state import AppState


async def ask_mirrors(state: AppState, config: config_mod.Config,
                      asked: list[PresenceQuestion], *,
                      dry_run: bool = False) -> tuple[PresenceAnswers, list[str]]:
    """The answers to one admission's questions, and the warnings about the asking itself.

    At most `mirrorChecks.maxLookupsPerAdmission` questions go past the cache; the images
    of the others are kept as written, with one warning that says how many. The wait is
    at most the budget: a question not answered by then keeps its image (the pod pulls
    from the source registry) with a warning; a lookup already sent goes on and fills the
    cache for the next pod, one not yet sent is abandoned. A dry run's failures never put
    a mirror into its cool-down. The checker in use is held until the answers are in, so
    a config reload meanwhile lets this admission finish on it."""
    if not asked:
        return {}, []
    checks = config.mirror_checks
    if state.checker is None:
        state.checker = PresenceChecker(
            positive_ttl=checks.positive_ttl_seconds, negative_ttl=checks.negative_ttl_seconds,
            cooldown=checks.cooldown_seconds, timeout=checks.budget_seconds,
            max_in_flight_per_mirror=checks.max_in_flight_per_mirror)
    checker = state.checker
    before = checker.stats
    checker.hold()
    try:
        presences = await checker.answer_all(
            [(mirror, ref) for mirror, ref, _image in asked], budget=checks.budget_seconds,
            limit=checks.max_lookups_per_admission, dry_run=dry_run)
    finally:
        await checker.release()
    answers: dict[tuple[str, str], tuple[bool, str]] = {}
    not_asked: dict[str, None] = {}
    results: Counter[tuple[str, str]] = Counter()
    for (mirror, _ref, image), presence in zip(asked, presences, strict=True):
        key = (mirror.endpoint, image)
        results[mirror.host, lookup_result(presence)] += 1
        if presence is None:
            answers[key] = NO_ANSWER
            not_asked[image] = None
        elif presence.present:
            answers[key] = (True, "")
        elif presence.status == "absent":
            answers[key] = (False, ABSENT_DETAIL + (f" ({presence.detail})"
                                                     if presence.detail else ""))
        elif presence.status == "unanswered":
            answers[key] = (False, presence.detail)
        else:
            answers[key] = (False, f"{FAILED_DETAIL}{presence.detail}")
    for (host, result), count in results.items():
        metrics.MIRROR_LOOKUPS.labels(host, result).inc(count)
    after = checker.stats
    metrics.MIRROR_CHECKS.labels("hit").inc(after["cache_hits"] - before["cache_hits"])
    metrics.MIRROR_CHECKS.labels("miss").inc(after["cache_misses"] - before["cache_misses"])
    if not not_asked:
        return answers, []
    metrics.MIRROR_CHECKS.labels("not_asked").inc(presences.count(None))
    images = len({image for _m, _r, image in asked})
    return answers, [
        f"{len(not_asked)} of {images} images not checked on their if-present mirror and "
        f"kept as written (pulled from their own registry): at most "
        f"{checks.max_lookups_per_admission} mirror lookups per admission "
        f"(mirrorChecks.maxLookupsPerAdmission)"]


def lookup_result(presence: Presence | None) -> str:
    """The `result` label of one question's answer, from `metrics.MIRROR_RESULTS`: a
    registry's words never become a label, only which kind of answer it gave."""
    if presence is None:
        return "not_asked"
    if presence.status == "present":
        return "present"
    if presence.status == "absent":
        return "missing"
    if presence.timed_out:
        return "timeout"
    return "cancelled" if presence.status == "unanswered" else "error"
