"""Checking a certificate and its key (`webhook.adapters.tls.check`): every problem named,
on certificates made with real crypto (no mocks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.adapters.tls.handshakes import dev_pair
from webhook.adapters.tls.check import check_pair
from webhook.adapters.tls.issue import KeyPair, generate_ca


def test_check_pair_good(ca: KeyPair) -> None:
    pair = dev_pair(ca)
    report = check_pair(pair.cert_pem, pair.key_pem, ca_pem=ca.cert_pem,
                        expected_names=["localhost", "127.0.0.1"])
    assert report.ok and report.problems == []
    assert report.sans == ["localhost", "127.0.0.1"]
    assert report.not_after is not None and report.not_after > datetime.now(UTC)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired", "certificate expired on"),
        ("not_yet_valid", "certificate not yet valid"),
        ("wrong_key", "private key does not match the certificate"),
        ("garbage_key", "private key does not parse"),
        ("san_missing", "missing SAN 'kci-webhook.kci-system.svc'"),
        ("ip_missing", "missing SAN '::1'"),
        ("other_ca", "not signed by the given CA"),
        ("garbage_ca", "not signed by the given CA: "),
    ],
)
def test_check_pair_names_each_problem(ca: KeyPair, case: str, expected: str) -> None:
    pair = dev_pair(ca, days=-1 if case == "expired" else 365)
    key = pair.key_pem
    kwargs: dict = {"ca_pem": ca.cert_pem}
    if case == "not_yet_valid":
        kwargs["now"] = datetime.now(UTC) - timedelta(days=2)
    elif case == "wrong_key":
        key = dev_pair(ca).key_pem
    elif case == "garbage_key":
        key = b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"
    elif case == "san_missing":
        kwargs["expected_names"] = ["localhost", "kci-webhook.kci-system.svc"]
    elif case == "ip_missing":
        kwargs["expected_names"] = ["127.0.0.1", "::1"]
    elif case == "other_ca":
        kwargs["ca_pem"] = generate_ca().cert_pem
    elif case == "garbage_ca":
        kwargs["ca_pem"] = b"not a certificate"
    report = check_pair(pair.cert_pem, key, **kwargs)
    assert not report.ok
    assert len(report.problems) == 1 and report.problems[0].startswith(expected), report.problems


def test_check_pair_expiring_soon_is_a_warning_not_an_error(ca: KeyPair) -> None:
    pair = dev_pair(ca, days=10)
    report = check_pair(pair.cert_pem, pair.key_pem, ca_pem=ca.cert_pem)
    assert report.ok and len(report.problems) == 1
    assert report.problems[0].startswith("certificate expires within 30 days")
    assert check_pair(pair.cert_pem, pair.key_pem, warn_within=timedelta(days=5)).problems == []
    both = check_pair(pair.cert_pem, pair.key_pem, expected_names=["nope"])
    assert not both.ok and len(both.problems) == 2  # an error and the expiry advice


def test_check_pair_collects_every_problem_and_survives_garbage(ca: KeyPair) -> None:
    pair = dev_pair(ca, days=-1)
    report = check_pair(pair.cert_pem, dev_pair(ca).key_pem, expected_names=["x", "y"],
                        ca_pem=generate_ca().cert_pem)
    assert len(report.problems) == 5 and not report.ok
    bad = check_pair(b"junk", b"junk")
    assert not bad.ok and bad.problems[0].startswith("certificate does not parse")
    assert bad.not_after is None
