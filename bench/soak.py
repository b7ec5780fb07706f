"""Soak: moderate load for a long time while the certificate and the config rotate.

    python -m bench.soak                       # 10 minutes, rotations every 30 s
    python -m bench.soak --duration 60 --rate 100

A real `kci-webhook serve --workers 2` over TLS gets a steady stream of AdmissionReviews
(the 6 KB sample) from several clients, each opening a new connection now and then so
new certificates are actually used. Every `--rotate` seconds a new serving certificate
(same CA) replaces the files atomically and the config file is swapped for another valid
one. At the end it prints the failed requests (must be 0), how many certificates and
configs were taken up, and each worker's memory at start and end (must not grow without
bound). Exit code 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import ssl
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from bench import procs
from bench.load import clean_env
from bench.samples import CONFIG_PATH, TARGET_SAMPLE, load_samples
from webhook.adapters.tls.issue import KeyPair, generate_ca, generate_serving_cert, write_pair

OTHER_CONFIG = CONFIG_PATH.read_text().replace("pullSecret:", "# pullSecret:", 1)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def write_certs(directory: Path, ca: KeyPair) -> None:
    serving = generate_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    write_pair(directory, ca=ca, serving=serving)


async def client(url: str, ca_file: Path, body: bytes, rate: float, until: float,
                 counts: dict[str, int], errors: list[str]) -> None:
    """One client at `rate` requests/s; a new connection every 50 requests."""
    context = ssl.create_default_context(cafile=str(ca_file))
    while time.monotonic() < until:
        async with httpx.AsyncClient(verify=context, timeout=10) as http:
            for _ in range(50):
                if time.monotonic() >= until:
                    return
                started = time.monotonic()
                try:
                    reply = await http.post(url, content=body,
                                            headers={"content-type": "application/json"})
                    answer = orjson.loads(reply.content)
                    if reply.status_code != 200 or answer.get("kind") != "AdmissionReview":
                        raise ValueError(f"HTTP {reply.status_code}: {reply.text[:200]}")
                    counts["ok"] += 1
                except Exception as exc:  # noqa: BLE001 - every failure is counted
                    counts["failed"] += 1
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


async def rotate(workdir: Path, ca: KeyPair, config: Path, every: float, until: float,
                 counts: dict[str, int]) -> None:
    texts = [OTHER_CONFIG, CONFIG_PATH.read_text()]
    while True:
        await asyncio.sleep(every)
        if time.monotonic() >= until:
            return
        write_certs(workdir / "certs", ca)
        staged = config.with_suffix(".new")
        staged.write_text(texts[counts["rotations"] % 2])
        staged.replace(config)
        counts["rotations"] += 1


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def soak(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="kci-soak-") as tmp:
        workdir = Path(tmp)
        (workdir / "certs").mkdir()
        ca = generate_ca()
        write_certs(workdir / "certs", ca)
        config = workdir / "config.yaml"
        config.write_text(CONFIG_PATH.read_text())
        (workdir / "metrics").mkdir()
        port = procs.free_port()
        server = procs.Server(
            [procs.python(), "-m", "webhook", "serve", "--workers", "2", "--host", "127.0.0.1",
             "--port", str(port), "--config", str(config), "--log-level", "warning",
             "--cert", str(workdir / "certs" / "tls.crt"),
             "--key", str(workdir / "certs" / "tls.key")],
            clean_env(PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics")), port,
            workdir / "serve.log", ca_file=workdir / "certs" / "ca.crt")
        server.start(2)
        try:
            body = next(s for s in load_samples() if s.key == TARGET_SAMPLE).body
            workers = server.worker_pids()
            await asyncio.sleep(2)
            start_rss = {pid: rss_kib(pid) for pid in workers}
            counts = {"ok": 0, "failed": 0, "rotations": 0}
            errors: list[str] = []
            until = time.monotonic() + args.duration
            per_client = args.rate / args.clients
            print(f"soak: {args.duration:.0f} s at ~{args.rate:.0f} req/s from {args.clients} "
                  f"clients; certificate and config rotated every {args.rotate:.0f} s",
                  flush=True)
            await asyncio.gather(
                *(client(server.url("/mutate"), server.ca_file or Path(), body, per_client,
                         until, counts, errors) for _ in range(args.clients)),
                rotate(workdir, ca, config, args.rotate, until, counts))
            end_rss = {pid: rss_kib(pid) for pid in workers}
            _, scrape = server.request("GET", "/metrics")
            text = scrape.decode()
        finally:
            server.stop()
    reloads = metric(text, 'kci_webhook_config_reloads_total{result="success"}')
    refused = metric(text, 'kci_webhook_config_reloads_total{result="failure"}')
    print(f"requests: {counts['ok'] + counts['failed']} ({counts['ok']} ok, "
          f"{counts['failed']} failed)")
    print(f"rotations: {counts['rotations']} certificate + config swaps; config reloads seen "
          f"by the workers: {reloads:.0f} (refused: {refused:.0f})")
    for pid in start_rss:
        print(f"worker {pid}: RSS {start_rss[pid] / 1024:.1f} MiB at start → "
              f"{end_rss[pid] / 1024:.1f} MiB at end "
              f"({(end_rss[pid] - start_rss[pid]) / 1024:+.1f} MiB)")
    for error in errors[:10]:
        print(f"  failure: {error}")
    return 1 if counts["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s in all")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rotate", type=float, default=30.0, help="seconds between rotations")
    return asyncio.run(soak(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
