"""Step 2, `connect`: TCP to the registry's port, trying each address in turn.

The first address that accepts is the one TLS and HTTP go to; refusals and timeouts are
told apart, because their fixes differ (nothing listens there, or something drops it).
"""

from __future__ import annotations

import socket
import time

from webhook.tools.doctor.report import Step, _Fail
from webhook.tools.doctor.session import Session
from webhook.tools.doctor.target import Target, _hostport


def check_connect(s: Session) -> Step:
    failures: list[str] = []
    kinds: set[str] = set()
    for address in s.addresses:
        started = time.monotonic()
        try:
            with socket.create_connection((address, s.t.port), s.o.timeout):
                elapsed = (time.monotonic() - started) * 1000
        except OSError as exc:
            kind, text = _connect_error(exc, s.o.timeout)
            kinds.add(kind)
            failures.append(f"{_hostport(address, s.t.port)}: {text}")
            continue
        s.address = address
        notes = [f"tried first, failed: {f}" for f in failures]
        return Step("connect", True, f"{_hostport(address, s.t.port)} accepted a TCP "
                    f"connection ({elapsed:.1f} ms)", notes=notes,
                    facts={"address": address, "port": s.t.port,
                           "milliseconds": round(elapsed, 1)})
    fix = _connect_fix(kinds, s.t)
    raise _Fail("; ".join(failures), fix, facts={"port": s.t.port})


def _connect_error(exc: OSError, timeout: float) -> tuple[str, str]:
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, TimeoutError):
        return "timeout", f"no answer within {timeout:g}s"
    return "other", exc.strerror or str(exc)


def _connect_fix(kinds: set[str], target: Target) -> str:
    if kinds == {"refused"}:
        return (f"nothing listens on port {target.port}: is the registry running, and is "
                f"{target.port} its port? An image reference without a port means "
                f"{'443' if target.scheme == 'https' else '80'}: write host:port in images "
                "and in the KCI registry annotations")
    if "timeout" in kinds:
        return ("a firewall or security group drops the traffic, or the address is wrong "
                "(check the DNS answer or the host alias)")
    return "check the network path from the nodes to the registry"
