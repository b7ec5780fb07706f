"""What the API server checks on a pod the webhook produced, written down independently of
the webhook's own code so the tests cannot agree with a mistake:

- the OpenAPI schema, strict (an unknown field is an error), for the oldest and the newest
  release kubernetes-validate ships;
- the rules of pkg/apis/core/validation that the schema cannot express, as the oldest
  supported API server (1.24) applies them to the fields the webhook writes:
  validatePodDNSConfig, ValidateHostAliases, ValidateAnnotations (total size), plus the
  list-map key of spec.hostAliases (`ip`).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils

VERSIONS = (kubernetes_validate.utils.all_versions()[0], kubernetes_validate.latest_version())

# The library reads its 1-2 MB definitions file again on every call (~20 ms); the files
# never change during a run, and jsonschema only reads them.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(  # type: ignore[assignment]
    kubernetes_validate.utils.schema_contents)

# k8s.io/apimachinery/pkg/util/validation: IsDNS1123Subdomain.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_ANNOTATIONS_LIMIT = 256 * 1024          # TotalAnnotationSizeLimitB
_MAX_NAMESERVERS, _MAX_SEARCHES, _MAX_SEARCH_CHARS = 3, 6, 256   # 1.24: ExpandedDNSConfig off


def schema_valid(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj`, after checking it against every schema in VERSIONS (raises if one refuses)."""
    for version in VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)
    return obj


def api_server_problems(pod: dict[str, Any]) -> list[str]:
    """What a 1.24 API server would say about the pod's DNS config, host aliases and
    annotations; empty when it accepts them."""
    spec = pod.get("spec") or {}
    problems = [*_dns_problems(spec.get("dnsConfig")), *_host_alias_problems(spec)]
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    total = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if total > _ANNOTATIONS_LIMIT:
        problems.append(f"metadata.annotations: Too long: must have at most {_ANNOTATIONS_LIMIT}"
                        f" bytes, got {total}")
    return problems


def accepted(pod: dict[str, Any]) -> dict[str, Any]:
    """`pod`, after checking that both schemas and the 1.24 rules accept it."""
    schema_valid(pod)
    problems = api_server_problems(pod)
    assert not problems, problems
    return pod


def _subdomain(value: str) -> bool:
    return len(value) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(value) is not None


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _dns_problems(dns: Any) -> list[str]:
    if not dns:
        return []
    problems = []
    nameservers, searches = dns.get("nameservers") or [], dns.get("searches") or []
    if len(nameservers) > _MAX_NAMESERVERS:
        problems.append("spec.dnsConfig.nameservers: must not have more than 3 nameservers")
    problems += [f"spec.dnsConfig.nameservers[{i}]: Invalid value: {ns!r}"
                 for i, ns in enumerate(nameservers) if not _ip(ns)]
    if len(searches) > _MAX_SEARCHES:
        problems.append("spec.dnsConfig.searches: must not have more than 6 search paths")
    if len(" ".join(searches)) > _MAX_SEARCH_CHARS:
        problems.append("spec.dnsConfig.searches: must not have more than 256 characters")
    problems += [f"spec.dnsConfig.searches[{i}]: Invalid value: {s.removesuffix('.')!r}"
                 for i, s in enumerate(searches) if not _subdomain(s.removesuffix("."))]
    problems += [f"spec.dnsConfig.options[{i}]: Required value"
                 for i, o in enumerate(dns.get("options") or []) if not o.get("name")]
    return problems


def _host_alias_problems(spec: dict[str, Any]) -> list[str]:
    problems = []
    seen: set[str] = set()
    for i, alias in enumerate(spec.get("hostAliases") or []):
        ip = alias.get("ip", "")
        if not _ip(ip):
            problems.append(f"spec.hostAliases[{i}].ip: Invalid value: {ip!r}")
        if ip in seen:
            problems.append(f"spec.hostAliases[{i}]: Duplicate value: {{\"ip\": {ip!r}}}")
        seen.add(ip)
        problems += [f"spec.hostAliases[{i}].hostnames: Invalid value: {name!r}"
                     for name in alias.get("hostnames") or [] if not _subdomain(name)]
    return problems
