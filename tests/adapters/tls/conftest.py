"""Fixtures of the TLS tests: echo servers stopped after each test, and a CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from tests.adapters.tls.handshakes import EchoServer
from webhook.adapters.tls.issue import KeyPair, generate_ca


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


@pytest.fixture(scope="module")
def ca() -> KeyPair:
    """Module-scoped: the CA is read-only in every test that uses it."""
    return generate_ca()
