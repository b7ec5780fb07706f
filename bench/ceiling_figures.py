"""kci-webhook beside its ceiling (`bench/ceiling.py`), measured in one run so that the
machine's drift hits both sides: four figures, each with its goal.

1. In process, the 6 KB review (deploy-3): `pipeline.admit` (awaited, as the server runs
   it) against `ceiling(body)`, in alternating rounds; the ratio of the medians.
2. Per container: the same on deploy-3's pod widened to 1, 3, 10 and 50 containers
   (`bench.samples.wide_review`); a least-squares line through each side's medians, and
   the ratio of the slopes.
3. Served: `kci-webhook serve --workers 2` and the ceiling's FastAPI endpoint on uvicorn
   (2 workers, uvloop + httptools, the same development certificate), both running, wrk
   at 16 connections against one then the other, alternating; the ratio of req/s.
4. Latency under load: each server paced to half its own served maximum, its best round
   (other processes only ever slow a round down), over 16 keep-alive connections
   (`bench.paced`); p50 and p99.

Before any timing, the ceiling must answer every measured review byte for byte as
kci-webhook does (in process, and each server once over TLS).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import load, paced, procs
from bench.ceiling import ceiling, check_same_answer
from bench.entry import admit_once, admit_timer
from bench.samples import WIDE_CONTAINERS, Sample, wide_samples
from webhook.core.mutation.context import Context

Timer = Callable[[int], float]
CONNECTIONS = 16
WORKERS = 2

# (key, what, goal, unit, higher is better): the figures python -m bench holds to a goal
GOALS = (
    ("ceiling_inprocess_ratio", "in-process admission / minimal mutator, 6 KB review",
     2.5, "×", False),
    ("ceiling_slope_ratio", "per-container slope / minimal mutator's", 2.0, "×", False),
    ("ceiling_served_ratio", "served req/s / minimal endpoint's (2 workers, TLS, 16 conns)",
     0.95, "×", True),
    ("ceiling_p99_half_ms", "p99 at 50% of served max (TLS, 16 keep-alive conns)",
     5.0, "ms", False),
)


def ceiling_timer(body: bytes) -> Timer:
    """Seconds for `number` calls of the ceiling, one after another (GC on, as `admit`'s)."""
    def seconds(number: int) -> float:
        clock = time.perf_counter
        start = clock()
        for _ in range(number):
            ceiling(body)
        return clock() - start
    return seconds


def _calibrated(timer: Timer, target_s: float) -> int:
    """Calls per round so that a round takes about `target_s` (also warms every cache)."""
    number = 1
    while (elapsed := timer(number)) < target_s / 10:
        number *= 10
    return max(1, round(number * target_s / elapsed))


def side_by_side(timers: dict[str, Timer], *, repeats: int, target_s: float
                 ) -> dict[str, dict[str, float]]:
    """µs per call of each timer, min and median of `repeats` rounds taken in turn (the
    order rotating, so none always runs first)."""
    numbers = {name: _calibrated(timer, target_s) for name, timer in timers.items()}
    runs: dict[str, list[float]] = {name: [] for name in timers}
    names = list(timers)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            runs[name].append(timers[name](numbers[name]) / numbers[name] * 1e6)
    return {name: {"min_us": round(min(v), 2), "median_us": round(statistics.median(v), 2)}
            for name, v in runs.items()}


def inprocess(base: Sample, context_for: Callable[[str], Context], *, quick: bool
              ) -> dict[str, Any]:
    """Figures 1 and 2: the 6 KB review, then its pod at each width."""
    repeats, target_s = (3, 0.03) if quick else (7, 0.1)
    bodies = [base, *wide_samples(base.body)]
    for sample in bodies:
        check_same_answer(sample.key, sample.body, admit_once(sample.body, context_for).body)
    probe_before = procs.speed_probe()
    (busy0, steal0), own0, wall0 = procs.machine_cpu_seconds(), time.process_time(), \
        time.monotonic()
    timed = {s.key: side_by_side({"kci": admit_timer(s.body, context_for),
                                  "ceiling": ceiling_timer(s.body)},
                                 repeats=repeats, target_s=target_s) for s in bodies}
    (busy1, steal1), own1, wall = procs.machine_cpu_seconds(), time.process_time(), \
        time.monotonic() - wall0
    probe_after = procs.speed_probe()
    widths = list(WIDE_CONTAINERS)
    fits = {}
    for side in ("kci", "ceiling"):
        medians = [timed[f"wide-{n}"][side]["median_us"] for n in widths]
        slope, intercept = statistics.linear_regression(widths, medians)
        fits[side] = {"intercept_us": round(intercept, 2), "slope_us": round(slope, 2)}
    main = timed[base.key]
    return {
        "sample": base.key, "bytes": len(base.body),
        "kci": main["kci"], "ceiling": main["ceiling"],
        "ratio": round(main["kci"]["median_us"] / main["ceiling"]["median_us"], 2),
        "widths": {n: {side: timed[f"wide-{n}"][side] for side in ("kci", "ceiling")}
                   for n in widths},
        "fit": fits,
        "slope_ratio": round(fits["kci"]["slope_us"] / fits["ceiling"]["slope_us"], 2),
        "speed_probe_us": [probe_before, probe_after],
        # what else ran meanwhile, in cores: other processes, and the hypervisor's steal
        "other_cores": round(max(0.0, busy1 - busy0 - (own1 - own0)) / wall, 2),
        "steal_cores": round((steal1 - steal0) / wall, 2),
    }


def served(workdir: Path, sample: Sample, expected: bytes, *, quick: bool, duration: float,
           log: Any) -> dict[str, Any]:
    """Figures 3 and 4: both servers up at once, wrk against each in turn."""
    rounds, run_s, warmup = (2, 1.0, 1.0) if quick else (3, 5.0, 2.0)
    calibrate_s, paced_s = (1.0, 2.0) if quick else (2.0, duration)
    body_path = workdir / f"{sample.key}.json"
    body_path.write_bytes(sample.body)
    servers = {"kci": load.serve_server(workdir, WORKERS),
               "ceiling": load.uvicorn_server(workdir, "bench.ceiling:create_app", WORKERS,
                                              tls=True, factory=True)}
    with procs.running(servers["kci"], WORKERS), procs.running(servers["ceiling"], WORKERS):
        for server in servers.values():
            load.verify(server, sample, expected)
            load.warm(server, body_path, warmup)
        runs: dict[str, list[dict[str, Any]]] = {"kci": [], "ceiling": []}
        for r in range(rounds):
            for name in (("kci", "ceiling") if r % 2 == 0 else ("ceiling", "kci")):
                log(f"  ceiling: {name}, wrk {CONNECTIONS} connections, {run_s:g} s "
                    f"(round {r + 1} of {rounds}) ...")
                runs[name].append(load.run_wrk(servers[name], body_path,
                                               connections=CONNECTIONS, threads=2,
                                               duration=run_s))
        medians = {name: statistics.median(run["rps"] for run in v) for name, v in runs.items()}
        best = {name: max(run["rps"] for run in v) for name, v in runs.items()}
        latency = {}
        for name, server in servers.items():
            log(f"  ceiling: {name} paced to 50% of {best[name]:.0f} req/s, "
                f"{CONNECTIONS} connections ...")
            latency[name] = paced.at_rate(server, body_path, rate=best[name] / 2,
                                          connections=CONNECTIONS, threads=2,
                                          duration=paced_s, calibrate_s=calibrate_s)
        tls = {name: server.tls_session for name, server in servers.items()}
    pairs = [k["rps"] / c["rps"] for k, c in zip(runs["kci"], runs["ceiling"], strict=True)]
    return {
        "workers": WORKERS, "connections": CONNECTIONS, "sample": sample.key,
        "tls_session": tls, "rounds": runs,
        "kci_rps": round(medians["kci"], 1), "ceiling_rps": round(medians["ceiling"], 1),
        "kci_best_rps": round(best["kci"], 1), "ceiling_best_rps": round(best["ceiling"], 1),
        "ratio": round(statistics.median(pairs), 3),
        "latency": latency,
    }


def run(workdir: Path | None, base: Sample, context_for: Callable[[str], Context], *,
        quick: bool, duration: float, log: Any) -> dict[str, Any]:
    """The in-process figures, then (given a working directory) the served ones."""
    log("ceiling: in-process, kci-webhook beside the minimal mutator ...")
    out: dict[str, Any] = {"inprocess": inprocess(base, context_for, quick=quick)}
    if workdir is not None:
        expected = admit_once(base.body, context_for).body
        out["served"] = served(workdir, base, expected, quick=quick, duration=duration,
                               log=log)
    return out


def figures(result: dict[str, Any]) -> dict[str, float]:
    """The values `GOALS` names, from what `run` measured."""
    out = {}
    if "inprocess" in result:
        out["ceiling_inprocess_ratio"] = result["inprocess"]["ratio"]
        out["ceiling_slope_ratio"] = result["inprocess"]["slope_ratio"]
    if "served" in result:
        out["ceiling_served_ratio"] = result["served"]["ratio"]
        out["ceiling_p99_half_ms"] = result["served"]["latency"]["kci"]["p99_ms"]
    return out


def _verdict(key: str, value: float) -> str:
    _key, _what, goal, unit, higher = next(g for g in GOALS if g[0] == key)
    met = value >= goal if higher else value <= goal
    bound = f"{'≥' if higher else '≤'} {goal:g}{unit if unit == '×' else ' ' + unit}"
    return f"{bound:<10}{'met' if met else 'NOT MET'}"


def table(result: dict[str, Any]) -> list[str]:
    values = figures(result)
    head = f"{'':<44}{'kci-webhook':>17}{'ceiling':>17}{'ratio':>8}   goal"
    lines = [head, "-" * (len(head) + 16)]
    if "inprocess" in result:
        ip = result["inprocess"]
        kci, top = ip["fit"]["kci"], ip["fit"]["ceiling"]
        lines += [
            f"{'in-process, ' + ip['sample'] + ', µs (median)':<44}"
            f"{ip['kci']['median_us']:>17.1f}{ip['ceiling']['median_us']:>17.1f}"
            f"{ip['ratio']:>7.2f}×   {_verdict('ceiling_inprocess_ratio', ip['ratio'])}",
            f"{'per container, µs (fit over 1/3/10/50)':<44}"
            f"{_line(kci):>17}{_line(top):>17}"
            f"{ip['slope_ratio']:>7.2f}×   {_verdict('ceiling_slope_ratio', ip['slope_ratio'])}",
        ]
    if "served" in result:
        sv = result["served"]
        kci_lat, top_lat = sv["latency"]["kci"], sv["latency"]["ceiling"]
        lines += [
            f"{'served, req/s, median (2 workers, TLS, 16)':<44}"
            f"{sv['kci_rps']:>17.0f}{sv['ceiling_rps']:>17.0f}"
            f"{sv['ratio']:>8.3f}   {_verdict('ceiling_served_ratio', sv['ratio'])}",
            f"{'p99 ms at 50% of served max (16 conns)':<44}"
            f"{kci_lat['p99_ms']:>17.2f}{top_lat['p99_ms']:>17.2f}{'':>8}   "
            f"{_verdict('ceiling_p99_half_ms', values['ceiling_p99_half_ms'])}",
        ]
    if "inprocess" in result:
        ip = result["inprocess"]
        lines += ["", "  containers   " + "".join(f"{n:>10}" for n in ip["widths"])
                  + "   (µs per admission, median)"]
        for side, label in (("kci", "kci-webhook"), ("ceiling", "ceiling")):
            lines.append(f"  {label:<13}" + "".join(f"{w[side]['median_us']:>10.1f}"
                                                    for w in ip["widths"].values()))
        lines.append(f"  speed probe {'/'.join(f'{p:.0f}' for p in ip['speed_probe_us'])} µs; "
                     f"other cores {ip['other_cores']:.2f}, steal {ip['steal_cores']:.2f}")
    if "served" in result:
        sv = result["served"]
        for side, label in (("kci", "kci-webhook"), ("ceiling", "ceiling")):
            rounds = ", ".join(f"{r['rps']:.0f}" for r in sv["rounds"][side])
            others = "/".join(f"{r['other_cores']:.2f}" for r in sv["rounds"][side])
            probes = "/".join(f"{r['speed_probe_us'][0]:.0f}" for r in sv["rounds"][side])
            lines.append(f"  served {label:<12} req/s by round: {rounds} (other cores {others}; "
                         f"probe µs {probes}); TLS {sv['tls_session'][side]}")
        for side, label in (("kci", "kci-webhook"), ("ceiling", "ceiling")):
            lat = sv["latency"][side]
            share = lat["rps"] / (2 * lat["target_rps"])
            lines.append(
                f"  paced  {label:<12} target {lat['target_rps']:.0f} req/s, achieved "
                f"{lat['rps']:.0f} ({share:.0%} of the best round), "
                f"delay {lat['delay_ms']:.2f} ms: p50 {lat['p50_ms']:.2f} ms, p90 "
                f"{lat['p90_ms']:.2f}, p99 {lat['p99_ms']:.2f}, max {lat['max_ms']:.1f}, "
                f"errors {lat['error_count']}, other cores {lat['other_cores']:.2f}")
            if lat["delay_ms"] == 0:
                lines.append(f"         {'':<12} NOT PACED: no wait left, the server ran at "
                             "its maximum (the machine gave less than the target; see other "
                             "cores); rerun")
            elif not 0.4 <= share <= 0.6:
                lines.append(f"         {'':<12} OFF TARGET: the rate the machine gave moved "
                             "between the maximum and this run (see other cores); rerun")
    return lines


def _line(fit: dict[str, float]) -> str:
    return f"{fit['intercept_us']:.1f} + {fit['slope_us']:.2f}/c"
