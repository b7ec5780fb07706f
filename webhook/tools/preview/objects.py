"""The server's mutation on the objects of a manifest, and what it finds on the way.

Pods and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs
and CronJobs go through exactly `webhook.core.mutation.create.mutate`, with the same config, the
same
`KCI_*` environment and (simulated) Namespace annotations; everything else passes through
unchanged. Each finding names `FILE:LINE` and the object: the line of the annotation it
is about when there is one (the line that names it, in a `kind: List` too), else the
object's own line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.core.admission.workloads import TEMPLATE_PATHS, pod_template, template_as_pod
from webhook.core.config import Config, EnvironmentDefaults
from webhook.core.errors import InvalidInput
from webhook.core.mutation.context import Context
from webhook.core.mutation.create import mutate
from webhook.core.mutation.layers import namespace_layer
from webhook.tools.preview import lint
from webhook.tools.preview.documents import Document

DENIED, WARNING = "denied", "warning"


@dataclass(frozen=True)
class Finding:
    severity: str    # DENIED or WARNING
    where: str       # FILE:LINE
    label: str       # Kind/name, "" for the document itself
    text: str

    def __str__(self) -> str:
        label = f"{self.label}: " if self.label else ""
        return f"{self.where}: {self.severity}: {label}{self.text}"


@dataclass
class Preview:
    """The documents after admission (same order, unchanged ones the same objects)."""

    documents: list[Any] = field(default_factory=list)
    changed: list[bool] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def denied(self) -> bool:
        return any(f.severity == DENIED for f in self.findings)

    @property
    def warned(self) -> bool:
        return any(f.severity == WARNING for f in self.findings)


@dataclass
class _Run:
    config: Config
    environment: EnvironmentDefaults
    namespace: str
    ns_annotations: Mapping[str, str]
    result: Preview
    filename: str = ""
    document: Document | None = None
    dialect: str | None = None

    def add(self, severity: str, label: str, text: str,
            path: Sequence[str | int] | None = ()) -> None:
        """A finding at the line of `path` in the current document (None: the input as a
        whole, no line)."""
        if path is None or self.document is None:
            where = self.filename
        else:
            where = f"{self.filename}:{self.document.line_of(path)}"
        self.result.findings.append(Finding(severity, where, label, text))

    def context(self, namespace: str) -> Context:
        layer = (namespace_layer(namespace, dict(self.ns_annotations),
                                 self.dialect or self.config.dialect)
                 if self.ns_annotations else None)
        return Context(config=self.config, environment=self.environment, namespace=namespace,
                       namespace_layer=layer, dialect=self.dialect,
                       own_namespace=os.environ.get("POD_NAMESPACE") or None)


def preview(documents: Sequence[Document], *, filename: str, config: Config,
            environment: EnvironmentDefaults, namespace: str,
            namespace_annotations: Mapping[str, str], dialect: str | None = None) -> Preview:
    """Admit every document as the server would; warnings for what it would ignore.
    `dialect` overrides the namespace's and the config's, as `--dialect` does."""
    result = Preview()
    run = _Run(config, environment, namespace, namespace_annotations, result, filename,
               dialect=dialect)
    for warning in config.warnings:
        result.findings.append(Finding(WARNING, config.source, "", warning))
    for problem in lint.annotation_problems(namespace_annotations, where="--namespace-"
                                            "annotations", known=lint.NAMESPACE_ANNOTATIONS):
        run.add(WARNING, "", problem, path=None)
    for document in documents:
        run.document = document
        for problem in lint.document_problems(document.data):
            run.add(WARNING, "", problem)
        new = _one(document.data, run, ())
        result.documents.append(new)
        result.changed.append(new is not document.data)
    if lint.no_objects(d.data for d in documents):
        run.add(WARNING, "", "no Kubernetes object in the input: nothing to preview", path=None)
    return result


def _label(obj: Mapping[str, Any], kind: str) -> str:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return f"{kind or '?'}/{meta.get('name') or meta.get('generateName') or '?'}"


def _one(doc: Any, run: _Run, at: tuple[str | int, ...]) -> Any:
    """`doc` admitted; `at` is where it is in its document (a `kind: List`'s item)."""
    if not isinstance(doc, dict):
        return doc
    raw_kind = doc.get("kind")
    kind = raw_kind if isinstance(raw_kind, str) else ""
    if kind == "List" and isinstance(doc.get("items"), list):
        items = [_one(item, run, (*at, "items", i)) for i, item in enumerate(doc["items"])]
        same = all(a is b for a, b in zip(items, doc["items"], strict=True))
        return doc if same else {**doc, "items": items}
    label = _label(doc, kind)
    raw_meta = doc.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    ctx = run.context(namespace or run.namespace)
    for problem in lint.misplaced_annotations(doc, kind):
        run.add(WARNING, label, problem, (*at, *problem.split(" ", 1)[0].split(".")))
    if kind == "Pod":
        where = _Where(run, at, ("metadata", "annotations"), meta.get("annotations"))
        _annotations(meta, "metadata.annotations", label, where)
        return _mutated(doc, ctx, label, where) or doc
    template = pod_template(doc, kind)
    if template is None:
        return doc
    as_pod = template_as_pod(template)
    path = ".".join((*TEMPLATE_PATHS[kind], "metadata", "annotations"))
    where = _Where(run, at, (*TEMPLATE_PATHS[kind], "metadata", "annotations"),
                   as_pod["metadata"].get("annotations"))
    _annotations(as_pod["metadata"], path, label, where)
    pod = _mutated(as_pod, ctx, label, where)
    if pod is None or pod is as_pod:
        return doc
    new_template = {**template, "metadata": pod["metadata"], "spec": pod["spec"]}
    return _put(doc, TEMPLATE_PATHS[kind], new_template)


@dataclass
class _Where:
    """Findings about one pod (or pod template): each at the line of the annotation it
    names, else at the line of the object."""

    run: _Run
    at: tuple[str | int, ...]          # of the object in its document
    path: tuple[str | int, ...]        # of its annotations, below `at`
    annotations: Any

    def add(self, severity: str, label: str, text: str) -> None:
        keys = self.annotations if isinstance(self.annotations, Mapping) else {}
        key = _named_key(text, (k for k in keys if isinstance(k, str)))
        self.run.add(severity, label, text, (*self.at, *self.path, key) if key else self.at)


def _named_key(text: str, keys: Iterable[str]) -> str | None:
    """The annotation key a message is about: the one it names first (as `KEY (pod)`, the
    form of validation messages, before a mere mention), the longest at the same place."""
    best: tuple[int, int, int, str] | None = None
    for key in keys:
        for rank, needle in enumerate((f"{key} (pod)", key)):
            position = text.find(needle)
            if position >= 0:
                candidate = (rank, position, -len(key), key)
                best = candidate if best is None or candidate < best else best
                break
    return best[3] if best else None


def _annotations(meta: Any, path: str, label: str, where: _Where) -> None:
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    for problem in lint.annotation_problems(annotations, where=path):
        where.add(WARNING, label, problem)


def _mutated(pod: dict[str, Any], ctx: Context, label: str,
             run: _Where) -> dict[str, Any] | None:
    """The admitted pod, or None when it is denied."""
    try:
        outcome = mutate(pod, ctx)
    except InvalidInput as exc:
        run.add(DENIED, label, str(exc))
        return None
    for warning in outcome.warnings:
        run.add(WARNING, label, warning)
    for note in _unasked(outcome.rewritten, ctx.config):
        run.add(WARNING, label, note)
    if outcome.denial:
        run.add(DENIED, label, outcome.denial)
        return None
    if outcome.skipped:
        run.add(WARNING, label, f"{outcome.skipped}: the webhook leaves its pods alone, so "
                "nothing of this preview would happen in the cluster (exclude.namespaces in "
                "the config, and the webhook's own namespace)")
    return outcome.pod


def _unasked(rewritten: Mapping[str, tuple[str, str]], config: Config) -> list[str]:
    """Rewrites to a `policy: if-present` mirror: the server asks the mirror first and keeps
    the original image when it lacks it; the preview asks nobody and shows the rewrite, as
    if the mirror had every image. Say so, per container."""
    if_present = {m.host: m for m in config.mirrors if m.policy == "if-present"}
    notes = []
    for container, (old, new) in rewritten.items():
        mirror = if_present.get(new.split("/", 1)[0])
        if mirror is not None:
            notes.append(f"container {container}: {old} is shown as {new}, but {mirror.host} "
                         "is a policy: if-present mirror, which this preview did not ask; in "
                         "the cluster the webhook asks it, and keeps the original image when "
                         "the mirror lacks it or does not answer in time")
    return notes


def _put(doc: Any, path: tuple[str, ...], value: Any) -> Any:
    """A copy of `doc` with `value` at `path`, sharing everything else."""
    if not path:
        return value
    head, *rest = path
    return {**doc, head: _put(doc[head], tuple(rest), value)}
