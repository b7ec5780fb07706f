"""`python -m bench` — see bench/__init__.py and docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import ceiling_figures, inprocess, load, procs, sampling, updates
from bench.entry import admit_once
from bench.samples import BENCH_DIR, TARGET_SAMPLE, context_factory, load_samples

RESULTS = BENCH_DIR / "results"

# The latency and throughput targets: (key, text, limit, unit, higher is better); then
# the goals beside the ceiling (bench/ceiling.py), as ratios to it
TARGETS = (
    ("inprocess_6kb_us", "in-process admission, 6 KB review (median)", 150.0, "µs", False),
    ("rps_16", "req/s, 2 workers, 16 connections, TLS", 2500.0, "req/s", True),
    ("p99_16_ms", "p99, 2 workers, 16 connections, TLS", 20.0, "ms", False),
    ("p50_1_ms", "p50, 2 workers, 1 connection, TLS", 1.0, "ms", False),
    *ceiling_figures.GOALS,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="In-process µs per admission, then a real `kci-webhook serve` over TLS "
                    "driven by wrk at 1/16/64 connections (2 workers) and 1 connection "
                    "(1 worker), then kci-webhook beside the ceiling (bench/ceiling.py: a "
                    "minimal mutator and endpoint giving the same answer). Writes "
                    "bench/results/latest.json.")
    p.add_argument("--quick", action="store_true",
                   help="smoke run (~55 s): short timings, 2 s load runs, 1 and 16 connections")
    p.add_argument("--only", choices=("inprocess", "tls", "ceiling"),
                   help="run only one part")
    p.add_argument("--duration", type=float, help="seconds per load run (default 10; quick 2)")
    p.add_argument("--connections", help="comma list for 2 workers (default 1,16,64)")
    p.add_argument("--threads", type=int, help="wrk threads (default 1 at 1 connection, else 2)")
    p.add_argument("--body", default=TARGET_SAMPLE,
                   help=f"sample sent over TLS: pod-create, deploy-3, deploy-12, kci-3 "
                        f"(default {TARGET_SAMPLE}, the review the targets are stated for)")
    p.add_argument("--layers", action="store_true",
                   help="also: same load on stacks one layer apart (static / admit / FastAPI, "
                        "HTTP and TLS): server CPU per request by layer")
    p.add_argument("--profile", action="store_true",
                   help="also: py-spy profile of the workers under 16 connections")
    p.add_argument("--nagle-canary", action="store_true",
                   help="run the Nagle canary in full: asyncio+h11 and uvloop+httptools, "
                        "for --duration (by default only asyncio+h11 for 3 s)")
    p.add_argument("--no-canary", action="store_true", help="skip the Nagle canary")
    p.add_argument("--analyze", action="store_true", help="--layers --profile --nagle-canary")
    p.add_argument("--json", type=Path, default=RESULTS / "latest.json",
                   help="where to write the results (default bench/results/latest.json)")
    args = p.parse_args(argv)
    if args.analyze:
        args.layers = args.profile = args.nagle_canary = True
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    samples = {s.key: s for s in load_samples()}
    if args.body not in samples:
        raise SystemExit(f"bench: --body must be one of {', '.join(samples)}")
    context_for = context_factory()
    quick = args.quick
    connections = tuple(int(c) for c in args.connections.split(",")) if args.connections \
        else ((1, 16) if quick else (1, 16, 64))
    plan = load.Plan(duration=args.duration or (2.0 if quick else 10.0),
                     warmup=1.0 if quick else 2.0, connections=connections,
                     single_worker_connections=(1,), threads=args.threads)
    report: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_average_start": procs.load_average(),
                    "speed_probe_us": [procs.speed_probe()]},
    }
    lines: list[str] = []

    if args.only in (None, "inprocess"):
        log("in-process: timing admit() and its stages ...")
        report["inprocess"] = inprocess.run(list(samples.values()), context_for, quick=quick)
        log("in-process: UPDATE beside CREATE of the same pod ...")
        report["updates"] = updates.run(samples, context_for, quick=quick)
        report["machine"]["load_average_after_inprocess"] = procs.load_average()
        report["machine"]["speed_probe_us"].append(procs.speed_probe())

    sample = samples[args.body]
    expected = admit_once(sample.body, context_for).body
    with_ceiling = args.only in (None, "ceiling")
    if (args.only in (None, "tls") or with_ceiling or args.layers or args.profile
            or args.nagle_canary):
        report["wrk"] = f"{load.wrk_version()} ({load.wrk_tls_library()})"
        RESULTS.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="kci-bench-") as tmp:
            workdir = Path(tmp)
            if args.only in (None, "tls"):
                log(f"over TLS: {sample.key} ({len(sample.body)} bytes) ...")
                report["tls"] = load.tls_suite(workdir, sample, expected, plan, log)
            if args.nagle_canary or (args.only in (None, "tls") and not args.no_canary):
                canary_s = plan.duration if args.nagle_canary else min(3.0, plan.duration)
                report["nagle_canary"] = load.nagle_canary(workdir, sample, expected, canary_s,
                                                           log, both=args.nagle_canary)
            if args.layers:
                report["layers"] = load.layers_suite(workdir, sample, expected, plan, log)
            if args.profile:
                report["profile"] = sampling.run(workdir, sample, expected, plan, RESULTS, log)
            if with_ceiling:    # always the review its goals are stated for
                report["ceiling"] = ceiling_figures.run(
                    workdir, samples[TARGET_SAMPLE], context_for, quick=quick,
                    duration=plan.duration, log=log)
    report["machine"]["load_average_end"] = procs.load_average()
    report["machine"]["speed_probe_us"].append(procs.speed_probe())
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    report["targets"] = evaluate(report)

    lines += header(report)
    if "inprocess" in report:
        lines += ["", "In-process, µs per admission: "
                  "webhook.core.admission.pipeline.admit(body) with "
                  "bench/bench-config.yaml", "(timeit, GC on; admit: min and median of "
                  f"{3 if quick else 7} repeats; stages: medians inside the pipeline)", ""]
        lines += inprocess.table(report["inprocess"])
    if "updates" in report:
        lines += ["", "In-process, µs per admission: a pod's UPDATEs beside its CREATE "
                  "(bench/updates.py: label only, set image, kubectl debug)", ""]
        lines += updates.table(report["updates"])
    if "tls" in report:
        lines += ["", f"Over TLS: python -m webhook serve (uvloop + httptools), wrk "
                  f"{plan.duration:g} s per run, body {sample.key} ({len(sample.body)} bytes)",
                  "NOTE: wrk and the server share this machine's "
                  f"{os.cpu_count()} cores; 'wrk' and 'other' columns = cores they used", ""]
        lines += load.table(report["tls"])
    if "nagle_canary" in report:
        lines += ["", "Nagle check (2 workers, TLS, 1 connection): the ~44 ms stall of reused "
                  "connections (uvicorn's asyncio loop never sets TCP_NODELAY) shows "
                  "as p50 ≈ 40 ms;", "the canary runs the same app on the settings that have "
                  "it, so this run would catch it", ""]
        lines += load.table(report["nagle_canary"], with_stack=True)
        lines += nagle_verdict(report)
    if "layers" in report:
        lines += ["", "Layers (2 workers, 16 connections): server CPU per request, stacks one "
                  "layer apart", ""]
        lines += load.table(report["layers"], with_stack=True)
        lines += [""] + load.layer_breakdown(report["layers"])
    if report.get("profile"):
        lines += ["", "Profile (py-spy, native frames, all workers, 16 connections)", ""]
        lines += sampling.table(report["profile"])
    if "ceiling" in report:
        lines += ["", "Ceiling: kci-webhook beside bench/ceiling.py, a minimal mutator (orjson "
                  "parse, image rewrite, JSONPatch, base64, serialize) and its bare FastAPI",
                  "endpoint on uvicorn (uvloop + httptools), same TLS and workers; both give "
                  f"the same answer, byte for byte, for {TARGET_SAMPLE} and its pod at "
                  "1/3/10/50 containers", ""]
        lines += ceiling_figures.table(report["ceiling"])
    if report["targets"]:
        lines += ["", "Targets", ""] + target_table(report["targets"])
    probes = " → ".join(f"{p:g}" for p in report["machine"]["speed_probe_us"])
    lines += ["", f"load average at end {report['machine']['load_average_end']}; speed probe "
              f"start → end {probes} µs; {report['elapsed_s']:.0f} s; results in {args.json}",
              "probe µs: a fixed pure-Python loop timed before/after each measurement. On a "
              "shared VM the host's", "speed drifts with no load or steal to show for it: "
              "compare figures only where the probes agree."]
    print("\n".join(lines))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


def header(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    lines = [f"kci-webhook benchmark ({report['mode']}) {report['started']} — {m['cpus']} CPUs, "
             f"Python {m['python']}, load average at start {m['load_average_start']}"]
    if "wrk" in report:
        session = next((r["tls_session"] for r in report.get("tls", ()) if r.get("tls_session")),
                       "")
        lines.append(f"load generator: {report['wrk']}"
                     + (f"; server's TLS: {session}" if session else ""))
    return lines


def nagle_verdict(report: dict[str, Any]) -> list[str]:
    canary = next((r for r in report["nagle_canary"] if "asyncio" in r["stack"]), None)
    served = [r for r in report.get("tls", ()) if r["connections"] == 1]
    lines = []
    if canary:
        seen = canary["p50_ms"] >= 20
        lines.append(f"  canary asyncio + h11: p50 {canary['p50_ms']:.2f} ms — "
                     + ("stall reproduced, so the check is live" if seen else
                        "no stall seen (the check could not prove it would catch one)"))
    for r in served:
        ok = r["p50_ms"] < 1.0
        lines.append(f"  serve --workers {r['workers']} (uvloop + httptools): p50 "
                     f"{r['p50_ms']:.2f} ms — " + ("no stall, sub-millisecond" if ok else
                                                   "NOT sub-millisecond"
                                                   + (" (stall!)" if r["p50_ms"] >= 20
                                                      else "")))
    return lines


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    measured: dict[str, float] = {}
    for r in report.get("inprocess", ()):
        if r["sample"] == TARGET_SAMPLE:
            measured["inprocess_6kb_us"] = r["admit"]["median_us"]
    measured.update(ceiling_figures.figures(report.get("ceiling", {})))
    for r in report.get("tls", ()):
        if r["workers"] == 2 and r["sample"] == TARGET_SAMPLE:
            if r["connections"] == 16:
                measured["rps_16"] = r["rps"]
                measured["p99_16_ms"] = r["p99_ms"]
            if r["connections"] == 1:
                measured["p50_1_ms"] = r["p50_ms"]
    out = []
    for key, text, limit, unit, higher in TARGETS:
        if key not in measured:
            continue
        value = measured[key]
        met = value >= limit if higher else value <= limit
        out.append({"target": key, "text": text, "limit": limit, "unit": unit,
                    "higher": higher, "value": value, "met": met,
                    "miss_by": None if met else round(abs(value - limit), 2),
                    "miss_by_pct": None if met else round(abs(value - limit) / limit * 100, 1)})
    return out


def target_table(targets: list[dict[str, Any]]) -> list[str]:
    lines = []
    width = max(len(t["text"]) for t in targets) + 2
    for t in targets:
        bound = "≥" if t["higher"] else "≤"
        status = "met" if t["met"] else (f"MISSED by {t['miss_by']:g} {t['unit']} "
                                         f"({t['miss_by_pct']:g}%)")
        goal = f"{bound} {t['limit']:g} {t['unit']}"
        lines.append(f"  {t['text']:<{width}}{goal:<14}measured {t['value']:>8.2f}  {status}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
