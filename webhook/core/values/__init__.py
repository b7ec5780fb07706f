"""Annotation values: the collector of their problems, the checks every dialect shares,
the keys, the comma lists, JSON text.

Pure (stdlib + orjson, no I/O). The same values arrive as pod annotations, Namespace
annotations, the virtual kubelet's `KCI_HOST_ALIASES` / `KCI_DNS_CONFIG` environment
variables and the config file, so every parser takes the `level` the value came from.
Each dialect's own grammar (the KCI JSON values: `webhook.core.dialects.kci`) is built
from these parts.

Validation follows the Kubernetes API's own (`ValidateHostAliases`, `validatePodDNSConfig`):
the pod is refused at admission with a message its author can act on, instead of being
accepted and failing later as `ErrImagePull` on a virtual node. All problems of one value
are collected and raised together as one `AnnotationError`, each message of the form

    <key> (<level>): <position>: <what was expected>

e.g. ``k8s.ksyun.com/kci-host-aliases (pod): item 1: "ip": "1.2.3" is not an IPv4 or IPv6
address``. Items are counted from 1, as a person counts them, and always in words
(`item 2`, `"searches" item 2`): brackets are left to paths that count from 0, as yq and
kubectl do (`mirrors[0]` in the config, `spec.containers[0]`).
"""
