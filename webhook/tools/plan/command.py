"""The `kci-webhook plan` command line: arguments, the configs, what goes where, exit codes.

The kubernetes client and httpx load only when a plan runs (`collect`, `planner` and the
adapters are imported then): the other commands, whose parsers the CLI builds alongside
this one, start without them.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from webhook.core.config import DEFAULT_WEBHOOK_TIMEOUT_SECONDS, Config, environment_defaults
from webhook.core.errors import ConfigError
from webhook.tools.arguments import positive_int, seconds, webhook_timeout
from webhook.tools.helpformat import HelpFormatter, epilog, from_environment
from webhook.tools.plan import findings as steps
from webhook.tools.plan.console import Progress, log_to_stderr
from webhook.tools.plan.render import (
    compare,
    comparison_data,
    comparison_table,
    dump,
    plan_data,
    plan_table,
)

if TYPE_CHECKING:
    from webhook.adapters.cluster import Cluster

EXIT_OK, EXIT_FOUND, EXIT_CANNOT_RUN = 0, 1, 2
DEFAULT_FAIL_ON = "deny,missing-image,missing-secret"
WEBHOOK_NAMESPACE, CONFIGMAP, CONFIGMAP_KEY = "kci-webhook", "kci-webhook-config", "config.yaml"
TIMEOUT_ENV = "KCI_WEBHOOK_TIMEOUT_SECONDS"

DESCRIPTION = (
    "Tell, for a live cluster, what the webhook would do under a config, before it is "
    "switched on or changed: for every container of every Pod and of the pod templates of "
    "Deployments, StatefulSets, DaemonSets, ReplicaSets and Jobs that no controller owns, "
    "and CronJobs, one row with the image now, the image after, and a finding. It runs the "
    "server's own mutation, with the Namespaces' annotations as the server reads them."
    "\n\n"
    "Findings: rewrite (moves to a mirror), unchanged, excluded (namespace not selected), "
    "deny (the webhook would refuse the pod: the next rollout of that workload stops; with "
    "its message), missing-image (the mirror it would pull from has no such manifest: with "
    "policy: always the pull fails), missing-secret (the mirror's pullSecret does not "
    "exist in the pod's namespace, or cannot be read), unreachable (a mirror that could "
    "not be asked, and why). Each mirror is asked once per image, with its caFile and "
    "pullCredentialConfigPath as this machine has them; a mirror that does not answer "
    "costs one --registry-timeout."
    "\n\n"
    "The API server is found as kubectl finds it (--kubeconfig, $KUBECONFIG, the in-cluster "
    "service account, ~/.kube/config) and read with your own permissions: a namespace you "
    "may not read is listed as skipped. The config is --config, else the one the cluster's "
    "webhook serves, read from its ConfigMap; both are validated as serve validates them. "
    "The KCI_* defaults are this environment's, as for mutate. With -o json or yaml, "
    "stdout holds the data and nothing else; progress goes to stderr on a terminal.")
EXIT_CODES = {
    EXIT_OK: "planned: no container has a finding of --fail-on",
    EXIT_FOUND: "a container has a finding of --fail-on (with --compare: among the rows "
                "that differ, under the candidate config)",
    EXIT_CANNOT_RUN: "cannot run: no cluster found or reachable, Namespaces not listable "
                     "without -n, a -n namespace that does not exist, an invalid or "
                     "unreadable config, bad arguments",
}
EXAMPLES = (
    "kci-webhook plan",
    "kci-webhook plan -n team-a --config candidate.yaml",
    "kci-webhook plan --compare candidate.yaml -o json",
    "kci-webhook plan -A --fail-on deny,missing-image,missing-secret,unreachable",
)


def fail_on(text: str) -> frozenset[str]:
    """A comma list of findings (empty: nothing fails)."""
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(chosen - set(steps.FINDINGS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown finding {', '.join(unknown)}; choose from {', '.join(steps.FINDINGS)}")
    return chosen


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "plan", help="what the webhook would change and break in a live cluster",
        description=DESCRIPTION, epilog=epilog(EXIT_CODES, EXAMPLES),
        formatter_class=HelpFormatter)
    parser.add_argument("--config", metavar="FILE",
                        help="the config to plan with; without it, the one the cluster's "
                             "webhook serves (--webhook-namespace, --configmap)")
    parser.add_argument("--compare", metavar="FILE2",
                        help="plan under --config (or the served one) and under FILE2, and "
                             "show only the containers whose outcome differs")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="only this namespace")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="every namespace (what plan does without -n)")
    parser.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table",
                        help="table: aligned columns and the summaries; json or yaml: one "
                             "object, the data only")
    parser.add_argument("--fail-on", type=fail_on, metavar="CLASSES",
                        default=DEFAULT_FAIL_ON,
                        help="findings that make the exit code 1, a comma list of "
                             f"{', '.join(steps.FINDINGS)}; '' for none")
    from_environment(parser.add_argument(
        "--kubeconfig", default=os.environ.get("KCI_WEBHOOK_KUBECONFIG"), metavar="FILE",
        help="the kubeconfig to read the cluster through; without it, $KUBECONFIG, the "
             "in-cluster service account, ~/.kube/config"), "KCI_WEBHOOK_KUBECONFIG")
    parser.add_argument("--webhook-namespace", default=WEBHOOK_NAMESPACE, metavar="NAMESPACE",
                        help="the webhook's own namespace: its ConfigMap's, and excluded "
                             "as the server excludes it")
    parser.add_argument("--configmap", default=CONFIGMAP, metavar="NAME",
                        help="the ConfigMap the webhook's config is read from")
    parser.add_argument("--configmap-key", default=CONFIGMAP_KEY, metavar="KEY",
                        help="the ConfigMap's key holding the config")
    parser.add_argument("--registry-timeout", type=seconds(low=0.1, high=300),
                        default="5", metavar="SECONDS",
                        help="each manifest request to a mirror, all its round trips")
    parser.add_argument("--concurrency", type=positive_int, default="8", metavar="N",
                        help="manifest requests in flight per mirror")
    from_environment(parser.add_argument(
        "--webhook-timeout", type=webhook_timeout, metavar="SECONDS",
        default=os.environ.get(TIMEOUT_ENV, str(DEFAULT_WEBHOOK_TIMEOUT_SECONDS)),
        help="the webhook configurations' timeoutSeconds, which the config is validated "
             "against, as serve does"), TIMEOUT_ENV)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with log_to_stderr():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from webhook.adapters.cluster import ClusterError, connect
    from webhook.tools.plan.collect import read
    from webhook.tools.plan.planner import Planner

    say = Progress()
    try:
        environment = environment_defaults(os.environ)
        cluster = connect(kubeconfig=args.kubeconfig, environ=os.environ)
        current = (_file_config(args.config, args.webhook_timeout) if args.config
                   else _served_config(cluster, args))
        candidate = (_file_config(args.compare, args.webhook_timeout) if args.compare
                     else None)
        with say.status("reading the cluster") as note:
            snapshot = read(cluster, namespace=args.namespace,
                            progress=lambda what, n: note(f"reading {what}: {n}"))
    except (ConfigError, ClusterError) as exc:
        print(f"kci-webhook plan: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    for warning in snapshot.warnings:
        print(f"kci-webhook plan: warning: {warning}", file=sys.stderr)
    planner = Planner(cluster, snapshot, environment=environment,
                       own_namespace=args.webhook_namespace, timeout=args.registry_timeout,
                       concurrency=args.concurrency, progress=say)
    try:
        first = planner.plan(current)
        second = planner.plan(candidate) if candidate is not None else None
    except ClusterError as exc:
        print(f"kci-webhook plan: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if second is None:
        rows = first.rows
        text = (plan_table(first) if args.output == "table"
                else dump(plan_data(first), args.output))
        found = any(set(row.classes) & args.fail_on for row in rows)
    else:
        comparison = compare(first, second)
        text = (comparison_table(comparison) if args.output == "table"
                else dump(comparison_data(comparison), args.output))
        found = any(set(change.candidate.classes) & args.fail_on
                    for change in comparison.changes)
    sys.stdout.write(text)
    return EXIT_FOUND if found else EXIT_OK


# --- configs --------------------------------------------------------------------------------


def _file_config(path: str, timeout: int) -> Config:
    from webhook.adapters.configfile import ConfigUnreadable, check_config
    try:
        report = check_config(path, webhook_timeout=timeout, absent_files_are_errors=False)
    except ConfigUnreadable as exc:
        raise ConfigError(str(exc)) from None
    return _checked(report)


def _served_config(cluster: Cluster, args: argparse.Namespace) -> Config:
    """The config the cluster's webhook serves: its ConfigMap's key, validated."""
    from webhook.adapters.cluster import Forbidden, NotFound
    from webhook.adapters.configfile import check_config
    where = f"configmap {args.webhook_namespace}/{args.configmap}"
    try:
        data = cluster.config_map(args.webhook_namespace, args.configmap).get("data") or {}
    except (Forbidden, NotFound) as exc:
        raise ConfigError(f"{exc} (the config the webhook serves; or give --config FILE)"
                          ) from None
    text = data.get(args.configmap_key) if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise ConfigError(f"{where}: no key {args.configmap_key!r}")
    report = check_config(f"{where} {args.configmap_key}", text=text.encode(),
                          webhook_timeout=args.webhook_timeout,
                          absent_files_are_errors=False)
    return _checked(report)


def _checked(report: Any) -> Config:
    if report.config is None:
        raise ConfigError(f"invalid configuration:\n{report.message()}")
    for warning in (*report.warnings, *report.config.warnings):
        print(f"kci-webhook plan: warning: {warning}", file=sys.stderr)
    config: Config = report.config
    return config
