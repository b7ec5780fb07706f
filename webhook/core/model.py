"""The canonical values the webhook works on: host aliases and a DNS config.

Plain frozen data, whatever dialect or level a value came in: dialects read their vendor's
format into these and render them back, the mutation merges them. The `*_spec` functions
give and take a Pod's own `spec.hostAliases` / `spec.dnsConfig` form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def host_aliases_to_spec(aliases: tuple[HostAlias, ...]) -> list[dict[str, Any]]:
    """The Pod's `spec.hostAliases` form (also the annotation's JSON form)."""
    return [{"ip": a.ip, "hostnames": list(a.hostnames)} for a in aliases]


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
