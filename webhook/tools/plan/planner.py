"""The reads between the pure steps of `findings`: the registry survey and the pull
Secrets, around the server's mutation, for one config; kept across the two configs of
`--compare`, so the registry and the API server are asked each thing once.

The kubernetes client and httpx load with this module, only when a plan runs.
"""

from __future__ import annotations

import asyncio

from webhook.adapters.cluster import Cluster, Forbidden
from webhook.adapters.namespaces import NamespaceCache
from webhook.adapters.registry.survey import Survey, survey
from webhook.core.config import Config, EnvironmentDefaults
from webhook.core.mutation.context import Context
from webhook.tools.plan import findings as steps
from webhook.tools.plan.collect import Snapshot
from webhook.tools.plan.console import Progress
from webhook.tools.plan.render import Plan


class Planner:
    """The steps of `findings` with the reads between them; the registry's answers and
    the Secrets' are kept across the two configs of --compare (asked once)."""

    def __init__(self, cluster: Cluster, snapshot: Snapshot, *,
                 environment: EnvironmentDefaults, own_namespace: str, timeout: float,
                 concurrency: int, progress: Progress) -> None:
        self.cluster, self.snapshot = cluster, snapshot
        self.environment, self.own_namespace = environment, own_namespace
        self.timeout, self.concurrency, self.progress = timeout, concurrency, progress
        self.survey: Survey = Survey()
        self.secrets: dict[tuple[str, str], str | None] = {}

    def plan(self, config: Config) -> Plan:
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
        if questions:
            asyncio.run(survey(questions, timeout=self.timeout, concurrency=self.concurrency,
                               into=self.survey))

    def _secret(self, namespace: str, name: str) -> str | None:
        """None when the Secret exists, else why it cannot be used."""
        try:
            if self.cluster.secret_exists(namespace, name):
                return None
        except Forbidden as exc:
            return (f"pull Secret {name} in namespace {namespace} cannot be read (so it "
                    f"cannot be told whether it exists): {exc}")
        return f"pull Secret {name} does not exist in namespace {namespace}"
