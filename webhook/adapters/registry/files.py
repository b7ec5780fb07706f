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
    """Refuse a config whose files cannot be used, as the mirror checks would use them
    (`file_problems`, a file absent from this machine included). Raises ConfigError
    naming the config, the key and the file."""
    errors, absent = file_problems(config)
    if errors or absent:
        raise ConfigError("\n".join([*errors, *absent]))


def file_problems(config: Config) -> tuple[list[str], list[str]]:
    """What is wrong with the files the config names, as (unusable, absent) lines that
    name the config, the key and the file: each `caFile` must load as a PEM bundle of at
    least one certificate, each `pullCredentialConfigPath` must read and parse as a Docker
    config. A file that does not exist here is kept apart, because a config is often
    checked on a machine other than the one that serves it (a laptop, CI): there it is
    only a warning, while the server, which opens the files, refuses it. Relative paths
    are the working directory's, as the checks open them; the message shows where that
    led."""
    errors: list[str] = []
    absent: list[str] = []
    for index, mirror in enumerate(config.mirrors):
        where = f"mirrors[{index}]"
        for key, path in (("caFile", mirror.ca_file),
                          ("pullCredentialConfigPath", mirror.pull_credential_config_path)):
            if path and not Path(path).exists():
                absent.append(f"{config.source}: {where}.{key} ({_shown(path)}): not found "
                              "on this machine")
        if mirror.ca_file and Path(mirror.ca_file).exists():
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
                    cafile=mirror.ca_file)
            except (OSError, ssl.SSLError) as exc:
                errors.append(f"{config.source}: {where}.caFile ({_shown(mirror.ca_file)}): "
                              f"cannot load a PEM certificate: {_reason(exc)}")
        credentials = mirror.pull_credential_config_path
        if credentials and Path(credentials).exists():
            try:
                credentials_from_dockerconfig(credentials, mirror.host)
            except CredentialsError as exc:
                reason = str(exc).removeprefix(f"{Path(credentials)}: ")
                errors.append(f"{config.source}: {where}.pullCredentialConfigPath "
                              f"({_shown(credentials)}): {reason}")
    return errors, absent


def _shown(path: str) -> str:
    """A relative path with the absolute one it stands for."""
    absolute = str(Path(path).absolute())
    return path if absolute == path else f"{path} = {absolute}"


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return "no certificate in it" if exc.reason == "NO_CERTIFICATE_OR_CRL_FOUND" \
            else str(exc.reason or exc)
    return exc.strerror or str(exc)
