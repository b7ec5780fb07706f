"""`kci-webhook trust`: build and check the CAs that VMware Tanzu clusters trust.

A Tanzu Kubernetes cluster pulls from a private registry with a self-signed or internal
CA only if that CA is in `trust.additionalTrustedCAs` (otherwise: `x509: certificate
signed by unknown authority`, `ErrImagePull`). It comes in two encodings, and mixing them
up is the classic mistake the seeds warn about:

- TkgServiceConfiguration `spec.trust.additionalTrustedCAs` (and a TanzuKubernetesCluster's
  `spec.settings.network.trust.additionalTrustedCAs` entries with `data`): `data` is the
  base64 of the PEM text — single base64.
- The Secret form (`<cluster>-user-trusted-ca-secret`, referenced by name from a Cluster's
  `trust` variable or a v1alpha3 TanzuKubernetesCluster): each `data` value is base64 of
  the base64 of the PEM — double, because Secret `data` is itself base64.
  (`stringData` gets no base64 layer from the API server, so there it is single.)

`kci-webhook trust PEM...` prints either form from certificate files; `trust --check
FILE` reads such YAML and names every problem with its fix. Private keys are refused on
input and flagged on check, and never printed.

This is a shell module: it reads files and prints; nothing in the core imports it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

TKG_API_VERSION = "run.tanzu.vmware.com/v1alpha1"
TKG_KIND = "TkgServiceConfiguration"
TKG_NAME = "tkg-service-configuration"
DEFAULT_CNI = "antrea"
SECRET_SUFFIX = "-user-trusted-ca-secret"
DEFAULT_WARN_DAYS = 30

# Tanzu: "a valid key name must consist only of alphanumeric characters, '-', '_' or '.'"
# (it is a Secret data key, and the node file /etc/ssl/certs/tkg-<name>.pem).
_KEY_NAME = re.compile(r"[-._a-zA-Z0-9]+")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_BEGIN = re.compile(rb"-----BEGIN ([^-\r\n]+)-----")
_BLOCK = re.compile(rb"-----BEGIN ([^-\r\n]+)-----.*?-----END \1-----", re.S)
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


class TrustError(Exception):
    """Input refused (a key, not a certificate, unreadable...): the message says why; exit 2."""


# --- certificates -----------------------------------------------------------------------


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


# --- building ---------------------------------------------------------------------------


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


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


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


def _key_refusal(source: str, blocks: Sequence[str]) -> TrustError:
    what = ", ".join(sorted(set(blocks))) or "PRIVATE KEY (DER)"
    return TrustError(
        f"{source}: holds a private key ({what}); refusing — a trust entry needs only the "
        "public CA certificate, and a key must never go into a TkgServiceConfiguration or "
        "Secret. Pass a file with the certificate alone "
        f"(openssl x509 -in {source} -out ca.crt extracts the first one).")


def certificates_from_pem(data: bytes, source: str, *, allow_leaf: bool = False,
                          now: datetime | None = None,
                          warn_within: timedelta = timedelta(days=DEFAULT_WARN_DAYS)
                          ) -> tuple[list[tuple[bytes, CertInfo]], list[str]]:
    """The certificates of one PEM file, each as (normalised PEM, info), and notes for the
    user; TrustError if the file must not or cannot be used."""
    now = now or datetime.now(UTC)
    content = inspect_pem(data)
    if content.key_blocks:
        raise _key_refusal(source, content.key_blocks)
    if not _BEGIN.search(data):
        hint = _decoded_hint(data, source)
        if hint == "private-key":
            raise _key_refusal(source, [])
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


def tkg_service_configuration(entries: Sequence[Entry]) -> dict[str, Any]:
    """The TkgServiceConfiguration with `spec.trust.additionalTrustedCAs`: data = base64(PEM)."""
    return {
        "apiVersion": TKG_API_VERSION,
        "kind": TKG_KIND,
        "metadata": {"name": TKG_NAME},
        "spec": {
            "defaultCNI": DEFAULT_CNI,
            "trust": {"additionalTrustedCAs": [{"name": e.name, "data": _b64(e.pem)}
                                               for e in entries]},
        },
    }


def secret_name(cluster: str) -> str:
    return f"{cluster}{SECRET_SUFFIX}"


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


# --- checking ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    severity: str            # error | warning | note
    code: str
    document: str            # e.g. "TkgServiceConfiguration/tkg-service-configuration"
    entry: str | None        # the entry's name, "#3" if it has none, None for the document
    problem: str
    fix: str
    path: str = ""

    @property
    def subject(self) -> str:
        return f"entry {self.entry}" if self.entry is not None else self.document

    def line(self) -> str:
        return f"{self.severity}: {self.subject}: {self.problem} — {self.fix}"

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "document": self.document,
                "entry": self.entry, "path": self.path, "problem": self.problem,
                "fix": self.fix}


@dataclass(frozen=True)
class Form:
    """Where entries live and how their data must be encoded."""

    layers: int | None       # base64 layers over the PEM; None: name-only references
    what: str                # "the TkgServiceConfiguration form", ...

    @property
    def expects(self) -> str:
        if self.layers is None:
            return "names only; the certificates are in a Secret"
        return "base64 of the PEM" if self.layers == 1 else \
            "double base64 (base64 of the base64 PEM)"

    @property
    def header(self) -> str:
        if self.layers is None:
            return "names only, the certificates are in the cluster's Secret"
        return f"data: {self.expects}"

    @property
    def encoding(self) -> str:
        return {None: "secret-reference", 1: "base64", 2: "double-base64"}[self.layers]


_TKG = Form(1, "the TkgServiceConfiguration form")
_TKC = Form(1, "the TanzuKubernetesCluster form")
_SECRET = Form(2, "the Secret form")
_STRING_DATA = Form(1, "a Secret's stringData (the API server adds the second base64 itself)")
_REFERENCE = Form(None, "a reference to the cluster's Secret")


@dataclass
class EntryReport:
    document: str
    path: str
    name: str | None
    expected: str
    encoding: str | None
    certificates: list[CertInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"document": self.document, "path": self.path, "name": self.name,
                "expected_encoding": self.expected, "encoding": self.encoding,
                "certificates": [c.to_json() for c in self.certificates]}


@dataclass
class DocumentReport:
    label: str
    kind: str
    form: Form
    entries: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"document": self.label, "kind": self.kind,
                "expected_encoding": self.form.encoding, "entries": self.entries}


@dataclass
class CheckReport:
    source: str
    documents: list[DocumentReport] = field(default_factory=list)
    entries: list[EntryReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "ok": self.ok, "errors": self.errors,
                "warnings": self.warnings,
                "documents": [d.to_json() for d in self.documents],
                "entries": [e.to_json() for e in self.entries],
                "findings": [f.to_json() for f in self.findings]}


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers keys written twice (YAML keeps only the last)."""

    duplicates: list[tuple[Any, int]]


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Map]:
    data = _Map()
    data.duplicates = []
    yield data
    data.update(loader.construct_mapping(node))
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            if key_node.value in seen:
                data.duplicates.append((key_node.value, key_node.start_mark.line + 1))
            seen.add(key_node.value)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def load_documents(text: str) -> list[Any]:
    """Multi-document YAML or JSON; yaml.YAMLError if it does not parse."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


@dataclass
class _Raw:
    """An entry as found, before any checking."""

    document: DocumentReport
    path: str
    label: str               # entry name for messages ("#2" when it has none)
    name: Any
    value: Any
    form: Form


@dataclass
class _Checker:
    report: CheckReport
    now: datetime
    warn_within: timedelta
    raws: list[_Raw] = field(default_factory=list)
    secrets: list[tuple[DocumentReport, str, str | None, set[str]]] = field(default_factory=list)
    references: list[tuple[_Raw, str, str | None]] = field(default_factory=list)

    def add(self, severity: str, code: str, doc: DocumentReport, entry: str | None,
            problem: str, fix: str, path: str = "") -> None:
        self.report.findings.append(Finding(severity, code, doc.label, entry, problem, fix,
                                            path))

    # -- collecting --

    def document(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            return
        kind = doc.get("kind")
        if kind == "List" and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                self.document(item)
            return
        meta = doc.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        name: str = meta["name"] if isinstance(meta.get("name"), str) else "?"
        namespace: str | None = (meta["namespace"] if isinstance(meta.get("namespace"), str)
                                 else None)
        if kind == TKG_KIND:
            self._list(self._doc(f"{kind}/{name}", kind, _TKG), doc,
                       ("spec", "trust", "additionalTrustedCAs"), _TKG)
        elif kind == "TanzuKubernetesCluster":
            self._list(self._doc(f"{kind}/{name}", kind, _TKC), doc,
                       ("spec", "settings", "network", "trust", "additionalTrustedCAs"), _TKC,
                       secret=(secret_name(name), namespace))
        elif kind == "Cluster":
            self._cluster(doc, name, namespace)
        elif kind == "Secret":
            self._secret(doc, name, namespace)
        elif kind is None and ("additionalTrustedCAs" in doc or "trust" in doc
                               or "spec" in doc):
            path = next((p for p in (("additionalTrustedCAs",), ("trust", "additionalTrustedCAs"),
                                     ("spec", "trust", "additionalTrustedCAs"))
                         if _dig(doc, *p) is not None), None)
            if path is not None:
                self._list(self._doc("(fragment)", "fragment", _TKG), doc, path, _TKG)

    def _doc(self, label: str, kind: str, form: Form) -> DocumentReport:
        doc = DocumentReport(label, kind, form)
        self.report.documents.append(doc)
        return doc

    def _list(self, doc: DocumentReport, obj: Any, path: tuple[str, ...], form: Form,
              secret: tuple[str, str | None] | None = None) -> None:
        where = ".".join(path)
        items = _dig(obj, *path)
        if items is None:
            self.add("note", "no-entries", doc, None, f"no {where}",
                     "nothing to check here; add entries with kci-webhook trust CA.pem", where)
            return
        if not isinstance(items, list):
            self.add("error", "not-a-list", doc, None, f"{where} is not a list",
                     "make it a list of {name, data} entries", where)
            return
        for i, item in enumerate(items):
            item_path = f"{where}[{i}]"
            if not isinstance(item, dict):
                self.add("error", "not-a-mapping", doc, f"#{i + 1}", "is not a mapping",
                         "each entry is {name: NAME, data: BASE64}", item_path)
                continue
            name = item.get("name")
            label = name if isinstance(name, str) and name else f"#{i + 1}"
            entry_form = form
            if "data" not in item and secret is not None:
                entry_form = _REFERENCE
            raw = _Raw(doc, item_path, label, name, item.get("data"), entry_form)
            doc.entries += 1
            if entry_form is _REFERENCE and secret is not None:
                self.references.append((raw, secret[0], secret[1]))
            self.raws.append(raw)

    def _cluster(self, doc: dict[str, Any], name: str, namespace: str | None) -> None:
        variables = _dig(doc, "spec", "topology", "variables")
        if not isinstance(variables, list):
            return
        for i, var in enumerate(variables):
            if isinstance(var, dict) and var.get("name") == "trust":
                report = self._doc(f"Cluster/{name}", "Cluster", _REFERENCE)
                self._list(report, var, ("value", "additionalTrustedCAs"), _REFERENCE,
                           secret=(secret_name(name), namespace))
                for raw in self.raws:
                    if raw.document is report:
                        raw.path = f"spec.topology.variables[{i}].{raw.path}"

    def _secret(self, doc: dict[str, Any], name: str, namespace: str | None) -> None:
        report = self._doc(f"Secret/{name}", "Secret", _SECRET)
        if not name.endswith(SECRET_SUFFIX):
            self.add("warning", "secret-name", report, None,
                     f"Tanzu reads trusted CAs only from the Secret <cluster>{SECRET_SUFFIX}",
                     f"name it after the cluster, e.g. CLUSTER{SECRET_SUFFIX}, in the "
                     "cluster's vSphere namespace", "metadata.name")
        keys: set[str] = set()
        for field_name, form in (("data", _SECRET), ("stringData", _STRING_DATA)):
            mapping = doc.get(field_name)
            if mapping is None:
                continue
            if not isinstance(mapping, dict):
                self.add("error", "not-a-mapping", report, None, f"{field_name} is not a map",
                         "data maps each entry name to its certificate", field_name)
                continue
            for key, line in getattr(mapping, "duplicates", []):
                self.add("error", "duplicate-name", report, str(key),
                         f"key written twice in {field_name} (line {line}); YAML keeps only "
                         "the last one", "remove or rename one of them",
                         f"{field_name}.{key}")
            for key, value in mapping.items():
                label = str(key)
                keys.add(label)
                self.raws.append(_Raw(report, f"{field_name}.{label}", label, label, value,
                                      form))
                report.entries += 1
        if not keys:
            self.add("note", "no-entries", report, None, "no data", "nothing to check here")
        self.secrets.append((report, name, namespace, keys))

    # -- checking --

    def check(self) -> None:
        by_doc: dict[int, list[tuple[_Raw, list[CertInfo]]]] = {}
        for raw in self.raws:
            infos = self._entry(raw)
            by_doc.setdefault(id(raw.document), []).append((raw, infos))
        for entries in by_doc.values():
            self._duplicates(entries)
        self._references()

    def _entry(self, raw: _Raw) -> list[CertInfo]:
        doc, label, form = raw.document, raw.label, raw.form
        result = EntryReport(doc.label, raw.path, raw.name if isinstance(raw.name, str) else None,
                             form.encoding, None)
        self.report.entries.append(result)

        def add(severity: str, code: str, problem: str, fix: str) -> None:
            self.add(severity, code, doc, label, problem, fix, raw.path)

        if not isinstance(raw.name, str) or not raw.name:
            add("error", "missing-name", "has no name",
                "give it a name (letters, digits, '-', '_', '.'): the node file is "
                "/etc/ssl/certs/tkg-<name>.pem")
        elif not _KEY_NAME.fullmatch(raw.name):
            add("error", "invalid-name", f"name {raw.name!r} has characters Tanzu refuses",
                "use letters, digits, '-', '_' and '.' only (it is a Secret key and the node "
                "file tkg-<name>.pem)")
        if form.layers is None:
            if raw.value is not None:
                add("error", "unexpected-data", f"{form.what} takes names only; data here is "
                    "not used", "put the certificate, double base64, under this name in the "
                    "cluster's Secret (kci-webhook trust --secret --cluster CLUSTER CA.pem)")
            return []
        encode = "base64 -w0 ca.pem" + (" | base64 -w0" if form.layers == 2 else "")
        need = f"data must be {form.expects}: {encode}"
        rebuild = ("kci-webhook trust --secret --cluster CLUSTER ca.pem" if form is _SECRET
                   else "kci-webhook trust ca.pem")
        if raw.value is None or raw.value == "":
            add("error", "missing-data", "has no data", need)
            return []
        if not isinstance(raw.value, str):
            add("error", "invalid-base64", f"data is a {type(raw.value).__name__}, not text",
                need)
            return []
        peeled = peel(raw.value)
        if peeled.layers is None or peeled.pem is None:
            if peeled.code == "private-key":
                add("error", "private-key", f"{peeled.problem}: a private key is inside",
                    "remove it now and treat that key as exposed (anyone who can read this "
                    "object has it); trust needs only the public CA certificate")
            elif peeled.code == "der-certificate":
                add("error", "not-a-certificate", peeled.problem,
                    "convert to PEM first (openssl x509 -inform der -in ca.der -out ca.pem), "
                    f"then {encode}")
            else:
                add("error", peeled.code, peeled.problem, f"{need} (or {rebuild})")
            return []
        result.encoding = {0: "raw-pem", 1: "base64", 2: "double-base64"}.get(
            peeled.layers, f"base64 x{peeled.layers}")
        expected = form.layers
        if peeled.layers == 0:
            add("error", "raw-pem", "raw PEM pasted where base64 is expected", need)
        elif peeled.layers != expected:
            if form is _SECRET and peeled.layers == 1:
                add("error", "single-base64", "single-base64: the Secret form needs double "
                    "base64 (base64 of the base64 PEM)",
                    f"encode the value once more (echo -n VALUE | base64 -w0), or {rebuild}")
            elif expected == 1 and peeled.layers == 2:
                add("error", "double-base64", f"double-base64: {form.what} needs single base64 "
                    "(base64 of the PEM); only the Secret data form is double",
                    f"decode it once (echo VALUE | base64 -d), or {rebuild}")
            else:
                add("error", "wrong-encoding", f"base64-encoded {peeled.layers} times; "
                    f"{form.what} needs {form.expects}", f"{need} (or {rebuild})")
        return self._pem(peeled.pem, result, add)

    def _pem(self, pem: bytes, result: EntryReport,
             add: Callable[[str, str, str, str], None]) -> list[CertInfo]:
        content = inspect_pem(pem)
        if content.key_blocks:
            blocks = ", ".join(sorted(set(content.key_blocks)))
            add("error", "private-key", f"a private key is inside ({blocks})"
                + ("" if content.certificates else ", and no certificate"),
                "remove it now and treat that key as exposed (anyone who can read this object "
                "has it); trust needs only the public CA certificate")
        for problem in content.broken:
            add("error", "not-a-certificate", problem,
                "re-export the CA certificate and rebuild the entry (kci-webhook trust ca.pem)")
        if not content.certificates:
            if not content.broken and not content.key_blocks:
                held = ", ".join(content.other_blocks) or "no complete block"
                add("error", "not-a-certificate", f"PEM, but it holds {held}, no certificate",
                    "use the CA certificate ('-----BEGIN CERTIFICATE-----')")
            return []
        if len(content.certificates) > 1:
            add("warning", "bundle", f"holds {len(content.certificates)} certificates in one "
                "entry", "some nodes' trust-store tools (openssl rehash) take one certificate "
                "per file: give each its own entry (kci-webhook trust names them -1, -2, ...)")
        infos = [describe_certificate(c) for c in content.certificates]
        result.certificates = infos
        for info in infos:
            who = f"certificate {info.subject}"
            if self.now >= info.not_after:
                add("error", "expired", f"{who} expired on {_when(info.not_after)}",
                    "nodes refuse it: get the registry's current CA and replace this entry "
                    "(kci-webhook trust NEW-CA.pem)")
            elif self.now < info.not_before:
                add("error", "not-yet-valid", f"{who} is not valid until "
                    f"{_when(info.not_before)}", "nodes refuse it until then: check the clock "
                    "of the machine that issued it, or re-issue it")
            elif info.not_after <= self.now + self.warn_within:
                days = (info.not_after - self.now).days
                add("warning", "expires-soon", f"{who} expires on {_when(info.not_after)} "
                    f"(in {days} day{'s' if days != 1 else ''})",
                    "add the renewed CA as a new entry now; remove this one once the registry "
                    "uses the new one")
            if not info.ca:
                if info.self_signed:
                    add("note", "self-signed-leaf", f"{who} is a self-signed leaf, not a CA",
                        "fine to trust (it is its own issuer); renewing it means replacing "
                        "this entry")
                else:
                    add("warning", "not-a-ca", f"{who} is a leaf certificate issued by "
                        f"{info.issuer}", "trust the issuing CA instead: a leaf stops working "
                        "when the registry renews its certificate")
        return infos

    def _duplicates(self, entries: list[tuple[_Raw, list[CertInfo]]]) -> None:
        names: dict[str, _Raw] = {}
        digests: dict[str, _Raw] = {}
        for raw, infos in entries:
            if isinstance(raw.name, str) and raw.name and raw.path.endswith("]"):
                if raw.name in names:
                    self.add("error", "duplicate-name", raw.document, raw.label,
                             f"name used twice ({names[raw.name].path} and {raw.path})",
                             "each name is one node file tkg-<name>.pem, so one of them is "
                             "lost: rename or remove one", raw.path)
                else:
                    names[raw.name] = raw
            for info in infos:
                first = digests.setdefault(info.sha256, raw)
                if first is not raw:
                    self.add("warning", "duplicate-certificate", raw.document, raw.label,
                             f"same certificate ({info.subject}, sha256 {info.sha256[:16]}…) "
                             f"as entry {first.label}",
                             "keep one of them: a copy is easy to forget when the CA rotates",
                             raw.path)

    def _references(self) -> None:
        referenced: dict[int, set[str]] = {}
        for raw, wanted, namespace in self.references:
            match = next((s for s in self.secrets if s[1] == wanted
                          and (namespace is None or s[2] in (None, namespace))), None)
            if match is None:
                self.add("note", "secret-not-in-file", raw.document, raw.label,
                         f"its certificate is in Secret {wanted}, not in this file",
                         f"check that too: kubectl get secret {wanted}"
                         f"{' -n ' + namespace if namespace else ''} -o yaml | "
                         "kci-webhook trust --check -", raw.path)
                continue
            referenced.setdefault(id(match[0]), set()).add(str(raw.name))
            if isinstance(raw.name, str) and raw.name not in match[3]:
                self.add("error", "missing-secret-key", raw.document, raw.label,
                         f"Secret {wanted} has no key {raw.name!r}",
                         f"add it (kci-webhook trust --secret --cluster "
                         f"{wanted.removesuffix(SECRET_SUFFIX)} --name {raw.name} CA.pem)",
                         raw.path)
        for report, _name, _, keys in self.secrets:
            if id(report) in referenced:
                for key in sorted(keys - referenced[id(report)]):
                    self.add("warning", "unreferenced", report, key,
                             "no additionalTrustedCAs entry of the cluster names it, so nodes "
                             "never get it", "add {name: " + key + "} to the cluster's trust "
                             "entries, or remove the key", f"data.{key}")


def check_documents(documents: Sequence[Any], *, source: str = "-",
                    now: datetime | None = None,
                    warn_within: timedelta = timedelta(days=DEFAULT_WARN_DAYS)) -> CheckReport:
    """Every problem with the trusted CAs in `documents` (parsed YAML). TrustError when
    none of them holds any (not a TkgServiceConfiguration, cluster or Secret)."""
    checker = _Checker(CheckReport(source), now or datetime.now(UTC), warn_within)
    for doc in documents:
        checker.document(doc)
    if not checker.report.documents:
        kinds = sorted({str(d.get("kind")) for d in documents if isinstance(d, dict)})
        seen = f" (found: {', '.join(kinds)})" if kinds else ""
        raise TrustError(f"{source}: no TkgServiceConfiguration, TanzuKubernetesCluster, "
                         f"Cluster with a trust variable, or Secret{seen}")
    checker.check()
    return checker.report


def check_text(text: str, *, source: str = "-", now: datetime | None = None,
               warn_within: timedelta = timedelta(days=DEFAULT_WARN_DAYS)) -> CheckReport:
    if text.lstrip().startswith("-----BEGIN"):
        raise TrustError(f"{source}: is a PEM file, not YAML; to build the YAML run "
                         f"kci-webhook trust {source}")
    try:
        documents = load_documents(text)
    except yaml.YAMLError as e:
        raise TrustError(f"{source}: not valid YAML: {e}") from None
    return check_documents(documents, source=source, now=now, warn_within=warn_within)


# --- output -----------------------------------------------------------------------------

_STYLES = {"error": "bold red", "warning": "yellow", "note": "cyan", "ok": "green"}


class _Printer:
    """Lines to a stream; coloured with rich when the stream is a terminal (and rich is
    installed), plain text otherwise (pipes, files, CI logs)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._console: Any = None
        if _isatty(stream):
            try:
                from rich.console import Console
            except ImportError:  # pragma: no cover - rich is optional
                return
            self._console = Console(file=stream, highlight=False, soft_wrap=True)

    def line(self, text: str, style: str | None = None) -> None:
        if self._console is not None:
            self._console.print(text, style=_STYLES.get(style or "", style), markup=False)
        else:
            print(text, file=self._stream)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def print_report(report: CheckReport, out: _Printer) -> None:
    shown: set[str] = set()
    for doc in report.documents:
        count = f"{doc.entries} entr{'y' if doc.entries == 1 else 'ies'}"
        out.line(f"{doc.label}: {count}, {doc.form.header}")
        if doc.label in shown:  # a second object of the same kind and name
            continue
        shown.add(doc.label)
        for finding in report.findings:
            if finding.document == doc.label:
                out.line(f"  {finding.line()}", finding.severity)
    notes = sum(f.severity == "note" for f in report.findings)
    summary = (f"{len(report.entries)} entr{'y' if len(report.entries) == 1 else 'ies'} "
               f"checked: {report.errors} error{'s' if report.errors != 1 else ''}, "
               f"{report.warnings} warning{'s' if report.warnings != 1 else ''}"
               + (f", {notes} note{'s' if notes != 1 else ''}" if notes else ""))
    out.line(summary, "error" if report.errors else ("warning" if report.warnings else "ok"))


