"""`kci-webhook trust`: build and check Tanzu `trust.additionalTrustedCAs`, as a user runs it.

Certificates are made by the tests (webhook.adapters.tls, or cryptography for what tls refuses to
make); the one exception is the Tanzu documentation's harbor-ca example, used exactly as published.
Most tests run `python -m webhook trust ...` in a subprocess; the table of planted mistakes
also runs in-process through the same parser, for the exact finding codes of --json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ROOT
from webhook.adapters.tls.issue import KeyPair, generate_ca, generate_serving_cert
from webhook.tools import trust

# The Tanzu documentation's example (Harbor deployed with helm, its CA read with
# `kubectl get secret harbor-harbor-nginx -o=jsonpath="{.data.ca\.crt}"` and pasted into
# the TkgServiceConfiguration). Its data is base64 of a PEM CA certificate "CN=harbor-ca" valid from
# 2021-03-10 to 2022-03-10: right encoding, long expired.
DOC_HARBOR_CA_DATA = (
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSURFekNDQWZ1Z0F3SUJBZ0lRUHdpYUV4RjZsUzA2cGQzc2Fs"
    "RWIyREFOQmdrcWhraUc5dzBCQVFzRkFEQVUKTVJJd0VBWURWUVFERXdsb1lYSmliM0l0WTJFd0hoY05NakV3TXpF"
    "d01UTTFOVFF6V2hjTk1qSXdNekV3TVRNMQpOVFF6V2pBVU1SSXdFQVlEVlFRREV3bG9ZWEppYjNJdFkyRXdnZ0Vp"
    "TUEwR0NTcUdTSWIzRFFFQkFRVUFBNElCCkR3QXdnZ0VLQW9JQkFRRG5Ta0ZCRTNvbk4yR0VOYU1TRWJRSUNzVmVU"
    "ajJOQTBWRC9nNHdKZ3pwMVU5alc3VE8KNC9KK0JxNE9aS2Nia2NTWFcxYkNDeWNKKzNpQ2RIdFFqaVUvSnZZRHZh"
    "cGlBVnA0UmIvRE5lYnJyL0VaR2hZQQpUUjAybWpuS0hlVGdJVXBsTk5OM0haM0x2OE1xemxwem1OaVNKZWZCOFpq"
    "MWI0eElZS09LVWZPSzBJRjQrTERsCkFEUHJ0L1B4TmN3NDQ3RUI4QVpuay92YVpGN1F3ekNzY2E4cUlyUlFzZmk4"
    "Z0JCcEJDVlllMk4wM1dPWE9aK2kKMXZ1WnVvREh3NEgwWGNQVjhiNlZnVGsxWjMrak92MUF0UXBIUXllcExpMCtn"
    "VDdXb1VJTCt5anJ0dVJHeGpkaAp1R2FoRnVhajRCNmZ1RHo1eHRtM2ZyMy9WNFRUYVEwRk9pbjVBZ01CQUFHallU"
    "QmZNQTRHQTFVZER3RUIvd1FFCkF3SUNwREFkQmdOVkhTVUVGakFVQmdnckJnRUZCUWNEQVFZSUt3WUJCUVVIQXdJ"
    "d0R3WURWUjBUQVFIL0JBVXcKQXdFQi96QWRCZ05WSFE0RUZnUVUvWEJZUW5SSlJjeXZzWjQxdHozMlRrZ2ZUdnd3"
    "RFFZSktvWklodmNOQVFFTApCUUFEZ2dFQkFMTWlGa1RlL1BtZCtuazZzVHFGQmlNd2REWEVFeTAyL2tsMVhLZ0RT"
    "OURVenU2bmpseXljSzFaCitGY3JNUGFpNnYrTjBySzBYbmt0TmRuRkxpdS9ZL2JiZENHSURWQ3R2c2FuY29rZHUy"
    "ZFZyZDdRZWFXdzMwV3MKY1RKK0lGb214YUNDTjZ1bGd6QXNsbGJVL3ZJYzg5cHEzOEZNN3I4TXpUcjhyVFpIVzdi"
    "Y29vZThlcHJHTE9PegpiR3Uxb2lCbWpBSlNrV3owejBETFJ0TGFhRHFUY1hsN09YNTZIWjRJamVSWll5RDloMFNR"
    "R0VtMURkR1EvSmdECmRQdXhsa01wSnZuQWtLcVN4K2JTMVlIdTA1dHdyYkdDRk5EY2RCd0owYlRJV1lVeUI1Y3BX"
    "UEJvQkxxMUxQQ1kKUHVyKzRRSWpjb05JME1uSCtEaW1Lb0Rwc0RMN083TT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUt"
    "LS0tLQo="
)

DOC_TKS_YAML = f"""\
apiVersion: run.tanzu.vmware.com/v1alpha1
kind: TkgServiceConfiguration
metadata:
  name: tkg-service-configuration
