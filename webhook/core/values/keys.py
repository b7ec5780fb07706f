"""The annotation keys the webhook itself reads and writes (KCI's, and its own
`kci-webhook/*`); other vendors' keys are their dialects' (webhook.core.dialects)."""

from __future__ import annotations

KCI_DNS_CONFIG = "k8s.ksyun.com/kci-dns-config"
KCI_HOST_ALIASES = "k8s.ksyun.com/kci-host-aliases"
KCI_HTTP_REGISTRY = "k8s.ksyun.com/kci-http-registry"
KCI_INSECURE_REGISTRY = "k8s.ksyun.com/kci-insecure-registry"
MIRRORS_SWITCH = "kci-webhook/mirrors"
ORIGINAL_IMAGES = "kci-webhook/original-images"
IMAGE_RECORD = "kci-webhook/images"
IMAGE_PULL_SECRETS = "kci-webhook/image-pull-secrets"
