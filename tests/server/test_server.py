"""The real server: `kci-webhook serve` over real TLS, driven by an HTTPS client.

Every patched object is checked against the Kubernetes OpenAPI schema of the oldest and the
newest release kubernetes-validate ships, as the API server would check the pod after our
patch.
"""

from __future__ import annotations

import base64
import copy
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import (
    ADMISSION,
    EXAMPLES,
    ROOT,
    RunningServer,
    apply_response_patch,
    load_review,
    pod_review,
)
from tests.k8s_schema import schema_valid
from webhook.core.admission.envelope import DEFAULT_MAX_BODY_BYTES


def answer(server: RunningServer, review: dict[str, Any]) -> dict[str, Any]:
    reply = server.review(review)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["apiVersion"] == review["apiVersion"]
    assert body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]  # type: ignore[no-any-return]


def validated(obj: dict[str, Any]) -> dict[str, Any]:
    return schema_valid(obj)


def containers(obj: dict[str, Any]) -> list[str]:
    return [c["image"] for c in obj["spec"]["containers"]]


# --- captured reviews and the README example ----------------------------------------------

CAPTURED = sorted(p.name for p in ADMISSION.glob("*.json"))


@pytest.mark.parametrize("name", CAPTURED)
def test_captured_reviews_get_a_valid_answer_and_a_schema_valid_pod(
        webhook_server: RunningServer, name: str) -> None:
    review = load_review(name)
    response = answer(webhook_server, review)
    assert response["allowed"] is True
    patched = validated(apply_response_patch(review, response))
    for image in containers(patched):
        assert not image.startswith(("docker.io/", "gcr.io/"))   # mirrored hosts rewritten


def test_three_container_pod_is_rewritten_with_unknown_fields_kept(
        webhook_server: RunningServer) -> None:
    review = load_review("deployment-pod-3-containers.json")
    response = answer(webhook_server, review)
    patched = apply_response_patch(review, response)
    assert containers(patched) == [
        "172.18.0.20:5000/test-namespace/shopcorp/checkout-api:2.14.1",
        "172.18.0.20:5000/test-namespace/envoyproxy/envoy:v1.29.4",
        "172.18.0.20:5000/test-namespace/nginx/nginx-prometheus-exporter:1.1.0"]
    original = review["request"]["object"]
    assert patched["metadata"]["managedFields"] == original["metadata"]["managedFields"]
    assert patched["spec"]["volumes"] == original["spec"]["volumes"]
    assert {"name": "mirror-pull"} in patched["spec"]["imagePullSecrets"]
    audit = orjson.loads(response["auditAnnotations"]["original-images"])
    assert audit["api"] == "docker.io/shopcorp/checkout-api:2.14.1"


def test_readme_example_review_answers_with_a_patch(
        server_factory: Callable[[str | None], RunningServer]) -> None:
    server = server_factory((EXAMPLES / "config.yaml").read_text())
    review = orjson.loads((EXAMPLES / "admission-review.json").read_bytes())
    response = answer(server, review)
    patched = validated(apply_response_patch(review, response))
    assert containers(patched) == [
        "172.18.0.20:5000/test-namespace/library/nginx:latest",
        "172.18.0.20:5000/test-namespace/kubernetes-e2e-test-images/nautilus:1.0",
        "gcr-mirror.registry.internal:5443/gcr/google-containers/pause@sha256:" + "a" * 64]
    assert patched["spec"]["imagePullSecrets"] == [
        {"name": "registry-secret"}, {"name": "mirror-pull"}, {"name": "gcr-mirror-pull"}]
    hostnames = {h for a in patched["spec"]["hostAliases"] for h in a["hostnames"]}
    assert hostnames == {"www.privaterepo1.com", "www.privaterepo2.com",
                         "mirror.registry.internal"}
    annotations = patched["metadata"]["annotations"]
    assert annotations["k8s.ksyun.com/kci-insecure-registry"] == "gcr-mirror.registry.internal:5443"


