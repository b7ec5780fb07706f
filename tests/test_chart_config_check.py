"""The chart refuses a config the server would refuse before anything changes: at render
where a schema or a template can tell (a mirror endpoint's scheme, the mirror checks'
budget against the webhook's timeout), and for the rest with `kci-webhook config check`
run in the webhook's own image as a pre-install / pre-upgrade hook.

Rendered with Helm's own engine (hack/chart_render.py); the hook's arguments are run
through the real `kci-webhook` parser and command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from hack import chart_render as chart
from tests.test_manifests import newer_than_1_24, one, validate
from webhook import cli
from webhook.core import config
from webhook.tools import configcheck

Objects = list[dict[str, Any]]
HOOK = "kci-webhook-config-check"
CONFIG_PATH = "/etc/kci-webhook/config/config.yaml"


def _job(objects: Objects) -> dict[str, Any]:
    return one(objects, "Job", HOOK)


def _pod(objects: Objects) -> dict[str, Any]:
    spec: dict[str, Any] = _job(objects)["spec"]["template"]["spec"]
    return spec


# --- refused at render ------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["ftp://m.example", "oci://m.example/hub",
                                      "ssh://m.example:22/ns"])
def test_a_mirror_endpoint_scheme_other_than_http_or_https_is_refused_at_render(
        endpoint: str) -> None:
    values = {"config": {"mirrors": [{"endpoint": endpoint, "hosts": ["docker.io"]}]}}
    with pytest.raises(helm.HelmValuesError, match="/config/mirrors/0/endpoint"):
        chart.render(values)
    problems: list[str] = []
    config.parse_endpoint(endpoint, "endpoint", problems)
    assert problems and "is not http or https" in problems[0]     # the loader agrees


@pytest.mark.parametrize("endpoint", [
    "https://m.example:5000/v2/hub", "http://m.example/hub", "HTTPS://m.example",
    "m.example:5000/hub", "m.example", "[fd00::1]:5000/hub", "https://[fd00::1]/v2/hub"])
def test_the_endpoint_forms_the_loader_accepts_render(endpoint: str) -> None:
    values = {"config": {"mirrors": [{"endpoint": endpoint, "hosts": ["docker.io"]}]}}
    text = one(chart.render(values), "ConfigMap", "kci-webhook-config")["data"]["config.yaml"]
    assert config.load_config(text, source="ConfigMap").mirrors[0].endpoint == endpoint


@pytest.mark.parametrize(("budget", "timeout"), [
    (4.5, 5), (4, 5), (4.01, 5), (9, 10), (9.5, 10), (0.5, 1), (0.6, 1), (1, 2), (1.1, 2),
    (2, 3)])
def test_a_budget_over_the_timeout_is_refused_at_render_exactly_when_the_loader_refuses_it(
        budget: float, timeout: int) -> None:
    values = {"config": {"mirrorChecks": {"budgetSeconds": budget}},
              "webhook": {"timeoutSeconds": timeout},
              "terminationGracePeriodSeconds": 60}
    refused = budget > config.budget_limit(timeout)
    try:
        config.load_config(f"mirrorChecks: {{budgetSeconds: {budget}}}", source="x",
                           webhook_timeout=timeout)
    except config.ConfigError as exc:
        assert refused, exc
    else:
        assert not refused
    if refused:
        with pytest.raises(helm.HelmRenderError) as caught:
            chart.render(values)
        assert (f"config.mirrorChecks.budgetSeconds: {budget:g} s leaves too little of the "
                f"webhook's {timeout} s timeout (webhook.timeoutSeconds) for the rest of the "
                f"request: at most {config.budget_limit(timeout):g} s") in str(caught.value)
    else:
        chart.render(values)


# --- the hook ---------------------------------------------------------------------------------

def test_the_hook_runs_before_install_and_upgrade_and_is_deleted_when_it_passes() -> None:
    objects = chart.render({})
    configmap, job = one(objects, "ConfigMap", HOOK), _job(objects)
    for obj in (configmap, job):
        annotations = obj["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert annotations["helm.sh/hook-delete-policy"] == (
            "before-hook-creation,hook-succeeded")
    # the ConfigMap the Job mounts is made first: the release's does not exist yet
    assert int(configmap["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"])
    volumes = {v["name"]: v for v in _pod(objects)["volumes"]}
    assert volumes["config"]["configMap"]["name"] == HOOK
    # the config it checks is the one the release applies, byte for byte
    assert configmap["data"] == one(objects, "ConfigMap", "kci-webhook-config")["data"]


def test_the_hook_job_is_one_bounded_try_locked_down() -> None:
    objects = chart.render({"configCheck": {"activeDeadlineSeconds": 90}})
    job, pod = _job(objects), _pod(objects)
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 90
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    deployment = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == deployment["image"]       # the webhook's own image
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert {m["name"]: m["readOnly"] for m in container["volumeMounts"]} == {"config": True}


def test_the_hook_objects_validate_for_kubernetes_1_24_to_the_newest() -> None:
    objects = chart.render({"extraVolumes": [{"name": "ca", "configMap": {"name": "mirror-ca"}}],
                            "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ca"}],
                            "imagePullSecrets": [{"name": "pull"}]})
    hooks = [o for o in objects if o["metadata"]["name"] == HOOK]
    assert {o["kind"] for o in hooks} == {"ConfigMap", "Job"}
    for obj in hooks:
        validate(obj)
        assert newer_than_1_24(obj) == []


@pytest.mark.parametrize(("values", "files"), [
    pytest.param({}, True, id="default"),
    pytest.param({"configCheck": {"files": False}}, False, id="files-off"),
])
def test_the_hook_mounts_the_named_files_as_the_server_does_when_it_checks_them(
        values: dict[str, Any], files: bool) -> None:
    extra = {"extraVolumes": [{"name": "ca", "configMap": {"name": "mirror-ca"}}],
             "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ca", "readOnly": True}]}
    objects = chart.render(values | extra)
    pod = _pod(objects)
    (container,) = pod["containers"]
    assert ("--files" in container["args"]) is files
    assert ({"name": "ca", "mountPath": "/etc/ca", "readOnly": True}
            in container["volumeMounts"]) is files
    assert ({"name": "ca", "configMap": {"name": "mirror-ca"}} in pod["volumes"]) is files


def test_the_hook_can_be_turned_off() -> None:
    objects = chart.render({"configCheck": {"enabled": False}})
    assert not [o for o in objects if o["metadata"]["name"] == HOOK]
    assert not [o for o in objects if "helm.sh/hook" in (o["metadata"].get("annotations") or {})]


def test_the_hooks_arguments_are_the_real_config_checks() -> None:
    objects = chart.render({"webhook": {"timeoutSeconds": 9},
                            "terminationGracePeriodSeconds": 60})
    args = _pod(objects)["containers"][0]["args"]
    parsed = cli._parser().parse_args(args)
    assert parsed.func is configcheck.run
    assert (parsed.file, parsed.webhook_timeout, parsed.files) == (CONFIG_PATH, 9, True)


@pytest.mark.parametrize(("values", "code"), [
    pytest.param({}, configcheck.EXIT_VALID, id="default-config-passes"),
    pytest.param({"config": {"mirrors": [{"endpoint": "https://m.example:5000/v2/hub",
                                          "hosts": ["docker.io", "m.example:5000"]}]}},
                 configcheck.EXIT_INVALID, id="mirror-that-is-its-own-source-fails"),
    pytest.param({"config": {"mirrors": [{"endpoint": "https://m.example", "hosts": ["a.io"],
                                          "caFile": "/etc/ca/absent.crt"}]}},
                 configcheck.EXIT_INVALID, id="named-file-absent-fails"),
])
def test_the_hook_run_on_its_rendered_config_passes_or_fails_the_release(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], values: dict[str, Any],
        code: int) -> None:
    """What a template cannot tell (a cycle, a file), the hook's command refuses: its
    arguments, run by the real command on the text its ConfigMap carries."""
    objects = chart.render(values)
    text = one(objects, "ConfigMap", HOOK)["data"]["config.yaml"]
    (tmp_path / "config.yaml").write_text(text)
    args = [str(tmp_path / "config.yaml") if a == CONFIG_PATH else a
            for a in _pod(objects)["containers"][0]["args"]]
    assert cli.main(args) == code
    stderr = capsys.readouterr().err
    if code:
        assert "kci-webhook config check: invalid configuration:" in stderr
    assert yaml.safe_load(text) == chart.merged_values(values)["config"]
