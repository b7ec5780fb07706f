"""Load over TLS: a real `kci-webhook serve` driven by `wrk` at fixed concurrencies.

`wrk` (Debian package; built with OpenSSL, so `https://` URLs are TLS) runs `post.lua`,
which POSTs one AdmissionReview per request on keep-alive connections — as the API server
does — and prints its figures as one JSON line. Around every run the harness reads the CPU
time of the server's processes, of wrk, and of the whole machine, so the table shows how
much of the two cores the load generator and anything else took.

Also here:
- `nagle_canary` (default run: 3 s): the FastAPI app on uvicorn's asyncio loop + h11 at 1
  connection; shows the harness would catch the ~44 ms stall of reused connections
  (TCP_NODELAY is never set on that loop) that the 1-connection runs check for.
- `layers_suite` (`--layers`): the same load against stacks that differ by one layer (a
  static answer from a bare ASGI app; a bare ASGI app calling `admit`; the FastAPI app),
  each with and without TLS: server CPU per request, layer by layer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs
from bench.samples import BENCH_DIR, CONFIG_PATH, REPO, Sample
from webhook.adapters.tls.issue import ensure_dev_certificates

LUA = BENCH_DIR / "post.lua"


@dataclass(frozen=True)
class Plan:
    duration: float           # seconds per measured run
    warmup: float             # seconds of unrecorded load after each server start
    connections: tuple[int, ...]
    single_worker_connections: tuple[int, ...]
    threads: int | None       # wrk threads; None: 1 for one connection, else 2


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk not found; `make deps` installs it (Debian package wrk)")
    return found


def wrk_version() -> str:
    out = subprocess.run([wrk_binary(), "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).splitlines()[0].split(" Copyright")[0].strip()


def wrk_tls_library() -> str:
    """The TLS library wrk is linked with (Debian's wrk: OpenSSL), or what is missing."""
    try:
        out = subprocess.run(["ldd", wrk_binary()], capture_output=True, text=True).stdout
    except OSError:
        return "unknown (no ldd)"
    found = [line.split()[0] for line in out.splitlines() if "libssl" in line]
    return found[0] if found else "NOT linked with OpenSSL: https:// URLs will fail"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for servers: no KCI_* defaults, POD_NAMESPACE or metrics directory
    from the caller, so the server mutates exactly as the in-process benchmark does."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KCI_") and k not in ("POD_NAMESPACE", "PROMETHEUS_MULTIPROC_DIR")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def serve_server(workdir: Path, workers: int) -> procs.Server:
    """`python -m webhook serve` exactly as deployed (uvloop, httptools, no access log),
    with development certificates in a temporary directory."""
    port = procs.free_port()
    certs = workdir / "certs"
    argv = [procs.python(), "-m", "webhook", "serve", "--workers", str(workers),
            "--host", "127.0.0.1", "--port", str(port), "--config", str(CONFIG_PATH),
            "--certs-dir", str(certs), "--log-level", "warning"]
    env = clean_env()
    if workers > 1:     # serve would make one in /tmp and leave it there; keep it in ours
        metrics_dir = workdir / f"metrics-{port}"
        metrics_dir.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return procs.Server(argv, env, port, workdir / f"serve-{port}.log",
                        ca_file=certs / "ca.crt")


def uvicorn_server(workdir: Path, app: str, workers: int, *, tls: bool, factory: bool = False,
                   loop: str = "uvloop", http: str = "httptools",
                   body_path: Path | None = None) -> procs.Server:
    """uvicorn from its command line, for the layer comparison and the Nagle canary; TLS
    with the development certificates `serve` wrote."""
    port = procs.free_port()
    certs = workdir / "certs"
    if tls:     # the same development CA and certificate `serve` writes (and reuses)
        ensure_dev_certificates(certs)
    argv = [procs.python(), "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--loop", loop, "--http", http, "--no-access-log",
            "--log-level", "warning", "--timeout-keep-alive", "120"]
    if factory:
        argv.append("--factory")
    if tls:
        argv += ["--ssl-certfile", str(certs / "tls.crt"), "--ssl-keyfile", str(certs / "tls.key")]
    env = clean_env(KCI_WEBHOOK_CONFIG=str(CONFIG_PATH),
                    BENCH_BODY=str(body_path) if body_path else "")
    if workers > 1:     # as `serve` does: metrics of all workers in files (webhook.server.metrics)
        metrics_dir = workdir / f"metrics-{port}"
        metrics_dir.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return procs.Server(argv, env, port, workdir / f"uvicorn-{port}.log",
                        ca_file=certs / "ca.crt" if tls else None)