spec:
  defaultCNI: antrea
  trust:
    additionalTrustedCAs:
      - name: harbor-ca
        data: {DOC_HARBOR_CA_DATA}
"""

SINGLE_BASE64_MESSAGE = ("single-base64: the Secret form needs double base64 "
                         "(base64 of the base64 PEM)")

TIMEOUT = 120


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def b64b64(data: bytes) -> str:
    return b64(b64(data))


def self_signed(*, not_before: datetime, not_after: datetime, ca: bool,
                common_name: str) -> KeyPair:
    """A self-signed certificate with any validity window (webhook.adapters.tls makes CAs from
    now)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem)


@dataclass(frozen=True)
class Material:
    ca: KeyPair
    other_ca: KeyPair
    leaf: KeyPair
    expired_ca: KeyPair
    expired_leaf: KeyPair
    future_ca: KeyPair
    soon_ca: KeyPair
    self_signed_leaf: KeyPair


@pytest.fixture(scope="module")
def material() -> Material:
    now = datetime.now(UTC)
    ca = generate_ca(common_name="Registry Root CA")
    return Material(
        ca=ca,
        other_ca=generate_ca(common_name="Other Root CA"),
        leaf=generate_serving_cert(ca, dns_names=["registry.example.com"]),
        expired_ca=generate_ca(common_name="Expired CA", days=-1),
        expired_leaf=generate_serving_cert(ca, dns_names=["old.example.com"], days=-1),
        future_ca=self_signed(not_before=now + timedelta(days=10),
                              not_after=now + timedelta(days=400), ca=True,
                              common_name="Future CA"),
        soon_ca=generate_ca(common_name="Soon CA", days=10),
        self_signed_leaf=self_signed(not_before=now - timedelta(days=1),
                                     not_after=now + timedelta(days=365), ca=False,
                                     common_name="registry.lab.example"),
    )


def tkg(*entries: tuple[str, str]) -> str:
    doc = {"apiVersion": trust.TKG_API_VERSION, "kind": "TkgServiceConfiguration",
           "metadata": {"name": "tkg-service-configuration"},
           "spec": {"defaultCNI": "antrea", "trust": {"additionalTrustedCAs": [
               {"name": name, "data": data} for name, data in entries]}}}
    return yaml.safe_dump(doc, sort_keys=False, width=2**31)


def secret(data: dict[str, str], *, name: str = "cluster01-user-trusted-ca-secret",
           field_name: str = "data") -> str:
    doc = {"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": "tkgs-cluster-ns"}, "type": "Opaque",
           field_name: data}
    return yaml.safe_dump(doc, sort_keys=False, width=2**31)


def cluster(names: list[str], *, name: str = "cluster01") -> str:
    doc = {"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
           "metadata": {"name": name, "namespace": "tkgs-cluster-ns"},
           "spec": {"topology": {"class": "tanzukubernetescluster", "variables": [
               {"name": "vmClass", "value": "guaranteed-medium"},
               {"name": "trust", "value": {"additionalTrustedCAs": [{"name": n}
                                                                    for n in names]}}]}}}
    return yaml.safe_dump(doc, sort_keys=False)


def tkc(entries: list[dict[str, str]]) -> str:
    doc = {"apiVersion": "run.tanzu.vmware.com/v1alpha2", "kind": "TanzuKubernetesCluster",
           "metadata": {"name": "tkc01", "namespace": "tkgs-cluster-ns"},
           "spec": {"settings": {"network": {"trust": {"additionalTrustedCAs": entries}}}}}
    return yaml.safe_dump(doc, sort_keys=False, width=2**31)


# --- the table of planted mistakes -------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Material], str]
    exit_code: int
    expect: tuple[tuple[str, str | None, str], ...]   # (code, entry, text in the human line)


