"""A rolling restart of two replicas under continuous admissions fails no request.

What the cluster does, on loopback: two real `kci-webhook serve` processes behind a TCP
balancer that health-checks `/readyz` and routes only *new* connections to replicas
that answer 200 (as kube-proxy routes by the Service's ready endpoints). It never
retries: a connection it cannot place, or one a replica closes, it just closes. In
front, a client that pools keep-alive connections, as the API server does, sends
admissions without pause and never retries one either. Replica 1 is restarted (SIGTERM,
wait for its exit, start a new one, wait until the balancer sees it ready), then
replica 2. Every admission must succeed.

Why none fails: on SIGTERM a replica answers 503 at once, the balancer stops sending it
new connections within a health-check period, and for `--shutdown-delay` (longer than
that period) the replica serves everything with `Connection: close`, so each pooled
connection learns from an answer that it is done and the client reconnects — to the
other replica. A server that instead stops listening and closes its idle connections
at SIGTERM fails this test: pooled requests meet "Server disconnected without sending a
response", which the API server reports as `failed to call webhook: ... EOF`.

Every wait is bounded, every client loop has a maximum, every process is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import RunningServer, free_port, pod_review, start_server, terminate
from webhook.adapters.tls.issue import KeyPair, generate_ca, generate_serving_cert

TIMEOUT = 10.0              # the longest any single wait in this module may take
SHUTDOWN_DELAY = 3.0        # --shutdown-delay: well above the balancer's check period
CHECK_EVERY = 0.1           # the balancer's health-check period
GRACEFUL_SHUTDOWN = 25      # uvicorn's timeout_graceful_shutdown in webhook.server.run.run
CLIENTS = 3                 # threads sharing one pooled client
POOL = CLIENTS + 1          # one connection more than is ever busy: it can sit idle
MAX_REQUESTS = 20_000       # per client thread: a runaway loop stops by itself
MIN_REQUESTS = 100          # fewer answers than this and the test proved nothing


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# --- the balancer -------------------------------------------------------------------------

@dataclass
class Backend:
    port: int
    healthy: bool = False
    connections: int = 0            # client connections routed here


class Balancer:
    """Round-robin TCP balancer over the backends whose `/readyz` (over TLS) last answered
    200, checked every CHECK_EVERY seconds. It routes new connections only, never
    retries, and closes the client's side when the backend's side closes."""

    def __init__(self, ca_file: Path) -> None:
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.backends: list[Backend] = []
        self.unplaced = 0                # connections no ready backend could take
        self.routed = 0                  # connections placed on a backend
        self.port = free_port()
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(TIMEOUT)
        asyncio.run_coroutine_threadsafe(self._check_forever(), self._loop)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)
        self._loop.close()

    async def _close(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def add(self, port: int) -> Backend:
        backend = Backend(port)
        self._loop.call_soon_threadsafe(self.backends.append, backend)
        return backend

    def remove(self, backend: Backend) -> None:
        self._loop.call_soon_threadsafe(self.backends.remove, backend)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._route, "127.0.0.1", self.port)

    async def _route(self, client_r: asyncio.StreamReader,
                     client_w: asyncio.StreamWriter) -> None:
        ready = [b for b in self.backends if b.healthy]
        if not ready:
            self.unplaced += 1
            client_w.close()
            return
        backend = ready[next(self._turn) % len(ready)]
        backend.connections += 1
        self.routed += 1
        try:
            backend_r, backend_w = await asyncio.open_connection("127.0.0.1", backend.port)
        except OSError:
            client_w.close()                 # no retry: the client sees its connection end
            return
        await asyncio.gather(self._pipe(client_r, backend_w), self._pipe(backend_r, client_w))

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy until either side ends, then close the other (what arrived is sent first)."""
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()

    async def _check_forever(self) -> None:
        while True:
            for backend in list(self.backends):
                backend.healthy = await self._ready(backend.port)
            await asyncio.sleep(CHECK_EVERY)

    async def _ready(self, port: int) -> bool:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=self.context), TIMEOUT / 2)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status = await asyncio.wait_for(reader.readline(), TIMEOUT / 2)
            writer.close()
            return status.split()[1:2] == [b"200"]
        except (TimeoutError, OSError):
            return False


# --- the client ---------------------------------------------------------------------------

