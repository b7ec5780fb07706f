"""One log line per admission that changed a pod, at the level and sampling an operator
chooses (`--log-changes off|debug|info`, `--log-changes-sample-rate`).

Off by default: a busy cluster admits pods by the thousand, and the record on each pod
(`kci-webhook/images`) and the metrics already say what happened. Turned on, the line
carries what changed: each rewritten container's new image and every container's word
from the record, beside the admission's usual fields (uid, namespace, pod, operation).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from webhook.core.admission.envelope import Decision

log = logging.getLogger("kci-webhook")

LEVELS = {"off": None, "debug": logging.DEBUG, "info": logging.INFO}


class ChangeLog:
    """Called with every admission's decision; logs the mutated ones, sampled."""

    def __init__(self, level: str = "off", sample_rate: float = 1.0, *,
                 draw: Callable[[], float] = random.random) -> None:
        if level not in LEVELS:
            raise ValueError(f"log-changes level must be one of {', '.join(LEVELS)}")
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("log-changes sample rate must be between 0 and 1")
        self.level = LEVELS[level]
        self.sample_rate = sample_rate
        self._draw = draw

    def __call__(self, endpoint: str, decision: Decision) -> None:
        level = self.level
        if level is None or decision.outcome != "mutated" or not log.isEnabledFor(level):
            return
        if self.sample_rate < 1.0 and self._draw() >= self.sample_rate:
            return
        log.log(level, "admission changed %s %s/%s", decision.kind or "object",
                decision.namespace, decision.name, extra={
                    "endpoint": endpoint, "uid": decision.uid,
                    "namespace": decision.namespace, "kind": decision.kind,
                    "object_name": decision.name, "operation": decision.operation,
                    "subresource": decision.sub_resource,
                    "rewritten": {name: new for name, (_old, new)
                                  in decision.rewritten.items()},
                    "images": decision.words, "warnings": len(decision.warnings)})


__all__ = ["LEVELS", "ChangeLog"]
