"""One admission, from the body's bytes to the answer's: what the server, the benchmarks and
the tests all run.

decode → the presence questions → those worth asking (a pod that will be refused asks
nothing) → ask → decide. The core does no I/O: asking the `policy: if-present` mirrors is
the shell's `Ask`, awaited here, and the CPU-bound steps go through the shell's `Run` (the
server's runs a large body's steps in a worker thread, so a big pod never stalls the loop).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec, Protocol, TypeVar

from webhook.core.admission.dispatch import decide, questions, worth_asking
from webhook.core.admission.envelope import Body, Decision, decode
from webhook.core.config import Config
from webhook.core.mutation.context import Context
from webhook.core.mutation.images import PresenceAnswers, PresenceQuestion

P = ParamSpec("P")
T = TypeVar("T")


class Ask(Protocol):
    """The shell's asking of `if-present` mirrors: the presence answers to `asked`, and its
    own warnings about the asking (shown first). `config`: the one the admission runs
    under; `dry_run`: the request's (its failures must not change what later pods get)."""

    async def __call__(self, asked: list[PresenceQuestion], /, *, config: Config,
                       dry_run: bool) -> tuple[PresenceAnswers, Sequence[str]]: ...


class Run(Protocol):
    """Runs one CPU-bound step, `fn(*args, **kwargs)`: where is the shell's choice."""

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...


async def answer_nothing(asked: list[PresenceQuestion], /, *, config: Config,
                         dry_run: bool) -> tuple[PresenceAnswers, Sequence[str]]:
    """An `Ask` that gets no answer: every `if-present` mirror is passed over, silently."""
    return {}, ()


def answer_from(answers: Mapping[tuple[str, str], tuple[bool, str]]) -> Ask:
    """An `Ask` answering from a fixed table ((mirror endpoint, image) → (present, why
    not)); what a benchmark or a test gives in place of a registry."""
    async def ask(asked: list[PresenceQuestion], /, *, config: Config,
                  dry_run: bool) -> tuple[PresenceAnswers, Sequence[str]]:
        return answers, ()
    return ask


async def admit(body: Body, *, context_for: Callable[[str], Context], ask: Ask | None,
                run: Run | None = None) -> Decision:
    """Answer one AdmissionReview. `context_for(namespace)` supplies config and defaults;
    `ask` answers the presence questions (None: nobody can ask, as offline, and every
    `if-present` mirror is used as if it had the image); `run` runs the CPU-bound steps
    (None: right here, called, not awaited: this is every admission's path).
    Raises `BadRequest` for a body that is not an AdmissionReview."""
    request = decode(body) if run is None else await run(decode, body)
    ctx = context_for(request.namespace)
    asked = questions(request, ctx) if ask is not None else None
    if not asked or ask is None:
        return decide(request, ctx) if run is None else await run(decide, request, ctx)
    worth = (worth_asking(request, ctx, asked=asked) if run is None
             else await run(worth_asking, request, ctx, asked=asked))
    if isinstance(worth, Decision):   # refused with no answer at all: nothing to ask
        return worth
    presence, notes = await ask(worth, config=ctx.config, dry_run=request.dry_run)
    if run is None:
        return decide(request, ctx, presence=presence, notes=notes)
    return await run(decide, request, ctx, presence=presence, notes=notes)


def admit_offline(body: Body, *, context_for: Callable[[str], Context]) -> Decision:
    """`admit` with nobody to ask, for callers without an event loop (the tests, the fuzzer):
    the same coroutine, driven to its end here; with no `ask` and steps run in place,
    nothing in it waits on anything."""
    coroutine = admit(body, context_for=context_for, ask=None)
    try:
        coroutine.send(None)
    except StopIteration as done:
        decision: Decision = done.value
        return decision
    coroutine.close()
    raise RuntimeError("admit waited on something with nobody to ask")
