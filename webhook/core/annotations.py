"""The KCI annotations: parse, validate and render their values canonically.

Pure (stdlib + orjson, no I/O). The same values arrive as pod annotations, Namespace
annotations, the virtual kubelet's `KCI_HOST_ALIASES` / `KCI_DNS_CONFIG` environment
variables and the config file, so every parser takes the `level` the value came from.

Validation follows the Kubernetes API's own (`ValidateHostAliases`, `validatePodDNSConfig`):
the pod is refused at admission with a message its author can act on, instead of being
accepted and failing later as `ErrImagePull` on a virtual node. All problems of one value
are collected and raised together as one `AnnotationError`, each message of the form

    <key> (<level>): <position>: <what was expected>

e.g. ``k8s.ksyun.com/kci-host-aliases (pod): item 1: "ip": "1.2.3" is not an IPv4 or IPv6
address``. Items are counted from 1, as a person counts them, and always in words
(`item 2`, `"searches" item 2`): brackets are left to paths that count from 0, as yq and
kubectl do (`mirrors[0]` in the config, `spec.containers[0]`).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn

import orjson

from webhook.core.errors import AnnotationError, ReferenceError_
from webhook.core.reference import parse_registry_host

KCI_DNS_CONFIG = "k8s.ksyun.com/kci-dns-config"
KCI_HOST_ALIASES = "k8s.ksyun.com/kci-host-aliases"
KCI_HTTP_REGISTRY = "k8s.ksyun.com/kci-http-registry"
KCI_INSECURE_REGISTRY = "k8s.ksyun.com/kci-insecure-registry"
MIRRORS_SWITCH = "kci-webhook/mirrors"
ORIGINAL_IMAGES = "kci-webhook/original-images"
IMAGE_PULL_SECRETS = "kci-webhook/image-pull-secrets"

# The API server caps all annotations of one object together at 256 KiB (the sum of
# len(key) + len(value) in bytes, TotalAnnotationSizeLimitB), so a longer value can never
# be legitimate; refusing it first bounds the work any input can cause.
MAX_VALUE_BYTES = 256 * 1024
MAX_ANNOTATIONS_BYTES = 256 * 1024
# The pod API's limits as the oldest supported API server (1.24) applies them in
# validatePodDNSConfig: ExpandedDNSConfig (32 domains, 2048 characters) is an alpha gate,
# off by default, until 1.26, so a 1.24 cluster refuses a 7th search domain.
MAX_NAMESERVERS = 3
MAX_SEARCHES = 6
MAX_SEARCH_CHARS = 256  # of the search list joined with single spaces
_OLDEST = " (the limit of Kubernetes 1.24, the oldest supported release)"

MAX_PROBLEMS = 20  # more than this is noise; the rest is counted, not listed
_QUOTE_CHARS = 64

_DNS1123_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*")
_DNS1123_RULE = "(lowercase letters, digits, '-' and '.'; labels of at most 63, 253 in all)"
_LEADING_ZERO_IPV4 = re.compile(r"(?:[0-9]+\.){3}[0-9]+")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True, slots=True)
class HostAlias:
    """One /etc/hosts entry: the names that resolve to `ip`."""

    ip: str
    hostnames: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DnsOption:
    """One resolv.conf option; `value` None means a bare flag such as `rotate`."""

    name: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """The pod's `spec.dnsConfig` shape, duplicates already folded."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[DnsOption, ...] = ()


# --- messages ---------------------------------------------------------------------------


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


def _key_text(key: object) -> str:
    return quoted(key) if isinstance(key, str) else str(key)[:_QUOTE_CHARS]


# --- shared checks ----------------------------------------------------------------------


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


