"""Presence checks (`webhook.adapters.registry.presence` and its client) against a real registry:
Debian's docker-registry with TLS from a CA of ours, htpasswd or Bearer-token auth, and images
pushed by skopeo.

No mock of the client: every check below goes over a socket to a real server. The only
stand-ins are loopback servers where the point is what the client *sends* (credentials
over plain http) or a server that never answers (timeouts).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.registry_support import (
    RecordingServer,
    Registry,
    SilentServer,
    free_port,
    make_pki,
    push_image,
    registry_fixture,  # noqa: F401 - the `registry` fixture
    start_registry,
    token_registry_fixture,  # noqa: F401 - the `token_registry` fixture
)
from webhook.adapters.registry.manifest import MANIFEST_ACCEPT, Presence, manifest_reference
from webhook.adapters.registry.presence import PresenceChecker
from webhook.adapters.tls.issue import generate_serving_cert
from webhook.core.config import Mirror, config_from_data
from webhook.core.reference import parse_normalized

T = TypeVar("T")
# Generous for checks that must succeed (two cores shared with other test runs); the
# timing tests use their own short timeout and bound the elapsed time by it.
TIMEOUT = 10.0
SHORT = 1.0


def run(make: Callable[[PresenceChecker], Awaitable[T]],
        **options: Any) -> tuple[T, dict[str, int]]:
    """Run `make(checker)` on a fresh checker; return its result and the checker's stats."""
    async def main() -> tuple[T, dict[str, int]]:
        checker = PresenceChecker(**{"timeout": TIMEOUT, **options})
        try:
            return await make(checker), checker.stats
        finally:
            await checker.aclose()
    return asyncio.run(main())


def check(mirror: Mirror, path: str, reference: str, **options: Any) -> Presence:
    return run(lambda c: c.check(mirror, path, reference), **options)[0]


def manifest_path(repository: str, reference: str) -> str:
    return f"/v2/{repository}/manifests/{reference}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def creds(registry: Registry, tmp_path: Path) -> Path:
    return registry.docker_config(tmp_path / "config.json")


@pytest.fixture()
def mirror(registry: Registry, creds: Path) -> Mirror:
    """The session registry as a mirror, with its CA and working credentials."""
    return registry.mirror(pullCredentialConfigPath=str(creds))


# --- what the mirror holds --------------------------------------------------------------


def test_present_image_is_present_with_its_digest(registry: Registry, mirror: Mirror) -> None:
    image = registry.images[0]
    presence = check(mirror, image.repository, image.tag)
    assert presence == Presence("present", "", image.digest)
    assert presence.present


def test_absent_tag_is_absent(mirror: Mirror) -> None:
    presence = check(mirror, "kci/app", "no-such-tag")
    assert presence.status == "absent", presence
    assert "404" in presence.detail


def test_absent_repository_is_absent(mirror: Mirror) -> None:
    assert check(mirror, "kci/never-pushed", "1.0").status == "absent"


def test_digest_reference(registry: Registry, mirror: Mirror) -> None:
    image = registry.images[0]
    assert check(mirror, image.repository, image.digest).status == "present"
    unknown = "sha256:" + "0" * 64
    assert check(mirror, image.repository, unknown).status == "absent"


def test_mirror_namespace_is_prepended(registry: Registry, creds: Path) -> None:
    """`endpoint: https://host/v2/kci` serves gcr.io's `app` as `kci/app`, as the rewrite
    does."""
    namespaced = registry.mirror(namespace="kci", hosts=("gcr.io",),
                                 pullCredentialConfigPath=str(creds))
    image = parse_normalized("gcr.io/app:1.0")
    presence = run(lambda c: c.check_image(namespaced, image))[0]
    assert presence.status == "present", presence
    assert manifest_reference(parse_normalized("app@sha256:" + "a" * 64)) == "sha256:" + "a" * 64
    assert manifest_reference(parse_normalized("app")) == "latest"


def test_http_mirror_against_a_real_plain_registry(tmp_path: Path) -> None:
    with start_registry(tmp_path / "plain", tls=False, auth=False) as plain:
        digest = push_image(plain, "kci/plain", "3.1")
        mirror = plain.mirror()
        assert mirror.scheme == "http"
        assert check(mirror, "kci/plain", "3.1") == Presence("present", "", digest)
        assert check(mirror, "kci/plain", "3.2").status == "absent"


