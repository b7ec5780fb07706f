"""The work one admission can cause through `policy: if-present` mirrors is bounded.

- One pod cannot stall the webhook: the lookups an admission may start are capped
  (`mirrorChecks.maxLookupsPerAdmission`), as are those sending to one mirror at once
  (`maxInFlightPerMirror`); an image past the cap is kept as written, with one warning;
  lookups still waiting for a slot when the budget ends are abandoned, never sent.
- No shared penalty of our own making: a dry run's failures never cool a mirror down,
  nor does a wait for a slot or a budget that ended before the lookup was sent; a pod
  that will be refused asks nothing.
- A config reload lets admissions in flight finish on the checker they started with; a
  lookup cancelled under an admission means "no answer", never an error escaping.

Through the real server over TLS against the real registry where the point is the whole
path; against loopback HTTP stand-ins where the point is what reaches the mirror (how
many requests at once, a slow or failing answer on cue).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    RunningServer,
    apply_response_patch,
    eventually,
    pod_review,
    start_server,
    stop_server,
)
from tests.registry_support import (  # noqa: F401 - fixtures
    Pki,
    RecordingServer,
    Registry,
    free_port,
    make_pki,
    push_image,
    registry_fixture,
)
from webhook.adapters.registry.manifest import Presence
from webhook.adapters.registry.presence import PresenceChecker
from webhook.core.config import Mirror, config_from_data
from webhook.core.errors import ConfigError
from webhook.core.reference import parse_normalized

MANY = 3000


# --- helpers -----------------------------------------------------------------------------


def mirror_config(endpoint: str, *, ca: Path | None, creds: Path | None = None,
                  budget: float = 2.0, **checks: int) -> str:
    lines = ["mirrorChecks:", f"  budgetSeconds: {budget}",
             *(f"  {key}: {value}" for key, value in checks.items()),
             "mirrors:", f"  - endpoint: {endpoint}", "    hosts: [docker.io]",
             "    policy: if-present"]
    if ca:
        lines.append(f"    caFile: {ca}")
    if creds:
        lines.append(f"    pullCredentialConfigPath: {creds}")
    return "\n".join(lines) + "\n"


def pod(images: list[str], *, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": f"c{i}", "image": image}
                                    for i, image in enumerate(images)]}}


def review_of(images: list[str], *, dry_run: bool = False,
              annotations: dict[str, str] | None = None) -> dict[str, Any]:
    review = pod_review(pod(images, annotations=annotations))
    review["request"]["dryRun"] = dry_run
    return review


def answer(server: RunningServer, review: dict[str, Any], *,
           timeout: float = 60) -> dict[str, Any]:
    """The AdmissionReview response (asserting the answer is one)."""
    reply = server.review(review, timeout=timeout)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]  # type: ignore[no-any-return]


def images_after(review: dict[str, Any], response: dict[str, Any]) -> list[str]:
    return [c["image"] for c in apply_response_patch(review, response)["spec"]["containers"]]


def manifest_heads(registry: Registry, prefix: str) -> list[str]:
    """The paths of the manifest HEADs the registry served under /v2/`prefix`."""
    needle = f'"HEAD /v2/{prefix}'
    return [line.split(needle, 1)[1].split(" ", 1)[0] for line in registry.access_lines()
            if needle in line]


def plain_mirror(url: str, ca: Path | None = None) -> Mirror:
    entry: dict[str, Any] = {"endpoint": url, "hosts": ["docker.io"], "policy": "if-present"}
    if ca:
        entry["caFile"] = str(ca)
    return config_from_data({"mirrors": [entry]}, source="test").mirrors[0]


class Gate:
    """A loopback mirror whose answers wait until the test opens the gate (or `hold`
    seconds pass), counting the requests it holds at once."""

    def __init__(self, *, status: int = 404, hold: float = 20.0, pki: Pki | None = None,
                 digest: str = "sha256:" + "ab" * 32) -> None:
        self.open = threading.Event()
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.status, self.hold, self.digest = status, hold, digest
        self.server = RecordingServer(self.respond, pki=pki)

    def respond(self, _request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            self.open.wait(self.hold)
        finally:
            with self.lock:
                self.now -= 1
        headers = {"Docker-Content-Digest": self.digest} if self.status == 200 else {}
        return self.status, headers, b""

    @property
    def paths(self) -> list[str]:
        return [r["path"] for r in self.server.requests]

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.open.set()
        self.server.stop()


@pytest.fixture(scope="module")
def wide(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        RunningServer]:
    """A server whose if-present mirror is the real registry, with the default limits."""
    creds = registry.docker_config(tmp_path_factory.mktemp("creds") / "config.json")
    server = start_server(tmp_path_factory.mktemp("wide"),
                          mirror_config(registry.url, ca=registry.ca_file, creds=creds))
    yield server
    stop_server(server)


# --- 1. one pod cannot stall the webhook ----------------------------------------------------


def test_a_dry_run_pod_with_thousands_of_images_asks_at_most_the_cap_and_healthz_answers(
        registry: Registry, wide: RunningServer) -> None:
    images = ["docker.io/kci/app:1.0"] + [f"docker.io/kci/wide-{i}:1.0" for i in range(MANY)]
    review = review_of(images, dry_run=True)
    result: dict[str, Any] = {}
    admission = threading.Thread(target=lambda: result.update(answer(wide, review)))
    health: list[int] = []
    with wide.client() as client:
        client.timeout = httpx.Timeout(30.0)     # liveness, not speed
        admission.start()
        while admission.is_alive() or not health:
            health.append(client.get("/healthz").status_code)
            time.sleep(0.02)
    admission.join(timeout=60)
    assert health and set(health) == {200}

    assert result["allowed"] is True
    after = images_after(review, result)
    assert after[0] == f"{registry.host}/kci/app:1.0"           # asked first, and answered
    assert after[1:] == images[1:]                               # all the others kept
    warnings = result["warnings"]
    assert warnings[0] == (f"{MANY + 1 - 32} of {MANY + 1} images not checked on their "
                           "if-present mirror and kept as written (pulled from their own "
                           "registry): at most 32 mirror lookups per admission "
                           "(mirrorChecks.maxLookupsPerAdmission)")
    # No warning per image past the cap: the one above says it.
    assert not any(f"kci/wide-{i}:" in w for w in warnings for i in range(31, MANY))

    registry.wait_count("HEAD", "/v2/kci/app/manifests/1.0", 1)
    asked = set(manifest_heads(registry, "kci/wide-"))
    assert asked <= {f"{i}/manifests/1.0" for i in range(31)}, sorted(asked)[:5]
    assert len(asked) <= 31


def test_lookups_past_the_cap_are_not_sent_and_one_mirror_gets_at_most_its_slots(
        tmp_path: Path) -> None:
    """A variant at the HTTP level, with small limits: 5 lookups per admission, 2 at a
    time; the mirror answers slowly, so a third at once would show."""
    with Gate(status=404, hold=0.3) as gate:
        server = start_server(tmp_path, mirror_config(
            gate.server.url, ca=None, budget=4.0, maxLookupsPerAdmission=5,
            maxInFlightPerMirror=2))
        try:
            images = [f"docker.io/kci/slot-{i}:1.0" for i in range(100)]
            response = answer(server, review_of(images))
        finally:
            stop_server(server)
    assert sorted(gate.paths) == [f"/v2/kci/slot-{i}/manifests/1.0" for i in range(5)]
    assert gate.most <= 2
    assert response["warnings"][0].startswith("95 of 100 images not checked")
    assert sum("does not have it" in w for w in response["warnings"]) == 5


def test_lookups_waiting_for_a_slot_are_abandoned_at_the_budget_and_never_sent() -> None:
    """One slot; the mirror holds the first request past the admission's budget. The
    others never took a slot, and nobody else waits for them: never sent. The one on the
    wire goes on and its answer is cached."""
    with Gate(status=404) as gate:
        mirror = plain_mirror(gate.server.url)

        async def scenario() -> tuple[list[Presence | None], Presence, dict[str, int]]:
            checker = PresenceChecker(timeout=10, max_in_flight_per_mirror=1,
                                      failures_before_cooldown=1)
            try:
                refs = [(mirror, parse_normalized(f"kci/queued-{i}:1.0")) for i in range(6)]
                answers = await checker.answer_all(refs, budget=0.3, limit=32)
                gate.open.set()
                await asyncio.sleep(0)
                for _ in range(200):           # the request on the wire finishes
                    if not checker._inflight:
                        break
                    await asyncio.sleep(0.05)
                cached = await checker.check_image(mirror, refs[0][1])
                return answers, cached, checker.stats
            finally:
                await checker.aclose()

        answers, cached, stats = asyncio.run(scenario())
    assert answers == [Presence("unanswered", "no answer within the 0.3s budget")] * 6
    assert all(answer is not None and answer.timed_out for answer in answers)
    assert gate.paths == ["/v2/kci/queued-0/manifests/1.0"]
    assert stats["abandoned"] == 5 and stats["lookups"] == 6
    assert cached.status == "absent" and stats["cache_hits"] == 1


# --- 2. no shared penalty of our own making ------------------------------------------------


def refused_mirror() -> Mirror:
    """Nothing listens there: every lookup fails at once (connection refused)."""
    return plain_mirror(f"https://127.0.0.1:{free_port()}")


def test_a_dry_runs_failures_never_cool_a_mirror_down() -> None:
    mirror = refused_mirror()

    async def scenario() -> list[Presence]:
        checker = PresenceChecker(timeout=5, failures_before_cooldown=2, cooldown=300)
        try:
            dry = [await checker.check(mirror, "kci/app", f"{i}", dry_run=True)
                   for i in range(5)]
            real = [await checker.check(mirror, "kci/app", f"r{i}") for i in range(3)]
            return dry + real
        finally:
            await checker.aclose()

    results = asyncio.run(scenario())
    assert [p.detail for p in results[:5]] == ["connection refused"] * 5
    # Real admissions' failures do count: the mirror cools down after two of them.
    assert [p.detail for p in results[5:7]] == ["connection refused"] * 2
    assert results[7].detail.startswith("mirror in cool-down after 2 failures")


def test_a_lookup_a_real_admission_joined_counts_even_if_a_dry_run_started_it() -> None:
    mirror = refused_mirror()

    async def scenario() -> Presence:
        checker = PresenceChecker(timeout=5, failures_before_cooldown=1, cooldown=300)
        try:
            await asyncio.gather(checker.check(mirror, "kci/app", "1", dry_run=True),
                                 checker.check(mirror, "kci/app", "1"))
            return await checker.check(mirror, "kci/app", "2", dry_run=True)
        finally:
            await checker.aclose()

    assert asyncio.run(scenario()).detail.startswith("mirror in cool-down after 1 failures")


def test_a_wait_for_a_slot_is_never_the_mirrors_failure() -> None:
    """One slot held by a slow lookup; admissions whose budget ends while they wait for it
    are our own time-outs: with a threshold of one failure, the mirror is still asked."""
    with Gate(status=404) as gate:
        mirror = plain_mirror(gate.server.url)

        async def scenario() -> Presence:
            checker = PresenceChecker(timeout=10, max_in_flight_per_mirror=1,
                                      failures_before_cooldown=1, cooldown=300)
            try:
                for i in range(4):
                    await checker.answer_all([(mirror, parse_normalized(f"kci/w-{i}:1"))],
                                             budget=0.1, limit=32)
                gate.open.set()
                return await checker.check(mirror, "kci/after", "1")
            finally:
                await checker.aclose()

        after = asyncio.run(scenario())
    assert after.status == "absent", after
    assert "/v2/kci/after/manifests/1" in gate.paths


def test_dry_runs_through_the_server_leave_the_mirror_for_everyone(tmp_path: Path) -> None:
    """A tenant's dry runs against a failing mirror (HTTP 500) do not cool it down for
    the next real pod; real pods' failures do, after three in a row."""
    failing = RecordingServer(lambda _request: (500, {}, b""))
    server = start_server(tmp_path, mirror_config(failing.url, ca=None))
    try:
        for i in range(5):
            answer(server, review_of([f"docker.io/kci/dry-{i}:1.0"], dry_run=True))
        sent = len(failing.requests)
        real = [answer(server, review_of([f"docker.io/kci/real-{i}:1.0"])) for i in range(4)]
    finally:
        stop_server(server)
        failing.stop()
    assert sent == 5
    assert all("check failed: HTTP 500" in r["warnings"][0] for r in real[:3])
    assert "mirror in cool-down after 3 failures" in real[3]["warnings"][0]
    assert len(failing.requests) == sent + 3


