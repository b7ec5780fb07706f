"""The image reference grammar: upstream conformance, the project's additions, properties.

Conformance data comes from distribution/reference's own tests (tests/data); the
tables below pin what the webhook adds on top (Docker Hub aliases, registry hosts,
with_name for mirror rewrites, the input cap); the Hypothesis properties check that no
string can make the parser raise anything but ReferenceError_, and that what it accepts
prints back exactly.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from webhook.core import reference as reference_module
from webhook.core.errors import ReferenceError_
from webhook.core.reference import (
    DEFAULT_DOMAIN,
    NAME_TOTAL_LENGTH_MAX,
    OFFICIAL_REPO_PREFIX,
    Reference,
    is_path_component_sequence,
    normalize_domain,
    parse,
    parse_normalized,
    parse_registry_host,
)

CASES_FILE = Path(__file__).resolve().parents[1] / "data" / "image_references.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text())
# The size of the data set when these tests were written: a loader or filter that
# dropped cases would otherwise pass silently. Update it together with the data.
EXPECTED_CASE_COUNT = 104

SHA256 = "sha256:" + "f" * 64
SHA512 = "sha512:" + "f" * 128

# Which upstream function each source test exercised, and so which of ours applies.
# Every case also carries `strict_parse` (upstream `Parse`), checked against `parse`.
SOURCE_RULES = {
    # Upstream calls Parse; the data adds what ParseNormalizedNamed/ParseDockerRef give.
    "TestReferenceParse": "parse + parse_normalized",
    # Upstream records this case as a FIXME (uppercase first component is taken as a
    # domain); the data holds the actual behaviour, which we match, not the wished one.
    "TestReferenceParse (commented-out FIXME case)": "parse + parse_normalized",
    # ParseNormalizedNamed (accept/refuse) on names without tag or digest.
    "TestValidateReferenceName/TestValidateRemoteName": "parse_normalized",
    "TestValidateReferenceName/TestValidateRemoteName/TestInvalidReferenceComponents":
        "parse_normalized",
    # ParseNormalizedNamed, then Name/Domain/Path/FamiliarName: parse_normalized + familiar().
    "TestParseRepositoryInfo": "parse_normalized + familiar",
    # ParseNormalizedNamed, then Domain/Path.
    "TestNormalizedSplitHostname": "parse_normalized",
    # ParseDockerRef = ParseNormalizedNamed + ":latest" when bare, tag dropped when a
    # digest is present; we have no such function, the test helper docker_ref() computes it.
    "TestParseDockerRef": "parse_normalized + docker_ref",
    # ParseNormalizedNamed keeps tag and digest together; so do we.
    "TestParseReferenceWithTagAndDigest": "parse_normalized + docker_ref",
    # ParseAnyReference differs from ParseNormalizedNamed only for a bare 64-hex id or a
    # bare digest (it returns a digest reference); none of its cases here is either (the
    # 63-hex one is a name), which test_parse_any_reference_cases_are_names checks.
    "TestParseAnyReference": "parse_normalized",
    # ParseNamed = ParseNormalizedNamed + "must already be canonical"; modelled by
    # parse_named_error() below, also for the `also_asserted` entries of other cases.
    "TestParseNamed": "parse_normalized + ParseNamed",
}


def source_test(case: dict[str, Any]) -> str:
    """"distribution/reference@0965666 normalize_test.go TestX" -> "TestX"."""
    return case["source"].split(" ", 2)[2]


def docker_ref(ref: Reference) -> str:
    """ParseDockerRef's result: ":latest" when bare; only the digest when both are set."""
    if ref.digest is not None:
        return f"{ref.name}@{ref.digest}"
    return f"{ref.name}:{ref.tag or 'latest'}"


def parse_named_error(text: str) -> str | None:
    """Upstream ParseNamed: normalized parse, refused unless `text` is already canonical."""
    try:
        ref = parse_normalized(text)
    except ReferenceError_ as err:
        return err.kind
    return None if str(ref) == text else "ErrNameNotCanonical"


