"""In-process cost of one admission: `webhook.core.admission.pipeline.admit(body,
context_for=..., ask=...)`, the entry point the server runs (awaited as `bench.entry` does),
and the same work cut into its stages so a regression shows where it came from.

Stages, timed inside the pipeline (a clock between them, medians; their sum is close to
`admit`, the rest is the glue between them):
- decode: `envelope.decode` — orjson parse of the body and the envelope checks;
- mutate: `create.mutate(pod, context)` — validation, layers, image rewrites;
- diff:   `patch.diff` — JSONPatch ops from the changed spine;
- check:  `patch.check` — apply the ops to a spine copy and compare with the mutation;
- encode: the response — audit annotation, base64 patch, orjson dump of the review.

`admit` is timed as `timeit` would (garbage collector on, as in the server), several repeats
of a calibrated loop of awaited calls; min and median are reported in µs per call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bench.entry import admit_once, admit_timer
from bench.procs import machine_cpu_seconds, speed_probe
from bench.samples import Sample
from webhook.core.admission import envelope, patch
from webhook.core.mutation.context import Context
from webhook.core.mutation.create import mutate

STAGES = ("decode", "mutate", "diff", "check", "encode")


@dataclass(frozen=True)
class Timing:
    min_us: float
    median_us: float

    def as_dict(self) -> dict[str, float]:
        return {"min_us": round(self.min_us, 2), "median_us": round(self.median_us, 2)}


def measure(timer: Callable[[int], float], *, repeats: int, target_s: float) -> Timing:
    """µs per call: `repeats` loops, each calibrated to take about `target_s` seconds;
    `timer(number)`: the seconds `number` calls take."""
    number = 1
    while (elapsed := timer(number)) < target_s / 10:   # also warms every cache
        number *= 10
    number = max(1, round(number * target_s / elapsed))
    runs = [timer(number) / number * 1e6 for _ in range(repeats)]
    return Timing(min(runs), statistics.median(runs))


def _encode(request: envelope.Request, outcome: Any, ops: list[dict[str, Any]]) -> bytes:
    """What `dispatch._patched` does after diff and check: the audit annotation and the
    response body."""
    audit = {}
    if outcome.rewritten:
        audit["original-images"] = orjson.dumps(
            {n: old for n, (old, _new) in outcome.rewritten.items()}).decode()
    return envelope.answer(request, "mutated", allowed=True, warnings=outcome.warnings,
                           patch_ops=ops, audit=audit).body


def bench_sample(sample: Sample, context_for: Callable[[str], Context], *, repeats: int,
                 target_s: float) -> dict[str, Any]:
    body = sample.body
    decision = admit_once(body, context_for)
    if decision.outcome != "mutated":
        raise SystemExit(f"bench: sample {sample.key} was {decision.outcome}, not mutated: "
                         f"{decision.message or decision.warnings}")
    if bool(decision.warnings) is not sample.warns:  # else it exercises a mistake
        raise SystemExit(f"bench: sample {sample.key} draws warnings: {decision.warnings} "
                         f"(expected: {sample.warns})")
    request = envelope.decode(body)
    ctx = context_for(request.namespace)
    outcome = mutate(request.object, ctx)
    ops = patch.diff(request.object, outcome.pod)
    patch.check(request.object, ops, outcome.pod)
    if _encode(request, outcome, ops) != decision.body:
        raise SystemExit(f"bench: the staged pipeline does not reproduce admit() for "
                         f"{sample.key}; update bench/inprocess.py to follow "
                         "webhook.core.admission.dispatch")

    probe_before = speed_probe()
    (busy0, steal0), own0, wall0 = machine_cpu_seconds(), time.process_time(), time.monotonic()
    admit = measure(admit_timer(body, context_for), repeats=repeats, target_s=target_s)
    stages = staged(body, context_for, iterations=max(200, int(5 * target_s * 1e6
                                                               / admit.median_us)))
    (busy1, steal1), own1, wall1 = machine_cpu_seconds(), time.process_time(), time.monotonic()
    wall = wall1 - wall0
    probe_after = speed_probe()
    return {
        "sample": sample.key,
        "title": sample.title,
        "bytes": len(body),
        "patch_ops": len(ops),
        "response_bytes": len(decision.body),
        "admit": admit.as_dict(),
        "stages_median_us": {name: round(us, 2) for name, us in stages.items()},
        "stages_sum_us": round(sum(stages.values()), 2),
        # what else ran meanwhile, in cores: other processes, and the hypervisor's steal
        "other_cores": round(max(0.0, busy1 - busy0 - (own1 - own0)) / wall, 2),
        "steal_cores": round((steal1 - steal0) / wall, 2),
        "speed_probe_us": [probe_before, probe_after],
    }


def staged(body: bytes, context_for: Callable[[str], Context], *,
           iterations: int) -> dict[str, float]:
    """The admission pipeline with a clock between stages, on a freshly decoded review each
    time (as in the server: timing a stage alone on one reused object flatters it), the
    median of each stage in µs."""
    clock = time.perf_counter_ns
    samples: dict[str, list[int]] = {name: [] for name in STAGES}
    decode, mutate_, diff, check, encode = (samples[name].append for name in STAGES)
    for _ in range(iterations):
        t0 = clock()
        request = envelope.decode(body)
        t1 = clock()
        outcome = mutate(request.object, context_for(request.namespace))
        t2 = clock()
        ops = patch.diff(request.object, outcome.pod)
        t3 = clock()
        patch.check(request.object, ops, outcome.pod)
        t4 = clock()
        _encode(request, outcome, ops)
        t5 = clock()
        decode(t1 - t0)
        mutate_(t2 - t1)
        diff(t3 - t2)
        check(t4 - t3)
        encode(t5 - t4)
    return {name: statistics.median(values) / 1000 for name, values in samples.items()}


def run(samples: list[Sample], context_for: Callable[[str], Context], *,
        quick: bool) -> list[dict[str, Any]]:
    repeats, target_s = (3, 0.03) if quick else (7, 0.2)
    return [bench_sample(s, context_for, repeats=repeats, target_s=target_s) for s in samples]


def table(results: list[dict[str, Any]]) -> list[str]:
    head = (f"{'sample':<11}{'size':>8}{'ops':>5}{'admit min':>11}{'median':>9}  |"
            + "".join(f"{s:>8}" for s in STAGES) + f"{'sum':>8}{'other':>7}{'steal':>6}"
            + f"{'probe µs':>10}")
    lines = [head, "-" * len(head)]
    for r in results:
        stages = "".join(f"{r['stages_median_us'][s]:8.1f}" for s in STAGES)
        lines.append(f"{r['sample']:<11}{r['bytes'] / 1024:7.1f}K{r['patch_ops']:>5}"
                     f"{r['admit']['min_us']:11.1f}{r['admit']['median_us']:9.1f}  |"
                     f"{stages}{r['stages_sum_us']:8.1f}{r['other_cores']:7.2f}"
                     f"{r['steal_cores']:6.2f}"
                     f"{'/'.join(f'{p:.0f}' for p in r['speed_probe_us']):>10}")
    return lines
