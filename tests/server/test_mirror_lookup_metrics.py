"""`kci_webhook_mirror_lookups_total{mirror, result}`: what each `if-present` question got,
by the configured mirror that was asked, counted by the real server against real mirrors.

The dashboard's "misses and timeouts by mirror" and the mirror alerts read this counter, so
each result is produced here the way it happens in a cluster: a registry that has the
image, one that lacks it, one that never answers, one that is gone, and a pod with more
images than one admission may ask about. Its labels come from the config and a closed set:
no image name, registry answer or error text can add a series.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.conftest import RunningServer, pod_review
from tests.registry_support import (  # noqa: F401 - fixtures
    Registry,
    SilentServer,
    registry_fixture,
    start_registry,
)
from webhook.adapters.registry.manifest import Presence
from webhook.server.metrics import MIRROR_RESULTS
from webhook.server.mirrors import lookup_result

SERIES = re.compile(r'^kci_webhook_mirror_lookups_total\{mirror="([^"]*)",result="([^"]*)"\} '
                    r"(\S+)$", re.M)


def lookups(server: RunningServer) -> dict[tuple[str, str], float]:
    """(mirror, result) → count, from a scrape of /metrics."""
    with server.client() as client:
        text = client.get("/metrics").text
    return {(m.group(1), m.group(2)): float(m.group(3)) for m in SERIES.finditer(text)}


def admit(server: RunningServer, *images: str) -> list[str]:
    """The pod's images after admission."""
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    reply = server.review(pod_review({"apiVersion": "v1", "kind": "Pod",
                                      "metadata": {"name": "p"},
                                      "spec": {"containers": containers}}))
    assert reply.status_code == 200
    response = reply.json()["response"]
    assert response["allowed"] is True
    return [w for w in response.get("warnings", []) if "kept" in w or "not checked" in w]


def mirror(endpoint: str, host: str, ca: Path | None = None,
           creds: Path | None = None) -> list[str]:
    lines = [f"  - endpoint: {endpoint}", f"    hosts: [{host}]", "    policy: if-present"]
    if ca:
        lines.append(f"    caFile: {ca}")
    if creds:
        lines.append(f"    pullCredentialConfigPath: {creds}")
    return lines


