"""What one client can hold: connections, time to send a request, the bytes of bodies.

Against the real server over real TLS. Timeouts are set short here so the tests are quick;
every wait is a generous liveness bound (a connection "is closed" means: the server ended
it before that bound), never a measure of speed.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import RunningServer, eventually, pod_review, start_server, stop_server
from webhook import cli
from webhook.core.admission.envelope import DEFAULT_MAX_BODY_BYTES, Decision
from webhook.server.settings import Settings
from webhook.server.transport import OFF_LOOP_BYTES, AdmissionTransport, off_loop

LIVENESS = 20.0        # seconds: a server that has not closed a connection by then never will
API_LIMIT = 3 * 1024 * 1024   # the API server's request body limit


def connect(server: RunningServer) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(server.ca))
    host, port = server.url.removeprefix("https://").split(":")
    raw = socket.create_connection((host, int(port)), timeout=LIVENESS)
    return context.wrap_socket(raw, server_hostname="localhost")


def read_until_closed(sock: ssl.SSLSocket) -> bytes | None:
    """What the server sent before it closed the connection; None if it kept it open
    past the liveness bound."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    except (ConnectionResetError, ssl.SSLError, OSError):
        pass                  # closed without TLS close_notify: closed all the same
    return received


def metric(server: RunningServer, name: str) -> dict[str, float]:
    with server.client() as client:
        text = client.get("/metrics").text
    return {m.group(1) or "": float(m.group(2)) for m in
            re.finditer(rf"^{name}(\{{.*\}})? (\S+)$", text, re.M)}


def pod(*, env_value: str = "x", annotation: str | None = None,
        image: str = "quay.io/team/app:1.0") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": "default"}
    if annotation is not None:
        meta["annotations"] = {"example.com/note": annotation}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "c", "image": image,
                                     "env": [{"name": "V", "value": env_value}]}]}}


