"""The walk: the steps in order against one registry, stopping at the first failure."""

from __future__ import annotations

from collections.abc import Callable

from webhook.tools.doctor.auth import check_auth
from webhook.tools.doctor.connect import check_connect
from webhook.tools.doctor.handshake import check_tls
from webhook.tools.doctor.manifest import check_manifest
from webhook.tools.doctor.options import Options
from webhook.tools.doctor.report import Step, _Fail
from webhook.tools.doctor.resolve import check_resolve
from webhook.tools.doctor.session import Session
from webhook.tools.doctor.v2 import check_v2


class Doctor:
    """Runs the steps in order against one registry; `run()` stops at the first failure."""

    def __init__(self, options: Options) -> None:
        self.session = Session(options)

    def run(self) -> list[Step]:
        s = self.session
        checks: list[tuple[str, Callable[[Session], Step]]] = [
            ("resolve", check_resolve), ("connect", check_connect), ("tls", check_tls),
            ("v2", check_v2), ("auth", check_auth)]
        if s.o.repository is not None:
            checks.append(("manifest", check_manifest))
        steps: list[Step] = []
        try:
            for name, check in checks:
                try:
                    step = check(s)
                except _Fail as failed:
                    step = Step(name, False, failed.detail, failed.fix, failed.notes,
                                failed.facts)
                except Exception as exc:  # a diagnosis must end in a report, not a traceback
                    step = Step(name, False, f"unexpected {type(exc).__name__}: {exc}",
                                "this is a bug in kci-webhook doctor; please report it "
                                "with this output")
                steps.append(step)
                if not step.ok:
                    break
        finally:
            s.close()
        return steps
