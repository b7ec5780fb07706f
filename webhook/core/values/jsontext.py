"""JSON text as an annotation carries it: decoded with every way it can be broken
(size, encoding, a key written twice) reported as a problem, and the shapes inside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import orjson

from webhook.core.values.problems import Problems, expected_string, key_text, kind_of
from webhook.core.values.size import check_size


def load_json(raw: str, problems: Problems) -> object:
    """Decode JSON text; every way it can be broken becomes one problem, never a crash."""
    check_size(raw, problems)
    try:
        data = raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        problems.fail(f"invalid JSON: not valid UTF-8 (lone surrogate at char {exc.start + 1})")
    nul = data.find(b"\x00")
    if nul >= 0:
        problems.fail(f"invalid JSON: contains a NUL byte at byte {nul + 1}")
    if not data.strip():
        problems.fail("invalid JSON: the value is empty")
    try:
        value = orjson.loads(data)  # also bounds nesting depth (1024)
    except orjson.JSONDecodeError as exc:
        problems.fail(f"invalid JSON: {str(exc)[:120]}")
    if _may_repeat_a_key(raw, value):
        repeated = _repeated_key(raw)
        if repeated is not None:
            problems.fail(f"invalid JSON: key {key_text(repeated)} appears twice in one "
                          "object (a reader would silently keep one of them; write it once)")
    return value


def _may_repeat_a_key(raw: str, value: object) -> bool:
    """Whether `raw` may hold an object with a key twice, which orjson folds silently.

    Exact, and cheap in the common case: with no escape in the text, every ':' of `raw` is
    either the one after a key or one inside a string, and the decoded value keeps each
    string as written. orjson writes `value` back with one ':' per key, the strings' own
    and no other (it never escapes ':'): the same count means no key was dropped. Otherwise
    (an escape, or a dropped key) the value is decoded again, slowly, keeping every key."""
    if "\\" in raw:
        return True
    try:
        return raw.count(":") != orjson.dumps(value).count(b":")
    except orjson.JSONEncodeError:   # nested deeper than orjson writes (254)
        return True


def _repeated_key(raw: str) -> str | None:
    """The first key that some object of `raw` (already known to be valid JSON) repeats."""
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _item in items:
            if key in seen:
                repeated.append(key)
                break
            seen.add(key)
        return {}   # nothing reads the result

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except RecursionError:   # nesting orjson accepts but the stdlib cannot read again;
        return None          # no value of ours nests so deep, so its shape is refused

    return repeated[0] if repeated else None


def json_object(value: object, keys: tuple[str, ...], position: str,
            problems: Problems) -> dict[Any, Any] | None:
    """`value` as an object with only `keys`: a misspelt key must not pass silently."""
    if not isinstance(value, dict):
        problems.add(position, lambda: f"expected a JSON object, got {kind_of(value)}")
        return None
    expected = ", ".join(json.dumps(k) for k in keys)
    for key in value:
        if key not in keys:
            problems.add(position, f"unknown key {key_text(key)} (expected {expected})")
    return value


def json_strings(value: object, position: str, problems: Problems,
             *, required: bool) -> Iterator[tuple[str, str]]:
    """(position, string) for each item of an array of strings; null means absent."""
    if value is None and not required:
        return
    if not isinstance(value, list | tuple) or (required and not value):
        need = "a non-empty array of strings" if required else "an array of strings"
        problems.add(position, f"expected {need}, got {kind_of(value)}")
        return
    for i, item in enumerate(value, 1):
        if isinstance(item, str):
            yield f"{position} item {i}", item
        else:
            problems.add(f"{position} item {i}", partial(expected_string, item))