def normalized_outcome(text: str) -> dict[str, Any]:
    try:
        ref = parse_normalized(text)
    except ReferenceError_ as err:
        return {"valid": False, "error": err.kind}
    return {
        "valid": True,
        "normalized": str(ref),
        "docker_ref": docker_ref(ref),
        "familiar": ref.familiar(),
        "domain": ref.domain,
        "path": ref.path,
        "tag": ref.tag,
        "digest": ref.digest,
    }


def strict_outcome(text: str) -> dict[str, Any]:
    try:
        ref = parse(text)
    except ReferenceError_ as err:
        return {"valid": False, "error": err.kind}
    # The data writes "no domain" as null; we use "".
    return {"valid": True, "domain": ref.domain or None, "path": ref.path, "tag": ref.tag,
            "digest": ref.digest}


def case_id(index_and_case: tuple[int, dict[str, Any]]) -> str:
    index, case = index_and_case
    return f"{index}:{case['input'][:40]}"


INDEXED = list(enumerate(CASES))


# --- 1. Conformance with distribution/reference ----------------------------------------

def test_every_case_is_loaded_and_routed() -> None:
    assert len(CASES) == EXPECTED_CASE_COUNT
    routed = Counter(SOURCE_RULES[source_test(case)] for case in CASES)  # KeyError: unmapped
    assert sum(routed.values()) == len(CASES)
    assert all("strict_parse" in case for case in CASES)


@pytest.mark.parametrize("indexed", INDEXED, ids=case_id)
def test_parse_normalized_matches_upstream(indexed: tuple[int, dict[str, Any]]) -> None:
    _, case = indexed
    got = normalized_outcome(case["input"])
    assert got == {key: case[key] for key in got}


@pytest.mark.parametrize("indexed", INDEXED, ids=case_id)
def test_parse_matches_upstream_strict_parse(indexed: tuple[int, dict[str, Any]]) -> None:
    _, case = indexed
    assert strict_outcome(case["input"]) == case["strict_parse"]
    if case["strict_parse"]["valid"]:
        assert str(parse(case["input"])) == case["input"]  # upstream: repo.String() == input


@pytest.mark.parametrize(
    "indexed", [item for item in INDEXED if "also_asserted" in item[1]], ids=case_id
)
def test_parse_named_also_asserted(indexed: tuple[int, dict[str, Any]]) -> None:
    _, case = indexed
    for assertion in case["also_asserted"]:
        assert assertion["func"].startswith("ParseNamed"), assertion  # the only one modelled
        assert parse_named_error(case["input"]) == assertion["err"]


def test_parse_any_reference_cases_are_names() -> None:
    cases = [case for case in CASES if source_test(case) == "TestParseAnyReference"]
    assert cases
    for case in cases:
        assert not reference_module._IDENTIFIER_RE.fullmatch(case["input"])
        assert "@" not in case["input"]


