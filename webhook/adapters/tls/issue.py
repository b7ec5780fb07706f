"""Issuing certificates for the webhook port: a CA, a serving certificate for the Service
name the API server calls, and the files they are written to.

The API server trusts the webhook through the `caBundle` of the MutatingWebhookConfiguration
and checks the serving certificate's SANs against the Service name it calls (`svc.ns.svc`),
so everything here is about getting those two right:

- `generate_ca` / `generate_serving_cert` / `make_service_certificates`: material for
  `kci-webhook certs`; `ensure_dev_certificates` for `serve` with no certificate given;
- `write_pair`: the files, written so that a watcher (`reload`) never sees half of one;
- `ca_bundle`: the `caBundle` field.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.adapters.files import write_atomic
from webhook.adapters.tls.check import check_pair
from webhook.core.errors import ConfigError

log = logging.getLogger("kci-webhook.tls")

# Nodes and the API server may run a few minutes ahead of the machine that signs.
CLOCK_SKEW = timedelta(minutes=5)
DEV_DNS_NAMES = ("localhost",)
DEV_IP_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM private key (kept out of repr so logs never show it)."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)


def _now() -> datetime:
    return datetime.now(UTC)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs only; a leaf signs handshakes only (ECDSA)."""
    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False)


def _issue(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey,
           signer: CertificateIssuerPrivateKeyTypes, *, not_after: datetime) -> KeyPair:
    """Finish a certificate for `key`: a random serial (so rotations are told apart), a
    notBefore CLOCK_SKEW in the past (or a day before an already past notAfter), SKI."""
    not_before = min(_now() - CLOCK_SKEW, not_after - timedelta(days=1))
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) \
        else hashes.SHA256()
    cert = (
        builder.public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(signer, algorithm)
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def _cn(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def generate_ca(*, common_name: str = "kci-webhook-ca", days: int = 3650) -> KeyPair:
    """A self-signed ECDSA P-256 CA that may sign leaf certificates only (pathlen 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_cn(common_name))
        .issuer_name(_cn(common_name))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
    )
    return _issue(builder, key, key, not_after=_now() + timedelta(days=days))


def generate_serving_cert(
    ca: KeyPair,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    days: int = 365,
    common_name: str | None = None,
) -> KeyPair:
    """An ECDSA P-256 server certificate signed by `ca`, its SANs the given names and IPs.

    Verifiers look only at the SANs; the CN is informational. The expiry is capped at the
    CA's, so `not_after` tells the truth about when verification will start failing.
    `days` may be zero or negative (an already expired certificate, for tests and checks).
    """
    if not dns_names and not ip_addresses:
        raise ValueError("a serving certificate needs at least one DNS name or IP address")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
                      | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        raise ValueError(f"CA key of type {type(ca_key).__name__} cannot sign certificates")
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cn = common_name or next((n for n in [*dns_names, *ip_addresses] if len(n) <= 64),
                             "kci-webhook")
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_cn(cn))
        .issuer_name(ca_cert.subject)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
    )
    not_after = min(_now() + timedelta(days=days), ca_cert.not_valid_after_utc)
    return _issue(builder, ec.generate_private_key(ec.SECP256R1()), ca_key, not_after=not_after)


def service_dns_names(service: str, namespace: str, cluster_domain: str = "cluster.local"
                      ) -> list[str]:
    """The names a Service is reached by; the API server calls `svc.ns.svc`."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.{cluster_domain}"]


def write_pair(directory: Path, *, ca: KeyPair, serving: KeyPair,
               write_ca_key: bool = False) -> None:
    """Write ca.crt, tls.key, tls.crt (and ca.key only if `write_ca_key`).

    The key is written before the certificate: a watcher polling in between sees a new
    key with the old certificate, refuses the mismatch, and picks up the pair next poll.
    """
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / "ca.crt", ca.cert_pem, mode=0o644)
    if write_ca_key:
        write_atomic(directory / "ca.key", ca.key_pem, mode=0o600)
    write_atomic(directory / "tls.key", serving.key_pem, mode=0o600)
    write_atomic(directory / "tls.crt", serving.cert_pem, mode=0o644)


