"""containerd's per-host registry configuration, rendered from the webhook's config.

A function of data only: no file is read or written here (`webhook.tools.nodeconfig.files`
does that). containerd reads `<config_path>/<host[:port]>/hosts.toml` on every pull
(containerd docs/hosts.md); the keys used are the ones containerd 1.6 (Debian 12) already
parses: `server`, `[host."<url>"]`, `capabilities`, `ca`, `skip_verify`, `override_path`.

- A mirror host gets a file that names its scheme (`http://` endpoints are pulled over
  plain HTTP), its CA (`caFile`, copied beside the file as `ca.crt` and named by a relative
  path, which containerd resolves against the host's directory, so the file means the same
  on the node and in the container that writes it) and `skip_verify` only for
  `insecureSkipVerify` on an https endpoint.
- With `node_mirrors`, each source host a mirror serves (`docker.io`, `gcr.io`, ...) gets
  a file listing its mirrors in config order, each with its namespace
  (`https://m:5000/v2/ns` with `override_path = true`: containerd then uses the path as
  the API root, so `docker.io/library/x` is fetched as `m:5000/ns/library/x`), before the
  source registry itself as `server`, the fallback when a mirror lacks the image.
- Never a credential: no `[header]` is written; pull secrets stay with the kubelet.

The TOML is written by tomli-w (pure, no I/O); the marker and comment lines before it hold
only hosts and URLs the config loader validated, never a raw value from the file.

containerd 1.6 and 1.7 reject a hosts.toml that has no `[host]` table ("invalid `host`
tree") and silently fall back to the directory's certificate files, so a mirror's own
file repeats its server as a `[host]` entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import tomli_w

from webhook.core.config import Config, Mirror
from webhook.core.errors import ConfigError
from webhook.core.reference import DEFAULT_DOMAIN

# The first line of every file this tool writes; a hosts.toml without it belongs to
# someone else and is never changed or removed.
MARKER = "# managed by kci-webhook node-config: changes here are overwritten"
HOSTS_FILE = "hosts.toml"
CA_FILE = "ca.crt"
CAPABILITIES = ("pull", "resolve")
# containerd maps docker.io to this server itself (remotes/docker/config/hosts.go); the
# source's file must name it, or the fallback would go to docker.io, which serves no API.
DOCKER_HUB_SERVER = "https://registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class HostDir:
    """One `<hosts-dir>/<name>/` directory: its hosts.toml text and, when it names a
    `ca.crt`, the config's CA file to copy there (read by the writer, not here)."""

    name: str
    hosts_toml: str
    # (file name in the directory, the config's caFile it is a copy of)
    cas: tuple[tuple[str, str], ...] = ()
    role: str = "mirror"  # "mirror" (the mirror's own host) or "source" (--node-mirrors)


@dataclass(frozen=True, slots=True)
class Plan:
    """Every directory the config asks for, and what it could not express."""

    dirs: tuple[HostDir, ...]
    warnings: tuple[str, ...] = ()

    def names(self) -> frozenset[str]:
        return frozenset(d.name for d in self.dirs)


def base_url(mirror: Mirror) -> str:
    """`scheme://host[:port]`: where pods the webhook rewrote pull from."""
    return f"{mirror.scheme}://{mirror.host}"


def mirror_url(mirror: Mirror) -> str:
    """The `[host]` key for a source host: with a namespace, the API root itself."""
    return f"{base_url(mirror)}/v2/{mirror.namespace}" if mirror.namespace else base_url(mirror)


def _ca_file(mirror: Mirror) -> str | None:
    """The CA a mirror is verified with: for https endpoints only (on http it means nothing)."""
    return mirror.ca_file if mirror.scheme == "https" and mirror.ca_file else None


def _ca_names(mirrors: Iterable[Mirror]) -> dict[str, str]:
    """caFile -> its copy's name in one directory: `ca.crt`, then `ca-2.crt`, ..."""
    names: dict[str, str] = {}
    for mirror in mirrors:
        source = _ca_file(mirror)
        if source is not None and source not in names:
            names[source] = CA_FILE if not names else f"ca-{len(names) + 1}.crt"
    return names


def _tls(mirror: Mirror, ca_names: dict[str, str]) -> dict[str, Any]:
    """`ca` and `skip_verify` (only for `insecureSkipVerify` on an https endpoint)."""
    keys: dict[str, Any] = {}
    source = _ca_file(mirror)
    if source is not None:
        keys["ca"] = ca_names[source]
    if mirror.skips_verification:
        keys["skip_verify"] = True
    return keys


