"""Platform rules that nothing a pod author controls may switch off, and a record they
cannot forge. Pure functions of the parsed values; `webhook.mutate` (CREATE) and
`webhook.updates` (UPDATE) apply them.

- TLS may not be weakened (`kci-http-registry`, `kci-insecure-registry`) for a registry
  that `security.allowedInsecureRegistries` does not allow; another dialect's HTTP /
  insecure key on a pod is held to the same rule (`foreign_registry_problems`).
- The platform's hostnames (`webhook.layers.protected_hostnames`: the mirrors' hosts and
  the names the config defaults or `KCI_HOST_ALIASES` alias) may not be aliased to
  another address, in `kci-host-aliases` or in `spec.hostAliases`.
- `kci-webhook/original-images` holds what the webhook saw, whatever the pod arrived with.

A pod that breaks a rule is refused whatever `onInvalid` says; a namespace loses only the
entry that breaks it, with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import orjson

from webhook.annotations import (
    KCI_HOST_ALIASES,
    MAX_ANNOTATIONS_BYTES,
    ORIGINAL_IMAGES,
    HostAlias,
    ip_key,
)
from webhook.config import Config, registry_allowed
from webhook.dialects import ALL_REGISTRIES, Dialect, foreign_registry_claims
from webhook.images import Pod, container_images, rewrites_to
from webhook.layers import Layer

HTTP, INSECURE = "http", "insecure"   # the two ways a registry list weakens TLS
# When nothing aliases a name, the platform's hostnames are not looked up: one shared value.
NO_PINS: Mapping[str, str | None] = MappingProxyType({})


# --- the rules ---------------------------------------------------------------------


def restricted(layer: Layer, config: Config, pins: Mapping[str, str | None],
               dialect: Dialect, *, remember: bool = True) -> tuple[Layer, list[str]]:
    """The layer without the entries that would switch a platform rule off, and why each
    went. A pod's problems refuse it; a namespace's entries are dropped one by one, so one
    bad entry never costs its namespace the entries that are allowed.

    The rules: TLS may not be weakened (http / insecure) for a registry that
    `security.allowedInsecureRegistries` does not allow, nor for a configured mirror's
    host beyond what its own config declares (its credentials go there); and a platform
    hostname (see `protected_hostnames`) may not be aliased to another address.
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
    # judge it once per config and platform hostnames. The memo holds the layer and the
    # pins it was judged with, so their ids cannot be reused while it is there.
    memo: dict[tuple[int, int], Any] = config.derived.setdefault("restricted", {})
    seen = memo.get((id(layer), id(pins)))
    if seen is not None and seen[0] is layer and seen[1] is pins and seen[2] is dialect:
        return seen[3], list(seen[4])
    if len(memo) >= 4096:
        memo.clear()
    judged, problems = _judged(layer, config, pins, dialect)
    memo[(id(layer), id(pins))] = (layer, pins, dialect, judged, tuple(problems))
    return judged, problems


def _judged(layer: Layer, config: Config, pins: Mapping[str, str | None], dialect: Dialect
            ) -> tuple[Layer, list[str]]:
    problems: list[str] = []
    patterns = config.allowed_insecure_registries
    declared = _mirror_declarations(config)
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


def _names_a_pinned_host(aliases: tuple[HostAlias, ...] | None,
                         pins: Mapping[str, str | None]) -> bool:
    for alias in aliases or ():
        for hostname in alias.hostnames:
            if hostname in pins:
                return True
    return False


def _allowed_registries(registries: tuple[str, ...], patterns: tuple[str, ...],
                        declared: Mapping[str, Mapping[str, bool]], kind: str,
                        problems: list[str], where: str) -> tuple[str, ...]:
    if not registries or not (patterns or declared):
        return registries
    allowed = []
    for registry in registries:
        by_config = declared.get(registry)
        problem = (_all_problem(where, patterns, declared, kind) if registry == ALL_REGISTRIES
                   else disallowed_registry(where, registry, patterns) if by_config is None
                   else None if by_config[kind]
                   else f"{where}: registry {registry!r} is a configured mirror's host, which "
                        "the config does not declare so; TLS may not be weakened for it (its "
                        "pull secret goes there)")
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
                 declared: Mapping[str, Mapping[str, bool]], kind: str) -> str | None:
    """'all' weakens TLS for every registry, the configured mirrors included: allowed only
    where nothing is restricted and every mirror's own config declares the same."""
    problem = disallowed_registry(where, ALL_REGISTRIES, patterns)
    if problem:
        return problem
    # Skipping verification means nothing for a mirror its config declares plain HTTP.
    undeclared = sorted(host for host, by_config in declared.items()
                        if not by_config[kind] and not (kind == INSECURE and by_config[HTTP]))
    if undeclared:
        return (f"{where}: 'all' (every registry) would weaken TLS for the configured mirror "
                f"{undeclared[0]!r} too, which the config does not declare so (its pull secret "
                "goes there); list the registries instead")
    return None


def _mirror_declarations(config: Config) -> Mapping[str, Mapping[str, bool]]:
    """Each mirror host → whether its config declares it HTTP / insecure (its `http://`
    endpoint, its `insecureSkipVerify`), as the webhook writes it into the pod. Derived
    once per config."""
    declared: dict[str, dict[str, bool]] | None = config.derived.get("mirror_declarations")
    if declared is None:
        declared = {}
        for mirror in config.mirrors:
            entry = declared.setdefault(mirror.host, {HTTP: False, INSECURE: False})
            entry[HTTP] |= mirror.plain_http
            entry[INSECURE] |= mirror.skips_verification
        config.derived["mirror_declarations"] = declared
    return declared


