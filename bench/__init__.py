"""Benchmarks for kci-webhook (`python -m bench`, `make bench`).

- `bench.inprocess`: µs per admission in-process, with a stage breakdown.
- `bench.load`: a real `kci-webhook serve` over TLS driven by wrk (`post.lua`) at fixed
  concurrencies, and a Nagle canary; optional layer comparison (`--layers`).
- `bench.sampling`: optional py-spy profile of the workers under load (`--profile`).
- `bench.ceiling`: the ceiling, a minimal mutator and FastAPI endpoint giving the webhook's
  answer byte for byte; `bench.ceiling_figures` measures the webhook beside it (in process,
  per container, served, and latency at half the served maximum through `bench.paced`).

The figures are measured, never asserted in tests: see docs/benchmarks.md.
"""
