"""Answering a registry's `WWW-Authenticate` challenge: which one to answer, and how.

A registry that wants credentials answers 401 with one or more challenges; containerd
answers Bearer if offered (a token from the challenge's realm), else Basic. The presence
check (`client`) and `kci-webhook doctor` choose the same way, from here. No I/O.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from webhook.adapters.registry.credentials import Credentials

_CHALLENGE_PARAM_RE = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge: its lower-case scheme and parameters (names lower-case, unquoted)."""

    scheme: str  # "basic" | "bearer" | anything else the registry said
    params: dict[str, str] = field(hash=False, compare=False)


def choose_challenge(headers: list[str]) -> Challenge | None:
    """The `WWW-Authenticate` challenge to answer: Bearer if offered, else the first."""
    challenges = []
    for header in headers:
        scheme, _, rest = header.strip().partition(" ")
        params = {name.lower(): value[1:-1].replace('\\"', '"') if value.startswith('"')
                  else value for name, value in _CHALLENGE_PARAM_RE.findall(rest)}
        challenges.append(Challenge(scheme.lower(), params))
    bearer = [c for c in challenges if c.scheme == "bearer"]
    return next(iter(bearer or challenges), None)


def parse_challenge(headers: list[str]) -> tuple[str, dict[str, str]] | None:
    """The `WWW-Authenticate` challenge a client answers, as the presence check chooses it
    (Bearer if offered, else the first): the lower-case scheme and its parameters (names
    lower-case, quotes removed). None when there is no header. For `kci-webhook doctor`,
    which walks the same flow one visible step at a time."""
    challenge = choose_challenge(headers)
    return None if challenge is None else (challenge.scheme, dict(challenge.params))


def basic_authorization(credentials: Credentials) -> str:
    """The `Authorization` header value for Basic auth with `credentials`."""
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")