def ensure_dev_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Certificates for `serve` with none given: reuse the ones in `directory` if they
    are a matching pair from that CA, cover localhost, and stay valid for more than a day;
    otherwise write a fresh CA and serving certificate. The dev CA's key is discarded, so
    renewal regenerates everything (a client must re-trust ca.crt, which is fine in dev).
    Returns (cert, key, ca) paths."""
    cert, key, ca = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
    try:
        report = check_pair(cert.read_bytes(), key.read_bytes(), ca_pem=ca.read_bytes(),
                            expected_names=[*DEV_DNS_NAMES, *DEV_IP_ADDRESSES],
                            warn_within=timedelta(days=1))
        if not report.problems:
            return cert, key, ca
        why = "; ".join(report.problems)
    except FileNotFoundError:
        why = ""                                   # the first start: nothing there yet
    except OSError as exc:
        why = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    if (directory / "ca.key").exists():
        # A CA of `kci-webhook certs` lives here: replacing its ca.crt would orphan its key
        # (and the caBundle a cluster trusts). Never touch it.
        raise ConfigError(
            f"{directory}: holds a CA key (ca.key, from `kci-webhook certs`) and its "
            f"certificates are not usable for development ({why}); pass --cert and --key, "
            "or --certs-dir a directory for development certificates")
    if why:
        log.info("the development certificates in %s are not usable (%s): replacing them",
                 directory, why)
    new_ca = generate_ca(common_name="kci-webhook-dev-ca", days=365)
    serving = generate_serving_cert(new_ca, dns_names=DEV_DNS_NAMES,
                                    ip_addresses=DEV_IP_ADDRESSES, days=90)
    write_pair(directory, ca=new_ca, serving=serving)
    log.info("created a development CA and serving certificate in %s", directory)
    return cert, key, ca


class ServiceCertificates(NamedTuple):
    """What `make_service_certificates` wrote; `ca_reused` tells whether the caBundle
    already in the cluster stays valid, `ca_notes` what is worth knowing about that CA."""

    ca: KeyPair
    serving: KeyPair
    ca_reused: bool = False
    ca_notes: tuple[str, ...] = ()


def make_service_certificates(out_dir: Path, *, service: str, namespace: str, days: int = 365,
                              ca_days: int = 3650, reuse_ca: bool = True
                              ) -> ServiceCertificates:
    """CA + serving certificate for the in-cluster Service; writes ca.crt, ca.key,
    tls.crt, tls.key. Reusing the CA keeps the caBundle already in the cluster valid, so
    re-issuing the serving certificate needs no change to the webhook configuration.
    A CA pair that is present but unusable is an error, never silently replaced (that
    would break the caBundle); pass reuse_ca=False to start a new CA."""
    ca_crt, ca_key = out_dir / "ca.crt", out_dir / "ca.key"
    notes: tuple[str, ...] = ()
    reused = reuse_ca and ca_crt.exists() and ca_key.exists()
    if reused:
        ca = KeyPair(ca_crt.read_bytes(), ca_key.read_bytes())
        report = check_pair(ca.cert_pem, ca.key_pem, warn_within=timedelta(days=days))
        if not report.ok:
            raise ValueError(f"cannot reuse the CA in {out_dir}: {'; '.join(report.problems)}"
                             " (use a new CA instead)")
        notes = tuple(f"the CA's {p}: the serving certificate ends with it" for p in
                      report.problems)
    else:
        ca = generate_ca(days=ca_days)
    serving = generate_serving_cert(ca, dns_names=service_dns_names(service, namespace),
                                    days=days)
    write_pair(out_dir, ca=ca, serving=serving, write_ca_key=True)
    return ServiceCertificates(ca, serving, reused, notes)


def ca_bundle(ca_cert_pem: bytes) -> str:
    """The `caBundle` field: base64 of the PEM text itself (not of the DER)."""
    return base64.b64encode(ca_cert_pem).decode("ascii")