def as_go_encodes(review: dict[str, Any]) -> bytes:
    """The review as the API server writes it: Go's encoding/json escapes <, > and & as
    \\u003c, \\u003e, \\u0026 (those bytes occur only inside JSON strings)."""
    return (orjson.dumps(review).replace(b"<", b"\\u003c").replace(b">", b"\\u003e")
            .replace(b"&", b"\\u0026"))


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Short head and body timeouts, so slow clients are cut off within the test."""
    server = start_server(tmp_path_factory.mktemp("quick"), "", args=(
        "--header-timeout", "1", "--body-timeout", "1", "--max-connections", "400"))
    yield server
    stop_server(server)


# --- slow heads, slow bodies ----------------------------------------------------------------


def test_slow_heads_and_bodies_are_cut_off_while_admissions_go_on(
        quick: RunningServer) -> None:
    """A crowd of clients that send half a head, or a head and part of a body, and then
    nothing: the server closes every one of them (the body ones with 408), and answers a
    normal admission meanwhile."""
    before = metric(quick, "kci_webhook_connections_closed_total")
    heads, bodies = [], []
    for _ in range(60):
        sock = connect(quick)
        sock.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: applic")
        heads.append(sock)
        sock = connect(quick)
        sock.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"api")
        bodies.append(sock)
    reply = quick.review(pod_review(pod()))
    assert reply.status_code == 200 and reply.json()["response"]["allowed"] is True
    try:
        for sock in heads:
            assert read_until_closed(sock) == b""
        for sock in bodies:
            answer = read_until_closed(sock)
            assert answer is not None and answer.startswith(b"HTTP/1.1 408")
    finally:
        for sock in heads + bodies:
            sock.close()
    after = metric(quick, "kci_webhook_connections_closed_total")

    def moved(reason: str) -> float:
        key = f'{{reason="{reason}"}}'
        return after.get(key, 0) - before.get(key, 0)

    assert moved("header-timeout") >= 60 and moved("body-timeout") >= 60
    reply = quick.review(pod_review(pod()))
    assert reply.status_code == 200


def test_a_body_that_stops_on_another_route_is_cut_off_too(quick: RunningServer) -> None:
    """Not only the admission routes: a body announced to any path and never sent ends
    with the connection, even after that path has answered (405 here)."""
    sock = connect(quick)
    try:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000"
                     b"\r\n\r\nxx")
        answer = read_until_closed(sock)
    finally:
        sock.close()
    assert answer is not None and answer.startswith(b"HTTP/1.1 405")


def test_an_idle_reused_connection_must_send_its_next_head_in_time(
        quick: RunningServer) -> None:
    """The head deadline restarts with each request on a kept-alive connection: a whole
    request is answered, a second one begun and never finished is cut off."""
    body = orjson.dumps(pod_review(pod()))
    sock = connect(quick)
    try:
        sock.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                     b"application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
                     + body + b"GET /heal")
        answer = read_until_closed(sock)
    finally:
        sock.close()
    assert answer is not None and answer.startswith(b"HTTP/1.1 200")
    assert b'"kind":"AdmissionReview"' in answer and answer.count(b"HTTP/1.1") == 1


# --- connections --------------------------------------------------------------------------


def test_connections_beyond_the_limit_are_closed_at_once(tmp_path: Path) -> None:
    """Idle connections fill the limit; the next one is closed as soon as it is accepted
    (long before any timeout), and once one closes, admissions are answered again."""
    server = start_server(tmp_path, "", args=("--max-connections", "5",
                                              "--header-timeout", "60"))
    held: list[ssl.SSLSocket] = []
    try:
        for _ in range(20):               # fill the places, each proven by an answer
            if len(held) == 5:
                break
            sock = connect(server)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            if sock.recv(65536).startswith(b"HTTP/1.1 200"):
                held.append(sock)         # kept alive: it holds its place
            else:
                sock.close()
        assert len(held) == 5
        sock = connect(server)
        assert read_until_closed(sock) == b""      # well before the 60 s head timeout
        sock.close()
        for sock in held:
            sock.close()
        held.clear()
        assert eventually(lambda: server.review(pod_review(pod())).status_code == 200,
                          timeout=LIVENESS)
        assert metric(server, "kci_webhook_connections_closed_total")[
            '{reason="over-limit"}'] >= 1
        assert "the limit is 5 (--max-connections)" in server.log.read_text()
    finally:
        for sock in held:
            sock.close()
        stop_server(server)


# --- the bytes of bodies ------------------------------------------------------------------


def test_concurrent_large_bodies_stay_within_the_byte_budget(tmp_path: Path) -> None:
    """Eight 1.5 MB reviews at once, with room for two of them: every one is answered
    (those that wait get their turn as others finish), and the bytes held never passed
    the budget."""
    budget = 3_000_000
    server = start_server(tmp_path, "", args=("--max-body-bytes", "2000000",
                                              "--body-memory-bytes", str(budget)))
    body = orjson.dumps(pod_review(pod(env_value="v" * 1_500_000)))
    codes: list[int] = []

    def send() -> None:
        with server.client() as client:
            reply = client.post("/mutate", content=body, timeout=LIVENESS,
                                headers={"content-type": "application/json"})
        codes.append(reply.status_code)
        if reply.status_code == 200:
            assert reply.json()["response"]["allowed"] is True

    try:
        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(LIVENESS)
        assert len(codes) == 8 and set(codes) <= {200, 503} and 200 in codes
        peak = metric(server, "kci_webhook_request_body_bytes_peak")[""]
        assert len(body) <= peak <= budget
        assert metric(server, "kci_webhook_request_body_bytes_in_use")[""] == 0
    finally:
        stop_server(server)


def test_a_held_budget_is_freed_when_its_body_never_comes(tmp_path: Path) -> None:
    """A client announces a body that takes the whole budget and sends none of it: it
    gets 408 at the body timeout, and its reservation is released — the next review is
    answered (at worst after a 503 while the budget was held)."""
    server = start_server(tmp_path, "", args=("--max-body-bytes", "2000000",
                                              "--body-memory-bytes", "2000000",
                                              "--body-timeout", "1"))
    try:
        sock = connect(server)
        sock.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n")
        assert eventually(lambda: metric(server, "kci_webhook_request_body_bytes_in_use")
                          .get("") == 2_000_000, timeout=LIVENESS)
        answer = read_until_closed(sock)
        sock.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 408")
        assert metric(server, "kci_webhook_request_body_bytes_in_use")[""] == 0
        reply = server.review(pod_review(pod()))
        assert reply.status_code == 200
    finally:
        stop_server(server)


# --- the cap fits what the API server sends ---------------------------------------------------


def _just_under_the_api_limit(make: Any) -> dict[str, Any]:
    """A pod whose JSON is just under the API server's 3 MiB request limit."""
    filler = "<>&" * ((API_LIMIT - 4096) // 3)
    obj = make(filler)
    assert API_LIMIT - 8192 < len(orjson.dumps(obj)) < API_LIMIT
    return obj


@pytest.mark.parametrize("where", ["annotation", "env"])
def test_a_pod_at_the_api_limit_full_of_escaped_characters_is_answered(
        webhook_server: RunningServer, where: str) -> None:
    """`<`, `>`, `&` arrive as six bytes each. A pod just under the API's limit made of
    them (in an annotation as the scenario has it; in an environment value, the variant)
    gets an AdmissionReview on CREATE and on UPDATE (object and oldObject), never 413."""
    def make(filler: str) -> dict[str, Any]:
        return pod(annotation=filler) if where == "annotation" else pod(env_value=filler)

    obj = _just_under_the_api_limit(make)
    create = pod_review(obj)
    body = as_go_encodes(create)
    assert len(body) > 5 * API_LIMIT          # as large on the wire as the escaping makes it
    reply = webhook_server.review(body, timeout=LIVENESS)
    assert reply.status_code == 200 and reply.json()["response"]["uid"] == "uid-1"
    update = pod_review(obj, operation="UPDATE", uid="uid-2")
    update["request"]["oldObject"] = obj
    body = as_go_encodes(update)
    assert 10 * API_LIMIT < len(body) <= DEFAULT_MAX_BODY_BYTES
    reply = webhook_server.review(body, timeout=LIVENESS)
    assert reply.status_code == 200
    response = reply.json()["response"]
    assert response["uid"] == "uid-2" and response["allowed"] is True


# --- the settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "env", "value", "expected"), [
    ("--max-connections", "KCI_WEBHOOK_MAX_CONNECTIONS", "64", 64),
    ("--header-timeout", "KCI_WEBHOOK_HEADER_TIMEOUT", "2.5", 2.5),
    ("--body-timeout", "KCI_WEBHOOK_BODY_TIMEOUT", "3", 3.0),
    ("--max-body-bytes", "KCI_WEBHOOK_MAX_BODY_BYTES", "1000", 1000),
    ("--body-memory-bytes", "KCI_WEBHOOK_BODY_MEMORY_BYTES", "2000", 2000),
])
def test_each_limit_is_a_flag_with_an_environment_default(
        monkeypatch: pytest.MonkeyPatch, flag: str, env: str, value: str,
        expected: float) -> None:
    dest = flag.removeprefix("--").replace("-", "_")
    assert getattr(cli._parser().parse_args(["serve", flag, value]), dest) == expected
    monkeypatch.setenv(env, value)
    assert getattr(cli._parser().parse_args(["serve"]), dest) == expected
    settings = Settings.from_environ({env: value})       # what each worker reads
    read = {"max_body_bytes": settings.max_body_bytes,
            "body_memory_bytes": settings.body_memory_bytes}.get(dest)
    assert (getattr(settings.limits, dest) if read is None else read) == expected


