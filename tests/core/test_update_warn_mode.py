"""`onInvalid: warn` on pod UPDATE: an invalid value never stays on the pod, in any dialect.

`kubectl annotate` of an existing pod sends a plain UPDATE. In warn mode an invalid value
the update adds or changes is ignored, with a warning; since the virtual kubelet reads the
annotations, the patch puts the stored pod's value back under that key, or removes the key
when the stored pod had none. A valid change goes through untouched, deny mode still
refuses, and the platform's rules refuse whatever `onInvalid` says. Every answer goes
through the real admission path (patch, self-check, patch scope), is applied with
`jsonpatch` as the API server would, must leave annotations our own parser accepts, and is
sent back as the reinvocation: the second pass changes nothing and refuses nothing.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator, Mapping
from typing import Any

import jsonpatch
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import RunningServer, start_server, stop_server
from tests.core.test_properties import PROPERTY_SETTINGS
from webhook.core.admission.patch import PatchMismatch
from webhook.core.admission.pipeline import admit_offline as admit
from webhook.core.admission.scope import check_patch_scope
from webhook.core.config import load_config
from webhook.core.dialects import DIALECTS
from webhook.core.mutation.context import Context
from webhook.core.mutation.layers import layer_from_annotations

KCI_HTTP = "k8s.ksyun.com/kci-http-registry"
KCI_INSECURE = "k8s.ksyun.com/kci-insecure-registry"
KCI_HOSTS = "k8s.ksyun.com/kci-host-aliases"
KCI_DNS = "k8s.ksyun.com/kci-dns-config"
ECI_HTTP = "k8s.aliyun.com/plain-http-registry"
ECI_INSECURE = "k8s.aliyun.com/insecure-registry"
ECI_HOSTS = "k8s.aliyun.com/eci-custom-hosts"
ECI_DNS = "k8s.aliyun.com/eci-custom-dnsconfig"
CCI_HTTP = "cci.io/http-registries"
CCI_INSECURE = "cci.io/insecure-registries"
EKS_HTTP = "eks.tke.cloud.tencent.com/registry-http-endpoint"
EKS_INSECURE = "eks.tke.cloud.tencent.com/registry-insecure-skip-verify"
EKS_DNS = "eks.tke.cloud.tencent.com/resolv-conf"
SWITCH = "kci-webhook/mirrors"
RECORD = "kci-webhook/original-images"
OWNER = "team.example/owner"     # an annotation the webhook does not read

MIRROR_HOST = "ghcr-mirror.corp.example:5443"
CONFIG = """
dialect: {dialect}
onInvalid: {on_invalid}
mirrors:
  - endpoint: https://ghcr-mirror.corp.example:5443/ghcr
    hosts: [ghcr.io]
    insecureSkipVerify: true
security:
  allowedInsecureRegistries: [harbor.example.com, "*.corp.example"]
