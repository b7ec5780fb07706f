"""`kci-webhook doctor`, run as a user runs it (`python -m webhook doctor ...` in a
subprocess), against real servers on loopback: Debian's docker-registry (TLS from a CA of
ours, htpasswd or Bearer-token auth, plain HTTP) from tests/registry_support.py, and small
TLS servers serving the broken certificates each test makes (expired, wrong name,
self-signed, TLS 1.1 only). Nothing is mocked: every check crosses a socket.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.registry_support import (
    Pki,
    RecordingServer,
    Registry,
    SilentServer,
    free_port,
    make_pki,
    push_image,
    registry_fixture,  # noqa: F401 - the `registry` fixture
    start_registry,
    token_registry_fixture,  # noqa: F401 - the `token_registry` fixture
)
from webhook.adapters.tls.issue import KeyPair, generate_ca, generate_serving_cert

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "webhook", "doctor"]
RUN_TIMEOUT = 60  # seconds for one whole command; each network step is bounded by --timeout
INSECURE = "k8s.ksyun.com/kci-insecure-registry"
HTTP_REGISTRY = "k8s.ksyun.com/kci-http-registry"
HOST_ALIASES = "k8s.ksyun.com/kci-host-aliases"
ALIAS_NAME = "registry.invalid"  # .invalid never resolves (RFC 2606)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def doctor(*args: str | Path | None, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    """`kci-webhook doctor ARGS --timeout T`, stdout a pipe (so plain text)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY")
           and not k.endswith("_proxy")}
    assert None not in args, "a fixture without the file it should have"
    return subprocess.run([*COMMAND, *map(str, args), "--timeout", str(timeout)], cwd=ROOT,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env,
                          check=False)


def steps_of(args: list[str | Path | None]) -> tuple[int, list[dict[str, Any]]]:
    result = doctor(*args, "--json")
    assert result.stderr == ""
    return result.returncode, json.loads(result.stdout)


def realm(registry: Registry) -> str:
    assert registry.token_server is not None
    return registry.token_server.realm


def line_of(out: str, step: str) -> str:
    """The headline of `step` in the people's output ("OK   tls  ..." / "FAIL tls  ...")."""
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0] in ("OK", "FAIL") and parts[1] == step:
            return line
    raise AssertionError(f"no {step} line in:\n{out}")


def step_names(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines()
            if line.split(None, 1)[:1] in (["OK"], ["FAIL"])]


# --- servers for the certificates a test makes -------------------------------------------------


def pki_serving(directory: Path, ca: KeyPair, server: KeyPair) -> Pki:
    """A Pki whose files hold `server` (any certificate, broken ones included) and `ca`."""
    pki = make_pki(directory)
    ca_file, cert_file, key_file = pki.ca_file, pki.cert_file, pki.key_file
    ca_file.write_bytes(ca.cert_pem)
    cert_file.write_bytes(server.cert_pem)
    key_file.write_bytes(server.key_pem)
    return Pki(ca, server, directory)


def v2_ok(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A registry's anonymous /v2/ answer."""
    if request["path"] == "/v2/":
        return 200, {"Docker-Distribution-Api-Version": "registry/2.0",
                     "Content-Type": "application/json"}, b"{}"
    return 404, {}, b""


class LegacyTlsServer:
    """Accepts TLS 1.0/1.1 handshakes only, as an old appliance or proxy does."""

    def __init__(self, pki: Pki) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(pki.cert_file), str(pki.key_file))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        self._context = context
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self._context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    def __enter__(self) -> LegacyTlsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


# --- registries of this module -----------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP registry with no auth, holding kci/plain:1.0."""
    with start_registry(tmp_path_factory.mktemp("plain"), tls=False, auth=False) as running:
        push_image(running, "kci/plain", "1.0")
        yield running


