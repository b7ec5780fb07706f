"""Container image references, parsed exactly as github.com/distribution/reference does.
(Over 300 lines: one grammar, its expressions and Docker Hub's normalization, together.)

Kubelet and containerd parse images with that Go package; if this webhook accepted or
split a reference differently, it would rewrite images the node then refuses, or miss
images it should mirror. So the grammar, the regular expressions and the Docker Hub
normalization below are a transcription of regexp.go, reference.go and normalize.go
(distribution/reference@0965666), not a reinvention.

Grammar::

    reference         := name [ ":" tag ] [ "@" digest ]
    name              := [domain '/'] remote-name
    domain            := host [':' port-number]
    host              := domain-name | IPv4address | \\[ IPv6address \\]   ; rfc3986 appendix-A
    domain-name       := domain-component ['.' domain-component]*
    domain-component  := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    port-number       := /[0-9]+/
    path-component    := alpha-numeric [separator alpha-numeric]*
    path (remote-name):= path-component ['/' path-component]*
    alpha-numeric     := /[a-z0-9]+/
    separator         := /[_.]|__|[-]+/

    tag               := /[\\w][\\w.-]{0,127}/

    digest            := digest-algorithm ":" digest-hex
    digest-algorithm  := digest-algorithm-component [ digest-algorithm-separator
                                                      digest-algorithm-component ]*
    digest-algorithm-separator := /[+.-_]/
    digest-algorithm-component := /[A-Za-z][A-Za-z0-9]*/
    digest-hex        := /[0-9a-fA-F]{32,}/   ; at least 128 bit digest value

    identifier        := /[a-f0-9]{64}/

Plus three rules outside the EBNF: the repository *path* is at most 255 characters
(upstream counts the path only since distribution/reference#9; the domain is excluded);
a digest must also pass go-digest's check (a registered algorithm -- sha256, sha384,
sha512 -- with exactly its length of lowercase hex); and `parse_normalized` refuses a bare
64-hex identifier, which would otherwise be mistaken for an image ID.

Errors are `ReferenceError_(kind, text)`; `kind` is one of ``ErrReferenceTooLong``,
``ErrNameEmpty``, ``ErrReferenceInvalidFormat``, ``ErrNameContainsUppercase``,
``repository name must be lowercase`` (the normalized parser's wording),
``ErrNameTooLong``, ``ErrDigestInvalidFormat`` (also go-digest's ErrDigestInvalidLength
and ErrDigestUnsupported), ``ErrNameNotCanonical``, and ``ErrRegistryHostInvalid``.

Deliberate differences from upstream: input over 4096 characters is refused before any
regular expression runs; ``registry-1.docker.io`` is a Docker Hub alias like
``index.docker.io``; and `parse_normalized` refuses a name whose first component has a
"." but is no valid domain ("foo_bar.com/x"), for which upstream returns an empty domain.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from webhook.core.errors import ReferenceError_

NAME_TOTAL_LENGTH_MAX = 255
DEFAULT_DOMAIN = "docker.io"
OFFICIAL_REPO_PREFIX = "library/"

# No real reference comes near this (a 255-character path, a 128-character tag and a
# sha512 digest fit in about 520 characters plus the domain); refusing longer input first
# bounds the regex work an admission request can cause.
REFERENCE_LENGTH_MAX = 4096
# A registry host is a DNS name (at most 253 characters) or an address, plus a port.
REGISTRY_HOST_LENGTH_MAX = 255

_DOCKER_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io"})
_LOCALHOST = "localhost"
# go-digest's registered algorithms and the length of their hex encoding.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}

# --- Regular-expression fragments, named and composed as in regexp.go. -----------------
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_NAME_COMPONENT}(?:\.{_DOMAIN_NAME_COMPONENT})*"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6_ADDRESS})"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"

# Every pattern is used with fullmatch(), the equivalent of Go's `^...$` (Python's `$`
# would also match before a trailing newline). re.ASCII makes `\w` mean [A-Za-z0-9_] as
# in Go. The optional domain group is greedy, so Python's backtracking picks the same
# domain/path split as Go's leftmost-first matching does.
_NAME_PATTERN = rf"(?:(?P<domain>{_DOMAIN_AND_PORT})/)?(?P<path>{_REMOTE_NAME})"
_REFERENCE_RE = re.compile(
    rf"{_NAME_PATTERN}(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII
)
_NAME_RE = re.compile(_NAME_PATTERN, re.ASCII)
_REMOTE_NAME_RE = re.compile(_REMOTE_NAME, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}", re.ASCII)
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+", re.ASCII)
_REGISTRY_HOST_RE = re.compile(
    rf"(?P<host>{_DOMAIN_NAME}|\[(?P<ipv6>[a-fA-F0-9:]+)\])(?::(?P<port>[0-9]{{1,5}}))?",
    re.ASCII,
)
_DOTTED_QUAD_RE = re.compile(r"[0-9]+(?:\.[0-9]+){3}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed image reference: an immutable value; builders return new values.

    `domain` is "" only when the strict `parse` found none; `parse_normalized` always
    fills it. `digest` is "algorithm:hex". A reference may carry a tag and a digest
    together (docker's convention); both are kept exactly as written.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository name, "domain/path" (just the path when there is no domain)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        return self._with_suffixes(self.name)

    def familiar(self) -> str:
        """Docker's short form (FamiliarString): drops "docker.io/" and "library/".

        "library/" goes only when a single component follows it, as upstream does. Like
        upstream, the short form does not always parse back to the same reference:
        "docker.io/localhost/x" becomes "localhost/x", which names the registry localhost,
        and "docker.io/library/<64 hex>" becomes a bare identifier. Use it for display only.
        """
        if self.domain != DEFAULT_DOMAIN:
            return str(self)
        path = self.path
        if path.startswith(OFFICIAL_REPO_PREFIX):
            remainder = path[len(OFFICIAL_REPO_PREFIX) :]
            if "/" not in remainder:
                path = remainder
        return self._with_suffixes(path)

    def with_name(self, domain: str, path: str) -> Reference:
        """The same tag and digest under a new name, validated like upstream's WithName.

        This is how a mirror rewrite builds its result, so a prefix that pushes the path
        past 255 characters, or a domain the grammar does not allow, raises
        `ReferenceError_` instead of producing a reference the node would refuse. With
        domain "" the name is split as the strict parser would split it.
        """
        name = f"{domain}/{path}" if domain else path
        _check_length(name)
        if not path:
            raise ReferenceError_("ErrNameEmpty", name)
        match = _NAME_RE.fullmatch(name)
        if match is None:
            raise ReferenceError_("ErrReferenceInvalidFormat", name)
        new_domain, new_path = match.group("domain") or "", match.group("path")
        if domain and (new_domain, new_path) != (domain, path):
            # e.g. domain "a_b": the whole name only parses as a path, not as this split.
            raise ReferenceError_("ErrReferenceInvalidFormat", name)
        if len(new_path) > NAME_TOTAL_LENGTH_MAX:
            raise ReferenceError_("ErrNameTooLong", name)
        return Reference(new_domain, new_path, self.tag, self.digest)

    def _with_suffixes(self, name: str) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return f"{name}{tag}{digest}"


def parse(text: str) -> Reference:
    """Parse with the strict grammar (upstream `Parse`): no Docker Hub normalization.

    "nginx" gives domain "" and path "nginx"; "library/nginx" gives domain "library"
    (any first component the domain grammar accepts is taken as the domain).
    """
    _check_length(text)
    return _parse(text, original=text)


def parse_normalized(text: str) -> Reference:
    """Parse a reference as docker and kubelet do (upstream `ParseNormalizedNamed`).

    "nginx" becomes docker.io/library/nginx, and the Docker Hub aliases become docker.io.
    The tag and digest are kept exactly (both may be present); ":latest" is never added,
    because a rewrite must not change what the pod asked for.
    """
    _check_length(text)
    if _IDENTIFIER_RE.fullmatch(text):
        # 64 hex characters are an image ID; docker refuses them as repository names.
        raise ReferenceError_("ErrNameNotCanonical", text)
    domain, remainder = _split_docker_domain(text)
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise ReferenceError_("repository name must be lowercase", text)
    ref = _parse(f"{domain}/{remainder}", original=text)
    if not ref.domain:
        # "foo_bar.com/x": the first component has a "." so it is not Docker Hub's, yet
        # the grammar does not accept it as a domain. Upstream returns an empty domain,
        # which no client can pull from; refusing keeps "normalized means a registry".
        raise ReferenceError_("ErrReferenceInvalidFormat", text)
    return ref


def normalize_domain(domain: str) -> str:
    """Map the Docker Hub aliases to "docker.io"; any other domain is returned unchanged."""
    return DEFAULT_DOMAIN if domain in _DOCKER_HUB_ALIASES else domain


def parse_registry_host(text: str) -> tuple[str, int | None]:
    """Split a registry "host[:port]" as the reference grammar's domain allows it.

    Used for registry lists in annotations and mirror endpoints, so it is stricter than
    a bare match of the domain grammar where that grammar would let nonsense through: a
    bracketed IPv6 address must be a real address and a dotted quad a real IPv4 address;
    the port must be 1..65535. Returns the host as written (IPv6 keeps its brackets, as
    it appears in an image reference) and the port, or None when there is none.
    """
    if not isinstance(text, str):
        raise TypeError(f"registry host must be str, not {type(text).__name__}")
    if len(text) > REGISTRY_HOST_LENGTH_MAX:
        raise ReferenceError_("ErrRegistryHostInvalid", text)
    match = _REGISTRY_HOST_RE.fullmatch(text)
    if match is None:
        # Also what a scheme ("https://x"), a path ("x/y"), spaces, an empty string or an
        # unbracketed IPv6 address ("::1") end up as.
        raise ReferenceError_("ErrRegistryHostInvalid", text)
    host, ipv6, port_text = match.group("host", "ipv6", "port")
    try:
        if ipv6 is not None:
            ipaddress.IPv6Address(ipv6)
        elif _DOTTED_QUAD_RE.fullmatch(host):
            ipaddress.IPv4Address(host)  # no DNS name is all-numeric: "999.1.1.1" is a typo
    except ValueError:
        raise ReferenceError_("ErrRegistryHostInvalid", text) from None
    port = int(port_text) if port_text is not None else None
    if port is not None and not 1 <= port <= 65535:
        raise ReferenceError_("ErrRegistryHostInvalid", text)
    return host, port


def is_path_component_sequence(text: str) -> bool:
    """Whether `text` ("a/b-c/d") can begin a repository path, e.g. a mirror namespace."""
    if not isinstance(text, str):
        raise TypeError(f"path must be str, not {type(text).__name__}")
    return len(text) <= NAME_TOTAL_LENGTH_MAX and _REMOTE_NAME_RE.fullmatch(text) is not None


def _check_length(text: str) -> None:
    """Refuse non-strings and oversized input before any regular expression sees it."""
    if not isinstance(text, str):
        raise TypeError(f"image reference must be str, not {type(text).__name__}")
    if len(text) > REFERENCE_LENGTH_MAX:
        raise ReferenceError_("ErrReferenceTooLong", text)


def _parse(text: str, *, original: str) -> Reference:
    """Upstream `Parse` on `text`; errors name `original`, the string the user wrote."""
    if not text:
        raise ReferenceError_("ErrNameEmpty", original)
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        lowered = _go_lower(text)
        if lowered != text and _REFERENCE_RE.fullmatch(lowered):
            raise ReferenceError_("ErrNameContainsUppercase", original)
        raise ReferenceError_("ErrReferenceInvalidFormat", original)
    domain, path, tag, digest = match.group("domain", "path", "tag", "digest")
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise ReferenceError_("ErrNameTooLong", original)
    if digest is not None:
        algorithm, _, encoded = digest.partition(":")
        if _DIGEST_HEX_LENGTH.get(algorithm) != len(encoded) or not _LOWER_HEX_RE.fullmatch(
            encoded
        ):
            raise ReferenceError_("ErrDigestInvalidFormat", original)
    return Reference(domain or "", path, tag, digest)


def _split_docker_domain(name: str) -> tuple[str, str]:
    """Upstream `splitDockerDomain`: decide whether the first component is a registry.

    It is one if it is "localhost", contains "." or ":", or has uppercase letters (a
    repository path cannot); otherwise the reference is on Docker Hub, where a
    single-component path gets the "library/" prefix.
    """
    maybe_domain, slash, maybe_remote = name.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if maybe_domain in _DOCKER_HUB_ALIASES:
        domain, remote = DEFAULT_DOMAIN, maybe_remote
    elif (
        maybe_domain == _LOCALHOST
        or "." in maybe_domain
        or ":" in maybe_domain
        or maybe_domain.lower() != maybe_domain
    ):
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


def _go_lower(text: str) -> str:
    """Go's strings.ToLower where it matters here: Python maps "İ" to "i" plus a combining
    dot, Go to plain "i" (the only non-ASCII letters that lowercase to ASCII are "İ" and
    the Kelvin sign, which both map to one ASCII letter in Go)."""
    return text.replace("\u0130", "i").lower()