def _raw_pem(m: Material) -> str:
    doc = yaml.safe_load(tkg(("registry-ca", "x")))
    doc["spec"]["trust"]["additionalTrustedCAs"][0]["data"] = m.ca.cert_pem.decode()
    return yaml.safe_dump(doc, sort_keys=False)


def _duplicate_secret_key(m: Material) -> str:
    return secret({"registry-ca": b64b64(m.ca.cert_pem)}) + \
        f"  registry-ca: {b64b64(m.other_ca.cert_pem)}\n"


CASES = [
    Case("documented-harbor-ca", lambda m: DOC_TKS_YAML, 1,
         (("expired", "harbor-ca", "certificate CN=harbor-ca expired on 2022-03-10"),)),
    Case("secret-single-base64", lambda m: secret({"registry-ca": b64(m.ca.cert_pem)}), 1,
         (("single-base64", "registry-ca", SINGLE_BASE64_MESSAGE),)),
    Case("tkg-double-base64", lambda m: tkg(("registry-ca", b64b64(m.ca.cert_pem))), 1,
         (("double-base64", "registry-ca", "double-base64: the TkgServiceConfiguration form "
                                           "needs single base64 (base64 of the PEM)"),)),
    Case("tkc-double-base64", lambda m: tkc([{"name": "registry-ca",
                                              "data": b64b64(m.ca.cert_pem)}]), 1,
         (("double-base64", "registry-ca", "the TanzuKubernetesCluster form needs single"),)),
    Case("raw-pem", _raw_pem, 1,
         (("raw-pem", "registry-ca", "raw PEM pasted where base64 is expected"),)),
    Case("garbage", lambda m: tkg(("registry-ca", "this is not base64!")), 1,
         (("invalid-base64", "registry-ca", "not valid base64"),)),
    Case("url-safe-base64", lambda m: tkg(("registry-ca", "ab-_" * 4)), 1,
         (("invalid-base64", "registry-ca", "URL-safe"),)),
    Case("base64-not-pem", lambda m: tkg(("registry-ca", b64("hello, registry"))), 1,
         (("not-a-certificate", "registry-ca", "not a PEM certificate"),)),
    Case("der-not-pem", lambda m: tkg(("registry-ca", b64(x509.load_pem_x509_certificate(
        m.ca.cert_pem).public_bytes(serialization.Encoding.DER)))), 1,
         (("not-a-certificate", "registry-ca", "DER"),)),
    Case("private-key", lambda m: tkg(("registry-ca", b64(m.ca.cert_pem + m.ca.key_pem))), 1,
         (("private-key", "registry-ca", "a private key is inside"),)),
    Case("private-key-only-in-secret", lambda m: secret({"registry-ca": b64b64(m.ca.key_pem)}),
         1, (("private-key", "registry-ca", "a private key is inside"),)),
    Case("duplicate-certificate", lambda m: tkg(("registry-ca", b64(m.ca.cert_pem)),
                                                ("registry-ca-copy", b64(m.ca.cert_pem))), 0,
         (("duplicate-certificate", "registry-ca-copy", "same certificate"),)),
    Case("duplicate-name", lambda m: tkg(("registry-ca", b64(m.ca.cert_pem)),
                                         ("registry-ca", b64(m.other_ca.cert_pem))), 1,
         (("duplicate-name", "registry-ca", "name used twice"),)),
    Case("duplicate-secret-key", _duplicate_secret_key, 1,
         (("duplicate-name", "registry-ca", "key written twice in data"),)),
    Case("expired", lambda m: tkg(("old-ca", b64(m.expired_ca.cert_pem))), 1,
         (("expired", "old-ca", "certificate CN=Expired CA expired on"),)),
    Case("expired-leaf", lambda m: tkg(("old-leaf", b64(m.expired_leaf.cert_pem))), 1,
         (("expired", "old-leaf", "expired on"),
          ("not-a-ca", "old-leaf", "is a leaf certificate issued by CN=Registry Root CA"))),
    Case("not-yet-valid", lambda m: tkg(("future-ca", b64(m.future_ca.cert_pem))), 1,
         (("not-yet-valid", "future-ca", "is not valid until"),)),
    Case("expires-soon", lambda m: tkg(("soon-ca", b64(m.soon_ca.cert_pem))), 0,
         (("expires-soon", "soon-ca", "expires on"),)),
    Case("self-signed-leaf", lambda m: tkg(("lab", b64(m.self_signed_leaf.cert_pem))), 0,
         (("self-signed-leaf", "lab", "self-signed leaf"),)),
    Case("cluster-secret-missing-key",
         lambda m: cluster(["registry-ca", "mirror-ca"]) + "---\n" + secret(
             {"registry-ca": b64b64(m.ca.cert_pem)}), 1,
         (("missing-secret-key", "mirror-ca", "has no key 'mirror-ca'"),)),
    Case("stringData-double", lambda m: secret({"registry-ca": b64b64(m.ca.cert_pem)},
                                               field_name="stringData"), 1,
         (("double-base64", "registry-ca", "stringData"),)),
    Case("valid", lambda m: tkg(("registry-ca", b64(m.ca.cert_pem)),
                                ("other-ca", b64(m.other_ca.cert_pem))), 0, ()),
    Case("valid-secret", lambda m: cluster(["registry-ca"]) + "---\n" + secret(
        {"registry-ca": b64b64(m.ca.cert_pem)}), 0, ()),
]


