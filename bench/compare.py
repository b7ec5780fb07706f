"""`python -m bench.compare --base REV`: the in-process cost of one admission on this tree and
on another revision, measured side by side in one run.

A figure from yesterday's run says little on a VM whose speed drifts by tens of percent in
minutes (see `bench.procs`). Two trees measured in alternating rounds, in two long-lived
processes of the same Python, see the same drift, so their ratio is what a change cost.

The other revision is checked out into a temporary `git worktree` (removed afterwards). Each
side runs in its own process with its own tree first on `sys.path`, and uses its own
`bench.samples` (samples and the server-shaped `context_for`), so each measures its code as
its own benchmark would. A tree that compiles its core (`hack/native.py`) is built first, as
`make bench` builds it: each side times what it would ship; `--pure` times both as
interpreted Python (this tree's compiled modules set aside for the run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLES = ("deploy-3", "kci-3", "deploy-3/update-noop", "deploy-3/set-image",
                   "deploy-3/debug")

# Runs in each child: read "KEY NUMBER" lines, answer µs per call for that many calls. KEY is
# a bench.samples key, or BASE/KIND for an UPDATE case of bench.updates (the pod as stored
# after that tree's own CREATE). What is timed is the entry point the tree's server runs: the
# awaited `pipeline.admit`, or, in a revision from before it, the plain `review.admit`.
CHILD = r"""
import asyncio, gc, sys, time, timeit
sys.path.insert(0, sys.argv[1])
# An editable install maps `webhook` to its own tree ahead of sys.path: set it aside.
sys.meta_path[:] = [f for f in sys.meta_path
                    if not getattr(f, "__module__", "").startswith("__editable__")]
from bench.samples import context_factory, load_samples
try:
    from webhook.core.admission.pipeline import admit, answer_nothing
except ImportError:
    from webhook.review import admit
    answer_nothing = None
context_for = context_factory()
samples = {s.key: s for s in load_samples()}
bodies = {key: s.body for key, s in samples.items()}
loop = asyncio.new_event_loop()

async def calls(body, number):
    start = time.perf_counter()
    for _ in range(number):
        await admit(body, context_for=context_for, ask=answer_nothing)
    return time.perf_counter() - start

def seconds(body, number):
    if answer_nothing is None:
        timer = timeit.Timer(lambda: admit(body, context_for=context_for), setup=gc.enable)
        return timer.timeit(number)
    return loop.run_until_complete(calls(body, number))

def body_of(key):
    if key not in bodies and "/" in key:
        from bench.updates import reviews
        base = key.split("/")[0]
        for kind, body in reviews(samples[base], context_for).items():
            bodies[f"{base}/{kind}"] = body
    return bodies[key]

print("ready", flush=True)
for line in sys.stdin:
    key, number = line.split()
    print(seconds(body_of(key), int(number)) / int(number) * 1e6, flush=True)
"""


class Side:
    """One tree's measuring process."""

    def __init__(self, name: str, tree: Path) -> None:
        self.name = name
        # Both sides read this tree's captured reviews (older revisions looked elsewhere).
        env = {**os.environ, "KCI_BENCH_CASES": str(REPO / "tests" / "data" / "admission")}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tree)], cwd=tree, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self._line() != "ready":
            raise SystemExit(f"bench.compare: the {name} tree did not start")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def run(self, key: str, number: int) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{key} {number}\n")
        self.proc.stdin.flush()
        return float(self._line())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """`rev` in a temporary worktree of this repository."""
    with tempfile.TemporaryDirectory(prefix="kci-bench-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), rev],
                       cwd=REPO, check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                           check=False)


def build_native(tree: Path) -> None:
    """Compile `tree`'s core in place when that revision compiles it (what it ships)."""
    if (tree / "hack" / "native.py").exists():
        subprocess.run([sys.executable, "-m", "hack.native"], cwd=tree, check=True)


@contextmanager
def set_aside_native(tree: Path) -> Iterator[None]:
    """`tree`'s compiled modules moved out of the way for the run, then put back."""
    from hack import native
    suffix = native.SUFFIX
    found = list((tree / "webhook").rglob(f"*{suffix}"))
    with tempfile.TemporaryDirectory(prefix="kci-native-") as tmp:
        moved = [(path, Path(tmp) / str(i)) for i, path in enumerate(found)]
        for path, aside in moved:
            path.rename(aside)
        try:
            yield
        finally:
            for path, aside in moved:
                aside.rename(path)


def compare(base: Side, head: Side, key: str, *, rounds: int, target_s: float
            ) -> dict[str, object]:
    """Alternate the two sides for `rounds` rounds (ABBA order, so neither always goes
    first), each a loop calibrated to about `target_s` seconds; µs per call."""
    number = 1
    while (head.run(key, number) * number) / 1e6 < target_s / 10:   # warms both caches too
        number *= 10
    base.run(key, number)
    number = max(1, round(number * target_s / (head.run(key, number) * number / 1e6)))
    runs: dict[str, list[float]] = {base.name: [], head.name: []}
    for r in range(rounds):
        order = (base, head) if r % 2 == 0 else (head, base)
        for side in order:
            runs[side.name].append(side.run(key, number))
    figures = {name: {"min_us": round(min(v), 2), "median_us": round(statistics.median(v), 2)}
               for name, v in runs.items()}
    ratio = statistics.median(runs[head.name]) / statistics.median(runs[base.name])
    return {"sample": key, "calls_per_round": number, "rounds": rounds, **figures,
            "head_over_base": round(ratio, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="revision to compare against (e.g. HEAD~3)")
    p.add_argument("--samples", default=",".join(DEFAULT_SAMPLES),
                   help="comma list of bench.samples keys, or BASE/KIND for an UPDATE case of "
                        "bench.updates (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=10, help="rounds per side (default: %(default)s)")
    p.add_argument("--target", type=float, default=0.3,
                   help="seconds per round and side (default: %(default)s)")
    p.add_argument("--pure", action="store_true",
                   help="both sides as interpreted Python: no side's core compiled")
    args = p.parse_args(argv)
    results = []
    with checkout(args.base) as tree, \
            (set_aside_native(REPO) if args.pure else contextlib.nullcontext()):
        if not args.pure:
            build_native(tree)
            build_native(REPO)
        base, head = Side(f"base {args.base}", tree), Side("head (this tree)", REPO)
        try:
            for key in args.samples.split(","):
                results.append(compare(base, head, key, rounds=args.rounds,
                                       target_s=args.target))
        finally:
            base.close()
            head.close()
    for r in results:
        names = [k for k in r if isinstance(r[k], dict)]
        print(f"{r['sample']}: " + "; ".join(
            f"{n}: min {r[n]['min_us']:.1f} µs, median {r[n]['median_us']:.1f} µs"  # type: ignore[index]
            for n in names) + f"; head/base {r['head_over_base']:.3f}")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
