"""How every `kci-webhook` command's `--help` reads: paragraphs, defaults, exit codes.

argparse's own formatters either re-wrap everything (an epilog's table of exit codes runs
into one line) or nothing (a description written as one long string stays one long
line), and show an option's default only when asked in each help string. `HelpFormatter`
re-wraps each paragraph of a description or epilog to the terminal, keeps indented lines
exactly as written (tables, examples), and ends the help of every option that has a
default with `(default: VALUE)` — options without a help text too, so a default is never
hidden. `epilog` builds the common "exit codes" (and "examples") block.
"""

from __future__ import annotations

import argparse
import copy
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any


def shows_default(action: argparse.Action) -> bool:
    """Whether `--help` states this option's default: a value someone could rely on
    (not None, not an off switch, not an empty list, not the help action's SUPPRESS)."""
    default: Any = action.default
    return (bool(action.option_strings) and default is not None and default is not False
            and default != [] and default is not argparse.SUPPRESS
            and action.nargs != 0)


class HelpFormatter(argparse.HelpFormatter):
    """Paragraph-aware text and stated defaults (see the module docstring)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        paragraph: list[str] = []

        def flush() -> None:
            if paragraph:
                out.append(textwrap.fill(" ".join(paragraph), width, initial_indent=indent,
                                         subsequent_indent=indent))
                paragraph.clear()

        for line in text.splitlines():
            if not line.strip():
                flush()
                out.append("")
            elif line[:1].isspace():
                flush()
                out.append(indent + line)
            else:
                paragraph.append(line.strip())
        flush()
        return "\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if shows_default(action) and "%(default)" not in text and "(default:" not in text:
            text = f"{text} (default: %(default)s)".strip()
        return text

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and shows_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)


def epilog(exit_codes: Mapping[int, str], examples: Iterable[str] = ()) -> str:
    """The text after the options: the exit codes, then examples (one command a line)."""
    lines = ["exit codes:", *(f"  {code}  {meaning}" for code, meaning in exit_codes.items())]
    shown = list(examples)
    if shown:
        lines += ["", "examples:", *(f"  {example}" for example in shown)]
    return "\n".join(lines)
