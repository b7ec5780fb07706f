"""Step 4, `v2`: `GET /v2/`, the registry API's ping, and its `WWW-Authenticate` challenge.

Passing needs a registry's answer, not just any web server's: a registry names its API
in the `Docker-Distribution-Api-Version` header (distribution, Harbor, Docker Hub, ...).
200 with it lets anyone in; 401 with a challenge is what `auth` answers next (with the
header, or a token-auth Bearer challenge; a bare Basic challenge is confirmed after the
login). A 200 without the header is a web page: FAIL, not a registry. Anything else is
named: a redirect, a 404 (not a registry API), a TLS port asked in plain HTTP (`--http`).
"""

from __future__ import annotations

import ssl
from typing import Any

from webhook.adapters.registry.challenge import parse_challenge
from webhook.core.values.keys import KCI_HTTP_REGISTRY
from webhook.tools.doctor.certs import _unverified_context
from webhook.tools.doctor.lazy import describe_transport_error, httpx
from webhook.tools.doctor.report import Step, _Fail
from webhook.tools.doctor.session import Session, _error_codes


def check_v2(s: Session) -> Step:
    url = s.url("/v2/")
    try:
        response = s.request("GET", url)
    except httpx.HTTPError as exc:
        detail = f"GET /v2/: {describe_transport_error(exc)}"
        if s.t.scheme == "http" and _speaks_tls(s):
            raise _speaks_tls_failure(s, detail) from None
        raise _Fail(detail, f"check that {s.t.registry} is a registry and answers on "
                    f"port {s.t.port}") from None
    code = response.status_code
    facts: dict[str, Any] = {"status": code}
    api = response.headers.get("docker-distribution-api-version")
    s.api_version = api
    if api:
        facts["api_version"] = api
    if code == 200 and api:
        return Step("v2", True, f"GET /v2/ → 200: the registry API answers ({api}) and lets "
                    "anyone in", facts=facts)
    if code == 200:
        raise _not_a_registry(s, "GET /v2/ → 200 without a Docker-Distribution-Api-Version "
                              "header", response, facts)
    if code == 401:
        return _challenged(s, response, api, facts)
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


def _challenged(s: Session, response: httpx.Response, api: str | None,
                facts: dict[str, Any]) -> Step:
    """401: a registry's answer when it names the API version, or challenges as the
    token-auth spec says (Bearer with a realm); a bare Basic challenge is what any
    password-protected web server sends, so it is confirmed after logging in (auth)."""
    headers = response.headers.get_list("www-authenticate")
    s.challenge = parse_challenge(headers)
    if s.challenge is None:
        raise _Fail("GET /v2/ → 401 without a WWW-Authenticate challenge: no client "
                    "can log in", "fix the registry's (or its proxy's) auth "
                    "configuration", facts=facts)
    scheme, params = s.challenge
    facts["challenge"] = {"scheme": scheme, **params}
    notes = []
    if not api:
        if scheme == "bearer" and params.get("realm"):
            notes.append("no Docker-Distribution-Api-Version header, but a registry's token "
                         "challenge")
        elif scheme == "basic":
            notes.append("no Docker-Distribution-Api-Version header: a Basic challenge is "
                         "also what any password-protected web server sends; the login "
                         "(auth) tells which this is")
        else:
            raise _not_a_registry(s, f"GET /v2/ → 401 with a {scheme!r} challenge and no "
                                  "Docker-Distribution-Api-Version header", response, facts)
    return Step("v2", True, f"GET /v2/ → 401: the registry API answers and asks for "
                f"authentication: {headers[0][:200]}", notes=notes, facts=facts)


def _not_a_registry(s: Session, detail: str, response: httpx.Response,
                    facts: dict[str, Any]) -> _Fail:
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    server = response.headers.get("server", "")
    answered = ", ".join(x for x in (f"Server: {server[:80]}" if server else "",
                                     kind and f"Content-Type: {kind[:80]}") if x)
    return _Fail(f"{detail}: {s.t.registry} is a web server, not a container registry"
                 f"{f' ({answered})' if answered else ''}",
                 "point at the registry's API: the host[:port] whose /v2/ answers with a "
                 "Docker-Distribution-Api-Version header (a registry's web UI, or another "
                 "service on this port, answers like this)",
                 facts={**facts, "problem": "not-a-registry"})


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
