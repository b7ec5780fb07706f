"""Issuing certificates (`webhook.adapters.tls.issue`): the Service's names, the CA and
serving pairs, their files, and the development certificates of `serve`.

Real crypto and real TLS handshakes on 127.0.0.1 (no mocks): the echo server of
`handshakes` stands in for uvicorn, so what these tests see is what the API server would see.
"""

from __future__ import annotations

import base64
import logging
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from tests.adapters.tls.handshakes import EchoServer, connect, dev_pair, echo, serial
from webhook.adapters.tls.check import check_pair
from webhook.adapters.tls.issue import (
    KeyPair,
    ca_bundle,
    ensure_dev_certificates,
    generate_ca,
    generate_serving_cert,
    make_service_certificates,
    service_dns_names,
    write_pair,
)
from webhook.adapters.tls.reload import ReloadingContext
from webhook.core.errors import ConfigError

# --- generation and the Service names ---------------------------------------------------

SERVICE_NAMES = service_dns_names("kci-webhook", "kci-system")


def test_service_dns_names_are_the_four_forms() -> None:
    assert SERVICE_NAMES == ["kci-webhook", "kci-webhook.kci-system", "kci-webhook.kci-system.svc",
                             "kci-webhook.kci-system.svc.cluster.local"]
    assert service_dns_names("a", "b", "corp")[-1] == "a.b.svc.corp"


@pytest.fixture(scope="module")
def service_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, KeyPair]:
    """Module-scoped: one CA + serving pair is enough for the whole hostname table."""
    out = tmp_path_factory.mktemp("certs")
    ca, *_ = make_service_certificates(out, service="kci-webhook", namespace="kci-system")
    return out, ca


@pytest.mark.parametrize(
    ("hostname", "accepted"),
    [(name, True) for name in SERVICE_NAMES]
    + [("other.kci-system.svc", False),   # another Service in the same namespace
       ("kci-webhook.other.svc", False),  # the same Service name in another namespace
       ("localhost", False)],
)
def test_service_certificate_verifies_through_handshake(
    service_pki: tuple[Path, KeyPair], serve: type[EchoServer], hostname: str,
    accepted: bool,
) -> None:
    out, ca = service_pki
    server = serve(ReloadingContext(out / "tls.crt", out / "tls.key").context)
    if accepted:
        with connect(server.port, ca.cert_pem, hostname) as conn:
            assert echo(conn) == b"ping"
    else:
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(server.port, ca.cert_pem, hostname)


