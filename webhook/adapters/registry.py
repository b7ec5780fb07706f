"""Presence checks against registry mirrors, for `policy: if-present`.

A node-level containerd mirror falls back to the upstream registry when the mirror lacks
an image. A webhook that rewrites the image blindly cannot fall back later, so before it
rewrites it asks the mirror the question containerd's resolver asks first:
`HEAD /v2/<namespace>/<repository>/manifests/<tag|digest>` with the OCI and Docker
manifest `Accept` types, the mirror's trust (`caFile` on top of the system store, or
`insecureSkipVerify`) and its pull credentials (the dockerconfigjson file named by
`pullCredentialConfigPath`), following a Basic or Bearer-token challenge.

The answer is a `Presence`: present, absent, or error with a detail that says why in the
words a person searches for (`x509: certificate signed by unknown authority`, `401
unauthorized`, `timeout after 1s`). Errors are never taken for absent: the caller keeps
the original image either way, but only absent is a fact worth caching.

Cost control, because this sits on every pod's creation path and a pod's author chooses
its images:
- answers are cached (present for `positive_ttl`, absent for `negative_ttl`); errors not;
- concurrent checks of the same (mirror, repository, reference) share one request;
- one admission takes at most `limit` questions past the cache (`answer_all`); the rest
  are not asked, and it waits at most its budget: the work a pod causes does not grow
  with its number of images;
- at most `max_in_flight_per_mirror` lookups send to one mirror at once; the others wait
  for a slot (a semaphore, not the HTTP client's pool), and one nobody waits for any more
  is abandoned before it sends anything;
- a mirror with `failures_before_cooldown` errors in a row is not asked for `cooldown`
  seconds (each check answers error at once, naming the last failure); only lookups a
  real admission waited for count (never a dry run's alone), and only the mirror's own
  failures (a wait for a slot, or a budget that ended before the lookup sent, never);
- the Basic/Bearer challenge a mirror sent is remembered, and Bearer tokens are cached
  for their lifetime, so a warm check is one HEAD;
- each lookup (all its round trips together, once it has a slot) is bounded by `timeout`.

Security: credentials never travel over plain http:// — not to an http:// mirror (even
with `allowCredentialsOverHTTP`, which is about the kubelet's pull secret) and not to an
http:// token realm; such checks are made anonymously. Redirects are not followed (a
registry answers a manifest HEAD directly), so an Authorization header cannot follow one
to another origin. Proxy environment variables are ignored: a mirror is a local copy,
reached directly.

This module and the server are the only ones that make HTTP calls.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import json
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from webhook.core.config import Config, Mirror
from webhook.core.errors import ConfigError
from webhook.core.reference import Reference, is_path_component_sequence, normalize_domain

log = logging.getLogger("kci-webhook.registry")

# What containerd's resolver accepts for a manifest (index/list first, as it asks).
MANIFEST_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "*/*",
))
USER_AGENT = "kci-webhook (presence check)"
MAX_DOCKERCONFIG_BYTES = 1024 * 1024  # a Secret holds at most 1 MiB
DEFAULT_TOKEN_LIFETIME = 60.0  # seconds, when the token service says nothing (distribution spec)

_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}",
                        re.ASCII)
_CHALLENGE_PARAM_RE = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')

# "unanswered": no answer came (the admission's budget ended, the lookup was cancelled);
# like an error, the image is kept, but nothing is said about the mirror.
Status = Literal["present", "absent", "error", "unanswered"]


# --- credentials ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password for one registry (the password never appears in a repr)."""

    username: str
    password: str = field(repr=False)


class CredentialsError(ConfigError):
    """A `pullCredentialConfigPath` file that cannot be used; the message names the file."""


def _config_key_host(key: str) -> str:
    """The `host[:port]` an `auths` key names: "https://h:5000/v1/" and "h:5000" alike."""
    text = key.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    return normalize_domain(text.split("/", 1)[0].lower())


