"""Kingsoft Cloud KCI: the webhook's original annotations, read by `webhook.core.annotations`."""

from __future__ import annotations

from webhook.core.annotations import (
    KCI_DNS_CONFIG,
    KCI_HOST_ALIASES,
    KCI_HTTP_REGISTRY,
    KCI_INSECURE_REGISTRY,
    dns_config_json,
    host_aliases_json,
    parse_dns_config,
    parse_host_aliases,
)
from webhook.core.dialects.base import Dialect

KCI = Dialect(
    name="kci", vendor="Kingsoft Cloud KCI",
    http_key=KCI_HTTP_REGISTRY, insecure_key=KCI_INSECURE_REGISTRY,
    hosts_key=KCI_HOST_ALIASES, dns_key=KCI_DNS_CONFIG,
    read_hosts=parse_host_aliases, write_hosts=host_aliases_json,
    read_dns=parse_dns_config, write_dns=dns_config_json,
)
