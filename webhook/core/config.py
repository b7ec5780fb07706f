"""The configuration model: the config file, and the `KCI_*` environment defaults.

Everything here is parsed and validated once, at start-up (or reload), into frozen values;
admission only reads them. Every key is optional and every unknown key is an error, so a
typo never silently disables a rule. Messages name the file (or variable) and the key.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from webhook.core.dialects import DEFAULT_DIALECT, DIALECT_NAMES
from webhook.core.dialects.kci import (
    dns_config_from_data,
    host_aliases_from_data,
    parse_dns_config,
    parse_host_aliases,
)
from webhook.core.errors import AnnotationError, ConfigError, ReferenceError_
from webhook.core.model import DnsConfig, HostAlias
from webhook.core.names import dns1123_label_errors
from webhook.core.reference import is_path_component_sequence, normalize_domain, parse_registry_host
from webhook.core.values.checks import is_dns1123_subdomain

ON_INVALID = ("deny", "warn")
SCOPES = ("all", "virtual-kubelet")
POLICIES = ("always", "if-present")
DEFAULT_EXCLUDED_NAMESPACES = ("kube-system", "kube-public")
MAX_CONFIG_BYTES = 1024 * 1024  # a ConfigMap holds at most 1 MiB
# The `timeoutSeconds` the webhook configurations declare (the manifests render it and the
# server's `--webhook-timeout` from one value), and the range the API accepts for it.
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 5
WEBHOOK_TIMEOUT_RANGE = (1, 30)
# Of the API server's timeout, what a request needs besides the mirror checks: a TLS
# handshake on a new connection, reading a body of up to 7 MiB, waiting behind other
# requests on a busy worker, then the mutation, the patch and the answer's way back.
# The mutation itself takes well under a millisecond; a second is room for a loaded node.
REQUEST_HEADROOM_SECONDS = 1.0
# The port a registry host without one is reached on, by scheme (what containerd assumes).
DEFAULT_PORTS = {"https": 443, "http": 80}

RegistryKey = tuple[str, int | None]   # canonical (host, port): see registry_key


@dataclass(frozen=True, slots=True)
class Mirror:
    """One registry mirror, containerd style: images from `hosts` are pulled from `host`.

    `host` is the mirror's `host[:port]` (lower case), `namespace` the path prefix the
    mirror serves them under ("" for the root), from either endpoint form
    `https://host:port/v2/<ns>` or `host:port/<ns>`.
    """

    endpoint: str
    scheme: str
    host: str
    namespace: str
    hosts: tuple[str, ...]
    pull_secret: str | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    policy: str = "always"
    allow_credentials_over_http: bool = False
    pull_credential_config_path: str | None = None
    # Every canonical key that names `host` (`mirror_keys`): derived, not part of the value.
    keys: frozenset[RegistryKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", _host_keys(self.host, self.scheme))

    @property
    def plain_http(self) -> bool:
        """Pulled over plain HTTP: what a pod's HTTP-registry list must say of `host`."""
        return self.scheme == "http"

    @property
    def skips_verification(self) -> bool:
        """Pulled over TLS without verification: what a pod's insecure-registry list must
        say of `host` (`insecureSkipVerify` means nothing on a plain HTTP endpoint)."""
        return self.scheme == "https" and self.insecure_skip_verify

    def is_host(self, registry: str) -> bool:
        """Whether `registry` (`host[:port]`, however spelt) is this mirror's host: the
        same canonical host and port, a missing port meaning the endpoint's default one
        (`mirror` and `mirror:443` are one https mirror; `mirror:05000` is `mirror:5000`)."""
        return registry_key(registry) in self.keys

    def serves(self, domain: str) -> bool:
        """Exact match on the parsed, normalized host: docker.io never matches docker.io.evil."""
        return domain in self.hosts

    def repository(self, path: str) -> str:
        """The repository path on the mirror for a source repository path."""
        return f"{self.namespace}/{path}" if self.namespace else path


@dataclass(frozen=True, slots=True)
class Defaults:
    """Cluster-wide defaults of the lowest precedence (below the `KCI_*` environment)."""

    scope: str = "all"
    host_aliases: tuple[HostAlias, ...] = ()
    dns_config: DnsConfig | None = None


