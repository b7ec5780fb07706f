"""The `KCI_*` environment: the virtual-kubelet-level defaults, read once at start-up."""

from __future__ import annotations

from collections.abc import Mapping

from webhook.core.config.model import EnvironmentDefaults
from webhook.core.dialects.kci import parse_dns_config, parse_host_aliases
from webhook.core.errors import AnnotationError, ConfigError
from webhook.core.model import DnsConfig, HostAlias


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
