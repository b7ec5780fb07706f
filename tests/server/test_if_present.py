"""`policy: if-present` end to end: the real server asks a real registry before rewriting.

A registry (Debian's docker-registry, TLS with our CA, htpasswd auth) holds `kci/app:1.0`;
the webhook mirrors docker.io to it. What containerd does for a node-level mirror, the
webhook does at admission: use the mirror when it has the image, fall back to the source
registry (keep the image) when it does not, cannot be trusted, refuses us, or is slow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, apply_response_patch, pod_review
from tests.registry_support import (  # noqa: F401 - fixtures
    Registry,
    SilentServer,
    make_pki,
    push_image,
    registry_fixture,
    start_registry,
)


def config(endpoint: str, *, ca: Path | None, creds: Path | None, budget: float = 1.0,
           extra_mirror: str = "") -> str:
    lines = ["mirrorChecks:", f"  budgetSeconds: {budget}", "mirrors:",
             f"  - endpoint: {endpoint}", "    hosts: [docker.io]", "    policy: if-present",
             "    pullSecret: mirror-pull"]
    if ca:
        lines.append(f"    caFile: {ca}")
    if creds:
        lines.append(f"    pullCredentialConfigPath: {creds}")
    return "\n".join(lines) + "\n" + extra_mirror


def admit(server: RunningServer, image: str) -> tuple[dict[str, Any], dict[str, Any]]:
    review = pod_review({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "c", "image": image}]}})
    reply = server.review(review)
    assert reply.status_code == 200
    response = reply.json()["response"]
    return response, apply_response_patch(review, response)


def image_of(pod: dict[str, Any]) -> str:
    return pod["spec"]["containers"][0]["image"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def good(registry: Registry, tmp_path_factory: pytest.TempPathFactory,
         server_factory: Callable[[str | None], RunningServer]) -> RunningServer:
    creds = registry.docker_config(tmp_path_factory.mktemp("creds") / "config.json")
    return server_factory(config(registry.url, ca=registry.ca_file, creds=creds))


def test_present_image_is_rewritten(registry: Registry, good: RunningServer) -> None:
    response, pod = admit(good, "docker.io/kci/app:1.0")
    assert image_of(pod) == f"{registry.host}/kci/app:1.0"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "mirror-pull"}]
    assert not any("kept" in w for w in response.get("warnings", []))


def test_digest_pinned_present_image_is_rewritten_with_its_digest(
        registry: Registry, good: RunningServer) -> None:
    digest = registry.images[0].digest
    _, pod = admit(good, f"kci/app@{digest}")
    assert image_of(pod) == f"{registry.host}/kci/app@{digest}"


def test_absent_image_is_kept_with_a_warning(good: RunningServer) -> None:
    response, pod = admit(good, "docker.io/kci/not-mirrored:1.0")
    assert image_of(pod) == "docker.io/kci/not-mirrored:1.0"
    assert any("kept, pulled from its own registry" in w and "does not have it" in w
               for w in response["warnings"])


def test_repeated_and_concurrent_admissions_make_one_registry_call(
        registry: Registry, good: RunningServer) -> None:
    push_image(registry, "kci/cached", "3")
    path = "/v2/kci/cached/manifests/3"
    for _ in range(5):
        admit(good, "docker.io/kci/cached:3")
    assert registry.wait_count("HEAD", path, 1) == 1

    push_image(registry, "kci/burst", "4")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(
        image_of(admit(good, "docker.io/kci/burst:4")[1]))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [f"{registry.host}/kci/burst:4"] * 16
    assert registry.wait_count("HEAD", "/v2/kci/burst/manifests/4", 1) == 1
    with good.client() as client:
        scrape = client.get("/metrics").text
    assert 'kci_webhook_mirror_check_cache_total{result="hit"}' in scrape


def test_wrong_ca_keeps_the_image_with_an_x509_warning(
        registry: Registry, tmp_path: Path,
        server_factory: Callable[[str | None], RunningServer]) -> None:
    other_ca = make_pki(tmp_path / "other").ca_file
    creds = registry.docker_config(tmp_path / "config.json")
    server = server_factory(config(registry.url, ca=other_ca, creds=creds))
    response, pod = admit(server, "docker.io/kci/app:1.0")
    assert image_of(pod) == "docker.io/kci/app:1.0"
    assert any("x509" in w for w in response["warnings"])


def test_wrong_password_keeps_the_image_with_an_auth_warning(
        registry: Registry, tmp_path: Path,
        server_factory: Callable[[str | None], RunningServer]) -> None:
    creds = registry.docker_config(tmp_path / "config.json", password="wrong")
    server = server_factory(config(registry.url, ca=registry.ca_file, creds=creds))
    response, pod = admit(server, "docker.io/kci/app:1.0")
    assert image_of(pod) == "docker.io/kci/app:1.0"
    assert any("401" in w or "unauthorized" in w for w in response["warnings"])


def test_stopped_registry_keeps_the_image_within_the_budget(
        tmp_path: Path, server_factory: Callable[[str | None], RunningServer]) -> None:
    stopped = start_registry(tmp_path / "gone", auth=False)
    endpoint, ca = stopped.url, stopped.ca_file
    stopped.stop()
    server = server_factory(config(endpoint, ca=ca, creds=None, budget=0.5))
    response, pod = admit(server, "docker.io/kci/app:1.0")
    assert image_of(pod) == "docker.io/kci/app:1.0"
    assert any("kept" in w for w in response["warnings"])
    # The refusal is the answer: the admission did not wait out the budget for it.
    assert any("connection refused" in w for w in response["warnings"]), response["warnings"]
    assert not any("no answer within" in w for w in response["warnings"])


def test_silent_registry_is_given_up_at_the_budget(
        server_factory: Callable[[str | None], RunningServer]) -> None:
    with SilentServer() as silent:
        server = server_factory(config(f"https://{silent.host}", ca=None, creds=None,
                                       budget=0.5))
        response, pod = admit(server, "docker.io/kci/app:1.0")
    assert image_of(pod) == "docker.io/kci/app:1.0"
    assert any("no answer within the 0.5s budget" in w for w in response["warnings"])


def test_ordered_mirrors_the_first_that_has_the_image_wins(
        registry: Registry, tmp_path: Path,
        server_factory: Callable[[str | None], RunningServer]) -> None:
    creds = registry.docker_config(tmp_path / "config.json")
    fallback = ("  - endpoint: https://fallback.example:5000/v2/cache\n"
                "    hosts: [docker.io]\n")
    server = server_factory(config(registry.url, ca=registry.ca_file, creds=creds,
                                   extra_mirror=fallback))
    _, present = admit(server, "docker.io/kci/app:1.0")
    _, absent = admit(server, "docker.io/kci/elsewhere:1.0")
    assert image_of(present) == f"{registry.host}/kci/app:1.0"
    assert image_of(absent) == "fallback.example:5000/cache/kci/elsewhere:1.0"
