"""What `plan` prints: `--fail-on` read as a set of findings, the JSON and YAML that read
back into the same plan, the comparison of two plans, the table's layout."""

from __future__ import annotations

import argparse
import json

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from webhook.tools.plan.command import fail_on
from webhook.tools.plan.findings import FINDINGS, Row
from webhook.tools.plan.render import (
    Plan,
    compare,
    comparison_data,
    dump,
    plan_data,
    plan_from_data,
    plan_table,
)


def plans_of(text: st.SearchStrategy[str]) -> st.SearchStrategy[Plan]:
    rows = st.builds(
        Row, namespace=text, kind=st.sampled_from(["Pod", "Deployment", "CronJob"]),
        name=text, container=text, role=st.sampled_from(["container", "init", "ephemeral"]),
        image=text, after=text, finding=st.sampled_from(FINDINGS), detail=text,
        also=st.lists(st.sampled_from(FINDINGS), max_size=2).map(tuple))
    return st.builds(Plan, config=text, rows=st.lists(rows, max_size=8),
                     skipped=st.dictionaries(text, text, max_size=3))


# YAML's own limit: it cannot carry control characters (names, images, paths and the API
# server's messages have none); JSON carries anything.
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                    min_size=1, max_size=20)


@given(st.lists(st.sampled_from(FINDINGS), max_size=7), st.sampled_from([",", " , ", ",,"]))
@example([], ",")
def test_fail_on_reads_any_list_of_findings(chosen: list[str], separator: str) -> None:
    assert fail_on(separator.join(chosen)) == frozenset(chosen)


@given(st.text(max_size=30).filter(lambda t: any(
    part.strip() and part.strip() not in FINDINGS for part in t.split(","))))
@example("deny,missing")
@example("Deny")
def test_fail_on_refuses_what_is_not_a_finding(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="unknown finding"):
        fail_on(value)


@given(plans_of(st.text(max_size=20)))
def test_a_plan_reads_back_from_its_json(plan: Plan) -> None:
    assert plan_from_data(json.loads(dump(plan_data(plan), "json"))) == plan


@given(plans_of(printable))
def test_a_plan_reads_back_from_its_yaml(plan: Plan) -> None:
    assert plan_from_data(yaml.safe_load(dump(plan_data(plan), "yaml"))) == plan


def test_only_a_plan_reads_back() -> None:
    with pytest.raises(ValueError, match="not a kci-webhook plan"):
        plan_from_data({"kind": "PlanComparison", "rows": []})


def row(name: str, finding: str, after: str = "nginx") -> Row:
    return Row("team-a", "Pod", name, "c0", "container", "nginx", after, finding)


def test_a_comparison_holds_the_rows_that_differ_with_both_sides() -> None:
    current = Plan("a.yaml", [row("p", "unchanged"), row("q", "unchanged")])
    candidate = Plan("b.yaml", [row("p", "unchanged"), row("q", "rewrite", "m:5000/nginx")],
                     {"locked": "forbidden"})
    data = comparison_data(compare(current, candidate))
    assert data["configs"] == {"current": "a.yaml", "candidate": "b.yaml"}
    assert data["rows"] == [{
        "namespace": "team-a", "kind": "Pod", "name": "q", "container": "c0",
        "role": "container", "image": "nginx",
        "current": {"after": "nginx", "finding": "unchanged", "detail": "", "also": []},
        "candidate": {"after": "m:5000/nginx", "finding": "rewrite", "detail": "",
                      "also": []}}]
    assert data["skipped"] == [{"namespace": "locked", "reason": "forbidden"}]


def test_the_table_is_aligned_and_marks_an_unchanged_image() -> None:
    table = plan_table(Plan("c", [
        Row("team-a", "Pod", "web", "app", "container", "nginx", "m:5000/hub/nginx",
            "rewrite"),
        Row("team-a", "Deployment", "api", "init", "init", "busybox", "busybox",
            "unchanged")]))
    assert table.splitlines()[:3] == [
        "NAMESPACE   KIND         NAME   CONTAINER     IMAGE     AFTER              FINDING"
        "     DETAIL",
        "team-a      Pod          web    app           nginx     m:5000/hub/nginx   rewrite",
        "team-a      Deployment   api    init (init)   busybox   =                  unchanged",
    ]
