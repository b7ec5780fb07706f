"""Checking trust entries: encoding, content, validity, duplicates, Secret references.

`check_text` / `check_documents` collect the entries (`collect`) and then check each one
against its form: base64 layers (raw PEM, single vs double), what the PEM holds (keys,
bundles, no certificate), expiry and CA-ness; then duplicate names and certificates per
document, and name-only entries against the Secrets in the same input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from webhook.tools.trust.collect import _Collector, _Raw, load_documents
from webhook.tools.trust.errors import TrustError
from webhook.tools.trust.pem import (
    DEFAULT_WARN_DAYS,
    CertInfo,
    _when,
    describe_certificate,
    inspect_pem,
    peel,
)
from webhook.tools.trust.report import CheckReport, EntryReport
from webhook.tools.trust.tanzu import _KEY_NAME, _SECRET, SECRET_SUFFIX


@dataclass
class _Checker:
    """Checks the entries a `_Collector` found, adding findings to `report`."""

    report: CheckReport
    now: datetime
    warn_within: timedelta

    def check(self, found: _Collector) -> None:
        by_doc: dict[int, list[tuple[_Raw, list[CertInfo]]]] = {}
        for raw in found.raws:
            infos = self._entry(raw)
            by_doc.setdefault(id(raw.document), []).append((raw, infos))
        for entries in by_doc.values():
            self._duplicates(entries)
        self._references(found)

    def _entry(self, raw: _Raw) -> list[CertInfo]:
        doc, label, form = raw.document, raw.label, raw.form
        result = EntryReport(doc.label, raw.path, raw.name if isinstance(raw.name, str) else None,
                             form.encoding, None)
        self.report.entries.append(result)

        def add(severity: str, code: str, problem: str, fix: str) -> None:
            self.report.add(severity, code, doc, label, problem, fix, raw.path)

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
                    self.report.add(
                        "error", "duplicate-name", raw.document, raw.label,
                        f"name used twice ({names[raw.name].path} and {raw.path})",
                        "each name is one node file tkg-<name>.pem, so one of them is lost: "
                        "rename or remove one", raw.path)
                else:
                    names[raw.name] = raw
            for info in infos:
                first = digests.setdefault(info.sha256, raw)
                if first is not raw:
                    self.report.add(
                        "warning", "duplicate-certificate", raw.document, raw.label,
                        f"same certificate ({info.subject}, sha256 {info.sha256[:16]}…) "
                        f"as entry {first.label}",
                        "keep one of them: a copy is easy to forget when the CA rotates",
                        raw.path)

    def _references(self, found: _Collector) -> None:
        referenced: dict[int, set[str]] = {}
        for raw, wanted, namespace in found.references:
            match = next((s for s in found.secrets if s[1] == wanted
                          and (namespace is None or s[2] in (None, namespace))), None)
            if match is None:
                self.report.add(
                    "note", "secret-not-in-file", raw.document, raw.label,
                    f"its certificate is in Secret {wanted}, not in this file",
                    f"check that too: kubectl get secret {wanted}"
                    f"{' -n ' + namespace if namespace else ''} -o yaml | "
                    "kci-webhook trust --check -", raw.path)
                continue
            referenced.setdefault(id(match[0]), set()).add(str(raw.name))
            if isinstance(raw.name, str) and raw.name not in match[3]:
                self.report.add(
                    "error", "missing-secret-key", raw.document, raw.label,
                    f"Secret {wanted} has no key {raw.name!r}",
                    f"add it (kci-webhook trust --secret --cluster "
                    f"{wanted.removesuffix(SECRET_SUFFIX)} --name {raw.name} CA.pem)",
                    raw.path)
        for report, _name, _, keys in found.secrets:
            if id(report) in referenced:
                for key in sorted(keys - referenced[id(report)]):
                    self.report.add(
                        "warning", "unreferenced", report, key,
                        "no additionalTrustedCAs entry of the cluster names it, so nodes never "
                        "get it", "add {name: " + key + "} to the cluster's trust entries, or "
                        "remove the key", f"data.{key}")


def check_documents(documents: Sequence[Any], *, source: str = "-",
                    now: datetime | None = None,
                    warn_within: timedelta = timedelta(days=DEFAULT_WARN_DAYS)) -> CheckReport:
    """Every problem with the trusted CAs in `documents` (parsed YAML). TrustError when
    none of them holds any (not a TkgServiceConfiguration, cluster or Secret)."""
    checker = _Checker(CheckReport(source), now or datetime.now(UTC), warn_within)
    found = _Collector(checker.report)
    for doc in documents:
        found.document(doc)
    if not checker.report.documents:
        kinds = sorted({str(d.get("kind")) for d in documents if isinstance(d, dict)})
        seen = f" (found: {', '.join(kinds)})" if kinds else ""
        raise TrustError(f"{source}: no TkgServiceConfiguration, TanzuKubernetesCluster, "
                         f"Cluster with a trust variable, or Secret{seen}")
    checker.check(found)
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

