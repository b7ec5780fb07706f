"""What `plan` reads from a cluster, as units of work: (namespace, kind, name, pod).

A Pod is its own unit; a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob
stands for the pods its next rollout creates, so its unit is its pod template made a Pod
(`webhook.core.admission.workloads.template_as_pod`, as `/validate` and `mutate` see it).
A ReplicaSet or a Job that a controller owns (a Deployment's, a CronJob's) is left out: its
owner's template is the one that will be used again.

Reading is namespace by namespace when the user may not list a kind across the cluster,
and a namespace the user may not read (403 on any of its lists) is skipped whole, with the
API server's words: a partial namespace would look healthier than it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from webhook.adapters.cluster import RESOURCES, Cluster, ClusterError, Forbidden, NotFound
from webhook.core.admission.workloads import pod_template, template_as_pod

# A note of progress: (what is being read, objects read so far)
Note = Callable[[str, int], None]


@dataclass(frozen=True)
class Unit:
    """One pod, or one workload's pod template as the Pod it becomes."""

    namespace: str
    kind: str
    name: str
    pod: dict[str, Any]


@dataclass
class Snapshot:
    """What was read: the Namespaces by name, the units, the namespaces skipped (name →
    why), and what could be read only in part."""

    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    units: list[Unit] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def units_of(kind: str, items: Iterable[dict[str, Any]]) -> Iterator[Unit]:
    """The units of listed objects of one kind, in list order (see the module docstring)."""
    for item in items:
        meta = item.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "?")
        if kind == "Pod":
            yield Unit(namespace, kind, name, item)
            continue
        if kind in ("ReplicaSet", "Job") and _controlled(meta):
            continue
        template = pod_template(item, kind)
        if template is not None:
            yield Unit(namespace, kind, name, template_as_pod(template, namespace))


def _controlled(meta: dict[str, Any]) -> bool:
    owners = meta.get("ownerReferences")
    return isinstance(owners, list) and any(
        isinstance(owner, dict) and owner.get("controller") for owner in owners)


def read(cluster: Cluster, *, namespace: str | None,
         progress: Note | None = None) -> Snapshot:
    """The Namespaces and units of one namespace, or of all (`namespace` None). Raises
    ClusterError when the cluster cannot be read, or `namespace` does not exist."""
    note = progress or (lambda _what, _count: None)
    snapshot = Snapshot()
    if namespace is not None:
        try:
            snapshot.namespaces[namespace] = cluster.namespace(namespace)
        except NotFound:
            raise ClusterError(f"namespace {namespace} not found") from None
        except Forbidden as exc:   # a namespace's own Role never grants the Namespace
            snapshot.warnings.append(f"{exc}: planned without its annotations (its "
                                     "defaults, mirror switch and dialect)")
        names = [namespace]
    else:
        try:
            listed = cluster.namespaces()
        except Forbidden as exc:
            raise ClusterError(f"{exc}: without the right to list Namespaces, name one "
                               "with -n") from None
        for item in listed:
            name = (item.get("metadata") or {}).get("name")
            if isinstance(name, str):
                snapshot.namespaces[name] = item
        names = sorted(snapshot.namespaces)
    units: list[Unit] = []
    for kind in RESOURCES:
        units += _read_kind(cluster, kind, names, all_namespaces=namespace is None,
                            skipped=snapshot.skipped, note=note)
    order = list(RESOURCES)
    snapshot.units = sorted((unit for unit in units if unit.namespace not in snapshot.skipped),
                            key=lambda u: (u.namespace, order.index(u.kind), u.name))
    return snapshot


def _read_kind(cluster: Cluster, kind: str, names: list[str], *, all_namespaces: bool,
               skipped: dict[str, str], note: Note) -> list[Unit]:
    """One kind: across the cluster when allowed, else namespace by namespace."""
    plural = RESOURCES[kind][1]
    units: list[Unit] = []
    if all_namespaces:
        try:
            for unit in units_of(kind, cluster.objects(kind)):
                units.append(unit)
                if len(units) % 200 == 0:
                    note(plural, len(units))
            note(plural, len(units))
            return [unit for unit in units if unit.namespace in names]
        except Forbidden:
            units = []   # not across the cluster: namespace by namespace, as allowed
    for name in names:
        if name in skipped:
            continue
        try:
            units += units_of(kind, cluster.objects(kind, name))
        except Forbidden as exc:
            skipped[name] = str(exc)
        note(plural, len(units))
    return units
