"""What a config implies, derived once when it is made: the hot path only reads it.

The platform rules (`webhook.core.mutation.rules`) ask of every pod that declares a
registry HTTP or insecure what the config itself declares of each mirror host; the answer
depends on the mirrors alone, so it is worked out here, with the config, not per pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from webhook.core.config.registries import RegistryKey

HTTP, INSECURE = "http", "insecure"   # the two ways a registry list weakens TLS


class DeclaringMirror(Protocol):
    """What the facts read of a mirror (`webhook.core.config.model.Mirror`, which holds
    the facts and so is not imported here)."""

    @property
    def host(self) -> str: ...
    @property
    def keys(self) -> frozenset[RegistryKey]: ...
    @property
    def plain_http(self) -> bool: ...
    @property
    def skips_verification(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class MirrorDeclaration:
    """What the config declares of one mirror host (a canonical `registry_key`): plain
    HTTP (its `http://` endpoint), TLS without verification (`insecureSkipVerify`)."""

    host: str          # as the config spells it, for messages
    http: bool = False
    insecure: bool = False

    def says(self, kind: str) -> bool:
        """Whether the config declares the host `kind` (HTTP or INSECURE)."""
        return self.http if kind == HTTP else self.insecure


@dataclass(frozen=True, slots=True)
class ConfigFacts:
    """The mirror hosts, under every key that names them, → what the config declares of
    each (`declarations`); and those it declares plain HTTP (`http_hosts`) and TLS without
    verification (`insecure_hosts`): what the webhook writes into a pod's lists, hence
    never the pod author's own declaration."""

    declarations: Mapping[RegistryKey, MirrorDeclaration]
    http_hosts: frozenset[RegistryKey]
    insecure_hosts: frozenset[RegistryKey]


def config_facts(mirrors: Iterable[DeclaringMirror]) -> ConfigFacts:
    """The facts of a config's mirrors: each host under every key that names it
    (`Mirror.keys`), with what its config declares, as the webhook writes it into a pod."""
    declared: dict[RegistryKey, MirrorDeclaration] = {}
    for mirror in mirrors:
        for key in mirror.keys:
            entry = declared.get(key, MirrorDeclaration(mirror.host))
            declared[key] = MirrorDeclaration(entry.host, entry.http or mirror.plain_http,
                                              entry.insecure or mirror.skips_verification)
    return ConfigFacts(
        declarations=MappingProxyType(declared),
        http_hosts=frozenset(k for k, d in declared.items() if d.http),
        insecure_hosts=frozenset(k for k, d in declared.items() if d.insecure))
