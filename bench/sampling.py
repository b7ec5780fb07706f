"""`python -m bench --profile`: where a worker's CPU goes under load, sampled with py-spy.

py-spy (`pip install py-spy`; not a project dependency) samples every process of a real
`kci-webhook serve --workers 2` (`--subprocesses`) with native frames (`--native`), so
OpenSSL, uvloop, httptools and orjson show up, while wrk drives 16 connections. Each
sampled stack is attributed to the category of its innermost frame that has one:

    our core (webhook/ but webhook/server/) · our shell (webhook/server/) · TLS (OpenSSL, the
    ssl module, uvloop's SSLProtocol) · FastAPI/Starlette (and OpenTelemetry hooks) ·
    uvicorn + httptools · event loop + socket syscalls (uvloop/libuv, libc) · other

The sampler takes CPU from the same two cores, so throughput drops while it runs; the
proportions are what this mode is for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench import load, procs
from bench.samples import Sample

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("our shell (webhook/server/)", ("(webhook/server/",)),
    ("our core (webhook/*: admit, mutate, patch)", ("(webhook/",)),
    ("TLS (OpenSSL, ssl module, SSLProtocol)",
     ("libssl", "libcrypto", "(_ssl.c", "(ssl.py", "SSLProtocol", "SSLObject", "_ssl__")),
    ("FastAPI/Starlette (+ OpenTelemetry hooks)",
     ("(fastapi/", "(starlette/", "(opentelemetry/", "(anyio/")),
    ("uvicorn + httptools", ("(uvicorn/", "llhttp", "httptools", "(parser.c", "(url_parser.c")),
    ("event loop + socket syscalls", ("(loop.c", "(libc.so", "(stream.c", "(core.c",
                                      "(linux.c", "(uv-common.c", "(_asynciomodule.c",
                                      "(asyncio/", "(libuv")),
)
OTHER = "other (interpreter, GC, threads)"
# Blocked, not running: py-spy's idle detection misses these with --native (the
# supervisor's ping pipe, the resource tracker, threads waiting on a lock, epoll).
BLOCKED = ("(multiprocessing/connection.py", "(multiprocessing/resource_tracker.py",
           "lock_PyThread_acquire_lock", "pthread_cond_timedwait", "epoll_pwait", "epoll_wait")


def py_spy() -> str | None:
    return os.environ.get("PY_SPY") or shutil.which("py-spy")


def classify(frames: list[str]) -> str:
    for frame in reversed(frames):            # innermost first
        for name, patterns in CATEGORIES:
            if any(p in frame for p in patterns):
                return name
    return OTHER


def summarize(raw: str) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    orjson_samples = blocked = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if any(pattern in stack for pattern in BLOCKED):
            blocked += int(count)
            continue
        frames = stack.split(";")
        counts[classify(frames)] += int(count)
        if any("orjson" in f for f in frames):
            orjson_samples += int(count)
    total = sum(counts.values())
    return {"samples": total, "blocked_samples_excluded": blocked,
            "categories": {name: round(n / total, 4) for name, n in counts.most_common()}
            if total else {},
            "orjson_share": round(orjson_samples / total, 4) if total else 0.0}


def run(workdir: Path, sample: Sample, expected: bytes, plan: load.Plan, out_dir: Path,
        log: Any) -> dict[str, Any] | None:
    spy = py_spy()
    if not spy:
        log("  profile: py-spy not found (pip install py-spy, or set PY_SPY); skipped")
        return None
    body_path = workdir / f"{sample.key}.json"
    body_path.write_bytes(sample.body)
    raw_path = out_dir / "profile-raw.txt"
    duration = max(4, int(plan.duration))
    with procs.running(load.serve_server(workdir, 2), 2) as server:
        load.verify(server, sample, expected)
        load.warm(server, body_path, plan.warmup)
        assert server.proc is not None
        log(f"  profile: py-spy on serve --workers 2 at 16 connections, {duration} s ...")
        spy_cmd = [spy, "record", "--native", "--subprocesses", "--rate", "100",
                   "--duration", str(duration), "--format", "raw", "--output", str(raw_path),
                   "--pid", str(server.proc.pid)]
        result: dict[str, Any] = {}

        def drive() -> None:
            result.update(load.run_wrk(server, body_path, connections=16, threads=2,
                                       duration=duration + 2))

        driver = threading.Thread(target=drive)
        driver.start()
        spied = subprocess.run(spy_cmd, capture_output=True, text=True)
        driver.join()
    if spied.returncode != 0 or not raw_path.exists():
        log(f"  profile: py-spy failed: {spied.stderr.strip()[-400:]}")
        return None
    summary = summarize(raw_path.read_text())
    summary["raw"] = str(raw_path)
    summary["rps_while_sampled"] = result.get("rps")
    return summary


def table(summary: dict[str, Any]) -> list[str]:
    lines = [f"{'category (innermost frame that has one)':<48}{'share of samples':>17}",
             "-" * 65]
    for name, share in summary["categories"].items():
        lines.append(f"{name:<48}{share:>17.1%}")
    lines.append(f"{'  of all samples, under orjson':<48}{summary['orjson_share']:>17.1%}")
    lines.append(f"({summary['samples']} running samples, {summary['blocked_samples_excluded']} "
                 f"blocked ones left out; {summary['rps_while_sampled']:.0f} req/s while "
                 f"sampled; stacks in {summary['raw']})")
    return lines