# --- 2. Tables: what the webhook relies on beyond the data -----------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("registry.example.com", ("registry.example.com", None)),
        ("registry.example.com:5000", ("registry.example.com", 5000)),
        ("Registry.Example.COM:443", ("Registry.Example.COM", 443)),  # the grammar allows it
        ("localhost:5000", ("localhost", 5000)),
        ("myregistry", ("myregistry", None)),
        ("xn--n3h.com:18080", ("xn--n3h.com", 18080)),
        ("10.0.0.1", ("10.0.0.1", None)),
        ("172.18.0.20:5000", ("172.18.0.20", 5000)),
        ("[::1]", ("[::1]", None)),
        ("[2001:db8::1]:5000", ("[2001:db8::1]", 5000)),
        ("[2001:DB8:1:2:3:4:5:6]:1", ("[2001:DB8:1:2:3:4:5:6]", 1)),
        ("host:65535", ("host", 65535)),
        ("a" * 255, ("a" * 255, None)),
    ],
)
def test_parse_registry_host_accepts(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_registry_host(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "https://registry.example.com",  # scheme
        "http://10.0.0.1:5000",
        "registry.example.com/ns",  # path
        "registry.example.com:5000/",
        "registry.example.com:0",  # port out of range
        "registry.example.com:65536",
        "registry.example.com:123456",
        "registry.example.com:",
        "registry.example.com:http",
        " registry.example.com",  # spaces: trimming is the caller's job
        "registry.example.com ",
        "my registry",
        "registry.example.com\n",
        "::1",  # IPv6 must be bracketed
        "2001:db8::1",
        "[::1",
        "[::1]:99999",
        "[fe80::1%eth0]",  # zone identifiers are excluded by the grammar
        "[2001:db8:3:4::192.0.2.33]",  # so are embedded IPv4 forms
        "[:::]",  # matches the grammar's IPv6 pattern, is no address
        "999.1.1.1",  # dotted quad that is no IPv4 address
        "-registry.io",
        "registry-.io",
        "registry..io",
        "user@registry.io",
        "registry_io",
        "a" * 256,
    ],
)
def test_parse_registry_host_refuses(text: str) -> None:
    with pytest.raises(ReferenceError_) as info:
        parse_registry_host(text)
    assert info.value.kind == "ErrRegistryHostInvalid"


MIRROR = "172.18.0.20:5000"


@pytest.mark.parametrize(
    ("image", "domain", "prefix", "expected"),
    [
        # The design's example: source registry replaced, mirror namespace prepended.
        ("somehost.io/kubernetes-e2e-test-images/nautilus:1.0", MIRROR, "test-namespace/",
         "172.18.0.20:5000/test-namespace/kubernetes-e2e-test-images/nautilus:1.0"),
        ("nginx", MIRROR, "", "172.18.0.20:5000/library/nginx"),  # never gains :latest
        ("nginx:1.25@" + SHA256, MIRROR, "ns/", f"172.18.0.20:5000/ns/library/nginx:1.25@{SHA256}"),
        ("gcr.io/p/app@" + SHA512, "[2001:db8::1]:5000", "m/",
         f"[2001:db8::1]:5000/m/p/app@{SHA512}"),
        ("quay.io/a/b:v1", "[::1]", "", "[::1]/a/b:v1"),
        ("quay.io/a/b:v1", "localhost", "", "localhost/a/b:v1"),
    ],
)
def test_with_name_keeps_tag_and_digest(image: str, domain: str, prefix: str,
                                        expected: str) -> None:
    original = parse_normalized(image)
    rewritten = original.with_name(domain, prefix + original.path)
    assert str(rewritten) == expected
    assert (rewritten.tag, rewritten.digest) == (original.tag, original.digest)
    assert parse_normalized(expected) == rewritten
    assert str(original) == str(parse_normalized(image))  # the original value is untouched


def test_with_name_path_limit_counts_the_prefix() -> None:
    ref = parse_normalized("registry.io/" + "a" * 250 + ":v1")
    assert len(ref.path) == 250
    assert len(ref.with_name(MIRROR, "abcd/" + ref.path).path) == NAME_TOTAL_LENGTH_MAX
    with pytest.raises(ReferenceError_) as info:
        ref.with_name(MIRROR, "abcde/" + ref.path)  # 256 characters once the prefix is added
    assert info.value.kind == "ErrNameTooLong"


def test_with_name_limit_is_on_the_path_not_the_domain() -> None:
    # Upstream counts the path only (distribution/reference#9); a long domain is fine.
    long_domain = ".".join(["a" * 60] * 5)
    ref = parse("x/y:t").with_name(long_domain, "b" * NAME_TOTAL_LENGTH_MAX)
    assert len(ref.name) > NAME_TOTAL_LENGTH_MAX


