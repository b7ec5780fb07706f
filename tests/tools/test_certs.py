"""`kci-webhook certs`: what it says about the CA, --days against --warn-days, and the
Service and namespace names it accepts (exactly those the API server accepts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook import cli
from webhook.adapters.tls.issue import generate_ca
from webhook.core import names

DNS1035_ERROR = (
    'Invalid value: "{value}": a DNS-1035 label must consist of lower case alphanumeric '
    "characters or '-', start with an alphabetic character, and end with an alphanumeric "
    "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
    "'[a-z]([-a-z0-9]*[a-z0-9])?')")
DNS1123_ERROR = (
    'Invalid value: "{value}": a lowercase RFC 1123 label must consist of lower case '
    "alphanumeric characters or '-', and must start and end with an alphanumeric character "
    "(e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def certs(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = cli.main(["certs", *args])
    except SystemExit as exc:   # argparse refuses the arguments
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_new_ca_then_the_reused_one_are_said_so(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path)
    code, first_bundle, err = certs(capsys, "--out", out)
    assert code == 0
    assert f"made a new CA in {out}/ca.crt (CN=kci-webhook-ca, expires " in err
    assert "reused the existing CA" not in err
    code, second_bundle, err = certs(capsys, "--out", out)
    assert code == 0
    assert f"reused the existing CA in {out}/ca.crt (CN=kci-webhook-ca, expires " in err
    assert "the caBundle already in the cluster stays valid" in err
    assert second_bundle == first_bundle


def test_a_rerun_says_it_wrote_only_the_serving_pair(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path)
    _, _, first = certs(capsys, "--out", out)
    assert f"wrote {out}/ca.crt, {out}/ca.key, {out}/tls.crt, {out}/tls.key for " in first
    _, _, again = certs(capsys, "--out", out)
    assert f"wrote {out}/tls.crt, {out}/tls.key for kci-webhook, " in again
    assert "ca.key" not in again.split("wrote ", 1)[1]


def test_a_reused_ca_that_ends_before_the_serving_certificate_is_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = generate_ca(days=20)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "ca.key").write_bytes(ca.key_pem)
    code, _, err = certs(capsys, "--out", str(tmp_path), "--days", "90")
    assert code == 0
    assert "reused the existing CA" in err
    assert "warning: the CA's certificate expires within 90 days" in err
    assert "the serving certificate ends with it" in err


@pytest.mark.parametrize(("days", "warn_days", "warned"), [
    pytest.param("10", "30", True, id="shorter"),
    pytest.param("30", "30", False, id="equal"),
    pytest.param("365", "30", False, id="longer"),
])
def test_days_shorter_than_warn_days_is_a_warning(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  days: str, warn_days: str,
                                                  warned: bool) -> None:
    code, out, err = certs(capsys, "--out", str(tmp_path), "--days", days,
                           "--warn-days", warn_days)
    assert code == 0 and out.strip()
    message = (f"warning: --days {days} is shorter than --warn-days {warn_days}: "
               "`kci-webhook certs --check` will report this certificate as expiring")
    assert (message in err) is warned


@pytest.mark.parametrize(("option", "value", "error"), [
    pytest.param("--service", "Kci-Webhook", DNS1035_ERROR, id="service-upper-case"),
    pytest.param("--service", "1webhook", DNS1035_ERROR, id="service-starts-with-digit"),
    pytest.param("--service", "kci_webhook", DNS1035_ERROR, id="service-underscore"),
    pytest.param("--service", "kci.webhook", DNS1035_ERROR, id="service-dot"),
    pytest.param("--service", "webhook-", DNS1035_ERROR, id="service-ends-with-dash"),
    pytest.param("--service", "", DNS1035_ERROR, id="service-empty"),
    pytest.param("--namespace", "Team-A", DNS1123_ERROR, id="namespace-upper-case"),
    pytest.param("--namespace", "team.a", DNS1123_ERROR, id="namespace-dot"),
    pytest.param("--namespace", "-team", DNS1123_ERROR, id="namespace-starts-with-dash"),
])
def test_names_the_api_would_refuse_are_usage_errors(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     option: str, value: str,
                                                     error: str) -> None:
    code, out, err = certs(capsys, "--out", str(tmp_path), f"{option}={value}")
    assert code == 2 and out == ""
    assert f"argument {option}: {error.format(value=value)}" in err
    assert not list(tmp_path.iterdir()), "nothing written"


@pytest.mark.parametrize(("option", "value"), [
    pytest.param("--service", "a" * 64, id="service"),
    pytest.param("--namespace", "a" * 64, id="namespace"),
])
def test_names_longer_than_63_characters_are_refused(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     option: str, value: str) -> None:
    code, _, err = certs(capsys, "--out", str(tmp_path), option, value)
    assert code == 2
    assert f'Invalid value: "{value}": must be no more than 63 characters' in err


@pytest.mark.parametrize(("service", "namespace"), [
    ("a", "1"), ("webhook-1", "123-abc"), ("a" * 63, "b" * 63)])
def test_names_the_api_accepts_are_accepted(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str], service: str,
                                            namespace: str) -> None:
    code, _, err = certs(capsys, "--out", str(tmp_path), "--service", service,
                         "--namespace", namespace)
    assert code == 0, err
    assert f"{service}.{namespace}.svc" in err


LABEL_CHARS = st.text(alphabet="abcxyz019-_.A", max_size=70)


@given(LABEL_CHARS)
def test_label_validators_agree_with_the_api_grammar(value: str) -> None:
    """Stated independently of the implementation: characters, first and last, length."""
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    body_ok = bool(value) and set(value) <= allowed and value[-1] != "-"
    is_1123 = body_ok and value[0] != "-" and len(value) <= 63
    is_1035 = is_1123 and value[0].isalpha()
    assert (names.dns1123_label_errors(value) == []) is is_1123
    assert (names.dns1035_label_errors(value) == []) is is_1035
