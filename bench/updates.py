"""In-process cost of a Pod UPDATE beside the CREATE of the same pod.

Most pod UPDATEs change nothing the webhook acts on — labels, finalizers, a controller's
bookkeeping — and with `UPDATE` registered every one of them now passes through `/mutate`.
They must cost less than the CREATE they follow, though their body carries the pod twice
(`object` and `oldObject`): the fast path compares raw images and KCI annotations and
answers before any parsing or mutation.

For each base sample the pod "as stored" is the CREATE's own result (its patch applied,
plus the uid, resourceVersion and status the API server adds); from it:
- `create`: the CREATE review of the sample, as `bench.inprocess` times it;
- `update-noop`: an UPDATE that adds a label (`kubectl label pod`);
- `set-image`: an UPDATE that bumps one container's tag (`kubectl set image`), rewritten;
- `debug`: an `ephemeralcontainers` UPDATE adding a debug container (`kubectl debug`).
"""

from __future__ import annotations

import base64
import copy
import statistics
from collections.abc import Callable
from typing import Any

import orjson

from bench.entry import admit_once, admit_timer
from bench.samples import Sample
from webhook.core.admission import patch
from webhook.core.admission.envelope import decode
from webhook.core.mutation.context import Context

BASES = ("deploy-3", "kci-3")
KINDS = ("create", "update-noop", "set-image", "debug")
EXPECTED = {"create": "mutated", "update-noop": "unchanged", "set-image": "mutated",
            "debug": "mutated"}


def stored_pod(sample: Sample, context_for: Callable[[str], Context]) -> dict[str, Any]:
    """The pod as the API server keeps it after the CREATE: our patch applied, and the
    fields it sets itself."""
    request = decode(sample.body)
    response = orjson.loads(admit_once(sample.body, context_for).body)["response"]
    pod = patch.apply(copy.deepcopy(request.object),
                      orjson.loads(base64.b64decode(response["patch"])))
    pod["metadata"].update(uid="5f0c3b1e-8a7d-4e2b-9c6f-1d3e5a7b9c0d", resourceVersion="4711",
                           creationTimestamp="2026-12-01T07:00:00Z")
    pod["status"] = {"phase": "Running", "qosClass": "Burstable",
                     "startTime": "2026-12-01T07:00:02Z"}
    return pod  # type: ignore[no-any-return]


def update_review(sample: Sample, old: dict[str, Any], new: dict[str, Any], *,
                  sub_resource: str = "") -> bytes:
    review = orjson.loads(sample.body)
    request = review["request"]
    request.update(operation="UPDATE", object=new, oldObject=old,
                   uid="9d1c6e0a-2b4f-4c8e-a7d3-5e1f0b2c4a6e",
                   options={"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"})
    request["name"] = new["metadata"].get("name") or "pod"
    if sub_resource:
        request["subResource"] = request["requestSubResource"] = sub_resource
    return orjson.dumps(review)


def reviews(sample: Sample, context_for: Callable[[str], Context]) -> dict[str, bytes]:
    """The four reviews of one base sample, by kind."""
    old = stored_pod(sample, context_for)
    labelled = copy.deepcopy(old)
    labelled["metadata"].setdefault("labels", {})["tier"] = "checkout"
    bumped = copy.deepcopy(old)
    original = orjson.loads(sample.body)["request"]["object"]["spec"]["containers"][1]["image"]
    # the second container's image is from a mirrored registry in every base sample
    bumped["spec"]["containers"][1]["image"] = original.rsplit(":", 1)[0] + ":9.9.9"
    debugged = copy.deepcopy(old)
    debugged["spec"]["ephemeralContainers"] = [{
        "name": "debugger-x7k2p", "image": "busybox:1.36", "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
        "stdin": True, "tty": True, "targetContainerName": old["spec"]["containers"][0]["name"]}]
    return {"create": sample.body,
            "update-noop": update_review(sample, old, labelled),
            "set-image": update_review(sample, old, bumped),
            "debug": update_review(sample, old, debugged, sub_resource="ephemeralcontainers")}


def run(samples: dict[str, Sample], context_for: Callable[[str], Context], *,
        quick: bool) -> list[dict[str, Any]]:
    """Per base sample, µs per admission of each kind: min and median of `repeats` rounds,
    the kinds interleaved in every round so that they see the same machine (a shared VM's
    speed drifts by tens of percent within minutes: see `bench.procs`)."""
    repeats, target_s = (3, 0.03) if quick else (7, 0.2)
    results = []
    for key in BASES:
        bodies = reviews(samples[key], context_for)
        timers = {}
        for kind, body in bodies.items():
            decision = admit_once(body, context_for)
            if decision.outcome != EXPECTED[kind] or decision.warnings:
                raise SystemExit(f"bench: {key} {kind} was {decision.outcome} "
                                 f"{decision.warnings or decision.message}, expected "
                                 f"{EXPECTED[kind]} with no warning")
            timers[kind] = _calibrated(admit_timer(body, context_for), target_s)
        runs: dict[str, list[float]] = {kind: [] for kind in bodies}
        for _ in range(repeats):
            for kind, (timer, number) in timers.items():
                runs[kind].append(timer(number) / number * 1e6)
        row: dict[str, Any] = {"sample": key}
        for kind, values in runs.items():
            row[kind] = {"bytes": len(bodies[kind]), "min_us": round(min(values), 2),
                         "median_us": round(statistics.median(values), 2)}
        results.append(row)
    return results


def _calibrated(timer: Callable[[int], float], target_s: float
                ) -> tuple[Callable[[int], float], int]:
    """The timer and the number of calls that take about `target_s` (as
    `inprocess.measure`)."""
    number = 1
    while (elapsed := timer(number)) < target_s / 10:   # also warms every cache
        number *= 10
    return timer, max(1, round(number * target_s / elapsed))


def table(results: list[dict[str, Any]]) -> list[str]:
    head = f"{'sample':<10}" + "".join(f"{kind:>22}" for kind in KINDS) + f"{'noop/create':>13}"
    lines = [head, f"{'':<10}" + "".join(f"{'KB  min / median µs':>22}" for _ in KINDS),
             "-" * len(head)]
    for r in results:
        cells = "".join(f"{r[k]['bytes'] / 1024:6.1f}K {r[k]['min_us']:6.1f} / "
                        f"{r[k]['median_us']:6.1f}" for k in KINDS)
        ratio = r["update-noop"]["median_us"] / r["create"]["median_us"]
        lines.append(f"{r['sample']:<10}{cells}{ratio:13.2f}")
    return lines