def declared_mirror_hosts(config: Config) -> tuple[frozenset[str], frozenset[str]]:
    """The mirror hosts the config itself declares plain HTTP, and those it declares TLS
    without verification: what the webhook writes into a pod's lists, hence never the pod
    author's own declaration. Derived once per config."""
    hosts: tuple[frozenset[str], frozenset[str]] | None = config.derived.get("declared_hosts")
    if hosts is None:
        declared = _mirror_declarations(config)
        hosts = (frozenset(h for h, by_config in declared.items() if by_config[HTTP]),
                 frozenset(h for h, by_config in declared.items() if by_config[INSECURE]))
        config.derived["declared_hosts"] = hosts
    return hosts


def foreign_registry_problems(annotations: Mapping[str, Any], patterns: tuple[str, ...],
                              dialect: Dialect, *,
                              exempt: Mapping[str, Any] | None = None) -> list[str]:
    """Another dialect's HTTP / insecure key on the pod is held to the same rule: another
    vendor's virtual kubelet would act on it. Entries already in `exempt` (the stored pod's
    annotations, on UPDATE) are not judged again."""
    if not patterns:
        return []
    before = dict(foreign_registry_claims(exempt, dialect)) if exempt else {}
    problems = []
    for key, registries in foreign_registry_claims(annotations, dialect):
        if registries is None:
            problems.append(f"{key} (pod): another dialect's registry list that cannot be "
                            "read, so it cannot be held to security.allowedInsecureRegistries")
        else:
            old = before.get(key) or ()
            problems += [p for r in registries if r not in old
                         if (p := disallowed_registry(f"{key} (pod)", r, patterns))]
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
        http = http.union(besides.http_registries)
        insecure = insecure.union(besides.insecure_registries)
    own_http = tuple(r for r in layer.http_registries if r not in http)
    own_insecure = tuple(r for r in layer.insecure_registries if r not in insecure)
    if (len(own_http), len(own_insecure)) == (len(layer.http_registries),
                                              len(layer.insecure_registries)):
        return layer        # all the author's own (the first pass, usually)
    return replace(layer, http_registries=own_http, insecure_registries=own_insecure)


def repointed_in_spec(spec: Pod, pins: Mapping[str, str | None]) -> list[str]:
    """The pod's own spec.hostAliases are kept and win in the container; a pod author
    writes them as freely as the annotation, so they may not re-point a platform name."""
    problems: list[str] = []
    for index, alias in enumerate(spec.get("hostAliases") or ()):
        hostnames = alias.get("hostnames")
        for name in hostnames if isinstance(hostnames, list) else ():
            if isinstance(name, str):
                _repoints(name.lower(), str(alias.get("ip")), pins, problems,
                          f"spec.hostAliases[{index}]")
    return problems


def _repoints(hostname: str, ip: str, pins: Mapping[str, str | None], problems: list[str],
              where: str) -> bool:
    """Whether aliasing `hostname` to `ip` moves a platform name; if so, say so."""
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


# --- the record of original images -------------------------------------------------


def record_originals(annotations: dict[str, Any], seen: Pod,
                      rewritten: dict[str, tuple[str, str]], config: Config,
                      warnings: list[str]) -> None:
    """Record each rewritten container's image as the webhook saw it.

    A pod may arrive with this annotation already: the webhook's own, when it is called
    again on its output, or one its author wrote. Only an entry that this config's
    rewrite of it gives exactly the container's current image is the webhook's own and
    is kept (re-invocation must not forget the true original); any other entry is
    replaced by the image seen, or dropped when it names no container."""
    if ORIGINAL_IMAGES not in annotations:   # the first pass, usually: nothing claimed
        annotations[ORIGINAL_IMAGES] = orjson.dumps(
            {name: old for name, (old, _new) in rewritten.items()}).decode()
        return
    claimed = _claimed_originals(annotations[ORIGINAL_IMAGES], warnings)
    images_seen = container_images(seen) if claimed else {}
    originals: dict[str, str] = {}
    for name, original in claimed.items():
        image = images_seen.get(name)
        if image is None:
            warnings.append(f"{ORIGINAL_IMAGES}: no container {name[:100]!r}; entry dropped")
        elif original == image or rewrites_to(original, image, config):
            originals[name] = original
        else:
            warnings.append(f"{ORIGINAL_IMAGES}: container {name[:100]!r} was not rewritten "
                            f"from {original[:300]!r}; recorded as seen")
            originals[name] = image
    for name, (old, _new) in rewritten.items():
        originals[name] = old
    if originals:
        annotations[ORIGINAL_IMAGES] = orjson.dumps(originals).decode()
    else:
        annotations.pop(ORIGINAL_IMAGES, None)


def _claimed_originals(value: object, warnings: list[str]) -> dict[str, str]:
    """The incoming record as container → image, or nothing (with a warning) when it is
    not the JSON object of strings the webhook writes. A record longer than the API
    server lets all annotations be cannot come from a pod it admitted."""
    if isinstance(value, str) and len(value) <= MAX_ANNOTATIONS_BYTES:
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict) and all(isinstance(v, str) for v in decoded.values()):
            return decoded
    warnings.append(f"{ORIGINAL_IMAGES}: not a JSON object of container name to image; "
                    "replaced")
    return {}


__all__ = ["NO_PINS", "declared_by_author", "declared_mirror_hosts", "disallowed_registry",
           "foreign_registry_problems", "record_originals", "repointed_in_spec", "restricted"]
