"""Huawei Cloud CCI 2.0: the registry annotations of its user manual.

- `cci.io/http-registries`, `cci.io/insecure-registries`: comma lists of at most 10
  registry addresses, none empty ("Pulling an image from a self-managed image
  repository", page cci_01_0117). An address is a domain name, a VPC or public IP, with a
  port where the registry has one; it may carry a scheme prefix (`http://` in the HTTP
  list, `https://` in the insecure one) and a relative path.
- Extra hosts and DNS: no annotation is documented; `spec.hostAliases` / `spec.dnsConfig`
  carry them.

An entry is read into the canonical form the other dialects' lists hold: the scheme is
dropped (it only repeats what the list says), the host folded to lowercase, a path kept
as written (lowercase repository path components). The security rules key an entry with
a path by its host (`webhook.core.config.registry_key`): a path narrows what the vendor
weakens, never takes the host out of the rules.
"""

from __future__ import annotations

import re

from webhook.core.dialects.base import Dialect
from webhook.core.values.lists import list_entries, registry_list_text, registry_problem
from webhook.core.values.problems import Problems, quoted

CCI_HTTP_REGISTRIES = "cci.io/http-registries"
CCI_INSECURE_REGISTRIES = "cci.io/insecure-registries"
CCI_MAX_REGISTRIES = 10

# The scheme each list may repeat: the one its registries are reached over.
_SCHEMES = {CCI_HTTP_REGISTRIES: "http", CCI_INSECURE_REGISTRIES: "https"}
# A repository path: the image reference grammar's path components, joined by '/'.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_PATH_MAX = 255   # the reference grammar's limit on a repository path


def parse_registries(raw: str, *, key: str, level: str) -> tuple[str, ...]:
    """Parse a CCI registry list: `[scheme://]host[:port][/path]`, at most 10 entries."""
    problems = Problems(key, level)
    entries = list(list_entries(raw, problems))
    if len(entries) > CCI_MAX_REGISTRIES:
        problems.add("", f"{len(entries)} entries, at most {CCI_MAX_REGISTRIES} allowed "
                         "(the CCI 2.0 limit)")
    registries: dict[str, None] = {}
    for position, entry in entries:
        canonical = _entry(entry, _SCHEMES.get(key), position, problems)
        if canonical is not None:
            registries.setdefault(canonical)
    problems.check()
    return tuple(registries)


def _entry(entry: str, scheme: str | None, position: str, problems: Problems) -> str | None:
    """The canonical `host[:port][/path]` of one entry, or None with its problem recorded."""
    rest = entry
    if "://" in entry:
        given, rest = entry.split("://", 1)
        if given.lower() != scheme:
            allowed = f'only "{scheme}://"' if scheme else "no scheme"
            problems.add(position, f"{quoted(entry)}: {allowed} may prefix an entry of this "
                                   f"list: write {rest or 'host[:port]'}")
            return None
    host, slash, path = rest.partition("/")
    host = host.lower()
    problem = registry_problem(host)
    if problem:
        problems.add(position, f"{quoted(entry)}: {problem}")
        return None
    path = path.rstrip("/") if slash else ""
    if path and (len(path) > _PATH_MAX or not _PATH.fullmatch(path)):
        problems.add(position, f"{quoted(entry)}: path {quoted(path)} is not a repository "
                               "path (lowercase letters and digits, separated by '.', '_', "
                               "'__' or '-', components joined by '/'; at most "
                               f"{_PATH_MAX} characters)")
        return None
    return f"{host}/{path}" if path else host


CCI = Dialect(
    name="cci", vendor="Huawei Cloud CCI 2.0",
    http_key=CCI_HTTP_REGISTRIES, insecure_key=CCI_INSECURE_REGISTRIES,
    read_registries=parse_registries, write_registries=registry_list_text,
    max_registries=CCI_MAX_REGISTRIES,
)
