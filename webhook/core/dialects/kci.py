"""Kingsoft Cloud KCI: the webhook's original annotations and their JSON grammar.

`kci-host-aliases` and `kci-dns-config` hold the Pod's own `spec.hostAliases` /
`spec.dnsConfig` as JSON text; the same grammar reads the virtual kubelet's
`KCI_HOST_ALIASES` / `KCI_DNS_CONFIG` and, already decoded, the config file's defaults.
The registry lists are the shared comma lists (webhook.core.values.lists).
"""

from __future__ import annotations

import ipaddress
from functools import partial

import orjson

from webhook.core.dialects.base import Dialect
from webhook.core.model import (
    DnsConfig,
    DnsOption,
    HostAlias,
    dns_config_to_spec,
    host_aliases_to_spec,
)
from webhook.core.values.checks import (
    check_dns_limits,
    is_dns1123_subdomain,
    is_ip,
    is_search_domain,
    kept_valid,
    mapped_twice,
    not_an_ip,
    not_dns1123,
    not_search_domain,
)
from webhook.core.values.jsontext import json_object, json_strings, load_json
from webhook.core.values.keys import (
    KCI_DNS_CONFIG,
    KCI_HOST_ALIASES,
    KCI_HTTP_REGISTRY,
    KCI_INSECURE_REGISTRY,
)
from webhook.core.values.problems import Problems, expected_string, kind_of


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
    for where, name in json_strings(obj.get("hostnames"), f'{position}: "hostnames"', problems,
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


def host_aliases_json(aliases: tuple[HostAlias, ...]) -> str:
    return orjson.dumps(host_aliases_to_spec(aliases)).decode()


def parse_dns_config(raw: str, *, level: str) -> DnsConfig:
    """Parse a `kci-dns-config` value (or `KCI_DNS_CONFIG`), JSON text."""
    return dns_config_from_data(load_json(raw, Problems(KCI_DNS_CONFIG, level)), level=level)


def dns_config_from_data(data: object, *, level: str) -> DnsConfig:
    """Validate an already-decoded DNS config; duplicate nameservers and searches fold."""
    problems = Problems(KCI_DNS_CONFIG, level)
    if not isinstance(data, dict):
        problems.fail(f"expected a JSON object, got {kind_of(data)}")
    json_object(data, ("nameservers", "searches", "options"), "", problems)
    nameservers = kept_valid(
        json_strings(data.get("nameservers"), '"nameservers"', problems, required=False),
        valid=is_ip, why_not=not_an_ip, problems=problems)
    searches = kept_valid(
        json_strings(data.get("searches"), '"searches"', problems, required=False),
        valid=is_search_domain, why_not=not_search_domain, problems=problems)
    options = _dns_options(data.get("options"), problems)
    dns = DnsConfig(nameservers, searches, options)
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


def dns_config_json(dns: DnsConfig) -> str:
    return orjson.dumps(dns_config_to_spec(dns)).decode()


KCI = Dialect(
    name="kci", vendor="Kingsoft Cloud KCI",
    http_key=KCI_HTTP_REGISTRY, insecure_key=KCI_INSECURE_REGISTRY,
    hosts_key=KCI_HOST_ALIASES, dns_key=KCI_DNS_CONFIG,
    read_hosts=parse_host_aliases, write_hosts=host_aliases_json,
    read_dns=parse_dns_config, write_dns=dns_config_json,
)
