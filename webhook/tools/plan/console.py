"""What `plan` shows on stderr besides errors: the adapters' warnings in its voice, once
each, and a status line while a step runs, only on a terminal (never in a pipe or a log,
never on stdout: with `-o json` stdout is the data alone)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def log_to_stderr() -> Iterator[None]:
    """While a plan runs, what the adapters log at WARNING or above (a Namespace annotation
    the server would ignore) goes to stderr in the command's voice, once each; the handler
    goes when the plan ends (the logger's own level is never changed)."""
    log = logging.getLogger("kci-webhook")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("kci-webhook plan: warning: %(message)s"))
    handler.addFilter(_Once())
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


class _Once(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


class Progress:
    """A status line on stderr while a step runs, only when stderr is a terminal (never in
    a pipe or a log, and never on stdout)."""

    def __init__(self) -> None:
        self.console: Any = None
        if sys.stderr.isatty():
            from rich.console import Console
            self.console = Console(stderr=True)

    @contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        if self.console is None:
            yield lambda _text: None
            return
        with self.console.status(text) as shown:
            yield lambda update: shown.update(update)
