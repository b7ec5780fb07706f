"""How every `kci-webhook` command's `--help` reads: paragraphs, defaults, exit codes.

argparse's own formatters either re-wrap everything (an epilog's table of exit codes runs
into one line) or nothing (a description written as one long string stays one long
line), and show an option's default only when asked in each help string. `HelpFormatter`
re-wraps each paragraph of a description or epilog to the terminal, keeps indented lines
exactly as written (tables, examples), and ends the help of every option that has a
default with `(default: VALUE)` — options without a help text too, so a default is never
hidden — after `(env: $VARIABLE)` when an environment variable sets that default
(`from_environment`). `epilog` builds the common "exit codes" (and "examples") block.
"""

from __future__ import annotations

import argparse
import copy
import re
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

_TABLE_ROW = re.compile(r"(\s+\S+  )\S")  # "  2  bad arguments": wrapped under its text


ENV_ATTRIBUTE = "environment_variable"
_NO_TEXT = "\x00"


def from_environment(action: argparse.Action, variable: str) -> argparse.Action:
    """Mark an option whose default an environment variable sets (the caller reads it):
    its help then names the variable, so `--help` and the docs' table of variables agree."""
    setattr(action, ENV_ATTRIBUTE, variable)
    return action


def environment_variable(action: argparse.Action) -> str | None:
    variable = getattr(action, ENV_ATTRIBUTE, None)
    return variable if isinstance(variable, str) else None


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
                                         subsequent_indent=indent, break_on_hyphens=False))
                paragraph.clear()

        for line in text.splitlines():
            row = _TABLE_ROW.match(line)
            if not line.strip():
                flush()
                out.append("")
            elif row:
                flush()
                out.append(textwrap.fill(line, width, initial_indent=indent,
                                         subsequent_indent=indent + " " * len(row.group(1)),
                                         break_on_hyphens=False))
            elif line[:1].isspace():        # examples: commands stay whole, to copy
                flush()
                out.append(indent + line)
            else:
                paragraph.append(line.strip())
        flush()
        return "\n".join(out)

    def _split_lines(self, text: str, width: int) -> list[str]:
        # option names and values ("--ca-bundle-out", "kci-webhook") are never split
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = "" if action.help == _NO_TEXT else action.help or ""
        variable = environment_variable(action)
        if variable and f"${variable}" not in text:
            text = f"{text} (env: ${variable})".strip()
        if shows_default(action) and "%(default)" not in text and "(default:" not in text:
            text = f"{text} (default: %(default)s)".strip()
        return text

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and (shows_default(action) or environment_variable(action)):
            action = copy.copy(action)
            action.help = _NO_TEXT      # argparse prints no help for an empty or blank one
        return super()._format_action(action)


def epilog(exit_codes: Mapping[int, str], examples: Iterable[str] = ()) -> str:
    """The text after the options: the exit codes, then examples (a command each; a
    command's further lines, after a backslash, indented below it)."""
    lines = ["exit codes:", *(f"  {code}  {meaning}" for code, meaning in exit_codes.items())]
    shown = list(examples)
    if shown:
        lines += ["", "examples:"]
        for example in shown:
            first, *rest = example.splitlines()
            lines += [f"  {first}", *(f"      {line}" for line in rest)]
    return "\n".join(lines)
