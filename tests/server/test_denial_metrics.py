"""Metric labels come from closed sets: a denial's reason, never the text it quotes.

A denial's message repeats what the pod author wrote (an annotation's value, a hostname);
as a label it would mint one series per distinct text, each kept for the process's life.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.builders import pod
from tests.conftest import RunningServer, pod_review
from tests.core.test_security import ctx
from webhook.core.errors import InvalidInput
from webhook.core.mutation.create import mutate
from webhook.server.metrics import DENIAL_REASONS, denial_reasons

HOSTS = "k8s.ksyun.com/kci-host-aliases"
DNS = "k8s.ksyun.com/kci-dns-config"


def denial_series(server: RunningServer) -> dict[str, float]:
    with server.client() as client:
        text = client.get("/metrics").text
    return {match.group(1): float(match.group(2)) for match in
            re.finditer(r"^kci_webhook_denials_total\{(.*)\} (\S+)$", text, re.M)}


def test_many_distinct_denial_messages_add_no_series(webhook_server: RunningServer) -> None:
    """300 denials, each with a message of its own (and parts crafted to look like a new
    problem after "; "), move counters of the closed reasons only."""
    for i in range(300):
        value = f'[{{"ip": "1.2.3.{i}", "hostnames": ["h{i}.example"], "x{i}": 1}}]'
        if i % 2:
            value = f"not json {i}; evil-{i}: (pod): ; spec.x{i}: expected {i}"
        reply = webhook_server.review(pod_review(pod("nginx", annotations={HOSTS: value}),
                                                 uid=f"uid-{i}"))
        assert reply.json()["response"]["allowed"] is False
    series = denial_series(webhook_server)
    labels = {re.fullmatch(r'reason="([^"]*)"', key).group(1)  # type: ignore[union-attr]
              for key in series}
    assert labels <= set(DENIAL_REASONS) and len(series) <= len(DENIAL_REASONS)
    assert series['reason="invalid-annotation"'] >= 300


def _denial(obj: Any, **kwargs: Any) -> str:
    try:
        outcome = mutate(obj, ctx(**kwargs))
    except InvalidInput as exc:
        return str(exc)
    assert outcome.denial, "expected a denial"
    return outcome.denial


MIRROR = "mirror.corp.example"
REAL_DENIALS = [
    ("invalid-json", pod("nginx", annotations={HOSTS: "[{"}), {"invalid-annotation"}),
    ("dns-limit-after-merge", pod("nginx", annotations={
        DNS: '{"nameservers":["1.1.1.1","1.1.1.2","1.1.1.3"]}'},
        dnsConfig={"nameservers": ["8.8.8.8"]}), {"invalid-annotation"}),
    ("insecure-not-allowed", pod("nginx", annotations={
        "k8s.ksyun.com/kci-insecure-registry": "evil.example"}), {"security-rule"}),
    ("other-dialects-key", pod("nginx", annotations={
        "k8s.aliyun.com/insecure-registry": "evil.example"}), {"security-rule"}),
    ("annotation-repoints-mirror", pod("nginx", annotations={
        HOSTS: f'[{{"ip":"1.2.3.4","hostnames":["{MIRROR}"]}}]'}), {"security-rule"}),
    ("spec-repoints-mirror", pod("nginx", hostAliases=[{"ip": "1.2.3.4",
                                                        "hostnames": [MIRROR]}]),
     {"security-rule"}),
    ("invalid-value-before-rules", pod("nginx", annotations={
        HOSTS: "[{", "k8s.ksyun.com/kci-http-registry": "evil.example"}),
     {"invalid-annotation"}),
    ("too-large", pod("nginx", annotations={"x": "a" * 262_000,
                                            "k8s.ksyun.com/kci-http-registry": "a.corp.example"}),
     {"annotations-too-large"}),
    ("not-a-pod", {"spec": None}, {"invalid-object"}),
    ("containers-not-objects", {"spec": {"containers": [1]}}, {"invalid-object"}),
]


@pytest.mark.parametrize(("obj", "reasons"), [c[1:] for c in REAL_DENIALS],
                         ids=[c[0] for c in REAL_DENIALS])
def test_denials_the_code_produces_get_their_reason(obj: Any, reasons: set[str]) -> None:
    """The classification follows the wording of the code that produces each denial."""
    assert denial_reasons(_denial(obj)) == reasons


@pytest.mark.parametrize("message", [
    "", "; ; ;", "x" * 10_000, "k8s.ksyun.com/kci-host-aliases (pod): " + "; " * 5000,
    "pod template: pod template: spec: expected an object",
    "\n".join(f"a{i}.example/b (pod): c" for i in range(100)),
])
def test_any_message_maps_into_the_closed_set(message: str) -> None:
    reasons = denial_reasons(message)
    assert reasons and reasons <= set(DENIAL_REASONS)