@dataclass(frozen=True, slots=True)
class MirrorChecks:
    """How `policy: if-present` asks mirrors: the per-admission budget, the bounds on the
    work one admission can cause, and the cache."""

    budget_seconds: float = 1.0
    positive_ttl_seconds: float = 300.0
    negative_ttl_seconds: float = 30.0
    cooldown_seconds: float = 30.0
    # Questions one admission may take past the cache (started or joined lookups): 32 is
    # more distinct images than any real pod has, and two rounds of the in-flight limit,
    # so a pod at the limit is still answered within a 1 s budget by a mirror that
    # answers in under half of it. Past it, an image is kept as written (as on a timeout).
    max_lookups_per_admission: int = 32
    # Lookups sending to one mirror host at once (its connection pool has as many
    # connections, so requests never queue inside the HTTP client).
    max_in_flight_per_mirror: int = 16


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration file, validated."""

    on_invalid: str = "deny"
    dialect: str = DEFAULT_DIALECT  # whose annotation keys pods speak (webhook.core.dialects)
    defaults: Defaults = field(default_factory=Defaults)
    mirrors: tuple[Mirror, ...] = ()
    allowed_insecure_registries: tuple[str, ...] = ()
    exclude_namespaces: frozenset[str] = frozenset(DEFAULT_EXCLUDED_NAMESPACES)
    mirror_checks: MirrorChecks = field(default_factory=MirrorChecks)
    source: str = "<defaults>"
    # What is valid but almost certainly a mistake, each without the file's name: serve logs
    # them at load and reload, mutate prints them as warnings about the file.
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # Memo of image → rewrite plan for this config (see webhook.core.mutation.images); not
    # its value.
    rewrite_cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Memo of other values derived from this config once (see webhook.core.mutation.layers);
    # not its value.
    derived: dict[object, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EnvironmentDefaults:
    """`KCI_HOST_ALIASES` / `KCI_DNS_CONFIG`: the virtual-kubelet-level defaults that the
    KCI documentation describes."""

    host_aliases: tuple[HostAlias, ...] = ()
    dns_config: DnsConfig | None = None


# --- the config file -------------------------------------------------------------------


def load_config(text: str | bytes, *, source: str,
                webhook_timeout: int = DEFAULT_WEBHOOK_TIMEOUT_SECONDS) -> Config:
    """Parse and validate a YAML config file; raise ConfigError naming `source` and the key.

    `webhook_timeout` is the API server's `timeoutSeconds` for this webhook: the mirror
    checks' budget must leave room in it for the rest of the request."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as exc:
        shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        raise ConfigError(yaml_error_message(exc, source, shown)) from None
    return config_from_data({} if data is None else data, source=source,
                            webhook_timeout=webhook_timeout)


def config_from_data(data: object, *, source: str,
                     webhook_timeout: int = DEFAULT_WEBHOOK_TIMEOUT_SECONDS) -> Config:
    """Validate already-decoded config data (the YAML document)."""
    problems: list[str] = []
    top = _mapping(data, "(top level)", problems, {"onInvalid", "dialect", "defaults",
                                                   "mirrors", "security", "exclude",
                                                   "mirrorChecks"})
    on_invalid = _choice(top.get("onInvalid", "deny"), "onInvalid", ON_INVALID, problems)
    dialect = _choice(top.get("dialect", DEFAULT_DIALECT), "dialect", DIALECT_NAMES, problems)
    defaults = _defaults(top.get("defaults") or {}, problems)
    mirrors = tuple(_mirrors(top.get("mirrors") or [], problems))
    security = _mapping(top.get("security") or {}, "security", problems,
                        {"allowedInsecureRegistries"})
    allowed = tuple(_patterns(security.get("allowedInsecureRegistries") or [], problems))
    exclude = _mapping(top.get("exclude") or {}, "exclude", problems, {"namespaces"})
    excluded = _namespaces(exclude.get("namespaces", list(DEFAULT_EXCLUDED_NAMESPACES)), problems)
    checks = _mirror_checks(top.get("mirrorChecks") or {}, problems, webhook_timeout)
    problems.extend(_cycles(mirrors))
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    return Config(on_invalid=on_invalid, dialect=dialect, defaults=defaults, mirrors=mirrors,
                  allowed_insecure_registries=allowed, exclude_namespaces=frozenset(excluded),
                  mirror_checks=checks, source=source,
                  warnings=tuple(_shadowed_hosts(mirrors)))


