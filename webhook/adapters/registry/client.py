"""The HTTP client of the presence check: one manifest HEAD to a mirror, as containerd's
resolver sends it, following a Basic or Bearer-token challenge.

Each mirror is asked with its own trust (`caFile` on top of the system store, or
`insecureSkipVerify`) and its pull credentials (the dockerconfigjson file named by
`pullCredentialConfigPath`). The challenge a mirror sent is remembered, and Bearer tokens
are cached for their lifetime, so a warm lookup is one HEAD; each lookup (all its round
trips together) is bounded by `timeout`.

Security: credentials never travel over plain http:// — not to an http:// mirror (even
with `allowCredentialsOverHTTP`, which is about the kubelet's pull secret) and not to an
http:// token realm; such checks are made anonymously. Redirects are not followed (a
registry answers a manifest HEAD directly), so an Authorization header cannot follow one
to another origin. Proxy environment variables are ignored: a mirror is a local copy,
reached directly.

The server's only HTTP client of registries (`kci-webhook doctor` has its own probes).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import httpx

from webhook.adapters.registry.challenge import Challenge, basic_authorization, choose_challenge
from webhook.adapters.registry.credentials import (
    Credentials,
    CredentialsError,
    credentials_from_dockerconfig,
)
from webhook.adapters.registry.describe import auth_hint, describe_transport_error
from webhook.adapters.registry.manifest import MANIFEST_ACCEPT, Presence
from webhook.core.config import Mirror

USER_AGENT = "kci-webhook (presence check)"
DEFAULT_TOKEN_LIFETIME = 60.0  # seconds, when the token service says nothing (distribution spec)

ClientKey = tuple[str, str, str | None, bool]


def client_key(mirror: Mirror) -> ClientKey:
    """What one connection pool serves: the mirror's scheme, host and trust settings."""
    return (mirror.scheme, mirror.host, mirror.ca_file, mirror.insecure_skip_verify)


