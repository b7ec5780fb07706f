"""Pod UPDATE end to end: the real `kci-webhook serve` over real TLS, and a real registry
for `policy: if-present`, answering `kubectl debug`- and `kubectl set image`-shaped reviews.

Each answer is applied to the object as received, checked against what the API server
accepts for that operation (see tests/core/test_updates.py), and sent back as the API server
would on reinvocation and on the next update: a second pass is a no-op.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import RunningServer, eventually, start_server, stop_server
from tests.core.test_updates import (
    CONFIG_TEXT,
    EPHEMERAL,
    MIRROR,
    SET_IMAGE,
    assert_api_server_accepts,
    both,
    build,
    debug_container,
    ephemerals,
    images,
    patched,
    with_secret,
)
from tests.registry_support import Registry, registry_fixture  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server of its own (module scope): the metrics and log tests read its counters."""
    running = start_server(tmp_path_factory.mktemp("updates"), CONFIG_TEXT,
                           args=("--log-level", "debug"))
    yield running
    stop_server(running)


def answer(server: RunningServer, review: dict[str, Any]) -> dict[str, Any]:
    reply = server.review(review)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["apiVersion"] == review["apiVersion"]
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]  # type: ignore[no-any-return]


def second_passes(server: RunningServer, review: dict[str, Any],
                  result: dict[str, Any]) -> None:
    """Reinvocation (our output as the object) and the next update (our output stored,
    then sent again unchanged): neither is patched."""
    again = copy.deepcopy(review)
    again["request"]["object"] = result
    assert "patch" not in answer(server, again)
    stored = copy.deepcopy(again)
    stored["request"]["oldObject"] = copy.deepcopy(result)
    assert "patch" not in answer(server, stored)


DEBUG_SEVERAL = (both(with_secret), ephemerals(
    [debug_container("first", f"{MIRROR}/library/busybox:1.35")],
    [debug_container("second", "nicolaka/netshoot:v0.11")]))


@pytest.mark.parametrize(("name", "base", "edits", "list_name", "expected", "warned"), [
    ("kubectl-debug", EPHEMERAL, (both(with_secret),), "ephemeralContainers",
     [f"{MIRROR}/library/busybox:1.36"], None),
    ("kubectl-debug-second-debug-container", EPHEMERAL, DEBUG_SEVERAL, "ephemeralContainers",
     [f"{MIRROR}/library/busybox:1.35", f"{MIRROR}/nicolaka/netshoot:v0.11"], None),
    ("kubectl-debug-pod-without-the-mirror-secret", EPHEMERAL, (), "ephemeralContainers",
     ["busybox:1.36"], "--copy-to"),
    ("kubectl-set-image", SET_IMAGE, (both(with_secret),), "containers",
     [f"{MIRROR}/library/nginx:1.26"], None),
    ("kubectl-set-image-pod-without-the-mirror-secret", SET_IMAGE, (), "containers",
     ["nginx:1.26"], "recreate the pod"),
])
def test_update_reviews_over_tls(server: RunningServer, name: str, base: str,
                                 edits: tuple[Callable[[dict[str, Any]], None], ...],
                                 list_name: str, expected: list[str],
                                 warned: str | None) -> None:
    review = build(base, *edits)
    response = answer(server, review)
    assert response["allowed"] is True
    result = patched(review, response)
    assert_api_server_accepts(review, result)
    assert images(result, list_name) == expected
    if warned:
        assert "patch" not in response
        assert any(warned in w for w in response["warnings"])
    else:
        assert response.get("warnings", []) == []
        audit = orjson.loads(response["auditAnnotations"]["original-images"])
        assert all(not image.startswith(MIRROR) for image in audit.values())
    second_passes(server, review, result)


def test_v1beta1_update_is_answered_in_v1beta1(server: RunningServer) -> None:
    review = build(EPHEMERAL, both(with_secret))
    review["apiVersion"] = "admission.k8s.io/v1beta1"
    assert "patch" in answer(server, review)


def test_status_update_is_never_patched(server: RunningServer) -> None:
    review = build(SET_IMAGE, both(with_secret))
    review["request"]["subResource"] = "status"
    response = answer(server, review)
    assert response["allowed"] is True and "patch" not in response


