# Over 300 lines: every TLS and pin rule in one place, so no path applies one and misses another.
"""Platform rules that nothing a pod author controls may switch off. Pure functions of the
parsed values; `webhook.core.mutation.create` (CREATE) and `webhook.core.mutation.update`
(UPDATE) apply them.

- TLS may not be weakened (`kci-http-registry`, `kci-insecure-registry`) for a registry
  that `security.allowedInsecureRegistries` does not allow, nor for a configured mirror's
  host beyond what its config declares; another dialect's HTTP / insecure key on a pod is
  held to the same rules (`foreign_registry_problems`). Registries are compared as
  `webhook.core.config.registry_key`s, never as text.
- The platform's pins (`webhook.core.mutation.pins`: the mirrors' hosts and the names
  the config defaults or `KCI_HOST_ALIASES` alias) may not be aliased to another
  address, in any dialect's hosts key or in `spec.hostAliases`; and an UPDATE may not
  drop the platform's alias of a host the pod pulls from (`dropped_pins`).
- `kci-webhook/original-images` holds what the webhook saw, and an UPDATE cannot change
  it (`webhook.core.mutation.originals`).

A pod that breaks a rule is refused whatever `onInvalid` says; a namespace loses only the
entry that breaks it, with a warning.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from webhook.core.config import (
    HTTP,
    INSECURE,
    Config,
    MirrorDeclaration,
    RegistryKey,
    registry_allowed,
    registry_key,
)
from webhook.core.dialects import (
    ALL_REGISTRIES,
    Dialect,
    foreign_host_claims,
    foreign_registry_claims,
)
from webhook.core.model import HostAlias
from webhook.core.mutation.images import Pod
from webhook.core.mutation.layers import Layer
from webhook.core.mutation.pins import Pins
from webhook.core.values.checks import ip_key
from webhook.core.values.keys import KCI_HOST_ALIASES

# --- the rules ---------------------------------------------------------------------


def restricted(layer: Layer, config: Config, pins: Pins,
               dialect: Dialect, *, remember: bool = True) -> tuple[Layer, list[str]]:
    """The layer without the entries that would switch a platform rule off, and why each
    went. A pod's problems refuse it; a namespace's entries are dropped one by one, so one
    bad entry never costs its namespace the entries that are allowed.

    The rules: TLS may not be weakened (http / insecure) for a registry that
    `security.allowedInsecureRegistries` does not allow, nor for a configured mirror's
    host beyond what its own config declares (its credentials go there); and a pinned
    hostname (see `webhook.core.mutation.pins`) may not be aliased to another address.
    Messages name the keys of `dialect`, the one the layer was read in. `remember`: the
    layer recurs (a pod's or namespace's cached layer), so keep the result."""
    patterns = config.allowed_insecure_registries
    if not ((patterns or config.mirrors) and (layer.http_registries
                                              or layer.insecure_registries)) and not (
            pins and _names_a_pinned_host(layer.host_aliases, pins)):
        return layer, []   # the common case: nothing a rule could refuse
    if not remember:   # a layer built for one request only
        return _judged(layer, config, pins, dialect)
    # Pods of one workload carry the same annotations, hence the same (cached) layer:
    # judge it once per layer, config, pins and dialect (all frozen, hashable values).
    judged, problems = _remembered(layer, config, pins, dialect)
    return judged, list(problems)


@functools.lru_cache(maxsize=4096)
def _remembered(layer: Layer, config: Config, pins: Pins, dialect: Dialect
                ) -> tuple[Layer, tuple[str, ...]]:
    judged, problems = _judged(layer, config, pins, dialect)
    return judged, tuple(problems)


def _judged(layer: Layer, config: Config, pins: Pins, dialect: Dialect
            ) -> tuple[Layer, list[str]]:
    problems: list[str] = []
    patterns = config.allowed_insecure_registries
    declared = config.facts.declarations
    http, insecure = (
        _allowed_registries(entries, patterns, declared, kind, problems,
                            f"{key or kind} ({layer.level})")
        for kind, key, entries in (
            (HTTP, dialect.http_key, layer.http_registries),
            (INSECURE, dialect.insecure_key, layer.insecure_registries)))
    aliases = layer.host_aliases
    if pins and _names_a_pinned_host(aliases, pins):
        kept = []
        for alias in aliases or ():
            names = tuple(n for n in alias.hostnames
                          if not _repoints(n, alias.ip, pins, problems,
                                           f"{dialect.hosts_key or KCI_HOST_ALIASES} "
                                           f"({layer.level})"))
            if names == alias.hostnames:
                kept.append(alias)
            elif names:
                kept.append(HostAlias(ip=alias.ip, hostnames=names))
        aliases = tuple(kept) or None
    if not problems:
        return layer, problems
    return replace(layer, http_registries=http, insecure_registries=insecure,
                   host_aliases=aliases), problems


def _names_a_pinned_host(aliases: tuple[HostAlias, ...] | None, pins: Pins) -> bool:
    for alias in aliases or ():
        for hostname in alias.hostnames:
            if hostname in pins:
                return True
    return False


def _allowed_registries(registries: tuple[str, ...], patterns: tuple[str, ...],
                        declared: Mapping[RegistryKey, MirrorDeclaration], kind: str,
                        problems: list[str], where: str) -> tuple[str, ...]:
    if not registries or not (patterns or declared):
        return registries
    allowed = []
    for registry in registries:
        by_config = declared.get(registry_key(registry))
        problem = (_all_problem(where, patterns, declared, kind) if registry == ALL_REGISTRIES
                   else disallowed_registry(where, registry, patterns) if by_config is None
                   else None if by_config.says(kind)
                   else f"{where}: registry {registry!r} is a configured mirror's host "
                        f"({by_config.host}), which the config does not declare so; TLS may "
                        "not be weakened for it (its pull secret goes there)")
        if problem:
            problems.append(problem)
        else:
            allowed.append(registry)
    return tuple(allowed)


def disallowed_registry(where: str, registry: str, patterns: tuple[str, ...]) -> str | None:
    """Why `registry` may not be declared HTTP / insecure (`where`: "KEY (level)"), or
    None. "Every registry" is allowed only where nothing is restricted."""
    if registry == ALL_REGISTRIES:
        return (f"{where}: 'all' (every registry) is not allowed while "
                "security.allowedInsecureRegistries restricts which registries TLS may be "
                "weakened for") if patterns else None
    if not registry_allowed(registry, patterns):
        return (f"{where}: registry {registry!r} is not in security.allowedInsecureRegistries; "
                "TLS may not be weakened for it")
    return None


def _all_problem(where: str, patterns: tuple[str, ...],
                 declared: Mapping[RegistryKey, MirrorDeclaration], kind: str) -> str | None:
    """'all' weakens TLS for every registry, the configured mirrors included: allowed only
    where nothing is restricted and every mirror's own config declares the same."""
    problem = disallowed_registry(where, ALL_REGISTRIES, patterns)
    if problem:
        return problem
    # Skipping verification means nothing for a mirror its config declares plain HTTP.
    undeclared = sorted({by_config.host for by_config in declared.values()
                         if not by_config.says(kind)
                         and not (kind == INSECURE and by_config.http)})
    if undeclared:
        return (f"{where}: 'all' (every registry) would weaken TLS for the configured mirror "
                f"{undeclared[0]!r} too, which the config does not declare so (its pull secret "
                "goes there); list the registries instead")
    return None


