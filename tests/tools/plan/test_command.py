"""`kci-webhook plan` end to end: the command as a user runs it, the real `kubernetes`
client against the API server stand-in (Lists shaped and paged as the API server sends
them), the real test registry (TLS with our CA, htpasswd) as the mirror, a loopback server
that never answers as a mirror that hangs.

One cluster holds a container of every finding; each test asks what it names.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver_standin import StandIn, running_standin
from tests.builders import kubeconfig, workload
from tests.registry_support import (
    Registry,
    SilentServer,
    registry_fixture,  # noqa: F401 - the `registry` fixture
)
from webhook import cli
from webhook.adapters import cluster as cluster_module
from webhook.tools.plan.render import plan_data, plan_from_data

HUNG = "0.5"   # --registry-timeout for the mirror that never answers


@dataclass
class Setup:
    state: StandIn
    kubeconfig: Path
    config: Path          # docker.io → the registry (always, pullSecret); gcr.io → silent
    plain: Path           # no mirror at all
    registry: Registry
    silent: SilentServer


def secret(namespace: str, name: str = "mirror-pull") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": name, "namespace": namespace},
            "data": {".dockerconfigjson": "e30="}}


def mirror_config(registry: Registry, silent: SilentServer, tmp_path: Path, *,
                  policy: str = "always") -> str:
    credentials = registry.docker_config(tmp_path / "mirror-credentials.json")
    return yaml.safe_dump({"mirrors": [
        {"endpoint": registry.url, "hosts": ["docker.io"], "pullSecret": "mirror-pull",
         "caFile": str(registry.ca_file), "pullCredentialConfigPath": str(credentials),
         "policy": policy},
        {"endpoint": f"https://{silent.host}", "hosts": ["gcr.io"]}]})


@pytest.fixture
def setup(registry: Registry, tmp_path: Path) -> Iterator[Setup]:
    with running_standin() as (state, api), SilentServer() as silent:
        for name in ("team-a", "team-b", "team-c", "team-d", "kube-system"):
            state.set(name, event=None)
        state.put(secret("team-a"))
        state.forbidden_reads.add(("team-c", "Secret"))
        put = state.put
        put(workload("Pod", "web", "kci/app:1.0", namespace="team-a", init=("quay.io/x/y:1",)))
        put(workload("Pod", "gone", "kci/nothere:1.0", namespace="team-a"))
        put(workload("Pod", "debugged", "quay.io/x/y:1", namespace="team-a",
                     ephemeral=("kci/app:1.0",), imagePullSecrets=[{"name": "mirror-pull"}]))
        put(workload("Deployment", "hung", "gcr.io/x/z:1", namespace="team-a"))
        put(workload("ReplicaSet", "web-5d4f", "kci/app:1.0", namespace="team-a",
                     owner="Deployment"))
        put(workload("StatefulSet", "db", "kci/app:1.0", namespace="team-b"))
        put(workload("DaemonSet", "agent", "kci/app:1.0", namespace="team-c"))
        put(workload("CronJob", "nightly", "kci/app:1.0", namespace="team-d",
                     annotations={"k8s.ksyun.com/kci-host-aliases": '[{"ip": "1.2.3"}]'}))
        put(workload("Job", "nightly-29", "kci/app:1.0", namespace="team-d", owner="CronJob"))
        put(workload("Job", "once", "quay.io/x/y:1", namespace="team-d"))
        put(workload("Pod", "coredns", "kci/app:1.0", namespace="kube-system"))
        config = tmp_path / "config.yaml"
        config.write_text(mirror_config(registry, silent, tmp_path))
        plain = tmp_path / "plain.yaml"
        plain.write_text("mirrors: []\n")
        yield Setup(state, kubeconfig(tmp_path / "kubeconfig",
                                      api.api_client.configuration.host),
                    config, plain, registry, silent)


def plan(setup: Setup, capsys: pytest.CaptureFixture[str], *args: str,
         config: Path | None = None, served: bool = False) -> tuple[int, str, str]:
    """Run the command; `served`: with no --config (the ConfigMap's), else `config` or
    the setup's."""
    chosen = [] if served else ["--config", str(config or setup.config)]
    code = cli.main(["plan", "--kubeconfig", str(setup.kubeconfig), "--registry-timeout",
                     HUNG, *chosen, *args])
    out, err = capsys.readouterr()
    return code, out, err


def findings(out: str) -> dict[tuple[str, str, str], tuple[str, str, str]]:
    """(namespace, name, container) → (image after, finding, detail), from -o json."""
    data = json.loads(out)
    return {(r["namespace"], r["name"], r["container"]): (r["after"], r["finding"], r["detail"])
            for r in data["rows"]}


# --- each finding -----------------------------------------------------------------------


def test_every_finding_class_on_its_container(setup: Setup,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = plan(setup, capsys, "-o", "json")
    rows = findings(out)
    mirror = setup.registry.host
    assert rows[("team-a", "web", "c0")] == (f"{mirror}/kci/app:1.0", "rewrite", "")
    assert rows[("team-a", "web", "i0")] == ("quay.io/x/y:1", "unchanged", "")
    assert rows[("team-a", "gone", "c0")][:2] == (f"{mirror}/kci/nothere:1.0", "missing-image")
    assert "has no kci/nothere:1.0: manifest unknown (404)" in rows[("team-a", "gone", "c0")][2]
    assert rows[("team-b", "db", "c0")][1:] == (
        "missing-secret", "pull Secret mirror-pull does not exist in namespace team-b")
    after, finding, detail = rows[("team-c", "agent", "c0")]
    assert finding == "missing-secret" and detail.startswith(
        "pull Secret mirror-pull in namespace team-c cannot be read")
    assert "forbidden" in detail
    assert rows[("team-a", "hung", "c0")] == (
        f"{setup.silent.host}/x/z:1", "unreachable",
        f"mirror {setup.silent.host}: timeout after {float(HUNG):g}s")
    after, finding, detail = rows[("team-d", "nightly", "c0")]
    assert (after, finding) == ("docker.io/kci/app:1.0".removeprefix("docker.io/"), "deny")
    assert detail.startswith("k8s.ksyun.com/kci-host-aliases (pod): item 1:")
    assert rows[("kube-system", "coredns", "c0")] == (
        "kci/app:1.0", "excluded", "namespace kube-system is excluded")
    assert code == 1


def test_ephemeral_containers_get_what_kubectl_debug_would(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    _code, out, _err = plan(setup, capsys, "-o", "json", "-n", "team-a")
    row = next(r for r in json.loads(out)["rows"] if r["name"] == "debugged"
               and r["role"] == "ephemeral")
    assert (row["container"], row["after"], row["finding"]) == (
        "debug0", f"{setup.registry.host}/kci/app:1.0", "rewrite")


def test_a_workload_a_controller_owns_is_planned_through_its_owner(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    _code, out, _err = plan(setup, capsys, "-o", "json")
    names = {(r["kind"], r["name"]) for r in json.loads(out)["rows"]}
    assert ("CronJob", "nightly") in names and ("Job", "once") in names
    assert ("ReplicaSet", "web-5d4f") not in names and ("Job", "nightly-29") not in names


def test_each_image_is_asked_of_its_mirror_once(setup: Setup,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    before = setup.registry.count("HEAD", "/v2/kci/nothere/manifests/1.0")
    plan(setup, capsys, "-o", "json")
    # kci/app:1.0 runs in six places; kci/nothere once: each is one question
    assert setup.registry.wait_count("HEAD", "/v2/kci/nothere/manifests/1.0", before + 1) \
        == before + 1


def test_an_if_present_mirror_lacking_the_image_keeps_it(
        setup: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "if-present.yaml"
    config.write_text(mirror_config(setup.registry, setup.silent, tmp_path,
                                    policy="if-present"))
    _code, out, _err = plan(setup, capsys, "-o", "json", "-n", "team-a", config=config)
    rows = findings(out)
    assert rows[("team-a", "gone", "c0")][:2] == ("kci/nothere:1.0", "unchanged")
    assert rows[("team-a", "web", "c0")] == (f"{setup.registry.host}/kci/app:1.0",
                                             "rewrite", "")


# --- what is not readable ----------------------------------------------------------------


def test_a_namespace_that_answers_403_is_skipped(setup: Setup,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    setup.state.cluster_lists_forbidden = True      # rights in some namespaces only
    setup.state.forbidden.add("team-b")
    code, out, _err = plan(setup, capsys, "-o", "json")
    data = json.loads(out)
    assert [s["namespace"] for s in data["skipped"]] == ["team-b"]
    assert "forbidden" in data["skipped"][0]["reason"]
    assert {r["namespace"] for r in data["rows"]} == {"team-a", "team-c", "team-d",
                                                     "kube-system"}
    assert code == 1
    _code, table, _err = plan(setup, capsys)
    assert "team-b: skipped: " in table and "1 skipped" in table.splitlines()[-1]


def test_a_namespace_whose_object_may_not_be_read_is_planned_without_its_annotations(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    # what a namespace's own RoleBinding gives: its objects, never the Namespace itself
    setup.state.set("team-b", {"kci-webhook/mirrors": "off"})
    setup.state.forbidden_reads.add(("team-b", "Namespace"))
    code, out, err = plan(setup, capsys, "-o", "json", "-n", "team-b")
    assert findings(out)[("team-b", "db", "c0")][1] == "missing-secret"   # mirrors not off
    assert "kci-webhook plan: warning: namespace team-b: forbidden: " in err
    assert "planned without its annotations" in err and code == 1


def test_an_invalid_namespace_annotation_is_warned_about_once(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    setup.state.set("team-b", {"k8s.ksyun.com/kci-host-aliases": "not json"})
    _code, out, err = plan(setup, capsys, "-o", "json", "--compare", str(setup.plain))
    json.loads(out)
    assert err.count("kci-webhook plan: warning: invalid namespace annotation, ignored: "
                     "k8s.ksyun.com/kci-host-aliases (namespace team-b)") == 1


def test_lists_are_read_page_by_page(setup: Setup, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_module, "PAGE_SIZE", 2)
    _code, out, _err = plan(setup, capsys, "-o", "json")
    pods = [r for r in setup.state.requests if r["path"] == "/api/v1/pods"]
    assert len(pods) == 2 and "continue" not in pods[0] and pods[1]["continue"]   # 4 pods
    assert {r["name"] for r in json.loads(out)["rows"] if r["kind"] == "Pod"} == {
        "web", "gone", "debugged", "coredns"}


# --- exit codes and --fail-on ------------------------------------------------------------


@pytest.mark.parametrize(("fail_on", "expected"), [
    pytest.param(None, 1, id="default-fails-on-deny-missing-image-missing-secret"),
    pytest.param("", 0, id="nothing"),
    pytest.param("unreachable", 1, id="unreachable"),
    pytest.param("excluded", 1, id="excluded"),
    pytest.param("rewrite,unchanged", 1, id="a-list"),
])
def test_fail_on_sets_what_exits_1(setup: Setup, capsys: pytest.CaptureFixture[str],
                                   fail_on: str | None, expected: int) -> None:
    extra = [] if fail_on is None else ["--fail-on", fail_on]
    assert plan(setup, capsys, "-o", "json", *extra)[0] == expected


def test_no_finding_of_fail_on_exits_0(setup: Setup,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = plan(setup, capsys, "-n", "team-a", "--fail-on", "deny",
                           config=setup.plain)
    assert code == 0 and "team-a: 6 containers (6 unchanged)" in out


def test_an_unknown_finding_is_a_usage_error(setup: Setup,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        plan(setup, capsys, "--fail-on", "deny,missing")
    assert stopped.value.code == 2
    assert "unknown finding missing; choose from deny" in capsys.readouterr().err


@pytest.mark.parametrize(("setting", "words"), [
    pytest.param("no-cluster", "no cluster to read", id="no-cluster"),
    pytest.param("invalid-config", "invalid configuration", id="invalid-config"),
    pytest.param("no-configmap", "configmap kci-webhook/kci-webhook-config: not found",
                 id="served-config-missing"),
    pytest.param("missing-namespace", "namespace nowhere not found", id="missing-namespace"),
    pytest.param("namespaces-forbidden", "namespaces: forbidden: injected failure: without "
                 "the right to list Namespaces, name one with -n", id="namespaces-forbidden"),
])
def test_what_cannot_run_exits_2(setup: Setup, capsys: pytest.CaptureFixture[str],
                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 setting: str, words: str) -> None:
    args: list[str] = []
    config: Path | None = None
    if setting == "no-cluster":
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
        code = cli.main(["plan", "--config", str(setup.plain)])
        err = capsys.readouterr().err
    else:
        if setting == "invalid-config":
            config = tmp_path / "bad.yaml"
            config.write_text("mirrors: [{endpoint: 'ftp://x', hosts: []}]\n")
        if setting == "missing-namespace":
            args = ["-n", "nowhere"]
        if setting == "namespaces-forbidden":
            setup.state.list_status = 403
        code, out, err = plan(setup, capsys, *args, config=config,
                              served=setting == "no-configmap")
        assert out == ""
    assert code == 2 and words in err, err


def test_the_served_config_is_read_from_the_webhooks_configmap(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    setup.state.put({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "kci-webhook-config", "namespace": "kci-webhook"},
                     "data": {"config.yaml": setup.config.read_text()}})
    code, out, _err = plan(setup, capsys, "-o", "json", "-n", "team-a", served=True)
    data = json.loads(out)
    assert data["config"] == "configmap kci-webhook/kci-webhook-config config.yaml"
    assert findings(out)[("team-a", "web", "c0")][1] == "rewrite" and code == 1


# --- output ------------------------------------------------------------------------------


def test_json_is_only_data_and_round_trips(setup: Setup,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _code, out, _err = plan(setup, capsys, "-o", "json")
    data = json.loads(out)            # stdout is one JSON document and nothing else
    assert plan_data(plan_from_data(data)) == data
    assert data["summary"]["total"] == {"deny": 1, "missing-image": 1, "missing-secret": 2,
                                        "unreachable": 1, "rewrite": 2, "unchanged": 3,
                                        "excluded": 1}


def test_yaml_holds_the_same_object(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    _code, as_json, _err = plan(setup, capsys, "-o", "json")
    _code, as_yaml, _err = plan(setup, capsys, "-o", "yaml")
    assert yaml.safe_load(as_yaml) == json.loads(as_json)


def test_the_table_has_a_summary_per_namespace_and_in_all(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    _code, out, err = plan(setup, capsys)
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "KIND", "NAME", "CONTAINER", "IMAGE", "AFTER",
                                "FINDING", "DETAIL"]
    assert "team-b: 1 container (1 missing-secret)" in lines
    assert lines[-1] == ("in all: 11 containers (1 deny, 1 missing-image, 2 missing-secret, "
                         "1 unreachable, 2 rewrite, 3 unchanged, 1 excluded) in 5 namespaces")
    assert err == ""      # no progress off a terminal


# --- --compare ---------------------------------------------------------------------------


def test_compare_shows_only_the_rows_that_differ(setup: Setup,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = plan(setup, capsys, "-o", "json", "--compare", str(setup.config),
                           config=setup.plain)
    data = json.loads(out)
    assert data["kind"] == "PlanComparison"
    changed = {(r["namespace"], r["name"], r["container"]):
               (r["current"]["finding"], r["candidate"]["finding"]) for r in data["rows"]}
    assert changed == {
        ("team-a", "web", "c0"): ("unchanged", "rewrite"),
        ("team-a", "gone", "c0"): ("unchanged", "missing-image"),
        ("team-a", "debugged", "debug0"): ("unchanged", "rewrite"),
        ("team-a", "hung", "c0"): ("unchanged", "unreachable"),
        ("team-b", "db", "c0"): ("unchanged", "missing-secret"),
        ("team-c", "agent", "c0"): ("unchanged", "missing-secret"),
    }
    assert code == 1   # the candidate brings findings of --fail-on


def test_compare_of_a_config_with_itself_is_empty_and_exits_0(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = plan(setup, capsys, "--compare", str(setup.config))
    assert out.splitlines()[0] == "no containers"
    assert out.splitlines()[-1] == "in all: 0 containers differ in 0 namespaces"
    assert code == 0


def test_the_other_commands_start_without_the_kubernetes_client_or_httpx() -> None:
    """`plan` loads them when it runs; building its parser alongside the others does not."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys, webhook.cli; webhook.cli._parser(); "
         "print(sorted(m for m in ('kubernetes', 'httpx') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
