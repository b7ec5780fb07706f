"""How `kci-webhook trust` fails: the error for refused input, and the exit codes."""

from __future__ import annotations

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class TrustError(Exception):
    """Input refused (a key, not a certificate, unreadable...): the message says why; exit 2."""
