"""One pod with thousands of distinct images against an `if-present` mirror.

    python -m bench.presence                    # 3,000 images, dry run
    python -m bench.presence --images 20000

A real registry (Debian's docker-registry, TLS with our CA, htpasswd auth) is the mirror
for docker.io with `policy: if-present`; a real `kci-webhook serve` over TLS gets one
dry-run Pod CREATE whose containers each name a different image. While it is being
answered, another client asks `/healthz` again and again. Printed: how long the admission
took to be answered, the slowest `/healthz` answer meanwhile, how many manifest requests
reached the registry, how many images were kept, and the server's memory (VmHWM, the
peak resident set) after the answer. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from tests.conftest import pod_review, start_server, stop_server
from tests.registry_support import push_image, start_registry


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.presence", description=__doc__)
    p.add_argument("--images", type=int, default=3000, help="distinct images in the pod")
    p.add_argument("--budget", type=float, default=1.0, help="mirrorChecks.budgetSeconds")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="give up on the admission after this many seconds")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-presence-") as tmp:
        work = Path(tmp)
        registry = start_registry(work / "registry")
        try:
            push_image(registry, "kci/app", "1.0")
            creds = registry.docker_config(work / "config.json")
            config = (f"mirrorChecks:\n  budgetSeconds: {args.budget}\n"
                      f"mirrors:\n  - endpoint: {registry.url}\n    hosts: [docker.io]\n"
                      f"    policy: if-present\n    caFile: {registry.ca_file}\n"
                      f"    pullCredentialConfigPath: {creds}\n")
            server = start_server(work / "server", config)
            try:
                run(server, registry, args)
            finally:
                stop_server(server)
        finally:
            registry.stop()
    return 0


def run(server: object, registry: object, args: argparse.Namespace) -> None:
    from tests.conftest import RunningServer
    from tests.registry_support import Registry
    assert isinstance(server, RunningServer) and isinstance(registry, Registry)
    containers = [{"name": f"c{i}", "image": f"docker.io/kci/bench-{i}:1.0"}
                  for i in range(args.images)]
    review = pod_review({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wide"},
                         "spec": {"containers": containers}})
    review["request"]["dryRun"] = True
    body = orjson.dumps(review)
    done = threading.Event()
    health: list[float] = []

    def poll_health() -> None:
        with server.client() as client:
            client.timeout = args.timeout
            while not done.is_set():
                started = time.monotonic()
                client.get("/healthz").raise_for_status()
                health.append(time.monotonic() - started)
                time.sleep(0.05)

    poller = threading.Thread(target=poll_health, daemon=True)
    with server.client() as client:
        client.timeout = args.timeout
        started = time.monotonic()
        poller.start()
        reply = client.post("/mutate", content=body,
                            headers={"content-type": "application/json"})
        elapsed = time.monotonic() - started
    done.set()
    poller.join(timeout=args.timeout)
    response = reply.json()["response"]
    heads = [line for line in registry.access_lines() if '"HEAD /v2/kci/bench-' in line]
    print(f"images: {args.images} (body {len(body) / 1024:.0f} KiB), dry run, "
          f"budget {args.budget:g} s")
    print(f"admission answered in {elapsed:.2f} s: HTTP {reply.status_code}, "
          f"allowed={response.get('allowed')}, warnings={len(response.get('warnings', []))}")
    print(f"/healthz meanwhile: {len(health)} answers, slowest {max(health, default=0):.3f} s")
    print(f"manifest HEADs at the registry: {len(heads)} "
          f"({len({line.split()[6] for line in heads if len(line.split()) > 6})} paths)")
    print(f"server peak RSS: {peak_rss_kib(server.process.pid) / 1024:.0f} MiB")
    for warning in response.get("warnings", [])[:2]:
        print(f"  warning: {warning[:160]}")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
