"""The configuration: the config file, and the `KCI_*` environment defaults.

Everything here is parsed and validated once, at start-up (or reload), into frozen values;
admission only reads them. Messages name the file (or variable) and the key.

The package's interface: the values (`model`) and what they imply (`facts`), loading and
validating the file (`load`, with its `fields`, `mirrors` and `yamltext`), the environment
(`environment`) and the registry keys every comparison of hosts is made on (`registries`).
"""

from __future__ import annotations

from webhook.core.config.environment import environment_defaults
from webhook.core.config.facts import HTTP, INSECURE, ConfigFacts, MirrorDeclaration
from webhook.core.config.fields import shown
from webhook.core.config.load import (
    DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
    WEBHOOK_TIMEOUT_RANGE,
    budget_limit,
    config_from_data,
    load_config,
    parse_webhook_timeout,
)
from webhook.core.config.mirrors import parse_endpoint
from webhook.core.config.model import (
    Config,
    Defaults,
    EnvironmentDefaults,
    Mirror,
    MirrorChecks,
    mirror_keys,
)
from webhook.core.config.registries import RegistryKey, registry_allowed, registry_key
from webhook.core.config.yamltext import YamlLoader, yaml_error_message
from webhook.core.errors import ConfigError  # what loading raises

__all__ = [
    "DEFAULT_WEBHOOK_TIMEOUT_SECONDS", "HTTP", "INSECURE", "WEBHOOK_TIMEOUT_RANGE", "Config",
    "ConfigError", "ConfigFacts", "Defaults", "EnvironmentDefaults", "Mirror", "MirrorChecks",
    "MirrorDeclaration", "RegistryKey", "YamlLoader",
    "budget_limit", "config_from_data", "environment_defaults", "load_config", "mirror_keys",
    "parse_endpoint", "parse_webhook_timeout", "registry_allowed", "registry_key", "shown",
    "yaml_error_message",
]
