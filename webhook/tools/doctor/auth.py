"""Step 5, `auth`: the `/v2/` challenge answered, as a node answers it with a pull secret.

Basic with `--creds` (a dockerconfigjson: what a pull secret holds), or a Bearer token
from the challenge's realm, anonymous without `--creds`. Credentials never go over plain
http://, to the registry or to its token service.
"""

from __future__ import annotations

from webhook.adapters.registry.challenge import basic_authorization
from webhook.core.values.keys import KCI_INSECURE_REGISTRY
from webhook.tools.doctor.lazy import describe_transport_error, httpx
from webhook.tools.doctor.report import Step, _Fail
from webhook.tools.doctor.session import Session, _error_codes


def check_auth(s: Session) -> Step:
    creds, user = s.o.credentials, _who(s)
    if s.challenge is None:
        notes = ["--creds not needed: the registry asks for none"] if creds else []
        return Step("auth", True, "none needed: /v2/ answers without credentials",
                    notes=notes, facts={"scheme": None})
    scheme, params = s.challenge
    if scheme == "basic":
        if creds is None:
            raise _no_credentials(s, f"Basic realm=\"{params.get('realm', '')}\"")
        if s.t.scheme == "http":
            raise _Fail("the registry asks for a password over plain HTTP: a node would "
                        "send it in clear text, and kci-webhook never does",
                        "serve the registry over TLS (a self-signed certificate with "
                        f"{KCI_INSECURE_REGISTRY} is still better than clear text)",
                        facts={"scheme": "basic"})
        authorization = basic_authorization(creds)
        response = s.checked("GET", s.url("/v2/"), {"Authorization": authorization})
        if response.status_code == 200:
            if not (s.api_version or response.headers.get("docker-distribution-api-version")):
                raise _Fail(f"{user} accepted, but GET /v2/ → 200 without a "
                            "Docker-Distribution-Api-Version header: "
                            f"{s.t.registry} is a password-protected web server, not a "
                            "container registry", "point at the registry's API: the "
                            "host[:port] whose /v2/ answers with a "
                            "Docker-Distribution-Api-Version header",
                            facts={"scheme": "basic", "problem": "not-a-registry"})
            s.basic = authorization
            return Step("auth", True, f"{user} accepted (Basic)",
                        facts={"scheme": "basic", "username": creds.username})
        raise _refused(s, response, f"the registry refused {user}")
    if scheme == "bearer":
        token = _token(s, None)
        response = s.checked("GET", s.url("/v2/"), {"Authorization": f"Bearer {token}"})
        realm = params.get("realm", "")
        facts = {"scheme": "bearer", "realm": realm, "service": params.get("service"),
                 "username": creds.username if creds else None}
        if response.status_code == 200:
            if creds is None:
                return Step("auth", True, f"anonymous token from {realm} accepted: "
                            "public repositories pull without a pull secret",
                            notes=["private repositories need one: check with --creds "
                                   "and --image"], facts=facts)
            return Step("auth", True, f"{user} got a token from {realm} and the "
                        "registry accepts it (Bearer)", facts=facts)
        raise _Fail(f"the registry refused the token from {realm}: GET /v2/ → "
                    f"{response.status_code}", "the registry and its token service "
                    "disagree (issuer, service name or the token's signing "
                    "certificate): fix the registry's auth.token settings", facts=facts)
    raise _Fail(f"the registry asks for {scheme!r} authentication: nodes answer only "
                "Basic and Bearer challenges", "configure Basic or token (Bearer) auth "
                "on the registry", facts={"scheme": scheme})


def _who(s: Session) -> str:
    creds = s.o.credentials
    return f"user {creds.username!r} (from {s.o.creds_file})" if creds else "anonymous"


def _no_credentials(s: Session, challenge: str, *, scheme: str = "basic") -> _Fail:
    if s.o.creds_file:
        why = (f"--creds {s.o.creds_file} has no entry for {s.t.registry} (keys "
               "match host:port exactly, as the kubelet matches them)")
    else:
        why = "no --creds given"
    return _Fail(
        f"the registry requires a username and password ({challenge}); {why}",
        "a pull needs a pull secret: kubectl create secret docker-registry NAME "
        f"--docker-server={s.t.registry} --docker-username=... --docker-password=..., "
        "named in the pod's imagePullSecrets (or the mirror's pullSecret); check it here "
        "with --creds FILE (its .dockerconfigjson)", facts={"scheme": scheme})


def _refused(s: Session, response: httpx.Response, who: str) -> _Fail:
    code = response.status_code
    if code == 401:
        detail = f"{who}: 401 Unauthorized — wrong username or password"
    elif code == 403:
        detail = f"{who}: 403 Forbidden — the account may not log in"
    else:
        detail = f"{who}: {code} {response.reason_phrase}{_error_codes(response)}"
    return _Fail(detail, f"correct the password in {s.o.creds_file} and in the pull "
                 "secret it stands for (kubectl create secret docker-registry ... "
                 f"--docker-server={s.t.registry}); the account must exist on the "
                 "registry", facts={"status": code})


def _token(s: Session, scope: str | None) -> str:
    """A Bearer token from the challenge's realm, as the presence check fetches one."""
    assert s.challenge is not None
    params = s.challenge[1]
    realm = params.get("realm", "")
    try:
        url = httpx.URL(realm)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise _Fail(f"the Bearer challenge's realm {realm[:200]!r} is not an http(s) URL",
                    "fix the registry's auth.token.realm")
    query = {k: v for k, v in (("service", params.get("service")), ("scope", scope)) if v}
    headers = {}
    creds = s.o.credentials
    notes = []
    if creds is not None and url.scheme == "https":
        headers["Authorization"] = basic_authorization(creds)
    elif creds is not None:
        notes.append(f"credentials are never sent to a plain http:// token service "
                     f"({realm}): asked anonymously")
    try:
        response = s.request("GET", url.copy_merge_params(query), headers)
    except httpx.HTTPError as exc:
        raise _Fail(f"token service {realm[:200]}: {describe_transport_error(exc)}",
                    "nodes must reach the token service too, and trust its certificate "
                    "(the same CA fixes as for the registry apply)", notes) from None
    if response.status_code in (401, 403):
        if creds is not None and "Authorization" not in headers:
            raise _Fail(f"the token service {realm[:200]} is plain http://: credentials "
                        "are never sent to it, and it gives no anonymous token "
                        f"({response.status_code})", "serve the token service over "
                        "https:// (the registry's auth.token.realm)", notes)
        if creds is None:
            raise _no_credentials(s, f"the token service {realm[:200]} gives no "
                                  f"anonymous token: {response.status_code}",
                                  scheme="bearer")
        raise _refused(s, response, f"the token service {realm[:200]} refused {_who(s)}")
    if response.status_code != 200:
        raise _Fail(f"token service {realm[:200]}: HTTP {response.status_code}"
                    f"{_error_codes(response)}", "the token service is not healthy: "
                    "look at its logs", notes)
    try:
        body = response.json()
        token = body.get("token") or body.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise _Fail(f"token service {realm[:200]}: the answer has no token",
                    "the realm must answer {\"token\": ...} (distribution token spec)",
                    notes)
    return token
