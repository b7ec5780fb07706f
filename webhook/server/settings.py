"""What a worker is told, and the config it starts with.

Every uvicorn worker reads the same environment, so every worker agrees on its settings;
the config file is read and validated once at start (and again on each reload, by
`webhook.server.state`), never per request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from webhook.adapters.configfile import read_config_bytes, validated_config
from webhook.core import config as config_mod
from webhook.core.admission.envelope import DEFAULT_MAX_BODY_BYTES
from webhook.server.drain import DEFAULT_SHUTDOWN_DELAY
from webhook.server.events import DEFAULT_QUEUE_SIZE
from webhook.server.limits import DEFAULT_BODY_MEMORY_BYTES, Limits

TIMEOUT_ENV = "KCI_WEBHOOK_TIMEOUT_SECONDS"


@dataclass
class Settings:
    """What a worker needs; read from the environment so every uvicorn worker agrees."""

    config_path: str | None = None
    cert_file: str = ""
    key_file: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_memory_bytes: int = DEFAULT_BODY_MEMORY_BYTES
    limits: Limits = field(default_factory=Limits)
    own_namespace: str | None = None
    kubeconfig: str | None = None
    shutdown_delay: float = DEFAULT_SHUTDOWN_DELAY
    environ: dict[str, str] = field(default_factory=dict)
    # The webhook configurations' timeoutSeconds: the mirror checks' budget must fit in it.
    webhook_timeout: int = config_mod.DEFAULT_WEBHOOK_TIMEOUT_SECONDS
    # Events for what needs a person (webhook.server.events), and their queue's size.
    events: bool = True
    events_queue_size: int = DEFAULT_QUEUE_SIZE
    # A log line per admission that changed something (webhook.server.changes).
    log_changes: str = "off"
    log_changes_sample_rate: float = 1.0

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        return cls(config_path=env.get("KCI_WEBHOOK_CONFIG") or None,
                   cert_file=env.get("KCI_WEBHOOK_TLS_CERT", ""),
                   key_file=env.get("KCI_WEBHOOK_TLS_KEY", ""),
                   max_body_bytes=int(env.get("KCI_WEBHOOK_MAX_BODY_BYTES",
                                              DEFAULT_MAX_BODY_BYTES)),
                   body_memory_bytes=int(env.get("KCI_WEBHOOK_BODY_MEMORY_BYTES",
                                                 DEFAULT_BODY_MEMORY_BYTES)),
                   limits=Limits.from_environ(env),
                   own_namespace=env.get("POD_NAMESPACE") or None,
                   kubeconfig=env.get("KCI_WEBHOOK_KUBECONFIG") or None,
                   shutdown_delay=float(env.get("KCI_WEBHOOK_SHUTDOWN_DELAY",
                                                DEFAULT_SHUTDOWN_DELAY)),
                   environ=env, webhook_timeout=config_mod.parse_webhook_timeout(
                       env.get(TIMEOUT_ENV) or str(config_mod.DEFAULT_WEBHOOK_TIMEOUT_SECONDS),
                       where=TIMEOUT_ENV),
                   events=env.get("KCI_WEBHOOK_EVENTS", "on") != "off",
                   events_queue_size=int(env.get("KCI_WEBHOOK_EVENTS_QUEUE_SIZE",
                                                 DEFAULT_QUEUE_SIZE)),
                   log_changes=env.get("KCI_WEBHOOK_LOG_CHANGES") or "off",
                   log_changes_sample_rate=float(
                       env.get("KCI_WEBHOOK_LOG_CHANGES_SAMPLE_RATE") or 1.0))


def load_settings_config(settings: Settings) -> tuple[config_mod.Config,
                                                       config_mod.EnvironmentDefaults]:
    """Config file and KCI_* environment, validated, and the files the config names
    usable (the validator `mutate` and `config check` share); raises ConfigError naming
    the source (and the key and file)."""
    config = (validated_config(settings.config_path, webhook_timeout=settings.webhook_timeout)
              if settings.config_path else config_mod.Config())
    return config, config_mod.environment_defaults(settings.environ)


def read_config(settings: Settings, text: bytes | None = None) -> config_mod.Config:
    """The config file, parsed and validated (its named files not yet opened); `text`: its
    content as already read (a reload parses the bytes it took the digest of)."""
    if not settings.config_path:
        return config_mod.Config()
    if text is None:
        text = read_config_bytes(settings.config_path)
    return config_mod.load_config(text, source=settings.config_path,
                                  webhook_timeout=settings.webhook_timeout)
