"""Where the Namespace watch finds the API server: the order every Kubernetes tool uses.

The choice itself is a pure function of the environment and the files that exist (a
table); loading is the real `kubernetes` client; end to end, `kci-webhook serve` started
with nothing but `KUBECONFIG` watches the stand-in API and applies namespace defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver_standin import StandIn, running_standin
from tests.conftest import RunningServer, apply_response_patch, pod_review, start_server
from tests.conftest import terminate as stop_process
from webhook.adapters.namespaces import SERVICE_ACCOUNT_TOKEN, ApiSource, api_for, choose_source
from webhook.core.errors import ConfigError

SEP = os.pathsep
HOME_CONFIG = "/home/u/.kube/config"
IN_CLUSTER = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@pytest.mark.parametrize(("override", "environ", "files", "expected"), [
    # an explicit choice wins over everything, and is not checked here (loading says)
    pytest.param("/x/kc", {"KUBECONFIG": "/a", "HOME": "/home/u", **IN_CLUSTER},
                 {"/a", HOME_CONFIG, SERVICE_ACCOUNT_TOKEN}, ApiSource("override", "/x/kc"),
                 id="override-beats-all"),
    # KUBECONFIG: a list; files that do not exist are skipped, as kubectl skips them
    pytest.param(None, {"KUBECONFIG": f"/a{SEP}/missing{SEP}/c"}, {"/a", "/c"},
                 ApiSource("KUBECONFIG", f"/a{SEP}/c"), id="kubeconfig-list-skips-missing"),
    pytest.param(None, {"KUBECONFIG": "/a", "HOME": "/home/u", **IN_CLUSTER},
                 {"/a", HOME_CONFIG, SERVICE_ACCOUNT_TOKEN}, ApiSource("KUBECONFIG", "/a"),
                 id="kubeconfig-beats-in-cluster"),
    pytest.param(None, {"KUBECONFIG": "~/kc", "HOME": "/home/u"}, {"/home/u/kc"},
                 ApiSource("KUBECONFIG", "~/kc"), id="kubeconfig-tilde-is-home"),
    pytest.param(None, {"KUBECONFIG": SEP, "HOME": "/home/u"}, {HOME_CONFIG},
                 ApiSource("home", HOME_CONFIG), id="kubeconfig-only-separators-is-unset"),
    # in-cluster: both variables and the service account token, as client-go requires
    pytest.param(None, {"HOME": "/home/u", **IN_CLUSTER}, {HOME_CONFIG, SERVICE_ACCOUNT_TOKEN},
                 ApiSource("in-cluster"), id="in-cluster-beats-home"),
    pytest.param(None, {"HOME": "/home/u", "KUBERNETES_SERVICE_HOST": "10.96.0.1"},
                 {HOME_CONFIG, SERVICE_ACCOUNT_TOKEN}, ApiSource("home", HOME_CONFIG),
                 id="in-cluster-needs-the-port"),
    pytest.param(None, {"HOME": "/home/u", **IN_CLUSTER}, {HOME_CONFIG},
                 ApiSource("home", HOME_CONFIG), id="in-cluster-needs-the-token"),
    pytest.param(None, {"KUBECONFIG": "/gone", **IN_CLUSTER}, {SERVICE_ACCOUNT_TOKEN},
                 ApiSource("in-cluster"), id="kubeconfig-of-missing-files-then-in-cluster"),
    # KUBECONFIG set: ~/.kube/config is never read (kubectl does not read it either)
    pytest.param(None, {"KUBECONFIG": f"/gone{SEP}/lost", "HOME": "/home/u"}, {HOME_CONFIG},
                 ApiSource("none", reason="KUBECONFIG names no existing file: /gone, /lost"),
                 id="kubeconfig-of-missing-files-never-falls-to-home"),
    pytest.param(None, {"HOME": "/home/u"}, {HOME_CONFIG}, ApiSource("home", HOME_CONFIG),
                 id="home-config"),
    pytest.param(None, {"HOME": "/home/u"}, set(),
                 ApiSource("none", reason="no --kubeconfig, KUBECONFIG, in-cluster service "
                                          "account or ~/.kube/config"), id="nothing"),
    pytest.param(None, {}, {HOME_CONFIG},
                 ApiSource("none", reason="no --kubeconfig, KUBECONFIG, in-cluster service "
                                          "account or ~/.kube/config"), id="no-home"),
])
def test_the_source_is_chosen_in_the_order_kubernetes_tools_use(
        override: str | None, environ: dict[str, str], files: set[str],
        expected: ApiSource) -> None:
    assert choose_source(override=override, environ=environ,
                         exists=files.__contains__) == expected


# --- loading: the real client -------------------------------------------------------------

def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def split_kubeconfig(directory: Path, server: str) -> tuple[Path, Path]:
    """Two files that only work together, as kubectl merges them: the first holds the
    cluster and the user, the second the context naming them and current-context."""
    clusters = write(directory / "clusters.yaml", {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "standin", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "token-from-the-first-file"}}]})
    contexts = write(directory / "contexts.yaml", {
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "tester"}}]})
    return clusters, contexts


def test_a_kubeconfig_list_is_merged(tmp_path: Path) -> None:
    first, second = split_kubeconfig(tmp_path, "https://127.0.0.1:6443")
    api = api_for(ApiSource("KUBECONFIG", f"{first}{SEP}{tmp_path / 'absent'}{SEP}{second}"))
    assert api is not None
    configuration = api.api_client.configuration
    assert configuration.host == "https://127.0.0.1:6443"                    # first file
    assert configuration.api_key == {"BearerToken": "Bearer token-from-the-first-file"}


@pytest.mark.parametrize(("content", "message"), [
    pytest.param(None, "--kubeconfig/KCI_WEBHOOK_KUBECONFIG {path}: no such file",
                 id="missing-file"),
    pytest.param("", "file is empty", id="empty-file"),
    pytest.param("current-context: nowhere\n", "nowhere", id="unknown-context"),
    pytest.param("{not yaml", "cannot load it", id="not-yaml"),
    pytest.param("- a list\n", "not shaped like a kubeconfig", id="not-a-mapping"),
    pytest.param("current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n",
                 "cannot load it", id="context-names-a-missing-cluster"),
])
def test_an_explicit_kubeconfig_that_cannot_be_loaded_is_a_config_error(
        tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        api_for(ApiSource("override", str(path)))
    assert message.format(path=path) in str(caught.value)


def test_no_source_means_no_client() -> None:
    assert api_for(ApiSource("none", reason="nothing")) is None


def test_serve_refuses_to_start_with_a_kubeconfig_it_cannot_load(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCI_")}
    result = subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--port", "0",
         "--kubeconfig", str(tmp_path / "absent")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    where = f"--kubeconfig/KCI_WEBHOOK_KUBECONFIG {tmp_path / 'absent'}"
    assert f"{where}: no such file" in result.stderr


# --- end to end: nothing but KUBECONFIG ----------------------------------------------------

ALIASES = "k8s.ksyun.com/kci-host-aliases"


@pytest.fixture
def served_through_kubeconfig(tmp_path: Path) -> Iterator[tuple[StandIn, RunningServer, str]]:
    with running_standin() as (state, api):
        state.set("team-a", {ALIASES: '[{"ip":"10.0.0.2","hostnames":["registry.example"]}]'})
        first, second = split_kubeconfig(tmp_path, api.api_client.configuration.host)
        # HOME elsewhere: a ~/.kube/config on the test machine must not be what works
        server = start_server(tmp_path / "server", "mirrors: []\n", env={
            "KUBECONFIG": f"{first}{SEP}{tmp_path / 'absent'}{SEP}{second}",
            "HOME": str(tmp_path / "home")})
        try:
            yield state, server, api.api_client.configuration.host
        finally:
            stop_process(server.process)


def test_serve_with_only_kubeconfig_set_watches_namespaces(
        served_through_kubeconfig: tuple[StandIn, RunningServer, str]) -> None:
    state, server, host = served_through_kubeconfig
    assert state.wait_for_watchers(1), server.log.read_text()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}
    review = pod_review(pod, namespace="team-a")
    reply = server.review(review)
    assert reply.status_code == 200
    patched = apply_response_patch(review, reply.json()["response"])
    assert patched["spec"]["hostAliases"] == [{"ip": "10.0.0.2",
                                               "hostnames": ["registry.example"]}]
    log = server.log.read_text()
    assert "namespace watch through KUBECONFIG" in log, log
    assert f"API server {host}" in log