@pytest.mark.parametrize(
    ("domain", "path", "kind"),
    [
        ("a_b", "c", "ErrReferenceInvalidFormat"),  # "a_b/c" only parses as a path
        ("https://x", "c", "ErrReferenceInvalidFormat"),
        ("host:port", "c", "ErrReferenceInvalidFormat"),
        ("[fe80::1%eth0]", "c", "ErrReferenceInvalidFormat"),
        ("x.io", "Upper/case", "ErrReferenceInvalidFormat"),
        ("x.io", "a//b", "ErrReferenceInvalidFormat"),
        ("x.io", "a/", "ErrReferenceInvalidFormat"),
        ("x.io", "a:b", "ErrReferenceInvalidFormat"),
        ("x.io", "", "ErrNameEmpty"),
        ("", "", "ErrNameEmpty"),
        ("x.io", "a" * 4096, "ErrReferenceTooLong"),
    ],
)
def test_with_name_refuses(domain: str, path: str, kind: str) -> None:
    with pytest.raises(ReferenceError_) as info:
        parse("x:t").with_name(domain, path)
    assert info.value.kind == kind


def test_with_name_without_domain_splits_like_parse() -> None:
    assert parse("x:t").with_name("", "foo/bar") == parse("foo/bar:t")
    assert parse("x:t").with_name("", "foo") == Reference("", "foo", "t")


def test_reference_is_immutable() -> None:
    ref = parse_normalized("nginx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "latest"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("docker.io/nginx", "docker.io/library/nginx"),
        ("index.docker.io/nginx", "docker.io/library/nginx"),
        ("registry-1.docker.io/nginx:1.25", "docker.io/library/nginx:1.25"),
        ("registry-1.docker.io/library/nginx", "docker.io/library/nginx"),
        ("registry-1.docker.io/bitnami/redis@" + SHA256, "docker.io/bitnami/redis@" + SHA256),
        ("index.docker.io/library/busybox:1@" + SHA256, "docker.io/library/busybox:1@" + SHA256),
        # Only those exact hosts: lookalikes, ports and other spellings are other registries.
        ("docker.io.evil.example/nginx", "docker.io.evil.example/nginx"),
        ("index.docker.io:443/nginx", "index.docker.io:443/nginx"),
        ("Index.Docker.IO/nginx", "Index.Docker.IO/nginx"),
        ("mirror.gcr.io/library/nginx", "mirror.gcr.io/library/nginx"),
    ],
)
def test_docker_hub_aliases(text: str, normalized: str) -> None:
    ref = parse_normalized(text)
    assert str(ref) == normalized
    assert normalize_domain(parse(text).domain) == ref.domain


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io.evil.example", "docker.io.evil.example"),
        ("registry-2.docker.io", "registry-2.docker.io"),
        ("gcr.io", "gcr.io"),
        ("", ""),
    ],
)
def test_normalize_domain(domain: str, expected: str) -> None:
    assert normalize_domain(domain) == expected


