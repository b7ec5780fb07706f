"""The checks every dialect applies as the Kubernetes API does: IP addresses, DNS-1123
names, search domains, the pod's DNS limits; and the messages for what fails them."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable

from webhook.core.model import DnsConfig
from webhook.core.values.keys import KCI_DNS_CONFIG
from webhook.core.values.problems import Problems, quoted

# The pod API's limits as the oldest supported API server (1.24) applies them in
# validatePodDNSConfig: ExpandedDNSConfig (32 domains, 2048 characters) is an alpha gate,
# off by default, until 1.26, so a 1.24 cluster refuses a 7th search domain.
MAX_NAMESERVERS = 3
MAX_SEARCHES = 6
MAX_SEARCH_CHARS = 256  # of the search list joined with single spaces
_OLDEST = " (the limit of Kubernetes 1.24, the oldest supported release)"

_DNS1123_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*")
_DNS1123_RULE = "(lowercase letters, digits, '-' and '.'; labels of at most 63, 253 in all)"
_LEADING_ZERO_IPV4 = re.compile(r"(?:[0-9]+\.){3}[0-9]+")


def is_ip(text: str) -> bool:
    """IPv4 or IPv6 as every supported API server accepts it: 1.24 parses "sloppily"
    (leading zeros pass), newer releases validate new pods strictly and refuse leading
    zeros in IPv4 (`010.1.1.1` is octal to some resolvers and decimal to others) and
    IPv4-mapped IPv6 (`::ffff:1.2.3.4`); none accepts a `%zone` suffix. What passes here
    passes them all."""
    if len(text) > 45 or "%" in text or not text.isascii():
        return False
    try:
        address = ipaddress.ip_address(text)  # rejects leading zeros since Python 3.9.5
    except ValueError:
        return False
    return not (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped)


def spec_ip(text: str) -> str | None:
    """A `spec.hostAliases[].ip` as Kubernetes reads it, written the way `is_ip` accepts;
    None when the API server would refuse it.

    1.24 checks it with validation.IsValidIP, that is k8s.io/utils/net.ParseIPSloppy: Go
    1.16's net.ParseIP, kept when Go 1.17 turned strict. So it accepts what `is_ip`
    refuses: IPv4 parts with leading zeros, read as decimal (`010.0.0.1` is 10.0.0.1),
    and IPv4-mapped IPv6 (`::ffff:10.0.0.1`), which Go reads, and prints, as the IPv4
    address; likewise hex groups with leading zeros past four digits. Newer API servers
    refuse both for a new pod but still serve old ones. The result is the address as Go
    prints it (IPv4 dotted decimal, IPv6 compressed lower case), so what the webhook writes
    back means what the kubelet and a Go virtual kubelet read there."""
    if len(text) > 256 or not text.isascii() or "%" in text:
        return None
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    if ":" not in text:
        address = _sloppy_ipv4(text)
    else:
        head, _colon, last = text.rpartition(":")
        if "." in last:   # an IPv4 tail, itself read sloppily
            tail = _sloppy_ipv4(last)
            if tail is None:
                return None
            last = str(tail)
        groups = [g.lstrip("0") or "0" if len(g) > 4 and "." not in g else g
                  for g in (*head.split(":"), last)]
        try:
            address = ipaddress.IPv6Address(":".join(groups))
        except ValueError:
            return None
    if address is None:
        return None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return str(address if mapped is None else mapped)


def _sloppy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """Four decimal parts of 0-255, leading zeros allowed (Go 1.16's parseIPv4)."""
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() for p in parts):
        return None
    numbers = [p.lstrip("0") or "0" for p in parts]
    if any(len(n) > 3 or int(n) > 255 for n in numbers):
        return None
    return ipaddress.IPv4Address(".".join(numbers))


def ip_key(text: str) -> object:
    """What identifies an address however it is written (`fd00::1` = `fd00:0::1`); text
    that is no address stands for itself. Remembered, as pods of one workload repeat
    them — but only text short enough to be an address, so no input can fill the memory."""
    return _ip_key(text) if len(text) <= 45 else text


@functools.lru_cache(maxsize=4096)
def _ip_key(text: str) -> object:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return text


