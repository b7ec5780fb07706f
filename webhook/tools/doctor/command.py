"""The `kci-webhook doctor` command line: arguments, the run, the output form, exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from webhook.core.config import load_config
from webhook.core.errors import ConfigError
from webhook.tools.doctor.diagnosis import Doctor
from webhook.tools.doctor.errors import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError
from webhook.tools.doctor.options import mirror_options, options_from_args
from webhook.tools.doctor.output import print_report
from webhook.tools.doctor.report import Step
from webhook.tools.helpformat import HelpFormatter, epilog

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
                    "certificate instead of its CA gets a note. With --config, every mirror "
                    "of a webhook config is checked that way, each with its own endpoint, "
                    "caFile and pullCredentialConfigPath.",
        epilog=epilog({EXIT_OK: "a pull from REGISTRY (with --config: from every mirror) "
                                "would work (every step passed)",
                       EXIT_FAIL: "a pull would fail: the failed step and its fix are shown",
                       EXIT_USAGE: "bad arguments or an unusable --config, found before "
                                   "anything is dialled"},
                      ("kci-webhook doctor harbor.example.com --ca harbor-ca.crt",
                       "kci-webhook doctor 10.0.0.5:5000 --http --image kci/app:1.0",
                       "kci-webhook doctor harbor.internal --host-alias "
                       "10.0.0.5=harbor.internal --json",
                       "kci-webhook doctor --config config.yaml --image library/nginx:1.25")),
        formatter_class=HelpFormatter)
    parser.add_argument("registry", metavar="REGISTRY[:PORT]", nargs="?",
                        help="the registry as image references name it, e.g. "
                             "harbor.example.com or 192.168.0.10:5000, or a mirror endpoint "
                             "as the config writes it (https://host:5000/v2/namespace)")
    parser.add_argument("--config", metavar="FILE",
                        help="instead of REGISTRY: check every mirror of this webhook config, "
                             "each with its endpoint, caFile and pullCredentialConfigPath")
    parser.add_argument("--nodes", choices=("containerd", "tanzu"), default="containerd",
                        help="how the nodes that pull are managed, for the fix of an unknown "
                             "CA: containerd (its hosts.toml or the node's trust store) or "
                             "tanzu (a TKG cluster: the TkgServiceConfiguration's "
                             "additionalTrustedCAs)")
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
        if args.config:
            return _run_config(args)
        if not args.registry:
            raise UsageError("give REGISTRY, or --config FILE to check every mirror of a "
                             "config")
        options = options_from_args(args)
    except UsageError as exc:
        print(f"kci-webhook doctor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    steps = Doctor(options).run()
    if args.json:
        print(json.dumps([s.as_json() for s in steps], indent=2, ensure_ascii=False))
    else:
        print_report(steps, options, sys.stdout)
    return EXIT_OK if _passed(steps) else EXIT_FAIL


def _passed(steps: list[Step]) -> bool:
    return bool(steps) and all(s.ok for s in steps)


def _run_config(args: argparse.Namespace) -> int:
    """Every mirror of a config, in order, each as `doctor ENDPOINT --ca caFile --creds
    pullCredentialConfigPath` would check it; all of them are usable before any is dialled."""
    if args.registry or args.ca or args.creds or args.http:
        raise UsageError("--config checks each mirror with its own endpoint, caFile and "
                         "credentials: give no REGISTRY, --ca, --creds or --http with it")
    try:
        config = load_config(Path(args.config).read_bytes(), source=args.config)
    except OSError as exc:
        raise UsageError(f"--config {args.config}: cannot read: {exc.strerror or exc}"
                         ) from None
    except ConfigError as exc:
        raise UsageError(f"invalid configuration:\n{exc}") from None
    if not config.mirrors:
        raise UsageError(f"--config {args.config}: no mirrors in it to check")
    checks = []
    for index, mirror in enumerate(config.mirrors):
        try:
            checks.append((index, mirror, mirror_options(mirror, args)))
        except UsageError as exc:
            raise UsageError(f"{args.config}: mirrors[{index}]: {exc}") from None
    results = [(index, mirror, options, Doctor(options).run())
               for index, mirror, options in checks]
    if args.json:
        print(json.dumps([{"mirror": index, "endpoint": mirror.endpoint,
                           "ok": _passed(steps), "steps": [s.as_json() for s in steps]}
                          for index, mirror, _, steps in results],
                         indent=2, ensure_ascii=False))
    else:
        for number, (index, mirror, options, steps) in enumerate(results):
            print(f"{'' if number == 0 else chr(10)}{args.config}: mirrors[{index}] "
                  f"{mirror.endpoint}")
            if mirror.skips_verification:
                print("note: insecureSkipVerify: true, so nodes do not verify this mirror's "
                      "certificate; the tls step shows whether they could")
            print_report(steps, options, sys.stdout)
    return EXIT_OK if all(_passed(steps) for *_, steps in results) else EXIT_FAIL
