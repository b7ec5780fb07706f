"""`kci-webhook` command line: serve, certs (more commands join as they are built)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from webhook import server, tls
from webhook.errors import ConfigError

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kci-webhook",
        description="Mutating admission webhook for private and mirrored registries.")
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="serve the webhook over HTTPS")
    serve.add_argument("--config", help="config file (default: $KCI_WEBHOOK_CONFIG)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--cert", help="serving certificate (PEM); default: a dev cert in certs/")
    serve.add_argument("--key", help="private key of --cert (PEM)")
    serve.add_argument("--certs-dir", default="certs",
                       help="where dev certificates are written when --cert is not given")
    serve.add_argument("--workers", type=int, default=int(os.environ.get("KCI_WEBHOOK_WORKERS",
                                                                          "1")))
    serve.add_argument("--max-body-bytes", type=int, default=server.DEFAULT_MAX_BODY_BYTES,
                       help="larger request bodies get HTTP 413 (default 7 MiB)")
    serve.add_argument("--log-level", default=os.environ.get("KCI_WEBHOOK_LOG_LEVEL", "info"),
                       choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)

    certs = commands.add_parser("certs", help="write a CA and serving certificate for the Service")
    certs.add_argument("--service", default="kci-webhook")
    certs.add_argument("--namespace", default="kci-webhook")
    certs.add_argument("--out", default="certs", help="directory for ca.crt, tls.crt, tls.key")
    certs.add_argument("--days", type=int, default=365)
    certs.set_defaults(func=_certs)
    return parser


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("kci-webhook")
    if bool(args.cert) != bool(args.key):
        print("kci-webhook serve: --cert and --key go together", file=sys.stderr)
        return EXIT_CONFIG
    config_path = args.config or os.environ.get("KCI_WEBHOOK_CONFIG") or ""
    settings = server.Settings(config_path=config_path or None, environ=dict(os.environ))
    try:
        config, _ = server.load_settings_config(settings)   # fail fast, before any worker
    except ConfigError as exc:
        print(f"kci-webhook: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.cert:
        cert, key = Path(args.cert), Path(args.key)
    else:
        cert, key, ca = tls.ensure_dev_certificates(Path(args.certs_dir))
        log.info("using development certificates: cert=%s key=%s ca=%s "
                 "(SANs localhost, 127.0.0.1, ::1)", cert.resolve(), key.resolve(), ca.resolve())
    os.environ.update({
        "KCI_WEBHOOK_CONFIG": config_path,
        "KCI_WEBHOOK_TLS_CERT": str(cert.resolve()),
        "KCI_WEBHOOK_TLS_KEY": str(key.resolve()),
        "KCI_WEBHOOK_MAX_BODY_BYTES": str(args.max_body_bytes),
    })
    log.info("serving on https://%s:%d with config %s, %d mirror(s), %d worker(s)",
             args.host, args.port, config.source, len(config.mirrors), args.workers)
    server.run(host=args.host, port=args.port, workers=max(1, args.workers),
               log_level=args.log_level)
    return 0


def _certs(args: argparse.Namespace) -> int:
    out = Path(args.out)
    ca, _serving = tls.make_service_certificates(out, service=args.service,
                                                 namespace=args.namespace, days=args.days)
    print(f"wrote {out}/ca.crt, {out}/tls.crt, {out}/tls.key for "
          f"{', '.join(tls.service_dns_names(args.service, args.namespace))}", file=sys.stderr)
    print(tls.ca_bundle(ca.cert_pem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