def test_strict_parse_keeps_aliases_and_the_constants_agree() -> None:
    assert parse("index.docker.io/nginx").domain == "index.docker.io"
    assert str(parse_normalized("x")) == f"{DEFAULT_DOMAIN}/{OFFICIAL_REPO_PREFIX}x"


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("[::1]:5000/repo", "[::1]:5000", "repo", None, None),
        ("[::1]/repo:v1", "[::1]", "repo", "v1", None),
        ("[2001:db8::]:5000/a/b@" + SHA256, "[2001:db8::]:5000", "a/b", None, SHA256),
        ("[2001:db8::1]:5000/repo:tag@" + SHA512, "[2001:db8::1]:5000", "repo", "tag", SHA512),
        ("[FC00::1]:443/x:5000", "[FC00::1]:443", "x", "5000", None),
    ],
)
def test_ipv6_hosts_with_ports_and_digests(text: str, domain: str, path: str,
                                           tag: str | None, digest: str | None) -> None:
    ref = parse_normalized(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == ref.familiar() == text
    assert parse(text) == ref


@pytest.mark.parametrize(
    ("text", "strict_kind", "normalized_kind"),
    [
        # IPv6 zones and embedded IPv4 are excluded; a bare host is a name, not a domain.
        ("[fe80::1%eth0]:5000/repo", "ErrReferenceInvalidFormat", "ErrReferenceInvalidFormat"),
        ("[2001:db8::1]", "ErrReferenceInvalidFormat", "ErrReferenceInvalidFormat"),
        ("[2001:db8::1]:tag", "ErrReferenceInvalidFormat", "ErrReferenceInvalidFormat"),
        # go-digest: registered algorithm, exact length, lowercase hex (upstream gives
        # ErrDigestInvalidLength / ErrDigestUnsupported for the first two).
        ("repo@sha256:" + "f" * 34, "ErrDigestInvalidFormat", "ErrDigestInvalidFormat"),
        ("repo@invaliddigest:" + "f" * 64, "ErrDigestInvalidFormat", "ErrDigestInvalidFormat"),
        ("repo@sha256:" + "f" * 65, "ErrDigestInvalidFormat", "ErrDigestInvalidFormat"),
        ("repo@sha256:" + "F" * 64, "ErrDigestInvalidFormat", "ErrDigestInvalidFormat"),
        ("repo@sha512:" + "f" * 64, "ErrDigestInvalidFormat", "ErrDigestInvalidFormat"),
        ("repo@md5:" + "f" * 32, "ErrDigestInvalidFormat", "ErrDigestInvalidFormat"),
        # Tags: at most 128 characters, ASCII word characters.
        ("repo:" + "t" * 129, "ErrReferenceInvalidFormat", "ErrReferenceInvalidFormat"),
        ("repo:.tag", "ErrReferenceInvalidFormat", "ErrReferenceInvalidFormat"),
        ("repo:tág", "ErrReferenceInvalidFormat", "ErrReferenceInvalidFormat"),
        # Go's `$` and `\w` semantics, not Python's defaults.
        ("nginx\n", "ErrReferenceInvalidFormat", "ErrReferenceInvalidFormat"),
        ("nginx:1\n", "ErrReferenceInvalidFormat", "ErrReferenceInvalidFormat"),
        # Go lowercases "İ" to "i", so this is an uppercase error there too.
        ("\u0130mage", "ErrNameContainsUppercase", "repository name must be lowercase"),
        ("\u212aube", "ErrNameContainsUppercase", "repository name must be lowercase"),
        ("Nginx", "ErrNameContainsUppercase", "repository name must be lowercase"),
        ("a" * 64, None, "ErrNameNotCanonical"),  # an image ID, not a repository name
        ("docker.io/" + "a" * 64, None, None),
        ("a" * 64 + ":v1", None, None),
        ("a/" * 127 + "a:tag-puts-this-over-max", None, None),  # a 255-character path
        ("a/" * 128 + "a:tag", None, "ErrNameTooLong"),  # strict: domain "a", path 255
        ("a" * 248, None, "ErrNameTooLong"),  # 256 with "library/"
        ("a" * 247, None, None),
        # A "." makes the first component a registry, but "_" is not allowed in one;
        # upstream returns an empty domain here, we refuse (see the module docstring).
        ("foo_bar.com/x", None, "ErrReferenceInvalidFormat"),
        ("a_b.c/d:v1", None, "ErrReferenceInvalidFormat"),
        ("A_B/c", "ErrNameContainsUppercase", "ErrNameContainsUppercase"),
    ],
)
def test_error_kinds(text: str, strict_kind: str | None, normalized_kind: str | None) -> None:
    for function, kind in ((parse, strict_kind), (parse_normalized, normalized_kind)):
        if kind is None:
            function(text)
            continue
        with pytest.raises(ReferenceError_) as info:
            function(text)
        assert info.value.kind == kind, function.__name__
        assert info.value.reference == text  # errors name what the user wrote


def test_tag_and_digest_together_are_kept_and_latest_never_added() -> None:
    ref = parse_normalized(f"busybox:1.36@{SHA256}")
    assert (ref.tag, ref.digest) == ("1.36", SHA256)
    assert str(ref) == f"docker.io/library/busybox:1.36@{SHA256}"
    assert parse_normalized("busybox").tag is None


@pytest.mark.parametrize(
    ("text", "familiar", "reparsed_domain"),
    [
        ("docker.io/library/nginx:1", "nginx:1", "docker.io"),
        ("docker.io/library/a/b", "library/a/b", "docker.io"),
        ("docker.io/bitnami/redis", "bitnami/redis", "docker.io"),
        ("quay.io/library/x", "quay.io/library/x", "quay.io"),
        # Upstream quirks, kept: the short form names another registry when the first
        # path component looks like a host. familiar() is for display only.
        ("docker.io/localhost/x", "localhost/x", "localhost"),
        ("docker.io/foo.bar/x", "foo.bar/x", "foo.bar"),
    ],
)
def test_familiar(text: str, familiar: str, reparsed_domain: str) -> None:
    ref = parse_normalized(text)
    assert ref.familiar() == familiar
    assert parse_normalized(familiar).domain == reparsed_domain


@pytest.mark.parametrize("size", [4097, 10_000, 1_000_000])
def test_oversized_input_is_refused_before_any_regex(size: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    class NoRegex:
        def fullmatch(self, text: str) -> None:
            raise AssertionError("a regular expression ran on oversized input")

    for name in ("_REFERENCE_RE", "_IDENTIFIER_RE", "_NAME_RE"):
        monkeypatch.setattr(reference_module, name, NoRegex())
    text = "a" * size
    for call in (parse, parse_normalized, lambda t: Reference("", "x").with_name("", t)):
        with pytest.raises(ReferenceError_) as info:
            call(text)
        assert info.value.kind == "ErrReferenceTooLong"
    assert len(str(info.value)) < 400  # the message does not echo a megabyte back


def test_input_at_the_cap_is_parsed() -> None:
    with pytest.raises(ReferenceError_) as info:
        parse("a" * 4096)
    assert info.value.kind == "ErrNameTooLong"  # parsed, then refused on its own merits


@pytest.mark.parametrize("value", [None, b"nginx", 42])
def test_non_strings_are_a_type_error(value: Any) -> None:
    for function in (parse, parse_normalized, parse_registry_host, is_path_component_sequence):
        with pytest.raises(TypeError):
            function(value)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("test-namespace", True),
        ("a/b-c/d", True),
        ("a__b/c.d/e--f", True),
        ("0", True),
        ("", False),
        ("a/", False),
        ("/a", False),
        ("a//b", False),
        ("A/b", False),
        ("a_/b", False),
        ("a___b", False),
        ("a:5000", False),
        ("v2/ns ", False),
        ("a" * 255, True),
        ("a" * 256, False),
    ],
)
def test_is_path_component_sequence(text: str, valid: bool) -> None:
    assert is_path_component_sequence(text) is valid