def declared_mirror_hosts(config: Config) -> tuple[frozenset[RegistryKey],
                                                   frozenset[RegistryKey]]:
    """The mirror hosts (as `registry_key`s) the config itself declares plain HTTP, and
    those it declares TLS without verification: what the webhook writes into a pod's
    lists, hence never the pod author's own declaration (`Config.facts`)."""
    return config.facts.http_hosts, config.facts.insecure_hosts


def foreign_registry_problems(annotations: Mapping[str, Any], config: Config,
                              dialect: Dialect, *,
                              exempt: Mapping[str, Any] | None = None) -> list[str]:
    """Another dialect's HTTP / insecure key on the pod is held to the same rules as the
    active dialect's (the allow-list, the mirrors' own declarations, 'all'): another
    vendor's virtual kubelet would act on it, and which dialect is active (the Namespace's
    annotation, perhaps not yet seen) must not decide what a pod may weaken. Entries
    already in `exempt` (the stored pod's annotations, on UPDATE) are not judged again."""
    patterns = config.allowed_insecure_registries
    if not (patterns or config.mirrors):
        return []            # no rule to hold them to (and the common case: no such key)
    claims = foreign_registry_claims(annotations, dialect)
    if not claims:
        return []
    before = {key: {registry_key(r) for r in registries or ()}
              for key, _kind, registries in foreign_registry_claims(exempt, dialect)
              } if exempt else {}
    declared = config.facts.declarations
    problems: list[str] = []
    for key, kind, registries in claims:
        where = f"{key} (pod)"
        if registries is None:
            problems.append(f"{where}: another dialect's registry list that cannot be read, "
                            "so it cannot be held to the rules on weakening TLS")
            continue
        old = before.get(key, set())
        _allowed_registries(tuple(r for r in registries if registry_key(r) not in old),
                            patterns, declared, kind, problems, where)
    return problems


def foreign_alias_problems(annotations: Mapping[str, Any], pins: Pins,
                           dialect: Dialect, *,
                           exempt: Mapping[str, Any] | None = None) -> list[str]:
    """Another dialect's hosts key on the pod may not re-point a pin either:
    that vendor's virtual kubelet would write it into the instance's hosts file. Mappings
    already in `exempt` (the stored pod's annotations, on UPDATE) are not judged again."""
    if not pins:
        return []
    claims = foreign_host_claims(annotations, dialect)
    if not claims:
        return []
    before = {(key, name, ip_key(alias.ip))
              for key, aliases in foreign_host_claims(exempt, dialect)
              for alias in aliases or () for name in alias.hostnames} if exempt else set()
    problems: list[str] = []
    for key, aliases in claims:
        where = f"{key} (pod)"
        if aliases is None:
            problems.append(f"{where}: another dialect's host entries that cannot be read, "
                            "so they cannot be held to the platform's hostnames")
            continue
        for alias in aliases:
            for name in alias.hostnames:
                if (key, name, ip_key(alias.ip)) not in before:
                    _repoints(name, alias.ip, pins, problems, where)
    return problems


