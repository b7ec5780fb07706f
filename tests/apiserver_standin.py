"""An HTTP-level stand-in for the Kubernetes API server's Namespace list and watch.

There is no API server on this machine, so the real `kubernetes` client talks to this:
real HTTP on loopback, real Namespace JSON, a chunked watch stream the test feeds event
by event, bookmarks, `410 Gone` as the API server sends it (an ERROR event, or the watch
request itself answered 410), a dropped connection, and failing lists.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
from kubernetes import client


def namespace(name: str, annotations: dict[str, str] | None = None,
              resource_version: str = "1") -> dict[str, Any]:
    """A Namespace object as the API server serializes it."""
    return {"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": resource_version,
                         "labels": {"kubernetes.io/metadata.name": name},
                         "annotations": annotations or {},
                         "creationTimestamp": "2026-11-22T00:00:00Z"},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


class StandIn:
    """State shared with the handler: the namespaces, and the open watch streams."""

    def __init__(self) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.resource_version = 100
        self.list_status = 200
        self.watch_gone_once = False   # answer the next watch request HTTP 410 itself
        self.requests: list[dict[str, Any]] = []
        self.watchers: list[queue.Queue[Any]] = []
        self.lock = threading.Lock()
        self.watch_opened = threading.Condition(self.lock)

    def set(self, name: str, annotations: dict[str, str] | None = None,
            *, event: str | None = "MODIFIED") -> None:
        """Create or change a namespace; open watches get the event."""
        with self.lock:
            self.resource_version += 1
            obj = namespace(name, annotations, str(self.resource_version))
            kind = "ADDED" if name not in self.namespaces else event
            self.namespaces[name] = obj
        self.broadcast({"type": kind, "object": obj})

    def delete(self, name: str) -> None:
        with self.lock:
            self.resource_version += 1
            obj = self.namespaces.pop(name)
            obj["metadata"]["resourceVersion"] = str(self.resource_version)
        self.broadcast({"type": "DELETED", "object": obj})

    def bookmark(self) -> None:
        with self.lock:
            self.resource_version += 1
            rv = str(self.resource_version)
        self.broadcast({"type": "BOOKMARK", "object": {
            "kind": "Namespace", "apiVersion": "v1", "metadata": {"resourceVersion": rv}}})

    def gone(self) -> None:
        """What the API server sends when the watch's resourceVersion is too old."""
        self.broadcast({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 1 (200)", "reason": "Expired", "code": 410}})
        self.broadcast(None)

    def drop(self) -> None:
        """Cut every open watch connection without ending the chunked stream."""
        self.broadcast("drop")

    def broadcast(self, item: Any) -> None:
        with self.lock:
            for watcher in self.watchers:
                watcher.put(item)

    def wait_for_watchers(self, count: int, timeout: float = 10.0) -> bool:
        with self.watch_opened:
            return self.watch_opened.wait_for(lambda: len(self.watchers) >= count, timeout)

    def watch_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("watch") == ["true"]]


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlparse(self.path)
            query = parse_qs(url.query)
            state.requests.append({"path": url.path, **query})
            if url.path != "/api/v1/namespaces":
                self._json(404, {"kind": "Status", "code": 404})
            elif query.get("watch") == ["true"] and state.watch_gone_once:
                state.watch_gone_once = False
                self._json(410, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": "too old resource version: 1 (200)",
                                 "reason": "Expired", "code": 410})
            elif query.get("watch") == ["true"]:
                self._watch()
            elif state.list_status != 200:
                self._json(state.list_status, {"kind": "Status", "code": state.list_status,
                                                "message": "injected failure"})
            else:
                with state.lock:
                    body = {"kind": "NamespaceList", "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(state.resource_version)},
                            "items": list(state.namespaces.values())}
                self._json(200, body)

        def _json(self, status: int, body: Any) -> None:
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _watch(self) -> None:
            events: queue.Queue[Any] = queue.Queue()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            with state.watch_opened:
                state.watchers.append(events)
                state.watch_opened.notify_all()
            try:
                while True:
                    item = events.get(timeout=60)
                    if item == "drop":
                        self.connection.shutdown(2)
                        return
                    if item is None:
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    line = orjson.dumps(item) + b"\n"
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    self.wfile.flush()
            except (queue.Empty, OSError):
                return
            finally:
                with state.lock:
                    state.watchers.remove(events)
                self.close_connection = True

    return Handler


@contextmanager
def running_standin() -> Iterator[tuple[StandIn, client.CoreV1Api]]:
    """The stand-in on a free loopback port, and a real CoreV1Api pointed at it."""
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_port}")
    api = client.CoreV1Api(client.ApiClient(configuration))
    try:
        yield state, api
    finally:
        state.broadcast("drop")
        server.shutdown()
        server.server_close()
