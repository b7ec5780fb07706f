"""The config file's fields checked one by one, each problem phrased with the key's path
and the value as its YAML author wrote it."""

from __future__ import annotations

import json
from typing import Any


def mapping(value: object, where: str, problems: list[str], keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping, got {kind(value)}")
        return {}
    for key in value:
        if key not in keys:
            expected = ", ".join(sorted(keys))
            problems.append(f"{where}: unknown key {key!r} (expected one of: {expected})")
    return {k: v for k, v in value.items() if k in keys}


def shown(value: object) -> str:
    """A value as a YAML author wrote it: true, null, 3, [1, 2] (not Python's True, None);
    a string quoted, so an empty one or one with spaces is visible."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
    except (TypeError, ValueError):            # a YAML date, a set: its own text
        return str(value)


def choice(value: object, where: str, choices: tuple[str, ...], problems: list[str]) -> str:
    if value not in choices:
        problems.append(f"{where}: {shown(value)} is not one of {', '.join(choices)}")
        return choices[0]
    return str(value)


def boolean(value: object, where: str, problems: list[str]) -> bool:
    if not isinstance(value, bool):
        problems.append(f"{where}: expected true or false, got {shown(value)}")
        return False
    return value


def optional_str(value: object, where: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.append(f"{where}: expected a non-empty string, got {kind(value)}")
        return None
    return value


def kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__)
