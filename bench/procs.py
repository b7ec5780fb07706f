"""Processes the benchmark starts (servers, wrk) and the CPU time they and others use."""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
import timeit
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()   # fields from "state" on (field 3)


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (uvicorn's workers are spawned children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _proc_stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """utime + stime of each live process, in seconds."""
    out = {}
    for pid in pids:
        fields = _proc_stat(pid)
        if fields:
            out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, steal): CPU seconds all CPUs ran something since boot, and seconds the
    hypervisor gave to someone else (this is a VM: steal is time we were not running)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]] + [0] * 8
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def speed_probe() -> float:
    """µs for a fixed pure-Python workload (best of 7): how fast this host runs Python right
    now. On a shared VM it moves by tens of percent within minutes, with no load or steal
    to show for it; compare figures only between runs whose probes agree."""
    def work() -> int:
        table: dict[str, list[int]] = {}
        for i in range(2000):
            table[str(i)] = [i, i * 2]
        return sum(v[1] for v in table.values())

    timer = timeit.Timer(work)
    return round(min(timer.repeat(7, 10)) / 10 * 1e6, 1)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Server:
    """A server process we started (its own session, so nothing it spawns outlives it)."""

    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    ca_file: Path | None = None     # TLS when set (verified against this CA)
    proc: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)
    tls_session: str = ""           # protocol and cipher of the last TLS request

    @property
    def scheme(self) -> str:
        return "https" if self.ca_file else "http"

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def start(self, workers: int, timeout: float = 40.0) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: server exited with {self.proc.returncode}:\n"
                                 f"  {' '.join(self.argv)}\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = self.request("GET", "/healthz", timeout=2)
                if status == 200:
                    self.pids = descendants(self.proc.pid)
                    if workers == 1 or len(self.worker_pids()) >= workers:
                        return
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"bench: server not ready within {timeout:.0f} s\n"
                                 f"{self.log_tail()}")
            time.sleep(0.2)

    def request(self, method: str, path: str, body: bytes | None = None,
                timeout: float = 10) -> tuple[int, bytes]:
        conn: http.client.HTTPConnection
        if self.ca_file:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context,
                                               timeout=timeout)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            if isinstance(conn.sock, ssl.SSLSocket):
                cipher = conn.sock.cipher()
                self.tls_session = f"{conn.sock.version()} {cipher[0] if cipher else ''}"
            return response.status, response.read()
        finally:
            conn.close()

    def worker_pids(self) -> list[int]:
        """The processes that serve requests (not the supervisor or resource tracker)."""
        if len(self.pids) == 1:
            return self.pids
        return [pid for pid in self.pids
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)    # the session we created for it
            self.proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def running(server: Server, workers: int) -> Iterator[Server]:
    try:
        server.start(workers)
        yield server
    finally:
        server.stop()


def python() -> str:
    return sys.executable
