"""The CCI dialect's registry lists (`cci.io/http-registries`, `cci.io/insecure-registries`)
as properties: the vendor's entry forms (scheme, port, relative path) read into one
canonical entry, which is written and read again unchanged, and which the security rules
key by its host. The vendor's examples are table tests in tests/core/test_dialects.py."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from webhook.core.config import registry_key
from webhook.core.dialects.cci import (
    CCI_HTTP_REGISTRIES,
    CCI_INSECURE_REGISTRIES,
    CCI_MAX_REGISTRIES,
    parse_registries,
)
from webhook.core.errors import AnnotationError
from webhook.core.values.lists import registry_list_text

KEYS = {CCI_HTTP_REGISTRIES: "http", CCI_INSECURE_REGISTRIES: "https"}
_HOSTS = st.sampled_from(["harbor.corp.com", "Harbor.Corp.com", "192.168.10.20",
                          "100.95.10.20", "[fd00::1]", "registry-1.example"])
_PORTS = st.sampled_from(["", ":5000", ":05000", ":443", ":80"])
_PATHS = st.sampled_from(["", "/", "/library", "/team/app", "/a_b/c-d", "/library/"])


@st.composite
def entries(draw: st.DrawFn, key: str) -> tuple[str, str]:
    """(an entry as an author may write it, its host[:port] as written)."""
    host = draw(_HOSTS) + draw(_PORTS)
    scheme = draw(st.sampled_from(["", f"{KEYS[key]}://", f"{KEYS[key].upper()}://"]))
    return f"{scheme}{host}{draw(_PATHS)}", host


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_vendor_form_reads_to_an_entry_keyed_by_its_host(data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(KEYS)))
    drawn = data.draw(st.lists(entries(key), min_size=1, max_size=CCI_MAX_REGISTRIES))
    parsed = parse_registries(",".join(text for text, _host in drawn), key=key, level="pod")
    assert {registry_key(entry) for entry in parsed} == \
        {registry_key(host) for _text, host in drawn}
    assert all("://" not in entry and not entry.endswith("/") for entry in parsed)
    written = registry_list_text(parsed)
    assert parse_registries(written, key=key, level="pod") == parsed
    assert registry_list_text(parse_registries(written, key=key, level="pod")) == written


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(KEYS)),
       st.text(alphabet="htps:/.,a1b2-_[]fd: ", max_size=40))
@example(CCI_HTTP_REGISTRIES,
         "harbor.corp.com,192.168.10.20:5000,100.95.10.20,http://harbor.corp.com")
@example(CCI_INSECURE_REGISTRIES,
         "harbor.corp.com,192.168.10.20:5000,100.95.10.20,https://harbor.corp.com")
def test_a_second_pass_over_what_was_written_changes_nothing(key: str, raw: str) -> None:
    try:
        parsed = parse_registries(raw, key=key, level="pod")
    except AnnotationError as error:
        assert error.problems and all(p.startswith(f"{key} (pod): ") for p in error.problems)
        return
    written = registry_list_text(parsed)
    assert parse_registries(written, key=key, level="pod") == parsed
    assert registry_list_text(parse_registries(written, key=key, level="pod")) == written
    assert len(parsed) <= CCI_MAX_REGISTRIES
