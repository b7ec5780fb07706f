"""Tencent Cloud TKE super nodes (EKS).

- `eks.tke.cloud.tencent.com/registry-http-endpoint`,
  `eks.tke.cloud.tencent.com/registry-insecure-skip-verify`: comma lists of `host[:port]`,
  or `all` for every registry the pod pulls from (the super-node annotation reference and
  its image-repository FAQ).
- `eks.tke.cloud.tencent.com/resolv-conf`: the pod's resolv.conf as text, e.g.
  `nameserver 183.60.83.19`. Read as resolv.conf(5) lines: `nameserver ADDRESS`,
  `search DOMAIN...` (the last one wins), `options NAME[:VALUE]...`; `#` or `;` first on a
  line starts a comment.
- Extra hosts: no annotation is documented; `spec.hostAliases` carries them.

resolv-conf is checked by the pod API's DNS rules as the oldest supported release (1.24)
applies them, with the KCI JSON form's own checks and messages (nameserver count, search
domains and their count and length), and is refused if it holds anything
but printable ASCII, tabs and newlines: a character the webhook reads as a separator
must not be one the virtual kubelet reads as part of a name.
"""

from __future__ import annotations

import re

from webhook.core.dialects.base import ALL_REGISTRIES, Dialect
from webhook.core.model import DnsConfig, DnsOption
from webhook.core.values.checks import (
    check_dns_limits,
    is_ip,
    is_search_domain,
    not_an_ip,
    not_search_domain,
)
from webhook.core.values.lists import parse_registry_list
from webhook.core.values.problems import Problems, quoted
from webhook.core.values.size import check_size

EKS_HTTP_ENDPOINT = "eks.tke.cloud.tencent.com/registry-http-endpoint"
EKS_INSECURE_SKIP_VERIFY = "eks.tke.cloud.tencent.com/registry-insecure-skip-verify"
EKS_RESOLV_CONF = "eks.tke.cloud.tencent.com/resolv-conf"
ALL_WORD = "all"

_BLANKS = re.compile(r"[ \t]+")
_UNPRINTABLE = re.compile(r"[^\t\n\x20-\x7e]")
_WORD = re.compile(r"[\x21-\x7e]+")   # printable ASCII, no blank


def parse_registries(raw: str, *, key: str, level: str) -> tuple[str, ...]:
    """The KCI grammar, with `all` (any case) standing for every registry."""
    return tuple(ALL_REGISTRIES if entry == ALL_WORD else entry
                 for entry in parse_registry_list(raw, key=key, level=level))


def registries_text(entries: tuple[str, ...]) -> str:
    """`all` alone when it is among the entries: it already covers the rest."""
    return ALL_WORD if ALL_REGISTRIES in entries else ",".join(entries)


def parse_resolv_conf(raw: str, *, level: str) -> DnsConfig:
    """Parse a `resolv-conf` value into the pod's `spec.dnsConfig` shape."""
    problems = Problems(EKS_RESOLV_CONF, level)
    check_size(raw, problems)
    bad = _UNPRINTABLE.search(raw)
    if bad:
        where = raw.count("\n", 0, bad.start()) + 1
        problems.fail(f"line {where}: character U+{ord(bad.group()):04X} is not allowed "
                      "(printable ASCII, tabs and newlines only)")
    nameservers: dict[str, None] = {}
    searches: tuple[str, ...] = ()
    options: list[DnsOption] = []
    for number, line in enumerate(raw.split("\n"), 1):
        words = [w for w in _BLANKS.split(line) if w]
        if not words or words[0][0] in "#;":
            continue
        position, keyword, args = f"line {number}", words[0], words[1:]
        if keyword == "nameserver":
            _nameserver(args, position, problems, nameservers)
        elif keyword == "search":
            searches = _search(args, position, problems)
        elif keyword == "options":
            options.extend(_options(args, position, problems))
        else:
            problems.add(position, f"unknown keyword {quoted(keyword)} "
                                   "(expected nameserver, search or options)")
    dns = DnsConfig(tuple(nameservers), searches, tuple(options))
    check_dns_limits(dns, problems, "")
    problems.check()
    return dns


def _nameserver(args: list[str], position: str, problems: Problems,
                nameservers: dict[str, None]) -> None:
    if len(args) != 1:
        problems.add(position, f"nameserver takes one address, got {len(args)}")
    elif not is_ip(args[0]):
        problems.add(position, not_an_ip(args[0]))
    else:
        nameservers.setdefault(args[0])


def _search(args: list[str], position: str, problems: Problems) -> tuple[str, ...]:
    if not args:
        problems.add(position, "search needs at least one domain")
    for domain in args:
        if not is_search_domain(domain):
            problems.add(position, not_search_domain(domain))
    return tuple(dict.fromkeys(args))


def _options(args: list[str], position: str, problems: Problems) -> list[DnsOption]:
    if not args:
        problems.add(position, "options needs at least one option")
    parsed = []
    for word in args:
        name, colon, value = word.partition(":")
        if not name:
            problems.add(position, f"option {quoted(word)} has no name")
        else:
            parsed.append(DnsOption(name, value if colon else None))
    return parsed


def unwritable_option(option: DnsOption) -> str | None:
    """Why `option` cannot be a word of an `options` line that reads back as itself, or
    None. Options reach the written value from the pod's own `spec.dnsConfig` (which the
    API server lets hold any text) and from JSON defaults: a blank or a newline there
    would add options, or a `nameserver` line, to what the virtual kubelet reads."""
    if not _WORD.fullmatch(option.name) or ":" in option.name:
        return "a resolv.conf option name is printable ASCII with no blank and no ':'"
    if option.value and not _WORD.fullmatch(option.value):
        return "a resolv.conf option value is printable ASCII with no blank"
    return None


def resolv_conf_text(dns: DnsConfig) -> str:
    """resolv.conf lines: one per nameserver, then search, then options."""
    lines = [f"nameserver {ns}" for ns in dns.nameservers]
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    if dns.options:
        lines.append("options " + " ".join(
            o.name if o.value is None else f"{o.name}:{o.value}" for o in dns.options))
    return "\n".join(lines)


EKS = Dialect(
    name="eks", vendor="Tencent Cloud TKE super nodes",
    http_key=EKS_HTTP_ENDPOINT, insecure_key=EKS_INSECURE_SKIP_VERIFY,
    dns_key=EKS_RESOLV_CONF,
    read_registries=parse_registries, write_registries=registries_text,
    read_dns=parse_resolv_conf, write_dns=resolv_conf_text,
    unwritable_option=unwritable_option,
)
