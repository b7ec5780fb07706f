"""The `kci-webhook plan` command line: arguments, the cluster and registry reads around the
pure steps of `findings`, what goes where, exit codes.

The kubernetes client and httpx load only when a plan runs (the other commands, whose
parsers the CLI builds alongside this one, start without them).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from webhook.core.config import (
    DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
    Config,
    EnvironmentDefaults,
    environment_defaults,
)
from webhook.core.errors import ConfigError
from webhook.core.mutation.context import Context
from webhook.tools.arguments import positive_int, seconds, webhook_timeout
from webhook.tools.helpformat import HelpFormatter, epilog, from_environment
from webhook.tools.plan import findings as steps
from webhook.tools.plan.render import (
    Plan,
    compare,
    comparison_data,
    comparison_table,
    dump,
    plan_data,
    plan_table,
)

if TYPE_CHECKING:
    from webhook.adapters.cluster import Cluster
    from webhook.adapters.registry.survey import Survey
    from webhook.tools.plan.collect import Snapshot

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
    from webhook.adapters.cluster import ClusterError, connect
    from webhook.tools.plan.collect import read

    say = _Progress()
    _log_to_stderr()
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
    planner = _Planner(cluster, snapshot, environment=environment,
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


# --- planning -------------------------------------------------------------------------------


class _Planner:
    """The steps of `findings` with the reads between them; the registry's answers and
    the Secrets' are kept across the two configs of --compare (asked once)."""

    def __init__(self, cluster: Cluster, snapshot: Snapshot, *,
                 environment: EnvironmentDefaults, own_namespace: str, timeout: float,
                 concurrency: int, progress: _Progress) -> None:
        from webhook.adapters.registry.survey import Survey
        self.cluster, self.snapshot = cluster, snapshot
        self.environment, self.own_namespace = environment, own_namespace
        self.timeout, self.concurrency, self.progress = timeout, concurrency, progress
        self.survey: Survey = Survey()
        self.secrets: dict[tuple[str, str], str | None] = {}

    def plan(self, config: Config) -> Plan:
        from webhook.adapters.namespaces import NamespaceCache

        # The namespace cache's own reading of each Namespace, in the config's dialect.
        cache = NamespaceCache(None, dialect=config.dialect)
        for listed in self.snapshot.namespaces.values():
            cache.apply({"type": "ADDED", "object": listed})
        contexts: dict[str, Context] = {}

        def context_for(namespace: str) -> Context:
            ctx = contexts.get(namespace)
            if ctx is None:
                ctx = contexts[namespace] = Context(
                    config=config, environment=self.environment, namespace=namespace,
                    namespace_layer=cache.get(namespace), own_namespace=self.own_namespace)
            return ctx

        units = self.snapshot.units
        with self.progress.status("asking the if-present mirrors"):
            asked = steps.presence_questions(units, context_for)
            self._ask([steps.survey_question(question) for question in asked])
        with self.progress.status(f"mutating {len(units)} pods and templates"):
            outcomes = steps.mutate_all(
                units, context_for,
                presence=steps.presence_answers(asked, self.survey.answers))
        with self.progress.status("asking the mirrors for the images"):
            self._ask(steps.mirror_questions(outcomes, config))
        with self.progress.status("reading the pull Secrets"):
            for namespace, name in steps.secrets_needed(outcomes, config):
                if (namespace, name) not in self.secrets:
                    self.secrets[(namespace, name)] = self._secret(namespace, name)
        rows = steps.classify(outcomes, config, answers=self.survey.answers,
                              secrets=self.secrets)
        return Plan(config.source, rows, dict(self.snapshot.skipped))

    def _ask(self, questions: list[steps.Question]) -> None:
        from webhook.adapters.registry.survey import survey
        if questions:
            asyncio.run(survey(questions, timeout=self.timeout, concurrency=self.concurrency,
                               into=self.survey))

    def _secret(self, namespace: str, name: str) -> str | None:
        """None when the Secret exists, else why it cannot be used."""
        from webhook.adapters.cluster import Forbidden
        try:
            if self.cluster.secret_exists(namespace, name):
                return None
        except Forbidden as exc:
            return (f"pull Secret {name} in namespace {namespace} cannot be read (so it "
                    f"cannot be told whether it exists): {exc}")
        return f"pull Secret {name} does not exist in namespace {namespace}"


def _log_to_stderr() -> None:
    """What the adapters log (a Namespace annotation the server would ignore, a registry's
    failure) as warnings on stderr, in the command's voice, once each."""
    log = logging.getLogger("kci-webhook")
    if not any(getattr(h, "plan", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("kci-webhook plan: warning: %(message)s"))
        handler.addFilter(_Once())
        handler.plan = True    # type: ignore[attr-defined]
        log.addHandler(handler)
        log.setLevel(logging.WARNING)


class _Once(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


# --- progress -------------------------------------------------------------------------------


class _Progress:
    """A status line on stderr while a step runs, only when stderr is a terminal (never in
    a pipe or a log, and never on stdout)."""

    def __init__(self) -> None:
        self.console: Any = None
        if sys.stderr.isatty():
            from rich.console import Console
            self.console = Console(stderr=True)

    @contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        if self.console is None:
            yield lambda _text: None
            return
        with self.console.status(text) as shown:
            yield lambda update: shown.update(update)
