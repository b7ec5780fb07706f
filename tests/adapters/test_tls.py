"""webhook.adapters.tls with real crypto and real TLS handshakes on 127.0.0.1 (no mocks).

A tiny threaded TLS echo server stands in for uvicorn: it is handed one SSLContext, as
uvicorn is, so what these tests see is what the API server would see.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from webhook.adapters.tls.check import check_pair
from webhook.adapters.tls.issue import (
    KeyPair,
    ca_bundle,
    ensure_dev_certificates,
    generate_ca,
    generate_serving_cert,
    make_service_certificates,
    service_dns_names,
    write_pair,
)
from webhook.adapters.tls.reload import ReloadingContext
from webhook.core.errors import ConfigError

TIMEOUT = 5.0


class EchoServer:
    """Accepts TLS connections with `context` and echoes each one until it closes."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(TIMEOUT)
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                while not self.stop.is_set() and (data := conn.recv(1024)):
                    conn.sendall(data)
        except (OSError, ssl.SSLError):
            pass  # a client that refused our certificate, or went away

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(TIMEOUT)
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[type[EchoServer]]:
    """Factory for EchoServers; every one started in a test is stopped after it."""
    started: list[EchoServer] = []

    def start(context: ssl.SSLContext) -> EchoServer:
        server = EchoServer(context)
        started.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in started:
        server.close()


def connect(port: int, ca_pem: bytes, hostname: str = "localhost",
            context: ssl.SSLContext | None = None) -> ssl.SSLSocket:
    """A verified TLS client connection; raises on any verification failure."""
    if context is None:
        context = ssl.create_default_context(cadata=ca_pem.decode())
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        return context.wrap_socket(raw, server_hostname=hostname)
    except BaseException:
        raw.close()
        raise


def peer_serial(conn: ssl.SSLSocket) -> int:
    der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def serial(pair: KeyPair) -> int:
    return x509.load_pem_x509_certificate(pair.cert_pem).serial_number


def echo(conn: ssl.SSLSocket, data: bytes = b"ping") -> bytes:
    conn.sendall(data)
    return conn.recv(1024)


def dev_pair(ca: KeyPair, days: int = 365) -> KeyPair:
    return generate_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"],
                                 days=days)


# --- generation and the Service names ---------------------------------------------------

SERVICE_NAMES = service_dns_names("kci-webhook", "kci-system")


def test_service_dns_names_are_the_four_forms() -> None:
    assert SERVICE_NAMES == ["kci-webhook", "kci-webhook.kci-system", "kci-webhook.kci-system.svc",
                             "kci-webhook.kci-system.svc.cluster.local"]
    assert service_dns_names("a", "b", "corp")[-1] == "a.b.svc.corp"


@pytest.fixture(scope="module")
def service_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, KeyPair]:
    """Module-scoped: one CA + serving pair is enough for the whole hostname table."""
    out = tmp_path_factory.mktemp("certs")
    ca, *_ = make_service_certificates(out, service="kci-webhook", namespace="kci-system")
    return out, ca


@pytest.mark.parametrize(
    ("hostname", "accepted"),
    [(name, True) for name in SERVICE_NAMES]
    + [("other.kci-system.svc", False),   # another Service in the same namespace
       ("kci-webhook.other.svc", False),  # the same Service name in another namespace
       ("localhost", False)],
)
def test_service_certificate_verifies_through_handshake(
    service_pki: tuple[Path, KeyPair], serve: type[EchoServer], hostname: str,
    accepted: bool,
) -> None:
    out, ca = service_pki
    server = serve(ReloadingContext(out / "tls.crt", out / "tls.key").context)
    if accepted:
        with connect(server.port, ca.cert_pem, hostname) as conn:
            assert echo(conn) == b"ping"
    else:
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(server.port, ca.cert_pem, hostname)


