"""Comma lists (registries as `host[:port]`, object names) and the on/off switch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial

from webhook.core.errors import ReferenceError_
from webhook.core.reference import parse_registry_host
from webhook.core.values.checks import is_dns1123_subdomain, is_ip, not_dns1123
from webhook.core.values.keys import MIRRORS_SWITCH
from webhook.core.values.problems import Problems, quoted
from webhook.core.values.size import check_size

_PORT = re.compile(r"[0-9]{1,5}")


def list_entries(raw: str, problems: Problems) -> Iterator[tuple[str, str]]:
    """(position, trimmed entry) of a comma list; an empty value is an empty list."""
    check_size(raw, problems)
    if not raw.strip():
        return
    for i, part in enumerate(raw.split(","), 1):
        entry = part.strip()
        if entry:
            yield f"entry {i}", entry
        else:
            problems.add(f"entry {i}", "is empty (remove the extra comma)")


def parse_registry_list(raw: str, *, key: str, level: str) -> tuple[str, ...]:
    """Parse a `kci-http-registry` / `kci-insecure-registry` value: `host[:port]`, ..."""
    problems = Problems(key, level)
    registries: dict[str, None] = {}
    for position, entry in list_entries(raw, problems):
        # Hostnames are case-insensitive: fold to lowercase, the canonical form, so
        # `Harbor.example.com` and `harbor.example.com` are one entry.
        host = entry.lower()
        if host in registries:
            continue
        problem = registry_problem(host)
        if problem:
            problems.add(position, f"{quoted(entry)}: {problem}")
        else:
            registries.setdefault(host)
    problems.check()
    return tuple(registries)


def registry_problem(entry: str) -> str | None:
    """Why `entry` is not `host[:port]`, phrased as what to write instead."""
    if "://" in entry:
        rest = entry.split("://", 1)[1]
        host = rest.split("/", 1)[0]
        if not host:
            return "no scheme: expected host[:port]"
        return f"no scheme: write {host}" if rest in (host, host + "/") else \
            f"no scheme, no path: write {host}"
    if "/" in entry:
        host = entry.split("/", 1)[0]
        return f"no path: write {host}" if host else "expected host[:port], not a path"
    port: str | None = None
    if entry.startswith("["):
        after = entry.partition("]")[2]
        if after and not after.startswith(":"):
            return "expected [ipv6] or [ipv6]:port"
        port = after[1:] if after else None
    elif entry.count(":") > 1:
        return f"an IPv6 address must be in brackets: write [{entry}]" if is_ip(entry) else \
            "expected host[:port]"
    elif ":" in entry:
        port = entry.partition(":")[2]
    # At most 5 digits before int(): a 5,000-digit port must not reach int()'s digit limit.
    if port is not None and (not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535):
        return f"port must be a number 1-65535, got {quoted(port)}"
    try:
        parse_registry_host(entry)
    except ReferenceError_:
        return "expected host[:port]: a DNS name, an IPv4 address or a bracketed IPv6 address"
    return None


def registry_list_text(entries: tuple[str, ...]) -> str:
    return ",".join(entries)


def parse_name_list(raw: str, *, key: str, level: str) -> tuple[str, ...]:
    """Parse a comma list of object names (pull secrets); duplicates fold, order kept."""
    problems = Problems(key, level)
    names: dict[str, None] = {}
    for position, entry in list_entries(raw, problems):
        if is_dns1123_subdomain(entry):
            names.setdefault(entry)
        else:
            problems.add(position, partial(not_dns1123, entry))
    problems.check()
    return tuple(names)


def parse_mirrors_switch(raw: str, *, level: str) -> bool:
    """`kci-webhook/mirrors`: "on" or "off", any case, surrounding spaces ignored."""
    value = raw.strip().lower()
    if value in ("on", "off"):
        return value == "on"
    Problems(MIRRORS_SWITCH, level).fail(f'expected "on" or "off", got {quoted(raw)}')
