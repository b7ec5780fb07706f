"""What the mutation writes into a pod, so the API server and the virtual kubelet accept it.

Pure functions of data, used by `webhook.mutate`:

- **spec.hostAliases is a list-map keyed on `ip`**: hostnames are added to the entry of
  their IP (`add_by_ip`), never as a second entry for one IP.
- **The written-back values are read off the final spec**, so the virtual kubelet (which
  reads the annotations) and the container (which gets the spec) cannot disagree:
  `resolved` is what /etc/hosts answers, `as_merged` the DNS options the spec ends up with.
- **256 KiB**: the API server refuses an object whose annotations total more than
  256 KiB (len(key) + len(value) in UTF-8 bytes over all of them,
  TotalAnnotationSizeLimitB). A pod under the limit can pass it once the values are
  written back; `annotations_size_problem` refuses it first, with the numbers, where the
  API server's message would not say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from webhook.annotations import MAX_ANNOTATIONS_BYTES, DnsConfig, ip_key


def resolved(entries: list[Any]) -> dict[str, str]:
    """hostname → IP as /etc/hosts answers it: the kubelet writes the entries in order and
    the resolver takes the first line that names the host."""
    ip_of: dict[str, str] = {}
    for entry in entries:
        ip = entry.get("ip")
        names = entry.get("hostnames")
        if isinstance(ip, str) and isinstance(names, list):
            for name in names:
                if isinstance(name, str):
                    ip_of.setdefault(name, ip)
    return ip_of


def add_by_ip(entries: list[Any], pairs: list[tuple[str, str]]) -> list[Any]:
    """`entries` with each (hostname, ip) added to the entry for its IP, else to a new one.

    Two entries for one IP are refused by server-side apply (the list-map key) and make two
    /etc/hosts lines. The same address written two ways (`fd00::1`, `fd00:0::1`) is one
    key here. Entries are copied where they change; the received pod is never modified.
    """
    result = list(entries)
    index: dict[object, int] = {}
    for i, entry in enumerate(result):
        ip = entry.get("ip")
        if isinstance(ip, str) and isinstance(entry.get("hostnames", []), list):
            index.setdefault(ip_key(ip), i)
    copied: set[int] = set()
    for name, ip in pairs:
        at = index.get(ip_key(ip))
        if at is None:
            index[ip_key(ip)] = len(result)
            copied.add(len(result))
            result.append({"ip": ip, "hostnames": [name]})
            continue
        if at not in copied:
            copied.add(at)
            result[at] = {**result[at], "hostnames": list(result[at].get("hostnames") or [])}
        result[at]["hostnames"].append(name)
    return result


def as_merged(dns: DnsConfig, merged: DnsConfig) -> DnsConfig:
    """`dns`'s entries with the values the merged spec gives them: an option the spec sets
    is the spec's (the kubelet applies options in order, so the last of a name wins)."""
    value_of = {option.name: option for option in merged.options}
    options = tuple(dict.fromkeys(value_of[option.name] for option in dns.options))
    return replace(dns, options=options)


def annotations_bytes(annotations: Mapping[str, Any]) -> int:
    """What the API server counts: UTF-8 bytes of every key and value."""
    return sum(_bytes(key) + _bytes(value) for key, value in annotations.items())


def _bytes(text: object) -> int:
    if not isinstance(text, str):
        return 0
    # str.isascii() is O(1) in CPython: the common case costs no encoding.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def annotations_size_problem(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """Why the annotations after the write-back would be refused, or None."""
    try:
        chars = sum(map(len, after)) + sum(map(len, after.values()))
    except TypeError:       # a value that is no string: count exactly
        chars = MAX_ANNOTATIONS_BYTES
    if chars * 4 <= MAX_ANNOTATIONS_BYTES:      # UTF-8 spends at most 4 bytes a character
        return None
    total = annotations_bytes(after)
    if total <= MAX_ANNOTATIONS_BYTES:
        return None
    changed = [key for key, value in after.items() if before.get(key) != value]
    return (f"metadata.annotations: {total} bytes once the webhook writes back "
            f"{', '.join(changed)}; the API server refuses a pod whose annotations (keys and "
            f"values) total more than {MAX_ANNOTATIONS_BYTES} bytes. Shorten the pod's "
            f"annotations ({annotations_bytes(before)} bytes as received) or the defaults "
            "its namespace or the platform sets")