_CHECK_KEYS = {"budgetSeconds": (0.05, 10.0), "positiveTTLSeconds": (0.0, 86400.0),
               "negativeTTLSeconds": (0.0, 86400.0), "cooldownSeconds": (0.0, 3600.0)}
_CHECK_COUNTS = {"maxLookupsPerAdmission": (1, 1000), "maxInFlightPerMirror": (1, 256)}


def budget_limit(webhook_timeout: int) -> float:
    """The largest mirror-check budget a webhook timeout allows: the timeout less the
    request's headroom (half of it for timeouts under two seconds). A budget that reached
    the timeout would make the API server give up first, and with `failurePolicy: Fail`
    refuse the pod instead of falling back to the upstream registry."""
    return webhook_timeout - min(REQUEST_HEADROOM_SECONDS, webhook_timeout / 2)


def parse_webhook_timeout(text: str, *, where: str) -> int:
    """A `timeoutSeconds` value as the API accepts it: whole seconds, 1 to 30."""
    low, high = WEBHOOK_TIMEOUT_RANGE
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if not low <= value <= high:
        raise ConfigError(f"{where}: expected whole seconds from {low} to {high} (the "
                          f"webhook configurations' timeoutSeconds), got {text!r}")
    return value


def _mirror_checks(value: object, problems: list[str], webhook_timeout: int) -> MirrorChecks:
    data = _mapping(value, "mirrorChecks", problems, {*_CHECK_KEYS, *_CHECK_COUNTS})
    counts: dict[str, int] = {}
    for key, (least, most) in _CHECK_COUNTS.items():
        if key not in data:
            continue
        count = data[key]
        if isinstance(count, bool) or not isinstance(count, int) or not least <= count <= most:
            problems.append(f"mirrorChecks.{key}: expected a whole number from {least} to "
                            f"{most}, got {count!r}")
        else:
            counts[key] = count
    numbers: dict[str, float] = {}
    for key, (low, high) in _CHECK_KEYS.items():
        if key not in data:
            continue
        number = data[key]
        if isinstance(number, bool) or not isinstance(number, int | float) or not (
                low <= number <= high):
            problems.append(f"mirrorChecks.{key}: expected a number of seconds from {low:g} "
                            f"to {high:g}, got {shown(number)}")
        else:
            numbers[key] = float(number)
    limit = budget_limit(webhook_timeout)
    if numbers.get("budgetSeconds", 0.0) > limit:
        problems.append(
            f"mirrorChecks.budgetSeconds: {numbers.pop('budgetSeconds'):g} s leaves too little "
            f"of the webhook's {webhook_timeout} s timeout (timeoutSeconds; the server's "
            f"--webhook-timeout) for the rest of the request: at most {limit:g} s")
    defaults = MirrorChecks()
    return MirrorChecks(
        budget_seconds=numbers.get("budgetSeconds", min(defaults.budget_seconds, limit)),
        positive_ttl_seconds=numbers.get("positiveTTLSeconds", defaults.positive_ttl_seconds),
        negative_ttl_seconds=numbers.get("negativeTTLSeconds", defaults.negative_ttl_seconds),
        cooldown_seconds=numbers.get("cooldownSeconds", defaults.cooldown_seconds),
        max_lookups_per_admission=counts.get("maxLookupsPerAdmission",
                                             defaults.max_lookups_per_admission),
        max_in_flight_per_mirror=counts.get("maxInFlightPerMirror",
                                            defaults.max_in_flight_per_mirror))