def not_an_ip(text: str) -> str:
    """The message for a bad IP, naming the two near-misses Kubernetes refuses."""
    hint = ""
    if "%" in text:
        hint = " (no zone id)"
    elif _LEADING_ZERO_IPV4.fullmatch(text) and any(
        len(p) > 1 and p[0] == "0" for p in text.split(".")
    ):
        hint = " (no leading zeros)"
    elif mapped := _ipv4_mapped(text):
        hint = f" (no IPv4-mapped IPv6: write {mapped})"
    return f"{quoted(text)} is not an IPv4 or IPv6 address{hint}"


def _ipv4_mapped(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return str(mapped) if mapped else None


def not_dns1123(text: str, extra: str = "") -> str:
    return f"{quoted(text)} is not a DNS-1123 subdomain {_DNS1123_RULE}{extra}"


def is_dns1123_subdomain(text: str) -> bool:
    """A Kubernetes DNS-1123 subdomain, with each label also held to DNS's 63 chars."""
    return len(text) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(text) is not None


def is_search_domain(text: str) -> bool:
    """As validatePodDNSConfig in 1.24, the oldest supported API server: one trailing '.'
    is trimmed (strings.TrimSuffix), then the rest must be a DNS-1123 subdomain. So "."
    alone (trimmed to "") and names with '_' are refused; newer releases accept them
    behind feature gates, but a value must pass on every supported cluster."""
    return is_dns1123_subdomain(text.removesuffix("."))


def not_search_domain(text: str) -> str:
    if text == ".":
        return ('"." is not a search domain: the API server (1.24) trims the trailing '
                "'.' and refuses the empty rest; remove it")
    return not_dns1123(text, ", optionally ending in '.'")


def kept_valid(entries: Iterable[tuple[str, str]], *, valid: Callable[[str], bool],
               why_not: Callable[[str], str], problems: Problems) -> tuple[str, ...]:
    """The entries `valid` accepts, each once, in the order first given; for each it
    refuses, a problem at its position (`why_not(entry)`, worded only if reported). The
    nameservers and search domains of every dialect's DNS value, however it spells them."""
    kept: dict[str, None] = {}
    for where, entry in entries:
        if valid(entry):
            kept.setdefault(entry)
        else:
            problems.add(where, functools.partial(why_not, entry))
    return tuple(kept)


def mapped_twice(name: str, ip: str, where: str) -> str:
    """The message for a hostname given a second, different address."""
    return (f"{quoted(name)} is already mapped to {ip} by {where}: one hostname, one "
            "address (remove one of the mappings)")


def check_dns_limits(dns: DnsConfig, problems: Problems, context: str, *,
                     max_nameservers: int = MAX_NAMESERVERS, why: str = "") -> None:
    """The pod API's limits; a vendor that reads fewer nameservers passes its own limit
    (`max_nameservers`, below the API's) and the reason (`why`, appended)."""
    if len(dns.nameservers) > max_nameservers:
        problems.add(context + '"nameservers"', f"{len(dns.nameservers)} nameservers, "
                     f"at most {max_nameservers} allowed{why}")
    if len(dns.searches) > MAX_SEARCHES:
        problems.add(context + '"searches"', f"{len(dns.searches)} search domains, "
                     f"at most {MAX_SEARCHES} allowed{_OLDEST}")
    chars = len(" ".join(dns.searches))  # Kubernetes counts the separating spaces too
    if chars > MAX_SEARCH_CHARS:
        problems.add(context + '"searches"', f"{chars} characters in all (with one space "
                     f"between domains), at most {MAX_SEARCH_CHARS} allowed{_OLDEST}")


def dns_limit_problems(dns: DnsConfig, *, level: str, context: str = "",
                       key: str = KCI_DNS_CONFIG) -> list[str]:
    """The pod API's limits only; checked again after merging into the pod's own
    `spec.dnsConfig`, since two values within the limits can exceed them together.
    `key`: the annotation the value came in (a dialect's)."""
    problems = Problems(key, level)
    check_dns_limits(dns, problems, f"{context}: " if context else "")
    return problems.messages()
