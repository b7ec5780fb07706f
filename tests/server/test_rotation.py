"""Certificate rotation and the drain on SIGTERM of the real server process.

`python -m webhook serve --cert … --key …` on 127.0.0.1, driven with real AdmissionReviews
over real TLS, while the test does to it what the cluster does: the kubelet swaps the
files of the mounted Secret when cert-manager (or a new `kci-webhook certs`) rotates the
certificate, and it sends SIGTERM when a pod is deleted or rolled.

Every wait is bounded (TIMEOUT), every client loop has a maximum number of requests, and
the server is stopped whatever happens.
"""

from __future__ import annotations

import http.client
import itertools
import re
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography import x509

from tests.conftest import TEST_CONFIG, RunningServer, pod_review, start_server, stop_server
from webhook.adapters.tls.issue import KeyPair, generate_ca, generate_serving_cert

TIMEOUT = 10.0          # the longest any single wait in this module may take
RELOAD_WITHIN = 8.0     # the server polls the files every 2 s (ReloadingContext.watch)
GRACEFUL_SHUTDOWN = 25  # uvicorn's timeout_graceful_shutdown in webhook.server.run.run
MAX_REQUESTS = 2000     # per client thread: a runaway loop stops by itself


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> float:
    """Poll `condition` until true; return the seconds it took, or fail naming `what`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def serial_of(pair: KeyPair) -> int:
    return x509.load_pem_x509_certificate(pair.cert_pem).serial_number


def local_pair(ca: KeyPair) -> KeyPair:
    """A serving pair for the test client, which connects to 127.0.0.1."""
    return generate_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"])


class SecretVolume:
    """A directory laid out as the kubelet lays out a mounted Secret: `tls.crt` is a
    symlink to `..data/tls.crt`, and `..data` points at a timestamped directory. An
    update writes a new directory and renames a new `..data` link over the old one, so
    the certificate and the key change together, atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions = itertools.count(1)
        root.mkdir(parents=True)

    def write(self, *, cert_pem: bytes, key_pem: bytes, ca_pem: bytes) -> None:
        version = f"..{next(self.versions):04d}"
        directory = self.root / version
        directory.mkdir()
        for name, data in (("tls.crt", cert_pem), ("tls.key", key_pem), ("ca.crt", ca_pem)):
            (directory / name).write_bytes(data)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(version)
        tmp.replace(self.root / "..data")  # rename(2): the atomic step
        for name in ("tls.crt", "tls.key", "ca.crt"):
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(Path("..data", name))


# --- clients --------------------------------------------------------------------------------

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
}


@dataclass
class Result:
    at: float           # time.monotonic() when the answer arrived
    serial: int         # serial number of the certificate the server presented
    local_port: int     # which TCP connection carried the request
    closing: bool = False   # the answer said `Connection: close`


@dataclass
class Traffic:
    """What a client thread saw: every answer, and every failure, each kept."""

    results: list[Result] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def serials(self) -> list[int]:
        return [r.serial for r in self.results]


def client_context(ca_file: Path) -> ssl.SSLContext:
    """Verifies the chain and the IP SAN, as the API server verifies its webhook."""
    return ssl.create_default_context(cafile=str(ca_file))


def admit(conn: http.client.HTTPSConnection, uid: str) -> bool:
    """One AdmissionReview; raises AssertionError unless it is a valid, allowed answer.
    Returns whether the answer said `Connection: close`."""
    conn.request("POST", "/mutate", body=orjson.dumps(pod_review(POD, uid=uid)),
                 headers={"content-type": "application/json"})
    reply = conn.getresponse()
    body = reply.read()
    assert reply.status == 200, f"HTTP {reply.status}: {body[:200]!r}"
    review = orjson.loads(body)
    assert review["response"]["uid"] == uid and review["response"]["allowed"] is True, review
    return (reply.getheader("connection") or "").lower() == "close"


def peer(conn: http.client.HTTPSConnection) -> tuple[int, int]:
    """(serial of the server's certificate, local port) of the connection's socket."""
    sock = conn.sock
    assert isinstance(sock, ssl.SSLSocket)
    der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number, sock.getsockname()[1]


