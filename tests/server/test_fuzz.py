"""Structure-aware fuzzing of the real server: valid envelopes around hostile pods.

Thousands of generated bodies go to `/mutate` and `/validate` over TLS. Whatever arrives,
the answer is a valid AdmissionReview (for the request's uid) or a 4xx with a JSON reason;
never a 500, a crash, or a hang (each request must answer within 1 s).
"""

from __future__ import annotations

import base64
import copy
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import jsonpatch
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RunningServer, load_review

KCI_KEYS = ["k8s.ksyun.com/kci-dns-config", "k8s.ksyun.com/kci-host-aliases",
            "k8s.ksyun.com/kci-http-registry", "k8s.ksyun.com/kci-insecure-registry",
            "kci-webhook/mirrors", "kci-webhook/original-images"]
BASE = load_review("deployment-pod-3-containers.json")

hostile_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=10),
    st.sampled_from(["\x00", "\u202e", "🙂", "\ud7ff", "a" * 5000, "[" * 2000, "{\"a\":",
                     "nginx", "docker.io/library/nginx:1@sha256:" + "a" * 64,
                     '[{"ip":"1.2.3.4","hostnames":["x"]}]', '{"nameservers":["1.1.1.1"]}',
                     "http://x", "a,,b", "off"]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                    st.floats(allow_nan=False, allow_infinity=False),
                    hostile_text)
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12)


DEEP_MARK = "__deeply_nested__"


@st.composite
def hostile_pods(draw: st.DrawFn) -> Any:
    """The captured 3-container pod with one to three of its fields made hostile."""
    pod = copy.deepcopy(BASE["request"]["object"])
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from([
            "annotations", "annotation-value", "image", "containers", "spec", "metadata",
            "pull-secrets", "host-aliases", "dns", "huge-list", "deep", "whole",
            "ephemeral"]))
        value = draw(json_values)
        metadata = pod.get("metadata") if isinstance(pod, dict) else None
        if not isinstance(metadata, dict) or not isinstance(pod.get("spec"), dict):
            break                           # an earlier draw replaced the pod's skeleton
        if target == "annotations":
            pod["metadata"]["annotations"] = value
        elif target == "annotation-value":
            pod["metadata"].setdefault("annotations", {})
            if isinstance(pod["metadata"]["annotations"], dict):
                pod["metadata"]["annotations"][draw(st.sampled_from(KCI_KEYS))] = draw(
                    st.one_of(hostile_text, json_values))
        elif target == "image" and isinstance(pod.get("spec"), dict) and isinstance(
                pod["spec"].get("containers"), list) and pod["spec"]["containers"]:
            container = pod["spec"]["containers"][0]
            if isinstance(container, dict):
                container["image"] = draw(st.one_of(hostile_text, scalars))
        elif target == "containers" and isinstance(pod.get("spec"), dict):
            pod["spec"]["containers"] = value
        elif target == "spec":
            pod["spec"] = value
        elif target == "metadata":
            pod["metadata"] = value
        elif target in ("pull-secrets", "host-aliases", "dns", "ephemeral") and isinstance(
                pod.get("spec"), dict):
            key = {"pull-secrets": "imagePullSecrets", "host-aliases": "hostAliases",
                   "dns": "dnsConfig", "ephemeral": "ephemeralContainers"}[target]
            pod["spec"][key] = value
        elif target == "huge-list" and isinstance(pod.get("spec"), dict):
            pod["spec"]["containers"] = [{"name": f"c{i}", "image": "nginx"}
                                         for i in range(draw(st.integers(100, 1500)))]
        elif target == "deep":      # nested deeper than a serializer allows: spliced in raw
            pod["metadata"]["labels"] = {"deep": DEEP_MARK}
        elif target == "whole":
            pod = value
    return pod


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, dict[str, Any] | None]:
    """(raw body, the review it encodes or None when it is not valid JSON on purpose)."""
    review = copy.deepcopy(BASE)
    review["apiVersion"] = draw(st.sampled_from(["admission.k8s.io/v1",
                                                 "admission.k8s.io/v1beta1"]))
    review["request"]["object"] = draw(hostile_pods())
    review["request"]["operation"] = draw(st.sampled_from(["CREATE", "CREATE", "UPDATE", 7]))
    if review["request"]["operation"] == "UPDATE":     # the stored pod, and what changed it
        review["request"]["oldObject"] = copy.deepcopy(BASE["request"]["object"])
        review["request"]["subResource"] = draw(st.sampled_from(
            ["", "", "ephemeralcontainers", "status"]))
    raw = orjson.dumps(review)
    if DEEP_MARK.encode() in raw:
        depth = draw(st.integers(100, 3000))
        raw = raw.replace(f'"{DEEP_MARK}"'.encode(), b"[" * depth + b'"x"' + b"]" * depth)
        review = None if depth > 1000 else review   # beyond the JSON parser's nesting limit
        if review is None:
            return raw, None
    mangle = draw(st.sampled_from(["none", "none", "none", "duplicate-keys", "truncate",
                                   "nul", "envelope", "big-number"]))
    if mangle == "duplicate-keys":        # JSON allows it; the last value wins
        raw = raw[:-1] + b',"request":' + orjson.dumps(review["request"]) + b"}"
    elif mangle == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))], None
    elif mangle == "big-number":          # valid JSON, beyond 64-bit integers
        return raw.replace(b'"creationTimestamp":null', b'"creationTimestamp":' + b"9" * 40,
                           1), None
    elif mangle == "nul":
        return raw.replace(b'"uid"', b'"u\x00id"', 1), None
    elif mangle == "envelope":
        review[draw(st.sampled_from(["kind", "apiVersion", "request"]))] = draw(json_values)
        return orjson.dumps(review), None
    return raw, review


@pytest.fixture(scope="module")
def client(webhook_server: RunningServer) -> Iterator[httpx.Client]:
    """One keep-alive connection for all examples, as the API server reuses connections;
    1 s per request: a hang fails the test."""
    with webhook_server.client() as c:
        c.timeout = httpx.Timeout(1.0, connect=5.0)
        yield c


COUNT = {"n": 0}
LOCK = threading.Lock()


@settings(max_examples=2200, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(bodies(), st.sampled_from(["/mutate", "/validate"]))
def test_every_body_gets_an_admission_review_or_a_json_4xx(
        client: httpx.Client, body: tuple[bytes, dict[str, Any] | None], path: str) -> None:
    raw, review = body
    with LOCK:
        COUNT["n"] += 1
    reply = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert reply.status_code != 500 and reply.status_code < 500
    answer = reply.json()
    if reply.status_code != 200:
        assert 400 <= reply.status_code < 500 and isinstance(answer["error"], str)
        return
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert isinstance(response["allowed"], bool)
    if review is not None:
        assert answer["apiVersion"] == review["apiVersion"]
        assert response["uid"] == review["request"]["uid"]
        if "patch" in response:
            ops = orjson.loads(base64.b64decode(response["patch"]))
            jsonpatch.apply_patch(copy.deepcopy(review["request"]["object"]), ops)


def test_the_campaign_ran_at_least_2000_bodies() -> None:
    """Runs after the property above in this module (pytest keeps file order)."""
    assert COUNT["n"] >= 2000