@pytest.mark.parametrize(("flag", "value"), [
    ("--max-connections", "0"), ("--header-timeout", "0"), ("--body-timeout", "-1"),
    ("--max-body-bytes", "lots"), ("--body-memory-bytes", "0"), ("--header-timeout", "nan"),
])
def test_a_bad_limit_is_refused_naming_its_flag(flag: str, value: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli._parser().parse_args(["serve", flag, value])
    assert done.value.code == 2 and flag in capsys.readouterr().err


def test_a_body_memory_budget_below_the_cap_stops_serve(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--max-body-bytes", "2000", "--body-memory-bytes", "1000"]) == 2
    assert "--body-memory-bytes (1000) must be at least --max-body-bytes (2000)" in (
        capsys.readouterr().err)


# --- off the loop ---------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "off"), [(1000, False), (OFF_LOOP_BYTES + 1, True)])
def test_a_large_body_is_decided_in_a_thread(size: int, off: bool) -> None:
    """The transport as uvicorn calls it: the handler's `off_loop` steps run in another
    thread exactly when the body is large, so the loop keeps answering meanwhile."""
    seen: list[int] = []

    def decide(body: bytes) -> Decision:
        seen.append(threading.get_ident())
        return Decision(body=b'{"ok":true}', outcome="skipped")

    async def handler(body: bytes) -> Decision:
        return await off_loop(decide, body)

    async def fallback(*_args: Any) -> None:
        raise AssertionError("not an admission route")

    async def run() -> list[dict[str, Any]]:
        app = AdmissionTransport(fallback, {"/mutate": handler}, max_body_bytes=10 ** 7,
                                 body_timeout=5, body_memory_bytes=10 ** 7)
        messages = [{"type": "http.request", "body": b" " * size, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: Any) -> None:
            sent.append(message)

        await app({"type": "http", "path": "/mutate", "method": "POST",
                   "headers": [(b"content-length", str(size).encode())]}, receive, send)
        assert app.budget.in_use == 0
        return sent

    sent = asyncio.run(run())
    assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"ok":true}'
    assert (seen[0] != threading.get_ident()) is off
