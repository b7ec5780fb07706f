"""Latency at a chosen rate: wrk paced to a fraction of the maximum, on keep-alive
connections, as the API server calls a webhook (a pool of persistent connections, each
sending when it has a pod to admit, not as fast as the answers come).

Debian's `wrk` has no rate option (it is not wrk2), so `post.lua` paces each connection
with wrk's `delay()` hook: after every answer, the connection waits `delay_ms` before its
next request. A connection's cycle is then the delay plus the request's own time, which
the delay cannot know in advance: a first run at the delay the target asks for shows the
rate achieved, from which the rest of the cycle is inferred and the delay corrected;
twice, then the measured run. wrk's latency clock starts when a request is written, after
the wait, so the percentiles are those of the requests themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import load, procs


def at_rate(server: procs.Server, body_path: Path, *, rate: float, connections: int,
            threads: int, duration: float, calibrate_s: float, corrections: int = 2
            ) -> dict[str, Any]:
    """One wrk run of `duration` seconds paced to about `rate` requests per second over
    `connections` connections, after `corrections` short runs that adjust the delay; the
    wrk figures, with the target, the delay used and the calibration runs."""
    cycle_ms = 1000.0 * connections / rate     # each connection's period at the target
    delay_ms = cycle_ms
    calibration = []
    for _ in range(corrections):
        run = load.run_wrk(server, body_path, connections=connections, threads=threads,
                           duration=calibrate_s, delay_ms=delay_ms)
        achieved = run["rps"]
        calibration.append({"delay_ms": round(delay_ms, 3), "rps": achieved,
                            "p99_ms": run["p99_ms"]})
        if achieved <= 0:
            break
        rest_ms = 1000.0 * connections / achieved - delay_ms   # the request's share of a cycle
        delay_ms = max(0.0, cycle_ms - rest_ms)
    result = load.run_wrk(server, body_path, connections=connections, threads=threads,
                          duration=duration, delay_ms=delay_ms)
    return {"target_rps": round(rate, 1), "delay_ms": round(delay_ms, 3),
            "calibration": calibration, **result}