"""

LISTS = ("harbor.example.com", "harbor.example.com,team.corp.example")
# key → (a valid value the stored pod has, a valid change, invalid values an update sets)
VALUES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    KCI_HTTP: (*LISTS, ("evil.example.com,", "harbor.example.com,http://x")),
    KCI_INSECURE: (*LISTS, (f"{MIRROR_HOST},http://x", "harbor.example.com:0")),
    KCI_HOSTS: ('[{"ip":"10.1.1.1","hostnames":["team.example"]}]',
                '[{"ip":"10.1.1.2","hostnames":["team.example"]}]',
                ('[{"ip":"10.9.9.9","hostnames":["team.example"],"extra":1}]',
                 '[{"ip":"10.9.9.9","hostnames":["team.example"],"hostnames":["x.example"]}]',
                 "[1")),
    KCI_DNS: ('{"nameservers":["1.1.1.1"]}', '{"nameservers":["8.8.8.8"]}',
              ('{"nameservers":["1.1.1.1"],"bogus":1}', '{"nameservers":["1.2.3"]}')),
    ECI_HTTP: (*LISTS, ("evil.example.com,",)),
    ECI_INSECURE: (*LISTS, (f"{MIRROR_HOST},http://x",)),
    ECI_HOSTS: ('[{"host":"team.example","ip":"10.1.1.1"}]',
                '[{"host":"team.example","ip":"10.1.1.2"}]',
                ('[{"host":"team.example","ip":"10.1.1"}]',
                 '[{"host":"team.example","ip":"10.1.1.1","port":1}]')),
    ECI_DNS: ('{"nameservers":"1.1.1.1"}', '{"nameservers":"8.8.8.8","options":"ndots:2"}',
              ('{"nameservers":["1.1.1.1"]}', '{"nameservers":"1.1.1.1,2.2.2.2,3.3.3.3"}')),
    CCI_HTTP: (*LISTS, ("evil.example.com,", "https://harbor.example.com")),
    CCI_INSECURE: (*LISTS, (f"https://{MIRROR_HOST}/ghcr,http://x",
                            ",".join(f"r{i}.corp.example" for i in range(11)))),
    EKS_HTTP: (*LISTS, ("evil.example.com,",)),
    EKS_INSECURE: (*LISTS, (f"{MIRROR_HOST},http://x",)),
    EKS_DNS: ("nameserver 1.1.1.1", "nameserver 8.8.8.8",
              ("nameserver 1.2.3", "nameserver 1.1.1.1\nsortlist 10.0.0.0/8")),
    SWITCH: ("off", "on", ("maybe", " ")),
}
# Each dialect's own keys, and the mirror switch, which every dialect reads.
KEYS = {name: (*dialect.annotation_keys(), SWITCH) for name, dialect in DIALECTS.items()}
assert {key for keys in KEYS.values() for key in keys} == set(VALUES)

CASES = [pytest.param(dialect, key, invalid, id=f"{dialect}-{key.rsplit('/', 1)[1]}-{n}")
         for dialect, keys in KEYS.items() for key in keys
         for n, invalid in enumerate(VALUES[key][2])]
VALID_CASES = [pytest.param(dialect, key, id=f"{dialect}-{key.rsplit('/', 1)[1]}")
               for dialect, keys in KEYS.items() for key in keys]


def context(dialect: str, on_invalid: str = "warn") -> Context:
    config = load_config(CONFIG.format(dialect=dialect, on_invalid=on_invalid),
                         source="test.yaml")
    return Context(config=config, namespace="team")


def pod(annotations: dict[str, str] | None, image: str = "nginx:1.27") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "namespace": "team", "uid": "pod-uid"}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "app", "image": image}]}}


def changed(stored: dict[str, Any], annotations: Mapping[str, str | None], *,
            image: str | None = None) -> dict[str, Any]:
    """`stored` as `kubectl annotate` (and `kubectl label`, `set image`) sends it back:
    the annotations set (None: removed), a label added."""
    new = copy.deepcopy(stored)
    new["metadata"]["labels"] = {"app": "web"}
    mine = new["metadata"].setdefault("annotations", {})
    for key, value in annotations.items():
        if value is None:
            mine.pop(key, None)
        else:
            mine[key] = value
    if image is not None:
        new["spec"]["containers"][0]["image"] = image
    return new


def review(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "uid-update", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "team", "operation": "UPDATE", "userInfo": {"username": "author"},
        "object": new, "oldObject": old, "dryRun": False}}


def applied(sent: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The pod as the API server stores it: our patch, checked to stay in an UPDATE's
    scope, applied to the object as sent."""
    result = copy.deepcopy(sent["request"]["object"])
    if "patch" not in response:
        return result
    ops = orjson.loads(base64.b64decode(response["patch"]))
    check_patch_scope(ops, "", old=sent["request"]["oldObject"])
    return jsonpatch.apply_patch(result, ops)  # type: ignore[no-any-return]


