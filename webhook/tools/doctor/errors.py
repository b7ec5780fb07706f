"""The command line that cannot be run, and the exit codes."""

from __future__ import annotations

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot be run: exit 2, the message on stderr."""