def test_service_certificates_written_with_modes_and_ca_reused(tmp_path: Path) -> None:
    ca1, leaf1, reused1, _ = make_service_certificates(tmp_path, service="s", namespace="n")
    assert {p.name for p in tmp_path.iterdir()} == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    for name in ("ca.key", "tls.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    ca2, leaf2, reused2, _ = make_service_certificates(tmp_path, service="s", namespace="n")
    assert ca2 == ca1 and serial(leaf2) != serial(leaf1)  # same caBundle, new serving cert
    assert (reused1, reused2) == (False, True)
    report = check_pair(leaf2.cert_pem, leaf2.key_pem, ca_pem=ca1.cert_pem,
                        expected_names=service_dns_names("s", "n"))
    assert report.ok and report.problems == []
    ca3, _, reused3, _ = make_service_certificates(tmp_path, service="s", namespace="n",
                                                    reuse_ca=False)
    assert ca3.cert_pem != ca1.cert_pem and not reused3


def test_unusable_ca_is_refused_not_replaced(tmp_path: Path) -> None:
    make_service_certificates(tmp_path, service="s", namespace="n")
    (tmp_path / "ca.key").write_bytes(generate_ca().key_pem)  # key of another CA
    with pytest.raises(ValueError, match="cannot reuse the CA.*does not match"):
        make_service_certificates(tmp_path, service="s", namespace="n")


def test_ca_extensions_and_bundle() -> None:
    ca = generate_ca()
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert bc.ca and bc.path_length == 0 and ku.key_cert_sign and ku.crl_sign
    assert "key_pem" not in repr(ca) and ca.key_pem.splitlines()[1][:20].decode() not in repr(ca)
    assert base64.b64decode(ca_bundle(ca.cert_pem)) == ca.cert_pem


def test_serving_cert_backdated_for_clock_skew_and_capped_at_ca() -> None:
    ca = generate_ca(days=30)
    cert = x509.load_pem_x509_certificate(dev_pair(ca, days=365).cert_pem)
    now = datetime.now(UTC)
    assert now - timedelta(minutes=6) < cert.not_valid_before_utc <= now - timedelta(minutes=4)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    assert cert.not_valid_after_utc == ca_cert.not_valid_after_utc
    with pytest.raises(ValueError, match="at least one"):
        generate_serving_cert(ca, dns_names=[])



# --- ensure_dev_certificates -------------------------------------------------------------

def test_dev_certificates_created_then_reused(tmp_path: Path, serve: type[EchoServer]) -> None:
    d = tmp_path / "certs"
    cert, key, ca = ensure_dev_certificates(d)
    assert (cert, key, ca) == (d / "tls.crt", d / "tls.key", d / "ca.crt")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (d / "ca.key").exists()  # the dev CA's key is never kept
    before = [p.read_bytes() for p in (cert, key, ca)]
    assert ensure_dev_certificates(d) == (cert, key, ca)
    assert [p.read_bytes() for p in (cert, key, ca)] == before
    server = serve(ReloadingContext(cert, key).context)
    for host in ("localhost", "127.0.0.1", "::1"):
        with connect(server.port, ca.read_bytes(), host) as conn:
            assert echo(conn) == b"ping"


def test_dev_certificates_first_made_are_not_reported_as_an_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A first start finds no files: that is the normal case, not a problem to report."""
    with caplog.at_level(logging.INFO, logger="kci-webhook.tls"):
        ensure_dev_certificates(tmp_path / "certs")
    said = [record.getMessage() for record in caplog.records]
    assert said == [f"created a development CA and serving certificate in {tmp_path / 'certs'}"]
    (tmp_path / "certs" / "tls.key").write_bytes(b"garbage")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kci-webhook.tls"):
        ensure_dev_certificates(tmp_path / "certs")
    assert caplog.records[0].getMessage().startswith(
        f"the development certificates in {tmp_path / 'certs'} are not usable (")
    assert caplog.records[0].getMessage().endswith("): replacing them")


@pytest.mark.parametrize("damage", ["expires_today", "garbage_key", "wrong_key", "missing_ca",
                                    "other_ca", "no_localhost"])
def test_dev_certificates_replaced_when_unusable(tmp_path: Path, damage: str) -> None:
    cert, key, ca = ensure_dev_certificates(tmp_path)
    ca_pair = KeyPair(ca.read_bytes(), b"")
    if damage == "expires_today":  # valid, but for less than a day: renew now
        other = generate_ca()
        pair = generate_serving_cert(other, dns_names=["localhost"],
                                     ip_addresses=["127.0.0.1", "::1"], days=1)
        write_pair(tmp_path, ca=other, serving=pair)
    elif damage == "garbage_key":
        key.write_bytes(b"garbage")
    elif damage == "wrong_key":
        key.write_bytes(generate_ca().key_pem)
    elif damage == "missing_ca":
        ca.unlink()
    elif damage == "other_ca":
        ca.write_bytes(generate_ca().cert_pem)
    elif damage == "no_localhost":
        other = generate_ca()
        write_pair(tmp_path, ca=other,
                   serving=generate_serving_cert(other, dns_names=["example.com"]))
    before = cert.read_bytes()
    ensure_dev_certificates(tmp_path)
    assert cert.read_bytes() != before and ca.read_bytes() != ca_pair.cert_pem
    report = check_pair(cert.read_bytes(), key.read_bytes(), ca_pem=ca.read_bytes(),
                        expected_names=["localhost", "127.0.0.1", "::1"])
    assert report.ok and report.problems == []
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize("state", ["service-certificates", "ca-only", "ca-crt-missing"])
def test_dev_certificates_never_replace_a_ca_of_kci_webhook_certs(tmp_path: Path,
                                                                  state: str) -> None:
    # `kci-webhook certs --out DIR` leaves ca.key beside ca.crt; serve on the same DIR must
    # not orphan that key by writing a CA certificate of its own.
    make_service_certificates(tmp_path, service="kci-webhook", namespace="kci-webhook")
    if state == "ca-only":
        (tmp_path / "tls.crt").unlink()
    elif state == "ca-crt-missing":
        (tmp_path / "ca.crt").unlink()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ConfigError, match=r"holds a CA key \(ca\.key"):
        ensure_dev_certificates(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
