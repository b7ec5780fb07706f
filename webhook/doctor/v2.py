"""Step 4, `v2`: `GET /v2/`, the registry API's ping, and its `WWW-Authenticate` challenge.

200 lets anyone in; 401 with a challenge is what `auth` answers next. Anything else is
named: a redirect, a 404 (not a registry API), a TLS port asked in plain HTTP (`--http`).
"""

from __future__ import annotations

import ssl
from typing import Any

from webhook.annotations import KCI_HTTP_REGISTRY
from webhook.doctor.certs import _unverified_context
from webhook.doctor.lazy import httpx, registry
from webhook.doctor.report import Step, _Fail
from webhook.doctor.session import Session, _error_codes


def check_v2(s: Session) -> Step:
    url = s.url("/v2/")
    try:
        response = s.request("GET", url)
    except httpx.HTTPError as exc:
        detail = f"GET /v2/: {registry.describe_transport_error(exc)}"
        if s.t.scheme == "http" and _speaks_tls(s):
            raise _speaks_tls_failure(s, detail) from None
        raise _Fail(detail, f"check that {s.t.registry} is a registry and answers on "
                    f"port {s.t.port}") from None
    code = response.status_code
    facts: dict[str, Any] = {"status": code}
    api = response.headers.get("docker-distribution-api-version")
    if api:
        facts["api_version"] = api
    if code == 200:
        notes = [] if api else ["no Docker-Distribution-Api-Version header: is this a "
                                "registry or a web page?"]
        return Step("v2", True, f"GET /v2/ → 200: the registry API answers "
                    f"({api or 'no API version header'}) and lets anyone in",
                    notes=notes, facts=facts)
    if code == 401:
        headers = response.headers.get_list("www-authenticate")
        s.challenge = registry.parse_challenge(headers)
        if s.challenge is None:
            raise _Fail("GET /v2/ → 401 without a WWW-Authenticate challenge: no client "
                        "can log in", "fix the registry's (or its proxy's) auth "
                        "configuration", facts=facts)
        facts["challenge"] = {"scheme": s.challenge[0], **s.challenge[1]}
        return Step("v2", True, f"GET /v2/ → 401: the registry API answers and asks "
                    f"for authentication: {headers[0][:200]}", facts=facts)
    if s.t.scheme == "http" and (b"HTTPS server" in response.content[:300]
                                 or _speaks_tls(s)):
        raise _speaks_tls_failure(s, f"GET /v2/ → {code}")
    if 300 <= code < 400:
        where = response.headers.get("location", "?")[:200]
        raise _Fail(f"GET /v2/ → {code}: a redirect to {where}",
                    "use the registry's own address (the one it redirects to) in "
                    "image references", facts=facts)
    if code == 404:
        raise _Fail("GET /v2/ → 404: this is not a registry API (a web UI? another "
                    "service on this port?)", "point at the registry's API: "
                    "host[:port] whose /v2/ answers 200 or 401", facts=facts)
    raise _Fail(f"GET /v2/ → {code} {response.reason_phrase}{_error_codes(response)}",
                "the registry is not healthy: look at its logs", facts=facts)


def _speaks_tls(s: Session) -> bool:
    try:
        with s.dial() as sock, _unverified_context().wrap_socket(
                sock, server_hostname=s.t.host):
            return True
    except (ssl.SSLError, OSError):
        return False


def _speaks_tls_failure(s: Session, detail: str) -> _Fail:
    return _Fail(f"{detail}: this port speaks TLS (HTTPS), not plain HTTP",
                 f"drop --http, and remove {s.t.registry} from {KCI_HTTP_REGISTRY} "
                 "(the node would speak plain HTTP to a TLS port)",
                 facts={"problem": "speaks-tls"})
