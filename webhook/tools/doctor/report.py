"""What a step finds: `Step` (ok or failed, with the fix), and `_Fail`, which ends one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STEPS = ("resolve", "connect", "tls", "v2", "auth", "manifest")


@dataclass
class Step:
    """One step's outcome. `detail` is the finding in one line; `notes` more lines for
    people (the chain, the dates); `fix` what to do ("" when ok); `facts` the same
    findings as data for `--json` (addresses, SANs, digest, ...)."""

    step: str
    ok: bool
    detail: str
    fix: str = ""
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "ok": self.ok, "detail": self.detail,
                "fix": self.fix or None, "notes": self.notes, "facts": self.facts}


class _Fail(Exception):
    """Ends a step as failed, from however deep the finding was made."""

    def __init__(self, detail: str, fix: str = "", notes: list[str] | None = None,
                 facts: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix
        self.notes, self.facts = notes or [], facts or {}
