"""Precedence: the four levels a setting can come from, and how they merge.

    pod annotation > namespace annotation > environment (KCI_*) > config file defaults

A `Layer` is one level's values, parsed once (a pod's per admission, a namespace's per
change, the environment's and config's at start-up). Merging is done here so the rules
live in one place:
- host aliases: merged by hostname, the most specific level wins a hostname;
- DNS config: the most specific level that sets it wins whole;
- HTTP / insecure registry lists and pull secrets: union, most specific first.
- the mirror switch: a namespace's `off` wins (`mirrors_enabled`).

Pod and namespace annotations are read in the active dialect (`webhook.core.dialects`): its
readers yield the canonical values a `Layer` holds, so nothing below this point knows
which vendor's keys they came from.

The platform's pins (the hostnames a pod or namespace may not point elsewhere) are
derived from the environment's and the config's layers in `webhook.core.mutation.pins`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

from webhook.core.config import Config, Defaults, EnvironmentDefaults
from webhook.core.dialects import (
    ALL_KEYS,
    DEFAULT_DIALECT,
    DIALECT_KEY,
    DIALECTS,
    Dialect,
    RegistryReader,
    chosen_dialect,
    parse_dialect,
)
from webhook.core.errors import AnnotationError
from webhook.core.model import DnsConfig, HostAlias
from webhook.core.values.keys import IMAGE_PULL_SECRETS, MIRRORS_SWITCH
from webhook.core.values.lists import parse_mirrors_switch, parse_name_list

EMPTY_VALUE = "is empty; remove the annotation or give a value"

# Annotations of any dialect a pod may carry (what a re-admission compares), and those a
# Namespace may carry besides.
POD_KEYS = (*ALL_KEYS, MIRRORS_SWITCH)
NAMESPACE_KEYS = (*POD_KEYS, IMAGE_PULL_SECRETS, DIALECT_KEY)

Reader = Callable[[str, str], object]  # (raw value, level) → canonical value


def _readers(dialect: Dialect) -> dict[str, tuple[str, Reader]]:
    """key → (Layer field, reader): the dialect's keys, then the webhook's own."""
    readers: dict[str, tuple[str, Reader]] = {}
    registries = dialect.read_registries
    for field, key in (("http_registries", dialect.http_key),
                       ("insecure_registries", dialect.insecure_key)):
        if key is not None:
            readers[key] = (field, partial(_registries, read=registries, key=key))
    hosts, dns = dialect.read_hosts, dialect.read_dns
    if dialect.hosts_key is not None and hosts is not None:
        readers[dialect.hosts_key] = ("host_aliases", lambda raw, level: hosts(raw, level=level))
    if dialect.dns_key is not None and dns is not None:
        readers[dialect.dns_key] = ("dns_config", lambda raw, level: dns(raw, level=level))
    readers[MIRRORS_SWITCH] = ("mirrors_on",
                               lambda raw, level: parse_mirrors_switch(raw, level=level))
    readers[IMAGE_PULL_SECRETS] = ("pull_secrets", partial(_names, key=IMAGE_PULL_SECRETS))
    readers[DIALECT_KEY] = ("dialect", lambda raw, level: parse_dialect(raw, level=level))
    return readers


def _registries(raw: str, level: str, *, read: RegistryReader, key: str) -> tuple[str, ...]:
    return read(raw, key=key, level=level)


def _names(raw: str, level: str, *, key: str) -> tuple[str, ...]:
    return parse_name_list(raw, key=key, level=level)


_READERS = {name: _readers(d) for name, d in DIALECTS.items()}
_POD_KEYS = {name: (*d.annotation_keys(), MIRRORS_SWITCH) for name, d in DIALECTS.items()}
_NAMESPACE_KEYS = {name: (*keys, IMAGE_PULL_SECRETS, DIALECT_KEY)
                   for name, keys in _POD_KEYS.items()}


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
    invalid: tuple[str, ...] = ()   # the keys whose values gave `problems`
    # A Namespace's own: the dialect it names (None: the config's), the dialect its
    # values were read in, and its raw annotations, to read them again in another.
    dialect: str | None = None
    read_as: str = DEFAULT_DIALECT
    source: tuple[tuple[str, str], ...] = ()


def layer_from_annotations(annotations: Mapping[str, object], *, level: str,
                           dialect: Dialect = DIALECTS[DEFAULT_DIALECT],
                           keys: Sequence[str] | None = None) -> Layer:
    """Parse `dialect`'s annotations among `annotations`; invalid ones become `problems`.

    Pods of one Deployment carry the same values: a layer is a pure function of them,
    so it is remembered (keyed on the dialect and the raw strings, bounded)."""
    if keys is None:
        keys = _POD_KEYS[dialect.name]
    values = tuple(annotations.get(key) for key in keys)
    if values.count(None) == len(values):
        return _empty_layer(level, dialect.name)
    if all(v is None or isinstance(v, str) for v in values):
        return _cached_layer(level, dialect.name, tuple(keys), values)
    return _parse_layer(dict(zip(keys, values, strict=True)), level=level,
                        dialect=dialect.name, keys=keys)


@functools.lru_cache(maxsize=64)
def _empty_layer(level: str, dialect: str) -> Layer:
    return Layer(level=level, read_as=dialect)


@functools.lru_cache(maxsize=2048)
def _cached_layer(level: str, dialect: str, keys: tuple[str, ...],
                  values: tuple[str | None, ...]) -> Layer:
    return _parse_layer(dict(zip(keys, values, strict=True)), level=level, dialect=dialect,
                        keys=keys)


def _parse_layer(annotations: Mapping[str, object], *, level: str, dialect: str,
                 keys: Sequence[str]) -> Layer:
    problems: list[str] = []
    invalid: list[str] = []
    values: dict[str, object] = {}
    readers = _READERS[dialect]
    for key in keys:
        raw = annotations.get(key)
        if raw is None or key not in readers:
            continue
        if not isinstance(raw, str):
            problems.append(f"{key} ({level}): value must be a string")
            invalid.append(key)
            continue
        if not raw.strip():
            # One rule for every key and level: an empty value is a mistake (a template
            # that rendered nothing), never a silent "unset" nor an empty list.
            problems.append(f"{key} ({level}): {EMPTY_VALUE}")
            invalid.append(key)
            continue
        field, read = readers[key]
        try:
            values[field] = read(raw, level)
        except AnnotationError as exc:
            problems.extend(exc.problems)
            invalid.append(key)
    return Layer(level=level, problems=tuple(problems), invalid=tuple(invalid),
                 read_as=dialect, **values)  # type: ignore[arg-type]


def namespace_layer(name: str, annotations: Mapping[str, object],
                    default_dialect: str = DEFAULT_DIALECT) -> Layer:
    """A Namespace's defaults, read in the dialect it names, else in `default_dialect`.

    Parse once per change of the Namespace, not per pod."""
    dialect = chosen_dialect(annotations.get(DIALECT_KEY)) or default_dialect
    layer = layer_from_annotations(annotations, level=f"namespace {name}",
                                   dialect=DIALECTS[dialect], keys=_NAMESPACE_KEYS[dialect])
    source = tuple((key, value) for key, value in annotations.items()
                   if key in NAMESPACE_KEYS and isinstance(value, str))
    return replace(layer, source=source)


def namespace_layer_as(layer: Layer, dialect: Dialect) -> Layer:
    """`layer` (a Namespace's) read again in `dialect`, when it was read in another: the
    config's default dialect changed since, or a preview asks for another."""
    if layer.read_as == dialect.name:
        return layer
    again = layer_from_annotations(dict(layer.source), level=layer.level, dialect=dialect,
                                   keys=_NAMESPACE_KEYS[dialect.name])
    return replace(again, source=layer.source)


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


def mirrors_enabled(pod_layer: Layer, ns_layer: Layer | None) -> bool:
    """A namespace that says off wins: a pod may not turn rewriting back on."""
    if ns_layer is not None and ns_layer.mirrors_on is False:
        return False
    return pod_layer.mirrors_on is not False


def effective_dns(layers: Iterable[Layer]) -> tuple[DnsConfig | None, str]:
    """The DNS config of the most specific layer that sets one, and that layer's level."""
    for layer in layers:
        if layer.dns_config is not None:
            return layer.dns_config, layer.level
    return None, ""


def union(lists: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """Ordered union: first occurrence wins its position."""
    return tuple(dict.fromkeys(item for items in lists for item in items))
