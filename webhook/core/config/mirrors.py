"""The config file's `mirrors:` list: each endpoint and its source hosts validated, and
what is wrong between mirrors (a cycle refused, a host two mirrors list warned about)."""

from __future__ import annotations

from webhook.core.config.fields import boolean, choice, kind, mapping, optional_str, shown
from webhook.core.config.model import Mirror
from webhook.core.errors import ReferenceError_
from webhook.core.reference import is_path_component_sequence, normalize_domain, parse_registry_host
from webhook.core.values.checks import is_dns1123_subdomain

POLICIES = ("always", "if-present")
_MIRROR_KEYS = {"endpoint", "hosts", "pullSecret", "caFile", "insecureSkipVerify", "policy",
                "allowCredentialsOverHTTP", "pullCredentialConfigPath"}


def mirrors_from_data(value: object, problems: list[str]) -> list[tuple[int, Mirror]]:
    """The valid mirrors, each with its position in the file (a message about one names
    that position, even when an invalid mirror before it was left out)."""
    if not isinstance(value, list):
        problems.append(f"mirrors: expected a list, got {kind(value)}")
        return []
    mirrors = []
    for index, item in enumerate(value):
        mirror = _mirror(item, f"mirrors[{index}]", problems)
        if mirror is not None:
            mirrors.append((index, mirror))
    return mirrors


def _mirror(item: object, where: str, problems: list[str]) -> Mirror | None:
    before = len(problems)
    if not isinstance(item, dict):
        problems.append(f"{where}: expected a mapping (endpoint, hosts, ...), got {kind(item)}")
        return None
    data = mapping(item, where, problems, _MIRROR_KEYS)
    if "endpoint" not in data and isinstance(item, dict):
        problems.append(f"{where}: \"endpoint\" is required")
    scheme, host, namespace = parse_endpoint(data.get("endpoint"), f"{where}.endpoint", problems)
    hosts = _source_hosts(data.get("hosts"), f"{where}.hosts", problems)
    pull_secret = optional_str(data.get("pullSecret"), f"{where}.pullSecret", problems)
    if pull_secret is not None and not is_dns1123_subdomain(pull_secret):
        problems.append(f"{where}.pullSecret: {pull_secret!r} is not a valid Secret name "
                        "(a DNS-1123 subdomain)")
    allow_http_creds = boolean(data.get("allowCredentialsOverHTTP", False),
                             f"{where}.allowCredentialsOverHTTP", problems)
    credentials = optional_str(data.get("pullCredentialConfigPath"),
                                f"{where}.pullCredentialConfigPath", problems)
    if scheme == "http" and (pull_secret or credentials) and not allow_http_creds:
        problems.append(f"{where}: endpoint is plain http:// but credentials are configured "
                        "(pullSecret/pullCredentialConfigPath); they would travel in clear. "
                        "Use https://, or set allowCredentialsOverHTTP: true if you accept that")
    mirror = Mirror(
        endpoint=str(data.get("endpoint", "")), scheme=scheme, host=host, namespace=namespace,
        hosts=hosts, pull_secret=pull_secret,
        ca_file=optional_str(data.get("caFile"), f"{where}.caFile", problems),
        insecure_skip_verify=boolean(data.get("insecureSkipVerify", False),
                                   f"{where}.insecureSkipVerify", problems),
        policy=choice(data.get("policy", "always"), f"{where}.policy", POLICIES, problems),
        allow_credentials_over_http=allow_http_creds,
        pull_credential_config_path=credentials,
    )
    return mirror if len(problems) == before else None


def parse_endpoint(value: object, where: str, problems: list[str]) -> tuple[str, str, str]:
    """Split a mirror endpoint into (scheme, host[:port], namespace).

    Both containerd/GDC forms mean the same: `https://h:5000/v2/ns` and `h:5000/ns`.
    No scheme means https, as containerd assumes.
    """
    if not isinstance(value, str) or not value.strip():
        if value is not None:
            problems.append(f"{where}: expected a URL such as https://host:5000/v2/namespace")
        return "https", "", ""
    text = value.strip()
    scheme = "https"
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            problems.append(f"{where}: scheme {scheme!r} is not http or https")
            return "https", "", ""
    host, _, path = text.partition("/")
    try:
        parse_registry_host(host)
    except ReferenceError_:
        problems.append(f"{where}: {host!r} is not a registry host[:port]")
        return scheme, "", ""
    path = path.strip("/")
    if path == "v2" or path.startswith("v2/"):
        path = path[3:]
    if path and not is_path_component_sequence(path):
        problems.append(f"{where}: namespace {path!r} is not a valid repository path "
                        "(lowercase components separated by '/')")
        return scheme, "", ""
    return scheme, host.lower(), path


def _source_hosts(value: object, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: expected a non-empty list of registry hosts "
                        "(such as docker.io, gcr.io)")
        return ()
    hosts: list[str] = []
    for index, item in enumerate(value):
        try:
            if not isinstance(item, str):
                raise ReferenceError_("ErrRegistryHostInvalid", repr(item))
            parse_registry_host(item)
        except ReferenceError_:
            problems.append(f"{where}[{index}]: {shown(item)} is not a registry host[:port] "
                            "(no scheme, no path)")
            continue
        host = normalize_domain(item.lower())
        if host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def cycles(mirrors: list[tuple[int, Mirror]]) -> list[str]:
    """A mirror host that is also a source would be rewritten again: refuse it at load.
    `mirrors`: each with its position in the file."""
    problems = []
    for i, mirror in mirrors:
        for j, other in mirrors:
            if normalize_domain(mirror.host) in other.hosts:
                problems.append(
                    f"mirrors[{i}]: endpoint host {mirror.host!r} is also a source in "
                    f"mirrors[{j}].hosts; images rewritten to it would be rewritten again "
                    "(a cycle). Remove it from hosts")
    return problems


def shadowed_hosts(mirrors: tuple[Mirror, ...]) -> list[str]:
    """A source host listed by two mirrors: the first that lists it serves it
    (webhook.core.mutation.images asks them in order), so the later one is never used for
    it. Valid, but surely not meant: a warning, not an error."""
    first: dict[str, int] = {}
    warnings = []
    for index, mirror in enumerate(mirrors):
        for host in mirror.hosts:
            if host in first:
                warnings.append(
                    f"mirrors[{index}].hosts: {host} is also listed by mirrors[{first[host]}], "
                    f"which serves it (the first mirror that lists a host does); "
                    f"mirrors[{index}] is never used for {host}")
            else:
                first[host] = index
    return warnings
