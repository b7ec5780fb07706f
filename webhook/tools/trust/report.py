"""What a check finds: findings with their fix, and the per-document and per-entry reports
(`CheckReport.to_json` is the `--check --json` output)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webhook.tools.trust.pem import CertInfo
from webhook.tools.trust.tanzu import Form


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

    def add(self, severity: str, code: str, doc: DocumentReport, entry: str | None,
            problem: str, fix: str, path: str = "") -> None:
        self.findings.append(Finding(severity, code, doc.label, entry, problem, fix, path))

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "ok": self.ok, "errors": self.errors,
                "warnings": self.warnings,
                "documents": [d.to_json() for d in self.documents],
                "entries": [e.to_json() for e in self.entries],
                "findings": [f.to_json() for f in self.findings]}

