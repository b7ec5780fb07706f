"""Many presence questions at once, for `kci-webhook plan`: every image a cluster runs,
asked of the mirrors it would move to.

The server's `PresenceChecker` serves admissions: a budget per pod, a cool-down shared by
pods. A survey of a whole cluster wants something else — every question answered once, as
fast as the mirrors allow, and a mirror that hangs paid for once — so it drives the same
`RegistryClient` (the same manifest `HEAD`, trust, credentials and wording) its own way:

- each question is asked at most once: answers are keyed by (mirror, repository,
  reference), and the same key asked twice shares the first answer;
- per mirror (its host and trust, as the client pools them), the first question is asked
  alone; when it fails with an error (but a 403, which is about one repository), the
  mirror is taken as unreachable and every other question to it gets that answer without
  a request, so a mirror that hangs costs one `timeout`, not one per image;
- the rest go `concurrency` at a time per mirror, each within `timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from webhook.adapters.registry.client import ClientKey, RegistryClient, client_key
from webhook.adapters.registry.manifest import Presence
from webhook.core.config import Mirror

# (mirror, repository on the mirror, tag or digest)
# The one error that is about the repository asked, not the mirror (`client._interpret`):
# the credentials may not pull it; other repositories may still answer.
PER_REPOSITORY = "403 forbidden"

Question = tuple[Mirror, str, str]


@dataclass
class Survey:
    """The answers, and what it cost: `requests` sent (token requests among them)."""

    answers: dict[Question, Presence] = field(default_factory=dict)
    requests: int = 0
    token_requests: int = 0
    unreachable: dict[ClientKey, str] = field(default_factory=dict)


async def survey(questions: Iterable[Question], *, timeout: float, concurrency: int = 8,
                 into: Survey | None = None) -> Survey:
    """Answer every question (see the module docstring). `into`: a survey to extend, whose
    answers and unreachable mirrors are reused (a second config asks only what is new)."""
    result = into if into is not None else Survey()
    pending: dict[ClientKey, list[Question]] = {}
    for question in dict.fromkeys(questions):
        if question in result.answers:
            continue
        key = client_key(question[0])
        if key in result.unreachable:
            result.answers[question] = Presence("error", result.unreachable[key])
        else:
            pending.setdefault(key, []).append(question)
    if not pending:
        return result
    client = RegistryClient(timeout=timeout, max_connections=concurrency,
                            max_entries=10_000, clock=asyncio.get_running_loop().time)
    try:
        await asyncio.gather(*(_mirror(client, key, asked, result, concurrency)
                               for key, asked in pending.items()))
    finally:
        result.requests += client.requests
        result.token_requests += client.token_requests
        await client.aclose()
    return result


async def _mirror(client: RegistryClient, key: ClientKey, asked: list[Question],
                  result: Survey, concurrency: int) -> None:
    first, *rest = asked
    answer = result.answers[first] = await client.lookup(*first)
    if answer.status == "error" and not answer.detail.startswith(PER_REPOSITORY):
        result.unreachable[key] = answer.detail
        for question in rest:
            result.answers[question] = Presence("error", answer.detail)
        return
    slots = asyncio.Semaphore(concurrency)

    async def one(question: Question) -> None:
        async with slots:
            result.answers[question] = await client.lookup(*question)

    await asyncio.gather(*(one(question) for question in rest))
