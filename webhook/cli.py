"""`kci-webhook` command line: serve, mutate, config check, plan, certs, doctor, trust,
node-config."""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.config
import os
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from webhook.adapters.tls.issue import ensure_dev_certificates
from webhook.core.admission.envelope import DEFAULT_MAX_BODY_BYTES
from webhook.core.config import DEFAULT_WEBHOOK_TIMEOUT_SECONDS
from webhook.core.errors import ConfigError
from webhook.server.drain import DEFAULT_SHUTDOWN_DELAY
from webhook.server.limits import (
    DEFAULT_BODY_MEMORY_BYTES,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_EVENTS_QUEUE_SIZE,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
)
from webhook.server.logs import log_config
from webhook.tools import certs, configcheck, doctor, nodeconfig, plan, preview, trust
from webhook.tools.arguments import fraction, positive_int, seconds, webhook_timeout
from webhook.tools.helpformat import HelpFormatter, epilog, from_environment

EXIT_CONFIG = 2
EXIT_BROKEN_PIPE = 128 + 13   # 141: what a shell reports for a command ended by SIGPIPE
SERVE_DESCRIPTION = (
    "Serve the admission webhook over HTTPS: POST /mutate and /validate (AdmissionReview "
    "v1 and v1beta1), /healthz, /readyz and /metrics. The config is checked before "
    "anything listens; with no --cert, a development CA and certificate are made in "
    "--certs-dir. The serving certificate is reloaded from disk when it changes. On "
    "SIGTERM it drains: /readyz answers 503 at once, everything is still served for "
    "--shutdown-delay, then the requests in flight finish.")
EXIT_CANNOT_LISTEN = 3
SERVE_EXIT_CODES = {0: "stopped by SIGTERM or SIGINT",
                    1: "the server failed while serving",
                    EXIT_CONFIG: "bad arguments, an invalid config or KCI_* environment, or "
                                 "a kubeconfig that cannot be loaded",
                    EXIT_CANNOT_LISTEN: "the server could not start listening (e.g. the port "
                                        "is taken): nothing was served"}


def core_compiled() -> bool:
    """Whether the admission path runs compiled (setup.py): what the image ships. A build
    without a compiler (KCI_WEBHOOK_PURE=1) serves the same answers, slower."""
    from webhook.core.admission import pipeline
    return not (pipeline.__file__ or "").endswith(".py")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _reader_went_away()
    return result


