"""Printing a check report: one line per finding, coloured on a terminal."""

from __future__ import annotations

from typing import IO, Any

from webhook.tools.trust.report import CheckReport

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
