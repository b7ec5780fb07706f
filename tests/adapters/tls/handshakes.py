"""What the TLS tests share: a threaded TLS echo server standing in for uvicorn (it is
handed one SSLContext, as uvicorn is), and a verified client to talk to it."""

from __future__ import annotations

import socket
import ssl
import threading

from cryptography import x509

from webhook.adapters.tls.issue import KeyPair, generate_serving_cert

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
