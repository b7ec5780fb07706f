"""The targeted diff and the self-check that guards every patch we send."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from webhook.core.admission.patch import PatchMismatch, apply, check, diff

BASE: dict[str, Any] = {"metadata": {"annotations": {"a/b": "1", "t~x": "2"}},
                        "spec": {"containers": [{"image": "x"}, {"image": "y"}]}}

DIFFS = [
    # (id, change applied to a copy of BASE, expected ops)
    ("escape-slash", lambda d: d["metadata"]["annotations"].update({"a/b": "9"}),
     [{"op": "replace", "path": "/metadata/annotations/a~1b", "value": "9"}]),
    ("escape-tilde", lambda d: d["metadata"]["annotations"].update({"t~x": "9"}),
     [{"op": "replace", "path": "/metadata/annotations/t~0x", "value": "9"}]),
    ("add-key", lambda d: d["metadata"]["annotations"].update({"k8s.io/new": "v"}),
     [{"op": "add", "path": "/metadata/annotations/k8s.io~1new", "value": "v"}]),
    ("remove-key", lambda d: d["metadata"]["annotations"].pop("a/b"),
     [{"op": "remove", "path": "/metadata/annotations/a~1b"}]),
    ("list-item", lambda d: d["spec"]["containers"][1].update({"image": "z"}),
     [{"op": "replace", "path": "/spec/containers/1/image", "value": "z"}]),
    ("list-grows", lambda d: d["spec"]["containers"].append({"image": "w"}),
     [{"op": "replace", "path": "/spec/containers",
       "value": [{"image": "x"}, {"image": "y"}, {"image": "w"}]}]),
    ("missing-map", lambda d: d.update({"status": {"phase": "Pending"}}),
     [{"op": "add", "path": "/status", "value": {"phase": "Pending"}}]),
    ("type-change", lambda d: d["metadata"].update({"annotations": None}),
     [{"op": "replace", "path": "/metadata/annotations", "value": None}]),
]


@pytest.mark.parametrize(("change", "expected"), [d[1:] for d in DIFFS],
                         ids=[d[0] for d in DIFFS])
def test_diff_produces_rfc6902_ops(change: Any, expected: list[dict[str, Any]]) -> None:
    target = copy.deepcopy(BASE)
    change(target)
    ops = diff(BASE, target)
    assert ops == expected
    assert jsonpatch.apply_patch(copy.deepcopy(BASE), ops) == target
    check(BASE, ops, target)


def test_identical_objects_give_no_ops() -> None:
    assert diff(BASE, BASE) == [] and diff(BASE, copy.deepcopy(BASE)) == []


BROKEN = [
    ("wrong-path", [{"op": "replace", "path": "/spec/containers/0/image", "value": "z"}]),
    ("replace-missing", [{"op": "replace", "path": "/metadata/labels", "value": {}}]),
    ("remove-missing", [{"op": "remove", "path": "/metadata/labels"}]),
    ("index-out-of-range", [{"op": "replace", "path": "/spec/containers/5/image",
                             "value": "z"}]),
    ("parent-missing", [{"op": "add", "path": "/nope/x", "value": 1}]),
    ("into-a-string", [{"op": "add", "path": "/spec/containers/0/image/x", "value": 1}]),
    ("bad-index", [{"op": "replace", "path": "/spec/containers/x/image", "value": "z"}]),
]


@pytest.mark.parametrize("ops", [b[1] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_check_refuses_a_patch_that_does_not_give_the_intended_object(
        ops: list[dict[str, Any]]) -> None:
    intended = copy.deepcopy(BASE)
    intended["spec"]["containers"][1]["image"] = "z"
    with pytest.raises(PatchMismatch):
        check(BASE, ops, intended)


def test_check_never_touches_the_original() -> None:
    snapshot = copy.deepcopy(BASE)
    target = copy.deepcopy(BASE)
    target["spec"]["containers"][0]["image"] = "new"
    target["metadata"]["annotations"]["x"] = "y"
    check(BASE, diff(BASE, target), target)
    assert snapshot == BASE


def test_apply_list_operations() -> None:
    assert apply({"l": [1, 2]}, [{"op": "add", "path": "/l/-", "value": 3},
                                 {"op": "add", "path": "/l/0", "value": 0},
                                 {"op": "remove", "path": "/l/1"}]) == {"l": [0, 2, 3]}


def test_apply_never_touches_the_document_nor_the_ops_values() -> None:
    """Whatever the ops remove or replace first, later ops write to copies: not to the
    received document, nor to a value an earlier op put in (it is shared with the
    mutation's own result)."""
    document = {"a": {"x": 1}, "b": {"y": [1, 2]}, "c": {"z": 1}}
    snapshot = copy.deepcopy(document)
    value = {"v": {"w": 1}}
    value_snapshot = copy.deepcopy(value)
    ops = [{"op": "remove", "path": "/a"},
           {"op": "replace", "path": "/c/z", "value": 2},
           {"op": "remove", "path": "/b/y/0"},
           {"op": "add", "path": "/d", "value": value},
           {"op": "replace", "path": "/d/v/w", "value": 3}]
    result = apply(document, ops)
    assert result == {"b": {"y": [2]}, "c": {"z": 2}, "d": {"v": {"w": 3}}}
    assert document == snapshot
    assert value == value_snapshot


def test_apply_copies_a_whole_document_replacement_before_writing_to_it() -> None:
    new = {"k": {"n": 1}}
    result = apply({"old": 1}, [{"op": "replace", "path": "", "value": new},
                                {"op": "replace", "path": "/k/n", "value": 2}])
    assert result == {"k": {"n": 2}}
    assert new == {"k": {"n": 1}}


def test_apply_refuses_a_path_that_is_not_a_pointer() -> None:
    with pytest.raises(ValueError, match="does not start with /"):
        apply({"a": 1}, [{"op": "replace", "path": "a", "value": 2}])