def verify(server: procs.Server, sample: Sample, expected: bytes) -> None:
    """One request before the load: the server must answer 200 with exactly the bytes the
    in-process `admit` gives (same config, same sample), so we measure the real work."""
    status, body = server.request("POST", "/mutate", sample.body)
    if status != 200 or body != expected:
        raise SystemExit(f"bench: {server.url('/mutate')} answered {status} with a body that "
                         f"differs from the in-process admission:\n{body[:400]!r}\n"
                         f"{server.log_tail()}")


def run_wrk(server: procs.Server, body_path: Path, *, connections: int, threads: int,
            duration: float, delay_ms: float | None = None) -> dict[str, Any]:
    """One wrk run. `delay_ms`: each connection waits this long on average after every
    answer before its next request (`post.lua`'s pacing); None: as fast as answers come."""
    cmd = [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{duration:g}s",
           "--timeout", "5s", "--latency", "-s", str(LUA), server.url("/mutate")]
    env = {**os.environ, "BENCH_BODY": str(body_path)}
    if delay_ms is not None:
        env["BENCH_DELAY_MS"] = f"{delay_ms:.4f}"
    workers = server.worker_pids()
    probe_before = procs.speed_probe()
    server_cpu0 = procs.cpu_seconds(server.pids)
    (busy0, steal0), wrk0 = procs.machine_cpu_seconds(), procs.children_cpu_seconds()
    t0 = time.monotonic()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    wall = time.monotonic() - t0
    busy1, steal1 = procs.machine_cpu_seconds()
    busy, steal = busy1 - busy0, steal1 - steal0
    wrk_cpu = procs.children_cpu_seconds() - wrk0
    server_cpu1 = procs.cpu_seconds(server.pids)
    probe_after = procs.speed_probe()
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}\n"
                         f"{server.log_tail()}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    server_cpu = {pid: server_cpu1.get(pid, 0.0) - server_cpu0.get(pid, 0.0)
                  for pid in server.pids}
    total_server = sum(server_cpu.values())
    requests = data["requests"]
    latency = data["latency_us"]
    errors = data["errors"]
    return {
        "connections": connections,
        "wrk_threads": threads,
        "duration_s": round(data["duration_us"] / 1e6, 3),
        "requests": requests,
        "rps": round(requests / (data["duration_us"] / 1e6), 1),
        "p50_ms": latency["p50"] / 1000,
        "p90_ms": latency["p90"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "p999_ms": latency["p999"] / 1000,
        "max_ms": latency["max"] / 1000,
        "mean_ms": round(latency["mean"] / 1000, 3),
        "errors": errors,
        "error_count": sum(errors.values()),
        # CPU, in cores busy on average over the run (the machine has os.cpu_count())
        "server_cores": round(total_server / wall, 2),
        "server_worker_cores": [round(server_cpu.get(pid, 0.0) / wall, 2) for pid in workers],
        "wrk_cores": round(wrk_cpu / wall, 2),
        "other_cores": round(max(0.0, busy - total_server - wrk_cpu) / wall, 2),
        "steal_cores": round(steal / wall, 2),
        "server_cpu_us_per_request": round(total_server / requests * 1e6, 1) if requests else None,
        "speed_probe_us": [probe_before, probe_after],
    }


def threads_for(connections: int, plan: Plan) -> int:
    return plan.threads or (1 if connections == 1 else 2)


def warm(server: procs.Server, body_path: Path, seconds: float) -> None:
    if seconds > 0:
        run_wrk(server, body_path, connections=16, threads=2, duration=seconds)


def tls_suite(workdir: Path, sample: Sample, expected: bytes, plan: Plan,
              log: Any) -> list[dict[str, Any]]:
    body_path = workdir / f"{sample.key}.json"
    body_path.write_bytes(sample.body)
    results = []
    for workers, connections in ((2, plan.connections), (1, plan.single_worker_connections)):
        if not connections:
            continue
        with procs.running(serve_server(workdir, workers), workers) as server:
            verify(server, sample, expected)
            warm(server, body_path, plan.warmup)
            for conns in connections:
                log(f"  serve --workers {workers}: wrk {conns} connection(s), "
                    f"{plan.duration:g} s ...")
                result = run_wrk(server, body_path, connections=conns,
                                 threads=threads_for(conns, plan), duration=plan.duration)
                results.append({"stack": "kci-webhook serve (TLS)", "workers": workers,
                                "sample": sample.key, "tls_session": server.tls_session,
                                **result})
    return results


LAYERS = (
    # (label, uvicorn app, factory)
    ("bare ASGI, static answer", "bench.apps:static_app", False),
    ("bare ASGI + admit()", "bench.apps:admit_app", False),
    ("FastAPI app (webhook.server.app)", "webhook.server.app:app_from_environ", True),
)


def layers_suite(workdir: Path, sample: Sample, expected: bytes, plan: Plan, log: Any,
                 connections: int = 16, workers: int = 2) -> list[dict[str, Any]]:
    """Same load, stacks one layer apart: what TLS, FastAPI and our code each cost."""
    body_path = workdir / f"{sample.key}.json"
    body_path.write_bytes(sample.body)
    results = []
    for tls in (False, True):
        for label, app, factory in LAYERS:
            server = uvicorn_server(workdir, app, workers, tls=tls, factory=factory,
                                    body_path=body_path)
            with procs.running(server, workers):
                verify(server, sample, expected)
                warm(server, body_path, plan.warmup)
                log(f"  layers: {label}, {'TLS' if tls else 'plain HTTP'}, "
                    f"{connections} connections, {plan.duration:g} s ...")
                result = run_wrk(server, body_path, connections=connections,
                                 threads=threads_for(connections, plan), duration=plan.duration)
            results.append({"stack": label, "tls": tls, "workers": workers,
                            "sample": sample.key, **result})
    return results


def nagle_canary(workdir: Path, sample: Sample, expected: bytes, duration: float, log: Any,
                 *, both: bool = False) -> list[dict[str, Any]]:
    """The FastAPI app on uvicorn's asyncio loop + h11 (the settings that stall reused
    connections: TCP_NODELAY is never set), 2 workers, TLS, one connection: proves the
    1-connection run would show the stall. With `both`, also the same app on uvloop + httptools."""
    body_path = workdir / f"{sample.key}.json"
    body_path.write_bytes(sample.body)
    results = []
    for loop, http in (("asyncio", "h11"), ("uvloop", "httptools"))[:2 if both else 1]:
        server = uvicorn_server(workdir, "webhook.server.app:app_from_environ", 2, tls=True,
                                factory=True, loop=loop, http=http, body_path=body_path)
        with procs.running(server, 2):
            verify(server, sample, expected)
            log(f"  nagle canary: {loop} + {http}, 1 connection, {duration:g} s ...")
            result = run_wrk(server, body_path, connections=1, threads=1, duration=duration)
        results.append({"stack": f"FastAPI app, {loop} + {http} (TLS)", "workers": 2,
                        "sample": sample.key, **result})
    return results


def table(results: list[dict[str, Any]], *, with_stack: bool = False) -> list[str]:
    stack_w = max((len(r["stack"]) + (6 if "tls" in r else 0) for r in results),
                  default=0) + 2
    head = ((f"{'stack':<{stack_w}}" if with_stack else "")
            + f"{'workers':>7}{'conns':>6}{'req/s':>9}{'p50 ms':>8}{'p90 ms':>8}"
            f"{'p99 ms':>8}{'max ms':>8}{'errors':>7}{'srv µs/req':>11}"
            f"{'srv cores':>10}{'wrk':>6}{'other':>6}{'steal':>6}{'probe µs':>10}")
    lines = [head, "-" * len(head)]
    for r in results:
        stack = r["stack"] + ((", TLS" if r["tls"] else ", HTTP") if "tls" in r else "")
        lines.append(
            (f"{stack:<{stack_w}}" if with_stack else "")
            + f"{r['workers']:>7}{r['connections']:>6}{r['rps']:>9.0f}{r['p50_ms']:>8.2f}"
            f"{r['p90_ms']:>8.2f}{r['p99_ms']:>8.2f}{r['max_ms']:>8.1f}{r['error_count']:>7}"
            f"{r['server_cpu_us_per_request'] or 0:>11.0f}{r['server_cores']:>10.2f}"
            f"{r['wrk_cores']:>6.2f}{r['other_cores']:>6.2f}{r['steal_cores']:>6.2f}"
            f"{'/'.join(f'{p:.0f}' for p in r['speed_probe_us']):>10}")
    return lines


def layer_breakdown(results: list[dict[str, Any]]) -> list[str]:
    """Server CPU per request of the served stack over TLS, split by difference between
    stacks one layer apart (all four parts are measured; they add up to the total)."""
    cpu = {(r["stack"], r["tls"]): r["server_cpu_us_per_request"] for r in results}
    static, raw, full = (label for label, _app, _factory in LAYERS)
    try:
        total = cpu[(full, True)]
        parts = [
            ("uvicorn + httptools + event loop + sockets (static answer, HTTP)",
             cpu[(static, False)]),
            ("TLS (static answer: TLS - HTTP)", cpu[(static, True)] - cpu[(static, False)]),
            ("our core: admit() (bare + admit - static, TLS)",
             cpu[(raw, True)] - cpu[(static, True)]),
            ("FastAPI/Starlette + webhook/server/ (FastAPI app - bare + admit, TLS)",
             cpu[(full, True)] - cpu[(raw, True)]),
        ]
    except (KeyError, TypeError):
        return []
    lines = [f"server CPU per request of the FastAPI app over TLS: {total:.0f} µs, of which"]
    for label, value in parts:
        lines.append(f"  {label:<68}{value:7.0f} µs {value / total:6.0%}")
    lines.append("(CPU per request rises when other processes compete for the cores: "
                 "see 'other')")
    return lines