def test_the_request_is_a_manifest_head_with_the_manifest_types(registry: Registry,
                                                                 mirror: Mirror) -> None:
    before = registry.count("HEAD", manifest_path("kci/app", "accept-probe"))
    check(mirror, "kci/app", "accept-probe")
    assert registry.wait_count("HEAD", manifest_path("kci/app", "accept-probe"),
                               before + 1) >= before + 1
    for media_type in ("application/vnd.oci.image.index.v1+json",
                       "application/vnd.oci.image.manifest.v1+json",
                       "application/vnd.docker.distribution.manifest.list.v2+json",
                       "application/vnd.docker.distribution.manifest.v2+json"):
        assert media_type in MANIFEST_ACCEPT


# --- trust ------------------------------------------------------------------------------------


def test_wrong_ca_is_an_x509_error(registry: Registry, creds: Path, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other-ca", common_name="someone-else")
    wrong = registry.mirror(caFile=str(other.ca_file), pullCredentialConfigPath=str(creds))
    presence = check(wrong, "kci/app", "1.0")
    assert presence.status == "error"
    assert presence.detail.startswith("x509: certificate signed by unknown authority"), presence
    assert "caFile" in presence.detail


def test_no_ca_file_uses_the_system_store_which_lacks_our_ca(registry: Registry,
                                                             creds: Path) -> None:
    bare = registry.mirror(caFile=None, pullCredentialConfigPath=str(creds))
    presence = check(bare, "kci/app", "1.0")
    assert presence.status == "error"
    assert "unknown authority" in presence.detail


def test_insecure_skip_verify_accepts_the_certificate(registry: Registry, creds: Path) -> None:
    insecure = registry.mirror(caFile=None, insecureSkipVerify=True,
                               pullCredentialConfigPath=str(creds))
    assert check(insecure, "kci/app", "1.0").status == "present"


@pytest.mark.parametrize(("problem", "expected"), [
    ("expired", "x509: certificate has expired"),
    ("wrong name", "x509: certificate is not valid for this host"),
    ("plain http", "TLS handshake failed: WRONG_VERSION_NUMBER (is the mirror plain http://?)"),
])
def test_tls_failures_are_named(problem: str, expected: str, tmp_path: Path) -> None:
    """What doctor and the warnings say about the usual TLS mistakes (stand-in servers:
    the point is the client's diagnosis of the handshake)."""
    pki = make_pki(tmp_path / "pki")
    if problem == "expired":
        expired = generate_serving_cert(pki.ca, dns_names=["localhost"],
                                        ip_addresses=["127.0.0.1"], days=0)
        pki.cert_file.write_bytes(expired.cert_pem)
        pki.key_file.write_bytes(expired.key_pem)
    elif problem == "wrong name":
        other = generate_serving_cert(pki.ca, dns_names=["registry.example.com"])
        pki.cert_file.write_bytes(other.cert_pem)
        pki.key_file.write_bytes(other.key_pem)
    with RecordingServer(pki=None if problem == "plain http" else pki) as server:
        mirror = config_from_data({"mirrors": [{
            "endpoint": f"https://{server.host}", "hosts": ["docker.io"],
            "caFile": str(pki.ca_file)}]}, source="test").mirrors[0]
        presence = check(mirror, "library/nginx", "1.25")
    assert presence.status == "error"
    assert presence.detail.startswith(expected), presence


def test_unreadable_ca_file_is_an_error(registry: Registry, creds: Path, tmp_path: Path) -> None:
    missing = registry.mirror(caFile=str(tmp_path / "nope.crt"),
                              pullCredentialConfigPath=str(creds))
    presence = check(missing, "kci/app", "1.0")
    assert presence.status == "error"
    assert "nope.crt" in presence.detail and "cannot load" in presence.detail


# --- credentials -------------------------------------------------------------------------------


def test_wrong_password_is_an_auth_error(registry: Registry, tmp_path: Path) -> None:
    bad = registry.docker_config(tmp_path / "bad.json", password="wrong")
    presence = check(registry.mirror(pullCredentialConfigPath=str(bad)), "kci/app", "1.0")
    assert presence.status == "error"
    assert presence.detail.startswith("401 unauthorized: check pullCredentialConfigPath"), presence


def test_no_credentials_for_an_authenticated_mirror(registry: Registry) -> None:
    presence = check(registry.mirror(), "kci/app", "1.0")
    assert presence.status == "error"
    assert "401 unauthorized" in presence.detail and "set pullCredentialConfigPath" in \
        presence.detail


def test_credentials_file_without_this_host(registry: Registry, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"auths": {"elsewhere.example:5000": {"auth": "eDp5"}}}))
    presence = check(registry.mirror(pullCredentialConfigPath=str(other)), "kci/app", "1.0")
    assert presence.status == "error"
    assert "has no credentials for this mirror" in presence.detail