def credentials_from_dockerconfig(path: Path | str, registry_host: str) -> Credentials | None:
    """The credentials for `registry_host` (`host[:port]`) in a Docker config file.

    Reads both shapes Kubernetes mounts: `.dockerconfigjson` / `~/.docker/config.json`
    (`{"auths": {...}}`) and the legacy `.dockercfg` (the `auths` mapping alone). An entry
    carries `auth` (base64 of `user:password`) or `username` + `password`. Keys may be
    written `host:port`, `https://host:port` or `https://host/v1/`; matching is exact on
    host and port (a key without a port does not match a registry with one, as in the
    kubelet), a key written exactly as the host winning over the others.

    Returns None when the file has no usable entry for the host (anonymous access is
    then tried). Raises CredentialsError, naming the file, when the file cannot be read
    or is not a Docker config at all: a broken credentials file is a configuration error
    to report, not a reason to pull anonymously in silence. Credential helpers
    (`credsStore`, `credHelpers`) and identity tokens are not supported.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_DOCKERCONFIG_BYTES + 1)
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_DOCKERCONFIG_BYTES:
        raise CredentialsError(f"{path}: larger than {MAX_DOCKERCONFIG_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"{path}: expected a JSON object with \"auths\"")
    auths = data.get("auths", data if _looks_legacy(data) else {})
    if not isinstance(auths, dict):
        raise CredentialsError(f"{path}: \"auths\" must be an object")
    wanted = normalize_domain(registry_host.strip().lower())
    keys = sorted((k for k in auths if isinstance(k, str) and _config_key_host(k) == wanted),
                  key=lambda k: k.strip().lower() != wanted)
    for key in keys:
        credentials = _entry_credentials(auths[key], path, key)
        if credentials is not None:
            return credentials
    return None


def _looks_legacy(data: dict[str, object]) -> bool:
    """A `.dockercfg`: every value an entry object, and no config.json keys."""
    return bool(data) and all(isinstance(v, dict) and ("auth" in v or "username" in v)
                              for v in data.values())


def _entry_credentials(entry: object, path: Path, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        raise CredentialsError(f"{path}: auths[{key!r}] must be an object")
    auth = entry.get("auth")
    if isinstance(auth, str) and auth.strip():
        text = auth.strip()
        try:
            decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"{path}: auths[{key!r}].auth is not base64 of "
                                   "\"user:password\"") from None
        username, colon, password = decoded.partition(":")
        if not colon or not username:
            raise CredentialsError(f"{path}: auths[{key!r}].auth does not decode to "
                                   "\"user:password\"")
        return Credentials(username, password)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and user and isinstance(secret, str):
        return Credentials(user, secret)
    return None


# --- the files a config names --------------------------------------------------------------


def config_files(config: Config) -> tuple[str, ...]:
    """Every file the config names (as written), in config order: what a change of the
    config's meaning can come from besides the config file itself."""
    return tuple(dict.fromkeys(
        path for mirror in config.mirrors
        for path in (mirror.ca_file, mirror.pull_credential_config_path) if path))


def check_config_files(config: Config) -> None:
    """Refuse a config whose files cannot be used, as the mirror checks would use them:
    each `caFile` must load as a PEM bundle of at least one certificate, each
    `pullCredentialConfigPath` must read and parse as a Docker config. Relative paths
    are the server's working directory's, as the checks open them; the message shows
    where that led. Raises ConfigError naming the config, the key and the file."""
    problems = []
    for index, mirror in enumerate(config.mirrors):
        where = f"mirrors[{index}]"
        if mirror.ca_file:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
                    cafile=mirror.ca_file)
            except (OSError, ssl.SSLError) as exc:
                problems.append(f"{where}.caFile ({_shown(mirror.ca_file)}): cannot load a "
                                f"PEM certificate: {_reason(exc)}")
        if mirror.pull_credential_config_path:
            try:
                credentials_from_dockerconfig(mirror.pull_credential_config_path, mirror.host)
            except CredentialsError as exc:
                reason = str(exc).removeprefix(f"{Path(mirror.pull_credential_config_path)}: ")
                problems.append(f"{where}.pullCredentialConfigPath "
                                f"({_shown(mirror.pull_credential_config_path)}): {reason}")
    if problems:
        raise ConfigError("\n".join(f"{config.source}: {p}" for p in problems))


