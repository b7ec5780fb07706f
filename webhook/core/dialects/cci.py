"""Huawei Cloud CCI 2.0: no registry, host or DNS annotation is documented.

CCI 2.0's image documentation names `cci.io/registry-headers` (extra request headers per
registry), which says nothing about the protocol or TLS; so this dialect reads and writes
no annotation. Images are still rewritten to mirrors and pull secrets added, and host
entries and DNS reach the pod through `spec.hostAliases` / `spec.dnsConfig`.
"""

from __future__ import annotations

from webhook.core.dialects.base import Dialect

CCI = Dialect(name="cci", vendor="Huawei Cloud CCI 2.0")
