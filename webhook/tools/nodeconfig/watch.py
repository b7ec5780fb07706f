"""`--watch`: keep the hosts directory in step with the config file and its CA files.

Each pass reads the config and the CA files again and converges the directory (the writer
skips files whose bytes are already there), every `interval` seconds. Contents are polled
rather than watched with inotify, as controller-runtime's certificate watcher does: a
mounted ConfigMap or Secret changes by a symlink swap of its `..data` directory, which
file events on the files themselves miss; reading a few small files every few seconds
costs nothing. A host file someone deleted is written again at the next pass.

Readiness is the last pass: ready when everything the config asks for is on disk, not
ready (HTTP 503 on /readyz) when the config is invalid or unreadable, or a CA could not be
copied, or a file could not be written; the directory is left as it was for the hosts that
failed. /metrics serves the pass counters (prometheus_client's own exposition).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from webhook.core.config import WEBHOOK_TIMEOUT_RANGE, load_config
from webhook.core.errors import ConfigError
from webhook.tools.nodeconfig.files import Outcome, apply, read_file
from webhook.tools.nodeconfig.render import Plan, plan

log = logging.getLogger("kci-webhook.node-config")
DEFAULT_INTERVAL = 10.0


def run_once(config_path: Path, hosts_dir: Path, *, node_mirrors: bool,
             clean: bool = False) -> Outcome:
    """Read the config, render, write. An unusable config writes nothing and says why."""
    if clean:
        return _apply(Plan(dirs=()), hosts_dir)
    try:
        text = read_file(str(config_path))
        # The webhook's own timeout decides how much of it mirror checks may use; the
        # node side has no say in that, so the config is read with the widest timeout
        # the server accepts and the server stays the judge of its budget.
        config = load_config(text, source=str(config_path),
                             webhook_timeout=WEBHOOK_TIMEOUT_RANGE[1])
        wanted = plan(config, node_mirrors=node_mirrors)
    except OSError as exc:
        return Outcome(errors=[f"{config_path}: cannot read: {exc.strerror or exc}"],
                       unusable_config=True)
    except ConfigError as exc:
        return Outcome(errors=[f"invalid configuration, nothing changed:\n{exc}"],
                       unusable_config=True)
    return _apply(wanted, hosts_dir)


def _apply(wanted: Plan, hosts_dir: Path) -> Outcome:
    """`apply`, with an unexpected I/O error (a directory that cannot be listed) reported
    like any failed write instead of ending a watch."""
    try:
        return apply(wanted, hosts_dir)
    except OSError as exc:
        return Outcome(errors=[f"{hosts_dir}: {exc.strerror or exc}"])


@dataclass
class Status:
    """The last pass, for /readyz and /metrics."""

    ready: bool = False
    last_errors: list[str] = field(default_factory=list)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.passes = Counter("kci_node_config_passes", "Passes over the hosts directory, by "
                              "result (error: something the config asks for is not on disk)",
                              ["result"], registry=self.registry)
        self.changes = Counter("kci_node_config_changes", "Host directories written or removed",
                               ["action"], registry=self.registry)
        self.ready_gauge = Gauge("kci_node_config_ready", "1 when the last pass wrote "
                                 "everything the config asks for", registry=self.registry)
        self.foreign = Gauge("kci_node_config_foreign_hosts", "Hosts the config names whose "
                             "directory another tool owns (left alone)", registry=self.registry)
        self.last_success = Gauge("kci_node_config_last_success_timestamp_seconds",
                                  "When a pass last succeeded (Unix time)",
                                  registry=self.registry)

    def record(self, outcome: Outcome) -> None:
        self.ready, self.last_errors = outcome.ok, list(outcome.errors)
        self.passes.labels("ok" if outcome.ok else "error").inc()
        self.changes.labels("written").inc(len(outcome.written))
        self.changes.labels("removed").inc(len(outcome.removed))
        self.ready_gauge.set(1 if outcome.ok else 0)
        self.foreign.set(len(outcome.foreign))
        if outcome.ok:
            self.last_success.set(time.time())


def report(outcome: Outcome, *, previous: Outcome | None = None) -> None:
    """Log what changed; in a watch, repeat a warning or error only when it changes."""
    for name in outcome.written:
        log.info("wrote %s", name)
    for name in outcome.removed:
        log.info("removed %s (no longer in the config)", name)
    if previous is not None and (previous.warnings, previous.errors) == (outcome.warnings,
                                                                         outcome.errors):
        return
    for message in outcome.warnings:
        log.warning("%s", message)
    for message in outcome.errors:
        log.error("%s", message)


def serve_status(status: Status, address: tuple[str, int]) -> ThreadingHTTPServer:
    """/readyz (200 or 503 with the last errors), /healthz, /metrics, in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(status.registry), CONTENT_TYPE_LATEST)
            elif path == "/readyz":
                body = "ok\n" if status.ready else "\n".join(
                    ["not ready", *status.last_errors]) + "\n"
                self._send(200 if status.ready else 503, body.encode(), "text/plain")
            elif path == "/healthz":
                self._send(200, b"ok\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(address, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="node-config-status").start()
    return server


def watch(once: Callable[[], Outcome], *, interval: float, stop: threading.Event,
          status: Status) -> None:
    """Run `once` now and every `interval` seconds until `stop` is set."""
    previous: Outcome | None = None
    while True:
        outcome = once()
        status.record(outcome)
        report(outcome, previous=previous)
        previous = outcome
        if stop.wait(interval):
            return


__all__ = ["DEFAULT_INTERVAL", "Status", "report", "run_once", "serve_status", "watch"]
