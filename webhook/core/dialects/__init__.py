"""Annotation dialects: one per virtual-kubelet vendor, chosen by the platform.

`kci` (the default), `eci`, `eks`, `cci`. The config file's `dialect:` picks one for the
cluster; a Namespace's `kci-webhook/dialect` annotation overrides it for its pods. A pod
cannot choose (the same annotation on a pod is ignored with a warning): which keys the
virtual kubelet reads is a property of where the pod runs, not of what it asks for.

Pure, and precomputed at import: the hot path looks a dialect up in a dict.
"""

from __future__ import annotations

from collections.abc import Mapping

from webhook.core.dialects.base import ALL_REGISTRIES, Dialect, RegistryReader
from webhook.core.dialects.cci import CCI
from webhook.core.dialects.eci import ECI
from webhook.core.dialects.eks import EKS
from webhook.core.dialects.kci import KCI
from webhook.core.errors import AnnotationError
from webhook.core.model import HostAlias
from webhook.core.values.problems import Problems, quoted

DIALECT_KEY = "kci-webhook/dialect"
DEFAULT_DIALECT = KCI.name
DIALECTS: dict[str, Dialect] = {d.name: d for d in (KCI, ECI, EKS, CCI)}
DIALECT_NAMES = tuple(DIALECTS)
# Every vendor key of every dialect: what a namespace or a pod may carry that matters.
ALL_KEYS = tuple(key for d in DIALECTS.values() for key in d.annotation_keys())

_INSTEAD = {"hosts": "set spec.hostAliases instead",
            "dns": "set spec.dnsConfig instead",
            "http": "it cannot be expressed there",
            "insecure": "it cannot be expressed there"}


def parse_dialect(raw: str, *, level: str) -> str:
    """A `kci-webhook/dialect` value: a dialect's name, any case, spaces ignored."""
    name = raw.strip().lower()
    if name in DIALECTS:
        return name
    Problems(DIALECT_KEY, level).fail(
        f"unknown dialect {quoted(raw)} (expected {', '.join(DIALECT_NAMES)})")


def chosen_dialect(raw: object) -> str | None:
    """The dialect a Namespace annotation names, or None when it names none validly."""
    if isinstance(raw, str):
        name = raw.strip().lower()
        if name in DIALECTS:
            return name
    return None


def _hints_for(active: Dialect) -> tuple[tuple[str, str], ...]:
    """(foreign key, warning) for every other dialect's key, naming the likely intent."""
    mine = dict(active.roles())
    hints = [(DIALECT_KEY, f"{DIALECT_KEY} (pod): a pod cannot choose its dialect; the "
                           "platform sets it on the Namespace (ignored)")]
    for other in DIALECTS.values():
        if other is active:
            continue
        for role, key in other.roles():
            if key is None:
                continue
            meant = mine[role]
            advice = f"did you mean {meant}?" if meant else \
                f"the {active.name} dialect has no such annotation; {_INSTEAD[role]}"
            hints.append((key, f"{key} (pod): that is the {other.name} dialect's annotation, "
                               f"and this pod is read in the {active.name} dialect "
                               f"({active.vendor}): {advice} (ignored)"))
    return tuple(hints)


_HINTS = {name: _hints_for(d) for name, d in DIALECTS.items()}
_FOREIGN = {name: frozenset(key for key, _hint in hints) for name, hints in _HINTS.items()}


_FOREIGN_REGISTRY_KEYS = {
    name: tuple((key, role, other) for other in DIALECTS.values() if other is not active
                for role, key in other.roles() if role in ("http", "insecure") and key)
    for name, active in DIALECTS.items()}


def foreign_registry_claims(annotations: Mapping[str, object], dialect: Dialect
                            ) -> list[tuple[str, str, tuple[str, ...] | None]]:
    """(key, role, registries) for each other dialect's HTTP / insecure key the pod
    carries (role "http" or "insecure"), read in that dialect; registries None when the
    value does not parse.

    The webhook does not act on them, but that vendor's virtual kubelet would, should the
    pod land on one of its nodes: the security rules must hold for them too."""
    if _FOREIGN[dialect.name].isdisjoint(annotations):
        return []
    claims: list[tuple[str, str, tuple[str, ...] | None]] = []
    for key, role, other in _FOREIGN_REGISTRY_KEYS[dialect.name]:
        raw = annotations.get(key)
        if raw is None:
            continue
        try:
            claims.append((key, role, other.read_registries(raw, key=key, level="pod")
                           if isinstance(raw, str) else None))
        except AnnotationError:
            claims.append((key, role, None))
    return claims


_FOREIGN_HOSTS_KEYS = {
    name: tuple((other.hosts_key, other.read_hosts) for other in DIALECTS.values()
                if other is not active and other.hosts_key and other.read_hosts)
    for name, active in DIALECTS.items()}


def carries_foreign_hosts(annotations: Mapping[str, object], dialect: Dialect) -> bool:
    """Whether the pod carries another dialect's hosts key (a few lookups, no parsing)."""
    return any(key in annotations for key, _read in _FOREIGN_HOSTS_KEYS[dialect.name])


def foreign_host_claims(annotations: Mapping[str, object], dialect: Dialect
                        ) -> list[tuple[str, tuple[HostAlias, ...] | None]]:
    """(key, host aliases) for each other dialect's hosts key the pod carries, read in that
    dialect; None when the value does not parse.

    Every reader refuses a hostname given two different addresses (and a JSON key given
    twice), so the folded view it returns cannot hide a second mapping that another
    vendor's virtual kubelet might keep: such a value is unreadable, and refused."""
    if _FOREIGN[dialect.name].isdisjoint(annotations):
        return []
    claims: list[tuple[str, tuple[HostAlias, ...] | None]] = []
    for key, read in _FOREIGN_HOSTS_KEYS[dialect.name]:
        raw = annotations.get(key)
        if raw is None:
            continue
        if not isinstance(raw, str):
            claims.append((key, None))
            continue
        try:
            claims.append((key, read(raw, level="pod")))
        except AnnotationError:
            claims.append((key, None))
    return claims


def foreign_key_warnings(annotations: Mapping[str, object], dialect: Dialect) -> list[str]:
    """Warnings for keys of other dialects (and the dialect key) a pod carries. Most pods
    carry none: one pass over the pod's keys finds that."""
    if _FOREIGN[dialect.name].isdisjoint(annotations):
        return []
    return [hint for key, hint in _HINTS[dialect.name] if key in annotations]


__all__ = [
    "ALL_KEYS", "ALL_REGISTRIES", "DEFAULT_DIALECT", "DIALECTS", "DIALECT_KEY",
    "DIALECT_NAMES", "Dialect", "RegistryReader", "carries_foreign_hosts", "chosen_dialect",
    "foreign_host_claims", "foreign_key_warnings", "foreign_registry_claims", "parse_dialect",
]
