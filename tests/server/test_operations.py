"""Operating the server: metrics move as admissions happen, logs are JSON, config reloads."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import (
    RunningServer,
    eventually,
    free_port,
    pod_review,
    start_server,
    stop_server,
)

CONFIG = """
mirrors:
  - endpoint: https://mirror.example:5000/v2/cache
    hosts: [docker.io]
"""
OTHER_CONFIG = """
mirrors:
  - endpoint: https://other-mirror.example:5000
    hosts: [docker.io]
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of its own: these tests read its counters and its log from zero."""
    running = start_server(tmp_path, CONFIG, args=("--log-level", "debug"))
    yield running
    stop_server(running)


def scrape(server: RunningServer) -> dict[str, float]:
    with server.client() as client:
        text = client.get("/metrics").text
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^(kci_webhook_\S+?(?:\{.*\})?) (\S+)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def pod(image: str = "nginx:1.25", **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "p", "annotations": dict(annotations)},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def test_counters_follow_a_scripted_sequence(server: RunningServer) -> None:
    before = scrape(server)
    server.review(pod_review(pod()))                                    # mutated
    unchanged = pod("quay.io/a/b:1")     # carrying the record the webhook would write
    unchanged["metadata"]["annotations"] = {
        "kci-webhook/images": '{"v":1,"c":{"c":"kept:no-mirror"}}'}
    server.review(pod_review(unchanged))                                # unchanged
    server.review(pod_review(pod(**{"k8s.ksyun.com/kci-dns-config": "{"})))   # denied
    server.review(pod_review(pod(), operation="UPDATE"))                # skipped
    server.review(b"not json")                                          # rejected 400
    after = scrape(server)

    def moved(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    admissions = ('kci_webhook_admissions_total{endpoint="mutate",operation="CREATE",'
                  'outcome="%s",subresource=""}')
    assert moved(admissions % "mutated") == 1
    assert moved(admissions % "unchanged") == 1
    assert moved(admissions % "denied") == 1
    assert moved('kci_webhook_admissions_total{endpoint="mutate",operation="UPDATE",'
                 'outcome="skipped",subresource=""}') == 1
    assert moved('kci_webhook_requests_rejected_total{code="400"}') == 1
    assert moved('kci_webhook_images_rewritten_total{mirror="mirror.example:5000"}') == 1
    assert moved('kci_webhook_denials_total{reason="invalid-annotation"}') == 1
    duration = ('kci_webhook_admission_duration_seconds_count{endpoint="mutate",'
                'operation="%s",subresource=""}')
    assert moved(duration % "CREATE") == 3
    assert moved(duration % "UPDATE") == 1
    assert after["kci_webhook_certificate_expiry_timestamp_seconds"] > time.time()
    assert after['kci_webhook_namespace_cache_state{state="disabled"}'] == 1


def log_lines(server: RunningServer) -> list[dict[str, Any]]:
    lines = server.log.read_text().splitlines()
    return [orjson.loads(line) for line in lines if line.startswith("{")]


def test_logs_are_json_lines_with_admission_fields_and_no_bodies(server: RunningServer) -> None:
    secret = "s3cr3t-value-never-logged"
    server.review(pod_review(pod(**{"k8s.ksyun.com/kci-dns-config": "{", "x": secret}),
                             uid="uid-denied"))
    server.review(pod_review(pod(), uid="uid-mutated"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "uid-mutated" not in server.log.read_text():
        time.sleep(0.05)
    text = server.log.read_text()
    non_json = [line for line in text.splitlines() if line and not line.startswith("{")]
    assert non_json == []                       # every line parses as JSON, uvicorn's too
    entries = {e.get("uid"): e for e in log_lines(server) if e.get("uid")}
    denied, mutated = entries["uid-denied"], entries["uid-mutated"]
    assert denied["level"] == "info" and denied["decision"] == "denied"
    assert denied["namespace"] == "default" and denied["pod"] == "p"
    assert (denied["kind"], denied["object_name"]) == ("Pod", "p")
    assert mutated["level"] == "debug" and mutated["decision"] == "mutated"
    assert isinstance(mutated["duration_ms"], float)
    assert secret not in text


def test_a_validate_denial_names_the_workload_not_a_pod(server: RunningServer) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"template": {
                      "metadata": {"annotations": {"k8s.ksyun.com/kci-dns-config": "{"}},
                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    body = pod_review(deployment, kind="Deployment", resource="deployments",
                      uid="uid-validate-denied")
    body["request"]["kind"]["group"] = "apps"
    with server.client() as client:
        reply = client.post("/validate", content=orjson.dumps(body),
                            headers={"content-type": "application/json"})
    assert reply.json()["response"]["allowed"] is False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "uid-validate-denied" not in server.log.read_text():
        time.sleep(0.05)
    entry = next(e for e in log_lines(server) if e.get("uid") == "uid-validate-denied")
    assert entry["endpoint"] == "validate" and entry["decision"] == "denied"
    assert (entry["kind"], entry["object_name"]) == ("Deployment", "web") and "pod" not in entry


def rewritten_image(server: RunningServer) -> str:
    """The image the server rewrites nginx:1.25 to, under the config it serves now."""
    response = server.review(pod_review(pod())).json()["response"]
    ops = orjson.loads(base64.b64decode(response["patch"]))
    return next(op["value"] for op in ops if op["path"] == "/spec/containers/0/image")


def reload_error(server: RunningServer) -> str | None:
    with server.client() as client:
        detail = client.get("/readyz").json()["detail"]
    error: str | None = detail.get("configReloadError")
    return error


def test_config_reload_applies_a_valid_file_and_refuses_an_invalid_one(
        server: RunningServer) -> None:
    config_file = Path(server.log.parent / "config.yaml")

    def image_after() -> str:
        return rewritten_image(server)

    assert image_after().startswith("mirror.example:5000/cache/")
    assert scrape(server)["kci_webhook_config_last_reload_successful"] == 1   # from start
    swap(config_file, OTHER_CONFIG)
    assert eventually(lambda: image_after().startswith("other-mirror.example:5000/"))
    swap(config_file, "onInvalidd: typo\n")
    assert eventually(lambda: scrape(server).get(
        'kci_webhook_config_reloads_total{result="failure"}') == 1)
    assert image_after().startswith("other-mirror.example:5000/")   # the old one serves
    assert scrape(server)["kci_webhook_config_last_reload_successful"] == 0
    with server.client() as client:
        ready = client.get("/readyz").json()
    assert "unknown key 'onInvalidd'" in ready["detail"]["configReloadError"]
    assert any(e["level"] == "error" and "refused" in e["msg"] for e in log_lines(server))


def swap(path: Path, text: str) -> None:
    """Replace the file the way a ConfigMap volume does: write aside, then rename."""
    staged = path.with_suffix(".new")
    staged.write_text(text)
    staged.replace(path)




CONFIG_WITH_CA = OTHER_CONFIG + "    caFile: mirror-ca.crt\n"   # relative: the working dir


def test_config_reload_refuses_an_unusable_named_file_and_retries_when_it_is_fixed(
        server: RunningServer) -> None:
    workdir = server.log.parent
    failures = 'kci_webhook_config_reloads_total{result="failure"}'
    serving = "kci_webhook_config_last_reload_successful"    # what the reload alert reads
    swap(workdir / "config.yaml", CONFIG_WITH_CA)
    assert eventually(lambda: scrape(server).get(failures) == 1)
    assert scrape(server)[serving] == 0
    assert rewritten_image(server).startswith("mirror.example:5000/cache/")  # the old serves
    assert reload_error(server) == (
        f"config.yaml: mirrors[0].caFile (mirror-ca.crt = {workdir}/mirror-ca.crt): not "
        "found on this machine")
    # The file arrives, the config is unchanged: the refused config is tried again.
    swap(workdir / "mirror-ca.crt", (workdir / "certs" / "ca.crt").read_text())
    assert eventually(lambda: rewritten_image(server).startswith("other-mirror.example:5000/"))
    assert reload_error(server) is None and scrape(server)[serving] == 1
    # The file breaks: a change of a named file is a reload too, refused like any other.
    swap(workdir / "mirror-ca.crt", "not a certificate\n")
    assert eventually(lambda: scrape(server).get(failures) == 2)
    assert scrape(server)[serving] == 0     # stays 0 until a reload succeeds, however long
    assert "mirrors[0].caFile (mirror-ca.crt" in (reload_error(server) or "")
    assert "no certificate in it" in (reload_error(server) or "")
    assert rewritten_image(server).startswith("other-mirror.example:5000/")


SERVE_REFUSALS = [
    # (id, config, files beside it, serve arguments, environment, fragment of stderr)
    ("ca-file-missing",
     "mirrors: [{endpoint: 'https://m.example', hosts: [a.io], caFile: missing-ca.crt}]",
     {}, (), {}, "config.yaml: mirrors[0].caFile (missing-ca.crt = {dir}/missing-ca.crt): "
                 "not found on this machine"),
    ("credentials-not-json",
     "mirrors: [{endpoint: 'https://m.example', hosts: [a.io], "
     "pullCredentialConfigPath: creds.json}]",
     {"creds.json": "{"}, (), {},
     "config.yaml: mirrors[0].pullCredentialConfigPath (creds.json = {dir}/creds.json): "
     "not valid JSON"),
    ("budget-over-the-timeout-flag", "mirrorChecks: {budgetSeconds: 1.5}", {},
     ("--webhook-timeout", "2"), {},
     "mirrorChecks.budgetSeconds: 1.5 s leaves too little of the webhook's 2 s timeout"),
    ("budget-over-the-timeout-environment", "mirrorChecks: {budgetSeconds: 2.5}", {}, (),
     {"KCI_WEBHOOK_TIMEOUT_SECONDS": "3"}, "of the webhook's 3 s timeout"),
    ("timeout-environment-not-whole-seconds", "", {}, (),
     {"KCI_WEBHOOK_TIMEOUT_SECONDS": "4.5"},
     "--webhook-timeout: expected whole seconds from 1 to 30"),
]


@pytest.mark.parametrize(("config", "files", "args", "env", "fragment"),
                         [r[1:] for r in SERVE_REFUSALS], ids=[r[0] for r in SERVE_REFUSALS])
def test_serve_refuses_at_start_a_config_it_could_not_honour(
        tmp_path: Path, config: str, files: dict[str, str], args: tuple[str, ...],
        env: dict[str, str], fragment: str) -> None:
    (tmp_path / "config.yaml").write_text(config)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KCI_")} | env
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1", "--port",
         str(free_port()), "--config", "config.yaml", *args],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert fragment.format(dir=tmp_path) in done.stderr
    assert not (tmp_path / "certs").exists()          # refused before anything was made