def run_cli(*args: str, stdin: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`kci-webhook trust ARGS` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "webhook", "trust", *args], cwd=ROOT,
                          input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
                          env=env)


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same command through trust.add_parser, without a subprocess."""
    parser = argparse.ArgumentParser(prog="kci-webhook")
    trust.add_parser(parser.add_subparsers())
    ns = parser.parse_args(["trust", *args])
    code = ns.func(ns)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def table_dir(material: Material, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("trust-table")
    for case in CASES:
        (directory / f"{case.id}.yaml").write_text(case.make(material))
    return directory


@pytest.fixture(scope="module")
def table_runs(table_dir: Path) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """`trust --check` on every fixture, started all at once (each run is a fresh Python)."""
    procs = {case.id: subprocess.Popen(
        [sys.executable, "-m", "webhook", "trust", "--check", str(table_dir / f"{case.id}.yaml")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for case in CASES}
    results = {}
    for case_id, proc in procs.items():
        out, err = proc.communicate(timeout=TIMEOUT)
        results[case_id] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    yield results


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_catches_each_planted_mistake(case: Case, table_runs: dict[str, Any]) -> None:
    result = table_runs[case.id]
    assert result.returncode == case.exit_code, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for _code, entry, text in case.expect:
        line = next((ln for ln in lines if f"entry {entry}: " in ln and text in ln), None)
        assert line is not None, f"no line for entry {entry} with {text!r} in:\n{result.stdout}"
        assert " — " in line, line                      # every problem comes with its fix
    if not case.expect:
        assert not [ln for ln in lines if ln.lstrip().startswith(("error:", "warning:", "note:"))]
        assert "0 errors, 0 warnings" in result.stdout


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_json_codes(case: Case, table_dir: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_in_process(capsys, "--check", str(table_dir / f"{case.id}.yaml"),
                                  "--json")
    report = json.loads(out)
    assert code == case.exit_code
    assert report["ok"] is (case.exit_code == 0)
    found = {(f["code"], f["entry"]) for f in report["findings"]}
    for finding_code, entry, _ in case.expect:
        assert (finding_code, entry) in found, report["findings"]
    if not case.expect:
        assert report["findings"] == []
    for finding in report["findings"]:
        assert finding["severity"] in {"error", "warning", "note"}
        assert finding["problem"] and finding["fix"]


def test_documented_example_is_the_right_encoding_and_only_expired() -> None:
    """The documentation got the encoding right (single base64 in a TkgServiceConfiguration); the
    only thing wrong today is time."""
    report = trust.check_text(DOC_TKS_YAML)
    assert [f.code for f in report.findings] == ["expired"]
    assert report.entries[0].encoding == "base64"
    info = report.entries[0].certificates[0]
    assert (info.subject, info.ca, info.self_signed) == ("CN=harbor-ca", True, True)
    assert info.not_after == datetime(2022, 3, 10, 13, 55, 43, tzinfo=UTC)
    # and on the day it was published it was fine; a week before expiry: a warning
    published = datetime(2021, 6, 1, tzinfo=UTC)
    assert trust.check_text(DOC_TKS_YAML, now=published).findings == []
    week_before = trust.check_text(DOC_TKS_YAML, now=datetime(2022, 3, 3, tzinfo=UTC))
    assert [(f.severity, f.code) for f in week_before.findings] == [("warning",
                                                                     "expires-soon")]
    assert week_before.ok
    early = trust.check_text(DOC_TKS_YAML, now=datetime(2021, 1, 1, tzinfo=UTC))
    assert [f.code for f in early.findings] == ["not-yet-valid"]


def test_the_documented_data_in_a_secret_is_single_base64() -> None:
    """Pasting the documented data (already base64, as `kubectl get secret -o jsonpath` gives
    it) into the Secret form is exactly the mistake the troubleshooting note warns about."""
    text = secret({"harbor-ca": DOC_HARBOR_CA_DATA})
    report = trust.check_text(text, now=datetime(2021, 6, 1, tzinfo=UTC))
    assert [(f.code, f.problem) for f in report.findings] == [("single-base64",
                                                              SINGLE_BASE64_MESSAGE)]


def test_private_key_is_never_printed(material: Material, table_dir: Path,
                                      table_runs: dict[str, Any],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    key_body = material.ca.key_pem.decode().splitlines()[1]
    for case_id in ("private-key", "private-key-only-in-secret"):
        result = table_runs[case_id]
        assert key_body not in result.stdout + result.stderr
        _, out, err = run_in_process(capsys, "--check", str(table_dir / f"{case_id}.yaml"),
                                     "--json")
        assert key_body not in out + err
        assert "PRIVATE KEY-----" not in out + err


# --- building, and the round trip through --check ---------------------------------------


def test_build_then_check_round_trip(material: Material, tmp_path: Path) -> None:
    (tmp_path / "registry-ca.pem").write_bytes(material.ca.cert_pem)
    (tmp_path / "Mirror_CA.crt").write_bytes(material.other_ca.cert_pem)
    built = run_cli(str(tmp_path / "registry-ca.pem"), str(tmp_path / "Mirror_CA.crt"))
    assert built.returncode == 0, built.stderr
    doc = yaml.safe_load(built.stdout)
    assert doc["apiVersion"] == "run.tanzu.vmware.com/v1alpha1"
    assert doc["kind"] == "TkgServiceConfiguration"
    assert doc["metadata"] == {"name": "tkg-service-configuration"}
    assert "defaultCNI" not in doc["spec"], "the cluster's CNI is left as it is"
    assert "spec.defaultCNI is left as the cluster has it (--default-cni sets it)" in built.stderr
    entries = doc["spec"]["trust"]["additionalTrustedCAs"]
    assert [e["name"] for e in entries] == ["registry-ca", "mirror-ca"]
    assert base64.b64decode(entries[0]["data"]) == material.ca.cert_pem   # single base64
    assert base64.b64decode(entries[1]["data"]) == material.other_ca.cert_pem
    out = tmp_path / "tkg.yaml"
    out.write_text(built.stdout)
    checked = run_cli("--check", str(out), "--json")
    assert checked.returncode == 0, checked.stdout
    report = json.loads(checked.stdout)
    assert report["findings"] == [] and report["ok"]
    assert [e["encoding"] for e in report["entries"]] == ["base64", "base64"]


def test_secret_build_then_check_round_trip(material: Material, tmp_path: Path) -> None:
    pem = tmp_path / "registry-ca.pem"
    pem.write_bytes(material.ca.cert_pem)
    built = run_cli("--secret", "--cluster", "cluster01", "--namespace", "tkgs-cluster-ns",
                    str(pem))
    assert built.returncode == 0, built.stderr
    doc = yaml.safe_load(built.stdout)
    assert (doc["apiVersion"], doc["kind"], doc["type"]) == ("v1", "Secret", "Opaque")
    assert doc["metadata"] == {"name": "cluster01-user-trusted-ca-secret",
                               "namespace": "tkgs-cluster-ns"}
    value = doc["data"]["registry-ca"]
    # what the API server stores (Secret data is base64) is the base64 of the PEM ...
    stored = base64.b64decode(value)
    assert base64.b64decode(stored) == material.ca.cert_pem          # ... hence double
    assert "registry-ca" in built.stderr                              # names for the Cluster
    checked = run_cli("--check", "-", "--json", stdin=built.stdout)
    assert checked.returncode == 0, checked.stdout
    report = json.loads(checked.stdout)
    assert report["findings"] == []
    assert report["entries"][0]["encoding"] == "double-base64"


def test_pipe_build_into_check(material: Material, tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_bytes(material.ca.cert_pem)
    built = run_cli(str(pem))
    checked = run_cli("--check", "-", stdin=built.stdout)
    assert checked.returncode == 0
    assert "\x1b[" not in checked.stdout            # no colour into a pipe
    assert checked.stdout.splitlines() == [
        "TkgServiceConfiguration/tkg-service-configuration: 1 entry, data: base64 of the PEM",
        "1 entry checked: 0 errors, 0 warnings"]


def test_several_certificates_in_one_file(material: Material, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "corp-chain.pem"
    bundle.write_bytes(material.ca.cert_pem + b"\n" + material.other_ca.cert_pem)
    code, out, _ = run_in_process(capsys, str(bundle))
    assert code == 0
    entries = yaml.safe_load(out)["spec"]["trust"]["additionalTrustedCAs"]
    assert [e["name"] for e in entries] == ["corp-chain-1", "corp-chain-2"]
    code, out, _ = run_in_process(capsys, str(bundle), "--name", "corp")
    assert [e["name"] for e in yaml.safe_load(out)["spec"]["trust"]["additionalTrustedCAs"]] \
        == ["corp-1", "corp-2"]


@pytest.mark.parametrize(("stem", "name"), [
    ("harbor-ca", "harbor-ca"), ("My_Registry CA", "my-registry-ca"), ("ca.bundle", "ca-bundle"),
    ("--Weird__", "weird"), ("???", "ca"), ("x" * 80, "x" * 63)])
def test_default_names_are_dns_labels(stem: str, name: str) -> None:
    assert trust.sanitize_name(stem) == name


def test_build_refuses_a_private_key_and_prints_nothing(material: Material,
                                                        tmp_path: Path) -> None:
    combined = tmp_path / "registry.pem"
    combined.write_bytes(material.ca.cert_pem + material.ca.key_pem)
    result = run_cli(str(combined))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "private key" in result.stderr and "refusing" in result.stderr
    assert material.ca.key_pem.decode().splitlines()[1] not in result.stderr


@pytest.mark.parametrize("cni", ["antrea", "calico"])
def test_default_cni_only_when_asked(cni: str, material: Material, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ca.pem").write_bytes(material.ca.cert_pem)
    code, out, err = run_in_process(capsys, str(tmp_path / "ca.pem"), "--default-cni", cni)
    assert code == 0
    assert yaml.safe_load(out)["spec"]["defaultCNI"] == cni
    assert f"spec.defaultCNI is set to {cni}" in err


def test_default_cni_outside_the_tanzu_list_is_refused(material: Material, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    (tmp_path / "ca.pem").write_bytes(material.ca.cert_pem)
    with pytest.raises(SystemExit) as exited:
        run_in_process(capsys, str(tmp_path / "ca.pem"), "--default-cni", "flannel")
    assert exited.value.code == 2
    assert "invalid choice: 'flannel'" in capsys.readouterr().err


def test_namespace_is_refused_in_the_api_servers_words(material: Material, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    (tmp_path / "ca.pem").write_bytes(material.ca.cert_pem)
    code, _, err = run_in_process(capsys, "--cluster", "c1", "--namespace", "Tkgs_NS",
                                  str(tmp_path / "ca.pem"))
    assert code == 2
    assert ('--namespace: Invalid value: "Tkgs_NS": a lowercase RFC 1123 label must consist '
            "of lower case alphanumeric characters or '-'") in err


def key_only_pem(m: Material) -> bytes:
    return m.ca.key_pem


def key_only_der(m: Material) -> bytes:
    key = serialization.load_pem_private_key(m.ca.key_pem, password=None)
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def key_only_base64(m: Material) -> bytes:
    return b64(m.ca.key_pem).encode()


KEY_ONLY_HINT = ("It holds no certificate at all: the CA certificate is a separate file — "
                 "ca.crt beside ca.key, the ca.crt of the registry's TLS Secret")


@pytest.mark.parametrize("content", [key_only_pem, key_only_der, key_only_base64],
                         ids=["pem", "der", "base64-of-pem"])
def test_a_file_with_only_a_private_key_says_where_the_certificate_is(
        content: Callable[[Material], bytes], material: Material, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ca.key"
    path.write_bytes(content(material))
    code, out, err = run_in_process(capsys, str(path))
    assert (code, out) == (2, "")
    assert "holds a private key" in err and KEY_ONLY_HINT in err
    assert "openssl x509 -in" not in err, "no certificate to extract from it"
    assert material.ca.key_pem.decode().splitlines()[1] not in err


def test_a_file_with_a_key_and_a_certificate_says_extract_it(
        material: Material, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bundle.pem"
    path.write_bytes(material.ca.key_pem + material.ca.cert_pem)
    code, _, err = run_in_process(capsys, str(path))
    assert code == 2
    assert f"openssl x509 -in {path} -out ca.crt extracts the first one" in err
    assert KEY_ONLY_HINT not in err


@pytest.mark.parametrize(("content", "message"), [
    (b"hello, this is not a certificate\n", "is not a PEM certificate"),
    (b"", "is not a PEM certificate"),
    (b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", "holds no certificate"),
    (b"-----BEGIN CERTIFICATE-----\nMIIB\n", "no matching END line"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "does not parse"),
])
def test_build_refuses_what_is_not_a_pem_certificate(
        content: bytes, message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "input.pem"
    path.write_bytes(content)
    code, out, err = run_in_process(capsys, str(path))
    assert (code, out) == (2, "")
    assert message in err


def test_build_explains_base64_and_der_input(material: Material, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The documented harbor-ca.crt is base64 already (from jsonpath); a .der is binary."""
    b64_file = tmp_path / "harbor-ca.crt"
    b64_file.write_text(b64(material.ca.cert_pem))
    code, out, err = run_in_process(capsys, str(b64_file))
    assert (code, out) == (2, "")
    assert "base64 -d" in err
    der = tmp_path / "ca.der"
    der.write_bytes(x509.load_pem_x509_certificate(material.ca.cert_pem).public_bytes(
        serialization.Encoding.DER))
    code, out, err = run_in_process(capsys, str(der))
    assert (code, out) == (2, "")
    assert "openssl x509 -inform der" in err