def test_service_certificates_written_with_modes_and_ca_reused(tmp_path: Path) -> None:
    ca1, leaf1, reused1, _ = make_service_certificates(tmp_path, service="s", namespace="n")
    assert {p.name for p in tmp_path.iterdir()} == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    for name in ("ca.key", "tls.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    ca2, leaf2, reused2, _ = make_service_certificates(tmp_path, service="s", namespace="n")
    assert ca2 == ca1 and serial(leaf2) != serial(leaf1)  # same caBundle, new serving cert
    assert (reused1, reused2) == (False, True)
    report = check_pair(leaf2.cert_pem, leaf2.key_pem, ca_pem=ca1.cert_pem,
                        expected_names=service_dns_names("s", "n"))
    assert report.ok and report.problems == []
    ca3, _, reused3, _ = make_service_certificates(tmp_path, service="s", namespace="n",
                                                    reuse_ca=False)
    assert ca3.cert_pem != ca1.cert_pem and not reused3


def test_unusable_ca_is_refused_not_replaced(tmp_path: Path) -> None:
    make_service_certificates(tmp_path, service="s", namespace="n")
    (tmp_path / "ca.key").write_bytes(generate_ca().key_pem)  # key of another CA
    with pytest.raises(ValueError, match="cannot reuse the CA.*does not match"):
        make_service_certificates(tmp_path, service="s", namespace="n")


def test_ca_extensions_and_bundle() -> None:
    ca = generate_ca()
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert bc.ca and bc.path_length == 0 and ku.key_cert_sign and ku.crl_sign
    assert "key_pem" not in repr(ca) and ca.key_pem.splitlines()[1][:20].decode() not in repr(ca)
    assert base64.b64decode(ca_bundle(ca.cert_pem)) == ca.cert_pem


def test_serving_cert_backdated_for_clock_skew_and_capped_at_ca() -> None:
    ca = generate_ca(days=30)
    cert = x509.load_pem_x509_certificate(dev_pair(ca, days=365).cert_pem)
    now = datetime.now(UTC)
    assert now - timedelta(minutes=6) < cert.not_valid_before_utc <= now - timedelta(minutes=4)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    assert cert.not_valid_after_utc == ca_cert.not_valid_after_utc
    with pytest.raises(ValueError, match="at least one"):
        generate_serving_cert(ca, dns_names=[])


# --- check_pair ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca() -> KeyPair:
    """Module-scoped: the CA is read-only in every test that uses it."""
    return generate_ca()


def test_check_pair_good(ca: KeyPair) -> None:
    pair = dev_pair(ca)
    report = check_pair(pair.cert_pem, pair.key_pem, ca_pem=ca.cert_pem,
                        expected_names=["localhost", "127.0.0.1"])
    assert report.ok and report.problems == []
    assert report.sans == ["localhost", "127.0.0.1"]
    assert report.not_after is not None and report.not_after > datetime.now(UTC)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired", "certificate expired on"),
        ("not_yet_valid", "certificate not yet valid"),
        ("wrong_key", "private key does not match the certificate"),
        ("garbage_key", "private key does not parse"),
        ("san_missing", "missing SAN 'kci-webhook.kci-system.svc'"),
        ("ip_missing", "missing SAN '::1'"),
        ("other_ca", "not signed by the given CA"),
        ("garbage_ca", "not signed by the given CA: "),
    ],
)
def test_check_pair_names_each_problem(ca: KeyPair, case: str, expected: str) -> None:
    pair = dev_pair(ca, days=-1 if case == "expired" else 365)
    key = pair.key_pem
    kwargs: dict = {"ca_pem": ca.cert_pem}
    if case == "not_yet_valid":
        kwargs["now"] = datetime.now(UTC) - timedelta(days=2)
    elif case == "wrong_key":
        key = dev_pair(ca).key_pem
    elif case == "garbage_key":
        key = b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"
    elif case == "san_missing":
        kwargs["expected_names"] = ["localhost", "kci-webhook.kci-system.svc"]
    elif case == "ip_missing":
        kwargs["expected_names"] = ["127.0.0.1", "::1"]
    elif case == "other_ca":
        kwargs["ca_pem"] = generate_ca().cert_pem
    elif case == "garbage_ca":
        kwargs["ca_pem"] = b"not a certificate"
    report = check_pair(pair.cert_pem, key, **kwargs)
    assert not report.ok
    assert len(report.problems) == 1 and report.problems[0].startswith(expected), report.problems