# --- 3. Properties ---------------------------------------------------------------------

ALNUM = st.text(alphabet="abcxyz0189", min_size=1, max_size=6)
SEPARATOR = st.sampled_from([".", "_", "__", "-", "---"])
PATH_COMPONENT = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    ALNUM, st.lists(st.tuples(SEPARATOR, ALNUM), max_size=2),
)
PATH = st.lists(PATH_COMPONENT, min_size=1, max_size=4).map("/".join)
DOMAIN_COMPONENT = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
HOST = st.one_of(
    st.lists(DOMAIN_COMPONENT, min_size=1, max_size=3).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip.compressed}]").filter(lambda h: "." not in h),
    st.sampled_from(["localhost", "docker.io", "index.docker.io", "registry-1.docker.io"]),
)
DOMAIN = st.builds(
    lambda host, port: host if port is None else f"{host}:{port}",
    HOST, st.none() | st.integers(1, 65535),
)
TAG = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
DIGEST = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__),
    st.text(alphabet="0123456789abcdef", min_size=128, max_size=128).map("sha512:".__add__),
)


@st.composite
def valid_references(draw: st.DrawFn) -> tuple[str, str | None, str | None]:
    """A reference built from the grammar, with the tag and digest it was built with."""
    domain = draw(st.none() | DOMAIN)
    path = draw(PATH)
    if domain is None and "/" in path and "." in path.partition("/")[0]:
        # Without a registry, a first component with a "." would be read as one.
        domain = DEFAULT_DOMAIN
    tag = draw(st.none() | TAG)
    digest = draw(st.none() | DIGEST)
    text = (f"{domain}/" if domain else "") + path
    text += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return text, tag, digest