@pytest.fixture(scope="module")
def alias_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A TLS + htpasswd registry whose certificate also names registry.invalid (a name no
    DNS knows: only a host alias reaches it), holding kci/alias:3.0."""
    work = tmp_path_factory.mktemp("alias")
    pki = make_pki(work / "pki", dns_names=("localhost", ALIAS_NAME))
    with start_registry(work, pki=pki) as running:
        push_image(running, "kci/alias", "3.0")
        yield running


@pytest.fixture
def creds(registry: Registry, tmp_path: Path) -> Path:
    return registry.docker_config(tmp_path / "config.json")


# --- a pull that works --------------------------------------------------------------------------


def test_trusted_ca_credentials_and_image_is_a_working_pull(registry: Registry,
                                                            creds: Path) -> None:
    image = registry.images[0]
    result = doctor(registry.host, "--ca", registry.ca_file, "--creds", creds,
                    "--image", f"{image.repository}:{image.tag}")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert step_names(out) == ["resolve", "connect", "tls", "v2", "auth", "manifest"]
    assert "FAIL" not in out
    assert "TLSv1." in line_of(out, "tls")
    assert 'Basic realm="kci-test-registry"' in line_of(out, "v2")
    assert "user 'kci'" in line_of(out, "auth")
    assert image.digest in line_of(out, "manifest")
    assert f"a pull from {registry.host} would work" in out
    assert ANSI.search(out) is None, "no colour codes when stdout is not a terminal"


def test_json_is_a_list_of_steps(registry: Registry, creds: Path) -> None:
    image = registry.images[0]
    code, steps = steps_of([registry.host, "--ca", registry.ca_file, "--creds", creds,
                            "--image", f"{registry.host}/{image.repository}:{image.tag}"])
    assert code == 0
    assert [s["step"] for s in steps] == ["resolve", "connect", "tls", "v2", "auth", "manifest"]
    for step in steps:
        assert {"step", "ok", "detail", "fix"} <= step.keys()
        assert step["ok"] is True and step["fix"] is None and step["detail"]
    facts = {s["step"]: s["facts"] for s in steps}
    assert facts["resolve"]["addresses"] == ["127.0.0.1"]
    assert facts["tls"]["issuer"] == "CN=kci-test-registry-ca"
    assert "127.0.0.1" in facts["tls"]["sans"]
    assert facts["auth"]["scheme"] == "basic"
    assert facts["manifest"]["digest"] == image.digest


def test_bearer_token_registry(token_registry: Registry, tmp_path: Path) -> None:
    image = token_registry.images[0]
    config = token_registry.docker_config(tmp_path / "config.json")
    result = doctor(token_registry.host, "--ca", token_registry.ca_file, "--creds", config,
                    "--image", f"{image.repository}@{image.digest}")
    assert result.returncode == 0, result.stdout
    assert "Bearer realm=" in line_of(result.stdout, "v2")
    assert f"got a token from {realm(token_registry)}" in line_of(result.stdout, "auth")
    assert image.digest in line_of(result.stdout, "manifest")


def test_bearer_anonymous_token_cannot_pull_a_private_repository(token_registry: Registry
                                                                 ) -> None:
    image = token_registry.images[0]
    result = doctor(token_registry.host, "--ca", token_registry.ca_file,
                    "--image", f"{image.repository}:{image.tag}")
    assert result.returncode == 1
    assert "anonymous token" in line_of(result.stdout, "auth")
    manifest = line_of(result.stdout, "manifest")
    assert manifest.startswith("FAIL") and "needs credentials" in manifest
    assert "insufficient_scope" in manifest and "--creds" in result.stdout


# --- TLS: trust ----------------------------------------------------------------------------------


def assert_trust_fixes(out: str, registry_host: str) -> None:
    """The fixes for plain containerd nodes (the default of --nodes): no Tanzu route."""
    assert "caFile" in out
    assert f"/etc/containerd/certs.d/{registry_host}/ca.crt" in out and "hosts.toml" in out
    assert "update-ca-certificates" in out
    assert "additionalTrustedCAs" not in out and "kci-webhook trust" not in out
    assert f"{INSECURE}: {registry_host}" in out


def test_the_tanzu_route_is_offered_for_tanzu_nodes(registry: Registry) -> None:
    out = doctor(registry.host, "--nodes", "tanzu").stdout
    assert "x509: certificate signed by unknown authority" in line_of(out, "tls")
    assert "additionalTrustedCAs" in out and "kci-webhook trust" in out
    assert "hosts.toml" not in out
    assert f"{INSECURE}: {registry.host}" in out


def test_no_ca_is_unknown_authority_with_the_documented_fixes(registry: Registry) -> None:
    result = doctor(registry.host)
    assert result.returncode == 1
    out = result.stdout
    tls = line_of(out, "tls")
    assert tls.startswith("FAIL") and "x509: certificate signed by unknown authority" in tls
    assert "self-signed" not in tls
    assert "issued by CN=kci-test-registry-ca" in out  # the chain served
    assert "nodes must trust CN=kci-test-registry-ca" in out
    assert "openssl s_client -connect" in out
    assert_trust_fixes(out, registry.host)
    assert step_names(out) == ["resolve", "connect", "tls"], "stops where the pull fails"
    assert "would fail at step tls" in out


def test_wrong_ca_says_what_the_file_holds(registry: Registry, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", common_name="some-other-ca")
    code, steps = steps_of([registry.host, "--ca", other.ca_file])
    assert code == 1
    tls = steps[-1]
    assert tls["step"] == "tls" and tls["ok"] is False
    assert tls["detail"].startswith("x509: certificate signed by unknown authority")
    notes = "\n".join(tls["notes"])
    assert f"--ca {other.ca_file} holds CN=some-other-ca" in notes
    assert "none of them issued this certificate" in notes
    assert_trust_fixes(tls["fix"], registry.host)
    assert tls["facts"]["problem"] == "authority"


def test_self_signed_leaf_is_named(tmp_path: Path) -> None:
    itself = generate_ca(common_name="harbor.example.com", days=30)
    with RecordingServer(v2_ok, pki=pki_serving(tmp_path, itself, itself)) as server:
        result = doctor(server.host)
    assert result.returncode == 1
    tls = line_of(result.stdout, "tls")
    assert "unknown authority" in tls and "self-signed" in tls
    assert "the server's own certificate" in result.stdout
    assert_trust_fixes(result.stdout, server.host)


def test_expired_certificate_shows_the_dates(tmp_path: Path) -> None:
    ca = generate_ca(common_name="expiry-test-ca", days=30)
    leaf = generate_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"],
                                 days=-3)
    pki = pki_serving(tmp_path, ca, leaf)
    cert = x509.load_pem_x509_certificate(leaf.cert_pem)
    with RecordingServer(v2_ok, pki=pki) as server:
        code, steps = steps_of([server.host, "--ca", pki.ca_file])
        people = doctor(server.host, "--ca", pki.ca_file).stdout
    assert code == 1
    tls = steps[-1]
    expired_on = cert.not_valid_after_utc
    assert tls["detail"].startswith("x509: certificate has expired or is not yet valid: "
                                    "current time ")
    assert expired_on.strftime("%Y-%m-%dT%H:%M:%SZ") in tls["detail"]
    assert f"expired on {expired_on:%Y-%m-%d %H:%M} UTC" in tls["fix"]
    assert f"valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC" in "\n".join(
        tls["notes"])
    assert "renew" in tls["fix"]
    assert tls["facts"]["problem"] == "dates"
    assert "has expired" in line_of(people, "tls")


def test_certificate_for_another_name_lists_its_sans(tmp_path: Path) -> None:
    ca = generate_ca(common_name="name-test-ca", days=30)
    leaf = generate_serving_cert(ca, dns_names=["registry.example"], days=7)
    pki = pki_serving(tmp_path, ca, leaf)
    with RecordingServer(v2_ok, pki=pki) as server:
        result = doctor(server.host, "--ca", pki.ca_file)
        # The fix it names works: reach the server by the name its certificate has.
        fixed = doctor(f"registry.example:{server.port}", "--ca", pki.ca_file,
                       "--host-alias", "127.0.0.1=registry.example")
    assert result.returncode == 1
    tls = line_of(result.stdout, "tls")
    assert "x509: certificate is valid for registry.example, not 127.0.0.1" in tls
    out = result.stdout
    assert "SANs: registry.example" in out
    assert f"{HOST_ALIASES}: '[{{\"ip\":\"127.0.0.1\",\"hostnames\":[\"registry.example\"]}}]'" \
        in out
    assert f"{INSECURE}: {server.host}" in out
    assert fixed.returncode == 0, fixed.stdout
    assert "--host-alias" in line_of(fixed.stdout, "resolve")


def test_real_registry_under_a_name_its_certificate_lacks(registry: Registry) -> None:
    code, steps = steps_of([f"{ALIAS_NAME}:{registry.port}", "--ca", registry.ca_file,
                            "--host-alias", f"127.0.0.1={ALIAS_NAME}"])
    assert code == 1
    tls = steps[-1]
    assert tls["detail"] == ("x509: certificate is valid for localhost, 127.0.0.1, ::1, "
                             f"not {ALIAS_NAME}")
    assert tls["facts"]["sans"] == ["localhost", "127.0.0.1", "::1"]
    assert tls["facts"]["problem"] == "name"


def test_tls_below_1_2_is_named(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with LegacyTlsServer(pki) as server:
        result = doctor(f"127.0.0.1:{server.port}", "--ca", pki.ca_file)
    assert result.returncode == 1
    tls = line_of(result.stdout, "tls")
    assert "offers only TLSv1.1" in tls and "TLS 1.2 or newer" in tls


# --- a registry's answer, or a web server's ------------------------------------------------------

HTML = b"<!doctype html><title>Welcome</title><p>It works!"


def web_page(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """What a plain web server answers for any path, /v2/ included."""
    return 200, {"Content-Type": "text/html; charset=utf-8"}, HTML


def password_page(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A web server behind HTTP Basic auth: 401 with a challenge, then the page."""
    if "authorization" not in request["headers"]:
        return 401, {"WWW-Authenticate": 'Basic realm="intranet"'}, b""
    return web_page(request)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_plain_web_server_is_not_a_registry(tmp_path: Path, scheme: str) -> None:
    pki = make_pki(tmp_path / "pki") if scheme == "https" else None
    with RecordingServer(web_page, pki=pki) as server:
        args = ["--ca", pki.ca_file] if pki else ["--http"]
        code, steps = steps_of([server.host, *args])
        people = doctor(server.host, *args).stdout
    assert code == 1
    v2 = steps[-1]
    assert (v2["step"], v2["ok"]) == ("v2", False)
    assert v2["detail"].startswith(
        f"GET /v2/ → 200 without a Docker-Distribution-Api-Version header: {server.host} is a "
        "web server, not a container registry (Server: BaseHTTP/")  # what http.server says
    assert v2["detail"].endswith(", Content-Type: text/html)")
    assert "Docker-Distribution-Api-Version" in v2["fix"]
    assert v2["facts"]["problem"] == "not-a-registry"
    assert line_of(people, "v2").startswith("FAIL")