@pytest.fixture(scope="module")
def gone(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A registry that was stopped: its port refuses connections."""
    stopped = start_registry(tmp_path_factory.mktemp("gone"), auth=False)
    stopped.stop()
    return stopped


@pytest.fixture(scope="module")
def silent() -> Iterator[SilentServer]:
    """Accepts connections, never answers. Module-scoped: the server's presence checker
    keeps asking it for the tests of this module."""
    with SilentServer() as server:
        yield server


@pytest.fixture(scope="module")
def mirrors(registry: Registry, gone: Registry, silent: SilentServer) -> dict[str, str]:
    """Source host → the host of its mirror, as the config names it."""
    return {"docker.io": registry.host, "gcr.io": gone.host, "quay.io": silent.host}


@pytest.fixture(scope="module")
def server(registry: Registry, gone: Registry, silent: SilentServer,
           tmp_path_factory: pytest.TempPathFactory,
           server_factory: Callable[[str | None], RunningServer]) -> RunningServer:
    creds = registry.docker_config(tmp_path_factory.mktemp("creds") / "config.json")
    lines = ["mirrorChecks:", "  budgetSeconds: 0.5", "mirrors:",
             *mirror(registry.url, "docker.io", registry.ca_file, creds),
             *mirror(gone.url, "gcr.io", gone.ca_file),
             *mirror(f"https://{silent.host}", "quay.io")]
    return server_factory("\n".join(lines) + "\n")


def moved(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
          ) -> dict[tuple[str, str], float]:
    """The series that changed, by how much."""
    return {key: after[key] - before.get(key, 0) for key in after
            if after[key] != before.get(key, 0)}


@pytest.mark.parametrize(("image", "source", "result"), [
    ("docker.io/kci/app:1.0", "docker.io", "present"),
    ("docker.io/kci/not-mirrored:1.0", "docker.io", "missing"),
    ("quay.io/kci/app:1.0", "quay.io", "timeout"),
    ("gcr.io/kci/app:1.0", "gcr.io", "error"),
], ids=["present", "missing", "timeout", "error"])
def test_each_answer_is_counted_under_its_mirror_and_result(
        server: RunningServer, mirrors: dict[str, str], image: str, source: str,
        result: str) -> None:
    before = lookups(server)
    warnings = admit(server, image)
    assert moved(before, lookups(server)) == {(mirrors[source], result): 1}
    assert bool(warnings) is (result != "present")


def test_a_cached_answer_is_counted_as_what_it_says(
        server: RunningServer, mirrors: dict[str, str]) -> None:
    """The dashboard shows what pods got, whether the mirror or the cache answered."""
    admit(server, "docker.io/kci/app:1.0")
    before = lookups(server)
    admit(server, "docker.io/kci/app:1.0")
    assert moved(before, lookups(server)) == {(mirrors["docker.io"], "present"): 1}


def test_questions_past_the_admissions_limit_are_counted_not_asked(
        registry: Registry, tmp_path: Path,
        server_factory: Callable[[str | None], RunningServer]) -> None:
    creds = registry.docker_config(tmp_path / "config.json")
    limited = server_factory("\n".join([
        "mirrorChecks:", "  maxLookupsPerAdmission: 1", "mirrors:",
        *mirror(registry.url, "docker.io", registry.ca_file, creds)]) + "\n")
    warnings = admit(limited, "docker.io/kci/one:1", "docker.io/kci/two:1",
                     "docker.io/kci/three:1")
    assert any("not checked" in w for w in warnings)
    assert moved({}, lookups(limited)) == {(registry.host, "missing"): 1,
                                           (registry.host, "not_asked"): 2}


def test_labels_come_from_the_config_and_a_closed_set_whatever_pods_ask(
        server: RunningServer, mirrors: dict[str, str]) -> None:
    """Many distinct images, hosts no mirror serves, and hostile-looking references add
    no series: `mirror` is a configured mirror's host, `result` one of MIRROR_RESULTS."""
    images = [f"docker.io/kci/image-{i}:v{i}" for i in range(40)]
    images += ["evil.example/x:1", "docker.io/kci/a@sha256:" + "0" * 64,
               "quay.io/kci/q:" + "t" * 128]
    for start in range(0, len(images), 8):
        admit(server, *images[start:start + 8])
    series = lookups(server)
    assert {m for m, _ in series} <= set(mirrors.values())
    assert {r for _, r in series} <= set(MIRROR_RESULTS)
    assert len(series) <= len(mirrors) * len(MIRROR_RESULTS)


# (status, timed_out) → result. An answer that came is what it says, whatever the clock.
EXPECTED = {("present", False): "present", ("present", True): "present",
            ("absent", False): "missing", ("absent", True): "missing",
            ("error", True): "timeout", ("unanswered", True): "timeout",
            ("error", False): "error", ("unanswered", False): "cancelled"}


@given(status=st.sampled_from(["present", "absent", "error", "unanswered"]),
       timed_out=st.booleans(), detail=st.text(max_size=300),
       digest=st.none() | st.text(max_size=80))
@example(status="unanswered", timed_out=False, detail="present", digest=None)
@example(status="error", timed_out=False, detail="timeout after 1s", digest=None)
def test_the_result_label_is_the_kind_of_answer_never_its_words(
        status: str, timed_out: bool, detail: str, digest: str | None) -> None:
    """Whatever a registry says (the detail, the digest), the label is one of the closed
    set and depends only on the kind of answer; a missing answer is `not_asked`."""
    presence = Presence(status, detail, digest, timed_out=timed_out)  # type: ignore[arg-type]
    result = lookup_result(presence)
    assert result in MIRROR_RESULTS
    assert result == EXPECTED[status, timed_out]
    assert result == lookup_result(Presence(status, "", None,  # type: ignore[arg-type]
                                            timed_out=timed_out))
    assert lookup_result(None) == "not_asked"