def _reader_went_away() -> int:
    """The reader of stdout closed it (`kci-webhook mutate ... | head`): stop quietly, as
    a command killed by SIGPIPE does, with no traceback. stdout is pointed at /dev/null so
    that the interpreter's own flush at exit does not fail again (the recipe of Python's
    `signal` documentation); the exit code is the shell's for SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kci-webhook",
        description="Mutating admission webhook for private and mirrored registries.")
    parser.add_argument("--version", action="version", version=f"kci-webhook {_version()}")
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="serve the webhook over HTTPS",
                                description=SERVE_DESCRIPTION, formatter_class=HelpFormatter,
                                epilog=epilog(SERVE_EXIT_CODES))
    from_environment(serve.add_argument("--config", help="config file"), "KCI_WEBHOOK_CONFIG")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--cert", help="serving certificate (PEM); default: a dev cert in certs/")
    serve.add_argument("--key", help="private key of --cert (PEM)")
    serve.add_argument("--certs-dir", default="certs",
                       help="where dev certificates are written when --cert is not given")
    from_environment(serve.add_argument(
        "--workers", type=int, default=int(os.environ.get("KCI_WEBHOOK_WORKERS", "1")),
        help="worker processes"), "KCI_WEBHOOK_WORKERS")
    from_environment(serve.add_argument(
        "--kubeconfig", default=os.environ.get("KCI_WEBHOOK_KUBECONFIG"),
        help="watch Namespaces through this kubeconfig; without it, in the order Kubernetes "
             "controllers use: $KUBECONFIG (a list, merged as kubectl merges it), the "
             "in-cluster service account, ~/.kube/config; with none of them, no namespace "
             "defaults"), "KCI_WEBHOOK_KUBECONFIG")
    from_environment(serve.add_argument(
        "--shutdown-delay", type=_seconds, metavar="SECONDS",
        default=os.environ.get("KCI_WEBHOOK_SHUTDOWN_DELAY", f"{DEFAULT_SHUTDOWN_DELAY:g}"),
        help="on SIGTERM, answer /readyz 503 and keep serving this long, each answer with "
             "Connection: close, before finishing the requests in flight and exiting; longer "
             "than the endpoint removal takes to reach every balancer; 0 stops at once"),
        "KCI_WEBHOOK_SHUTDOWN_DELAY")
    from_environment(serve.add_argument(
        "--max-body-bytes", type=positive_int, metavar="BYTES",
        default=os.environ.get("KCI_WEBHOOK_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)),
        help="admission request bodies larger than this get HTTP 413 (37 MiB: an UPDATE's "
             "two objects at the API server's 3 MiB limit, as it escapes them, plus the "
             "envelope)"), "KCI_WEBHOOK_MAX_BODY_BYTES")
    from_environment(serve.add_argument(
        "--body-memory-bytes", type=positive_int, metavar="BYTES",
        default=os.environ.get("KCI_WEBHOOK_BODY_MEMORY_BYTES", str(DEFAULT_BODY_MEMORY_BYTES)),
        help="admission request bodies held at once, per worker, at most this many bytes in "
             "all (at least --max-body-bytes); a request waits for room within "
             "--body-timeout, then gets HTTP 503"), "KCI_WEBHOOK_BODY_MEMORY_BYTES")
    from_environment(serve.add_argument(
        "--max-connections", type=positive_int, metavar="N",
        default=os.environ.get("KCI_WEBHOOK_MAX_CONNECTIONS", str(DEFAULT_MAX_CONNECTIONS)),
        help="open connections per worker; one more is closed as soon as it is accepted"),
        "KCI_WEBHOOK_MAX_CONNECTIONS")
    from_environment(serve.add_argument(
        "--header-timeout", type=_timeout, metavar="SECONDS",
        default=os.environ.get("KCI_WEBHOOK_HEADER_TIMEOUT", f"{DEFAULT_HEADER_TIMEOUT:g}"),
        help="a request's head must arrive within this long of the connection (or of its "
             "first byte on a reused one), else the connection is closed"),
        "KCI_WEBHOOK_HEADER_TIMEOUT")
    from_environment(serve.add_argument(
        "--body-timeout", type=_timeout, metavar="SECONDS",
        default=os.environ.get("KCI_WEBHOOK_BODY_TIMEOUT", f"{DEFAULT_BODY_TIMEOUT:g}"),
        help="a request's body must arrive within this long of its head, else HTTP 408 and "
             "the connection is closed"), "KCI_WEBHOOK_BODY_TIMEOUT")
    from_environment(serve.add_argument(
        "--webhook-timeout", type=webhook_timeout, metavar="SECONDS",
        default=os.environ.get("KCI_WEBHOOK_TIMEOUT_SECONDS",
                               str(DEFAULT_WEBHOOK_TIMEOUT_SECONDS)),
        help="the webhook configurations' timeoutSeconds, 1 to 30; "
             "mirrorChecks.budgetSeconds must leave room in it"), "KCI_WEBHOOK_TIMEOUT_SECONDS")
    from_environment(serve.add_argument(
        "--log-level", default=os.environ.get("KCI_WEBHOOK_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"]), "KCI_WEBHOOK_LOG_LEVEL")
    from_environment(serve.add_argument(
        "--log-format", default=os.environ.get("KCI_WEBHOOK_LOG_FORMAT", "json"),
        choices=["json", "text"], help="json lines or plain text"), "KCI_WEBHOOK_LOG_FORMAT")
    from_environment(serve.add_argument(
        "--log-changes", default=os.environ.get("KCI_WEBHOOK_LOG_CHANGES", "off"),
        choices=["off", "debug", "info"],
        help="a log line for each admission that changed a pod, at this level (shown when "
             "--log-level lets it through): its rewritten images and the record's word for "
             "each container"), "KCI_WEBHOOK_LOG_CHANGES")
    from_environment(serve.add_argument(
        "--log-changes-sample-rate", type=fraction, metavar="RATE",
        default=os.environ.get("KCI_WEBHOOK_LOG_CHANGES_SAMPLE_RATE", "1"),
        help="the share of those admissions logged, 0 to 1 (drawn at random per admission)"),
        "KCI_WEBHOOK_LOG_CHANGES_SAMPLE_RATE")
    from_environment(serve.add_argument(
        "--events", default=os.environ.get("KCI_WEBHOOK_EVENTS", "on"), choices=["on", "off"],
        help="Kubernetes Events (events.k8s.io/v1) on a pod's owner and on the pod, for what "
             "needs a person: an image kept on its own registry because its if-present mirror "
             "lacked it or did not answer, a namespace default or pod annotation ignored; "
             "sent through the API server the namespace watch uses, never on a dry run"),
        "KCI_WEBHOOK_EVENTS")
    from_environment(serve.add_argument(
        "--events-queue-size", type=positive_int, metavar="N",
        default=os.environ.get("KCI_WEBHOOK_EVENTS_QUEUE_SIZE", str(DEFAULT_EVENTS_QUEUE_SIZE)),
        help="Events waiting to be sent, per worker; beyond this (the API server slow or "
             "down) new ones are dropped and counted in kci_webhook_events_total"),
        "KCI_WEBHOOK_EVENTS_QUEUE_SIZE")
    serve.set_defaults(func=_serve)

    preview.add_parser(commands)
    configcheck.add_parser(commands)
    plan.add_parser(commands)
    trust.add_parser(commands)
    doctor.add_parser(commands)
    nodeconfig.add_parser(commands)

    certs.add_parser(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    # imported here: the web stack and the kubernetes client take ~2 s to import, which
    # the offline commands (mutate, trust, certs, doctor) should not pay
    from webhook.adapters import namespaces, registration
    from webhook.server.run import run
    from webhook.server.settings import Settings, load_settings_config

    logging.config.dictConfig(log_config(args.log_level, args.log_format))
    log = logging.getLogger("kci-webhook")
    if bool(args.cert) != bool(args.key):
        print("kci-webhook serve: --cert and --key go together", file=sys.stderr)
        return EXIT_CONFIG
    if args.body_memory_bytes < args.max_body_bytes:
        print(f"kci-webhook serve: --body-memory-bytes ({args.body_memory_bytes}) must be at "
              f"least --max-body-bytes ({args.max_body_bytes}): the largest body allowed "
              "could never be read", file=sys.stderr)
        return EXIT_CONFIG
    config_path = args.config or os.environ.get("KCI_WEBHOOK_CONFIG") or ""
    settings = Settings(config_path=config_path or None, environ=dict(os.environ),
                        webhook_timeout=args.webhook_timeout)
    try:
        config, _ = load_settings_config(settings)   # fail fast, before any worker
    except ConfigError as exc:
        print(f"kci-webhook: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:   # the webhook configurations' self-activation (webhook.adapters.registration)
        registration.check_environ(os.environ)
    except ConfigError as exc:
        print(f"kci-webhook: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    source = namespaces.choose_source(override=args.kubeconfig, environ=os.environ)
    try:
        api = namespaces.api_for(source)                     # the same, for the kubeconfig
    except ConfigError as exc:
        print(f"kci-webhook: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log.info("%s%s", source.describe(),
             f", API server {api.api_client.configuration.host}" if api else "")
    if args.cert:
        cert, key = Path(args.cert), Path(args.key)
    else:
        try:
            cert, key, ca = ensure_dev_certificates(Path(args.certs_dir))
        except ConfigError as exc:
            print(f"kci-webhook: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        log.info("using development certificates: cert=%s key=%s ca=%s "
                 "(SANs localhost, 127.0.0.1, ::1)", cert.resolve(), key.resolve(), ca.resolve())
    # absolute(), never resolve(): a mounted Secret's tls.crt is a symlink into a
    # versioned directory that the kubelet replaces on rotation; the resolved path would
    # pin the old version forever and hot reload would never see a new certificate.
    os.environ.update({
        "KCI_WEBHOOK_CONFIG": config_path,
        "KCI_WEBHOOK_TLS_CERT": str(cert.absolute()),
        "KCI_WEBHOOK_TLS_KEY": str(key.absolute()),
        "KCI_WEBHOOK_MAX_BODY_BYTES": str(args.max_body_bytes),
        "KCI_WEBHOOK_BODY_MEMORY_BYTES": str(args.body_memory_bytes),
        "KCI_WEBHOOK_MAX_CONNECTIONS": str(args.max_connections),
        "KCI_WEBHOOK_HEADER_TIMEOUT": str(args.header_timeout),
        "KCI_WEBHOOK_BODY_TIMEOUT": str(args.body_timeout),
        "KCI_WEBHOOK_KUBECONFIG": args.kubeconfig or "",
        "KCI_WEBHOOK_SHUTDOWN_DELAY": str(args.shutdown_delay),
        "KCI_WEBHOOK_TIMEOUT_SECONDS": str(args.webhook_timeout),
        "KCI_WEBHOOK_EVENTS": args.events,
        "KCI_WEBHOOK_EVENTS_QUEUE_SIZE": str(args.events_queue_size),
        "KCI_WEBHOOK_LOG_CHANGES": args.log_changes,
        "KCI_WEBHOOK_LOG_CHANGES_SAMPLE_RATE": str(args.log_changes_sample_rate),
    })
    for warning in config.warnings:
        log.warning("%s: %s", config.source, warning)
    log.info("serving on https://%s:%d with config %s, %d mirror(s), %d worker(s), %s",
             args.host, args.port, config.source, len(config.mirrors), args.workers,
             "compiled core" if core_compiled() else "pure-Python core (not compiled)")
    with contextlib.ExitStack() as stack:
        if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # each worker is a process: /metrics must add up all of them (metrics.py);
            # their files live only as long as this server
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="kci-webhook-metrics-"))
        # a port that cannot be bound ends the process in uvicorn with its STARTUP_FAILURE,
        # EXIT_CANNOT_LISTEN (one worker or several)
        run(host=args.host, port=args.port, workers=max(1, args.workers),
            log_level=args.log_level, log_format=args.log_format)
    return 0


def _version() -> str:
    """The installed distribution's version: one source of truth, pyproject.toml."""
    try:
        return metadata.version("kci-webhook")
    except metadata.PackageNotFoundError:      # run from a checkout that is not installed
        return "unknown"


_seconds = seconds(low=0, high=3600)


def _timeout(text: str) -> float:
    """A read deadline: more than 0 (0 would close every connection at once)."""
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
