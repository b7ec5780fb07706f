"""Building trust entries from PEM files, and the YAML that carries them.

`build_entries` turns certificate files into named entries (refusing keys, expired
certificates and, unless asked, leaf certificates); `tkg_service_configuration` and
`trust_secret` put them in the single- and double-base64 form; `render` prints either.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization

from webhook.tools.trust.errors import TrustError
from webhook.tools.trust.pem import (
    _BEGIN,
    DEFAULT_WARN_DAYS,
    CertInfo,
    _b64decode,
    _is_base64_text,
    _is_der_certificate,
    _is_der_private_key,
    _printable,
    _when,
    describe_certificate,
    inspect_pem,
)
from webhook.tools.trust.tanzu import (
    _KEY_NAME,
    TKG_API_VERSION,
    TKG_KIND,
    TKG_NAME,
    secret_name,
)


@dataclass(frozen=True)
class Entry:
    """One `additionalTrustedCAs` entry: one certificate, as normalised PEM."""

    name: str
    pem: bytes
    info: CertInfo
    source: str


def sanitize_name(text: str, *, max_length: int = 63) -> str:
    """A DNS-1123 label from a file stem: lower case, runs of anything else → '-'."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:max_length].strip("-")
    return name or "ca"


def _suffixed(base: str, index: int, count: int, *, explicit: bool) -> str:
    if count == 1:
        return base
    suffix = f"-{index + 1}"
    if explicit:
        return base + suffix
    return sanitize_name(base, max_length=63 - len(suffix)) + suffix


def _decoded_hint(data: bytes, source: str) -> str | None:
    """Why `data` (no PEM block in it) is not a PEM file, when we can tell."""
    compact = data.strip()
    if _is_base64_text(compact):
        inner = _b64decode(compact.decode("ascii"))[0]
        if inner is not None and b"-----BEGIN" in inner:
            if inspect_pem(inner).key_blocks:
                return "private-key"
            return (f"{source}: holds base64 of a PEM file (what `kubectl get secret ... -o "
                    f"jsonpath='{{.data.ca\\.crt}}'` prints), not the PEM itself — decode it "
                    f"first: base64 -d {source} > ca.pem, then kci-webhook trust ca.pem")
    if _is_der_certificate(data):
        return (f"{source}: is a DER (binary) certificate, not PEM — convert it: "
                f"openssl x509 -inform der -in {source} -out ca.pem")
    if _is_der_private_key(data):
        return "private-key"
    return None


def _key_refusal(source: str, blocks: Sequence[str], *, with_certificate: bool) -> TrustError:
    what = ", ".join(sorted(set(blocks))) or "PRIVATE KEY (DER)"
    refusal = (f"{source}: holds a private key ({what}); refusing — a trust entry needs only "
               "the public CA certificate, and a key must never go into a "
               "TkgServiceConfiguration or Secret.")
    if with_certificate:
        return TrustError(f"{refusal} Pass a file with the certificate alone (openssl x509 "
                          f"-in {source} -out ca.crt extracts the first one).")
    return TrustError(
        f"{refusal} It holds no certificate at all: the CA certificate is a separate file — "
        "ca.crt beside ca.key, the ca.crt of the registry's TLS Secret (kubectl get secret "
        "NAME -o jsonpath='{.data.ca\\.crt}' | base64 -d > ca.crt), or the last "
        "certificate of the chain the registry serves (openssl s_client -showcerts "
        "-connect REGISTRY:443).")


def certificates_from_pem(data: bytes, source: str, *, allow_leaf: bool = False,
                          now: datetime | None = None,
                          warn_within: timedelta = timedelta(days=DEFAULT_WARN_DAYS)
                          ) -> tuple[list[tuple[bytes, CertInfo]], list[str]]:
    """The certificates of one PEM file, each as (normalised PEM, info), and notes for the
    user; TrustError if the file must not or cannot be used."""
    now = now or datetime.now(UTC)
    content = inspect_pem(data)
    if content.key_blocks:
        raise _key_refusal(source, content.key_blocks,
                           with_certificate=bool(content.certificates))
    if not _BEGIN.search(data):
        hint = _decoded_hint(data, source)
        if hint == "private-key":
            raise _key_refusal(source, [], with_certificate=False)
        raise TrustError(hint or f"{source}: is not a PEM certificate (no '-----BEGIN "
                                 "CERTIFICATE-----' block)")
    if content.broken:
        raise TrustError(f"{source}: {'; '.join(content.broken)}")
    if not content.certificates:
        raise TrustError(f"{source}: holds no certificate, only "
                         f"{', '.join(content.other_blocks)} — a trust entry is a CA "
                         "certificate ('-----BEGIN CERTIFICATE-----')")
    result: list[tuple[bytes, CertInfo]] = []
    notes: list[str] = []
    seen: set[str] = set()
    for cert in content.certificates:
        info = describe_certificate(cert)
        label = f"{source}: {info.subject}"
        if info.sha256 in seen:
            notes.append(f"note: {label}: the same certificate appears twice in the file; "
                         "kept once")
            continue
        seen.add(info.sha256)
        if now >= info.not_after:
            raise TrustError(f"{label}: expired on {_when(info.not_after)}; nodes would refuse "
                             "it — get the registry's current CA")
        if now < info.not_before:
            raise TrustError(f"{label}: not valid until {_when(info.not_before)}; nodes would "
                             "refuse it until then (check the issuing machine's clock)")
        if info.not_after <= now + warn_within:
            notes.append(f"warning: {label}: expires on {_when(info.not_after)} — plan the "
                         "renewed CA's entry now")
        if not info.ca:
            if info.self_signed:
                notes.append(f"note: {label}: a self-signed leaf certificate (not a CA); "
                             "trusting it is fine — it is its own issuer — but renewing it "
                             "means replacing this entry")
            elif allow_leaf:
                notes.append(f"warning: {label}: a leaf certificate issued by {info.issuer}, "
                             "trusted as asked (--allow-leaf); it stops working when the "
                             "registry renews it — trusting that CA is more durable")
            else:
                raise TrustError(
                    f"{label}: is a leaf (server) certificate issued by {info.issuer}, not a "
                    "CA; trust the CA that issued it instead (openssl s_client -showcerts "
                    "-connect REGISTRY:443 shows the chain), or pass --allow-leaf to trust "
                    "this certificate itself")
        result.append((cert.public_bytes(serialization.Encoding.PEM), info))
    return result, notes


