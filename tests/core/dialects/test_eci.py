"""The ECI dialect's `k8s.aliyun.com/eci-custom-dnsconfig` parser and writer, as properties:
what the webhook writes reads back as the value it judged, and a second pass over its
own output changes nothing. The vendor's examples are table tests in
tests/core/test_dialects.py."""

from __future__ import annotations

import ipaddress

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from webhook.core.dialects.eci import (
    ECI_MAX_NAMESERVERS,
    custom_dnsconfig_json,
    parse_custom_dnsconfig,
    unwritable_option,
)
from webhook.core.errors import AnnotationError
from webhook.core.model import DnsConfig, DnsOption
from webhook.core.values.checks import MAX_SEARCH_CHARS, MAX_SEARCHES, is_ip

VENDOR = ('{"nameservers":"20.1.0.1,20.1.0.2","searches":"xx.com,xx.eee",'
          '"options":"ndots:2,edns0"}')

_ADDRESSES = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str).filter(is_ip)
_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_DOMAINS = st.builds(lambda labels, dot: ".".join(labels) + dot,
                     st.lists(_LABEL, min_size=1, max_size=3), st.sampled_from(["", "."]))
_WORDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                 max_size=8)
_OPTIONS = st.builds(DnsOption, _WORDS.filter(lambda w: ":" not in w and "," not in w),
                     st.none() | st.just("") | _WORDS.filter(lambda w: "," not in w))


@st.composite
def dns_configs(draw: st.DrawFn) -> DnsConfig:
    """Values ECI can hold: at most 2 nameservers, searches within the pod API's limits,
    options its comma format can carry; duplicates already folded, as the parser folds."""
    nameservers = draw(st.lists(_ADDRESSES, max_size=ECI_MAX_NAMESERVERS,
                                unique_by=lambda a: ipaddress.ip_address(a)))
    searches = draw(st.lists(_DOMAINS, max_size=MAX_SEARCHES, unique=True).filter(
        lambda s: len(" ".join(s)) <= MAX_SEARCH_CHARS))
    options = draw(st.lists(_OPTIONS, max_size=4))
    return DnsConfig(tuple(dict.fromkeys(nameservers)), tuple(searches), tuple(options))


@settings(max_examples=300, deadline=None)
@given(dns_configs())
@example(DnsConfig(("20.1.0.1", "20.1.0.2"), ("xx.com", "xx.eee"),
                   (DnsOption("ndots", "2"), DnsOption("edns0"))))
@example(DnsConfig(options=(DnsOption("x", "a:b"), DnsOption("attempts", ""))))
def test_what_is_written_reads_back_as_the_same_value(dns: DnsConfig) -> None:
    assert all(unwritable_option(option) is None for option in dns.options)
    assert parse_custom_dnsconfig(custom_dnsconfig_json(dns), level="pod") == dns


_FIELD_TEXT = st.text(alphabet="1.2:,0 abcdnsx", max_size=24)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.builds(lambda n, s, o: {"nameservers": n, "searches": s, "options": o},
              _FIELD_TEXT, _FIELD_TEXT, _FIELD_TEXT),
    st.dictionaries(st.sampled_from(["nameservers", "searches", "options", "servers"]),
                    st.one_of(_FIELD_TEXT, st.none(), st.lists(_FIELD_TEXT, max_size=2)))))
def test_a_second_pass_over_what_was_written_changes_nothing(fields: dict[str, object]
                                                             ) -> None:
    """Any value the parser accepts is written in the canonical form, which parses to the
    same value and is written identically again; anything else is an AnnotationError."""
    raw = orjson.dumps(fields).decode()
    try:
        parsed = parse_custom_dnsconfig(raw, level="pod")
    except AnnotationError as error:
        assert error.problems and all(p.startswith("k8s.aliyun.com/eci-custom-dnsconfig (pod)")
                                      for p in error.problems)
        return
    written = custom_dnsconfig_json(parsed)
    assert parse_custom_dnsconfig(written, level="pod") == parsed
    assert custom_dnsconfig_json(parse_custom_dnsconfig(written, level="pod")) == written


def test_the_vendors_example_is_written_back_exactly() -> None:
    assert custom_dnsconfig_json(parse_custom_dnsconfig(VENDOR, level="pod")) == VENDOR


@given(st.builds(DnsOption, st.text(max_size=6), st.none() | st.text(max_size=6)))
@example(DnsOption("ndots", "1,2"))
@example(DnsOption("a:b"))
@example(DnsOption("ndots", "1 2"))
def test_an_option_is_writable_exactly_when_it_reads_back(option: DnsOption) -> None:
    """`unwritable_option` is the truth about the comma format: an option it passes reads
    back as itself, and one it refuses would not."""
    text = custom_dnsconfig_json(DnsConfig(options=(option,)))
    try:
        back = parse_custom_dnsconfig(text, level="pod").options
    except AnnotationError:
        back = None
    assert (unwritable_option(option) is None) is (back == (option,))
