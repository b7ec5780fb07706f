"""The `kci-webhook node-config` command line: arguments, one pass or a watch, exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from webhook.tools.arguments import seconds
from webhook.tools.helpformat import HelpFormatter, epilog
from webhook.tools.nodeconfig.watch import (
    DEFAULT_INTERVAL,
    Status,
    report,
    run_once,
    serve_status,
    watch,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_HOSTS_DIR = "/etc/containerd/certs.d"

DESCRIPTION = (
    "Write containerd's registry configuration for the webhook's mirrors into --hosts-dir "
    "(containerd's config_path): for each mirror host, <host[:port]>/hosts.toml with its "
    "scheme, its CA (caFile, copied beside it as ca.crt) and skip_verify only for "
    "insecureSkipVerify. With --node-mirrors, also each source host a mirror serves "
    "(docker.io, gcr.io, ...): containerd's own mirror entry with the mirror's namespace, "
    "then the source registry as the fallback, so pods the webhook does not rewrite still "
    "pull through the mirror. No credential is ever written. Files are replaced atomically; "
    "only files this command wrote (marked on their first line) are changed or removed, and "
    "a host another tool configured is left alone with a warning. containerd re-reads them "
    "at every pull: no restart.")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "node-config", help="write containerd hosts.toml files for the mirrors (certs.d)",
        description=DESCRIPTION, formatter_class=HelpFormatter,
        epilog=epilog({EXIT_OK: "the directory holds what the config asks for (hosts "
                                "another tool owns are only warned about)",
                       EXIT_FAILED: "something could not be written (a CA file unreadable "
                                    "or not a certificate, a write error); those hosts are "
                                    "left as they were",
                       EXIT_USAGE: "bad arguments, or an invalid or unreadable config"},
                      ("kci-webhook node-config --config /etc/kci-webhook/config.yaml "
                       "--hosts-dir /etc/containerd/certs.d --node-mirrors",
                       "kci-webhook node-config --config config.yaml --hosts-dir DIR --watch "
                       "--listen 0.0.0.0:9090")))
    parser.add_argument("--config", metavar="FILE", help="the webhook's config file (default: "
                                         "$KCI_WEBHOOK_CONFIG)")
    parser.add_argument("--hosts-dir", default=DEFAULT_HOSTS_DIR, metavar="DIR",
                        help="containerd's config_path, which must exist")
    parser.add_argument("--node-mirrors", action="store_true",
                        help="also write the source hosts' files, mirrors first, then the "
                             "source itself")
    parser.add_argument("--clean", action="store_true",
                        help="remove every host directory this command wrote, and nothing "
                             "else (before uninstalling)")
    parser.add_argument("--watch", action="store_true",
                        help="keep running: read the config and CA files again every "
                             "--interval seconds and keep the directory in step")
    parser.add_argument("--interval", type=seconds(low=0.1, high=3600), default=DEFAULT_INTERVAL,
                        metavar="SECONDS", help="with --watch: seconds between passes")
    parser.add_argument("--listen", type=_address, metavar="HOST:PORT",
                        help="with --watch: serve /readyz (503 while the last pass failed), "
                             "/healthz and /metrics here")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="kci-webhook node-config: %(levelname)s: %(message)s")
    config = args.config or os.environ.get("KCI_WEBHOOK_CONFIG") or ""
    if not config and not args.clean:
        print("kci-webhook node-config: --config FILE is required (or $KCI_WEBHOOK_CONFIG)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.listen and not args.watch:
        print("kci-webhook node-config: --listen goes with --watch", file=sys.stderr)
        return EXIT_USAGE
    if args.clean and args.watch:
        print("kci-webhook node-config: --clean runs once; not with --watch", file=sys.stderr)
        return EXIT_USAGE
    hosts_dir = Path(args.hosts_dir)
    if not args.watch:
        outcome = run_once(Path(config), hosts_dir, node_mirrors=args.node_mirrors,
                           clean=args.clean)
        report(outcome)
        if outcome.unusable_config:
            return EXIT_USAGE
        return EXIT_OK if outcome.ok else EXIT_FAILED
    status = Status()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = serve_status(status, args.listen) if args.listen else None
    try:
        watch(lambda: run_once(Path(config), hosts_dir, node_mirrors=args.node_mirrors),
              interval=args.interval, stop=stop, status=status)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    return EXIT_OK


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


__all__ = ["DEFAULT_HOSTS_DIR", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_parser", "run"]
