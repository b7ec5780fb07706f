"""The one admission entry point (`webhook.core.admission.pipeline.admit`): what it asks, when,
and where its steps run, with the shell's parts (`ask`, `run`) as plain callables."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest

from tests.conftest import pod_review
from webhook.core.admission.envelope import Decision
from webhook.core.admission.pipeline import admit, admit_offline, answer_from
from webhook.core.config import Config, load_config
from webhook.core.mutation.context import Context
from webhook.core.mutation.images import PresenceAnswers, PresenceQuestion

IF_PRESENT = load_config("""
mirrors:
  - endpoint: https://cache.example:5000
    hosts: [docker.io]
    policy: if-present
""", source="test")
CACHED = "cache.example:5000/library/busybox:1.36"


def review(*, annotations: dict[str, str] | None = None) -> bytes:
    pod = {"metadata": {"name": "web", "annotations": annotations or {}},
           "spec": {"containers": [{"name": "web", "image": "busybox:1.36"}]}}
    return orjson.dumps(pod_review(pod, namespace="team-a"))


def context_for(namespace: str) -> Context:
    return Context(config=IF_PRESENT, namespace=namespace)


class Recorder:
    """An `Ask` that answers from a table and notes what it was asked."""

    def __init__(self, answers: PresenceAnswers) -> None:
        self.answers = answers
        self.asked: list[list[PresenceQuestion]] = []

    async def __call__(self, asked: list[PresenceQuestion], /, *, config: Config,
                       dry_run: bool) -> tuple[PresenceAnswers, Sequence[str]]:
        self.asked.append(asked)
        return self.answers, ["asked the mirrors"]


def images(decision: Decision) -> list[str]:
    ops = orjson.loads(base64.b64decode(orjson.loads(decision.body)["response"]["patch"]))
    return [op["value"] for op in ops if op["path"].endswith("/image")]


def test_the_answers_decide_the_rewrite_and_the_shells_notes_come_first() -> None:
    ask = Recorder({("https://cache.example:5000", "busybox:1.36"): (True, "")})
    decision = asyncio.run(admit(review(), context_for=context_for, ask=ask))
    assert [[(m.host, image) for m, _ref, image in asked] for asked in ask.asked] == [
        [("cache.example:5000", "busybox:1.36")]]
    assert decision.outcome == "mutated" and images(decision) == [CACHED]
    assert decision.warnings[0] == "asked the mirrors"


def test_an_image_the_mirror_lacks_is_kept_with_the_reason() -> None:
    ask = answer_from({("https://cache.example:5000", "busybox:1.36"): (False, "absent")})
    decision = asyncio.run(admit(review(), context_for=context_for, ask=ask))
    assert decision.outcome == "mutated" and images(decision) == []   # the record only
    assert decision.words == {"web": "kept:timeout"}   # "absent" is not the shell's wording
    assert any("kept, pulled from its own registry (mirror cache.example:5000: absent)" in w
               for w in decision.warnings)


def test_a_refused_pod_asks_nothing() -> None:
    ask = Recorder({})
    body = review(annotations={"k8s.ksyun.com/kci-dns-config": "not json"})
    decision = asyncio.run(admit(body, context_for=context_for, ask=ask))
    assert decision.outcome == "denied"
    assert ask.asked == []


def test_every_cpu_bound_step_goes_through_run() -> None:
    ran: list[str] = []

    async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        ran.append(fn.__name__)
        return fn(*args, **kwargs)

    ask = answer_from({("https://cache.example:5000", "busybox:1.36"): (True, "")})
    asyncio.run(admit(review(), context_for=context_for, ask=ask, run=run))
    assert ran == ["decode", "worth_asking", "decide"]


def test_nobody_to_ask_uses_if_present_mirrors_as_the_offline_preview_does() -> None:
    decision = admit_offline(review(), context_for=context_for)
    assert decision.outcome == "mutated" and images(decision) == [CACHED]


ALWAYS = load_config("""
mirrors:
  - endpoint: https://cache.example:5000
    hosts: [docker.io]
""", source="test")


@pytest.mark.parametrize("field", ["image", "name"])
@pytest.mark.parametrize("value", [1.5, 7, True, None, [], {}], ids=repr)
def test_a_container_field_of_another_type_never_breaks_a_create(field: str,
                                                                 value: object) -> None:
    """The API server decodes a pod before it calls us, so this never arrives from it; from
    anyone else it is an answer, never an internal error. The other container is still
    rewritten."""
    pod: dict[str, Any] = {"metadata": {"name": "web"}, "spec": {"containers": [
        {"name": "odd", "image": "busybox:1.36"}, {"name": "web", "image": "nginx:1.27"}]}}
    pod["spec"]["containers"][0][field] = value
    decision = admit_offline(orjson.dumps(pod_review(pod)),
                             context_for=lambda ns: Context(config=ALWAYS, namespace=ns))
    assert decision.outcome == "mutated", decision.message
    assert "cache.example:5000/library/nginx:1.27" in images(decision)