class _Refused(Exception):
    """A lookup that ends in an error Presence before the manifest answer (token, config)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class RegistryClient:
    """Asks mirrors for manifests over httpx; one instance per presence checker.

    HTTP clients (HTTP/1.1, pooled keep-alive) are made lazily, one per `client_key`, each
    with `max_connections` connections. `requests` and `token_requests` count what was
    sent. `clock` (for token lifetimes) is for tests.
    """

    def __init__(self, *, timeout: float, max_connections: int, max_entries: int,
                 clock: Callable[[], float]) -> None:
        self._timeout, self._max_connections = timeout, max_connections
        self._max_entries, self._clock = max_entries, clock
        self._clients: dict[ClientKey, httpx.AsyncClient] = {}
        self._challenges: dict[tuple[str, str], Challenge] = {}
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}
        self.requests = 0
        self.token_requests = 0

    async def lookup(self, mirror: Mirror, repository: str, reference: str) -> Presence:
        """The mirror's answer for `repository` at `reference`, within `timeout`: a
        timeout, a refused token or config file, or a transport failure is an error
        Presence; anything else unexpected propagates to the caller."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._ask(mirror, repository, reference)
        except (TimeoutError, httpx.TimeoutException):
            return Presence("error", f"timeout after {self._timeout:g}s", timed_out=True)
        except _Refused as exc:
            return Presence("error", exc.detail)
        except httpx.HTTPError as exc:
            return Presence("error", describe_transport_error(exc))

    async def aclose(self) -> None:
        """Close every connection pool."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def _ask(self, mirror: Mirror, repository: str, reference: str) -> Presence:
        client = self._client(mirror)
        credentials = self._credentials(mirror)
        origin = (mirror.scheme, mirror.host)
        url = f"{mirror.scheme}://{mirror.host}/v2/{repository}/manifests/{reference}"
        scope = f"repository:{repository}:pull"
        challenge = self._challenges.get(origin)
        authorization = None
        if challenge is not None:  # answer the challenge we saw before, saving a round trip
            authorization = await self._authorize(client, challenge, credentials, scope)
        response = await self._head(client, url, authorization)
        if response.status_code == 401:
            fresh = choose_challenge(response.headers.get_list("www-authenticate"))
            if fresh is not None:
                self._challenges[origin] = fresh
                self._drop_token(fresh, credentials, scope)
                retry = await self._authorize(client, fresh, credentials, scope)
                if retry is not None and retry != authorization:
                    response = await self._head(client, url, retry)
        return self._interpret(response, mirror, credentials, repository)

    async def _head(self, client: httpx.AsyncClient, url: str,
                    authorization: str | None) -> httpx.Response:
        headers = {"Accept": MANIFEST_ACCEPT}
        if authorization is not None:
            headers["Authorization"] = authorization
        self.requests += 1
        return await client.head(url, headers=headers)

    def _interpret(self, response: httpx.Response, mirror: Mirror,
                   credentials: Credentials | None, repository: str) -> Presence:
        code = response.status_code
        if code == 200:
            return Presence("present", digest=response.headers.get("docker-content-digest"))
        if code == 404:
            return Presence("absent", "manifest unknown (404)")
        if code == 401:
            return Presence("error", "401 unauthorized: " + auth_hint(mirror, credentials))
        if code == 403:
            return Presence("error", f"403 forbidden: the credentials may not pull "
                            f"{repository} (check pullCredentialConfigPath)")
        if code == 429:
            return Presence("error", "429 too many requests")
        if 300 <= code < 400:
            where = response.headers.get("location", "?")
            return Presence("error", f"HTTP {code} redirect to {where[:200]} (not followed)")
        return Presence("error", f"HTTP {code} {response.reason_phrase}".rstrip())

    # --- trust and credentials ----------------------------------------------------------

    def _client(self, mirror: Mirror) -> httpx.AsyncClient:
        key = client_key(mirror)
        client = self._clients.get(key)
        if client is None:
            verify: ssl.SSLContext | bool = False
            if mirror.scheme == "https":
                verify = _ssl_context(mirror)
            client = httpx.AsyncClient(
                verify=verify, http1=True, http2=False, trust_env=False,
                follow_redirects=False, headers={"User-Agent": USER_AGENT},
                timeout=httpx.Timeout(self._timeout),
                # As many connections as the presence checker's slots for this pool
                # (`presence._slot`): a request never waits in the pool, whose
                # bookkeeping grows with the square of its waiters.
                limits=httpx.Limits(max_connections=self._max_connections,
                                    max_keepalive_connections=min(4, self._max_connections),
                                    keepalive_expiry=30))
            self._clients[key] = client
        return client

    @staticmethod
    def _credentials(mirror: Mirror) -> Credentials | None:
        """Read on each lookup (not each check), so a rotated Secret is picked up."""
        if mirror.scheme != "https" or not mirror.pull_credential_config_path:
            return None  # never over plain http://, whatever allowCredentialsOverHTTP says
        try:
            return credentials_from_dockerconfig(mirror.pull_credential_config_path,
                                                 mirror.host)
        except CredentialsError as exc:
            raise _Refused(f"pullCredentialConfigPath {exc}") from None

    # --- authentication -----------------------------------------------------------------

    async def _authorize(self, client: httpx.AsyncClient, challenge: Challenge,
                         credentials: Credentials | None, scope: str) -> str | None:
        """The Authorization header answering `challenge`, or None to ask anonymously."""
        if challenge.scheme == "basic":
            return basic_authorization(credentials) if credentials is not None else None
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            return None
        key = self._token_key(challenge, credentials, scope)
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > self._clock():
            return f"Bearer {cached[0]}"
        token, lifetime = await self._fetch_token(client, challenge, credentials, scope)
        if len(self._tokens) >= self._max_entries:
            self._tokens.clear()
        # Renew a little early: a token that expires in flight costs a 401 round trip.
        self._tokens[key] = (token, self._clock() + max(lifetime - 10.0, lifetime / 2))
        return f"Bearer {token}"

    @staticmethod
    def _token_key(challenge: Challenge, credentials: Credentials | None,
                   scope: str) -> tuple[str, str, str, str]:
        return (challenge.params["realm"], challenge.params.get("service", ""), scope,
                credentials.username if credentials else "")

    def _drop_token(self, challenge: Challenge, credentials: Credentials | None,
                    scope: str) -> None:
        if challenge.scheme == "bearer" and "realm" in challenge.params:
            self._tokens.pop(self._token_key(challenge, credentials, scope), None)

    async def _fetch_token(self, client: httpx.AsyncClient, challenge: Challenge,
                           credentials: Credentials | None, scope: str) -> tuple[str, float]:
        realm = challenge.params["realm"]
        try:
            realm_url = httpx.URL(realm)
        except httpx.InvalidURL:
            raise _Refused(f"token realm {realm[:200]!r} is not a URL") from None
        if realm_url.scheme not in ("http", "https"):
            raise _Refused(f"token realm {realm[:200]!r} is not an http(s) URL")
        params = {"scope": scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        headers = {}
        if credentials is not None and realm_url.scheme == "https":
            headers["Authorization"] = basic_authorization(credentials)
        self.requests += 1
        self.token_requests += 1
        response = await client.get(realm_url, params=params, headers=headers)
        if response.status_code in (401, 403):
            if credentials is None:
                hint = "the token service requires credentials; set pullCredentialConfigPath"
            elif realm_url.scheme == "http":
                hint = "credentials are never sent to a plain http:// token service"
            else:
                hint = "check pullCredentialConfigPath (the token service refused them)"
            raise _Refused(f"{response.status_code} unauthorized from token service "
                           f"{realm[:200]}: {hint}")
        if response.status_code != 200:
            raise _Refused(f"token service {realm[:200]}: HTTP {response.status_code}")
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            token, lifetime = None, 0.0
        if not isinstance(token, str) or not token:
            raise _Refused(f"token service {realm[:200]}: answer has no token")
        return token, lifetime


def _ssl_context(mirror: Mirror) -> ssl.SSLContext:
    """The system trust store plus the mirror's caFile (containerd adds, never replaces),
    or no verification at all for insecureSkipVerify. TLS 1.2 at least."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mirror.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mirror.ca_file:
        try:
            context.load_verify_locations(cafile=mirror.ca_file)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise _Refused(f"caFile {mirror.ca_file}: cannot load: {reason}") from None
    return context