def update(old: dict[str, Any], new: dict[str, Any], ctx: Context
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer to a plain UPDATE, and the pod the API server would store. The
    reinvocation (our output as the object) is checked on the way: no patch, no refusal,
    no new warning, and nothing left to ignore."""
    sent = review(new, old)
    frozen = copy.deepcopy(sent)
    response = answer(sent, ctx)
    assert sent == frozen                                   # the input is never modified
    result = applied(sent, response)
    if response["allowed"]:
        again = review(result, old)
        second = answer(again, ctx)
        assert second["allowed"] is True, second
        assert "patch" not in second
        warnings = second.get("warnings", [])
        assert set(warnings) <= set(response.get("warnings", []))
        assert not any(w.endswith("(ignored)") or "is invalid" in w for w in warnings)
    return response, result


def answer(sent: dict[str, Any], ctx: Context) -> dict[str, Any]:
    body = orjson.loads(admit(orjson.dumps(sent), context_for=lambda _ns: ctx).body)
    return body["response"]  # type: ignore[no-any-return]


def parses_clean(result: dict[str, Any], dialect: str) -> None:
    """What stays on the pod is what our own parser accepts, in the active dialect."""
    annotations = result["metadata"].get("annotations") or {}
    layer = layer_from_annotations(annotations, level="pod", dialect=DIALECTS[dialect])
    assert layer.problems == (), layer.problems


def only_annotations_put_back(old: dict[str, Any], new: dict[str, Any],
                              result: dict[str, Any], keys: tuple[str, ...]) -> None:
    """The patch touched nothing but `keys`, each now exactly as the stored pod has it."""
    before = old["metadata"].get("annotations") or {}
    after = result["metadata"].get("annotations") or {}
    for key in keys:
        assert after.get(key) == before.get(key)
    rest = copy.deepcopy(result)
    rest_annotations = {k: v for k, v in after.items() if k not in keys}
    sent = {k: v for k, v in (new["metadata"].get("annotations") or {}).items()
            if k not in keys}
    assert rest_annotations == sent
    rest["metadata"]["annotations"] = new["metadata"].get("annotations")
    assert rest == new


# --- the scenarios, in every dialect ---------------------------------------------------------


@pytest.mark.parametrize(("dialect", "key", "invalid"), CASES)
def test_an_invalid_value_added_where_the_pod_had_none_is_removed(
        dialect: str, key: str, invalid: str) -> None:
    stored = pod({OWNER: "web"})
    new = changed(stored, {key: invalid})
    response, result = update(stored, new, context(dialect))
    assert response["allowed"] is True, response
    assert result["metadata"]["annotations"] == {OWNER: "web"}
    assert result["metadata"]["labels"] == {"app": "web"}      # the rest goes through
    only_annotations_put_back(stored, new, result, (key,))
    warnings = response["warnings"]
    assert any(w.startswith(f"{key} (pod)") and w.endswith("(ignored)") for w in warnings)
    assert f"{key} (pod): the update's value is invalid, so the annotation is removed " \
           "(the pod had none)" in warnings
    parses_clean(result, dialect)


@pytest.mark.parametrize(("dialect", "key", "invalid"), CASES)
def test_an_invalid_value_replacing_a_valid_one_is_put_back(
        dialect: str, key: str, invalid: str) -> None:
    valid = VALUES[key][0]
    stored = pod({key: valid})
    new = changed(stored, {key: invalid})
    response, result = update(stored, new, context(dialect))
    assert response["allowed"] is True, response
    assert result["metadata"]["annotations"] == {key: valid}
    only_annotations_put_back(stored, new, result, (key,))
    assert (f"{key} (pod): the update's value is invalid, so the pod keeps the value it had"
            in response["warnings"])
    parses_clean(result, dialect)


@pytest.mark.parametrize(("dialect", "key"), VALID_CASES)
def test_a_valid_change_goes_through_unpatched(dialect: str, key: str) -> None:
    valid, change, _invalid = VALUES[key]
    for old_value, new_value in ((valid, change), (None, change), (valid, None)):
        stored = pod({} if old_value is None else {key: old_value})
        new = changed(stored, {key: new_value})
        response, result = update(stored, new, context(dialect))
        assert response["allowed"] is True, response
        assert "patch" not in response
        assert result == new
        assert not any("is invalid" in w for w in response.get("warnings", []))
        parses_clean(result, dialect)


@pytest.mark.parametrize(("dialect", "key", "invalid"), CASES)
def test_deny_mode_still_refuses_the_update(dialect: str, key: str, invalid: str) -> None:
    stored = pod({key: VALUES[key][0]})
    response, _result = update(stored, changed(stored, {key: invalid}),
                               context(dialect, "deny"))
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(f"{key} (pod)")
    assert "patch" not in response


@pytest.mark.parametrize("dialect", ["kci", "eci", "eks"])
def test_the_pod_is_judged_with_the_value_it_keeps(dialect: str) -> None:
    """An image change in the same update pulls from the insecure mirror: the stored list
    that the pod keeps names the mirror, so the image is rewritten; the invalid text that
    would have named it too never reaches the pod."""
    key = DIALECTS[dialect].insecure_key
    assert key is not None
    stored = pod({key: MIRROR_HOST}, image="ghcr.io/team/app:1")
    new = changed(stored, {key: f"{MIRROR_HOST},http://x"}, image="ghcr.io/team/app:2")
    response, result = update(stored, new, context(dialect))
    assert response["allowed"] is True, response
    assert result["metadata"]["annotations"] == {key: MIRROR_HOST}
    assert result["spec"]["containers"][0]["image"] == f"{MIRROR_HOST}/ghcr/team/app:2"
    parses_clean(result, dialect)


@pytest.mark.parametrize("dialect", ["kci", "eci", "eks", "cci"])
def test_a_switch_made_invalid_keeps_the_stored_switch(dialect: str) -> None:
    """`off` stays off: a typo cannot turn rewriting back on for the next image."""
    stored = pod({SWITCH: "off"}, image="ghcr.io/team/app:1")
    new = changed(stored, {SWITCH: "of"}, image="ghcr.io/team/app:2")
    response, result = update(stored, new, context(dialect))
    assert response["allowed"] is True, response
    assert result["metadata"]["annotations"] == {SWITCH: "off"}
    assert result["spec"]["containers"][0]["image"] == "ghcr.io/team/app:2"


@pytest.mark.parametrize("dialect", ["kci", "eci", "eks"])
def test_the_platforms_rules_refuse_whatever_on_invalid_says(dialect: str) -> None:
    active = DIALECTS[dialect]
    assert active.insecure_key is not None
    stored = pod({})
    for values in ({active.insecure_key: "evil.example.org"},
                   {active.insecure_key: "evil.example.org", SWITCH: "maybe"}):
        response, _result = update(stored, changed(stored, values), context(dialect))
        assert response["allowed"] is False
        assert "'evil.example.org' is not in security.allowedInsecureRegistries" in \
            response["status"]["message"]


@pytest.mark.parametrize("dialect", ["kci", "eci", "eks"])
def test_several_keys_and_the_record_are_put_back_in_one_patch(dialect: str) -> None:
    active = DIALECTS[dialect]
    http, insecure = active.http_key, active.insecure_key
    assert http is not None and insecure is not None
    stored = pod({RECORD: '{"app":"nginx:1.27"}', insecure: "harbor.example.com"})
    new = changed(stored, {RECORD: '{"app":"evil.example/x:1"}', insecure: "harbor.example.com,",
                           http: "evil.example.com,", SWITCH: "maybe", OWNER: "web"})
    response, result = update(stored, new, context(dialect))
    assert response["allowed"] is True, response
    assert result["metadata"]["annotations"] == {
        RECORD: '{"app":"nginx:1.27"}', insecure: "harbor.example.com", OWNER: "web"}
    only_annotations_put_back(stored, new, result, (RECORD, insecure, http, SWITCH))
    parses_clean(result, dialect)


def test_a_stored_pod_without_annotations_loses_the_invalid_one() -> None:
    stored = pod(None)
    new = changed(stored, {KCI_HOSTS: "[1"})
    response, result = update(stored, new, context("kci"))
    assert response["allowed"] is True
    assert result["metadata"]["annotations"] == {}


def test_another_dialects_key_is_not_the_active_ones_to_put_back() -> None:
    """The active dialect reads its own keys; another dialect's is held to the platform's
    rules (and warned about), not parsed as the active dialect's."""
    stored = pod({})
    new = changed(stored, {ECI_HOSTS: '[{"host":"team.example","ip":"10.1.1.1"}]'})
    response, result = update(stored, new, context("kci"))
    assert response["allowed"] is True
    assert "patch" not in response and result == new


# --- the patch scope ---------------------------------------------------------------------------


def test_the_patch_scope_admits_a_kci_key_only_as_the_stored_pod_has_it() -> None:
    path = "/metadata/annotations/k8s.ksyun.com~1kci-host-aliases"
    stored = pod({KCI_HOSTS: VALUES[KCI_HOSTS][0]})
    for op in ({"op": "replace", "path": path, "value": VALUES[KCI_HOSTS][0]},
               {"op": "add", "path": path, "value": VALUES[KCI_HOSTS][0]}):
        check_patch_scope([op], "", old=stored)
    check_patch_scope([{"op": "remove", "path": path}], "", old=pod({}))
    for op, old in (
            ({"op": "replace", "path": path, "value": VALUES[KCI_HOSTS][1]}, stored),
            ({"op": "add", "path": path, "value": VALUES[KCI_HOSTS][0]}, pod({})),
            ({"op": "remove", "path": path}, stored),
            ({"op": "add", "path": "/metadata/annotations/team.example~1owner",
              "value": "web"}, pod({OWNER: "web"})),
            ({"op": "add", "path": "/metadata/annotations",
              "value": {KCI_HOSTS: VALUES[KCI_HOSTS][0], OWNER: "web"}},
             pod({KCI_HOSTS: VALUES[KCI_HOSTS][0], OWNER: "web"}))):
        with pytest.raises(PatchMismatch):
            check_patch_scope([op], "", old=old)
    with pytest.raises(PatchMismatch):     # annotations never change through the subresource
        check_patch_scope([{"op": "replace", "path": path, "value": VALUES[KCI_HOSTS][0]}],
                          "ephemeralcontainers", old=stored)


# --- a property: whatever an update sets, what stays parses ---------------------------------


@st.composite
def updates(draw: st.DrawFn) -> tuple[str, dict[str, str], dict[str, str | None]]:
    """A dialect, a stored pod's valid annotations, and an update's changes to them:
    any of the dialect's keys set valid, set invalid, removed or left alone."""
    dialect = draw(st.sampled_from(sorted(KEYS)))
    stored: dict[str, str] = {}
    changes: dict[str, str | None] = {}
    for key in KEYS[dialect]:
        valid, change, invalid = VALUES[key]
        if draw(st.booleans()):
            stored[key] = valid
        choice = draw(st.sampled_from(["keep", "valid", "invalid", "remove"]))
        if choice == "valid":
            changes[key] = change
        elif choice == "invalid":
            changes[key] = draw(st.sampled_from(invalid))
        elif choice == "remove":
            changes[key] = None
    return dialect, stored, changes


@PROPERTY_SETTINGS
@given(updates(), st.sampled_from(["nginx:1.27", "ghcr.io/team/app:2"]))
def test_what_an_update_leaves_on_the_pod_parses(
        case: tuple[str, dict[str, str], dict[str, str | None]], image: str) -> None:
    dialect, annotations, changes = case
    stored = pod(annotations, image="ghcr.io/team/app:1")
    new = changed(stored, changes, image=image)
    response, result = update(stored, new, context(dialect))
    assert response["allowed"] is True, response     # nothing here breaks a platform rule
    parses_clean(result, dialect)
    after = result["metadata"]["annotations"]
    for key, value in changes.items():
        if value is not None and value not in (VALUES[key][0], VALUES[key][1]):
            assert after.get(key) == annotations.get(key)   # invalid: as the pod had it
        else:
            assert after.get(key) == new["metadata"]["annotations"].get(key)


# --- end to end: the real server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def warn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("update-warn"),
                           CONFIG.format(dialect="eci", on_invalid="warn"))
    yield running
    stop_server(running)


