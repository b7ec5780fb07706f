"""The log line per admission that changed a pod: off by default, at the level and share an
operator chooses, with what changed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest

from tests.builders import context, pod
from tests.conftest import pod_review
from webhook.core.admission.envelope import Decision
from webhook.core.admission.pipeline import admit_offline
from webhook.core.config import load_config
from webhook.server.changes import ChangeLog

CONFIG = load_config("""
mirrors:
  - endpoint: https://mirror.example:5000/v2/cache
    hosts: [docker.io]
""", source="test")


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def lines() -> Iterator[Lines]:
    logger = logging.getLogger("kci-webhook")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)          # as served: --log-level info
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def decision(*images: str) -> Decision:
    body = orjson.dumps(pod_review(pod(*images), namespace="team-a"))
    return admit_offline(body, context_for=lambda ns: context(CONFIG, namespace=ns))


def test_off_by_default(lines: Lines) -> None:
    ChangeLog()("mutate", decision("nginx:1.25"))
    assert lines.records == []


def test_at_info_a_changed_pod_is_one_line_with_what_changed(lines: Lines) -> None:
    changes = ChangeLog("info")
    changes("mutate", decision("nginx:1.25", "quay.io/a/b:1"))
    (line,) = lines.records
    assert line.levelno == logging.INFO
    assert line.getMessage() == "admission changed Pod team-a/p"
    assert line.rewritten == {"c0": "mirror.example:5000/cache/library/nginx:1.25"}  # type: ignore[attr-defined]
    assert line.images == {"c0": "mirror:mirror.example:5000",  # type: ignore[attr-defined]
                           "c1": "kept:no-mirror"}


def test_at_debug_it_shows_only_when_the_log_level_lets_it(lines: Lines) -> None:
    ChangeLog("debug")("mutate", decision("nginx:1.25"))
    assert lines.records == []
    logging.getLogger("kci-webhook").setLevel(logging.DEBUG)
    ChangeLog("debug")("mutate", decision("nginx:1.25"))
    assert [r.levelno for r in lines.records] == [logging.DEBUG]


def test_an_unchanged_pod_is_never_logged(lines: Lines) -> None:
    changes = ChangeLog("info")
    first = decision("nginx:1.25")
    assert first.outcome == "mutated"
    changes("mutate", Decision(body=b"", outcome="unchanged"))
    assert lines.records == []


def test_sampling_keeps_the_share_drawn(lines: Lines) -> None:
    draws = iter([0.05, 0.5, 0.09, 0.95])
    changes = ChangeLog("info", 0.1, draw=lambda: next(draws))
    for _ in range(4):
        changes("mutate", decision("nginx:1.25"))
    assert len(lines.records) == 2


@pytest.mark.parametrize(("level", "rate"), [("warning", 1.0), ("info", 1.5), ("info", -0.1)])
def test_bad_settings_are_refused(level: str, rate: float) -> None:
    with pytest.raises(ValueError):
        ChangeLog(level, rate)
