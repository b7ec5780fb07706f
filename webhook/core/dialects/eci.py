"""Alibaba Cloud Elastic Container Instance (ECI).

- `k8s.aliyun.com/plain-http-registry`, `k8s.aliyun.com/insecure-registry`: comma lists
  of `host[:port]`, the KCI grammar ("Pull an image from a self-managed image repository").
- `k8s.aliyun.com/eci-custom-hosts`: the pod's /etc/hosts as a JSON array of
  `{"host": ..., "ip": ...}`, one host per mapping ("Configure hosts for an Elastic
  Container Instance-based pod").
- DNS: ECI documents no annotation; `spec.dnsConfig` carries it.

Host mappings are checked as Kubernetes checks `spec.hostAliases` (an IP address without
leading zeros or zone; a DNS-1123 hostname), so a value ECI would read is one the API
server would accept as host aliases too.
"""

from __future__ import annotations

import ipaddress
from functools import partial

import orjson

from webhook.core.dialects.base import Dialect
from webhook.core.model import HostAlias
from webhook.core.values.checks import (
    is_dns1123_subdomain,
    is_ip,
    mapped_twice,
    not_an_ip,
    not_dns1123,
)
from webhook.core.values.jsontext import json_object, load_json
from webhook.core.values.problems import Problems, expected_string, kind_of

ECI_PLAIN_HTTP_REGISTRY = "k8s.aliyun.com/plain-http-registry"
ECI_INSECURE_REGISTRY = "k8s.aliyun.com/insecure-registry"
ECI_CUSTOM_HOSTS = "k8s.aliyun.com/eci-custom-hosts"

_CHECKS = (("ip", is_ip, not_an_ip), ("host", is_dns1123_subdomain, not_dns1123))


def parse_custom_hosts(raw: str, *, level: str) -> tuple[HostAlias, ...]:
    """Parse an `eci-custom-hosts` value; a host repeated at the same address is folded,
    one given a second address is refused (a reader could take either).

    The result is grouped by IP in first-seen order, the canonical form the other levels
    merge with, so writing it back and reading it again gives the same value."""
    problems = Problems(ECI_CUSTOM_HOSTS, level)
    data = load_json(raw, problems)
    if not isinstance(data, list):
        problems.fail(f"expected a JSON array, got {kind_of(data)}")
    groups: dict[str, list[str]] = {}
    seen: dict[str, tuple[str, str]] = {}
    for i, item in enumerate(data, 1):
        position = f"item {i}"
        mapping = _mapping(item, position, problems)
        if mapping is None:
            continue
        host, ip = mapping
        if host not in seen:
            seen[host] = (ip, position)
            groups.setdefault(ip, []).append(host)
        elif seen[host][0] != ip:
            problems.add(f'{position}: "host"', partial(mapped_twice, host, *seen[host]))
    problems.check()
    return tuple(HostAlias(ip, tuple(hosts)) for ip, hosts in groups.items())


def _mapping(item: object, position: str, problems: Problems) -> tuple[str, str] | None:
    """(host, ip) of one valid mapping; every problem of an invalid one is recorded."""
    obj = json_object(item, ("host", "ip"), position, problems)
    if obj is None:
        return None
    valid = True
    for field, check, complaint in _CHECKS:
        value = obj.get(field)
        if field not in obj:
            problems.add(position, f'"{field}" is required')
        elif not isinstance(value, str):
            problems.add(f'{position}: "{field}"', expected_string(value))
        elif not check(value):
            problems.add(f'{position}: "{field}"', complaint(value))
        else:
            continue
        valid = False
    # One text per address (`FD00:0::1` is `fd00::1`), as in the KCI form.
    return (obj["host"], str(ipaddress.ip_address(obj["ip"]))) if valid else None


def custom_hosts_json(aliases: tuple[HostAlias, ...]) -> str:
    """One `{"host", "ip"}` mapping per hostname, in the aliases' order."""
    return orjson.dumps([{"host": host, "ip": alias.ip}
                         for alias in aliases for host in alias.hostnames]).decode()


ECI = Dialect(
    name="eci", vendor="Alibaba Cloud Elastic Container Instance",
    http_key=ECI_PLAIN_HTTP_REGISTRY, insecure_key=ECI_INSECURE_REGISTRY,
    hosts_key=ECI_CUSTOM_HOSTS,
    read_hosts=parse_custom_hosts, write_hosts=custom_hosts_json,
)