def _shown(path: str) -> str:
    """A relative path with the absolute one it stands for."""
    absolute = str(Path(path).absolute())
    return path if absolute == path else f"{path} = {absolute}"


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return "no certificate in it" if exc.reason == "NO_CERTIFICATE_OR_CRL_FOUND" \
            else str(exc.reason or exc)
    return exc.strerror or str(exc)


# --- presence -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Presence:
    """The mirror's answer. `detail` says why, for a warning or a log line (empty when
    present); `digest` is the manifest digest the mirror reported, when present."""

    status: Status
    detail: str = ""
    digest: str | None = None

    @property
    def present(self) -> bool:
        return self.status == "present"


def manifest_reference(ref: Reference) -> str:
    """What to ask the mirror for: the digest when pinned (what containerd pulls), else the
    tag, else "latest" (the reference grammar does not add it; the pull does)."""
    return ref.digest or ref.tag or "latest"


@dataclass(frozen=True, slots=True)
class _Challenge:
    scheme: str  # "basic" | "bearer" | anything else the registry said
    params: dict[str, str] = field(hash=False, compare=False)


@dataclass(slots=True)
class _Health:
    failures: int = 0
    until: float = 0.0
    last: str = ""


class _Refused(Exception):
    """A lookup that ends in an error Presence before the manifest answer (token, config)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


_Key = tuple[Mirror, str, str]
_ClientKey = tuple[str, str, str | None, bool]

_STATS = ("checks", "cache_hits", "cache_misses", "coalesced", "lookups", "requests",
          "token_requests", "errors", "cooldown_skips", "not_asked", "abandoned",
          "cancelled")


@dataclass(slots=True, eq=False)
class _Lookup:
    """One lookup in flight, shared by every admission that waits for its answer.

    `waiters`: admissions waiting now; when the last one leaves before the lookup took a
    slot of its mirror, nobody needs it any more and it is abandoned. `started`: it holds
    a slot (its request may be on the wire; it then runs to its own timeout and fills the
    cache). `counts`: a failure counts toward the mirror's cool-down — only when some
    admission that waited for it was not a dry run."""

    key: _Key
    waiters: int = 0
    started: bool = False
    counts: bool = False
    task: asyncio.Task[Presence] | None = None


class PresenceChecker:
    """Asks mirrors whether they hold a manifest; caches, coalesces, bounds, and backs off.

    One instance per config and event loop, shared by all admissions. HTTP clients
    (HTTP/1.1, pooled keep-alive) are made lazily, one per mirror host and trust
    settings, each with `max_in_flight_per_mirror` connections and a semaphore of as many
    slots in front of it, so requests wait (cheaply, and abandonably) for a slot and never
    inside the client's pool. Closed by `aclose()`, or, while admissions still use it, by
    `retire()` once the last `release()`s it (a config reload). `clock` is for tests.
    """

    def __init__(self, *, positive_ttl: float = 300, negative_ttl: float = 30,
                 cooldown: float = 30, failures_before_cooldown: int = 3,
                 timeout: float = 1.0, max_entries: int = 10_000,
                 max_in_flight_per_mirror: int = 16,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if timeout <= 0 or failures_before_cooldown < 1 or max_entries < 1 \
                or max_in_flight_per_mirror < 1:
            raise ValueError("timeout must be > 0, failures_before_cooldown, max_entries "
                             "and max_in_flight_per_mirror >= 1")
        self._positive_ttl, self._negative_ttl = positive_ttl, negative_ttl
        self._cooldown, self._threshold = cooldown, failures_before_cooldown
        self._timeout, self._max_entries, self._clock = timeout, max_entries, clock
        self._max_in_flight = max_in_flight_per_mirror
        self._cache: dict[_Key, tuple[Presence, float]] = {}
        self._inflight: dict[_Key, _Lookup] = {}
        self._health: dict[Mirror, _Health] = {}
        self._clients: dict[_ClientKey, httpx.AsyncClient] = {}
        self._slots: dict[_ClientKey, asyncio.Semaphore] = {}
        self._challenges: dict[tuple[str, str], _Challenge] = {}
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}
        self._stats = dict.fromkeys(_STATS, 0)
        self._closed = False
        self._holders = 0
        self._retired = False

    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def stats(self) -> dict[str, int]:
        """Counters since start: `checks` (questions), `cache_hits`, `cache_misses` (of
        which `coalesced` joined a lookup in flight and `cooldown_skips` met a cooling
        mirror), `lookups` (started), `requests` (HTTP requests sent, token requests
        included), `token_requests`, `errors` (lookups that ended in error), `not_asked`
        (questions past an admission's limit), `abandoned` (lookups cancelled before they
        took a slot: nobody waited for them any more), `cancelled` (answers lost to a
        lookup cancelled by `aclose`)."""
        return dict(self._stats)

    # --- asking -----------------------------------------------------------------------

    async def check_image(self, mirror: Mirror, ref: Reference, *,
                          dry_run: bool = False) -> Presence:
        """`check` for a parsed source reference (its path; digest over tag)."""
        return await self.check(mirror, ref.path, manifest_reference(ref), dry_run=dry_run)

    async def check(self, mirror: Mirror, source_path: str, reference: str, *,
                    dry_run: bool = False) -> Presence:
        """Whether `mirror` holds `source_path` at `reference` (a tag or a digest).

        `source_path` is the repository path on the source registry (`Reference.path`,
        e.g. "library/nginx"); the mirror's namespace is prepended here, as the rewrite
        does. Never raises for a registry's behaviour. Cancelling the caller leaves a
        lookup that already took its slot running, so its answer is cached for the next
        pod; one still waiting for a slot is abandoned when nobody else waits for it.
        `dry_run`: a failure of this lookup never counts toward the mirror's cool-down.
        """
        answer, = await self._answer_all([(mirror, source_path, reference)], budget=None,
                                         limit=1, dry_run=dry_run)
        return answer or Presence("unanswered", "not asked")

    async def answer_all(self, questions: Sequence[tuple[Mirror, Reference]], *,
                         budget: float, limit: int, dry_run: bool = False
                         ) -> list[Presence | None]:
        """The answers to one admission's questions, in order, within `budget` seconds.

        Answers the cache (or a cool-down) holds come at once; of the rest, the first
        `limit` start a lookup or join one in flight, and the others are not asked: None.
        A lookup that has not answered when the budget ends answers "unanswered"; this
        admission stops waiting for it, and a lookup nobody waits for any more that has not
        yet taken a slot of its mirror is abandoned (never sent). So the work one admission
        causes is at most `limit` lookups, whatever the number of images, and the time it
        waits is at most `budget`. `dry_run`: its failures never cool a mirror down.
        Never raises but for the caller's own cancellation.
        """
        return await self._answer_all(
            [(mirror, ref.path, manifest_reference(ref)) for mirror, ref in questions],
            budget=budget, limit=limit, dry_run=dry_run)

    async def _answer_all(self, questions: list[tuple[Mirror, str, str]], *,
                          budget: float | None, limit: int, dry_run: bool
                          ) -> list[Presence | None]:
        answers: list[Presence | None] = [None] * len(questions)
        joined: dict[int, _Lookup] = {}
        for index, (mirror, source_path, reference) in enumerate(questions):
            prepared = self._prepare(mirror, source_path, reference)
            if isinstance(prepared, Presence):
                answers[index] = prepared
            elif len(joined) < limit:
                joined[index] = self._join(prepared, counts=not dry_run)
            else:
                self._stats["not_asked"] += 1
        if not joined:
            return answers
        try:
            await asyncio.wait({lookup.task for lookup in joined.values()
                                if lookup.task is not None}, timeout=budget)
        finally:   # also when the caller is cancelled: leave every lookup it joined
            for index, lookup in joined.items():
                answers[index] = self._leave(lookup, budget)
        return answers

    def _prepare(self, mirror: Mirror, source_path: str, reference: str) -> Presence | _Key:
        """The answer without a lookup (invalid input, cache, cool-down), or what to look up."""
        self._stats["checks"] += 1
        if self._closed:
            return Presence("error", "presence checker is closed")
        if not is_path_component_sequence(source_path):
            return Presence("error", f"invalid repository path {source_path[:300]!r}")
        if not (_TAG_RE.fullmatch(reference) or _DIGEST_RE.fullmatch(reference)):
            return Presence("error", f"invalid tag or digest {reference[:300]!r}")
        if not mirror.host:
            return Presence("error", "mirror has no host")
        key: _Key = (mirror, mirror.repository(source_path), reference)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            self._stats["cache_hits"] += 1
            return cached[0]
        self._stats["cache_misses"] += 1
        if key in self._inflight:
            return key
        health = self._health.get(mirror)
        if health is not None and health.until > now:
            self._stats["cooldown_skips"] += 1
            return Presence("error", f"mirror in cool-down after {health.failures} "
                            f"failures (last: {health.last}); next try in "
                            f"{health.until - now:.0f}s")
        return key

    def _join(self, key: _Key, *, counts: bool) -> _Lookup:
        """Wait for the lookup of `key` in flight, or start it."""
        lookup = self._inflight.get(key)
        if lookup is not None:
            self._stats["coalesced"] += 1
        else:
            self._stats["lookups"] += 1
            lookup = self._inflight[key] = _Lookup(key)
            lookup.task = asyncio.create_task(self._lookup(key, lookup),
                                              name=f"presence {key[0].host}")
            lookup.task.add_done_callback(lambda _done: self._forget(key, lookup))
        lookup.waiters += 1
        lookup.counts = lookup.counts or counts
        return lookup

    def _leave(self, lookup: _Lookup, budget: float | None) -> Presence:
        """Stop waiting for `lookup`; its answer, or why there is none."""
        lookup.waiters -= 1
        task = lookup.task
        assert task is not None
        if task.done():
            if task.cancelled():
                self._stats["cancelled"] += 1
                return Presence("unanswered", "no answer: the lookup was cancelled (config "
                                "reload or shutdown)")
            if task.exception() is not None:   # _lookup catches all; never fail an admission
                return Presence("error", f"unexpected {type(task.exception()).__name__}")
            return task.result()
        if lookup.waiters <= 0 and not lookup.started:
            self._stats["abandoned"] += 1
            self._forget(lookup.key, lookup)   # a later question starts afresh
            task.cancel()
        return Presence("unanswered", "no answer" if budget is None
                        else f"no answer within the {budget:g}s budget")

    def _forget(self, key: _Key, lookup: _Lookup) -> None:
        if self._inflight.get(key) is lookup:
            del self._inflight[key]

    # --- lifetime ---------------------------------------------------------------------

    def hold(self) -> None:
        """An admission uses this checker: a `retire()` closes it only after `release()`."""
        self._holders += 1

    async def release(self) -> None:
        """The admission is done with this checker; the last one closes a retired one."""
        self._holders -= 1
        if self._retired and self._holders <= 0:
            await self.aclose()

    async def retire(self) -> None:
        """Replaced (a config reload): close now if no admission holds it, else when the
        last one releases it, so admissions in flight finish with the answers they wait
        for. Lookups that outlive every admission are then cancelled: their cache goes."""
        self._retired = True
        if self._holders <= 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Cancel lookups in flight and close every connection pool."""
        self._closed = True
        tasks = [lookup.task for lookup in self._inflight.values() if lookup.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    # --- one lookup -------------------------------------------------------------------

    async def _lookup(self, key: _Key, lookup: _Lookup) -> Presence:
        """Wait for a slot of the mirror (outside the lookup's timeout: a wait of our own
        making is never the mirror's failure), then ask within `timeout`."""
        mirror, repository, reference = key
        async with self._slot(mirror):
            lookup.started = True
            try:
                async with asyncio.timeout(self._timeout):
                    presence = await self._ask(mirror, repository, reference)
            except (TimeoutError, httpx.TimeoutException):
                presence = Presence("error", f"timeout after {self._timeout:g}s")
            except _Refused as exc:
                presence = Presence("error", exc.detail)
            except httpx.HTTPError as exc:
                presence = Presence("error", describe_transport_error(exc))
            except Exception as exc:  # a check must never fail the admission it serves
                log.exception("presence check of %s/%s:%s failed", mirror.host, repository,
                              reference)
                presence = Presence("error", f"unexpected {type(exc).__name__}: {exc}")
        self._record(key, presence, counts=lookup.counts)
        log.debug("presence %s/%s:%s → %s %s", mirror.host, repository, reference,
                  presence.status, presence.detail)
        return presence

    def _record(self, key: _Key, presence: Presence, *, counts: bool) -> None:
        mirror = key[0]
        now = self._clock()
        if presence.status == "error":
            self._stats["errors"] += 1
            if not counts:      # only dry runs waited for it: no shared penalty
                return
            health = self._health.setdefault(mirror, _Health())
            health.failures += 1
            health.last = presence.detail
            if health.failures >= self._threshold:
                if health.until <= now:
                    log.warning("mirror %s: %d failures in a row (last: %s); not asked for "
                                "%gs", mirror.host, health.failures, presence.detail,
                                self._cooldown)
                health.until = now + self._cooldown
            return
        self._health.pop(mirror, None)
        ttl = self._positive_ttl if presence.status == "present" else self._negative_ttl
        if ttl <= 0:
            return
        if len(self._cache) >= self._max_entries:
            # Drop the expired, and if still full the oldest eighth: one rebuild per many
            # insertions (never one entry at a time from the front, which is quadratic).
            fresh = [item for item in self._cache.items() if item[1][1] > now]
            keep = self._max_entries - max(1, self._max_entries // 8)
            self._cache = dict(fresh[-keep:] if len(fresh) > keep else fresh)
        self._cache[key] = (presence, now + ttl)

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
            fresh = _parse_challenge(response.headers.get_list("www-authenticate"))
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
        self._stats["requests"] += 1
        return await client.head(url, headers=headers)

    def _interpret(self, response: httpx.Response, mirror: Mirror,
                   credentials: Credentials | None, repository: str) -> Presence:
        code = response.status_code
        if code == 200:
            return Presence("present", digest=response.headers.get("docker-content-digest"))
        if code == 404:
            return Presence("absent", "manifest unknown (404)")
        if code == 401:
            return Presence("error", "401 unauthorized: " + _auth_hint(mirror, credentials))
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
        key = self._client_key(mirror)
        client = self._clients.get(key)
        if client is None:
            verify: ssl.SSLContext | bool = False
            if mirror.scheme == "https":
                verify = _ssl_context(mirror)
            client = httpx.AsyncClient(
                verify=verify, http1=True, http2=False, trust_env=False,
                follow_redirects=False, headers={"User-Agent": USER_AGENT},
                timeout=httpx.Timeout(self._timeout),
                # As many connections as slots (`_slot`): a request never waits in the
                # pool, whose bookkeeping grows with the square of its waiters.
                limits=httpx.Limits(max_connections=self._max_in_flight,
                                    max_keepalive_connections=min(4, self._max_in_flight),
                                    keepalive_expiry=30))
            self._clients[key] = client
        return client

    def _slot(self, mirror: Mirror) -> asyncio.Semaphore:
        """The lookups of one client (mirror host and trust) that may send at once."""
        key = self._client_key(mirror)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(self._max_in_flight)
        return slot

    @staticmethod
    def _client_key(mirror: Mirror) -> _ClientKey:
        return (mirror.scheme, mirror.host, mirror.ca_file, mirror.insecure_skip_verify)

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

    async def _authorize(self, client: httpx.AsyncClient, challenge: _Challenge,
                         credentials: Credentials | None, scope: str) -> str | None:
        """The Authorization header answering `challenge`, or None to ask anonymously."""
        if challenge.scheme == "basic":
            return _basic(credentials) if credentials is not None else None
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
    def _token_key(challenge: _Challenge, credentials: Credentials | None,
                   scope: str) -> tuple[str, str, str, str]:
        return (challenge.params["realm"], challenge.params.get("service", ""), scope,
                credentials.username if credentials else "")

    def _drop_token(self, challenge: _Challenge, credentials: Credentials | None,
                    scope: str) -> None:
        if challenge.scheme == "bearer" and "realm" in challenge.params:
            self._tokens.pop(self._token_key(challenge, credentials, scope), None)

    async def _fetch_token(self, client: httpx.AsyncClient, challenge: _Challenge,
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
            headers["Authorization"] = _basic(credentials)
        self._stats["requests"] += 1
        self._stats["token_requests"] += 1
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


# --- helpers ------------------------------------------------------------------------------


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


def _basic(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _auth_hint(mirror: Mirror, credentials: Credentials | None) -> str:
    if mirror.scheme == "http" and mirror.pull_credential_config_path:
        return ("the mirror requires credentials, which are never sent over plain http://; "
                "use an https:// endpoint")
    if credentials is not None:
        return "check pullCredentialConfigPath (the registry refused the credentials)"
    if mirror.pull_credential_config_path:
        return "check pullCredentialConfigPath (it has no credentials for this mirror)"
    return "the mirror requires credentials; set pullCredentialConfigPath"


def _parse_challenge(headers: list[str]) -> _Challenge | None:
    """The `WWW-Authenticate` challenge to answer: Bearer if offered, else the first."""
    challenges = []
    for header in headers:
        scheme, _, rest = header.strip().partition(" ")
        params = {name.lower(): value[1:-1].replace('\\"', '"') if value.startswith('"')
                  else value for name, value in _CHALLENGE_PARAM_RE.findall(rest)}
        challenges.append(_Challenge(scheme.lower(), params))
    bearer = [c for c in challenges if c.scheme == "bearer"]
    return next(iter(bearer or challenges), None)


_VERIFY_REASONS = {
    18: "x509: certificate signed by unknown authority (self-signed; mirror caFile?)",
    19: "x509: certificate signed by unknown authority (mirror caFile?)",
    20: "x509: certificate signed by unknown authority (mirror caFile?)",
    21: "x509: certificate signed by unknown authority (mirror caFile?)",
    9: "x509: certificate is not yet valid (clock skew?)",
    10: "x509: certificate has expired",
    62: "x509: certificate is not valid for this host (the mirror's SANs?)",
    64: "x509: certificate is not valid for this host (the mirror's SANs?)",
}


def describe_transport_error(exc: BaseException) -> str:
    """Name a connection failure as a person searches for it (containerd's wording)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            reason = _VERIFY_REASONS.get(item.verify_code, "x509: certificate verify failed")
            return f"{reason}: {item.verify_message}"
    text = " ".join(str(item) for item in chain)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        if "unable to get local issuer" in text or "self-signed" in text or \
                "self signed" in text:
            return "x509: certificate signed by unknown authority (mirror caFile?)"
        return f"x509: certificate verify failed: {str(exc)[:200]}"
    for item in chain:
        if isinstance(item, TimeoutError | httpx.TimeoutException):
            return "timeout"
        if isinstance(item, ConnectionRefusedError) or \
                (isinstance(item, OSError) and item.errno == errno.ECONNREFUSED):
            return "connection refused"
        if isinstance(item, socket.gaierror):
            return f"cannot resolve host: {item.strerror or item}"
        if isinstance(item, ssl.SSLError):
            hint = " (is the mirror plain http://?)" if "WRONG_VERSION" in str(item) else ""
            return f"TLS handshake failed: {item.reason or item}{hint}"
    lowered = text.lower()
    if "connection refused" in lowered or "errno 111" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "temporary failure in name" in lowered:
        return "cannot resolve host"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {str(exc)[:200] or 'connection closed by the mirror'}"
    return f"{type(exc).__name__}: {str(exc)[:200]}".rstrip(": ")


# --- for `kci-webhook doctor`, which walks the same flow one visible step at a time -----


def parse_challenge(headers: list[str]) -> tuple[str, dict[str, str]] | None:
    """The `WWW-Authenticate` challenge a client answers, as the presence check chooses it
    (Bearer if offered, else the first): the lower-case scheme and its parameters (names
    lower-case, quotes removed). None when there is no header."""
    challenge = _parse_challenge(headers)
    return None if challenge is None else (challenge.scheme, dict(challenge.params))


def basic_authorization(credentials: Credentials) -> str:
    """The `Authorization` header value for Basic auth with `credentials`."""
    return _basic(credentials)


__all__ = [
    "MANIFEST_ACCEPT",
    "Credentials",
    "CredentialsError",
    "Presence",
    "PresenceChecker",
    "basic_authorization",
    "check_config_files",
    "config_files",
    "credentials_from_dockerconfig",
    "describe_transport_error",
    "manifest_reference",
    "parse_challenge",
]
