"""Registry hosts as one value however they are spelt: the key every comparison of a
registry with a mirror's host or the insecure-registry allow-list is made on."""

from __future__ import annotations

import functools
import ipaddress

from webhook.core.errors import ReferenceError_
from webhook.core.reference import parse_registry_host

# The port a registry host without one is reached on, by scheme (what containerd assumes).
DEFAULT_PORTS = {"https": 443, "http": 80}
RegistryKey = tuple[str, int | None]   # canonical (host, port): see registry_key


@functools.lru_cache(maxsize=4096)
def registry_key(registry: str) -> RegistryKey:
    """A registry `host[:port]` as one value however it is spelt, so that every comparison
    of a registry entry with a mirror's host or the allow-list is made on it (text would
    let `mirror:05000`, `[0:0::1]` or an upper-case name pass as another registry).

    The host in lower case, an IPv6 address compressed (an IPv4-mapped one as its IPv4
    address, which is where it connects), the port as a number, None when there is none.
    Text that is not `host[:port]` is its own key, in lower case: it matches no mirror.

    An entry with a repository path (`host[:port]/path`, which CCI 2.0's lists accept) is
    keyed by its host: the path narrows what the vendor weakens TLS for, but never takes
    the host out of the rules on it."""
    text = registry.lower().partition("/")[0]
    try:
        host, port = parse_registry_host(text)
    except ReferenceError_:
        return text, None
    if host.startswith("["):
        address = ipaddress.IPv6Address(host[1:-1])
        mapped = address.ipv4_mapped
        host = str(mapped) if mapped is not None else f"[{address.compressed}]"
    return host, port


def host_keys(host_text: str, scheme: str) -> frozenset[RegistryKey]:
    host, port = registry_key(host_text)
    default = DEFAULT_PORTS.get(scheme)
    keys = {(host, port)}
    if port is None or port == default:
        keys |= {(host, None), (host, default)}
    return frozenset(keys)


def registry_allowed(registry: str, patterns: tuple[str, ...]) -> bool:
    """Whether `host[:port]` may be declared HTTP/insecure. No patterns: no restriction.

    A pattern without a port allows any port of that host; `*.example.com` allows any
    host below example.com (not example.com itself). Both sides are compared as
    `registry_key`s: a pattern with a port allows that port however the entry spells it.
    """
    if not patterns:
        return True
    host, port = registry_key(registry)
    for pattern in patterns:
        wildcard = pattern.startswith("*.")
        p_host, p_port = registry_key(pattern[2:] if wildcard else pattern)
        if p_port is not None and p_port != port:
            continue
        if host.endswith("." + p_host) if wildcard else host == p_host:
            return True
    return False
