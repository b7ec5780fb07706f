"""`kci-webhook config check FILE`: the config validator of `serve`, without serving.

For CI, for a laptop before a rollout, and for the chart's pre-install / pre-upgrade hook:
a config this accepts is one `serve` starts with, and one it refuses is refused with the
words `serve` would print. Exit codes: 0 valid, 1 invalid, 2 unreadable or bad arguments.
"""

from __future__ import annotations

from webhook.tools.configcheck.command import EXIT_INVALID, EXIT_USAGE, EXIT_VALID, add_parser, run

__all__ = ["EXIT_INVALID", "EXIT_USAGE", "EXIT_VALID", "add_parser", "run"]