def declared_by_author(layer: Layer, config: Config, *, besides: Layer | None) -> Layer:
    """A pod's registry lists without the entries the platform puts there itself: those of
    `besides` (the namespace's, already held to the rules; on UPDATE, the stored pod's,
    judged when it was admitted) and the hosts of mirrors configured as HTTP or insecure.
    Reinvocation hands the webhook its own output, whose lists carry those entries written
    back: they are neither the author's typo nor the author weakening TLS. Everything else
    in the lists is held to the rules, whoever wrote it."""
    if not (layer.http_registries or layer.insecure_registries):
        return layer
    http, insecure = declared_mirror_hosts(config)
    if besides is not None:
        http = http.union(map(registry_key, besides.http_registries))
        insecure = insecure.union(map(registry_key, besides.insecure_registries))
    own_http = tuple(r for r in layer.http_registries if registry_key(r) not in http)
    own_insecure = tuple(r for r in layer.insecure_registries
                         if registry_key(r) not in insecure)
    if (len(own_http), len(own_insecure)) == (len(layer.http_registries),
                                              len(layer.insecure_registries)):
        return layer        # all the author's own (the first pass, usually)
    return replace(layer, http_registries=own_http, insecure_registries=own_insecure)


def repointed_in_spec(spec: Pod, pins: Pins) -> list[str]:
    """The pod's own spec.hostAliases are kept and win in the container; a pod author
    writes them as freely as the annotation, so they may not re-point a pin."""
    problems: list[str] = []
    for index, alias in enumerate(spec.get("hostAliases") or ()):
        hostnames = alias.get("hostnames")
        for name in hostnames if isinstance(hostnames, list) else ():
            if isinstance(name, str):
                _repoints(name.lower(), str(alias.get("ip")), pins, problems,
                          f"spec.hostAliases[{index}]")
    return problems


def _repoints(hostname: str, ip: str, pins: Pins, problems: list[str], where: str) -> bool:
    """Whether aliasing `hostname` to `ip` moves a pin; if so, say so."""
    if hostname not in pins:
        return False
    pinned = pins[hostname]
    if pinned is not None and ip_key(pinned) == ip_key(ip):
        return False
    owner = (f"is aliased by the platform to {pinned}" if pinned is not None
             else "is a registry mirror's host")
    problems.append(f"{where}: hostname {hostname!r} {owner}; it may not be pointed at {ip} "
                    "(images are pulled from it, with the mirror's credentials)")
    return True


def carries_pin(aliases: tuple[HostAlias, ...] | None, hostname: str, ip: str) -> bool:
    """Whether `aliases` give `hostname` the address `ip` (however it is spelt)."""
    return any(hostname in alias.hostnames and ip_key(alias.ip) == ip_key(ip)
               for alias in aliases or ())


def dropped_pins(before: tuple[HostAlias, ...] | None, after: tuple[HostAlias, ...] | None,
                 pulled: tuple[HostAlias, ...], where: str) -> list[str]:
    """An UPDATE of a pod's hosts annotation may not drop the platform's alias of a
    hostname the pod, as it will be after the update, pulls from (`pulled`: see
    `webhook.core.mutation.pins.pulled_pins`): the name would be left to the pod's own resolver,
    which the same or a later update can set. `where`: "KEY (pod)"."""
    problems = []
    for alias in pulled:
        for name in alias.hostnames:
            if carries_pin(before, name, alias.ip) and not carries_pin(after, name, alias.ip):
                problems.append(
                    f"{where}: this update drops hostname {name!r}, which the platform "
                    f"aliases to {alias.ip}; the pod pulls images from it (with the "
                    "mirror's credentials), so its alias must stay")
    return problems


def spec_host_aliases(spec: Pod) -> tuple[HostAlias, ...]:
    """`spec.hostAliases` as `HostAlias`es, leaving out whatever is not shaped as the API
    has it (the API server validated the stored pod's)."""
    aliases = []
    for alias in spec.get("hostAliases") or ():
        ip, names = alias.get("ip"), alias.get("hostnames")
        if isinstance(ip, str) and isinstance(names, list):
            aliases.append(HostAlias(ip=ip, hostnames=tuple(
                n.lower() for n in names if isinstance(n, str))))
    return tuple(aliases)


__all__ = ["carries_pin", "declared_by_author", "declared_mirror_hosts",
           "disallowed_registry", "dropped_pins", "foreign_alias_problems",
           "foreign_registry_problems", "repointed_in_spec", "restricted",
           "spec_host_aliases"]
