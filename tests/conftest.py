"""Shared fixtures: the project's test data, and a real `kci-webhook serve` over real TLS."""

from __future__ import annotations

import base64
import copy
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """The tests run the compiled core when it is built (hack/native.py), as the image
    does: never a compiled module older than its source, which would shadow the edit.
    `make test` sets KCI_WEBHOOK_NATIVE=required: there, the compiled core must be built."""
    from hack import native
    stale = native.stale()
    if stale:
        raise pytest.UsageError(f"compiled core older than its source ({', '.join(stale)}): "
                                "run `make native` (python -m hack.native)")
    if os.environ.get("KCI_WEBHOOK_NATIVE") == "required" and native.missing():
        raise pytest.UsageError("KCI_WEBHOOK_NATIVE=required but the core is not compiled: "
                                "run `make native`")
DATA = ROOT / "tests" / "data"       # copied in; tests/data/README.md says from where
ADMISSION = DATA / "admission"
EXAMPLES = ROOT / "examples"


def load_review(name: str) -> dict[str, Any]:
    """A captured AdmissionReview from tests/data/admission/."""
    return orjson.loads((ADMISSION / name).read_bytes())


def pod_review(pod: dict[str, Any], *, namespace: str = "default", operation: str = "CREATE",
               api_version: str = "admission.k8s.io/v1", uid: str = "uid-1",
               kind: str = "Pod", resource: str = "pods") -> dict[str, Any]:
    """An AdmissionReview around `pod`, shaped as the API server sends it."""
    return {
        "apiVersion": api_version, "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": resource},
            "namespace": namespace, "operation": operation,
            "userInfo": {"username": "tester"}, "object": pod, "oldObject": None,
            "dryRun": False,
        },
    }


def apply_response_patch(review: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server would have it after our patch (or unchanged)."""
    obj = copy.deepcopy(review["request"]["object"])
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    ops = orjson.loads(base64.b64decode(response["patch"]))
    return jsonpatch.apply_patch(obj, ops)  # type: ignore[no-any-return]


def eventually(condition: Callable[[], bool], timeout: float = 15.0,
               interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` passes (bounded: never hangs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    ca: Path
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        verify = ssl.create_default_context(cafile=str(self.ca))
        return httpx.Client(base_url=self.url, verify=verify, timeout=10)

    def review(self, body: dict[str, Any] | bytes, **kwargs: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        with self.client() as client:
            return client.post("/mutate", content=content,
                               headers={"content-type": "application/json"}, **kwargs)


def start_server(workdir: Path, config_text: str | None, *, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> RunningServer:
    """`kci-webhook serve` as a user starts it, with dev certificates made on first start."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1", "--port", str(port),
           *args]
    if config_text is not None:
        (workdir / "config.yaml").write_text(config_text)
        cmd += ["--config", "config.yaml"]
    log = workdir / "server.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KCI_")}
    # Stopped at once when a test is done with it; the drain tests pass --shutdown-delay.
    full_env["KCI_WEBHOOK_SHUTDOWN_DELAY"] = "0"
    full_env.update(env or {})
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                   env=full_env)
    server = RunningServer(f"https://127.0.0.1:{port}", workdir / "certs" / "ca.crt", process, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}:\n{log.read_text()}")
        if server.ca.exists():
            try:
                with server.client() as client:
                    if client.get("/healthz").status_code == 200:
                        return server
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not become healthy:\n{log.read_text()}")


def terminate(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` (bounded either way)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def stop_server(server: RunningServer) -> None:
    terminate(server.process)


TEST_CONFIG = """
onInvalid: deny
mirrors:
  - endpoint: https://172.18.0.20:5000/v2/test-namespace
    hosts: [docker.io, gcr.io, somehost.io]
    pullSecret: mirror-pull
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
    allowCredentialsOverHTTP: false
exclude:
  namespaces: [kube-system, kube-public]
"""


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Callable[[str | None], RunningServer]]:
    """Start each distinct config once per session: a server start costs about a second."""
    started: dict[str | None, RunningServer] = {}

    def get(config_text: str | None) -> RunningServer:
        if config_text not in started:
            workdir = tmp_path_factory.mktemp("server")
            started[config_text] = start_server(workdir, config_text)
        return started[config_text]

    yield get
    for server in started.values():
        stop_server(server)


@pytest.fixture(scope="session")
def webhook_server(server_factory: Callable[[str | None], RunningServer]) -> RunningServer:
    """The server every HTTP test shares (session scope: nothing here has state)."""
    return server_factory(TEST_CONFIG)
