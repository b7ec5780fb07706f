"""Pull credentials from a Docker config file: what a mirror's `pullCredentialConfigPath`
names (a mounted `kubernetes.io/dockerconfigjson` Secret, or a legacy `.dockercfg`).

Read by the presence check on each lookup (so a rotated Secret is picked up), by the
config's file checks at load, and by `kci-webhook doctor --creds`. No network here.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from webhook.core.errors import ConfigError
from webhook.core.reference import normalize_domain

MAX_DOCKERCONFIG_BYTES = 1024 * 1024  # a Secret holds at most 1 MiB


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password for one registry (the password never appears in a repr)."""

    username: str
    password: str = field(repr=False)


class CredentialsError(ConfigError):
    """A `pullCredentialConfigPath` file that cannot be used; the message names the file."""


def _config_key_host(key: str) -> str:
    """The `host[:port]` an `auths` key names: "https://h:5000/v1/" and "h:5000" alike."""
    text = key.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    return normalize_domain(text.split("/", 1)[0].lower())


def credentials_from_dockerconfig(path: Path | str, registry_host: str) -> Credentials | None:
    """The credentials for `registry_host` (`host[:port]`) in a Docker config file.

    Reads both shapes Kubernetes mounts: `.dockerconfigjson` / `~/.docker/config.json`
    (`{"auths": {...}}`) and the legacy `.dockercfg` (the `auths` mapping alone). An entry
    carries `auth` (base64 of `user:password`) or `username` + `password`. Keys may be
    written `host:port`, `https://host:port` or `https://host/v1/`; matching is exact on
    host and port (a key without a port does not match a registry with one, as in the
    kubelet), a key written exactly as the host winning over the others.

    Returns None when the file has no usable entry for the host (anonymous access is
    then tried). Raises CredentialsError, naming the file, when the file cannot be read
    or is not a Docker config at all: a broken credentials file is a configuration error
    to report, not a reason to pull anonymously in silence. Credential helpers
    (`credsStore`, `credHelpers`) and identity tokens are not supported.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_DOCKERCONFIG_BYTES + 1)
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_DOCKERCONFIG_BYTES:
        raise CredentialsError(f"{path}: larger than {MAX_DOCKERCONFIG_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"{path}: expected a JSON object with \"auths\"")
    auths = data.get("auths", data if _looks_legacy(data) else {})
    if not isinstance(auths, dict):
        raise CredentialsError(f"{path}: \"auths\" must be an object")
    wanted = normalize_domain(registry_host.strip().lower())
    keys = sorted((k for k in auths if isinstance(k, str) and _config_key_host(k) == wanted),
                  key=lambda k: k.strip().lower() != wanted)
    for key in keys:
        credentials = _entry_credentials(auths[key], path, key)
        if credentials is not None:
            return credentials
    return None


def _looks_legacy(data: dict[str, object]) -> bool:
    """A `.dockercfg`: every value an entry object, and no config.json keys."""
    return bool(data) and all(isinstance(v, dict) and ("auth" in v or "username" in v)
                              for v in data.values())


def _entry_credentials(entry: object, path: Path, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        raise CredentialsError(f"{path}: auths[{key!r}] must be an object")
    auth = entry.get("auth")
    if isinstance(auth, str) and auth.strip():
        text = auth.strip()
        try:
            decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"{path}: auths[{key!r}].auth is not base64 of "
                                   "\"user:password\"") from None
        username, colon, password = decoded.partition(":")
        if not colon or not username:
            raise CredentialsError(f"{path}: auths[{key!r}].auth does not decode to "
                                   "\"user:password\"")
        return Credentials(username, password)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and user and isinstance(secret, str):
        return Credentials(user, secret)
    return None