def test_password_protected_web_server_fails_after_the_login(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    config = tmp_path / "config.json"
    with RecordingServer(password_page, pki=pki) as server:
        config.write_text(json.dumps({"auths": {server.host: {"auth": "dTpw"}}}))
        code, steps = steps_of([server.host, "--ca", pki.ca_file, "--creds", config])
    assert code == 1
    assert [(s["step"], s["ok"]) for s in steps][-2:] == [("v2", True), ("auth", False)]
    assert "the login (auth) tells which this is" in "\n".join(steps[-2]["notes"])
    assert steps[-1]["detail"].endswith(f"{server.host} is a password-protected web server, "
                                        "not a container registry")
    assert steps[-1]["facts"]["problem"] == "not-a-registry"


def test_token_challenge_without_the_header_is_a_registry(tmp_path: Path) -> None:
    def token_only(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        return 401, {"WWW-Authenticate": 'Bearer realm="https://127.0.0.1:1/token",'
                                         'service="registry"'}, b""
    pki = make_pki(tmp_path / "pki")
    with RecordingServer(token_only, pki=pki) as server:
        _, steps = steps_of([server.host, "--ca", pki.ca_file])
    v2 = next(s for s in steps if s["step"] == "v2")
    assert v2["ok"] is True
    assert "a registry's token challenge" in "\n".join(v2["notes"])


def test_real_registry_answers_with_its_api_version(registry: Registry, creds: Path) -> None:
    code, steps = steps_of([registry.host, "--ca", registry.ca_file, "--creds", creds])
    assert code == 0
    v2 = next(s for s in steps if s["step"] == "v2")
    assert v2["facts"]["status"] == 401 and v2["facts"]["api_version"] == "registry/2.0"
    assert v2["notes"] == []


# --- --ca holding the server's certificate instead of its CA ------------------------------------


@pytest.mark.parametrize(("trusted", "noted"), [
    pytest.param("leaf", True, id="leaf-gets-a-note"),
    pytest.param("ca", False, id="ca-is-fine"),
])
def test_ca_file_holding_a_leaf_gets_a_note(tmp_path: Path, trusted: str, noted: bool) -> None:
    pki = make_pki(tmp_path / "pki")
    ca_file = pki.cert_file if trusted == "leaf" else pki.ca_file
    with RecordingServer(v2_ok, pki=pki) as server:
        code, steps = steps_of([server.host, "--ca", ca_file])
    tls_step = next(s for s in steps if s["step"] == "tls")
    notes = "\n".join(tls_step["notes"])
    assert code == 0 and tls_step["ok"], steps
    assert ("holds a leaf (server) certificate" in notes) is noted
    if noted:
        assert (f"--ca {ca_file} holds a leaf (server) certificate, CN=localhost, issued by "
                "CN=kci-test-registry-ca: trusting it works only until that certificate is "
                "renewed; trust the CA that issued it (CN=kci-test-registry-ca) instead") in notes


# --- plain HTTP ---------------------------------------------------------------------------------


def test_plain_http_port_probed_with_tls(plain_registry: Registry) -> None:
    result = doctor(plain_registry.host)
    assert result.returncode == 1
    tls = line_of(result.stdout, "tls")
    assert "this port speaks plain HTTP" in tls
    assert f"{HTTP_REGISTRY}: {plain_registry.host}" in result.stdout
    assert "--http" in result.stdout


def test_plain_http_registry_with_http_flag_works(plain_registry: Registry) -> None:
    image = plain_registry.images[0]
    result = doctor(plain_registry.host, "--http", "--image", f"{image.repository}:{image.tag}")
    assert result.returncode == 0, result.stdout
    assert image.digest in line_of(result.stdout, "manifest")
    assert "none needed" in line_of(result.stdout, "auth")


def test_http_flag_on_a_tls_port(registry: Registry) -> None:
    result = doctor(registry.host, "--http")
    assert result.returncode == 1
    assert "this port speaks TLS" in line_of(result.stdout, "v2")
    assert f"remove {registry.host} from {HTTP_REGISTRY}" in result.stdout


# --- authentication -----------------------------------------------------------------------------


def test_wrong_password_is_an_auth_failure(registry: Registry, tmp_path: Path) -> None:
    config = registry.docker_config(tmp_path / "config.json", password="not-the-password")
    result = doctor(registry.host, "--ca", registry.ca_file, "--creds", config)
    assert result.returncode == 1
    auth = line_of(result.stdout, "auth")
    assert auth.startswith("FAIL")
    assert "refused user 'kci'" in auth and "401" in auth and "wrong username or password" in auth


def test_wrong_password_at_the_token_service(token_registry: Registry, tmp_path: Path) -> None:
    config = token_registry.docker_config(tmp_path / "config.json", password="nope")
    code, steps = steps_of([token_registry.host, "--ca", token_registry.ca_file,
                            "--creds", config])
    assert code == 1
    auth = steps[-1]
    assert auth["step"] == "auth" and not auth["ok"]
    assert f"the token service {realm(token_registry)} refused user 'kci'" in auth["detail"]
    assert "wrong username or password" in auth["detail"]


def test_no_credentials_for_a_registry_that_wants_them(registry: Registry,
                                                       tmp_path: Path) -> None:
    other_host = registry.docker_config(tmp_path / "config.json", key="elsewhere.example:5000")
    result = doctor(registry.host, "--ca", registry.ca_file, "--creds", other_host)
    assert result.returncode == 1
    auth = line_of(result.stdout, "auth")
    assert "requires a username and password" in auth
    assert f"has no entry for {registry.host}" in auth
    assert "imagePullSecrets" in result.stdout


# --- manifests ----------------------------------------------------------------------------------


def test_missing_image_is_manifest_unknown(registry: Registry, creds: Path) -> None:
    image = registry.images[0]
    result = doctor(registry.host, "--ca", registry.ca_file, "--creds", creds,
                    "--image", f"{image.repository}:no-such-tag")
    assert result.returncode == 1
    manifest = line_of(result.stdout, "manifest")
    assert manifest.startswith("FAIL") and "manifest unknown" in manifest
    assert f"its tags: {image.tag}" in result.stdout


# --- names and connections ----------------------------------------------------------------------


def test_unresolvable_host(registry: Registry) -> None:
    code, steps = steps_of([f"{ALIAS_NAME}:{registry.port}"])
    assert code == 1
    assert [s["step"] for s in steps] == ["resolve"]
    resolve = steps[0]
    assert resolve["detail"].startswith(f"cannot resolve {ALIAS_NAME}")
    assert HOST_ALIASES in resolve["fix"] and "k8s.ksyun.com/kci-dns-config" in resolve["fix"]
    assert f"--host-alias <registry IP>={ALIAS_NAME}" in resolve["fix"]


def test_host_alias_reaches_the_real_registry(alias_registry: Registry, tmp_path: Path) -> None:
    name = f"{ALIAS_NAME}:{alias_registry.port}"
    config = alias_registry.docker_config(tmp_path / "config.json", key=name)
    image = alias_registry.images[0]
    result = doctor(name, "--host-alias", f"127.0.0.1={ALIAS_NAME}",
                    "--ca", alias_registry.ca_file, "--creds", config,
                    "--image", f"{name}/{image.repository}:{image.tag}")
    assert result.returncode == 0, result.stdout
    assert f"{ALIAS_NAME} → 127.0.0.1 (--host-alias" in line_of(result.stdout, "resolve")
    assert f"certificate verified for {ALIAS_NAME}" in line_of(result.stdout, "tls")
    assert image.digest in line_of(result.stdout, "manifest")


def test_connection_refused() -> None:
    port = free_port()  # nothing listens there
    result = doctor(f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert "connection refused" in line_of(result.stdout, "connect")
    assert f"nothing listens on port {port}" in result.stdout


def test_silent_server_is_bounded_by_the_timeout() -> None:
    with SilentServer() as server:
        result = doctor(server.host, timeout=1)   # bounded by RUN_TIMEOUT, a liveness limit
    assert result.returncode == 1
    assert "no answer within 1s" in line_of(result.stdout, "tls")


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["https://h.example/Some/Path"], "'Some/Path' is not a namespace"),
    ([], "give REGISTRY, or --config FILE"),
    (["h.example", "--config", "config.yaml"], "give no REGISTRY"),
    (["--config", "/nonexistent/config.yaml"], "--config /nonexistent/config.yaml: cannot read"),
    (["ftp://h.example"], "scheme"),
    (["h.example:99999"], "expected host[:port]"),
    (["h.example", "--host-alias", "1.2.3=h.example"], "is not an IPv4 or IPv6 address"),
    (["h.example", "--host-alias", "nonsense"], "expected IP=HOST"),
    (["h.example", "--host-alias", "h.example=10.0.0.5"],
     "the format is IP=HOST, the address first as in /etc/hosts: --host-alias "
     "10.0.0.5=h.example"),
    (["h.example", "--host-alias", "h.example=10.0.0.5,fd00::1"],
     "the format is IP=HOST"),
    (["h.example", "--ca", "/nonexistent/ca.pem"], "cannot read"),
    (["h.example", "--image", "other.example/kci/app:1.0"], "names the registry other.example"),
    (["h.example", "--image", "Kci/App:1.0"], "not an image reference"),
    (["h.example", "--timeout", "0"], "--timeout"),
])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run([*COMMAND, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_base64_ca_file_is_a_usage_error_that_says_decode(registry: Registry,
                                                          tmp_path: Path) -> None:
    import base64

    assert registry.ca_file is not None
    encoded = tmp_path / "harbor-ca.crt"
    encoded.write_bytes(base64.b64encode(registry.ca_file.read_bytes()))
    result = doctor(registry.host, "--ca", encoded)
    assert result.returncode == 2
    assert "base64 -d" in result.stderr


def test_broken_creds_file_is_a_usage_error(registry: Registry, tmp_path: Path) -> None:
    broken = tmp_path / "config.json"
    broken.write_text("{not json")
    result = doctor(registry.host, "--creds", broken)
    assert result.returncode == 2
    assert str(broken) in result.stderr and "not valid JSON" in result.stderr


def test_terminal_gets_marks_and_colour(registry: Registry, creds: Path) -> None:
    """On a terminal: ✔/✘ and rich colour; the same findings as in plain text."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS="200")
    process = subprocess.Popen([*COMMAND, registry.host, "--timeout", "5"], cwd=ROOT,
                               stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = process.wait(timeout=RUN_TIMEOUT)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    out = b"".join(chunks).decode()
    assert code == 1
    assert ANSI.search(out), "colour on a terminal"
    text = ANSI.sub("", out)
    assert "✔ resolve" in text and "✘ tls" in text
    assert "x509: certificate signed by unknown authority" in text


# --- a mirror as the config writes it, and every mirror of a config ------------------------------


def test_a_mirror_endpoint_as_the_config_writes_it(registry: Registry, creds: Path) -> None:
    """`https://host/v2/<ns>`: the namespace is the mirror's; --image is a source path."""
    image = registry.images[0]
    namespace, _, repository = image.repository.partition("/")
    result = doctor(f"https://{registry.host}/v2/{namespace}", "--ca", registry.ca_file,
                    "--creds", creds, "--image", f"{repository}:{image.tag}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert image.digest in line_of(result.stdout, "manifest")
    assert f"image {image.repository}:{image.tag}" in result.stdout


def test_config_checks_every_mirror(registry: Registry, plain_registry: Registry,
                                    creds: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"""\
mirrors:
- endpoint: https://{registry.host}/v2/kci
  hosts: [docker.io]
  caFile: {registry.ca_file}
  pullCredentialConfigPath: {creds}
- endpoint: http://{plain_registry.host}/v2/kci
  hosts: [quay.io]
- endpoint: https://{registry.host}
  hosts: [gcr.io]
""")
    result = doctor("--config", config)
    assert result.returncode == 1, result.stdout + result.stderr
    reports = result.stdout.split(f"{config}: mirrors[")[1:]
    assert [r.split("]", 1)[0] for r in reports] == ["0", "1", "2"]
    assert "would fail" not in reports[0] and "would fail" not in reports[1]
    assert "would fail at step tls" in reports[2]       # no caFile: the CA is unknown
    code, checked = steps_of(["--config", config, "--image", "app:1.0"])
    assert code == 1
    assert [(c["mirror"], c["ok"]) for c in checked] == [(0, True), (1, False), (2, False)]
    assert checked[0]["steps"][-1]["step"] == "manifest"


def test_config_with_an_unusable_mirror_file_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("mirrors:\n- endpoint: https://m.example/v2/x\n  hosts: [docker.io]\n"
                      f"  caFile: {tmp_path / 'absent.crt'}\n")
    result = doctor("--config", config)
    assert result.returncode == 2 and result.stdout == ""
    assert f"{config}: mirrors[0]: caFile {tmp_path / 'absent.crt'}: cannot read" \
        in result.stderr
