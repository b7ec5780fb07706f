"""The one validator of a config file, which `serve`, `mutate` and `config check` share.

A config `serve` refuses must be refused, with the same words, wherever it is checked
first: on a laptop (`mutate --config`), in CI or in the chart's pre-install hook
(`config check`). So all three read the file here, validate it with the core's loader
(every problem, each with its key path) against the webhook's timeout, then check the
files it names. The only difference is where it runs: `serve` opens the files, so one
that is absent is an error; elsewhere an absent file may simply live on the cluster, so
it is a warning unless the caller asks for the files too (`--files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webhook.adapters.registry.files import file_problems
from webhook.core.config import DEFAULT_WEBHOOK_TIMEOUT_SECONDS, Config, load_config
from webhook.core.errors import ConfigError


class ConfigUnreadable(ConfigError):
    """The config file could not be read at all (missing, a directory, no permission):
    nothing was validated."""


@dataclass(frozen=True)
class ConfigReport:
    """What the validator found: `errors` refuse the config (each names the file and the
    key), `warnings` do not: a named file absent here when absent files are allowed (the
    config's own warnings, such as a host two mirrors list, are `config.warnings`, which
    every command already shows). `config` is the validated config when there is no
    error."""

    config: Config | None
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.errors

    def message(self) -> str:
        """The errors as one text: the words every command prints under its own prefix."""
        return "\n".join(self.errors)


def read_config_bytes(path: str) -> bytes:
    """The config file's content; raises ConfigUnreadable naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigUnreadable(f"{path}: cannot read: {exc.strerror or exc}") from None


def check_config(path: str, *, webhook_timeout: int = DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
                 absent_files_are_errors: bool = True, text: bytes | None = None
                 ) -> ConfigReport:
    """Read (unless `text` is given), parse and validate the config at `path`, then the
    files it names. Raises ConfigUnreadable when the file cannot be read."""
    content = read_config_bytes(path) if text is None else text
    try:
        config = load_config(content, source=path, webhook_timeout=webhook_timeout)
    except ConfigError as exc:
        return ConfigReport(config=None, errors=tuple(str(exc).split("\n")), warnings=())
    unusable, absent = file_problems(config)
    errors = [*unusable, *(absent if absent_files_are_errors else [])]
    return ConfigReport(config=None if errors else config, errors=tuple(errors),
                        warnings=() if absent_files_are_errors else tuple(absent))


def validated_config(path: str, *, webhook_timeout: int = DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
                     text: bytes | None = None) -> Config:
    """The config as `serve` needs it: valid and every named file usable; raises
    ConfigError with the validator's words otherwise."""
    report = check_config(path, webhook_timeout=webhook_timeout, text=text)
    if report.config is None:
        raise ConfigError(report.message())
    return report.config
