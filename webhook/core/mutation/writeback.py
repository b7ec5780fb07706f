# Over 300 lines: every value written into a pod, and how it reads again, judged in one place.
"""What the mutation writes into a pod, so the API server and the virtual kubelet accept it.

Pure functions of data, used by `webhook.core.mutation.create`: `apply_registries`,
`apply_host_aliases`, `apply_dns` and `apply_pull_secrets` write each level's values into
the new pod, by these rules:

- **spec.hostAliases is a list-map keyed on `ip`**: hostnames are added to the entry of
  their IP (`add_by_ip`), never as a second entry for one IP.
- **The written-back values are read off the final spec**, so the virtual kubelet (which
  reads the annotations) and the container (which gets the spec) cannot disagree:
  `resolved` is what /etc/hosts answers, `as_merged` the DNS options the spec ends up with.
- **What is written back is what the webhook's own parser accepts**, so the next pass
  (reinvocation) reads it as the value judged: an IP from the pod's spec.hostAliases
  is written as Kubernetes reads it (`written_ip`); a DNS option the dialect's format
  cannot carry is never written into it (`writable_options`).
- **256 KiB**: the API server refuses an object whose annotations total more than
  256 KiB (len(key) + len(value) in UTF-8 bytes over all of them,
  TotalAnnotationSizeLimitB). A pod under the limit can pass it once the values are
  written back; `annotations_size_problem` refuses it first, with the numbers, where the
  API server's message would not say why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from webhook.core.config import Config, Mirror
from webhook.core.model import (
    DnsConfig,
    DnsOption,
    dns_config_from_spec,
    dns_config_to_spec,
    host_aliases_to_spec,
)
from webhook.core.mutation.images import Pod
from webhook.core.mutation.judge import Judged, on_invalid
from webhook.core.mutation.layers import (
    Layer,
    effective_dns,
    group_by_ip,
    merge_host_aliases,
    union,
)
from webhook.core.values.checks import dns_limit_problems, ip_key, is_ip, spec_ip
from webhook.core.values.keys import KCI_DNS_CONFIG
from webhook.core.values.problems import quoted
from webhook.core.values.size import MAX_ANNOTATIONS_BYTES


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


def written_ip(ip: str, name: str, key: str, warnings: list[str]) -> str | None:
    """The text to write for `ip`, taken from the pod's spec.hostAliases for `name`; None
    when it is no address at all (the API server refuses such a pod).

    1.24 accepts spellings the annotation parsers refuse (`spec_ip`): they are written as
    the address Kubernetes reads, with a warning, since resolvers differ on them (some read
    `010.0.0.1` as octal, some skip the line)."""
    if is_ip(ip):
        return spec_ip(ip)   # `FD00:0::1` → `fd00::1`, as the parsers write it
    canonical = spec_ip(ip)
    if canonical is not None:
        warnings.append(f"spec.hostAliases: {quoted(ip)} (hostname {name!r}) is written to "
                        f"{key} as {canonical}, the address Kubernetes reads; write "
                        f"{canonical} in the spec too: newer API servers refuse this form for "
                        "a new pod, and resolvers differ on it")
    return canonical


def writable_options(dns: DnsConfig, spec_dns: object, *, key: str, level: str,
                     check: Callable[[DnsOption], str | None],
                     warnings: list[str]) -> DnsConfig | str:
    """`dns` as it can be written into `key` (a text format, the eks dialect's
    resolv-conf), or the denial when it cannot.

    An option whose value the pod's own spec.dnsConfig gives (the spec's win) is the pod
    author's: one the format cannot carry refuses the pod, whatever onInvalid says, since
    written it would read back as other options or lines, and left out the annotation would
    disagree with the spec. One from a platform default (JSON, any text) is left out of the
    written value, with a warning."""
    bad = [(option, why) for option in dns.options if (why := check(option))]
    if not bad:
        return dns
    spec_options = (spec_dns.get("options") if isinstance(spec_dns, dict) else None) or []
    in_spec = {o.get("name"): i for i, o in enumerate(spec_options) if isinstance(o, dict)}
    for option, why in bad:
        if option.name in in_spec:
            return (f"spec.dnsConfig.options[{in_spec[option.name]}]: {quoted(option.name)}"
                    f"{'' if option.value is None else '=' + quoted(option.value)} cannot be "
                    f"written into {key}: {why}")
    for option, why in bad:
        warnings.append(f"{key}: option {quoted(option.name)} from the {level} defaults "
                        f"cannot be written into it ({why}); left out of {key}")
    dropped = {option for option, _why in bad}
    return replace(dns, options=tuple(o for o in dns.options if o not in dropped))


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


# --- each level's values into the new pod ------------------------------------------------


def apply_registries(annotations: dict[str, Any], judged: Judged, *, layers: list[Layer],
                      used: list[Mirror]) -> str | None:
    """Union of every level, plus the mirrors this pod pulls from that need them; the
    denial when the union is longer than the vendor reads (`Dialect.max_registries`:
    each level is within it, their union need not be)."""
    dialect, pod_layer = judged.dialect, judged.layer
    mirrors_http = [m.host for m in used if m.plain_http]
    mirrors_insecure = [m.host for m in used if m.skips_verification]
    http = union([*(layer.http_registries for layer in layers), mirrors_http])
    insecure = union([*(layer.insecure_registries for layer in layers), mirrors_insecure])
    for key, entries, own, need, field, mirrors in (
            (dialect.http_key, http, pod_layer.http_registries, "plain HTTP",
             "http_registries", mirrors_http),
            (dialect.insecure_key, insecure, pod_layer.insecure_registries,
             "TLS verification skipped", "insecure_registries", mirrors_insecure)):
        if not entries:
            continue
        if key is None:
            judged.warnings.append(dialect.cannot_say(", ".join(entries), need))
            continue
        limit = dialect.max_registries
        if limit is not None and len(entries) > limit:
            sources = [f"{len(getattr(layer, field))} from the {layer.level}"
                       for layer in layers if getattr(layer, field)]
            if mirrors:
                sources.append(f"{len(mirrors)} for the mirrors")
            return (f"{key}: {len(entries)} registries once every level's are merged "
                    f"({', '.join(sources)}), and {dialect.vendor} reads at most {limit}; "
                    "list fewer on the pod (the namespace's and the mirrors' are added)")
        if entries != own:
            annotations[key] = dialect.write_registries(entries)
    return None


def apply_host_aliases(spec: Pod, annotations: dict[str, Any], *, judged: Judged,
                        layers: list[Layer]) -> str | None:
    """Add to spec.hostAliases the hostnames it lacks; write back what the spec resolves.

    The spec's own entries are kept and win a hostname. The annotation written back is
    read off the final spec — each effective hostname with the IP the container's
    /etc/hosts gives it — so the virtual kubelet and the container cannot disagree. An IP
    taken from the spec is written as Kubernetes reads it (`spec_ip`), so the value
    written back is one the webhook's own parser accepts on the next pass.
    """
    dialect = judged.dialect
    effective = merge_host_aliases(layers)
    if not effective:
        return None
    current = spec.get("hostAliases")
    if not current:     # the common case: the spec gets exactly the effective aliases
        spec["hostAliases"] = host_aliases_to_spec(effective)
        written = effective
    else:
        present = resolved(current)
        missing = [(name, alias.ip) for alias in effective for name in alias.hostnames
                   if name not in present]
        final = add_by_ip(current, missing) if missing else current
        if missing:
            spec["hostAliases"] = final
        if not (dialect.hosts_key and dialect.write_hosts):
            return None
        ip_of = resolved(final)
        pairs = []
        for name in (name for alias in effective for name in alias.hostnames):
            ip = written_ip(ip_of[name], name, dialect.hosts_key, judged.warnings)
            if ip is None:
                return (f"spec.hostAliases: hostname {name!r}: {quoted(ip_of[name])} is not "
                        "an IPv4 or IPv6 address")
            pairs.append((name, ip))
        written = group_by_ip(pairs)
    if written != judged.layer.host_aliases and dialect.hosts_key and dialect.write_hosts:
        annotations[dialect.hosts_key] = dialect.write_hosts(written)
    return None


def apply_dns(spec: Pod, annotations: dict[str, Any], *, judged: Judged, layers: list[Layer],
               config: Config) -> str | None:
    """Merge the winning DNS config into spec.dnsConfig; limits are checked after the merge.
    What is written back is the winning config as the spec then has it (`as_merged`):
    an option named twice is written once, with the value that wins in the kubelet."""
    dialect, pod_layer, warnings = judged.dialect, judged.layer, judged.warnings
    key = dialect.dns_key
    dns, level = effective_dns(layers)
    if dns is None:
        return None
    current = dns_config_from_spec(spec.get("dnsConfig"))
    merged = merge_dns(current, dns)
    problems = dns_limit_problems(merged, level=level, context="after merging with spec.dnsConfig",
                                  key=key or KCI_DNS_CONFIG)
    if problems:
        denial, notes = on_invalid(problems, config, deny=level == "pod")
        if denial:
            return denial
        warnings.extend(notes)
        if level != "pod" or key is None:
            return None
        # Ignored as if unset: the next level's value takes its place, on the pod too.
        ignored = replace(pod_layer, dns_config=None, invalid=(*pod_layer.invalid, key))
        raw = annotations.get(key)
        denial = apply_dns(spec, annotations, judged=replace(judged, layer=ignored),
                            layers=[ignored, *layers[1:]], config=config)
        if annotations.get(key) == raw:   # no other level's value took its place
            annotations.pop(key, None)
        return denial
    effective = as_merged(dns, merged)
    if dialect.unwritable_option is not None and key:
        writable = writable_options(effective, spec.get("dnsConfig"), key=key, level=level,
                                    check=dialect.unwritable_option, warnings=warnings)
        if isinstance(writable, str):
            return writable
        effective = writable
    limit = dialect.max_nameservers
    if limit is not None and key and len(effective.nameservers) > limit:
        # Only a platform default (read as JSON, up to the API's 3) can be longer: the
        # dialect's own reader refuses more. The spec keeps them all.
        warnings.append(f"{key}: nameserver {', '.join(effective.nameservers[limit:])} from "
                        f"the {level} defaults is left out of it ({dialect.vendor} reads at "
                        f"most {limit}); spec.dnsConfig has it")
        effective = replace(effective, nameservers=effective.nameservers[:limit])
    if merged != current:
        spec["dnsConfig"] = {**(spec.get("dnsConfig") or {}), **dns_config_to_spec(merged)}
    if effective != pod_layer.dns_config and key and dialect.write_dns:
        annotations[key] = dialect.write_dns(effective)
    return None


def merge_dns(current: DnsConfig, extra: DnsConfig) -> DnsConfig:
    """The spec's entries first and winning; options by name. `extra`'s options are added
    once a name, with the last value of that name (the kubelet's reading), so the spec and
    the value written back agree on the first pass."""
    names = {option.name for option in current.options}
    added = {o.name: o for o in extra.options if o.name not in names}
    options: tuple[DnsOption, ...] = current.options + tuple(added.values())
    return DnsConfig(nameservers=union([current.nameservers, extra.nameservers]),
                     searches=union([current.searches, extra.searches]),
                     options=options)


def apply_pull_secrets(spec: Pod, ns_layer: Layer | None, used: list[Mirror]) -> None:
    """Existing entries kept, duplicates folded, order stable."""
    wanted = [*(ns_layer.pull_secrets if ns_layer else ()),
              *(m.pull_secret for m in used if m.pull_secret)]
    existing = spec.get("imagePullSecrets") or []
    present = {s.get("name") for s in existing}
    added = [{"name": name} for name in dict.fromkeys(wanted) if name not in present]
    if added:
        spec["imagePullSecrets"] = [*existing, *added]