def test_kubectl_annotate_with_an_invalid_value_over_tls(warn_server: RunningServer) -> None:
    """The real `kci-webhook serve`, eci dialect, warn mode: the patch puts the stored
    hosts back and removes the added insecure list; the API server's reinvocation and the
    next update (our output stored, then sent again) are not patched."""
    stored = pod({ECI_HOSTS: VALUES[ECI_HOSTS][0]})
    new = changed(stored, {ECI_HOSTS: '[{"host":"team.example","ip":"10.1.1.1","port":1}]',
                           ECI_INSECURE: f"{MIRROR_HOST},http://x"})
    sent = review(new, stored)
    reply = warn_server.review(sent)
    assert reply.status_code == 200, reply.text
    response = reply.json()["response"]
    assert response["uid"] == "uid-update" and response["allowed"] is True
    result = applied(sent, response)
    assert result["metadata"]["annotations"] == {ECI_HOSTS: VALUES[ECI_HOSTS][0]}
    assert result["metadata"]["labels"] == {"app": "web"}
    parses_clean(result, "eci")
    assert any(w.startswith(f"{ECI_INSECURE} (pod)") for w in response["warnings"])
    for old in (stored, result):     # reinvocation, then the next update of the stored pod
        again = warn_server.review(review(copy.deepcopy(result), old)).json()["response"]
        assert again["allowed"] is True and "patch" not in again
