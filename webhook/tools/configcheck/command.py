"""The `kci-webhook config check` command line: arguments, what goes where, exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from webhook.adapters.configfile import ConfigUnreadable, check_config
from webhook.core.config import DEFAULT_WEBHOOK_TIMEOUT_SECONDS
from webhook.tools.arguments import webhook_timeout
from webhook.tools.helpformat import HelpFormatter, epilog, from_environment

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
TIMEOUT_ENV = "KCI_WEBHOOK_TIMEOUT_SECONDS"

GROUP_DESCRIPTION = (
    "Work on the webhook's config file without serving it. `kci-webhook config check "
    "FILE` validates it as serve does.")
DESCRIPTION = (
    "Validate the config FILE exactly as `kci-webhook serve` does before it listens: every "
    "key (each problem on a line of its own, with its key path, in serve's words), the "
    "mirror checks' budget against the webhook's timeout, then the files the config names "
    "(each mirror's caFile and pullCredentialConfigPath), as serve would open them."
    "\n\n"
    "A named file that is not on this machine (a cluster's config checked on a laptop or "
    "in CI) is reported as not found here: a warning, or with --files an error, as it is "
    "to serve. Relative paths are the working directory's, as they are serve's. Prints "
    "FILE: valid on stdout when it is; problems and warnings go to stderr.")
EXIT_CODES = {
    EXIT_VALID: "valid: serve would start with it (warnings, if any, on stderr)",
    EXIT_INVALID: "invalid: serve would refuse it; every problem is on stderr",
    EXIT_USAGE: "the config cannot be read, or bad arguments",
}
EXAMPLES = (
    "kci-webhook config check config.yaml",
    "kci-webhook config check --files --webhook-timeout 10 /etc/kci-webhook/config.yaml",
)


def add_parser(commands: Any) -> None:
    group = commands.add_parser(
        "config", help="check the config file", description=GROUP_DESCRIPTION,
        epilog=epilog({EXIT_VALID: "the command's own exit codes (see its --help)",
                       EXIT_USAGE: "no command, or bad arguments"}),
        formatter_class=HelpFormatter)
    group.set_defaults(func=lambda _args: _usage(group))
    actions = group.add_subparsers(title="commands")
    parser = actions.add_parser(
        "check", help="validate a config file as serve does", description=DESCRIPTION,
        epilog=epilog(EXIT_CODES, EXAMPLES), formatter_class=HelpFormatter)
    parser.add_argument("file", metavar="FILE", help="the config file")
    parser.add_argument("--files", action="store_true",
                        help="a file the config names that is not on this machine is an "
                             "error, as it is to serve; without --files, a warning")
    from_environment(parser.add_argument(
        "--webhook-timeout", type=webhook_timeout, metavar="SECONDS",
        default=os.environ.get(TIMEOUT_ENV, str(DEFAULT_WEBHOOK_TIMEOUT_SECONDS)),
        help="the webhook configurations' timeoutSeconds, 1 to 30, as serve takes it; "
             "mirrorChecks.budgetSeconds must leave room in it"), TIMEOUT_ENV)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = check_config(args.file, webhook_timeout=args.webhook_timeout,
                              absent_files_are_errors=args.files)
    except ConfigUnreadable as exc:
        print(f"kci-webhook config check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for warning in report.warnings:
        print(f"kci-webhook config check: warning: {warning}", file=sys.stderr)
    if report.config is None:
        print(f"kci-webhook config check: invalid configuration:\n{report.message()}",
              file=sys.stderr)
        return EXIT_INVALID
    for warning in report.config.warnings:
        print(f"kci-webhook config check: warning: {report.config.source}: {warning}",
              file=sys.stderr)
    print(f"{args.file}: valid")
    return EXIT_VALID


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print("kci-webhook config: a command is needed: check", file=sys.stderr)
    return EXIT_USAGE