# --- command line -----------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "trust", help="build or check Tanzu trust.additionalTrustedCAs for a private registry",
        description="Print the TkgServiceConfiguration spec.trust.additionalTrustedCAs (data: "
                    "base64 of the PEM) that makes Tanzu clusters trust the CA certificates "
                    "in PEM..., or with --secret the <cluster>-user-trusted-ca-secret Secret "
                    "(data: double base64). With --check FILE, report every problem in an "
                    "existing TkgServiceConfiguration, TanzuKubernetesCluster, Cluster or "
                    "Secret: bad base64, single vs double base64, raw PEM, not a certificate, "
                    "expired, private keys, duplicates. Exit codes: 0 fine (warnings "
                    "allowed), 1 errors found (--check), 2 unusable input.",
        epilog="examples:\n"
               "  kci-webhook trust harbor-ca.crt > tkg-service-configuration.yaml\n"
               "  kci-webhook trust --secret --cluster cluster01 --namespace tkgs-ns ca.pem\n"
               "  kubectl get tkgserviceconfiguration tkg-service-configuration -o yaml \\\n"
               "    | kci-webhook trust --check -",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pems", nargs="*", metavar="PEM",
                        help="CA certificate files (PEM; several certificates per file are "
                             "fine; - for stdin)")
    parser.add_argument("--name", action="append", metavar="NAME",
                        help="entry name for the PEM file at the same position (repeat once "
                             "per file; default: the file's name, as a DNS label)")
    parser.add_argument("--secret", action="store_true",
                        help="print the v1 Secret <cluster>-user-trusted-ca-secret (double "
                             "base64) that a Cluster's trust variable refers to")
    parser.add_argument("--cluster", metavar="NAME",
                        help="the cluster the Secret is for (implies --secret)")
    parser.add_argument("--namespace", metavar="NS",
                        help="the Secret's namespace (the cluster's vSphere namespace)")
    parser.add_argument("--allow-leaf", action="store_true",
                        help="accept a leaf (non-CA) certificate that is not self-signed")
    parser.add_argument("--check", metavar="FILE",
                        help="check the trusted CAs in FILE (YAML or JSON, - for stdin)")
    parser.add_argument("--json", action="store_true", help="with --check: JSON output")
    parser.add_argument("--warn-days", type=int, default=DEFAULT_WARN_DAYS, metavar="N",
                        help=f"warn about certificates expiring within N days "
                             f"(default {DEFAULT_WARN_DAYS})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    err = _Printer(sys.stderr)
    warn_within = timedelta(days=max(0, args.warn_days))
    if args.check is not None:
        if args.pems or args.name or args.secret or args.cluster:
            err.line("kci-webhook trust: --check FILE reads an existing YAML; give PEM files, "
                     "--name, --secret or --cluster only to build one", "error")
            return EXIT_USAGE
        return _run_check(args.check, as_json=args.json, warn_within=warn_within, err=err)
    if args.json:
        err.line("kci-webhook trust: --json goes with --check", "error")
        return EXIT_USAGE
    if not args.pems:
        err.line("kci-webhook trust: give CA certificate files (PEM...) to build the YAML, or "
                 "--check FILE to check one", "error")
        return EXIT_USAGE
    return _run_build(args, warn_within=warn_within, err=err)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _run_build(args: argparse.Namespace, *, warn_within: timedelta, err: _Printer) -> int:
    secret = bool(args.secret or args.cluster)
    if secret and not args.cluster:
        err.line(f"kci-webhook trust: --secret needs --cluster NAME (the Secret is named "
                 f"NAME{SECRET_SUFFIX})", "error")
        return EXIT_USAGE
    if args.cluster and (not _DNS_SUBDOMAIN.fullmatch(args.cluster)
                         or len(secret_name(args.cluster)) > 253):
        err.line(f"kci-webhook trust: --cluster {args.cluster!r} is not a valid cluster name "
                 "(lower-case DNS name)", "error")
        return EXIT_USAGE
    if args.namespace and not (_DNS_LABEL.fullmatch(args.namespace)
                               and len(args.namespace) <= 63):
        err.line(f"kci-webhook trust: --namespace {args.namespace!r} is not a valid namespace",
                 "error")
        return EXIT_USAGE
    if args.pems.count("-") > 1:
        err.line("kci-webhook trust: stdin (-) can be read only once", "error")
        return EXIT_USAGE
    try:
        sources = [(path, _read(path)) for path in args.pems]
    except OSError as e:
        err.line(f"kci-webhook trust: cannot read {e.filename}: {e.strerror}", "error")
        return EXIT_USAGE
    try:
        entries, notes = build_entries(sources, args.name, allow_leaf=args.allow_leaf,
                                       warn_within=warn_within)
    except TrustError as e:
        err.line(f"kci-webhook trust: {e}", "error")
        return EXIT_USAGE
    for note in notes:
        err.line(note, note.split(":", 1)[0] if note.startswith(("warning:", "note:")) else None)
    if secret:
        document = trust_secret(entries, cluster=args.cluster, namespace=args.namespace)
        names = ", ".join(f"{{name: {e.name}}}" for e in entries)
        err.line(f"note: in the cluster {args.cluster}, list these names under trust."
                 f"additionalTrustedCAs: [{names}]", "note")
    else:
        document = tkg_service_configuration(entries)
        err.line("note: kubectl apply replaces spec.trust.additionalTrustedCAs as a whole — "
                 "pass every CA the clusters must trust, not only the new one; new clusters "
                 f"get it, existing ones at their next rolling update; spec.defaultCNI is "
                 f"{DEFAULT_CNI}, change it if yours differs", "note")
    sys.stdout.write(render(document, entries))
    return EXIT_OK


def _run_check(path: str, *, as_json: bool, warn_within: timedelta, err: _Printer) -> int:
    try:
        raw = _read(path)
        text = raw.decode("utf-8-sig")
        report = check_text(text, source=path, warn_within=warn_within)
    except (OSError, UnicodeDecodeError, TrustError) as e:
        if isinstance(e, OSError):
            message = f"{path}: cannot read: {e.strerror}"
        elif isinstance(e, UnicodeDecodeError):
            message = f"{path}: not UTF-8 text"
        else:
            message = str(e)
        if as_json:
            print(json.dumps({"source": path, "ok": False, "error": message}, indent=2))
        err.line(f"kci-webhook trust --check: {message}", "error")
        return EXIT_USAGE
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print_report(report, _Printer(sys.stdout))
    return EXIT_OK if report.ok else EXIT_PROBLEMS
