"""Checking a certificate and its key: what is wrong with a pair, every problem named.

For `kci-webhook certs --check`, the development certificates `serve` reuses, a CA reused
by `certs`, and the reload of the serving pair (`reload`): each refuses what `check_pair`
or `parse_pair` find wrong, and says why.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


def _now() -> datetime:
    return datetime.now(UTC)


def certificate_summary(cert_pem: bytes) -> str:
    """`CN=..., expires 2036-01-01T00:00:00+00:00`: enough to recognise a certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return f"{cert.subject.rfc4514_string()}, expires {cert.not_valid_after_utc.isoformat()}"


@dataclass
class CheckReport:
    """`ok` is False on any error; expiring soon is listed in `problems` but keeps `ok`."""

    ok: bool
    problems: list[str]
    not_after: datetime | None
    sans: list[str]


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_pair(cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
    """The leaf certificate (first of a chain), or ValueError saying what is wrong."""
    try:
        leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError as e:
        raise ValueError(f"certificate does not parse: {e}") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise ValueError(f"private key does not parse: {e}") from None
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise ValueError("private key does not match the certificate")
    return leaf


def name_covered(name: str, dns: Sequence[str], ips: Sequence[object]) -> bool:
    """Whether a verifier accepts `name` for these SANs: an IP address among the IP SANs,
    a DNS name equal to a DNS SAN or matched by a wildcard SAN's one leftmost label."""
    try:
        return ipaddress.ip_address(name) in ips
    except ValueError:
        pass
    name = name.lower().rstrip(".")
    for san in (d.lower() for d in dns):
        if san == name or (san.startswith("*.") and "." in name
                           and name.split(".", 1)[1] == san[2:]):
            return True
    return False


def check_pair(cert_pem: bytes, key_pem: bytes, *, ca_pem: bytes | None = None,
               expected_names: Sequence[str] = (), now: datetime | None = None,
               warn_within: timedelta = timedelta(days=30)) -> CheckReport:
    """Every problem with a certificate/key pair, each named, instead of the first one."""
    now = now or _now()
    problems: list[str] = []
    try:
        leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError as e:
        return CheckReport(False, [f"certificate does not parse: {e}"], None, [])
    try:
        parse_pair(cert_pem, key_pem)
    except ValueError as e:
        problems.append(str(e))
    not_after, not_before = leaf.not_valid_after_utc, leaf.not_valid_before_utc
    if now >= not_after:
        problems.append(f"certificate expired on {not_after.isoformat()}")
    elif now < not_before:
        problems.append(f"certificate not yet valid: valid from {not_before.isoformat()}")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        dns, ips = [], []
    problems += [f"missing SAN {n!r}" for n in expected_names if not name_covered(n, dns, ips)]
    if ca_pem is not None:
        try:
            leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
        except Exception as e:  # ValueError: CA unparsable or issuer name differs;
            # InvalidSignature (empty message); TypeError: a CA key type it cannot check
            problems.append(f"not signed by the given CA: {e or 'signature does not verify'}")
    ok = not problems  # the expiry warning below is advice, not a reason to refuse the pair
    if not_before <= now < not_after <= now + warn_within:
        window = f"{warn_within.days} days" if warn_within.days else str(warn_within)
        problems.append(f"certificate expires within {window}, on {not_after.isoformat()}")
    return CheckReport(ok, problems, not_after, [*dns, *(str(ip) for ip in ips)])