def test_check_pair_expiring_soon_is_a_warning_not_an_error(ca: KeyPair) -> None:
    pair = dev_pair(ca, days=10)
    report = check_pair(pair.cert_pem, pair.key_pem, ca_pem=ca.cert_pem)
    assert report.ok and len(report.problems) == 1
    assert report.problems[0].startswith("certificate expires within 30 days")
    assert check_pair(pair.cert_pem, pair.key_pem, warn_within=timedelta(days=5)).problems == []
    both = check_pair(pair.cert_pem, pair.key_pem, expected_names=["nope"])
    assert not both.ok and len(both.problems) == 2  # an error and the expiry advice


def test_check_pair_collects_every_problem_and_survives_garbage(ca: KeyPair) -> None:
    pair = dev_pair(ca, days=-1)
    report = check_pair(pair.cert_pem, dev_pair(ca).key_pem, expected_names=["x", "y"],
                        ca_pem=generate_ca().cert_pem)
    assert len(report.problems) == 5 and not report.ok
    bad = check_pair(b"junk", b"junk")
    assert not bad.ok and bad.problems[0].startswith("certificate does not parse")
    assert bad.not_after is None


# --- ensure_dev_certificates -------------------------------------------------------------

def test_dev_certificates_created_then_reused(tmp_path: Path, serve: type[EchoServer]) -> None:
    d = tmp_path / "certs"
    cert, key, ca = ensure_dev_certificates(d)
    assert (cert, key, ca) == (d / "tls.crt", d / "tls.key", d / "ca.crt")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (d / "ca.key").exists()  # the dev CA's key is never kept
    before = [p.read_bytes() for p in (cert, key, ca)]
    assert ensure_dev_certificates(d) == (cert, key, ca)
    assert [p.read_bytes() for p in (cert, key, ca)] == before
    server = serve(ReloadingContext(cert, key).context)
    for host in ("localhost", "127.0.0.1", "::1"):
        with connect(server.port, ca.read_bytes(), host) as conn:
            assert echo(conn) == b"ping"


