"""Alibaba Cloud Elastic Container Instance (ECI).

- `k8s.aliyun.com/plain-http-registry`, `k8s.aliyun.com/insecure-registry`: comma lists
  of `host[:port]`, the KCI grammar ("Pull an image from a self-managed image repository").
- `k8s.aliyun.com/eci-custom-hosts`: the pod's /etc/hosts as a JSON array of
  `{"host": ..., "ip": ...}`, one host per mapping ("Configure hosts for an Elastic
  Container Instance-based pod").
- `k8s.aliyun.com/eci-custom-dnsconfig`: DNS as a JSON object whose values are
  comma-separated strings, `{"nameservers":"a,b","searches":"x.com,y","options":"ndots:2,edns0"}`
  ("Configure a custom DNS server for a pod"); at most 2 nameservers.

Host mappings are checked as Kubernetes checks `spec.hostAliases` (an IP address without
leading zeros or zone; a DNS-1123 hostname), and DNS as it checks `spec.dnsConfig`, so a
value ECI would read is one the API server would accept in the pod's own fields too.
"""

from __future__ import annotations

import ipaddress
import re
from functools import partial

import orjson

from webhook.core.dialects.base import Dialect
from webhook.core.model import DnsConfig, DnsOption, HostAlias
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
from webhook.core.values.jsontext import json_object, load_json
from webhook.core.values.problems import Problems, expected_string, kind_of, quoted

ECI_PLAIN_HTTP_REGISTRY = "k8s.aliyun.com/plain-http-registry"
ECI_INSECURE_REGISTRY = "k8s.aliyun.com/insecure-registry"
ECI_CUSTOM_HOSTS = "k8s.aliyun.com/eci-custom-hosts"
ECI_CUSTOM_DNSCONFIG = "k8s.aliyun.com/eci-custom-dnsconfig"

# ECI appends Alibaba Cloud DNS to the pod's nameservers and silently ignores any past
# the second: a third is refused rather than lost. Its limit of 32 search domains is above
# the pod API's (6, 256 characters, on Kubernetes 1.24), which the value is held to, since
# the webhook writes it into spec.dnsConfig as well.
ECI_MAX_NAMESERVERS = 2
_NAMESERVER_LIMIT = " (ECI reads 2 and silently ignores the rest)"
_DNS_FIELDS = ("nameservers", "searches", "options")
_WORD = re.compile(r"[\x21-\x7e]+")   # printable ASCII, no blank

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


def parse_custom_dnsconfig(raw: str, *, level: str) -> DnsConfig:
    """Parse an `eci-custom-dnsconfig` value into the pod's `spec.dnsConfig` shape.

    Each field is one string of comma-separated entries (blanks around an entry ignored;
    an empty string is an empty list). An option is `name` or `name:value`, ECI's
    resolv.conf spelling, read into Kubernetes' `{name, value}` at the first ':'.
    Duplicate nameservers and searches fold, as in the other dialects."""
    problems = Problems(ECI_CUSTOM_DNSCONFIG, level)
    data = load_json(raw, problems)
    if not isinstance(data, dict):
        problems.fail(f"expected a JSON object, got {kind_of(data)}")
    json_object(data, _DNS_FIELDS, "", problems)
    fields = {field: _comma_field(data.get(field), field, problems) for field in _DNS_FIELDS}
    nameservers = kept_valid(fields["nameservers"], valid=is_ip, why_not=not_an_ip,
                             problems=problems)
    searches = kept_valid(fields["searches"], valid=is_search_domain,
                          why_not=not_search_domain, problems=problems)
    options = []
    for where, word in fields["options"]:
        name, colon, value = word.partition(":")
        if not _WORD.fullmatch(word):
            problems.add(where, f"{quoted(word)}: an option is printable ASCII with no blank")
        elif not name:
            problems.add(where, f"option {quoted(word)} has no name")
        else:
            options.append(DnsOption(name, value if colon else None))
    dns = DnsConfig(nameservers, searches, tuple(options))
    check_dns_limits(dns, problems, "", max_nameservers=ECI_MAX_NAMESERVERS,
                     why=_NAMESERVER_LIMIT)
    problems.check()
    return dns


def _comma_field(value: object, field: str, problems: Problems) -> list[tuple[str, str]]:
    """(position, entry) of one field's comma-separated string; null means absent."""
    if value is None:
        return []
    if not isinstance(value, str):
        hint = ' (ECI\'s format is one comma-separated string: "a,b")' \
            if isinstance(value, list | tuple) else ""
        problems.add(f'"{field}"', f"expected a string, got {kind_of(value)}{hint}")
        return []
    if not value.strip():
        return []
    entries = []
    for i, part in enumerate(value.split(","), 1):
        entry = part.strip()
        if entry:
            entries.append((f'"{field}" entry {i}', entry))
        else:
            problems.add(f'"{field}" entry {i}', "is empty (remove the extra comma)")
    return entries


def unwritable_option(option: DnsOption) -> str | None:
    """Why `option` cannot be an entry of the `options` string that reads back as itself,
    or None. Options reach the written value from the pod's own `spec.dnsConfig` (any
    text) and from JSON defaults: a comma there would split one option into two."""
    if not _WORD.fullmatch(option.name) or ":" in option.name or "," in option.name:
        return "an ECI option name is printable ASCII with no blank, ',' or ':'"
    if option.value and (not _WORD.fullmatch(option.value) or "," in option.value):
        return "an ECI option value is printable ASCII with no blank or ','"
    return None


def custom_dnsconfig_json(dns: DnsConfig) -> str:
    """The fields that have entries, each one comma-separated string, in ECI's order."""
    fields = {"nameservers": ",".join(dns.nameservers), "searches": ",".join(dns.searches),
              "options": ",".join(o.name if o.value is None else f"{o.name}:{o.value}"
                                  for o in dns.options)}
    return orjson.dumps({field: text for field, text in fields.items() if text}).decode()


ECI = Dialect(
    name="eci", vendor="Alibaba Cloud Elastic Container Instance",
    http_key=ECI_PLAIN_HTTP_REGISTRY, insecure_key=ECI_INSECURE_REGISTRY,
    hosts_key=ECI_CUSTOM_HOSTS, dns_key=ECI_CUSTOM_DNSCONFIG,
    read_hosts=parse_custom_hosts, write_hosts=custom_hosts_json,
    read_dns=parse_custom_dnsconfig, write_dns=custom_dnsconfig_json,
    unwritable_option=unwritable_option, max_nameservers=ECI_MAX_NAMESERVERS,
)
