"""Precedence: the four levels a setting can come from, and how they merge.

    pod annotation > namespace annotation > environment (KCI_*) > config file defaults

A `Layer` is one level's values, parsed once (a pod's per admission, a namespace's per
change, the environment's and config's at start-up). Merging is done here so the rules
live in one place:
- host aliases: merged by hostname, the most specific level wins a hostname;
- DNS config: the most specific level that sets it wins whole;
- HTTP / insecure registry lists and pull secrets: union, most specific first.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from webhook.annotations import (
    IMAGE_PULL_SECRETS,
    KCI_DNS_CONFIG,
    KCI_HOST_ALIASES,
    KCI_HTTP_REGISTRY,
    KCI_INSECURE_REGISTRY,
    MIRRORS_SWITCH,
    DnsConfig,
    HostAlias,
    parse_dns_config,
    parse_host_aliases,
    parse_mirrors_switch,
    parse_name_list,
    parse_registry_list,
)
from webhook.config import Config, Defaults, EnvironmentDefaults
from webhook.errors import AnnotationError

EMPTY_VALUE = "is empty; remove the annotation or give a value"

# Annotations every level understands, and those only a Namespace may carry.
POD_KEYS = (KCI_HOST_ALIASES, KCI_DNS_CONFIG, KCI_HTTP_REGISTRY, KCI_INSECURE_REGISTRY,
            MIRRORS_SWITCH)
NAMESPACE_KEYS = (*POD_KEYS, IMAGE_PULL_SECRETS)


@dataclass(frozen=True, slots=True)
class Layer:
    """The values one level sets. `None` / empty means "not set here".

    `problems` are the messages for values that were invalid and therefore ignored; what
    happens to them (denial, warning, start-up failure) depends on the level.
    """

    level: str
    host_aliases: tuple[HostAlias, ...] | None = None
    dns_config: DnsConfig | None = None
    http_registries: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    mirrors_on: bool | None = None
    pull_secrets: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def layer_from_annotations(annotations: Mapping[str, object], *, level: str,
                           keys: Sequence[str] = POD_KEYS) -> Layer:
    """Parse the KCI annotations among `annotations`; invalid ones become `problems`.

    Pods of one Deployment carry the same values: a layer is a pure function of them,
    so it is remembered (keyed on the raw strings, bounded)."""
    values = tuple(annotations.get(key) for key in keys)
    if values.count(None) == len(values):
        return _empty_layer(level)
    if all(v is None or isinstance(v, str) for v in values):
        return _cached_layer(level, tuple(keys), values)
    return _parse_layer(dict(zip(keys, values, strict=True)), level=level, keys=keys)


@functools.lru_cache(maxsize=64)
def _empty_layer(level: str) -> Layer:
    return Layer(level=level)


@functools.lru_cache(maxsize=2048)
def _cached_layer(level: str, keys: tuple[str, ...], values: tuple[str | None, ...]) -> Layer:
    return _parse_layer(dict(zip(keys, values, strict=True)), level=level, keys=keys)


def _parse_layer(annotations: Mapping[str, object], *, level: str,
                 keys: Sequence[str]) -> Layer:
    problems: list[str] = []
    values: dict[str, object] = {}
    for key in keys:
        raw = annotations.get(key)
        if raw is None:
            continue
        if not isinstance(raw, str):
            problems.append(f"{key} ({level}): value must be a string")
            continue
        if not raw.strip():
            # One rule for every key and level: an empty value is a mistake (a template
            # that rendered nothing), never a silent "unset" nor an empty list.
            problems.append(f"{key} ({level}): {EMPTY_VALUE}")
            continue
        try:
            values[key] = _parse(key, raw, level)
        except AnnotationError as exc:
            problems.extend(exc.problems)
    return Layer(
        level=level,
        host_aliases=values.get(KCI_HOST_ALIASES),  # type: ignore[arg-type]
        dns_config=values.get(KCI_DNS_CONFIG),  # type: ignore[arg-type]
        http_registries=values.get(KCI_HTTP_REGISTRY, ()),  # type: ignore[arg-type]
        insecure_registries=values.get(KCI_INSECURE_REGISTRY, ()),  # type: ignore[arg-type]
        mirrors_on=values.get(MIRRORS_SWITCH),  # type: ignore[arg-type]
        pull_secrets=values.get(IMAGE_PULL_SECRETS, ()),  # type: ignore[arg-type]
        problems=tuple(problems),
    )


def _parse(key: str, raw: str, level: str) -> object:
    if key == KCI_HOST_ALIASES:
        return parse_host_aliases(raw, level=level)
    if key == KCI_DNS_CONFIG:
        return parse_dns_config(raw, level=level)
    if key == MIRRORS_SWITCH:
        return parse_mirrors_switch(raw, level=level)
    if key == IMAGE_PULL_SECRETS:
        return parse_name_list(raw, key=key, level=level)
    return parse_registry_list(raw, key=key, level=level)


def namespace_layer(name: str, annotations: Mapping[str, object]) -> Layer:
    """A Namespace's defaults. Parse once per change of the Namespace, not per pod."""
    return layer_from_annotations(annotations, level=f"namespace {name}", keys=NAMESPACE_KEYS)


@functools.lru_cache(maxsize=8)
def environment_layer(env: EnvironmentDefaults) -> Layer:
    return Layer(level="environment", host_aliases=env.host_aliases or None,
                 dns_config=env.dns_config)


def config_layer(config: Config) -> Layer:
    return _defaults_layer(config.defaults)


@functools.lru_cache(maxsize=8)
def _defaults_layer(defaults: Defaults) -> Layer:
    return Layer(level="config", host_aliases=defaults.host_aliases or None,
                 dns_config=defaults.dns_config)


def merge_host_aliases(layers: Iterable[Layer]) -> tuple[HostAlias, ...]:
    """Merge by hostname, most specific layer first; group hostnames by IP, first-seen order.

    Canonical grouping makes the merge idempotent: merging a merged result changes nothing.
    """
    ip_of: dict[str, str] = {}
    for layer in layers:
        for alias in layer.host_aliases or ():
            for hostname in alias.hostnames:
                ip_of.setdefault(hostname, alias.ip)
    return group_by_ip(ip_of.items())


def group_by_ip(pairs: Iterable[tuple[str, str]]) -> tuple[HostAlias, ...]:
    """(hostname, ip) pairs → host aliases, one per IP, in first-seen order."""
    groups: dict[str, list[str]] = {}
    for hostname, ip in pairs:
        groups.setdefault(ip, []).append(hostname)
    return tuple(HostAlias(ip=ip, hostnames=tuple(names)) for ip, names in groups.items())


def effective_dns(layers: Iterable[Layer]) -> tuple[DnsConfig | None, str]:
    """The DNS config of the most specific layer that sets one, and that layer's level."""
    for layer in layers:
        if layer.dns_config is not None:
            return layer.dns_config, layer.level
    return None, ""


def union(lists: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """Ordered union: first occurrence wins its position."""
    return tuple(dict.fromkeys(item for items in lists for item in items))
