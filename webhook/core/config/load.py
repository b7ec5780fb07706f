"""Loading the config file: YAML in, a validated `Config` out, or one `ConfigError`
naming the file and every key that is wrong.

Every key is optional and every unknown key is an error, so a typo never silently
disables a rule. The mirrors' own checks are in webhook.core.config.mirrors.
"""

from __future__ import annotations

import yaml

from webhook.core.config.fields import choice, kind, mapping, shown
from webhook.core.config.mirrors import cycles, mirrors_from_data, shadowed_hosts
from webhook.core.config.model import DEFAULT_EXCLUDED_NAMESPACES, Config, Defaults, MirrorChecks
from webhook.core.config.yamltext import YamlLoader, yaml_error_message
from webhook.core.dialects import DEFAULT_DIALECT, DIALECT_NAMES
from webhook.core.dialects.kci import dns_config_from_data, host_aliases_from_data
from webhook.core.errors import AnnotationError, ConfigError, ReferenceError_
from webhook.core.model import DnsConfig, HostAlias
from webhook.core.names import dns1123_label_errors
from webhook.core.reference import parse_registry_host

ON_INVALID = ("deny", "warn")
SCOPES = ("all", "virtual-kubelet")
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
    top = mapping(data, "(top level)", problems, {"onInvalid", "dialect", "defaults",
                                                   "mirrors", "security", "exclude",
                                                   "mirrorChecks"})
    on_invalid = choice(top.get("onInvalid", "deny"), "onInvalid", ON_INVALID, problems)
    dialect = choice(top.get("dialect", DEFAULT_DIALECT), "dialect", DIALECT_NAMES, problems)
    defaults = _defaults(top.get("defaults") or {}, problems)
    placed = mirrors_from_data(top.get("mirrors") or [], problems)
    mirrors = tuple(mirror for _position, mirror in placed)
    security = mapping(top.get("security") or {}, "security", problems,
                        {"allowedInsecureRegistries"})
    allowed = tuple(_patterns(security.get("allowedInsecureRegistries") or [], problems))
    exclude = mapping(top.get("exclude") or {}, "exclude", problems, {"namespaces"})
    excluded = _namespaces(exclude.get("namespaces", list(DEFAULT_EXCLUDED_NAMESPACES)), problems)
    checks = _mirror_checks(top.get("mirrorChecks") or {}, problems, webhook_timeout)
    problems.extend(cycles(placed))
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    return Config(on_invalid=on_invalid, dialect=dialect, defaults=defaults, mirrors=mirrors,
                  allowed_insecure_registries=allowed, exclude_namespaces=frozenset(excluded),
                  mirror_checks=checks, source=source,
                  warnings=tuple(shadowed_hosts(mirrors)))


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
    data = mapping(value, "mirrorChecks", problems, {*_CHECK_KEYS, *_CHECK_COUNTS})
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


def _defaults(value: object, problems: list[str]) -> Defaults:
    data = mapping(value, "defaults", problems, {"scope", "hostAliases", "dnsConfig"})
    scope = choice(data.get("scope", "all"), "defaults.scope", SCOPES, problems)
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


def _patterns(value: object, problems: list[str]) -> list[str]:
    """`host[:port]` or `*.domain[:port]` patterns: a deliberate, tiny language, no regexes."""
    if not isinstance(value, list):
        problems.append(f"security.allowedInsecureRegistries: expected a list, got {kind(value)}")
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
        problems.append(f"exclude.namespaces: expected a list, got {kind(value)}")
        return list(DEFAULT_EXCLUDED_NAMESPACES)
    names = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or dns1123_label_errors(item):
            problems.append(f"exclude.namespaces[{index}]: {shown(item)} is not a namespace "
                            "name")
        else:
            names.append(item)
    return names