@st.composite
def reference_like(draw: st.DrawFn) -> str:
    """Near-misses: grammar-built references with characters inserted, removed, replaced."""
    text = list(draw(valid_references())[0])
    alphabet = "aZ09-._/:@[]% İ\n"
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from(alphabet))
        if action == "insert":
            text.insert(position, char)
        elif position < len(text):
            if action == "delete":
                del text[position]
            else:
                text[position] = char
    return "".join(text)


ANY_TEXT = st.one_of(
    st.text(),
    st.text(alphabet="abcAB09-._/:@[]%İK \n", max_size=80),
    reference_like(),
)


def outcome(function: Any, text: str) -> Reference | ReferenceError_:
    try:
        result = function(text)
    except ReferenceError_ as err:
        return err
    assert isinstance(result, Reference)
    return result


def test_any_text_gives_a_reference_or_reference_error() -> None:
    checked: Counter[str] = Counter()

    @settings(max_examples=300)
    @given(ANY_TEXT)
    @example("")
    @example("a" * 4097)
    @example("[" * 300)
    @example("docker.io/library/nginx:1.25")    # every branch below, every run
    def any_text(text: str) -> None:
        strict = outcome(parse, text)
        normalized = outcome(parse_normalized, text)
        if isinstance(strict, Reference):
            checked["strict"] += 1
            assert str(strict) == text  # the strict parser splits, it never rewrites
            assert parse(str(strict)) == strict
        if isinstance(normalized, Reference):
            checked["normalized"] += 1
            assert parse_normalized(str(normalized)) == normalized
            assert normalized.domain != ""
        if isinstance(strict, Reference) and isinstance(normalized, Reference):
            checked["both"] += 1
            assert (normalized.tag, normalized.digest) == (strict.tag, strict.digest)

    any_text()
    # every assertion above sits in a branch: each branch ran, or the property proved nothing
    assert all(checked[branch] for branch in ("strict", "normalized", "both")), checked


def familiar_names_another_reference(ref: Reference) -> bool:
    """The upstream quirks pinned in test_familiar: the short form does not parse back."""
    if ref.domain != DEFAULT_DOMAIN:
        return False
    first, slash, _ = ref.familiar().partition("/")
    looks_like_domain = bool(slash) and (first == "localhost" or "." in first)
    is_image_id = ref.tag is None and ref.digest is None and bool(
        reference_module._IDENTIFIER_RE.fullmatch(ref.familiar()))
    return looks_like_domain or is_image_id


@settings(max_examples=300)
@given(valid_references())
@example(("docker.io/localhost/x", None, None))
@example(("registry-1.docker.io/a.b/c:v1", "v1", None))
def test_valid_references_round_trip(built: tuple[str, str | None, str | None]) -> None:
    text, tag, digest = built
    ref = parse_normalized(text)
    assert (ref.tag, ref.digest) == (tag, digest)
    assert str(parse_normalized(str(ref))) == str(ref)
    assert parse_normalized(str(ref)) == ref
    if not familiar_names_another_reference(ref):
        assert parse_normalized(ref.familiar()) == ref
    assert ref.with_name(ref.domain, ref.path) == ref