def _host(mirror: Mirror, ca_names: dict[str, str], *, override_path: bool) -> dict[str, Any]:
    keys: dict[str, Any] = {"capabilities": list(CAPABILITIES), **_tls(mirror, ca_names)}
    if override_path:
        keys["override_path"] = True
    return keys


def _document(comment: str, body: dict[str, Any]) -> str:
    """The marker, a comment made only of validated hosts and URLs, then the TOML."""
    return f"{MARKER}\n# {comment}\n{tomli_w.dumps(body)}"


def _mirror_dir(mirror: Mirror) -> HostDir:
    url = base_url(mirror)
    cas = _ca_names([mirror])
    body = {"server": url, "capabilities": list(CAPABILITIES), **_tls(mirror, cas),
            "host": {url: _host(mirror, cas, override_path=False)}}
    return HostDir(name=mirror.host, role="mirror",
                   hosts_toml=_document(f"the mirror {url} (endpoint {mirror_url(mirror)})",
                                        body),
                   cas=tuple((name, source) for source, name in cas.items()))


def _source_server(source: str) -> str:
    return DOCKER_HUB_SERVER if source == DEFAULT_DOMAIN else f"https://{source}"


def _source_dir(source: str, mirrors: list[Mirror]) -> HostDir:
    cas = _ca_names(mirrors)
    hosts = {mirror_url(m): _host(m, cas, override_path=bool(m.namespace)) for m in mirrors}
    body = {"server": _source_server(source), "host": hosts}
    listed = ", ".join(hosts)
    return HostDir(name=source, role="source",
                   cas=tuple((name, path) for path, name in cas.items()),
                   hosts_toml=_document(f"{source}: mirrors {listed}, then the source itself",
                                        body))


def _check_same_host(mirrors: tuple[Mirror, ...]) -> None:
    """Mirror entries sharing a host share its directory: they must agree on how to reach
    it (scheme, CA, verification), or one file could not say both."""
    seen: dict[str, Mirror] = {}
    problems = []
    for index, mirror in enumerate(mirrors):
        first = seen.setdefault(mirror.host, mirror)
        if (first.scheme, first.ca_file, first.skips_verification) != (
                mirror.scheme, mirror.ca_file, mirror.skips_verification):
            problems.append(
                f"mirrors[{index}]: {mirror.host} is also the host of {mirror_url(first)}, with a "
                "different scheme, caFile or insecureSkipVerify; containerd keeps one "
                f"configuration per host ({mirror.host}/{HOSTS_FILE})")
    if problems:
        raise ConfigError("\n".join(problems))


def plan(config: Config, *, node_mirrors: bool = False) -> Plan:
    """The directories `config` asks for; raise ConfigError when one file per host cannot
    say what the mirrors need (two entries for one host disagreeing)."""
    _check_same_host(config.mirrors)
    dirs: dict[str, HostDir] = {}
    for mirror in config.mirrors:
        dirs.setdefault(mirror.host, _mirror_dir(mirror))
    warnings: list[str] = []
    if node_mirrors:
        by_source: dict[str, list[Mirror]] = {}
        for mirror in config.mirrors:
            if mirror.plain_http and not mirror.allow_credentials_over_http:
                warnings.append(
                    f"{mirror_url(mirror)}: not written as a node-level mirror of "
                    f"{', '.join(mirror.hosts)}: it is plain http://, and the pull credentials "
                    "the kubelet holds for those registries would be offered to it in clear "
                    "if it asked; set allowCredentialsOverHTTP: true to accept that")
                continue
            for source in mirror.hosts:
                by_source.setdefault(source, []).append(mirror)
        for source, mirrors in by_source.items():
            dirs[source] = _source_dir(source, mirrors)
    return Plan(dirs=tuple(dirs.values()), warnings=tuple(warnings))


def is_owned(hosts_toml: str) -> bool:
    """Whether a hosts.toml was written by this tool (its first line is the marker)."""
    return hosts_toml.split("\n", 1)[0].rstrip("\r") == MARKER


__all__ = ["CAPABILITIES", "CA_FILE", "DOCKER_HUB_SERVER", "HOSTS_FILE", "MARKER", "HostDir",
           "Plan", "base_url", "is_owned", "mirror_url", "plan"]
