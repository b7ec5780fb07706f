"""Reloading the serving pair in place (`webhook.adapters.tls.reload`).

Real crypto and real TLS handshakes on 127.0.0.1 (no mocks): the echo server of
`handshakes` stands in for uvicorn, so what these tests see is what the API server would see.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from tests.adapters.tls.handshakes import (
    TIMEOUT,
    EchoServer,
    connect,
    dev_pair,
    echo,
    peer_serial,
    serial,
)
from webhook.adapters.tls.issue import KeyPair, write_pair
from webhook.adapters.tls.reload import ReloadingContext


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
