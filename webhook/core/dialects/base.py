"""What a dialect is: one vendor's spelling of the registry, host and DNS annotations.

A dialect only reads and writes. Each reader turns the vendor's value into the canonical
model the rest of the webhook works on (registry hosts, `HostAlias`es, a `DnsConfig`) and
names the vendor's key in every message; each writer renders that model back in the
vendor's format. Precedence, merging, mirror-driven entries and the security rules never
see a dialect, so they are the same in all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from webhook.core.model import DnsConfig, DnsOption, HostAlias
from webhook.core.values.lists import parse_registry_list, registry_list_text

# "Every registry" (Tencent's `all`, the only vendor word for it). No registry host can be
# spelt `*`, so the token cannot be confused with an entry a dialect without `all` accepts.
ALL_REGISTRIES = "*"


class RegistryReader(Protocol):
    def __call__(self, raw: str, *, key: str, level: str) -> tuple[str, ...]: ...


class HostsReader(Protocol):
    def __call__(self, raw: str, *, level: str) -> tuple[HostAlias, ...]: ...


class DnsReader(Protocol):
    def __call__(self, raw: str, *, level: str) -> DnsConfig: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """One vendor's annotations; a key of None means the vendor documents none for it.

    Without a hosts or DNS key the effective values still reach the pod through its own
    `spec.hostAliases` / `spec.dnsConfig`, which the webhook writes in every dialect.
    """

    name: str
    vendor: str
    http_key: str | None = None
    insecure_key: str | None = None
    hosts_key: str | None = None
    dns_key: str | None = None
    read_registries: RegistryReader = parse_registry_list
    write_registries: Callable[[tuple[str, ...]], str] = registry_list_text
    read_hosts: HostsReader | None = None
    write_hosts: Callable[[tuple[HostAlias, ...]], str] | None = None
    read_dns: DnsReader | None = None
    write_dns: Callable[[DnsConfig], str] | None = None
    # Why a DNS option cannot be written so that `read_dns` gives it back (None: it can);
    # absent when the dialect's format can hold any option (JSON).
    unwritable_option: Callable[[DnsOption], str | None] | None = None
    # The vendor's own limits, below the pod API's (None: none documented): the most
    # nameservers its DNS key is read with, the most entries in each registry list.
    max_nameservers: int | None = None
    max_registries: int | None = None

    def roles(self) -> tuple[tuple[str, str | None], ...]:
        """(role, key) for the four things a dialect can say, in a fixed order (the order
        in which a pod's problems are reported)."""
        return (("hosts", self.hosts_key), ("dns", self.dns_key),
                ("http", self.http_key), ("insecure", self.insecure_key))

    def cannot_say(self, hosts: str, need: str) -> str:
        """The warning for registries that need plain HTTP or skipped verification where
        this dialect has no key to say so: the pod is still admitted, its pulls may fail."""
        return (f"{hosts}: needs {need}, but the {self.name} dialect ({self.vendor}) has no "
                "annotation to say so; pulls from it may fail")

    def annotation_keys(self) -> tuple[str, ...]:
        return tuple(key for _role, key in self.roles() if key is not None)
