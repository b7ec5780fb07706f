"""The report for people: ✔/✘ and colour (rich) on a terminal, OK/FAIL in plain text."""

from __future__ import annotations

from typing import IO, Any

from webhook.tools.doctor.options import Options, _image_text
from webhook.tools.doctor.report import Step


class _Printer:
    """Lines for people: ✔/✘ and colour (rich) on a terminal, OK/FAIL in plain text
    otherwise (pipes, files, CI logs)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._console: Any = None
        tty = _isatty(stream)
        self.marks = ("✔", "✘") if tty and _can_encode(stream, "✔✘→") else ("OK", "FAIL")
        if tty:
            try:
                from rich.console import Console
            except ImportError:  # rich is optional: plain text on a terminal too
                return
            self._console = Console(file=stream, highlight=False, soft_wrap=True)

    def line(self, *parts: tuple[str, str]) -> None:
        """One line from (text, style) parts; styles apply only with rich."""
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text.assemble(*parts))
        else:
            print("".join(text for text, _ in parts), file=self._stream)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _can_encode(stream: IO[str], text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def print_report(steps: list[Step], options: Options, stream: IO[str]) -> None:
    out = _Printer(stream)
    target = options.target
    title = f"kci-webhook doctor {target.scheme}://{target.registry}"
    if options.repository is not None:
        title += f" (image {_image_text(options.repository, options.reference or '')})"
    out.line((title, "bold"))
    ok_mark, fail_mark = out.marks
    width = max(len(ok_mark), len(fail_mark))
    indent = " " * (width + 1 + 9)
    for step in steps:
        mark = ok_mark if step.ok else fail_mark
        out.line((f"{mark:<{width}} ", "bold green" if step.ok else "bold red"),
                 (f"{step.step:<9}", "bold"), (step.detail, "" if step.ok else "red"))
        for note in step.notes:
            out.line((indent + note, "dim"))
        for i, fix in enumerate(step.fix.splitlines()):
            label = "fix: " if i == 0 else "     "
            out.line((" " * (len(indent) - 5) + label, "bold yellow"), (fix, "yellow"))
    failed = next((s for s in steps if not s.ok), None)
    if failed is not None:
        out.line((f"a pull from {target.registry} would fail at step {failed.step}.",
                  "bold red"))
    elif options.repository is None:
        out.line((f"nodes can reach and log in to {target.registry}; add --image REF to "
                  "check an image too.", "bold green"))
    else:
        out.line((f"a pull from {target.registry} would work.", "bold green"))
