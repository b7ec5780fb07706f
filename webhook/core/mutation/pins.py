"""The platform's pins: the hostnames a pod or namespace may not point elsewhere.

Some hostnames are the platform's: those of the configured mirrors, and those the config
defaults or `KCI_HOST_ALIASES` alias. Images are rewritten to them and pull secrets sent
there, so the platform pins each to the address it gives it (None: DNS's own), and the
rules (`webhook.core.mutation.rules`) refuse any value that moves one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping

from webhook.core.config import Config, EnvironmentDefaults, registry_key
from webhook.core.model import HostAlias
from webhook.core.mutation.layers import (
    Layer,
    config_layer,
    environment_layer,
    group_by_ip,
    merge_host_aliases,
)


class Pins(Mapping[str, "str | None"]):
    """Pinned hostname → the address the platform gives it (None: DNS's own). Immutable
    and hashable, so what is judged against it can be remembered (`rules.restricted`)."""

    __slots__ = ("_addresses", "_hash")

    def __init__(self, addresses: Iterable[tuple[str, str | None]] = ()) -> None:
        self._addresses: dict[str, str | None] = dict(addresses)
        self._hash = hash(frozenset(self._addresses.items()))

    def __getitem__(self, hostname: str) -> str | None:
        return self._addresses[hostname]

    def __contains__(self, hostname: object) -> bool:
        return hostname in self._addresses

    def __iter__(self) -> Iterator[str]:
        return iter(self._addresses)

    def __len__(self) -> int:
        return len(self._addresses)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Pins):
            return self._addresses == other._addresses
        return super().__eq__(other)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Pins({self._addresses!r})"


# When nothing aliases a name, the pins are not looked up: one shared value.
NO_PINS = Pins()


@functools.lru_cache(maxsize=8)
def platform_pins(config: Config, env: EnvironmentDefaults) -> Pins:
    """The platform's pins: the hosts of the configured mirrors, and every hostname the
    environment or the config defaults alias (at the address the more specific of the two
    gives it). A pure function of frozen values, remembered: a server has one environment
    and one config at a time, and asks on every UPDATE."""
    pins: dict[str, str | None] = {registry_key(m.host)[0]: None for m in config.mirrors}
    for alias in merge_host_aliases([environment_layer(env), config_layer(config)]):
        pins.update(dict.fromkeys(alias.hostnames, alias.ip))
    return Pins(pins.items())


def pulled_pins(pins: Pins, domains: Iterable[str]) -> tuple[HostAlias, ...]:
    """The platform's aliases for the registries a pod pulls from (`domains`: the
    registries of its images): the pins that give an address. Whatever `defaults.scope`
    says, a pod that pulls from such a host gets its alias, or its own resolver could
    answer for the host that images and pull secrets go to."""
    ip_of: dict[str, str] = {}
    for domain in domains:
        host = registry_key(domain)[0]
        ip = pins.get(host)
        if ip is not None:
            ip_of.setdefault(host, ip)
    return group_by_ip(ip_of.items())


def pin_layer(pins: Pins, domains: Iterable[str]) -> Layer:
    """`pulled_pins` as a layer of their own, below the pod's and the namespace's (which
    may not re-point them anyway): what a pod outside `defaults.scope` still gets."""
    return Layer(level="platform", host_aliases=pulled_pins(pins, domains) or None)
