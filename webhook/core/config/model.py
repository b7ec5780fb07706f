"""The configuration as the webhook holds it: frozen values, validated once at start-up
(or reload) by webhook.core.config.load; admission only reads them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from webhook.core.config.facts import ConfigFacts, config_facts
from webhook.core.config.registries import RegistryKey, host_keys, registry_key
from webhook.core.dialects import DEFAULT_DIALECT
from webhook.core.model import DnsConfig, HostAlias

DEFAULT_EXCLUDED_NAMESPACES = ("kube-system", "kube-public")


@dataclass(frozen=True, slots=True)
class Mirror:
    """One registry mirror, containerd style: images from `hosts` are pulled from `host`.

    `host` is the mirror's `host[:port]` (lower case), `namespace` the path prefix the
    mirror serves them under ("" for the root), from either endpoint form
    `https://host:port/v2/<ns>` or `host:port/<ns>`.
    """

    endpoint: str
    scheme: str
    host: str
    namespace: str
    hosts: tuple[str, ...]
    pull_secret: str | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    policy: str = "always"
    allow_credentials_over_http: bool = False
    pull_credential_config_path: str | None = None
    # Every canonical key that names `host` (`mirror_keys`): derived, not part of the value.
    keys: frozenset[RegistryKey] = field(init=False, repr=False, compare=False)
    # The value's hash, worked out once: caches of rewrite plans are keyed on the mirrors.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", host_keys(self.host, self.scheme))
        object.__setattr__(self, "_hash", hash(_compared(self)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def plain_http(self) -> bool:
        """Pulled over plain HTTP: what a pod's HTTP-registry list must say of `host`."""
        return self.scheme == "http"

    @property
    def skips_verification(self) -> bool:
        """Pulled over TLS without verification: what a pod's insecure-registry list must
        say of `host` (`insecureSkipVerify` means nothing on a plain HTTP endpoint)."""
        return self.scheme == "https" and self.insecure_skip_verify

    def is_host(self, registry: str) -> bool:
        """Whether `registry` (`host[:port]`, however spelt) is this mirror's host: the
        same canonical host and port, a missing port meaning the endpoint's default one
        (`mirror` and `mirror:443` are one https mirror; `mirror:05000` is `mirror:5000`)."""
        return registry_key(registry) in self.keys

    def serves(self, domain: str) -> bool:
        """Exact match on the parsed, normalized host: docker.io never matches docker.io.evil."""
        return domain in self.hosts

    def repository(self, path: str) -> str:
        """The repository path on the mirror for a source repository path."""
        return f"{self.namespace}/{path}" if self.namespace else path


@dataclass(frozen=True, slots=True)
class Defaults:
    """Cluster-wide defaults of the lowest precedence (below the `KCI_*` environment)."""

    scope: str = "all"
    host_aliases: tuple[HostAlias, ...] = ()
    dns_config: DnsConfig | None = None


@dataclass(frozen=True, slots=True)
class MirrorChecks:
    """How `policy: if-present` asks mirrors: the per-admission budget, the bounds on the
    work one admission can cause, and the cache."""

    budget_seconds: float = 1.0
    positive_ttl_seconds: float = 300.0
    negative_ttl_seconds: float = 30.0
    cooldown_seconds: float = 30.0
    # Questions one admission may take past the cache (started or joined lookups): 32 is
    # more distinct images than any real pod has, and two rounds of the in-flight limit,
    # so a pod at the limit is still answered within a 1 s budget by a mirror that
    # answers in under half of it. Past it, an image is kept as written (as on a timeout).
    max_lookups_per_admission: int = 32
    # Lookups sending to one mirror host at once (its connection pool has as many
    # connections, so requests never queue inside the HTTP client).
    max_in_flight_per_mirror: int = 16


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration file, validated."""

    on_invalid: str = "deny"
    dialect: str = DEFAULT_DIALECT  # whose annotation keys pods speak (webhook.core.dialects)
    defaults: Defaults = field(default_factory=Defaults)
    mirrors: tuple[Mirror, ...] = ()
    allowed_insecure_registries: tuple[str, ...] = ()
    exclude_namespaces: frozenset[str] = frozenset(DEFAULT_EXCLUDED_NAMESPACES)
    mirror_checks: MirrorChecks = field(default_factory=MirrorChecks)
    source: str = "<defaults>"
    # What is valid but almost certainly a mistake, each without the file's name: `serve`
    # logs them at start-up and at every reload, `preview` reports them as warnings about
    # the file.
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # What the mirrors imply (`webhook.core.config.facts`): derived when the config is
    # made, not part of its value.
    facts: ConfigFacts = field(init=False, repr=False, compare=False)
    # The value's hash, worked out once: caches keyed on a config (the platform's pins,
    # judged layers) look it up on every admission.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "facts", config_facts(self.mirrors))
        object.__setattr__(self, "_hash", hash(_compared(self)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class EnvironmentDefaults:
    """`KCI_HOST_ALIASES` / `KCI_DNS_CONFIG`: the virtual-kubelet-level defaults that the
    KCI documentation describes."""

    host_aliases: tuple[HostAlias, ...] = ()
    dns_config: DnsConfig | None = None


def _compared(value: object) -> tuple[object, ...]:
    """The fields of a frozen value that its equality compares: what its hash is of."""
    return tuple(getattr(value, f.name) for f in fields(value) if f.compare)  # type: ignore[arg-type]


def mirror_keys(mirror: Mirror) -> frozenset[RegistryKey]:
    """Every canonical key that names `mirror`'s host: its own, and with the port left
    out or spelt out when it is the endpoint scheme's default one. Derived once, when the
    mirror is made: the hot path only looks a key up in it."""
    return mirror.keys
