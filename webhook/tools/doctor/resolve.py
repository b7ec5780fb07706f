"""Step 1, `resolve`: the registry's name to addresses, as the node would look it up.

A `--host-alias` first (what `kci-host-aliases` writes into the node's /etc/hosts), else
this machine's resolver, bounded by `--timeout` (the resolver's own timeouts can add up
to much longer). When the name does not resolve, the fix names the KCI annotations that
give nodes a way to: `kci-host-aliases` and `kci-dns-config`.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from webhook.core.dialects.kci import host_aliases_json
from webhook.core.model import HostAlias
from webhook.core.values.keys import KCI_DNS_CONFIG, KCI_HOST_ALIASES
from webhook.tools.doctor.report import Step, _Fail
from webhook.tools.doctor.session import Session


def check_resolve(s: Session) -> Step:
    host = s.t.host
    if s.t.is_ip:
        s.addresses = [host]
        return Step("resolve", True, f"{host} is an IP address: nothing to resolve",
                    facts={"addresses": [host], "source": "literal"})
    alias = s.o.aliases.get(host)
    if alias is not None:
        s.addresses = [alias]
        return Step("resolve", True, f"{host} → {alias} (--host-alias, as "
                    f"{KCI_HOST_ALIASES} writes it into the node's /etc/hosts)",
                    facts={"addresses": [alias], "source": "host-alias"})
    try:
        s.addresses = _lookup(host, s.t.port, s.o.timeout)
    except (socket.gaierror, UnicodeError, TimeoutError) as exc:
        why = (f"no answer within {s.o.timeout:g}s" if isinstance(exc, TimeoutError)
               else getattr(exc, "strerror", None) or str(exc))
        raise _Fail(f"cannot resolve {host}: {why}", _resolve_fix(host),
                    notes=["looked up from this machine: a node resolves with its own "
                           "DNS servers, /etc/hosts and kci-host-aliases"]) from None
    return Step("resolve", True, f"{host} → {', '.join(s.addresses)} (this machine's "
                "resolver)", notes=["a node resolves with its own DNS servers, /etc/hosts "
                                    "and kci-host-aliases: the answer may differ there"],
                facts={"addresses": s.addresses, "source": "resolver"})


def _lookup(host: str, port: int, timeout: float) -> list[str]:
    """getaddrinfo, bounded: the resolver's own timeouts can add up to much longer."""
    box: list[Any] = []

    def work() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # handed to the caller
            box.append(exc)

    thread = threading.Thread(target=work, daemon=True, name=f"resolve {host}")
    thread.start()
    thread.join(timeout)
    if not box:
        raise TimeoutError(f"no answer within {timeout:g}s")
    if isinstance(box[0], Exception):
        raise box[0]
    return list(dict.fromkeys(str(info[4][0]) for info in box[0]))


def _resolve_fix(host: str) -> str:
    alias = host_aliases_json((HostAlias("<registry IP>", (host,)),))
    return "\n".join((
        f"give nodes a way to resolve {host}: a host alias, {KCI_HOST_ALIASES}: '{alias}' "
        "on the pod template or the namespace (or KCI_HOST_ALIASES on the virtual kubelet)",
        f"or a DNS server that knows it: {KCI_DNS_CONFIG}: "
        "'{\"nameservers\":[\"<DNS server IP>\"]}' (or KCI_DNS_CONFIG)",
        f"check the alias here with --host-alias <registry IP>={host}"))
