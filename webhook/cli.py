"""`kci-webhook` command line: serve, certs (more commands join as they are built)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.config
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from webhook import doctor, preview, tls, trust
from webhook.errors import ConfigError
from webhook.logs import log_config
from webhook.review import DEFAULT_MAX_BODY_BYTES

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
    serve.add_argument("--kubeconfig", default=os.environ.get("KCI_WEBHOOK_KUBECONFIG"),
                       help="watch Namespaces through this kubeconfig (default: in-cluster "
                            "config when running in a pod, else no namespace defaults)")
    serve.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                       help="larger request bodies get HTTP 413 (default 7 MiB)")
    serve.add_argument("--log-level", default=os.environ.get("KCI_WEBHOOK_LOG_LEVEL", "info"),
                       choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", default=os.environ.get("KCI_WEBHOOK_LOG_FORMAT", "json"),
                       choices=["json", "text"], help="json lines (default) or plain text")
    serve.set_defaults(func=_serve)

    preview.add_parser(commands)
    trust.add_parser(commands)
    doctor.add_parser(commands)

    certs = commands.add_parser(
        "certs", help="write a CA and serving certificate for the Service, or check them",
        description="Write ca.crt, ca.key, tls.crt and tls.key into --out for the Service's DNS "
                    "names and print the caBundle for the MutatingWebhookConfiguration. An "
                    "existing CA in --out is reused, so the caBundle in the cluster stays valid.")
    certs.add_argument("--service", default="kci-webhook")
    certs.add_argument("--namespace", default="kci-webhook")
    certs.add_argument("--out", default="certs", help="directory for ca.crt, tls.crt, tls.key")
    certs.add_argument("--days", type=_positive_int, default=365,
                       help="validity of the serving certificate (default 365)")
    certs_mode = certs.add_mutually_exclusive_group()
    certs_mode.add_argument("--check", action="store_true",
                            help="write nothing; check the files in --out (expiry, SANs against "
                                 "the Service names, key and CA match) and exit 1 on any problem")
    certs_mode.add_argument("--ca-bundle-out", metavar="FILE",
                            help="write the caBundle to FILE instead of printing it")
    certs.add_argument("--warn-days", type=int, default=30,
                       help="with --check: a certificate expiring within N days is a problem "
                            "(default 30)")
    certs.set_defaults(func=_certs)
    return parser


def _serve(args: argparse.Namespace) -> int:
    # imported here: the web stack and the kubernetes client take ~2 s to import, which
    # the offline commands (mutate, trust, certs, doctor) should not pay
    from webhook import server

    logging.config.dictConfig(log_config(args.log_level, args.log_format))
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
    # absolute(), never resolve(): a mounted Secret's tls.crt is a symlink into a
    # versioned directory that the kubelet replaces on rotation; the resolved path would
    # pin the old version forever and hot reload would never see a new certificate.
    os.environ.update({
        "KCI_WEBHOOK_CONFIG": config_path,
        "KCI_WEBHOOK_TLS_CERT": str(cert.absolute()),
        "KCI_WEBHOOK_TLS_KEY": str(key.absolute()),
        "KCI_WEBHOOK_MAX_BODY_BYTES": str(args.max_body_bytes),
        "KCI_WEBHOOK_KUBECONFIG": args.kubeconfig or "",
    })
    log.info("serving on https://%s:%d with config %s, %d mirror(s), %d worker(s)",
             args.host, args.port, config.source, len(config.mirrors), args.workers)
    with contextlib.ExitStack() as stack:
        if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # each worker is a process: /metrics must add up all of them (metrics.py);
            # their files live only as long as this server
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="kci-webhook-metrics-"))
        server.run(host=args.host, port=args.port, workers=max(1, args.workers),
                   log_level=args.log_level, log_format=args.log_format)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _certs(args: argparse.Namespace) -> int:
    out = Path(args.out)
    names = tls.service_dns_names(args.service, args.namespace)
    if args.check:
        return _check_certs(out, names, warn_within=timedelta(days=args.warn_days))
    try:
        ca, _serving = tls.make_service_certificates(out, service=args.service,
                                                     namespace=args.namespace, days=args.days)
    except (ValueError, OSError) as exc:
        print(f"kci-webhook certs: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}/ca.crt, {out}/ca.key, {out}/tls.crt, {out}/tls.key for "
          f"{', '.join(names)}", file=sys.stderr)
    bundle = tls.ca_bundle(ca.cert_pem)
    if args.ca_bundle_out:
        Path(args.ca_bundle_out).write_text(bundle + "\n")
        print(f"wrote the caBundle to {args.ca_bundle_out}", file=sys.stderr)
    else:
        print(bundle)
    return 0


# check_pair's messages about validity itself (as opposed to key, SAN or CA problems).
_VALIDITY_PROBLEMS = ("certificate expired", "certificate not yet valid",
                      "certificate expires within", "certificate does not parse")


def _check_certs(out: Path, names: list[str], *, warn_within: timedelta) -> int:
    """`certs --check`: report on tls.crt/tls.key/ca.crt (and ca.key if present) in `out`
    as the API server will see them; every problem is printed, exit 1 if there is any.

    Works on a directory `kci-webhook certs` wrote and on the files of a cert-manager
    Secret (no ca.key: then only the CA certificate's validity is checked)."""
    problems: list[str] = []
    files: dict[str, bytes] = {}
    for name in ("tls.crt", "tls.key", "ca.crt", "ca.key"):
        try:
            files[name] = (out / name).read_bytes()
        except FileNotFoundError:
            if name != "ca.key":
                problems.append(f"{out / name}: missing")
        except OSError as exc:
            problems.append(f"{out / name}: cannot read: {exc.strerror}")
    if "tls.crt" in files and "tls.key" in files:
        report = tls.check_pair(files["tls.crt"], files["tls.key"], ca_pem=files.get("ca.crt"),
                                expected_names=names, warn_within=warn_within)
        if report.not_after:
            print(f"{out / 'tls.crt'}: expires {report.not_after.isoformat()}; "
                  f"SANs {', '.join(report.sans) or '(none)'}")
        problems += [f"{out / 'tls.crt'}: {p}" for p in report.problems]
    if "ca.crt" in files:
        ca = tls.check_pair(files["ca.crt"], files.get("ca.key", b""), warn_within=warn_within)
        if ca.not_after:
            print(f"{out / 'ca.crt'}: expires {ca.not_after.isoformat()}")
        ca_problems = ca.problems if "ca.key" in files else \
            [p for p in ca.problems if p.startswith(_VALIDITY_PROBLEMS)]
        label = f"{out / 'ca.crt'} + ca.key" if "ca.key" in files else f"{out / 'ca.crt'}"
        problems += [f"{label}: {p}" for p in ca_problems]
    for problem in problems:
        print(f"PROBLEM {problem}")
    if problems:
        return 1
    print(f"OK: {out} holds a valid pair for {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