def test_patch_paths_escape_annotation_keys(webhook_server: RunningServer) -> None:
    review = pod_review({"metadata": {"name": "p", "annotations": {"a": "b"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    ops = orjson.loads(base64.b64decode(answer(webhook_server, review)["patch"]))
    paths = {op["path"] for op in ops}
    assert "/metadata/annotations/kci-webhook~1original-images" in paths
    assert "/spec/containers/0/image" in paths


def test_missing_annotations_map_is_created(webhook_server: RunningServer) -> None:
    review = pod_review({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    patched = validated(apply_response_patch(review, answer(webhook_server, review)))
    assert "kci-webhook/original-images" in patched["metadata"]["annotations"]


# --- protocol: versions, kinds, operations ------------------------------------------------


def simple_pod(image: str = "nginx:1.25", **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "annotations": dict(annotations)},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def test_v1beta1_is_answered_in_v1beta1(webhook_server: RunningServer) -> None:
    review = pod_review(simple_pod(), api_version="admission.k8s.io/v1beta1")
    assert "patch" in answer(webhook_server, review)


@pytest.mark.parametrize(("operation", "kind", "resource"), [
    # without oldObject: nothing to compare (tests/core/test_updates.py)
    ("UPDATE", "Pod", "pods"),
    ("DELETE", "Pod", "pods"), ("CONNECT", "Pod", "pods"),
    ("CREATE", "Deployment", "deployments"), ("CREATE", "ConfigMap", "configmaps"),
])
def test_other_operations_and_kinds_are_not_mutated(
        webhook_server: RunningServer, operation: str, kind: str, resource: str) -> None:
    review = pod_review(simple_pod(), operation=operation, kind=kind, resource=resource)
    response = answer(webhook_server, review)
    assert response["allowed"] is True and "patch" not in response


def test_dry_run_gets_the_same_answer(webhook_server: RunningServer) -> None:
    review = load_review("pod-dryrun.json")
    review["request"]["object"]["spec"]["containers"][0]["image"] = "nginx:1"
    wet = copy.deepcopy(review)
    wet["request"]["dryRun"] = False
    assert answer(webhook_server, review) == answer(webhook_server, wet)


def test_excluded_namespace_is_admitted_unchanged(webhook_server: RunningServer) -> None:
    review = pod_review(simple_pod(**{"k8s.ksyun.com/kci-host-aliases": "junk"}),
                        namespace="kube-system")
    assert answer(webhook_server, review) == {"uid": "uid-1", "allowed": True}


def test_opt_out_annotation_keeps_images(webhook_server: RunningServer) -> None:
    review = pod_review(simple_pod(**{"kci-webhook/mirrors": "off"}))
    pod = apply_response_patch(review, answer(webhook_server, review))
    assert pod["spec"] == review["request"]["object"]["spec"]       # images kept
    assert pod["metadata"]["annotations"]["kci-webhook/images"] == (
        '{"v":1,"c":{"c":"kept:off"}}')                              # and why


def test_invalid_annotation_is_denied_with_a_clear_message(webhook_server: RunningServer) -> None:
    bad = '[{"ip":"1.2.3","hostnames":["www.privaterepo1.com"]}]'
    review = pod_review(simple_pod(**{"k8s.ksyun.com/kci-host-aliases": bad}))
    response = answer(webhook_server, review)
    assert response["allowed"] is False and "patch" not in response
    assert response["status"]["code"] == 403
    assert response["status"]["message"] == (
        'k8s.ksyun.com/kci-host-aliases (pod): item 1: "ip": "1.2.3" is not an IPv4 or IPv6 '
        "address")


def test_warn_mode_admits_with_admission_warnings(
        server_factory: Callable[[str | None], RunningServer]) -> None:
    server = server_factory("onInvalid: warn\n")
    review = pod_review(simple_pod(**{"k8s.ksyun.com/kci-http-registry": "http://x.example"}))
    response = answer(server, review)
    assert response["allowed"] is True
    assert response["warnings"][0].startswith("k8s.ksyun.com/kci-http-registry (pod): entry 1")


def test_object_not_shaped_like_a_pod_is_denied_not_an_error(
        webhook_server: RunningServer) -> None:
    review = pod_review({"metadata": {}, "spec": {"containers": "nginx"}})
    response = answer(webhook_server, review)
    assert response["allowed"] is False
    assert "spec.containers" in response["status"]["message"]


# --- malformed, hostile and oversized bodies ----------------------------------------------

MALFORMED = [
    ("not-json", b"{nope", "not valid JSON"),
    ("json-array", b"[]", "not a JSON object"),
    ("wrong-kind", orjson.dumps({"apiVersion": "v1", "kind": "Pod"}), "AdmissionReview"),
    ("no-request", orjson.dumps({"apiVersion": "admission.k8s.io/v1",
                                 "kind": "AdmissionReview"}), "no request"),
    ("no-uid", orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                             "request": {"operation": "CREATE"}}), "uid"),
    ("nul-bytes", b"\x00\x00\x00", "not valid JSON"),
    ("invalid-utf8", b'{"a":"\xff"}', "not valid JSON"),
    ("deep-nesting", b"[" * 100_000, "not valid JSON"),
    ("empty", b"", "empty body"),
]


@pytest.mark.parametrize(("body", "reason"), [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_body_gets_400_with_a_json_reason(webhook_server: RunningServer, body: bytes,
                                                    reason: str) -> None:
    reply = webhook_server.review(body)
    assert reply.status_code == 400
    assert reason in reply.json()["error"]


def test_wrong_content_type_gets_415(webhook_server: RunningServer) -> None:
    with webhook_server.client() as client:
        reply = client.post("/mutate", content=b"{}", headers={"content-type": "text/plain"})
    assert reply.status_code == 415 and "content-type" in reply.json()["error"]


def test_oversized_body_gets_413_from_its_declared_length(webhook_server: RunningServer) -> None:
    """The cap applies before reading: a client that only announces more gets 413 at once."""
    context = ssl.create_default_context(cafile=str(webhook_server.ca))
    host, port = webhook_server.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/json\r\n"
                    + f"Content-Length: {DEFAULT_MAX_BODY_BYTES + 1}\r\n\r\n".encode()
                    + b"{" * 1024)
        head = tls.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")


def test_oversized_chunked_body_gets_413(webhook_server: RunningServer) -> None:
    def chunks() -> Any:
        for _ in range(DEFAULT_MAX_BODY_BYTES // (1024 * 1024) + 1):
            yield b" " * (1024 * 1024)

    with webhook_server.client() as client:
        reply = client.post("/mutate", content=chunks(),
                            headers={"content-type": "application/json"})
    assert reply.status_code == 413


HOSTILE_OBJECTS: list[Any] = [
    None, 1, "pod", [], {"spec": None}, {"spec": {"containers": [{"image": 5}]}},
    {"metadata": {"annotations": {"k8s.ksyun.com/kci-dns-config": 5}}, "spec": {}},
    {"spec": {"containers": [{"name": "c", "image": "\x00" * 1000}]}},
    {"spec": {"containers": [{"name": "c", "image": "a" * 100_000}]}},
    {"spec": {"containers": [{"name": "c", "image": "nginx"}] * 5000}},
    {"metadata": {"annotations": {"k8s.ksyun.com/kci-host-aliases": "[" * 50_000}},
     "spec": {"containers": []}},
]


@pytest.mark.parametrize("obj", HOSTILE_OBJECTS, ids=[f"hostile-{i}" for i in
                                                      range(len(HOSTILE_OBJECTS))])
def test_hostile_pods_in_a_valid_envelope_get_an_admission_review(
        webhook_server: RunningServer, obj: Any) -> None:
    response = answer(webhook_server, pod_review(obj))
    assert isinstance(response["allowed"], bool)
    if response["allowed"] and "patch" in response:
        apply_response_patch(pod_review(obj), response)


# --- health, TLS, start-up ----------------------------------------------------------------


def test_health_and_readiness(webhook_server: RunningServer) -> None:
    with webhook_server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["detail"]["certificate"] == "loaded"


def test_plain_http_and_old_tls_are_refused(webhook_server: RunningServer) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(webhook_server.url.replace("https", "http") + "/healthz", timeout=5)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(webhook_server.ca))
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    host, port = webhook_server.url.removeprefix("https://").split(":")
    with pytest.raises((ssl.SSLError, OSError)), \
            socket.create_connection((host, int(port)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost"):
        pass


def test_dev_certificates_are_written_and_reused(webhook_server: RunningServer) -> None:
    certs = webhook_server.ca.parent
    assert {p.name for p in certs.iterdir()} >= {"ca.crt", "tls.crt", "tls.key"}
    assert "using development certificates" in webhook_server.log.read_text()


STARTUP_FAILURES = [
    ("bad-env-aliases", {"KCI_HOST_ALIASES": '[{"ip":"1.2.3"}]'}, None,
     "KCI_HOST_ALIASES: k8s.ksyun.com/kci-host-aliases (environment): item 1"),
    ("bad-env-dns", {"KCI_DNS_CONFIG": "{"}, None,
     "KCI_DNS_CONFIG: k8s.ksyun.com/kci-dns-config (environment)"),
    ("unknown-config-key", {}, "onInvalidd: deny\n", "unknown key 'onInvalidd'"),
    ("config-cycle", {}, "mirrors:\n- endpoint: https://m.example/v2/x\n"
                         "  hosts: [docker.io, m.example]\n", "cycle"),
]


@pytest.mark.parametrize(("env", "config", "message"), [s[1:] for s in STARTUP_FAILURES],
                         ids=[s[0] for s in STARTUP_FAILURES])
def test_invalid_environment_or_config_stops_start_up(tmp_path: Path, env: dict[str, str],
                                                      config: str | None, message: str) -> None:
    args = [sys.executable, "-m", "webhook", "serve", "--port", "1"]
    if config is not None:
        (tmp_path / "config.yaml").write_text(config)
        args += ["--config", str(tmp_path / "config.yaml")]
    result = subprocess.run(args, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", **env},
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    if config is not None:
        assert str(tmp_path / "config.yaml") in result.stderr
    assert not (tmp_path / "certs").exists()   # failed before touching anything


def test_package_root_is_importable_without_the_shell() -> None:
    """The pure core must not pull in the web stack (the import-linter contract, executed)."""
    code = ("import sys, webhook.core.admission.pipeline, webhook.core.mutation.create; "
            "bad = [m for m in ('fastapi', 'uvicorn', 'httpx', 'kubernetes', 'cryptography') "
            "if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
