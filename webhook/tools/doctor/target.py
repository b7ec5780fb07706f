"""The registry to check, as image references write it: `Target` and `parse_target`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from webhook.core.errors import ReferenceError_
from webhook.core.reference import (
    is_path_component_sequence,
    normalize_domain,
    parse_registry_host,
)
from webhook.tools.doctor.errors import UsageError

DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True)
class Target:
    """`registry` is `host[:port]` as image references and the KCI annotations write it;
    `host` the name or address dialled and verified (no brackets); `scheme` http(s);
    `namespace` the path a mirror endpoint serves its images under ("" for none)."""

    registry: str
    host: str
    port: int
    scheme: str
    namespace: str = ""

    @property
    def is_ip(self) -> bool:
        return _is_ip(self.host)

    @property
    def authority(self) -> str:
        """The `Host` header a node sends: the port only when it is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_target(text: str, *, http: bool) -> Target:
    """REGISTRY[:PORT], optionally written as a URL (`https://h:5000`, `http://h:5000/`),
    or as a mirror endpoint is written in the config, with its namespace
    (`https://h:5000/v2/ns`, `h:5000/ns`)."""
    raw = text.strip()
    scheme = "http" if http else "https"
    if "://" in raw:
        given, raw = raw.split("://", 1)
        given = given.lower()
        if given not in ("http", "https"):
            raise UsageError(f"REGISTRY {text!r}: the scheme may be https:// or http://")
        if given == "https" and http:
            raise UsageError(f"REGISTRY {text!r} says https:// but --http asks for plain HTTP")
        scheme = given
    raw, _, path = raw.partition("/")
    path = path.strip("/")
    if path == "v2" or path.startswith("v2/"):
        path = path[3:]
    if path and not is_path_component_sequence(path):
        raise UsageError(f"REGISTRY {text!r}: expected host[:port], or a mirror endpoint "
                         f"with its namespace (https://{raw}/v2/<namespace>); {path!r} is "
                         "not a namespace: lowercase components separated by '/'")
    try:
        host, port = parse_registry_host(raw.lower())
    except ReferenceError_:
        raise UsageError(f"REGISTRY {text!r}: expected host[:port]: a DNS name, an IPv4 "
                         "address or a bracketed IPv6 address, and a port 1-65535") from None
    bare = host[1:-1] if host.startswith("[") else host
    if normalize_domain(bare) == "docker.io":  # what docker.io images are pulled from
        bare = DOCKER_HUB_API
    return Target(raw.lower(), bare, port or (443 if scheme == "https" else 80), scheme, path)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