def test_a_pod_that_will_be_refused_asks_no_mirror(registry: Registry,
                                                   wide: RunningServer) -> None:
    push_image(registry, "kci/judged", "1.0")
    bad = {"k8s.ksyun.com/kci-host-aliases": "not json"}
    refused = answer(wide, review_of(["docker.io/kci/judged:1.0"], annotations=bad))
    assert refused["allowed"] is False
    assert "kci-host-aliases" in refused["status"]["message"]
    assert registry.wait_count("HEAD", "/v2/kci/judged/manifests/1.0", 1, timeout=1.0) == 0
    # The same pod without the bad annotation asks, and uses the mirror.
    review = review_of(["docker.io/kci/judged:1.0"])
    admitted = answer(wide, review)
    assert images_after(review, admitted) == [f"{registry.host}/kci/judged:1.0"]
    assert registry.wait_count("HEAD", "/v2/kci/judged/manifests/1.0", 1) >= 1


def test_a_pod_that_turns_mirrors_off_asks_no_mirror(registry: Registry,
                                                     wide: RunningServer) -> None:
    review = review_of(["docker.io/kci/switched-off:1.0"],
                       annotations={"kci-webhook/mirrors": "off"})
    response = answer(wide, review)
    assert response["allowed"] is True
    assert images_after(review, response) == ["docker.io/kci/switched-off:1.0"]
    assert registry.wait_count("HEAD", "/v2/kci/switched-off/manifests/1.0", 1,
                               timeout=1.0) == 0


