"""TLS as containerd sees it, and certificates put into words.

The contexts (verifying as containerd does; unverified, to look at what a server sends),
the peer's chain, and the lines and `--json` facts that describe a certificate: names,
SANs, dates, whether it is self-signed, what is wrong with a leaf by itself.
"""

from __future__ import annotations

import ssl
import warnings
from datetime import datetime
from typing import Any

from cryptography import x509

from webhook.adapters.tls.check import name_covered


def _verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """Verification as containerd (Go) does it: the system store plus `ca_file` (added,
    never replacing), names from SANs only, any certificate of the pool an anchor."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.hostname_checks_common_name = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def _unverified_context(*, legacy: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if legacy:  # to tell "below TLS 1.2" from other failures; never used to send anything
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def _chain(tls: ssl.SSLSocket, *, verified: bool) -> list[x509.Certificate]:
    """The peer's chain: public since Python 3.13, on the internal object before."""
    name = "get_verified_chain" if verified else "get_unverified_chain"
    ders: list[bytes] = []
    method = getattr(tls, name, None) or getattr(getattr(tls, "_sslobj", None), name, None)
    if method is not None:
        for item in method() or []:
            ders.append(item if isinstance(item, bytes)
                        else item.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    if not ders:
        leaf = tls.getpeercert(binary_form=True)
        ders = [leaf] if leaf else []
    certs = []
    for der in ders:
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError:
            break
    return certs


def _name(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty name)"


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # InvalidSignature, or a key type it cannot check
        return False
    return True


def _is_leaf(cert: x509.Certificate) -> bool:
    """Not a CA (no CA:TRUE basic constraint) and issued by another: an end entity that
    its issuer renews, unlike a self-signed certificate, which is its own anchor."""
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    return not ca and not _self_signed(cert)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(cert: x509.Certificate, *, leaf: bool) -> str:
    text = f"{_name(cert.subject)}, issued by {_name(cert.issuer)}"
    if _self_signed(cert):
        text += " (self-signed)"
    text += f"; valid {_when(cert.not_valid_before_utc)} to {_when(cert.not_valid_after_utc)}"
    if leaf:
        text += f"; SANs: {', '.join(_sans(cert)) or '(none)'}"
    return text


def _cert_facts(leaf: x509.Certificate) -> dict[str, Any]:
    return {"subject": _name(leaf.subject), "issuer": _name(leaf.issuer),
            "self_signed": _self_signed(leaf), "sans": _sans(leaf),
            "not_before": _rfc3339(leaf.not_valid_before_utc),
            "not_after": _rfc3339(leaf.not_valid_after_utc)}


def _leaf_problems(leaf: x509.Certificate, host: str, now: datetime) -> list[tuple[str, str]]:
    """(kind, text) of what is wrong with the leaf by itself: dates and names."""
    problems = []
    if now > leaf.not_valid_after_utc:
        problems.append(("dates", f"the certificate expired on {_when(leaf.not_valid_after_utc)}"))
    elif now < leaf.not_valid_before_utc:
        problems.append(("dates", f"the certificate is valid only from "
                                  f"{_when(leaf.not_valid_before_utc)}"))
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns, ips = san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        dns, ips = [], []
    if not name_covered(host, dns, ips):
        problems.append(("name", f"the certificate is not valid for {host} (SANs: "
                                 f"{', '.join(_sans(leaf)) or 'none'})"))
    return problems


def _ssl_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    return str(exc) or type(exc).__name__
