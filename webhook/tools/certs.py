"""`kci-webhook certs`: the webhook's CA and serving certificate for its Service, or a check.

The API server reaches the webhook at `SERVICE.NAMESPACE.svc` and trusts it through the
`caBundle` of the webhook configurations; so the serving certificate carries the
Service's DNS names, and an existing CA in `--out` is reused (said so on stderr), which
keeps the caBundle already in the cluster valid when the serving certificate is renewed.
`--service` and `--namespace` are checked as the API server checks those names (DNS-1035
and RFC 1123 labels) before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from webhook.adapters.tls.check import certificate_summary, check_pair
from webhook.adapters.tls.issue import ca_bundle, make_service_certificates, service_dns_names
from webhook.core import names
from webhook.tools.helpformat import HelpFormatter, epilog

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
DEFAULT_DAYS = 365
DEFAULT_WARN_DAYS = 30

DESCRIPTION = (
    "Write ca.crt, ca.key, tls.crt and tls.key into --out for the Service's DNS names "
    "(SERVICE, SERVICE.NAMESPACE, SERVICE.NAMESPACE.svc, SERVICE.NAMESPACE.svc.cluster.local) "
    "and print the caBundle for the webhook configurations on stdout. An existing CA in "
    "--out is reused, and said so, so the caBundle in the cluster stays valid; otherwise a "
    "new CA is made, whose caBundle the cluster needs."
    "\n\n"
    "With --check, write nothing: check the files in --out as the API server will see "
    "them (expiry within --warn-days, SANs against the Service names, key and CA match); "
    "the files of a cert-manager Secret (no ca.key) work too."
)
EXIT_CODES = {
    EXIT_OK: "written (or, with --check, no problem found)",
    EXIT_PROBLEMS: "cannot write, or the CA in --out is unusable; with --check: a problem",
    EXIT_USAGE: "bad arguments (a --service or --namespace the API would refuse)",
}
EXAMPLES = (
    "kci-webhook certs --namespace kci-webhook --out certs/",
    "kci-webhook certs --check --out certs/ --warn-days 60",
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _label(errors_of: Callable[[str], list[str]]) -> Callable[[str], str]:
    """An argparse type: the name as given, or the API server's refusal of it (argparse
    puts the option's name in front, as the API server puts the field's)."""
    def check(text: str) -> str:
        errors = errors_of(text)
        if errors:
            raise argparse.ArgumentTypeError(names.invalid_value(text, errors))
        return text
    return check


def add_parser(commands: Any) -> None:
    certs = commands.add_parser(
        "certs", help="write a CA and serving certificate for the Service, or check them",
        description=DESCRIPTION, epilog=epilog(EXIT_CODES, EXAMPLES),
        formatter_class=HelpFormatter)
    certs.add_argument("--service", default="kci-webhook",
                       type=_label(names.dns1035_label_errors),
                       help="the webhook's Service name (a DNS-1035 label)")
    certs.add_argument("--namespace", default="kci-webhook",
                       type=_label(names.dns1123_label_errors),
                       help="the Service's namespace (an RFC 1123 label)")
    certs.add_argument("--out", default="certs", help="directory for ca.crt, tls.crt, tls.key")
    certs.add_argument("--days", type=_positive_int, default=DEFAULT_DAYS, metavar="N",
                       help="validity of the serving certificate, in days")
    certs_mode = certs.add_mutually_exclusive_group()
    certs_mode.add_argument("--check", action="store_true",
                            help="write nothing; check the files in --out (expiry, SANs against "
                                 "the Service names, key and CA match) and exit 1 on any problem")
    certs_mode.add_argument("--ca-bundle-out", metavar="FILE",
                            help="write the caBundle to FILE instead of printing it")
    certs.add_argument("--warn-days", type=int, default=DEFAULT_WARN_DAYS, metavar="N",
                       help="with --check: a certificate expiring within N days is a problem")
    certs.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    service_names = service_dns_names(args.service, args.namespace)
    if args.check:
        return _check_certs(out, service_names, warn_within=timedelta(days=args.warn_days))
    if args.days < args.warn_days:
        print(f"warning: --days {args.days} is shorter than --warn-days {args.warn_days}: "
              f"`kci-webhook certs --check` will report this certificate as expiring from "
              "the day it is written", file=sys.stderr)
    try:
        issued = make_service_certificates(out, service=args.service,
                                           namespace=args.namespace, days=args.days)
    except (ValueError, OSError) as exc:
        print(f"kci-webhook certs: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    ca_summary = certificate_summary(issued.ca.cert_pem)
    if issued.ca_reused:
        print(f"reused the existing CA in {out}/ca.crt ({ca_summary}): the caBundle already "
              "in the cluster stays valid", file=sys.stderr)
    else:
        print(f"made a new CA in {out}/ca.crt ({ca_summary}): put its caBundle in the webhook "
              "configurations", file=sys.stderr)
    for note in issued.ca_notes:
        print(f"warning: {note}", file=sys.stderr)
    written = "tls.crt, tls.key" if issued.ca_reused else "ca.crt, ca.key, tls.crt, tls.key"
    print(f"wrote {', '.join(f'{out}/{name}' for name in written.split(', '))} for "
          f"{', '.join(service_names)}", file=sys.stderr)
    bundle = ca_bundle(issued.ca.cert_pem)
    if args.ca_bundle_out:
        Path(args.ca_bundle_out).write_text(bundle + "\n")
        print(f"wrote the caBundle to {args.ca_bundle_out}", file=sys.stderr)
    else:
        print(bundle)
    return EXIT_OK


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
        report = check_pair(files["tls.crt"], files["tls.key"], ca_pem=files.get("ca.crt"),
                            expected_names=names, warn_within=warn_within)
        if report.not_after:
            print(f"{out / 'tls.crt'}: expires {report.not_after.isoformat()}; "
                  f"SANs {', '.join(report.sans) or '(none)'}")
        problems += [f"{out / 'tls.crt'}: {p}" for p in report.problems]
    if "ca.crt" in files:
        ca = check_pair(files["ca.crt"], files.get("ca.key", b""), warn_within=warn_within)
        if ca.not_after:
            print(f"{out / 'ca.crt'}: expires {ca.not_after.isoformat()}")
        ca_problems = ca.problems if "ca.key" in files else \
            [p for p in ca.problems if p.startswith(_VALIDITY_PROBLEMS)]
        label = f"{out / 'ca.crt'} + ca.key" if "ca.key" in files else f"{out / 'ca.crt'}"
        problems += [f"{label}: {p}" for p in ca_problems]
    for problem in problems:
        print(f"PROBLEM {problem}")
    if problems:
        return EXIT_PROBLEMS
    print(f"OK: {out} holds a valid pair for {', '.join(names)}")
    return EXIT_OK