def new_connections(port: int, ca_file: Path, stop: threading.Event, out: Traffic) -> None:
    """A fresh TCP connection and TLS handshake for every request."""
    context = client_context(ca_file)
    for i in range(MAX_REQUESTS):
        if stop.is_set():
            return
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=TIMEOUT)
        try:
            conn.connect()
            serial, local_port = peer(conn)   # before the answer: `Connection: close` on
            closing = admit(conn, f"new-{i}")  # it makes http.client close the socket
            out.results.append(Result(time.monotonic(), serial, local_port, closing))
        except Exception as exc:  # noqa: BLE001 - every failure is the finding
            out.failures.append(f"request new-{i}: {exc!r}")
        finally:
            conn.close()
        time.sleep(0.02)


def keep_alive(port: int, ca_file: Path, stop: threading.Event, out: Traffic) -> None:
    """One connection reused for every request, as the API server's client does.
    http.client would silently reconnect if the server closed it, so the local port of
    each request is recorded: one port means one connection."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(ca_file),
                                       timeout=TIMEOUT)
    try:
        for i in range(MAX_REQUESTS):
            if stop.is_set():
                return
            try:
                admit(conn, f"keep-{i}")
                serial, local_port = peer(conn)
                out.results.append(Result(time.monotonic(), serial, local_port))
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                out.failures.append(f"request keep-{i}: {exc!r}")
                return
            time.sleep(0.02)
    finally:
        conn.close()


def refusal_count(server: RunningServer) -> int:
    return server.log.read_text().count("TLS reload refused")


@pytest.fixture
def running() -> Iterator[list[RunningServer]]:
    """Servers a test started; each is stopped afterwards, even when the test failed."""
    servers: list[RunningServer] = []
    yield servers
    for server in servers:
        if server.process.poll() is None:
            stop_server(server)


# --- (a) rotation under load ----------------------------------------------------------------

def test_rotation_new_connections_get_the_new_certificate_and_no_request_fails(
    tmp_path: Path, running: list[RunningServer],
) -> None:
    ca = generate_ca()
    a, b = local_pair(ca), local_pair(ca)
    # start_server waits for <workdir>/certs/ca.crt: the Secret volume is that directory.
    volume = SecretVolume(tmp_path / "certs")
    volume.write(cert_pem=a.cert_pem, key_pem=a.key_pem, ca_pem=ca.cert_pem)
    server = start_server(tmp_path, TEST_CONFIG, args=(
        "--cert", str(volume.root / "tls.crt"), "--key", str(volume.root / "tls.key")))
    running.append(server)
    port = int(server.url.rsplit(":", 1)[1])

    stop = threading.Event()
    fresh, reused = Traffic(), Traffic()
    threads = [threading.Thread(target=new_connections, args=(port, server.ca, stop, fresh)),
               threading.Thread(target=keep_alive, args=(port, server.ca, stop, reused))]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(fresh.results) >= 5 and len(reused.results) >= 5,
                 "first answers with pair A")

        # The Secret is updated: pair B, same CA.
        volume.write(cert_pem=b.cert_pem, key_pem=b.key_pem, ca_pem=ca.cert_pem)
        swapped = time.monotonic()
        took = wait_for(lambda: serial_of(b) in fresh.serials(),
                        "a new connection to present pair B", RELOAD_WITHIN)
        seen_b = len(fresh.results)
        wait_for(lambda: len(fresh.results) >= seen_b + 5, "more answers with pair B")

        # A broken update (B's certificate with a key of another pair): refused, logged,
        # and B keeps serving. (Counted from here: a poll that happened to read the two
        # files on either side of the earlier swap would have logged a refusal too.)
        refusals = refusal_count(server)
        volume.write(cert_pem=b.cert_pem, key_pem=local_pair(ca).key_pem, ca_pem=ca.cert_pem)
        wait_for(lambda: refusal_count(server) > refusals,
                 "the server to log that it refused the broken pair", RELOAD_WITHIN)
        refused_at = len(fresh.results)
        wait_for(lambda: len(fresh.results) >= refused_at + 5, "answers after the refusal")
    finally:
        stop.set()
        for t in threads:
            t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads)

    log = server.log.read_text()
    assert fresh.failures == [] and reused.failures == [], (fresh.failures, reused.failures, log)
    # New connections: A until the reload, B from then on, never A again, and B after
    # the broken pair was refused.
    serials = fresh.serials()
    first_b = serials.index(serial_of(b))
    assert set(serials[:first_b]) == {serial_of(a)}
    assert set(serials[first_b:]) == {serial_of(b)}, "a new connection got A after the reload"
    assert all(r.serial == serial_of(b) for r in fresh.results[refused_at:])
    assert len({r.local_port for r in fresh.results}) == len(fresh.results)  # really new
    # The reused connection kept its handshake (A) and was never dropped, across the swap.
    assert {r.serial for r in reused.results} == {serial_of(a)}
    assert len({r.local_port for r in reused.results}) == 1
    assert any(r.at > swapped + took for r in reused.results), "keep-alive did not span the swap"
    # The log names what happened.
    assert f"TLS certificate reloaded: serial {serial_of(b):x}" in log
    assert refusal_count(server) == refusals + 1, log  # once per distinct broken content
    assert server.process.poll() is None


# --- (b) SIGTERM with slow requests in flight ---------------------------------------------

UPLOADERS = 4
BODY_TARGET = 6 * 1024 * 1024   # under the 7 MiB cap, so each gets a real answer
CHUNK = 64 * 1024
PAUSE = 0.01                     # per chunk: about a second per upload, on purpose


def big_review(uid: str) -> bytes:
    """A valid AdmissionReview of about 6 MiB: a pod with a large, harmless environment
    value (not an annotation: their total is limited to 256 KiB, and the webhook refuses
    a pod whose annotations pass it)."""
    container = {**POD["spec"]["containers"][0], "env": [{"name": "PADDING", "value": ""}]}
    pod = {**POD, "spec": {"containers": [container]}}
    overhead = len(orjson.dumps(pod_review(pod, uid=uid)))
    container["env"][0]["value"] = "x" * (BODY_TARGET - overhead)
    body = orjson.dumps(pod_review(pod, uid=uid))
    assert len(body) == BODY_TARGET
    return body


@dataclass
class Upload:
    uid: str
    halfway: threading.Event = field(default_factory=threading.Event)
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def slow_upload(port: int, ca_file: Path, upload: Upload, resume: threading.Event) -> None:
    """POST a big review in small chunks; halfway through, say so and wait for `resume`
    (the test sends SIGTERM meanwhile), then send the rest, slowly, and read the answer."""
    body = big_review(upload.uid)

    def chunks() -> Iterator[bytes]:
        for offset in range(0, len(body), CHUNK):
            if offset >= len(body) // 2 and not upload.halfway.is_set():
                upload.halfway.set()
                resume.wait(TIMEOUT * 2)
            yield body[offset:offset + CHUNK]
            time.sleep(PAUSE)

    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(ca_file),
                                       timeout=TIMEOUT * 3)
    try:
        conn.request("POST", "/mutate", body=chunks(),
                     headers={"content-type": "application/json",
                              "content-length": str(len(body))})
        reply = conn.getresponse()
        upload.status, upload.body = reply.status, reply.read()
        upload.headers = {k.lower(): v for k, v in reply.getheaders()}
    except Exception as exc:  # noqa: BLE001 - the failure is the finding
        upload.error = repr(exc)
        upload.halfway.set()
    finally:
        conn.close()


def connection_refused(port: int) -> bool:
    """No new connection is taken. A listening socket gets the kernel to complete the
    handshake whether or not the server calls accept(), so a refusal, a reset (a connect
    racing the listener's close) and a handshake that never completes all mean the
    server no longer listens."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except (ConnectionRefusedError, ConnectionResetError, TimeoutError):
        return True


def readiness(port: int, ca_file: Path, *, closing: list[bool] | None = None) -> int | None:
    """/readyz's status on a new connection (as a kubelet probe or a balancer asks), or
    None when no answer came; `closing` collects whether it said `Connection: close`."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(ca_file),
                                       timeout=TIMEOUT)
    try:
        conn.request("GET", "/readyz")
        reply = conn.getresponse()
        reply.read()
        if closing is not None:
            closing.append((reply.getheader("connection") or "").lower() == "close")
        return reply.status
    except OSError:
        return None
    finally:
        conn.close()


SHUTDOWN_DELAY = 4.0    # --shutdown-delay of the SIGTERM tests: long against the few
                        # requests they send in it, however slow the machine


def test_sigterm_drains_for_the_delay_then_completes_in_flight_admissions_and_exits_0(
    tmp_path: Path, running: list[RunningServer],
) -> None:
    server = start_server(tmp_path, TEST_CONFIG,
                          args=("--shutdown-delay", str(SHUTDOWN_DELAY)))
    running.append(server)
    port = int(server.url.rsplit(":", 1)[1])
    uploads = [Upload(f"slow-{i}") for i in range(UPLOADERS)]
    resume = threading.Event()
    threads = [threading.Thread(target=slow_upload, args=(port, server.ca, u, resume))
               for u in uploads]
    stop = threading.Event()
    fresh = Traffic()
    threads.append(threading.Thread(target=new_connections,
                                    args=(port, server.ca, stop, fresh)))
    pooled = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(server.ca),
                                         timeout=TIMEOUT)
    for t in threads:
        t.start()
    try:
        wait_for(lambda: all(u.halfway.is_set() for u in uploads), "every upload halfway")
        assert [u.error for u in uploads] == [None] * UPLOADERS
        assert admit(pooled, "pooled-before") is False        # kept alive, then left idle
        wait_for(lambda: len(fresh.results) >= 3, "answers on new connections before SIGTERM")
        time.sleep(0.5)  # let the server read what was sent: each upload is in progress

        terminated = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        # Not ready at once, while it still accepts (a balancer stops routing here) ...
        wait_for(lambda: readiness(port, server.ca) == 503, "/readyz to answer 503")
        not_ready = time.monotonic()
        probe_closing: list[bool] = []
        assert readiness(port, server.ca, closing=probe_closing) == 503
        assert probe_closing == [True]     # FastAPI's answers say it too
        # ... new connections are still accepted and answered, each answer saying
        # Connection: close, and so is a request on the idle pooled connection ...
        wait_for(lambda: sum(r.at > not_ready for r in fresh.results) >= 5,
                 "answers on new connections after /readyz turned 503")
        stop.set()
        assert admit(pooled, "pooled-during") is True
        # ... until the delay is over: then no new connection is taken, while the
        # uploads are still only half sent.
        wait_for(lambda: connection_refused(port), "new connections to be refused",
                 SHUTDOWN_DELAY + TIMEOUT)
        refused = time.monotonic()
        assert server.process.poll() is None, "exited with requests in flight"
    finally:
        stop.set()
        resume.set()  # ... and then the rest of each body arrives, slowly
        for t in threads:
            t.join(TIMEOUT * 3)
        pooled.close()
    assert not any(t.is_alive() for t in threads)

    log = server.log.read_text()
    assert fresh.failures == [], (fresh.failures, log)
    before = [r for r in fresh.results if r.at < terminated]
    during = [r for r in fresh.results if r.at > not_ready]
    assert before and not any(r.closing for r in before)
    assert len(during) >= 5 and all(r.closing for r in during)
    assert refused - terminated > SHUTDOWN_DELAY       # the listener outlived the delay
    for upload in uploads:
        assert upload.error is None, upload.error
        assert upload.status == 200, (upload.status, upload.body[:300])
        review = orjson.loads(upload.body)
        assert review["response"]["uid"] == upload.uid and review["response"]["allowed"]
        assert upload.headers.get("connection") == "close"  # no keep-alive past shutdown
    returncode = server.process.wait(SHUTDOWN_DELAY + GRACEFUL_SHUTDOWN + 5)
    log = server.log.read_text()
    assert returncode == 0, log
    assert "timeout graceful shutdown exceeded" not in log
    assert log.count("SIGTERM: process") == 1, log
    assert connection_refused(port)


def test_sigterm_turns_every_worker_not_ready_and_the_supervisor_exits_0(
    tmp_path: Path, running: list[RunningServer],
) -> None:
    """With --workers, uvicorn's supervisor hands SIGTERM to each worker: every one of
    them drains, so no worker keeps telling a balancer it is ready."""
    workers = 2
    server = start_server(tmp_path, TEST_CONFIG, args=(
        "--workers", str(workers), "--shutdown-delay", str(SHUTDOWN_DELAY)))
    running.append(server)
    port = int(server.url.rsplit(":", 1)[1])
    wait_for(lambda: server.log.read_text().count("Application startup complete") == workers,
             "every worker to start", TIMEOUT * 2)

    server.process.send_signal(signal.SIGTERM)
    wait_for(lambda: server.log.read_text().count("SIGTERM: process") == workers,
             "every worker to start draining")
    answers = [readiness(port, server.ca) for _ in range(10)]   # whichever worker accepts
    returncode = server.process.wait(SHUTDOWN_DELAY + GRACEFUL_SHUTDOWN + 5)

    log = server.log.read_text()
    assert answers == [503] * 10, (answers, log)
    pids = set(re.findall(r"SIGTERM: process (\d+) not ready", log))
    assert len(pids) == workers, log
    assert returncode == 0, log
