"""The presence checker: whether a mirror holds an image, for `policy: if-present`.

(Over 300 lines: one class, whose cache, coalescing, bounds and cool-down share its lookups.)

A node-level containerd mirror falls back to the upstream registry when the mirror lacks
an image. A webhook that rewrites the image blindly cannot fall back later, so before it
rewrites it asks the mirror the question containerd's resolver asks first (`manifest`),
through the registry client (`client`), and keeps the original image unless the answer is
present.

Cost control, because this sits on every pod's creation path and a pod's author chooses
its images:
- answers are cached (present for `positive_ttl`, absent for `negative_ttl`); errors not;
- concurrent checks of the same (mirror, repository, reference) share one request;
- one admission takes at most `limit` questions past the cache (`answer_all`); the rest
  are not asked, and it waits at most its budget: the work a pod causes does not grow
  with its number of images;
- at most `max_in_flight_per_mirror` lookups send to one mirror at once; the others wait
  for a slot (a semaphore, not the HTTP client's pool), and one nobody waits for any more
  is abandoned before it sends anything;
- a mirror with `failures_before_cooldown` errors in a row is not asked for `cooldown`
  seconds (each check answers error at once, naming the last failure); only lookups a
  real admission waited for count (never a dry run's alone), and only the mirror's own
  failures (a wait for a slot, or a budget that ended before the lookup sent, never);
- each lookup (all its round trips together, once it has a slot) is bounded by `timeout`.

On a config reload the old checker is `retire()`d: admissions in flight finish with it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from webhook.adapters.registry.client import ClientKey, RegistryClient, client_key
from webhook.adapters.registry.manifest import Presence, manifest_reference
from webhook.core.config import Mirror
from webhook.core.reference import Reference, is_path_component_sequence

log = logging.getLogger("kci-webhook.registry")

_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}",
                        re.ASCII)


@dataclass(slots=True)
class _Health:
    failures: int = 0
    until: float = 0.0
    last: str = ""


_Key = tuple[Mirror, str, str]

_STATS = ("checks", "cache_hits", "cache_misses", "coalesced", "lookups", "requests",
          "token_requests", "errors", "cooldown_skips", "not_asked", "abandoned",
          "cancelled")


@dataclass(slots=True, eq=False)
class _Lookup:
    """One lookup in flight, shared by every admission that waits for its answer.

    `waiters`: admissions waiting now; when the last one leaves before the lookup took a
    slot of its mirror, nobody needs it any more and it is abandoned. `started`: it holds
    a slot (its request may be on the wire; it then runs to its own timeout and fills the
    cache). `counts`: a failure counts toward the mirror's cool-down — only when some
    admission that waited for it was not a dry run."""

    key: _Key
    waiters: int = 0
    started: bool = False
    counts: bool = False
    task: asyncio.Task[Presence] | None = None


class PresenceChecker:
    """Asks mirrors whether they hold a manifest; caches, coalesces, bounds, and backs off.

    One instance per config and event loop, shared by all admissions. Its
    `RegistryClient` makes HTTP clients (HTTP/1.1, pooled keep-alive) lazily, one per
    mirror host and trust settings, each with `max_in_flight_per_mirror` connections; a
    semaphore of as many slots stands in front of each, so requests wait (cheaply, and
    abandonably) for a slot and never inside the client's pool. Closed by `aclose()`,
    or, while admissions still use it, by `retire()` once the last `release()`s it (a
    config reload). `clock` is for tests.
    """

    def __init__(self, *, positive_ttl: float = 300, negative_ttl: float = 30,
                 cooldown: float = 30, failures_before_cooldown: int = 3,
                 timeout: float = 1.0, max_entries: int = 10_000,
                 max_in_flight_per_mirror: int = 16,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if timeout <= 0 or failures_before_cooldown < 1 or max_entries < 1 \
                or max_in_flight_per_mirror < 1:
            raise ValueError("timeout must be > 0, failures_before_cooldown, max_entries "
                             "and max_in_flight_per_mirror >= 1")
        self._positive_ttl, self._negative_ttl = positive_ttl, negative_ttl
        self._cooldown, self._threshold = cooldown, failures_before_cooldown
        self._timeout, self._max_entries, self._clock = timeout, max_entries, clock
        self._max_in_flight = max_in_flight_per_mirror
        self._cache: dict[_Key, tuple[Presence, float]] = {}
        self._inflight: dict[_Key, _Lookup] = {}
        self._health: dict[Mirror, _Health] = {}
        self._client = RegistryClient(timeout=timeout, max_connections=max_in_flight_per_mirror,
                                      max_entries=max_entries, clock=clock)
        self._slots: dict[ClientKey, asyncio.Semaphore] = {}
        self._stats = dict.fromkeys(_STATS, 0)
        self._closed = False
        self._holders = 0
        self._retired = False

    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def stats(self) -> dict[str, int]:
        """Counters since start: `checks` (questions), `cache_hits`, `cache_misses` (of
        which `coalesced` joined a lookup in flight and `cooldown_skips` met a cooling
        mirror), `lookups` (started), `requests` (HTTP requests sent, token requests
        included), `token_requests`, `errors` (lookups that ended in error), `not_asked`
        (questions past an admission's limit), `abandoned` (lookups cancelled before they
        took a slot: nobody waited for them any more), `cancelled` (answers lost to a
        lookup cancelled by `aclose`)."""
        stats = dict(self._stats)
        stats["requests"] = self._client.requests
        stats["token_requests"] = self._client.token_requests
        return stats

    # --- asking -----------------------------------------------------------------------

    async def check_image(self, mirror: Mirror, ref: Reference, *,
                          dry_run: bool = False) -> Presence:
        """`check` for a parsed source reference (its path; digest over tag)."""
        return await self.check(mirror, ref.path, manifest_reference(ref), dry_run=dry_run)

    async def check(self, mirror: Mirror, source_path: str, reference: str, *,
                    dry_run: bool = False) -> Presence:
        """Whether `mirror` holds `source_path` at `reference` (a tag or a digest).

        `source_path` is the repository path on the source registry (`Reference.path`,
        e.g. "library/nginx"); the mirror's namespace is prepended here, as the rewrite
        does. Never raises for a registry's behaviour. Cancelling the caller leaves a
        lookup that already took its slot running, so its answer is cached for the next
        pod; one still waiting for a slot is abandoned when nobody else waits for it.
        `dry_run`: a failure of this lookup never counts toward the mirror's cool-down.
        """
        answer, = await self._answer_all([(mirror, source_path, reference)], budget=None,
                                         limit=1, dry_run=dry_run)
        return answer or Presence("unanswered", "not asked")

    async def answer_all(self, questions: Sequence[tuple[Mirror, Reference]], *,
                         budget: float, limit: int, dry_run: bool = False
                         ) -> list[Presence | None]:
        """The answers to one admission's questions, in order, within `budget` seconds.

        Answers the cache (or a cool-down) holds come at once; of the rest, the first
        `limit` start a lookup or join one in flight, and the others are not asked: None.
        A lookup that has not answered when the budget ends answers "unanswered"; this
        admission stops waiting for it, and a lookup nobody waits for any more that has not
        yet taken a slot of its mirror is abandoned (never sent). So the work one admission
        causes is at most `limit` lookups, whatever the number of images, and the time it
        waits is at most `budget`. `dry_run`: its failures never cool a mirror down.
        Never raises but for the caller's own cancellation.
        """
        return await self._answer_all(
            [(mirror, ref.path, manifest_reference(ref)) for mirror, ref in questions],
            budget=budget, limit=limit, dry_run=dry_run)

    async def _answer_all(self, questions: list[tuple[Mirror, str, str]], *,
                          budget: float | None, limit: int, dry_run: bool
                          ) -> list[Presence | None]:
        answers: list[Presence | None] = [None] * len(questions)
        joined: dict[int, _Lookup] = {}
        for index, (mirror, source_path, reference) in enumerate(questions):
            prepared = self._prepare(mirror, source_path, reference)
            if isinstance(prepared, Presence):
                answers[index] = prepared
            elif len(joined) < limit:
                joined[index] = self._join(prepared, counts=not dry_run)
            else:
                self._stats["not_asked"] += 1
        if not joined:
            return answers
        try:
            await asyncio.wait({lookup.task for lookup in joined.values()
                                if lookup.task is not None}, timeout=budget)
        finally:   # also when the caller is cancelled: leave every lookup it joined
            for index, lookup in joined.items():
                answers[index] = self._leave(lookup, budget)
        return answers

    def _prepare(self, mirror: Mirror, source_path: str, reference: str) -> Presence | _Key:
        """The answer without a lookup (invalid input, cache, cool-down), or what to look up."""
        self._stats["checks"] += 1
        if self._closed:
            return Presence("error", "presence checker is closed")
        if not is_path_component_sequence(source_path):
            return Presence("error", f"invalid repository path {source_path[:300]!r}")
        if not (_TAG_RE.fullmatch(reference) or _DIGEST_RE.fullmatch(reference)):
            return Presence("error", f"invalid tag or digest {reference[:300]!r}")
        if not mirror.host:
            return Presence("error", "mirror has no host")
        key: _Key = (mirror, mirror.repository(source_path), reference)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            self._stats["cache_hits"] += 1
            return cached[0]
        self._stats["cache_misses"] += 1
        if key in self._inflight:
            return key
        health = self._health.get(mirror)
        if health is not None and health.until > now:
            self._stats["cooldown_skips"] += 1
            return Presence("error", f"mirror in cool-down after {health.failures} "
                            f"failures (last: {health.last}); next try in "
                            f"{health.until - now:.0f}s")
        return key

    def _join(self, key: _Key, *, counts: bool) -> _Lookup:
        """Wait for the lookup of `key` in flight, or start it."""
        lookup = self._inflight.get(key)
        if lookup is not None:
            self._stats["coalesced"] += 1
        else:
            self._stats["lookups"] += 1
            lookup = self._inflight[key] = _Lookup(key)
            lookup.task = asyncio.create_task(self._lookup(key, lookup),
                                              name=f"presence {key[0].host}")
            lookup.task.add_done_callback(lambda _done: self._forget(key, lookup))
        lookup.waiters += 1
        lookup.counts = lookup.counts or counts
        return lookup

    def _leave(self, lookup: _Lookup, budget: float | None) -> Presence:
        """Stop waiting for `lookup`; its answer, or why there is none."""
        lookup.waiters -= 1
        task = lookup.task
        assert task is not None
        if task.done():
            if task.cancelled():
                self._stats["cancelled"] += 1
                return Presence("unanswered", "no answer: the lookup was cancelled (config "
                                "reload or shutdown)")
            if task.exception() is not None:   # _lookup catches all; never fail an admission
                return Presence("error", f"unexpected {type(task.exception()).__name__}")
            return task.result()
        if lookup.waiters <= 0 and not lookup.started:
            self._stats["abandoned"] += 1
            self._forget(lookup.key, lookup)   # a later question starts afresh
            task.cancel()
        return Presence("unanswered", "no answer" if budget is None
                        else f"no answer within the {budget:g}s budget", timed_out=True)

    def _forget(self, key: _Key, lookup: _Lookup) -> None:
        if self._inflight.get(key) is lookup:
            del self._inflight[key]

    # --- lifetime ---------------------------------------------------------------------

    def hold(self) -> None:
        """An admission uses this checker: a `retire()` closes it only after `release()`."""
        self._holders += 1

    async def release(self) -> None:
        """The admission is done with this checker; the last one closes a retired one."""
        self._holders -= 1
        if self._retired and self._holders <= 0:
            await self.aclose()

    async def retire(self) -> None:
        """Replaced (a config reload): close now if no admission holds it, else when the
        last one releases it, so admissions in flight finish with the answers they wait
        for. Lookups that outlive every admission are then cancelled: their cache goes."""
        self._retired = True
        if self._holders <= 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Cancel lookups in flight and close every connection pool."""
        self._closed = True
        tasks = [lookup.task for lookup in self._inflight.values() if lookup.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    # --- one lookup -------------------------------------------------------------------

    async def _lookup(self, key: _Key, lookup: _Lookup) -> Presence:
        """Wait for a slot of the mirror (outside the lookup's timeout: a wait of our own
        making is never the mirror's failure), then ask within `timeout`."""
        mirror, repository, reference = key
        async with self._slot(mirror):
            lookup.started = True
            try:
                presence = await self._client.lookup(mirror, repository, reference)
            except Exception as exc:  # a check must never fail the admission it serves
                log.exception("presence check of %s/%s:%s failed", mirror.host, repository,
                              reference)
                presence = Presence("error", f"unexpected {type(exc).__name__}: {exc}")
        self._record(key, presence, counts=lookup.counts)
        log.debug("presence %s/%s:%s → %s %s", mirror.host, repository, reference,
                  presence.status, presence.detail)
        return presence

    def _record(self, key: _Key, presence: Presence, *, counts: bool) -> None:
        mirror = key[0]
        now = self._clock()
        if presence.status == "error":
            self._stats["errors"] += 1
            if not counts:      # only dry runs waited for it: no shared penalty
                return
            health = self._health.setdefault(mirror, _Health())
            health.failures += 1
            health.last = presence.detail
            if health.failures >= self._threshold:
                if health.until <= now:
                    log.warning("mirror %s: %d failures in a row (last: %s); not asked for "
                                "%gs", mirror.host, health.failures, presence.detail,
                                self._cooldown)
                health.until = now + self._cooldown
            return
        self._health.pop(mirror, None)
        ttl = self._positive_ttl if presence.status == "present" else self._negative_ttl
        if ttl <= 0:
            return
        if len(self._cache) >= self._max_entries:
            # Drop the expired, and if still full the oldest eighth: one rebuild per many
            # insertions (never one entry at a time from the front, which is quadratic).
            fresh = [item for item in self._cache.items() if item[1][1] > now]
            keep = self._max_entries - max(1, self._max_entries // 8)
            self._cache = dict(fresh[-keep:] if len(fresh) > keep else fresh)
        self._cache[key] = (presence, now + ttl)

    def _slot(self, mirror: Mirror) -> asyncio.Semaphore:
        """The lookups of one client (mirror host and trust) that may send at once."""
        key = client_key(mirror)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(self._max_in_flight)
        return slot