@dataclass
class Traffic:
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> None:
        with self.lock:
            self.answered += 1


def send_admissions(client: httpx.Client, name: str, stop: threading.Event,
                    out: Traffic) -> None:
    """Admissions back to back on the shared pool; a failure is recorded, never retried."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}
    for i in range(MAX_REQUESTS):
        if stop.is_set():
            return
        uid = f"{name}-{i}"
        try:
            reply = client.post("/mutate", content=orjson.dumps(pod_review(pod, uid=uid)),
                                headers={"content-type": "application/json"})
            response = reply.json()["response"]
            assert reply.status_code == 200 and response["uid"] == uid and response["allowed"]
            out.count()
        except Exception as exc:  # noqa: BLE001 - every failure is the finding
            out.failures.append(f"{uid} at {time.monotonic():.2f}: {exc!r}")


# --- the replicas -------------------------------------------------------------------------

def replica(workdir: Path, ca: KeyPair, pair: KeyPair) -> RunningServer:
    """`kci-webhook serve` with the shared serving pair (one CA for the client to trust)."""
    certs = workdir / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "tls.crt").write_bytes(pair.cert_pem)
    (certs / "tls.key").write_bytes(pair.key_pem)
    (certs / "ca.crt").write_bytes(ca.cert_pem)
    return start_server(workdir, "mirrors: []\n", args=(
        "--cert", str(certs / "tls.crt"), "--key", str(certs / "tls.key"),
        "--shutdown-delay", str(SHUTDOWN_DELAY)))


@pytest.fixture
def processes() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for server in started:
        terminate(server.process)


def port_of(server: RunningServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_rolling_restart_of_two_replicas_fails_no_admission(
        tmp_path: Path, processes: list[RunningServer]) -> None:
    ca = generate_ca()
    pair = generate_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    replicas = [replica(tmp_path / f"replica-{i}", ca, pair) for i in (1, 2)]
    processes.extend(replicas)
    balancer = Balancer(replicas[0].ca)
    backends = [balancer.add(port_of(r)) for r in replicas]
    balancer.start()
    wait_for(lambda: all(b.healthy for b in backends), "both replicas ready at the balancer")

    client = httpx.Client(
        base_url=f"https://127.0.0.1:{balancer.port}", http1=True, http2=False, timeout=TIMEOUT,
        verify=ssl.create_default_context(cafile=str(replicas[0].ca)),
        # The API server's Go client keeps idle connections 90 s.
        limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL,
                            keepalive_expiry=90))
    stop = threading.Event()
    traffic = Traffic()
    threads = [threading.Thread(target=send_admissions, args=(client, f"c{i}", stop, traffic))
               for i in range(CLIENTS)]
    exits: list[int] = []
    for t in threads:
        t.start()
    try:
        wait_for(lambda: traffic.answered >= 20, "admissions through both replicas")
        for index in (0, 1):
            old, backend = replicas[index], backends[index]
            answered = traffic.answered
            old.process.send_signal(signal.SIGTERM)
            exits.append(old.process.wait(SHUTDOWN_DELAY + GRACEFUL_SHUTDOWN + 5))
            balancer.remove(backend)
            new = replica(tmp_path / f"replica-{index + 1}-new", ca, pair)   # a new port
            processes.append(new)
            replicas[index] = new
            backends[index] = balancer.add(port_of(new))
            wait_for(lambda b=backends[index]: b.healthy, "the new replica ready at the balancer")
            wait_for(lambda a=answered: traffic.answered >= a + 20,
                     "admissions going on across the restart")
        wait_for(lambda: backends[0].connections >= 1,
                 "a connection to the first new replica (made while the second drained)")
        settled = traffic.answered
        wait_for(lambda: traffic.answered >= settled + 20, "admissions after both restarts")
    finally:
        stop.set()
        for t in threads:
            t.join(TIMEOUT)
        client.close()
        balancer.stop()
    assert not any(t.is_alive() for t in threads)

    logs = "\n".join(r.log.read_text() for r in processes)
    assert traffic.failures == [], (traffic.failures[:10], logs)
    assert traffic.answered >= MIN_REQUESTS
    assert exits == [0, 0], logs
    assert balancer.unplaced == 0
    # The pool really reused connections: far fewer connections than admissions.
    assert traffic.answered > 5 * balancer.routed, (traffic.answered, balancer.routed)
