"""Certificates as `kci-webhook trust` sees them: PEM blocks, DER, base64 layers.

`inspect_pem` names every block of a PEM text (certificates parsed, keys only counted),
`describe_certificate` gives what a person needs to recognise one (never key material),
and `peel` takes base64 layers off a value until PEM text appears. Nothing here knows
about Tanzu objects; the bottom of the package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

DEFAULT_WARN_DAYS = 30

_BEGIN = re.compile(rb"-----BEGIN ([^-\r\n]+)-----")
_BLOCK = re.compile(rb"-----BEGIN ([^-\r\n]+)-----.*?-----END \1-----", re.S)
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


@dataclass(frozen=True)
class CertInfo:
    """What a person needs to recognise a certificate; never any key material."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    sha256: str
    ca: bool
    self_signed: bool

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "issuer": self.issuer,
                "not_before": self.not_before.isoformat(),
                "not_after": self.not_after.isoformat(), "sha256": self.sha256,
                "ca": self.ca, "self_signed": self.self_signed}


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _name(name: x509.Name) -> str:
    try:
        return _printable(name.rfc4514_string()) or "(empty name)"
    except ValueError:
        return "(unreadable name)"


def describe_certificate(cert: x509.Certificate) -> CertInfo:
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        ca = False
    self_signed = False
    if cert.subject == cert.issuer:
        try:
            cert.verify_directly_issued_by(cert)
            self_signed = True
        except Exception:  # InvalidSignature, or a key type it cannot verify
            self_signed = False
    der = cert.public_bytes(serialization.Encoding.DER)
    return CertInfo(subject=_name(cert.subject), issuer=_name(cert.issuer),
                    not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                    sha256=hashlib.sha256(der).hexdigest(), ca=ca, self_signed=self_signed)


@dataclass
class PemContent:
    """The blocks of a PEM text: certificates parsed, anything else only named."""

    certificates: list[x509.Certificate] = field(default_factory=list)
    key_blocks: list[str] = field(default_factory=list)
    other_blocks: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)


def inspect_pem(data: bytes) -> PemContent:
    content = PemContent()
    begins = [m.group(1).decode("ascii", "replace").strip() for m in _BEGIN.finditer(data)]
    content.key_blocks = [b for b in begins if "PRIVATE KEY" in b]
    complete = 0
    for m in _BLOCK.finditer(data):
        complete += 1
        kind = m.group(1).decode("ascii", "replace").strip()
        if kind == "CERTIFICATE":
            try:
                content.certificates.append(x509.load_pem_x509_certificate(m.group(0)))
            except ValueError as e:
                content.broken.append(f"a CERTIFICATE block does not parse ({e})")
        elif "PRIVATE KEY" not in kind:
            content.other_blocks.append(kind)
    if complete < len(begins):
        content.broken.append("a PEM block has no matching END line (truncated copy?)")
    return content


def _is_der_private_key(data: bytes) -> bool:
    try:
        serialization.load_der_private_key(data, password=None)
        return True
    except TypeError:  # encrypted: still a key
        return True
    except Exception:
        return False


def _is_der_certificate(data: bytes) -> bool:
    try:
        x509.load_der_x509_certificate(data)
        return True
    except Exception:
        return False


def _b64decode(text: str) -> tuple[bytes | None, str]:
    """Decode as Go's base64.StdEncoding does (line breaks ignored, padding required);
    (bytes, "") or (None, why not)."""
    compact = text.replace("\r", "").replace("\n", "")
    if not compact.strip():
        return None, "it is empty"
    outside = sorted(set(re.sub(r"[A-Za-z0-9+/=]", "", compact)))
    if outside:
        if set(outside) <= {" ", "\t"}:
            return None, "it contains spaces (a folded YAML scalar?)"
        if set(outside) <= {"-", "_"}:
            return None, ("it uses the URL-safe alphabet ('-', '_'); Kubernetes and Tanzu "
                          "expect standard base64 ('+', '/')")
        shown = "".join(outside[:8])
        return None, f"it contains characters outside the base64 alphabet: {shown!r}"
    if len(compact) % 4:
        return None, "its length is not a multiple of 4 (truncated, or '=' padding missing)"
    try:
        return base64.b64decode(compact, validate=True), ""
    except binascii.Error as e:
        return None, str(e)


def _is_base64_text(data: bytes) -> bool:
    compact = data.replace(b"\r", b"").replace(b"\n", b"")
    return bool(compact) and len(compact) % 4 == 0 and _BASE64_TEXT.fullmatch(compact) is not None


def _what_it_is(data: bytes) -> tuple[str, str]:
    """(code, description) of bytes that are not PEM, for messages (no content shown)."""
    if not data.strip():
        return "not-a-certificate", "nothing (empty)"
    if _is_der_certificate(data):
        return "der-certificate", "a DER (binary) certificate"
    if _is_der_private_key(data):
        return "private-key", "a private key (DER)"
    try:
        data.decode("utf-8")
        return "not-a-certificate", "text that holds no PEM block"
    except UnicodeDecodeError:
        return "not-a-certificate", f"{len(data)} bytes of binary data"


@dataclass(frozen=True)
class Peeled:
    """`layers`: base64 layers above the PEM text (0 = raw PEM); None if no PEM was found,
    then `code`/`problem` say what the data is instead."""

    layers: int | None
    pem: bytes | None
    code: str = ""
    problem: str = ""


def peel(value: str, *, max_layers: int = 4) -> Peeled:
    """Take base64 layers off `value` until PEM text appears."""
    if "-----BEGIN" in value:
        return Peeled(0, value.encode("utf-8", "replace"))
    data, why = _b64decode(value)
    if data is None:
        return Peeled(None, None, "invalid-base64", f"not valid base64: {why}")
    layers = 1
    while b"-----BEGIN" not in data:
        inner = _b64decode(data.decode("ascii"))[0] if _is_base64_text(data) else None
        if inner is None or layers >= max_layers:
            code, what = _what_it_is(data)
            times = "once" if layers == 1 else f"{layers} times"
            return Peeled(None, None, code, f"base64, but decoded {times} it is {what}, "
                                            "not a PEM certificate")
        data, layers = inner, layers + 1
    return Peeled(layers, data)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
