"""Problems of one value, collected and raised together, and the phrases their
messages are made of (a user's value quoted, a decoded value's JSON type)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NoReturn

from webhook.core.errors import AnnotationError

MAX_PROBLEMS = 20  # more than this is noise; the rest is counted, not listed
_QUOTE_CHARS = 64


class Problems:
    """Collects every problem of one value, so the author fixes them in one round trip."""

    __slots__ = ("_prefix", "_messages", "_count")

    def __init__(self, key: str, level: str) -> None:
        self._prefix = f"{key} ({level}): "
        self._messages: list[str] = []
        self._count = 0

    def add(self, position: str, what: str | Callable[[], str]) -> None:
        """Record a problem. Past the cap it is only counted: hot loops pass `what` as a
        function, so 100,000 bad items in a 256 KiB value cost no formatted messages."""
        self._count += 1
        if len(self._messages) < MAX_PROBLEMS:
            text = what if isinstance(what, str) else what()
            self._messages.append(self._prefix + (f"{position}: " if position else "") + text)

    def messages(self) -> list[str]:
        extra = self._count - len(self._messages)
        return self._messages + ([f"{self._prefix}... and {extra} more"] if extra else [])

    def check(self) -> None:
        if self._count:
            raise AnnotationError(self.messages())

    def fail(self, what: str) -> NoReturn:
        """The value as a whole is unusable: nothing inside it can be checked."""
        self.add("", what)
        raise AnnotationError(self.messages())


def quoted(text: str) -> str:
    """JSON-quote a user's value, shortened; a lone surrogate (an environment variable
    with invalid UTF-8) is escaped so the message itself can always be encoded."""
    short = text[:_QUOTE_CHARS]
    if short.isprintable() and '"' not in short and "\\" not in short:
        result = f'"{short}"'  # what json.dumps gives, without its cost in hot loops
    else:
        result = json.dumps(short, ensure_ascii=False)
        result = result.encode("utf-8", "backslashreplace").decode("utf-8")
    return result + "..." if len(text) > _QUOTE_CHARS else result


def _number_text(value: int | float) -> str:
    try:
        text = str(value)
    except ValueError:  # an int past Python's digit limit (possible from YAML)
        return "(a very long number)"
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "..."


def kind_of(value: object) -> str:
    """The JSON type name of a decoded value, with the value when it is a scalar."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array" if value else "an empty array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean true" if value else "boolean false"
    if isinstance(value, int | float):
        return f"number {_number_text(value)}"
    if value is None:
        return "null"
    return type(value).__name__


def expected_string(value: object) -> str:
    hint = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        hint = f" (write {quoted(_number_text(value))})"
    return f"expected a string, got {kind_of(value)}{hint}"


def key_text(key: object) -> str:
    return quoted(key) if isinstance(key, str) else str(key)[:_QUOTE_CHARS]
