"""The files a config names (each mirror's `caFile` and `pullCredentialConfigPath`):
which they are, and whether the presence check could use them.

The server checks them when it loads a config (a broken file is refused up front, not
found by the first pod) and watches them for change alongside the config file itself.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from webhook.adapters.registry.credentials import CredentialsError, credentials_from_dockerconfig
from webhook.core.config import Config
from webhook.core.errors import ConfigError


def config_files(config: Config) -> tuple[str, ...]:
    """Every file the config names (as written), in config order: what a change of the
    config's meaning can come from besides the config file itself."""
    return tuple(dict.fromkeys(
        path for mirror in config.mirrors
        for path in (mirror.ca_file, mirror.pull_credential_config_path) if path))


def check_config_files(config: Config) -> None:
    """Refuse a config whose files cannot be used, as the mirror checks would use them:
    each `caFile` must load as a PEM bundle of at least one certificate, each
    `pullCredentialConfigPath` must read and parse as a Docker config. Relative paths
    are the server's working directory's, as the checks open them; the message shows
    where that led. Raises ConfigError naming the config, the key and the file."""
    problems = []
    for index, mirror in enumerate(config.mirrors):
        where = f"mirrors[{index}]"
        if mirror.ca_file:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
                    cafile=mirror.ca_file)
            except (OSError, ssl.SSLError) as exc:
                problems.append(f"{where}.caFile ({_shown(mirror.ca_file)}): cannot load a "
                                f"PEM certificate: {_reason(exc)}")
        if mirror.pull_credential_config_path:
            try:
                credentials_from_dockerconfig(mirror.pull_credential_config_path, mirror.host)
            except CredentialsError as exc:
                reason = str(exc).removeprefix(f"{Path(mirror.pull_credential_config_path)}: ")
                problems.append(f"{where}.pullCredentialConfigPath "
                                f"({_shown(mirror.pull_credential_config_path)}): {reason}")
    if problems:
        raise ConfigError("\n".join(f"{config.source}: {p}" for p in problems))


def _shown(path: str) -> str:
    """A relative path with the absolute one it stands for."""
    absolute = str(Path(path).absolute())
    return path if absolute == path else f"{path} = {absolute}"


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return "no certificate in it" if exc.reason == "NO_CERTIFICATE_OR_CRL_FOUND" \
            else str(exc.reason or exc)
    return exc.strerror or str(exc)
