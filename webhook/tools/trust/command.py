"""The `kci-webhook trust` command line: arguments, reading files, exit codes."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta
from pathlib import Path

from webhook.core import names
from webhook.tools.helpformat import HelpFormatter, epilog
from webhook.tools.trust.build import build_entries, render, tkg_service_configuration, trust_secret
from webhook.tools.trust.check import check_text
from webhook.tools.trust.errors import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, TrustError
from webhook.tools.trust.output import _Printer, print_report
from webhook.tools.trust.pem import DEFAULT_WARN_DAYS
from webhook.tools.trust.tanzu import CNIS, SECRET_SUFFIX, secret_name

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "trust", help="build or check Tanzu trust.additionalTrustedCAs for a private registry",
        description="Print the TkgServiceConfiguration spec.trust.additionalTrustedCAs (data: "
                    "base64 of the PEM) that makes Tanzu clusters trust the CA certificates "
                    "in PEM..., or with --secret the <cluster>-user-trusted-ca-secret Secret "
                    "(data: double base64). With --check FILE, report every problem in an "
                    "existing TkgServiceConfiguration, TanzuKubernetesCluster, Cluster or "
                    "Secret: bad base64, single vs double base64, raw PEM, not a certificate, "
                    "expired, private keys, duplicates. The built TkgServiceConfiguration "
                    "sets spec.defaultCNI only with --default-cni; without it, kubectl apply "
                    "leaves the cluster's as it is.",
        epilog=epilog({EXIT_OK: "built, or checked with no error (warnings allowed)",
                       EXIT_PROBLEMS: "--check found errors",
                       EXIT_USAGE: "unusable input (a private key, not a certificate, "
                                   "unreadable), or bad arguments"},
                      ("kci-webhook trust harbor-ca.crt > tkg-service-configuration.yaml",
                       "kci-webhook trust --secret --cluster cluster01 --namespace tkgs-ns "
                       "ca.pem",
                       "kubectl get tkgserviceconfiguration tkg-service-configuration -o yaml"
                       " \\\n| kci-webhook trust --check -")),
        formatter_class=HelpFormatter)
    parser.add_argument("pems", nargs="*", metavar="PEM",
                        help="CA certificate files (PEM; several certificates per file are "
                             "fine; - for stdin)")
    parser.add_argument("--name", action="append", metavar="NAME",
                        help="entry name for the PEM file at the same position (repeat once "
                             "per file; default: the file's name, as a DNS label)")
    parser.add_argument("--secret", action="store_true",
                        help="print the v1 Secret <cluster>-user-trusted-ca-secret (double "
                             "base64) that a Cluster's trust variable refers to")
    parser.add_argument("--cluster", metavar="NAME",
                        help="the cluster the Secret is for (implies --secret)")
    parser.add_argument("--namespace", metavar="NS",
                        help="the Secret's namespace (the cluster's vSphere namespace)")
    parser.add_argument("--default-cni", choices=CNIS,
                        help="also set the TkgServiceConfiguration's spec.defaultCNI (the CNI "
                             "of new clusters); not set unless given")
    parser.add_argument("--allow-leaf", action="store_true",
                        help="accept a leaf (non-CA) certificate that is not self-signed")
    parser.add_argument("--check", metavar="FILE",
                        help="check the trusted CAs in FILE (YAML or JSON, - for stdin)")
    parser.add_argument("--json", action="store_true", help="with --check: JSON output")
    parser.add_argument("--warn-days", type=int, default=DEFAULT_WARN_DAYS, metavar="N",
                        help="warn about certificates expiring within N days")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    err = _Printer(sys.stderr)
    warn_within = timedelta(days=max(0, args.warn_days))
    if args.check is not None:
        if args.pems or args.name or args.secret or args.cluster or args.default_cni:
            err.line("kci-webhook trust: --check FILE reads an existing YAML; give PEM files, "
                     "--name, --secret, --cluster or --default-cni only to build one", "error")
            return EXIT_USAGE
        return _run_check(args.check, as_json=args.json, warn_within=warn_within, err=err)
    if args.json:
        err.line("kci-webhook trust: --json goes with --check", "error")
        return EXIT_USAGE
    if not args.pems:
        err.line("kci-webhook trust: give CA certificate files (PEM...) to build the YAML, or "
                 "--check FILE to check one", "error")
        return EXIT_USAGE
    return _run_build(args, warn_within=warn_within, err=err)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _run_build(args: argparse.Namespace, *, warn_within: timedelta, err: _Printer) -> int:
    secret = bool(args.secret or args.cluster)
    if secret and not args.cluster:
        err.line(f"kci-webhook trust: --secret needs --cluster NAME (the Secret is named "
                 f"NAME{SECRET_SUFFIX})", "error")
        return EXIT_USAGE
    if args.cluster and (not _DNS_SUBDOMAIN.fullmatch(args.cluster)
                         or len(secret_name(args.cluster)) > 253):
        err.line(f"kci-webhook trust: --cluster {args.cluster!r} is not a valid cluster name "
                 "(lower-case DNS name)", "error")
        return EXIT_USAGE
    if secret and args.default_cni:
        err.line("kci-webhook trust: --default-cni belongs to the TkgServiceConfiguration, "
                 "not to the Secret (--secret, --cluster)", "error")
        return EXIT_USAGE
    namespace_errors = names.dns1123_label_errors(args.namespace) if args.namespace else []
    if namespace_errors:
        invalid = names.invalid("--namespace", args.namespace, namespace_errors)
        err.line(f"kci-webhook trust: {invalid}", "error")
        return EXIT_USAGE
    if args.pems.count("-") > 1:
        err.line("kci-webhook trust: stdin (-) can be read only once", "error")
        return EXIT_USAGE
    try:
        sources = [(path, _read(path)) for path in args.pems]
    except OSError as e:
        err.line(f"kci-webhook trust: cannot read {e.filename}: {e.strerror}", "error")
        return EXIT_USAGE
    try:
        entries, notes = build_entries(sources, args.name, allow_leaf=args.allow_leaf,
                                       warn_within=warn_within)
    except TrustError as e:
        err.line(f"kci-webhook trust: {e}", "error")
        return EXIT_USAGE
    for note in notes:
        err.line(note, note.split(":", 1)[0] if note.startswith(("warning:", "note:")) else None)
    if secret:
        document = trust_secret(entries, cluster=args.cluster, namespace=args.namespace)
        listed = ", ".join(f"{{name: {e.name}}}" for e in entries)
        err.line(f"note: in the cluster {args.cluster}, list these names under trust."
                 f"additionalTrustedCAs: [{listed}]", "note")
    else:
        document = tkg_service_configuration(entries, default_cni=args.default_cni)
        cni = (f"spec.defaultCNI is set to {args.default_cni}" if args.default_cni else
               "spec.defaultCNI is left as the cluster has it (--default-cni sets it)")
        err.line("note: kubectl apply replaces spec.trust.additionalTrustedCAs as a whole — "
                 "pass every CA the clusters must trust, not only the new one; new clusters "
                 f"get it, existing ones at their next rolling update; {cni}", "note")
    sys.stdout.write(render(document, entries))
    return EXIT_OK


def _run_check(path: str, *, as_json: bool, warn_within: timedelta, err: _Printer) -> int:
    try:
        raw = _read(path)
        text = raw.decode("utf-8-sig")
        report = check_text(text, source=path, warn_within=warn_within)
    except (OSError, UnicodeDecodeError, TrustError) as e:
        if isinstance(e, OSError):
            message = f"{path}: cannot read: {e.strerror}"
        elif isinstance(e, UnicodeDecodeError):
            message = f"{path}: not UTF-8 text"
        else:
            message = str(e)
        if as_json:
            print(json.dumps({"source": path, "ok": False, "error": message}, indent=2))
        err.line(f"kci-webhook trust --check: {message}", "error")
        return EXIT_USAGE
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print_report(report, _Printer(sys.stdout))
    return EXIT_OK if report.ok else EXIT_PROBLEMS