# --- 3. a config reload during a lookup ---------------------------------------------------


def test_a_config_reload_during_a_slow_lookup_lets_the_admission_finish(
        tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with Gate(status=200, pki=pki) as gate:
        text = mirror_config(gate.server.url, ca=pki.ca_file, budget=8.0)
        server = start_server(tmp_path / "server", text,
                              env={"KCI_WEBHOOK_TIMEOUT_SECONDS": "10"})
        try:
            review = review_of(["docker.io/kci/reloaded:1.0"])
            result: dict[str, Any] = {}
            admission = threading.Thread(
                target=lambda: result.update(answer(server, review, timeout=30)))
            admission.start()
            assert eventually(lambda: len(gate.paths) == 1)
            (tmp_path / "server" / "config.yaml").write_text(
                text.replace("budgetSeconds: 8.0", "budgetSeconds: 7.0"))
            assert eventually(lambda: "config reloaded" in server.log.read_text())
            gate.open.set()
            admission.join(timeout=30)
            # The next pod is asked by the new checker (the old one's cache went with it).
            again = answer(server, review)
        finally:
            stop_server(server)
    assert result["allowed"] is True
    assert images_after(review, result) == [f"{gate.server.host}/kci/reloaded:1.0"]
    assert images_after(review, again) == [f"{gate.server.host}/kci/reloaded:1.0"]
    assert len(gate.paths) == 2


def test_a_retired_checker_serves_its_holders_then_closes() -> None:
    with Gate(status=200) as gate:
        mirror = plain_mirror(gate.server.url)

        async def scenario() -> tuple[Presence, Presence]:
            checker = PresenceChecker(timeout=10)
            checker.hold()
            pending = asyncio.create_task(checker.check(mirror, "kci/held", "1"))
            while not gate.paths:
                await asyncio.sleep(0.02)
            await checker.retire()             # a reload: still held, so not closed
            gate.open.set()
            held = await pending
            await checker.release()            # the last holder: closed now
            return held, await checker.check(mirror, "kci/held", "2")

        held, later = asyncio.run(scenario())
    assert held.status == "present"
    assert later == Presence("error", "presence checker is closed")


def test_a_lookup_cancelled_under_an_admission_is_no_answer_not_an_error() -> None:
    with Gate(status=200) as gate:
        mirror = plain_mirror(gate.server.url)

        async def scenario() -> tuple[list[Presence | None], dict[str, int]]:
            checker = PresenceChecker(timeout=10)
            asking = asyncio.create_task(checker.answer_all(
                [(mirror, parse_normalized("kci/cut:1"))], budget=10, limit=32))
            while not gate.paths:
                await asyncio.sleep(0.02)
            await checker.aclose()             # shutdown, or a reload with no holder
            return await asking, checker.stats

        answers, stats = asyncio.run(scenario())
    assert answers == [Presence("unanswered", "no answer: the lookup was cancelled "
                                              "(config reload or shutdown)")]
    assert stats["cancelled"] == 1
    assert answers[0] is not None and not answers[0].timed_out   # no clock ran out


# --- the settings ---------------------------------------------------------------------------


def test_the_limits_are_settings_with_defaults() -> None:
    default = config_from_data({}, source="t").mirror_checks
    assert (default.max_lookups_per_admission, default.max_in_flight_per_mirror) == (32, 16)
    set_ = config_from_data({"mirrorChecks": {"maxLookupsPerAdmission": 5,
                                              "maxInFlightPerMirror": 2}},
                            source="t").mirror_checks
    assert (set_.max_lookups_per_admission, set_.max_in_flight_per_mirror) == (5, 2)


@pytest.mark.parametrize(("key", "value"), [
    ("maxLookupsPerAdmission", 0), ("maxLookupsPerAdmission", 1001),
    ("maxLookupsPerAdmission", 2.5), ("maxLookupsPerAdmission", True),
    ("maxInFlightPerMirror", 0), ("maxInFlightPerMirror", 257),
    ("maxInFlightPerMirror", "16"),
])
def test_the_limits_refuse_what_is_not_a_whole_number_in_range(key: str,
                                                               value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_data({"mirrorChecks": {key: value}}, source="c.yaml")
    assert f"c.yaml: mirrorChecks.{key}: expected a whole number from 1 to " in str(
        caught.value)