def check_size(raw: str, problems: Problems) -> None:
    # Characters first (each is at least one byte) so a huge value is never encoded.
    if len(raw) > MAX_VALUE_BYTES or len(raw.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        problems.fail(f"value too large: more than {MAX_VALUE_BYTES} bytes, the API's limit "
                      "for all annotations of an object together")


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
            problems.fail(f"invalid JSON: key {_key_text(repeated)} appears twice in one "
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
            problems.add(position, f"unknown key {_key_text(key)} (expected {expected})")
    return value


def _strings(value: object, position: str, problems: Problems,
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


# --- host aliases -----------------------------------------------------------------------


def parse_host_aliases(raw: str, *, level: str) -> tuple[HostAlias, ...]:
    """Parse a `kci-host-aliases` value (or `KCI_HOST_ALIASES`), JSON text."""
    return host_aliases_from_data(load_json(raw, Problems(KCI_HOST_ALIASES, level)), level=level)


def host_aliases_from_data(data: object, *, level: str) -> tuple[HostAlias, ...]:
    """Validate already-decoded host aliases (the config file's YAML).

    A hostname repeated at the same address is folded, and an entry left with no
    hostnames is dropped; a hostname given two addresses is refused: levels are merged by
    hostname, so each hostname must stand for one address, and a reader that takes the
    other mapping than the one judged must not find it on the pod.
    """
    problems = Problems(KCI_HOST_ALIASES, level)
    if not isinstance(data, list | tuple):
        problems.fail(f"expected a JSON array, got {kind_of(data)}")
    seen: dict[str, tuple[str, str]] = {}
    aliases = []
    for i, item in enumerate(data, 1):
        alias = _host_alias(item, f"item {i}", problems, seen)
        if alias is not None and alias.hostnames:
            aliases.append(alias)
    problems.check()
    return tuple(aliases)


def _host_alias(item: object, position: str, problems: Problems,
                seen: dict[str, tuple[str, str]]) -> HostAlias | None:
    obj = json_object(item, ("ip", "hostnames"), position, problems)
    if obj is None:
        return None
    ip = obj.get("ip")
    if "ip" not in obj:
        problems.add(position, '"ip" is required')
    elif not isinstance(ip, str):
        problems.add(f'{position}: "ip"', expected_string(ip))
    elif not is_ip(ip):
        problems.add(f'{position}: "ip"', not_an_ip(ip))
    else:
        # One text per address (`FD00:0::1` is `fd00::1`), so levels merge by address.
        ip = str(ipaddress.ip_address(ip))
    if "hostnames" not in obj:
        problems.add(position, '"hostnames" is required')
    names = []
    for where, name in _strings(obj.get("hostnames"), f'{position}: "hostnames"', problems,
                                required="hostnames" in obj):
        if not is_dns1123_subdomain(name):
            problems.add(where, partial(not_dns1123, name))
        elif not isinstance(ip, str):
            continue
        elif name not in seen:
            seen[name] = (ip, position)
            names.append(name)
        elif seen[name][0] != ip:
            problems.add(where, partial(mapped_twice, name, *seen[name]))
    return HostAlias(ip, tuple(names)) if isinstance(ip, str) else None


def mapped_twice(name: str, ip: str, where: str) -> str:
    """The message for a hostname given a second, different address."""
    return (f"{quoted(name)} is already mapped to {ip} by {where}: one hostname, one "
            "address (remove one of the mappings)")


def host_aliases_to_spec(aliases: tuple[HostAlias, ...]) -> list[dict[str, Any]]:
    """The Pod's `spec.hostAliases` form (also the annotation's JSON form)."""
    return [{"ip": a.ip, "hostnames": list(a.hostnames)} for a in aliases]


def host_aliases_json(aliases: tuple[HostAlias, ...]) -> str:
    return orjson.dumps(host_aliases_to_spec(aliases)).decode()


# --- DNS config -------------------------------------------------------------------------


def parse_dns_config(raw: str, *, level: str) -> DnsConfig:
    """Parse a `kci-dns-config` value (or `KCI_DNS_CONFIG`), JSON text."""
    return dns_config_from_data(load_json(raw, Problems(KCI_DNS_CONFIG, level)), level=level)


def dns_config_from_data(data: object, *, level: str) -> DnsConfig:
    """Validate an already-decoded DNS config; duplicate nameservers and searches fold."""
    problems = Problems(KCI_DNS_CONFIG, level)
    if not isinstance(data, dict):
        problems.fail(f"expected a JSON object, got {kind_of(data)}")
    json_object(data, ("nameservers", "searches", "options"), "", problems)
    nameservers: dict[str, None] = {}
    for where, ns in _strings(data.get("nameservers"), '"nameservers"', problems, required=False):
        if is_ip(ns):
            nameservers.setdefault(ns)
        else:
            problems.add(where, partial(not_an_ip, ns))
    searches: dict[str, None] = {}
    for where, s in _strings(data.get("searches"), '"searches"', problems, required=False):
        if is_search_domain(s):
            searches.setdefault(s)
        else:
            problems.add(where, partial(not_search_domain, s))
    options = _dns_options(data.get("options"), problems)
    dns = DnsConfig(tuple(nameservers), tuple(searches), options)
    check_dns_limits(dns, problems, "")
    problems.check()
    return dns


def _dns_options(value: object, problems: Problems) -> tuple[DnsOption, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        problems.add('"options"', f"expected an array of objects, got {kind_of(value)}")
        return ()
    options = []
    for i, item in enumerate(value, 1):
        position = f'"options" item {i}'
        obj = json_object(item, ("name", "value"), position, problems)
        if obj is None:
            continue
        name, val = obj.get("name"), obj.get("value")
        if "name" not in obj:
            problems.add(position, '"name" is required')
        elif not isinstance(name, str):
            problems.add(f'{position}: "name"', expected_string(name))
        elif not name:
            problems.add(f'{position}: "name"', "must not be empty")
        if val is not None and not isinstance(val, str):
            problems.add(f'{position}: "value"', expected_string(val))
        elif isinstance(name, str):
            options.append(DnsOption(name, val))
    return tuple(options)


def check_dns_limits(dns: DnsConfig, problems: Problems, context: str) -> None:
    if len(dns.nameservers) > MAX_NAMESERVERS:
        problems.add(context + '"nameservers"', f"{len(dns.nameservers)} nameservers, "
                     f"at most {MAX_NAMESERVERS} allowed")
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


def dns_config_to_spec(dns: DnsConfig) -> dict[str, Any]:
    """The Pod's `spec.dnsConfig` form: empty lists omitted, `value` only when set."""
    spec: dict[str, Any] = {}
    if dns.nameservers:
        spec["nameservers"] = list(dns.nameservers)
    if dns.searches:
        spec["searches"] = list(dns.searches)
    if dns.options:
        spec["options"] = [
            {"name": o.name} if o.value is None else {"name": o.name, "value": o.value}
            for o in dns.options
        ]
    return spec


def dns_config_json(dns: DnsConfig) -> str:
    return orjson.dumps(dns_config_to_spec(dns)).decode()


def dns_config_from_spec(data: object) -> DnsConfig:
    """Read a pod's own `spec.dnsConfig`. Lenient: the API server validates the pod after
    us, so anything of the wrong type is skipped here, never raised."""
    if not isinstance(data, dict):
        return DnsConfig()

    def strings(value: object) -> tuple[str, ...]:
        return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

    raw_options = data.get("options")
    options = tuple(
        DnsOption(o["name"], o.get("value") if isinstance(o.get("value"), str) else None)
        for o in (raw_options if isinstance(raw_options, list) else ())
        if isinstance(o, dict) and isinstance(o.get("name"), str)
    )
    return DnsConfig(strings(data.get("nameservers")), strings(data.get("searches")), options)


# --- comma lists ------------------------------------------------------------------------


def _entries(raw: str, problems: Problems) -> Iterator[tuple[str, str]]:
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
    for position, entry in _entries(raw, problems):
        # Hostnames are case-insensitive: fold to lowercase, the canonical form, so
        # `Harbor.example.com` and `harbor.example.com` are one entry.
        host = entry.lower()
        if host in registries:
            continue
        problem = _registry_problem(host)
        if problem:
            problems.add(position, f"{quoted(entry)}: {problem}")
        else:
            registries.setdefault(host)
    problems.check()
    return tuple(registries)


def _registry_problem(entry: str) -> str | None:
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
    for position, entry in _entries(raw, problems):
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