def test_broken_credentials_file_is_an_error_naming_it(registry: Registry,
                                                        tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    presence = check(registry.mirror(pullCredentialConfigPath=str(broken)), "kci/app", "1.0")
    assert presence.status == "error"
    assert str(broken) in presence.detail and "not valid JSON" in presence.detail


def test_bearer_token_flow(token_registry: Registry, tmp_path: Path) -> None:
    """The registry answers 401 with a Bearer challenge; the client gets a JWT from the
    token service with Basic credentials and retries; later checks reuse the token."""
    assert token_registry.token_server is not None
    image = token_registry.images[0]
    mirror = token_registry.mirror(
        pullCredentialConfigPath=str(token_registry.docker_config(tmp_path / "c.json")))
    tokens_before = len(token_registry.token_server.requests)

    async def three(checker: PresenceChecker) -> list[Presence]:
        return [await checker.check(mirror, image.repository, image.tag),
                await checker.check(mirror, image.repository, "absent-tag"),
                await checker.check(mirror, image.repository, image.digest)]

    results, stats = run(three)
    assert [p.status for p in results] == ["present", "absent", "present"]
    assert results[0].digest == image.digest
    asked = token_registry.token_server.requests[tokens_before:]
    assert len(asked) == 1 == stats["token_requests"], asked  # one token for the repository
    assert asked[0]["authorization"].startswith("Basic ")
    assert "scope=repository%3Akci%2Ftokened%3Apull" in asked[0]["path"]
    # The first check: HEAD (401), token, HEAD again; then the token goes up front.
    assert stats["requests"] == 3 + 1 + 1


def test_bearer_wrong_password(token_registry: Registry, tmp_path: Path) -> None:
    bad = token_registry.docker_config(tmp_path / "bad.json", password="wrong")
    presence = check(token_registry.mirror(pullCredentialConfigPath=str(bad)),
                     "kci/tokened", "2.0")
    assert presence.status == "error"
    assert presence.detail.startswith("401 unauthorized from token service https://127.0.0.1:")
    assert "check pullCredentialConfigPath" in presence.detail


def test_bearer_anonymous_gets_no_access(token_registry: Registry) -> None:
    presence = check(token_registry.mirror(), "kci/tokened", "2.0")
    assert presence.status == "error"
    assert "401 unauthorized" in presence.detail and "pullCredentialConfigPath" in \
        presence.detail


def _challenge_server(challenge: str) -> Callable[[dict[str, Any]], tuple[int, dict[str, str],
                                                                           bytes]]:
    def respond(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if request["path"].startswith("/token"):
            body = json.dumps({"token": "anonymous-token", "expires_in": 60}).encode()
            return 200, {"Content-Type": "application/json"}, body
        return 401, {"WWW-Authenticate": challenge}, b""
    return respond


def _http_mirror(host: str, creds: Path) -> Mirror:
    return config_from_data({"mirrors": [{
        "endpoint": f"http://{host}", "hosts": ["docker.io"],
        "pullCredentialConfigPath": str(creds), "allowCredentialsOverHTTP": True,
    }]}, source="test").mirrors[0]


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_credentials_are_never_sent_over_plain_http(scheme: str, tmp_path: Path) -> None:
    """Even with allowCredentialsOverHTTP (the kubelet's business), the check asks
    anonymously over http://, to the mirror and to its token realm alike."""
    with RecordingServer() as server:
        realm = f"http://{server.host}/token"
        challenge = ('Basic realm="stand-in"' if scheme == "basic"
                     else f'Bearer realm="{realm}",service="stand-in"')
        server.respond = _challenge_server(challenge)
        creds = tmp_path / "c.json"
        creds.write_text(json.dumps({"auths": {server.host: {"auth": base64.b64encode(
            b"user:password").decode()}}}))
        presence = check(_http_mirror(server.host, creds), "library/nginx", "1.25")
    assert presence.status == "error"
    assert "never sent over plain http://" in presence.detail, presence
    assert server.requests, "the stand-in saw no request"
    for request in server.requests:
        assert not request["headers"].get("authorization", "").startswith("Basic"), request
    if scheme == "bearer":  # the anonymous token was fetched and presented, nothing more
        assert [r["method"] for r in server.requests] == ["HEAD", "GET", "HEAD"]
        assert server.requests[2]["headers"]["authorization"] == "Bearer anonymous-token"


def test_credentials_are_not_sent_to_a_plain_http_token_realm(tmp_path: Path) -> None:
    """An https:// mirror whose Bearer realm is http://: the token is asked anonymously."""
    pki = make_pki(tmp_path / "pki")
    with RecordingServer() as realm_server:
        realm_server.respond = _challenge_server("")
        challenge = f'Bearer realm="http://{realm_server.host}/token",service="s"'
        with RecordingServer(_challenge_server(challenge), pki=pki) as mirror_server:
            creds = tmp_path / "c.json"
            creds.write_text(json.dumps({"auths": {mirror_server.host: {
                "username": "user", "password": "password"}}}))
            mirror = config_from_data({"mirrors": [{
                "endpoint": mirror_server.url, "hosts": ["docker.io"],
                "caFile": str(pki.ca_file), "pullCredentialConfigPath": str(creds),
            }]}, source="test").mirrors[0]
            presence = check(mirror, "library/nginx", "1.25")
    assert presence.status == "error"
    assert [r["path"].split("?")[0] for r in realm_server.requests] == ["/token"]
    assert "authorization" not in realm_server.requests[0]["headers"]


# --- failures and time ---------------------------------------------------------------------


def test_registry_stopped_is_an_error_within_the_timeout(tmp_path: Path) -> None:
    with start_registry(tmp_path / "doomed") as doomed:
        mirror = doomed.mirror(
            pullCredentialConfigPath=str(doomed.docker_config(tmp_path / "c.json")))

        async def scenario(checker: PresenceChecker) -> tuple[Presence, Presence]:
            alive = await checker.check(mirror, "kci/app", "before-stop")
            doomed.stop()
            dead = await checker.check(mirror, "kci/app", "after-stop")
            return alive, dead

        (alive, dead), _ = run(scenario, timeout=SHORT)
    assert alive.status == "absent", alive  # it answered while running
    assert dead.status == "error"
    # The refusal is the answer, not the timeout: it was not waited out.
    assert dead.detail == "connection refused", dead


def test_a_mirror_that_never_answers_times_out_on_time() -> None:
    with SilentServer() as silent:
        mirror = config_from_data({"mirrors": [{"endpoint": f"https://{silent.host}",
                                                "hosts": ["docker.io"]}]},
                                  source="test").mirrors[0]
        presence = check(mirror, "library/nginx", "1.25", timeout=SHORT)
    assert presence == Presence("error", f"timeout after {SHORT:g}s")
    assert presence.timed_out    # what the server counts as result="timeout"


def test_errors_are_not_cached_and_a_failing_mirror_cools_down() -> None:
    clock = FakeClock()
    port = free_port()  # nothing listens there: connection refused, at once
    mirror = config_from_data({"mirrors": [{"endpoint": f"https://127.0.0.1:{port}",
                                            "hosts": ["docker.io"]}]},
                              source="test").mirrors[0]

    async def scenario(checker: PresenceChecker) -> list[Presence]:
        results = [await checker.check(mirror, "library/nginx", "1.25") for _ in range(4)]
        assert checker.stats["requests"] == 3  # the fourth was not sent
        clock.now += 31  # the cool-down is over: one more try
        results.append(await checker.check(mirror, "library/nginx", "1.25"))
        assert checker.stats["requests"] == 4
        return results

    results, stats = run(scenario, failures_before_cooldown=3, cooldown=30, clock=clock)
    assert [p.detail for p in results[:3]] == ["connection refused"] * 3
    assert results[3].status == "error"
    assert results[3].detail.startswith("mirror in cool-down after 3 failures "
                                        "(last: connection refused)"), results[3]
    assert results[4].detail == "connection refused"
    assert stats["cache_hits"] == 0 and stats["cooldown_skips"] == 1


# --- the cache -------------------------------------------------------------------------------


async def _warm(checker: PresenceChecker, mirror: Mirror) -> None:
    """Learn the mirror's auth challenge (the first check pays a 401 round trip)."""
    await checker.check(mirror, "kci/app", "warm-up")


def test_repeated_checks_make_one_registry_request(registry: Registry, mirror: Mirror) -> None:
    image = registry.images[0]
    path = manifest_path(image.repository, image.tag)

    async def scenario(checker: PresenceChecker) -> tuple[list[Presence], int, int]:
        await _warm(checker, mirror)
        requests_before, log_before = checker.stats["requests"], registry.count("HEAD", path)
        results = [await checker.check(mirror, image.repository, image.tag) for _ in range(10)]
        return results, checker.stats["requests"] - requests_before, log_before

    (results, sent, log_before), stats = run(scenario)
    assert all(p.status == "present" for p in results)
    assert sent == 1
    assert stats["cache_hits"] == 9
    assert registry.wait_count("HEAD", path, log_before + 1) == log_before + 1


def test_concurrent_checks_share_one_request(registry: Registry, mirror: Mirror) -> None:
    image = registry.images[0]
    path = manifest_path(image.repository, image.digest)

    async def scenario(checker: PresenceChecker) -> tuple[list[Presence], int, int]:
        await _warm(checker, mirror)
        requests_before, log_before = checker.stats["requests"], registry.count("HEAD", path)
        results = await asyncio.gather(*(checker.check(mirror, image.repository, image.digest)
                                         for _ in range(20)))
        return list(results), checker.stats["requests"] - requests_before, log_before

    (results, sent, log_before), stats = run(scenario)
    assert [p.status for p in results] == ["present"] * 20
    assert sent == 1
    assert stats["coalesced"] == 19
    assert registry.wait_count("HEAD", path, log_before + 1) == log_before + 1


def test_negative_answers_expire_so_a_pushed_image_is_found(registry: Registry,
                                                             mirror: Mirror) -> None:
    clock = FakeClock()

    async def scenario(checker: PresenceChecker) -> list[Presence]:
        first = await checker.check(mirror, "kci/later", "1.0")
        await asyncio.to_thread(push_image, registry, "kci/later", "1.0")
        cached = await checker.check(mirror, "kci/later", "1.0")
        clock.now += 31
        fresh = await checker.check(mirror, "kci/later", "1.0")
        clock.now += 299
        still = await checker.check(mirror, "kci/later", "1.0")
        return [first, cached, fresh, still]

    results, stats = run(scenario, negative_ttl=30, positive_ttl=300, clock=clock)
    assert [p.status for p in results] == ["absent", "absent", "present", "present"]
    assert stats["cache_hits"] == 2 and stats["lookups"] == 2


def test_a_cancelled_caller_still_fills_the_cache(registry: Registry, mirror: Mirror) -> None:
    """The admission budget may cancel a check; the lookup goes on and the next pod gets
    its answer from the cache."""
    image = registry.images[0]

    async def scenario(checker: PresenceChecker) -> Presence:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await checker.check(mirror, image.repository, image.tag)
        for _ in range(200):
            await asyncio.sleep(0.05)
            if checker.stats["lookups"] and not checker._inflight:
                break
        return await checker.check(mirror, image.repository, image.tag)

    presence, stats = run(scenario)
    assert presence.status == "present"
    assert stats["cache_hits"] == 1 and stats["lookups"] == 1


def test_invalid_inputs_make_no_request(mirror: Mirror) -> None:
    async def scenario(checker: PresenceChecker) -> list[Presence]:
        return [await checker.check(mirror, "../etc", "1.0"),
                await checker.check(mirror, "kci/app", "../../x"),
                await checker.check(mirror, "Kci/App", "1.0")]

    results, stats = run(scenario)
    assert all(p.status == "error" and p.detail.startswith("invalid") for p in results)
    assert stats["requests"] == 0


def test_closed_checker_answers_error(mirror: Mirror) -> None:
    async def scenario() -> Presence:
        checker = PresenceChecker()
        await checker.aclose()
        return await checker.check(mirror, "kci/app", "1.0")
    assert asyncio.run(scenario()).detail == "presence checker is closed"
