"""What the webhook's own configurations must say once a replica serves: pure data.

The chart and the kustomize base ship the MutatingWebhookConfiguration and the
ValidatingWebhookConfiguration inert: every entry's namespaceSelector requires that a
namespace lack the `kubernetes.io/metadata.name` label, which the API server sets on
every namespace (1.21+) and puts back if removed, so no namespace is selected and the
API server never calls the webhook; and failurePolicy is Ignore. A replica that serves
turns them on (webhook.adapters.registration) with what this module computes:

- the selector's term on `kubernetes.io/metadata.name` (the inert one, or an older
  exclusion) is replaced by `NotIn` the config's `exclude.namespaces` plus the webhook's
  own namespace: the server and the API server skip the same namespaces, from one list;
  every other term (the platform's own opt-in labels) is kept as it is;
- an entry whose rules include CREATE gets the configured failurePolicy; every other
  entry (pod UPDATE, `pods/ephemeralcontainers`) gets its own, Ignore for the pods: an
  outage must never block a label change or the removal of a finalizer.

Nothing else in the objects is ever changed (the caBundle belongs to the chart or to
cert-manager's cainjector).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Set by the API server on every namespace, equal to its name, and not removable.
NAME_LABEL = "kubernetes.io/metadata.name"
INERT_TERM = {"key": NAME_LABEL, "operator": "DoesNotExist"}
FAILURE_POLICIES = ("Fail", "Ignore")

MUTATING = "mutatingwebhookconfigurations"
VALIDATING = "validatingwebhookconfigurations"


@dataclass(frozen=True, slots=True)
class Target:
    """One of the webhook's own configurations and the failurePolicy of its entries."""

    resource: str                 # MUTATING or VALIDATING
    name: str
    create_policy: str = "Fail"   # entries whose rules include CREATE
    other_policy: str = "Ignore"  # every other entry (UPDATE, ephemeral containers)

    def describe(self) -> str:
        kind = ("MutatingWebhookConfiguration" if self.resource == MUTATING
                else "ValidatingWebhookConfiguration")
        return f"{kind} {self.name}"


def excluded_namespaces(configured: Iterable[str], own_namespace: str | None) -> frozenset[str]:
    """The namespaces the API server must not send: the config's list and the webhook's
    own (its replicas must always be able to start)."""
    return frozenset(configured) | ({own_namespace} if own_namespace else frozenset())


def is_inert(selector: object) -> bool:
    """Whether a namespaceSelector is the shipped one that selects no namespace."""
    terms = selector.get("matchExpressions") if isinstance(selector, Mapping) else None
    return isinstance(terms, list) and any(_is_term(t) and t.get("operator") == "DoesNotExist"
                                           for t in terms)


def active_selector(current: object, excluded: Iterable[str]) -> dict[str, Any]:
    """`current` with its term on the name label replaced by the exclusion (first), the
    other terms and matchLabels kept as they are."""
    current = current if isinstance(current, Mapping) else {}
    terms = current.get("matchExpressions")
    others = [t for t in (terms if isinstance(terms, list) else []) if not _is_term(t)]
    selector: dict[str, Any] = {}
    if isinstance(current.get("matchLabels"), Mapping) and current["matchLabels"]:
        selector["matchLabels"] = dict(current["matchLabels"])
    selector["matchExpressions"] = [
        {"key": NAME_LABEL, "operator": "NotIn", "values": sorted(set(excluded))}, *others]
    return selector


def failure_policy(entry: Mapping[str, Any], target: Target) -> str:
    """CREATE's policy for an entry that admits creations, the other one otherwise."""
    rules = entry.get("rules")
    operations = {op for rule in (rules if isinstance(rules, list) else [])
                  if isinstance(rule, Mapping) for op in rule.get("operations") or ()}
    return target.create_policy if operations & {"CREATE", "*"} else target.other_policy


def changes(configuration: Mapping[str, Any], target: Target,
            excluded: Iterable[str]) -> list[dict[str, Any]]:
    """Per entry that differs from what it must be: its name, selector and failurePolicy
    (a strategic merge patch's `webhooks` list, merged by name). Empty: nothing to do."""
    excluded = frozenset(excluded)
    out: list[dict[str, Any]] = []
    entries = configuration.get("webhooks")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            continue
        selector = active_selector(entry.get("namespaceSelector"), excluded)
        policy = failure_policy(entry, target)
        if (_normal(entry.get("namespaceSelector")) != selector
                or entry.get("failurePolicy") != policy):
            out.append({"name": entry["name"], "namespaceSelector": selector,
                        "failurePolicy": policy})
    return out


def patch_for(configuration: Mapping[str, Any], target: Target,
              excluded: Iterable[str]) -> dict[str, Any] | None:
    """The strategic merge patch that activates `configuration`, or None when it already
    is. It carries the resourceVersion it was computed from: a configuration changed in
    between (an upgrade, another replica) is refused with 409 and read again."""
    entries = changes(configuration, target, excluded)
    if not entries:
        return None
    version = (configuration.get("metadata") or {}).get("resourceVersion")
    metadata = {"resourceVersion": version} if isinstance(version, str) else {}
    return {"metadata": metadata, "webhooks": entries}


def _is_term(term: object) -> bool:
    return isinstance(term, Mapping) and term.get("key") == NAME_LABEL


def _normal(selector: object) -> dict[str, Any]:
    """A selector as `active_selector` writes it, to compare like with like (an empty
    matchLabels is the same as none)."""
    selector = selector if isinstance(selector, Mapping) else {}
    out: dict[str, Any] = {}
    if selector.get("matchLabels"):
        out["matchLabels"] = selector["matchLabels"]
    out["matchExpressions"] = [
        {**t, "values": sorted(t.get("values") or [])} if _is_term(t) and "values" in t else t
        for t in selector.get("matchExpressions") or []]
    return out
