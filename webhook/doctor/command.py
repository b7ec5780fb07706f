"""The `kci-webhook doctor` command line: arguments, the run, the output form, exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from webhook.doctor.diagnosis import Doctor
from webhook.doctor.errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError
from webhook.doctor.options import options_from_args
from webhook.doctor.output import print_report
from webhook.helpformat import HelpFormatter, epilog

DEFAULT_TIMEOUT = 5.0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 600, got {text}")
    return value


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor", help="check a registry as a node pulling from it would",
        description="Check REGISTRY step by step as a node pulls from it: resolve the name, "
                    "connect, verify TLS (system store + --ca), GET /v2/ and its auth "
                    "challenge, log in with --creds, and with --image find the manifest. "
                    "Stops at the first step a pull would fail and names the fix. A web "
                    "server that is not a registry fails at v2; a --ca that holds a server "
                    "certificate instead of its CA gets a note.",
        epilog=epilog({EXIT_OK: "a pull from REGISTRY would work (every step passed)",
                       EXIT_FAIL: "a pull would fail: the failed step and its fix are shown",
                       EXIT_USAGE: "bad arguments, found before anything is dialled"},
                      ("kci-webhook doctor harbor.example.com --ca harbor-ca.crt",
                       "kci-webhook doctor 10.0.0.5:5000 --http --image kci/app:1.0",
                       "kci-webhook doctor harbor.internal --host-alias "
                       "10.0.0.5=harbor.internal --json")),
        formatter_class=HelpFormatter)
    parser.add_argument("registry", metavar="REGISTRY[:PORT]",
                        help="the registry as image references name it, e.g. "
                             "harbor.example.com or 192.168.0.10:5000")
    parser.add_argument("--ca", metavar="FILE",
                        help="PEM CA certificate(s) to trust on top of the system store "
                             "(a mirror's caFile, an additionalTrustedCAs entry)")
    parser.add_argument("--creds", metavar="FILE",
                        help="dockerconfigjson with credentials for REGISTRY (the "
                             ".dockerconfigjson of a pull secret)")
    parser.add_argument("--image", metavar="REF",
                        help="check this image's manifest: a repository on REGISTRY with a "
                             "tag or digest (kci/app:1.0), or REGISTRY/kci/app:1.0")
    parser.add_argument("--host-alias", metavar="IP=HOST", action="append", default=[],
                        help="resolve HOST to IP, as a kci-host-aliases entry does on the "
                             "node (repeatable)")
    parser.add_argument("--http", action="store_true",
                        help="speak plain HTTP, as for a registry in kci-http-registry")
    parser.add_argument("--json", action="store_true",
                        help="print the steps as JSON: [{step, ok, detail, fix, notes, "
                             "facts}, ...]")
    parser.add_argument("--timeout", metavar="S", type=_positive_float,
                        default=DEFAULT_TIMEOUT,
                        help="seconds for each network operation")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        options = options_from_args(args)
    except UsageError as exc:
        print(f"kci-webhook doctor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    steps = Doctor(options).run()
    if args.json:
        print(json.dumps([s.as_json() for s in steps], indent=2, ensure_ascii=False))
    else:
        print_report(steps, options, sys.stdout)
    return EXIT_OK if steps and all(s.ok for s in steps) else EXIT_FAIL