def build_entries(sources: Sequence[tuple[str, bytes]], names: Sequence[str] | None = None,
                  *, allow_leaf: bool = False, now: datetime | None = None,
                  warn_within: timedelta = timedelta(days=DEFAULT_WARN_DAYS)
                  ) -> tuple[list[Entry], list[str]]:
    """One entry per certificate of each (source, PEM bytes), named from `names` (one per
    source) or the source's file stem; a file with several certificates gives name-1,
    name-2, ... TrustError on any refusal."""
    if names and len(names) != len(sources):
        raise TrustError(f"--name given {len(names)} time(s) for {len(sources)} PEM file(s): "
                         "give one --name per file, in the same order, or none")
    for name in names or ():
        if not _KEY_NAME.fullmatch(name) or len(name) > 240:
            raise TrustError(f"--name {name!r}: use letters, digits, '-', '_' and '.' only "
                             "(it becomes a Secret key and the node file tkg-<name>.pem)")
    entries: list[Entry] = []
    notes: list[str] = []
    by_digest: dict[str, Entry] = {}
    by_name: dict[str, Entry] = {}
    for index, (source, data) in enumerate(sources):
        certs, file_notes = certificates_from_pem(data, source, allow_leaf=allow_leaf,
                                                  now=now, warn_within=warn_within)
        notes += file_notes
        explicit = bool(names)
        base = names[index] if names else sanitize_name(Path(source).stem)
        for position, (pem, info) in enumerate(certs):
            name = _suffixed(base, position, len(certs), explicit=explicit)
            if info.sha256 in by_digest:
                other = by_digest[info.sha256]
                notes.append(f"note: {source}: {info.subject} is the same certificate as entry "
                             f"{other.name} (from {other.source}); kept once")
                continue
            if name in by_name:
                raise TrustError(f"{source}: entry name {name!r} is already taken by "
                                 f"{by_name[name].source}; give distinct names with --name")
            entry = Entry(name=name, pem=pem, info=info, source=source)
            entries.append(entry)
            by_digest[info.sha256] = by_name[name] = entry
    return entries, notes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def tkg_service_configuration(entries: Sequence[Entry], *,
                              default_cni: str | None = None) -> dict[str, Any]:
    """The TkgServiceConfiguration with `spec.trust.additionalTrustedCAs`: data = base64(PEM).

    `spec.defaultCNI` only when asked: `kubectl apply` leaves a field the manifest does not
    name as the cluster has it, so omitting it never changes the CNI of new clusters."""
    spec: dict[str, Any] = {"defaultCNI": default_cni} if default_cni else {}
    spec["trust"] = {"additionalTrustedCAs": [{"name": e.name, "data": _b64(e.pem)}
                                              for e in entries]}
    return {"apiVersion": TKG_API_VERSION, "kind": TKG_KIND, "metadata": {"name": TKG_NAME},
            "spec": spec}


def trust_secret(entries: Sequence[Entry], *, cluster: str,
                 namespace: str | None = None) -> dict[str, Any]:
    """The `<cluster>-user-trusted-ca-secret` Secret: data = base64(base64(PEM)), because
    Secret data is itself base64 and Tanzu wants the base64 PEM after that is removed."""
    metadata: dict[str, Any] = {"name": secret_name(cluster)}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque",
            "data": {e.name: _b64(_b64(e.pem).encode("ascii")) for e in entries}}


def render(document: dict[str, Any], entries: Sequence[Entry]) -> str:
    """YAML with a comment per entry saying which certificate it is."""
    lines = ["# built by kci-webhook trust"]
    for e in entries:
        kind = "CA" if e.info.ca else ("self-signed leaf" if e.info.self_signed else "leaf")
        lines.append(f"# {e.name}: {e.info.subject} ({kind}), expires "
                     f"{_when(e.info.not_after)}, from {_printable(e.source)}")
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=2**31)
    return "\n".join(lines) + "\n" + body
