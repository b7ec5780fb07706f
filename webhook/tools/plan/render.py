"""What `plan` prints: a table for people, JSON or YAML for tools; and the summaries.

A plan is one object (`kind: Plan`): its rows, the namespaces skipped and why, a summary
per namespace and in all. A comparison (`--compare`) is `kind: PlanComparison`: only the
rows whose image after or finding differ under the two configs, each with both sides.
JSON and YAML hold the same object; `plan_from_data` reads it back (the JSON round-trips).
The table is plain aligned text (no colour, no box): it is read in terminals and in CI logs,
and grepped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import yaml

from webhook.tools.plan.findings import FINDINGS, Row

API_VERSION = "kci-webhook/v1"
SUFFIX = {"init": " (init)", "ephemeral": " (ephemeral)"}


@dataclass
class Plan:
    config: str
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One container whose outcome differs between the two configs."""

    current: Row
    candidate: Row


@dataclass
class Comparison:
    current: str
    candidate: str
    changes: list[Change] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def compare(current: Plan, candidate: Plan) -> Comparison:
    """The rows that differ (image after, finding, or its detail), in the current's order."""
    theirs = {row.key: row for row in candidate.rows}
    changes = [Change(row, theirs[row.key]) for row in current.rows
               if row.key in theirs and _outcome(row) != _outcome(theirs[row.key])]
    return Comparison(current.config, candidate.config, changes,
                      {**current.skipped, **candidate.skipped})


def _outcome(row: Row) -> tuple[str, str, str, tuple[str, ...]]:
    return (row.after, row.finding, row.detail, row.also)


# --- summaries ------------------------------------------------------------------------------


def counts(rows: Iterable[Row]) -> dict[str, dict[str, int]]:
    """namespace → finding → containers, findings in their order of severity."""
    by: dict[str, Counter[str]] = {}
    for row in rows:
        by.setdefault(row.namespace, Counter())[row.finding] += 1
    return {ns: {f: by[ns][f] for f in FINDINGS if by[ns][f]} for ns in sorted(by)}


def summary_lines(plan: Plan) -> list[str]:
    """A line per namespace, one per skipped namespace, and one in all."""
    per = counts(plan.rows)
    lines = [f"{ns}: {_counted(c)}" for ns, c in per.items()]
    lines += [f"{ns}: skipped: {why}" for ns, why in sorted(plan.skipped.items())]
    total: Counter[str] = Counter()
    for c in per.values():
        total.update(c)
    ordered = {f: total[f] for f in FINDINGS if total[f]}
    skipped = f", {len(plan.skipped)} skipped" if plan.skipped else ""
    lines.append(f"in all: {_counted(ordered)} in {len(per)} namespace"
                 f"{'' if len(per) == 1 else 's'}{skipped}")
    return lines


def comparison_lines(comparison: Comparison) -> list[str]:
    by: dict[str, Counter[str]] = {}
    for change in comparison.changes:
        move = f"{change.current.finding} -> {change.candidate.finding}"
        by.setdefault(change.current.namespace, Counter())[move] += 1
    lines = [f"{ns}: " + ", ".join(f"{n} {move}" for move, n in sorted(c.items()))
             for ns, c in sorted(by.items())]
    lines += [f"{ns}: skipped: {why}" for ns, why in sorted(comparison.skipped.items())]
    lines.append(f"in all: {len(comparison.changes)} container"
                 f"{'' if len(comparison.changes) == 1 else 's'} differ"
                 f"{'s' if len(comparison.changes) == 1 else ''} in {len(by)} namespace"
                 f"{'' if len(by) == 1 else 's'}")
    return lines


def _counted(c: Mapping[str, int]) -> str:
    total = sum(c.values())
    parts = ", ".join(f"{n} {f}" for f, n in c.items())
    return f"{total} container{'' if total == 1 else 's'}" + (f" ({parts})" if parts else "")


# --- data: JSON and YAML --------------------------------------------------------------------


def plan_data(plan: Plan) -> dict[str, Any]:
    per = counts(plan.rows)
    total: Counter[str] = Counter()
    for c in per.values():
        total.update(c)
    return {"apiVersion": API_VERSION, "kind": "Plan", "config": plan.config,
            "rows": [_row_data(row) for row in plan.rows],
            "skipped": [{"namespace": ns, "reason": why}
                        for ns, why in sorted(plan.skipped.items())],
            "summary": {"namespaces": per,
                        "total": {f: total[f] for f in FINDINGS if total[f]}}}


def comparison_data(comparison: Comparison) -> dict[str, Any]:
    def side(row: Row) -> dict[str, Any]:
        return {"after": row.after, "finding": row.finding, "detail": row.detail,
                "also": list(row.also)}
    rows = [{**{k: v for k, v in _row_data(c.current).items()
                if k not in ("after", "finding", "detail", "also")},
             "current": side(c.current), "candidate": side(c.candidate)}
            for c in comparison.changes]
    return {"apiVersion": API_VERSION, "kind": "PlanComparison",
            "configs": {"current": comparison.current, "candidate": comparison.candidate},
            "rows": rows,
            "skipped": [{"namespace": ns, "reason": why}
                        for ns, why in sorted(comparison.skipped.items())]}


def _row_data(row: Row) -> dict[str, Any]:
    data = asdict(row)
    data["also"] = list(row.also)
    return data


def plan_from_data(data: Mapping[str, Any]) -> Plan:
    """A plan read back from its JSON or YAML (`plan_data`). Raises ValueError for
    anything else."""
    if data.get("kind") != "Plan" or not isinstance(data.get("rows"), list):
        raise ValueError("not a kci-webhook plan (kind: Plan with rows)")
    rows = [Row(**{**item, "also": tuple(item.get("also") or ())}) for item in data["rows"]]
    skipped = {item["namespace"]: item["reason"] for item in data.get("skipped") or ()}
    return Plan(str(data.get("config", "")), rows, skipped)


def dump(data: Any, output: str) -> str:
    if output == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000)


# --- the table ------------------------------------------------------------------------------


def plan_table(plan: Plan) -> str:
    header = ("NAMESPACE", "KIND", "NAME", "CONTAINER", "IMAGE", "AFTER", "FINDING", "DETAIL")
    body = [(r.namespace, r.kind, r.name, r.container + SUFFIX.get(r.role, ""), r.image,
             "=" if r.after == r.image else r.after, _finding(r), r.detail)
            for r in plan.rows]
    return _table(header, body) + "\n" + "\n".join(summary_lines(plan)) + "\n"


def comparison_table(comparison: Comparison) -> str:
    header = ("NAMESPACE", "KIND", "NAME", "CONTAINER", "IMAGE", "AFTER (CURRENT)",
              "FINDING (CURRENT)", "AFTER (CANDIDATE)", "FINDING (CANDIDATE)", "DETAIL")
    body = []
    for change in comparison.changes:
        a, b = change.current, change.candidate
        body.append((a.namespace, a.kind, a.name, a.container + SUFFIX.get(a.role, ""),
                     a.image, "=" if a.after == a.image else a.after, _finding(a),
                     "=" if b.after == b.image else b.after, _finding(b),
                     b.detail or a.detail))
    return _table(header, body) + "\n" + "\n".join(comparison_lines(comparison)) + "\n"


def _finding(row: Row) -> str:
    return "+".join(row.classes)


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """kubectl's layout: columns three spaces apart, the last one unpadded."""
    if not body:
        return "no containers\n"
    rows = [header, *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["   ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)),
                         row[-1]]).rstrip() for row in rows]
    return "\n".join(lines) + "\n"
