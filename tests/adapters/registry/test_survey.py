"""The survey of `plan` against a real registry (TLS with our CA, htpasswd auth): each
question asked once, answers kept for a second survey, and a mirror that never answers
paid for with one request, whatever the number of images asked of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.registry_support import (
    Registry,
    SilentServer,
    registry_fixture,  # noqa: F401 - the `registry` fixture
)
from webhook.adapters.registry.manifest import Presence
from webhook.adapters.registry.survey import Survey, survey
from webhook.core.config import config_from_data

TIMEOUT = 10.0   # generous: two shared cores
SHORT = 0.5


def test_each_question_is_asked_once_and_answered(registry: Registry, tmp_path: Path) -> None:
    mirror = registry.mirror(pullCredentialConfigPath=str(
        registry.docker_config(tmp_path / "config.json")))
    present, absent = (mirror, "kci/app", "1.0"), (mirror, "kci/nothere", "1.0")
    before = registry.count("HEAD", "/v2/kci/nothere/manifests/1.0")
    result = asyncio.run(survey([present, absent, present, absent], timeout=TIMEOUT))
    assert result.answers[present].status == "present"
    assert result.answers[absent] == Presence("absent", "manifest unknown (404)")
    assert registry.wait_count("HEAD", "/v2/kci/nothere/manifests/1.0", before + 1) \
        == before + 1


def test_a_second_survey_asks_only_what_is_new(registry: Registry, tmp_path: Path) -> None:
    mirror = registry.mirror(pullCredentialConfigPath=str(
        registry.docker_config(tmp_path / "config.json")))
    first = asyncio.run(survey([(mirror, "kci/app", "1.0")], timeout=TIMEOUT))
    sent = first.requests
    again = asyncio.run(survey([(mirror, "kci/app", "1.0"), (mirror, "kci/app", "2.0")],
                               timeout=TIMEOUT, into=first))
    assert again is first and first.answers[(mirror, "kci/app", "2.0")].status == "absent"
    assert first.requests > sent and \
        registry.count("HEAD", "/v2/kci/app/manifests/2.0") >= 1


def test_a_mirror_that_never_answers_costs_one_request() -> None:
    with SilentServer() as silent:
        mirror = config_from_data({"mirrors": [{"endpoint": f"https://{silent.host}",
                                                "hosts": ["docker.io"]}]},
                                  source="test").mirrors[0]
        asked = [(mirror, f"library/image{i}", "1.0") for i in range(40)]
        result = asyncio.run(survey(asked, timeout=SHORT))
    assert result.requests == 1
    assert {result.answers[q] for q in asked} == {Presence("error", f"timeout after {SHORT:g}s")}
    assert list(result.unreachable.values()) == [f"timeout after {SHORT:g}s"]


def test_an_unreachable_mirror_is_remembered_by_the_next_survey() -> None:
    with SilentServer() as silent:
        mirror = config_from_data({"mirrors": [{"endpoint": f"https://{silent.host}",
                                                "hosts": ["docker.io"]}]},
                                  source="test").mirrors[0]
        first = asyncio.run(survey([(mirror, "library/a", "1")], timeout=SHORT))
        asyncio.run(survey([(mirror, "library/b", "1")], timeout=SHORT, into=first))
    assert first.requests == 1
    assert first.answers[(mirror, "library/b", "1")].status == "error"


def test_nothing_to_ask_sends_nothing() -> None:
    assert asyncio.run(survey([], timeout=SHORT)) == Survey()