def _mapping(value: object, where: str, problems: list[str], keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping, got {_kind(value)}")
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


def _choice(value: object, where: str, choices: tuple[str, ...], problems: list[str]) -> str:
    if value not in choices:
        problems.append(f"{where}: {shown(value)} is not one of {', '.join(choices)}")
        return choices[0]
    return str(value)


def _bool(value: object, where: str, problems: list[str]) -> bool:
    if not isinstance(value, bool):
        problems.append(f"{where}: expected true or false, got {shown(value)}")
        return False
    return value


def _optional_str(value: object, where: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.append(f"{where}: expected a non-empty string, got {_kind(value)}")
        return None
    return value


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__)


def _defaults(value: object, problems: list[str]) -> Defaults:
    data = _mapping(value, "defaults", problems, {"scope", "hostAliases", "dnsConfig"})
    scope = _choice(data.get("scope", "all"), "defaults.scope", SCOPES, problems)
    aliases: tuple[HostAlias, ...] = ()
    dns: DnsConfig | None = None
    try:
        aliases = host_aliases_from_data(data.get("hostAliases") or [], level="config")
    except AnnotationError as exc:
        problems.extend(f"defaults.hostAliases: {p}" for p in exc.problems)
    if data.get("dnsConfig") is not None:
        try:
            dns = dns_config_from_data(data["dnsConfig"], level="config")
        except AnnotationError as exc:
            problems.extend(f"defaults.dnsConfig: {p}" for p in exc.problems)
    return Defaults(scope=scope, host_aliases=aliases, dns_config=dns)


_MIRROR_KEYS = {"endpoint", "hosts", "pullSecret", "caFile", "insecureSkipVerify", "policy",
                "allowCredentialsOverHTTP", "pullCredentialConfigPath"}


def _mirrors(value: object, problems: list[str]) -> list[Mirror]:
    if not isinstance(value, list):
        problems.append(f"mirrors: expected a list, got {_kind(value)}")
        return []
    mirrors = []
    for index, item in enumerate(value):
        mirror = _mirror(item, f"mirrors[{index}]", problems)
        if mirror is not None:
            mirrors.append(mirror)
    return mirrors


def _mirror(item: object, where: str, problems: list[str]) -> Mirror | None:
    before = len(problems)
    if not isinstance(item, dict):
        problems.append(f"{where}: expected a mapping (endpoint, hosts, ...), got {_kind(item)}")
        return None
    data = _mapping(item, where, problems, _MIRROR_KEYS)
    if "endpoint" not in data and isinstance(item, dict):
        problems.append(f"{where}: \"endpoint\" is required")
    scheme, host, namespace = parse_endpoint(data.get("endpoint"), f"{where}.endpoint", problems)
    hosts = _source_hosts(data.get("hosts"), f"{where}.hosts", problems)
    pull_secret = _optional_str(data.get("pullSecret"), f"{where}.pullSecret", problems)
    if pull_secret is not None and not is_dns1123_subdomain(pull_secret):
        problems.append(f"{where}.pullSecret: {pull_secret!r} is not a valid Secret name "
                        "(a DNS-1123 subdomain)")
    allow_http_creds = _bool(data.get("allowCredentialsOverHTTP", False),
                             f"{where}.allowCredentialsOverHTTP", problems)
    credentials = _optional_str(data.get("pullCredentialConfigPath"),
                                f"{where}.pullCredentialConfigPath", problems)
    if scheme == "http" and (pull_secret or credentials) and not allow_http_creds:
        problems.append(f"{where}: endpoint is plain http:// but credentials are configured "
                        "(pullSecret/pullCredentialConfigPath); they would travel in clear. "
                        "Use https://, or set allowCredentialsOverHTTP: true if you accept that")
    mirror = Mirror(
        endpoint=str(data.get("endpoint", "")), scheme=scheme, host=host, namespace=namespace,
        hosts=hosts, pull_secret=pull_secret,
        ca_file=_optional_str(data.get("caFile"), f"{where}.caFile", problems),
        insecure_skip_verify=_bool(data.get("insecureSkipVerify", False),
                                   f"{where}.insecureSkipVerify", problems),
        policy=_choice(data.get("policy", "always"), f"{where}.policy", POLICIES, problems),
        allow_credentials_over_http=allow_http_creds,
        pull_credential_config_path=credentials,
    )
    return mirror if len(problems) == before else None


def parse_endpoint(value: object, where: str, problems: list[str]) -> tuple[str, str, str]:
    """Split a mirror endpoint into (scheme, host[:port], namespace).

    Both containerd/GDC forms mean the same: `https://h:5000/v2/ns` and `h:5000/ns`.
    No scheme means https, as containerd assumes.
    """
    if not isinstance(value, str) or not value.strip():
        if value is not None:
            problems.append(f"{where}: expected a URL such as https://host:5000/v2/namespace")
        return "https", "", ""
    text = value.strip()
    scheme = "https"
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            problems.append(f"{where}: scheme {scheme!r} is not http or https")
            return "https", "", ""
    host, _, path = text.partition("/")
    try:
        parse_registry_host(host)
    except ReferenceError_:
        problems.append(f"{where}: {host!r} is not a registry host[:port]")
        return scheme, "", ""
    path = path.strip("/")
    if path == "v2" or path.startswith("v2/"):
        path = path[3:]
    if path and not is_path_component_sequence(path):
        problems.append(f"{where}: namespace {path!r} is not a valid repository path "
                        "(lowercase components separated by '/')")
        return scheme, "", ""
    return scheme, host.lower(), path


def _source_hosts(value: object, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: expected a non-empty list of registry hosts "
                        "(such as docker.io, gcr.io)")
        return ()
    hosts: list[str] = []
    for index, item in enumerate(value):
        try:
            if not isinstance(item, str):
                raise ReferenceError_("ErrRegistryHostInvalid", repr(item))
            parse_registry_host(item)
        except ReferenceError_:
            problems.append(f"{where}[{index}]: {shown(item)} is not a registry host[:port] "
                            "(no scheme, no path)")
            continue
        host = normalize_domain(item.lower())
        if host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def _patterns(value: object, problems: list[str]) -> list[str]:
    """`host[:port]` or `*.domain[:port]` patterns: a deliberate, tiny language, no regexes."""
    if not isinstance(value, list):
        problems.append(f"security.allowedInsecureRegistries: expected a list, got {_kind(value)}")
        return []
    patterns = []
    for index, item in enumerate(value):
        text = item.lower() if isinstance(item, str) else ""
        candidate = text[2:] if text.startswith("*.") else text
        try:
            parse_registry_host(candidate)
        except ReferenceError_:
            problems.append(f"security.allowedInsecureRegistries[{index}]: {shown(item)} is not "
                            "host[:port] or *.domain[:port]")
            continue
        patterns.append(text)
    return patterns


def _namespaces(value: object, problems: list[str]) -> list[str]:
    if not isinstance(value, list):
        problems.append(f"exclude.namespaces: expected a list, got {_kind(value)}")
        return list(DEFAULT_EXCLUDED_NAMESPACES)
    names = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or dns1123_label_errors(item):
            problems.append(f"exclude.namespaces[{index}]: {shown(item)} is not a namespace "
                            "name")
        else:
            names.append(item)
    return names


def _cycles(mirrors: tuple[Mirror, ...]) -> list[str]:
    """A mirror host that is also a source would be rewritten again: refuse it at load."""
    problems = []
    for i, mirror in enumerate(mirrors):
        for j, other in enumerate(mirrors):
            if normalize_domain(mirror.host) in other.hosts:
                problems.append(
                    f"mirrors[{i}]: endpoint host {mirror.host!r} is also a source in "
                    f"mirrors[{j}].hosts; images rewritten to it would be rewritten again "
                    "(a cycle). Remove it from hosts")
    return problems



def _shadowed_hosts(mirrors: tuple[Mirror, ...]) -> list[str]:
    """A source host listed by two mirrors: the first that lists it serves it
    (webhook.core.mutation.images asks them in order), so the later one is never used for
    it. Valid, but surely not meant: a warning, not an error."""
    first: dict[str, int] = {}
    warnings = []
    for index, mirror in enumerate(mirrors):
        for host in mirror.hosts:
            if host in first:
                warnings.append(
                    f"mirrors[{index}].hosts: {host} is also listed by mirrors[{first[host]}], "
                    f"which serves it (the first mirror that lists a host does); "
                    f"mirrors[{index}] is never used for {host}")
            else:
                first[host] = index
    return warnings


# --- YAML as a person reads it -----------------------------------------------------------

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLoader(_BaseLoader):
    """The safe loader (libyaml's when PyYAML has it) that refuses a key written twice in
    one mapping. YAML forbids it, and kubectl and the API server refuse such a manifest;
    PyYAML alone would keep the last value and say nothing (a second `image:` silently
    wins). Merge keys (`<<: *anchor`) overriding a merged value are not duplicates."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Node] = {}
            for key_node, _value in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                identity = (key_node.tag, key_node.value)
                if identity in seen:
                    first = seen[identity].start_mark
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r} (first at line "
                        f"{first.line + 1}): a key may appear once in a mapping; "
                        "kubectl refuses it too", key_node.start_mark)
                seen[identity] = key_node
        return super().construct_mapping(node, deep=deep)


def yaml_error_message(exc: yaml.YAMLError, name: str, source: str) -> str:
    """`FILE:LINE:COL: problem (context at LINE:COL)`, 1-based as editors count; the
    raw text of PyYAML's message is for programmers, with a copy of the line and a caret."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):
        line = source.count("\n", 0, exc.position) + 1
        column = exc.position - (source.rfind("\n", 0, exc.position) + 1) + 1
        character = exc.character if isinstance(exc.character, int) else 0
        return f"{name}:{line}:{column}: unacceptable character #x{character:04x}: {exc.reason}"
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return f"{name}: not valid YAML: {exc}"
    text = exc.problem or exc.context or "cannot be read"
    context = exc.context_mark
    if exc.problem and exc.context:
        text += f" ({exc.context}"
        if context and (context.line, context.column) != (mark.line, mark.column):
            text += f" at {context.line + 1}:{context.column + 1}"
        text += ")"
    if source[mark.index:mark.index + 1] == "\t":
        text += "; a tab: YAML indents with spaces only"
    return f"{name}:{mark.line + 1}:{mark.column + 1}: {text}"


# --- the environment -------------------------------------------------------------------


def environment_defaults(env: Mapping[str, str]) -> EnvironmentDefaults:
    """Read `KCI_HOST_ALIASES` / `KCI_DNS_CONFIG`; a bad value stops the process at start-up."""
    problems: list[str] = []
    aliases: tuple[HostAlias, ...] = ()
    dns: DnsConfig | None = None
    if env.get("KCI_HOST_ALIASES", "").strip():
        try:
            aliases = parse_host_aliases(env["KCI_HOST_ALIASES"], level="environment")
        except AnnotationError as exc:
            problems.extend(f"KCI_HOST_ALIASES: {p}" for p in exc.problems)
    if env.get("KCI_DNS_CONFIG", "").strip():
        try:
            dns = parse_dns_config(env["KCI_DNS_CONFIG"], level="environment")
        except AnnotationError as exc:
            problems.extend(f"KCI_DNS_CONFIG: {p}" for p in exc.problems)
    if problems:
        raise ConfigError("\n".join(problems))
    return EnvironmentDefaults(host_aliases=aliases, dns_config=dns)


@functools.lru_cache(maxsize=4096)
def registry_key(registry: str) -> RegistryKey:
    """A registry `host[:port]` as one value however it is spelt, so that every comparison
    of a registry entry with a mirror's host or the allow-list is made on it (text would
    let `mirror:05000`, `[0:0::1]` or an upper-case name pass as another registry).

    The host in lower case, an IPv6 address compressed (an IPv4-mapped one as its IPv4
    address, which is where it connects), the port as a number, None when there is none.
    Text that is not `host[:port]` is its own key, in lower case: it matches no mirror."""
    text = registry.lower()
    try:
        host, port = parse_registry_host(text)
    except ReferenceError_:
        return text, None
    if host.startswith("["):
        address = ipaddress.IPv6Address(host[1:-1])
        mapped = address.ipv4_mapped
        host = str(mapped) if mapped is not None else f"[{address.compressed}]"
    return host, port


def mirror_keys(mirror: Mirror) -> frozenset[RegistryKey]:
    """Every canonical key that names `mirror`'s host: its own, and with the port left
    out or spelt out when it is the endpoint scheme's default one. Derived once, when the
    mirror is made: the hot path only looks a key up in it."""
    return mirror.keys


def _host_keys(host_text: str, scheme: str) -> frozenset[RegistryKey]:
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


__all__ = [
    "DEFAULT_WEBHOOK_TIMEOUT_SECONDS", "Config", "Defaults", "EnvironmentDefaults", "Mirror",
    "RegistryKey", "YamlLoader", "budget_limit", "config_from_data", "environment_defaults",
    "load_config", "mirror_keys", "parse_endpoint", "parse_webhook_timeout", "registry_allowed",
    "registry_key", "shown", "yaml_error_message",
]