def test_leaf_needs_allow_leaf_but_self_signed_leaf_is_fine(
        material: Material, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leaf = tmp_path / "registry.pem"
    leaf.write_bytes(material.leaf.cert_pem)
    code, out, err = run_in_process(capsys, str(leaf))
    assert (code, out) == (2, "")
    assert "not a CA" in err and "--allow-leaf" in err
    code, out, err = run_in_process(capsys, str(leaf), "--allow-leaf")
    assert code == 0 and "warning:" in err
    assert yaml.safe_load(out)["spec"]["trust"]["additionalTrustedCAs"][0]["name"] == "registry"
    lab = tmp_path / "lab.pem"
    lab.write_bytes(material.self_signed_leaf.cert_pem)
    code, out, err = run_in_process(capsys, str(lab))
    assert code == 0
    assert "self-signed leaf" in err and "fine" in err


def test_build_refuses_expired_and_future_certificates(
        material: Material, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for pair, message in ((material.expired_ca, "expired on"),
                          (material.future_ca, "not valid until")):
        path = tmp_path / "ca.pem"
        path.write_bytes(pair.cert_pem)
        code, out, err = run_in_process(capsys, str(path))
        assert (code, out) == (2, "")
        assert message in err
    path.write_bytes(material.soon_ca.cert_pem)
    code, out, err = run_in_process(capsys, str(path))
    assert code == 0 and "warning:" in err and "expires on" in err


def test_build_folds_the_same_certificate_given_twice(
        material: Material, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.pem", tmp_path / "b.pem"
    a.write_bytes(material.ca.cert_pem)
    b.write_bytes(material.ca.cert_pem)
    code, out, err = run_in_process(capsys, str(a), str(b))
    assert code == 0
    assert [e["name"] for e in yaml.safe_load(out)["spec"]["trust"]["additionalTrustedCAs"]] \
        == ["a"]
    assert "same certificate" in err


@pytest.mark.parametrize("args", [
    ["--name", "one", "--name", "two", "{ca}"],           # --name count differs
    ["--name", "bad name", "{ca}"],                       # not a valid key
    ["--secret", "{ca}"],                                 # Secret needs --cluster
    ["--cluster", "Not_A_Name", "{ca}"],
    ["{ca}", "{ca_dir}/ca.pem"],                          # same name twice
    ["{ca}", "--check", "x.yaml"],
    ["--default-cni", "antrea", "--check", "x.yaml"],       # building only
    ["--default-cni", "calico", "--cluster", "c1", "{ca}"],  # not in a Secret
    ["--cluster", "c1", "--namespace", "Tkgs_NS", "{ca}"],
    ["--json", "{ca}"],
    [],
    ["{ca_dir}/missing.pem"],
])
def test_build_usage_errors(args: list[str], material: Material, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ca.pem").write_bytes(material.ca.cert_pem)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ca.pem").write_bytes(material.other_ca.cert_pem)
    argv = [a.format(ca=tmp_path / "ca.pem", ca_dir=tmp_path / "sub") for a in args]
    code, out, err = run_in_process(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("kci-webhook trust:")


def test_check_unreadable_input_exits_2(material: Material, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(material.ca.cert_pem)
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    (tmp_path / "other.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                         "  name: x\n")
    for name, message in (("missing.yaml", "cannot read"), ("bad.yaml", "not valid YAML"),
                          ("other.yaml", "no TkgServiceConfiguration"),
                          ("ca.pem", "is a PEM file, not YAML")):
        result = run_cli("--check", str(tmp_path / name))
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert message in result.stderr, (name, result.stderr)
    result = run_cli("--check", str(tmp_path / "missing.yaml"), "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["ok"] is False


def test_check_reads_a_tkc_with_name_only_entries(material: Material) -> None:
    """v1alpha3 TanzuKubernetesCluster: names only, certificates in <tkc>-user-trusted-ca-secret."""
    alone = trust.check_text(tkc([{"name": "registry-ca"}]))
    assert [(f.severity, f.code) for f in alone.findings] == [("note", "secret-not-in-file")]
    assert "tkc01-user-trusted-ca-secret" in alone.findings[0].problem
    assert alone.ok
    both = trust.check_text(tkc([{"name": "registry-ca"}]) + "---\n" + secret(
        {"registry-ca": b64b64(material.ca.cert_pem), "extra": b64b64(material.other_ca.cert_pem)},
        name="tkc01-user-trusted-ca-secret"))
    assert [(f.code, f.entry) for f in both.findings] == [("unreferenced", "extra")]


def test_check_secret_name_and_string_data(material: Material) -> None:
    report = trust.check_text(secret({"registry-ca": b64(material.ca.cert_pem)},
                                     name="my-ca", field_name="stringData"))
    assert [(f.severity, f.code) for f in report.findings] == [("warning", "secret-name")]
    assert report.entries[0].encoding == "base64"


def test_peel_counts_layers(material: Material) -> None:
    pem = material.ca.cert_pem
    assert trust.peel(pem.decode()).layers == 0
    assert trust.peel(b64(pem)).layers == 1
    assert trust.peel(b64b64(pem)).layers == 2
    assert trust.peel(b64(b64b64(pem))).layers == 3
    wrapped = "\n".join(b64(pem)[i:i + 76] for i in range(0, len(b64(pem)), 76))
    assert trust.peel(wrapped).layers == 1            # line breaks are fine, as in Go
    assert trust.peel(b64(pem)[:-2]).code == "invalid-base64"
    assert trust.peel("").code == "invalid-base64"


def test_colour_only_on_a_terminal(material: Material, tmp_path: Path) -> None:
    path = tmp_path / "documented.yaml"
    path.write_text(DOC_TKS_YAML)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    env.update(TERM="xterm-256color", COLUMNS="200")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "webhook", "trust", "--check", str(path)],
                            cwd=ROOT, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:                                    # EIO: the child closed the pty
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=TIMEOUT) == 1
    output = b"".join(chunks).decode()
    assert "\x1b[" in output                              # coloured on a terminal
    assert "entry harbor-ca: certificate CN=harbor-ca expired on 2022-03-10" in output


def test_a_reader_that_stops_early_ends_the_check_quietly(table_dir: Path) -> None:
    """`kci-webhook trust --check --json FILE | head`: no traceback when head is gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "webhook", "trust", "--json", "--check",
             str(table_dir / f"{CASES[0].id}.yaml")], cwd=ROOT, stdout=write_end,
            stderr=subprocess.PIPE, text=True, timeout=TIMEOUT, check=False)
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141