def scrape(server: RunningServer) -> dict[str, float]:
    with server.client() as client:
        text = client.get("/metrics").text
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r"^(kci_webhook_admissions_total\{.*\}) (\S+)$", text, re.M)}


def test_metrics_and_logs_name_the_operation_and_subresource(server: RunningServer) -> None:
    series = ('kci_webhook_admissions_total{endpoint="mutate",operation="UPDATE",'
              'outcome="%s",subresource="%s"}')
    before = scrape(server)
    debug = build(EPHEMERAL, both(with_secret))
    debug["request"]["uid"] = "uid-debug"
    answer(server, debug)
    status = build(SET_IMAGE)
    status["request"]["subResource"] = "status"
    answer(server, status)
    after = scrape(server)
    for outcome, sub in (("mutated", "ephemeralcontainers"), ("skipped", "status")):
        key = series % (outcome, sub)
        assert after.get(key, 0) - before.get(key, 0) == 1, key

    def logged() -> bool:
        return '"uid-debug"' in server.log.read_text()

    assert eventually(logged, timeout=5)
    entry = next(orjson.loads(line) for line in server.log.read_text().splitlines()
                 if '"uid-debug"' in line)
    assert entry["operation"] == "UPDATE" and entry["subresource"] == "ephemeralcontainers"
    assert entry["decision"] == "mutated" and entry["pod"] == "web"


# --- if-present: the mirror is asked about the debug image -----------------------------------


def if_present_config(registry: Registry, creds: Path) -> str:
    return "\n".join([
        "mirrorChecks:", "  budgetSeconds: 2", "mirrors:", f"  - endpoint: {registry.url}",
        "    hosts: [docker.io]", "    policy: if-present", "    pullSecret: mirror-pull",
        f"    caFile: {registry.ca_file}", f"    pullCredentialConfigPath: {creds}", ""])


@pytest.fixture(scope="module")
def if_present_server(registry: Registry, tmp_path_factory: pytest.TempPathFactory,
                      server_factory: Callable[[str | None], RunningServer]) -> RunningServer:
    creds = registry.docker_config(tmp_path_factory.mktemp("creds") / "config.json")
    return server_factory(if_present_config(registry, creds))


@pytest.mark.parametrize(("name", "image", "rewritten"), [
    ("mirror-has-the-debug-image", "docker.io/kci/app:1.0", True),
    ("mirror-lacks-the-debug-image", "docker.io/kci/not-there:1.0", False),
])
def test_kubectl_debug_asks_an_if_present_mirror(
        registry: Registry, if_present_server: RunningServer, name: str, image: str,
        rewritten: bool) -> None:
    review = build(EPHEMERAL, both(with_secret),
                   ephemerals([], [debug_container("debugger", image)]))
    response = answer(if_present_server, review)
    result = patched(review, response)
    assert_api_server_accepts(review, result)
    want = f"{registry.host}/kci/app:1.0" if rewritten else image
    assert images(result, "ephemeralContainers") == [want]
    if not rewritten:
        assert any("kept, pulled from its own registry" in w for w in response["warnings"])
    second_passes(if_present_server, review, result)


def test_kubectl_annotate_cannot_rewrite_the_record_of_original_images(
        server: RunningServer) -> None:
    """The record is put back by the patch, which stays inside what an UPDATE may change;
    the rest of the update goes through."""
    record = '{"web":"nginx:1.25"}'

    def stored_record(request: dict[str, Any]) -> None:
        request["object"] = copy.deepcopy(request["oldObject"])
        for target in ("object", "oldObject"):
            request[target]["metadata"]["annotations"]["kci-webhook/original-images"] = record
        request["object"]["metadata"]["annotations"].update({
            "kci-webhook/original-images": '{"web":"registry.evil.example/x:1"}',
            "team.example/owner": "web"})

    review = build(SET_IMAGE, stored_record)
    response = answer(server, review)
    assert response["allowed"] is True
    result = patched(review, response)
    assert result["metadata"]["annotations"] == {
        **review["request"]["oldObject"]["metadata"]["annotations"],
        "team.example/owner": "web"}
    assert any(w.startswith("kci-webhook/original-images: recorded by the webhook")
               for w in response["warnings"])
    second_passes(server, review, result)
