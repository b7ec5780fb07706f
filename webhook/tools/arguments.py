"""argparse types the commands share, so a value is refused in the same words whichever
command reads it (argparse puts the option's name in front of each message)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from webhook.core.config import parse_webhook_timeout
from webhook.core.errors import ConfigError


def seconds(*, low: float, high: float) -> Callable[[str], float]:
    """A number of seconds from `low` to `high`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be between {low:g} and {high:g} seconds, got {text}")
        return value
    return parse


def positive_int(text: str) -> int:
    """A whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def fraction(text: str) -> float:
    """A number from 0 to 1 (a sampling rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def webhook_timeout(text: str) -> int:
    """The webhook configurations' timeoutSeconds, as `serve` and `config check` take it."""
    try:
        return parse_webhook_timeout(text, where="--webhook-timeout")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


__all__ = ["fraction", "positive_int", "seconds", "webhook_timeout"]
