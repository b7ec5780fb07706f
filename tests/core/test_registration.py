"""What a serving replica writes into its own webhook configurations (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.core.registration import (
    INERT_TERM,
    MUTATING,
    VALIDATING,
    Target,
    active_selector,
    changes,
    excluded_namespaces,
    failure_policy,
    is_inert,
    patch_for,
)

NAME = {"key": "kubernetes.io/metadata.name"}
TEAM = {"key": "team", "operator": "Exists"}
MUTATING_TARGET = Target(MUTATING, "kci-webhook", "Fail", "Ignore")


def entry(name: str, operations: list[str], selector: dict[str, Any],
          policy: str = "Ignore") -> dict[str, Any]:
    return {"name": name, "failurePolicy": policy, "namespaceSelector": selector,
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": operations,
                       "resources": ["pods"], "scope": "Namespaced"}],
            "clientConfig": {"service": {"name": "kci-webhook", "namespace": "kci-webhook"}}}


def test_excluded_namespaces_add_the_webhooks_own() -> None:
    assert excluded_namespaces({"kube-system"}, "infra") == {"kube-system", "infra"}
    assert excluded_namespaces({"kube-system"}, None) == {"kube-system"}


@pytest.mark.parametrize(("current", "expected"), [
    ({"matchExpressions": [INERT_TERM]},
     {"matchExpressions": [{**NAME, "operator": "NotIn", "values": ["a", "b"]}]}),
    # An older exclusion is replaced, not added to.
    ({"matchExpressions": [{**NAME, "operator": "NotIn", "values": ["old"]}, TEAM]},
     {"matchExpressions": [{**NAME, "operator": "NotIn", "values": ["a", "b"]}, TEAM]}),
    # The platform's own terms and labels are kept as they are.
    ({"matchLabels": {"kci": "on"}, "matchExpressions": [TEAM, INERT_TERM]},
     {"matchLabels": {"kci": "on"},
      "matchExpressions": [{**NAME, "operator": "NotIn", "values": ["a", "b"]}, TEAM]}),
    ({}, {"matchExpressions": [{**NAME, "operator": "NotIn", "values": ["a", "b"]}]}),
    (None, {"matchExpressions": [{**NAME, "operator": "NotIn", "values": ["a", "b"]}]}),
], ids=["inert", "stale", "extra-terms", "empty", "absent"])
def test_active_selector(current: Any, expected: dict[str, Any]) -> None:
    assert active_selector(current, {"b", "a"}) == expected
    assert not is_inert(expected)


def test_is_inert() -> None:
    assert is_inert({"matchExpressions": [TEAM, INERT_TERM]})
    assert not is_inert({"matchExpressions": [TEAM]}) and not is_inert(None)


@pytest.mark.parametrize(("operations", "policy"), [
    (["CREATE"], "Fail"), (["CREATE", "UPDATE"], "Fail"), (["*"], "Fail"),
    (["UPDATE"], "Ignore"), ([], "Ignore"),
])
def test_creation_gets_its_policy_and_everything_else_the_other(operations: list[str],
                                                                policy: str) -> None:
    assert failure_policy(entry("e", operations, {}), MUTATING_TARGET) == policy


def test_an_inert_configuration_is_patched_by_entry_name_and_version() -> None:
    configuration = {"metadata": {"name": "kci-webhook", "resourceVersion": "7"}, "webhooks": [
        entry("create", ["CREATE"], {"matchExpressions": [INERT_TERM]}),
        entry("update", ["UPDATE"], {"matchExpressions": [INERT_TERM, TEAM]})]}
    active = {**NAME, "operator": "NotIn", "values": ["kube-system"]}
    assert patch_for(configuration, MUTATING_TARGET, {"kube-system"}) == {
        "metadata": {"resourceVersion": "7"}, "webhooks": [
            {"name": "create", "failurePolicy": "Fail",
             "namespaceSelector": {"matchExpressions": [active]}},
            {"name": "update", "failurePolicy": "Ignore",
             "namespaceSelector": {"matchExpressions": [active, TEAM]}}]}


def test_an_active_configuration_needs_no_patch_whatever_the_order_of_its_values() -> None:
    active = {**NAME, "operator": "NotIn", "values": ["kube-system", "a"]}
    configuration = {"metadata": {"resourceVersion": "8"}, "webhooks": [
        entry("create", ["CREATE"], {"matchExpressions": [active], "matchLabels": {}}, "Fail"),
        entry("update", ["UPDATE"], {"matchExpressions": [active]}, "Ignore")]}
    assert changes(configuration, MUTATING_TARGET, {"a", "kube-system"}) == []
    assert patch_for(configuration, MUTATING_TARGET, {"a", "kube-system"}) is None
    # One entry off (a policy changed by hand): only that entry is patched.
    configuration["webhooks"][1]["failurePolicy"] = "Fail"
    assert [e["name"] for e in changes(configuration, MUTATING_TARGET,
                                       {"a", "kube-system"})] == ["update"]


def test_the_validating_entry_gets_its_own_policy() -> None:
    target = Target(VALIDATING, "kci-webhook", "Fail", "Fail")
    configuration = {"webhooks": [entry("validate", ["CREATE", "UPDATE"],
                                        {"matchExpressions": [INERT_TERM]})]}
    (change,) = changes(configuration, target, {"kube-system"})
    assert change["failurePolicy"] == "Fail"
    assert target.describe() == "ValidatingWebhookConfiguration kci-webhook"