def test_dev_certificates_first_made_are_not_reported_as_an_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A first start finds no files: that is the normal case, not a problem to report."""
    with caplog.at_level(logging.INFO, logger="kci-webhook.tls"):
        ensure_dev_certificates(tmp_path / "certs")
    said = [record.getMessage() for record in caplog.records]
    assert said == [f"created a development CA and serving certificate in {tmp_path / 'certs'}"]
    (tmp_path / "certs" / "tls.key").write_bytes(b"garbage")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kci-webhook.tls"):
        ensure_dev_certificates(tmp_path / "certs")
    assert caplog.records[0].getMessage().startswith(
        f"the development certificates in {tmp_path / 'certs'} are not usable (")
    assert caplog.records[0].getMessage().endswith("): replacing them")


@pytest.mark.parametrize("damage", ["expires_today", "garbage_key", "wrong_key", "missing_ca",
                                    "other_ca", "no_localhost"])
def test_dev_certificates_replaced_when_unusable(tmp_path: Path, damage: str) -> None:
    cert, key, ca = ensure_dev_certificates(tmp_path)
    ca_pair = KeyPair(ca.read_bytes(), b"")
    if damage == "expires_today":  # valid, but for less than a day: renew now
        other = generate_ca()
        pair = generate_serving_cert(other, dns_names=["localhost"],
                                     ip_addresses=["127.0.0.1", "::1"], days=1)
        write_pair(tmp_path, ca=other, serving=pair)
    elif damage == "garbage_key":
        key.write_bytes(b"garbage")
    elif damage == "wrong_key":
        key.write_bytes(generate_ca().key_pem)
    elif damage == "missing_ca":
        ca.unlink()
    elif damage == "other_ca":
        ca.write_bytes(generate_ca().cert_pem)
    elif damage == "no_localhost":
        other = generate_ca()
        write_pair(tmp_path, ca=other,
                   serving=generate_serving_cert(other, dns_names=["example.com"]))
    before = cert.read_bytes()
    ensure_dev_certificates(tmp_path)
    assert cert.read_bytes() != before and ca.read_bytes() != ca_pair.cert_pem
    report = check_pair(cert.read_bytes(), key.read_bytes(), ca_pem=ca.read_bytes(),
                        expected_names=["localhost", "127.0.0.1", "::1"])
    assert report.ok and report.problems == []
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize("state", ["service-certificates", "ca-only", "ca-crt-missing"])
def test_dev_certificates_never_replace_a_ca_of_kci_webhook_certs(tmp_path: Path,
                                                                  state: str) -> None:
    # `kci-webhook certs --out DIR` leaves ca.key beside ca.crt; serve on the same DIR must
    # not orphan that key by writing a CA certificate of its own.
    make_service_certificates(tmp_path, service="kci-webhook", namespace="kci-webhook")
    if state == "ca-only":
        (tmp_path / "tls.crt").unlink()
    elif state == "ca-crt-missing":
        (tmp_path / "ca.crt").unlink()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ConfigError, match=r"holds a CA key \(ca\.key"):
        ensure_dev_certificates(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# --- ReloadingContext --------------------------------------------------------------------

def test_reloading_context_refuses_broken_pair_at_start(tmp_path: Path, ca: KeyPair) -> None:
    a, b = dev_pair(ca), dev_pair(ca)
    write_pair(tmp_path, ca=ca, serving=a)
    (tmp_path / "tls.key").write_bytes(b.key_pem)
    with pytest.raises(ValueError, match="does not match"):
        ReloadingContext(tmp_path / "tls.crt", tmp_path / "tls.key")
    with pytest.raises(ValueError, match="cannot read"):
        ReloadingContext(tmp_path / "nope.crt", tmp_path / "tls.key")


def test_reload_new_handshakes_get_new_cert_old_connections_keep_theirs(
    tmp_path: Path, ca: KeyPair, serve: type[EchoServer], caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = dev_pair(ca, days=100), dev_pair(ca, days=200)
    write_pair(tmp_path, ca=ca, serving=a)
    rc = ReloadingContext(tmp_path / "tls.crt", tmp_path / "tls.key")
    ctx = rc.context
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    server = serve(ctx)
    assert rc.maybe_reload() is False  # nothing changed
    old = connect(server.port, ca.cert_pem)
    try:
        assert peer_serial(old) == serial(a)
        write_pair(tmp_path, ca=ca, serving=b)
        assert rc.maybe_reload() is True
        assert rc.context is ctx  # reloaded in place: the server keeps the same object
        assert rc.not_after == x509.load_pem_x509_certificate(b.cert_pem).not_valid_after_utc
        with connect(server.port, ca.cert_pem) as new:
            assert peer_serial(new) == serial(b) and echo(new) == b"ping"
        assert echo(old, b"still here") == b"still here" and peer_serial(old) == serial(a)

        # broken pairs: refused, logged, and B keeps serving
        caplog.set_level(logging.WARNING, logger="kci-webhook.tls")
        for cert_pem, key_pem in [(b.cert_pem, b"garbage"),           # garbage key
                                  (b.cert_pem, dev_pair(ca).key_pem),  # key not matching
                                  (b.cert_pem[: len(b.cert_pem) // 2], b.key_pem),  # half
                                  (b.cert_pem, b"")]:                  # empty key
            caplog.clear()
            (tmp_path / "tls.key").write_bytes(key_pem)
            (tmp_path / "tls.crt").write_bytes(cert_pem)
            assert rc.maybe_reload() is False
            assert [r.name for r in caplog.records] == ["kci-webhook.tls"]
            assert "TLS reload refused" in caplog.records[0].getMessage()
            assert rc.maybe_reload() is False and len(caplog.records) == 1  # logged once
            with connect(server.port, ca.cert_pem) as conn:
                assert peer_serial(conn) == serial(b)

        # files vanish mid-swap: keep serving
        (tmp_path / "tls.key").unlink()
        assert rc.maybe_reload() is False
        write_pair(tmp_path, ca=ca, serving=a)  # and a good pair again is picked up
        assert rc.maybe_reload() is True
        with connect(server.port, ca.cert_pem) as conn:
            assert peer_serial(conn) == serial(a)
    finally:
        old.close()


def test_reload_follows_symlink_swap_like_a_mounted_secret(
    tmp_path: Path, ca: KeyPair, serve: type[EchoServer],
) -> None:
    """The kubelet updates a Secret volume by re-pointing `..data`; mtimes of the visible
    paths do not change, so only a content hash notices."""
    a, b = dev_pair(ca), dev_pair(ca)
    write_pair(tmp_path / "v1", ca=ca, serving=a)
    write_pair(tmp_path / "v2", ca=ca, serving=b)
    (tmp_path / "..data").symlink_to("v1")
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).symlink_to(Path("..data", name))
    rc = ReloadingContext(tmp_path / "tls.crt", tmp_path / "tls.key")
    server = serve(rc.context)
    (tmp_path / "..data_tmp").symlink_to("v2")
    (tmp_path / "..data_tmp").replace(tmp_path / "..data")
    assert rc.maybe_reload() is True
    with connect(server.port, ca.cert_pem) as conn:
        assert peer_serial(conn) == serial(b)


def test_watch_reloads_and_stops_on_cancel(tmp_path: Path, ca: KeyPair) -> None:
    a, b = dev_pair(ca, days=100), dev_pair(ca, days=200)
    write_pair(tmp_path, ca=ca, serving=a)
    rc = ReloadingContext(tmp_path / "tls.crt", tmp_path / "tls.key")
    before = rc.not_after

    async def scenario() -> None:
        task = asyncio.create_task(rc.watch(interval=0.01))
        (tmp_path / "tls.key").write_bytes(b"junk")  # a broken pair must not kill the loop
        await asyncio.sleep(0.05)
        write_pair(tmp_path, ca=ca, serving=b)
        for _ in range(200):
            if rc.not_after != before:
                break
            await asyncio.sleep(0.01)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT))
    assert rc.not_after > before


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_client_is_refused(
    tmp_path: Path, ca: KeyPair, serve: type[EchoServer],
) -> None:
    write_pair(tmp_path, ca=ca, serving=dev_pair(ca))
    rc = ReloadingContext(tmp_path / "tls.crt", tmp_path / "tls.key")
    assert rc.context.minimum_version >= ssl.TLSVersion.TLSv1_2

    def old_client() -> ssl.SSLContext:
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(cadata=ca.cert_pem.decode())
        c.set_ciphers("DEFAULT:@SECLEVEL=0")
        c.minimum_version = c.maximum_version = ssl.TLSVersion.TLSv1_1
        return c

    # Control: can this OpenSSL speak TLS 1.1 at all? Only then is a refusal meaningful.
    try:
        permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
        permissive.minimum_version = ssl.TLSVersion.TLSv1_1
        permissive.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
        with connect(serve(permissive).port, ca.cert_pem, context=old_client()) as conn:
            assert conn.version() == "TLSv1.1"
    except (ssl.SSLError, ValueError) as e:
        pytest.skip(f"local OpenSSL cannot negotiate TLS 1.1 ({e}); minimum_version checked")
    with pytest.raises(ssl.SSLError, match="(?i)version"):
        connect(serve(rc.context).port, ca.cert_pem, context=old_client())
