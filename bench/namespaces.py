"""Admission cost with 1 and with 1,000 namespaces in the namespace cache.

    python -m bench.namespaces

The namespace cache is filled through its real watch-event path (`NamespaceCache.apply`
with Namespace objects as the API server sends them), every namespace carrying host
aliases and a pull secret; then the 6 KB review is admitted in one of those namespaces,
with `context_for` built exactly as the server builds it. The two figures should match:
admission reads one dict entry, whatever the number of namespaces.
"""

from __future__ import annotations

import statistics
from typing import Any

import orjson

from bench.entry import admit_once, admit_timer
from bench.samples import CONFIG_PATH, TARGET_SAMPLE, load_samples
from webhook.adapters.namespaces import NamespaceCache
from webhook.core import config as config_mod
from webhook.core.admission.envelope import decode
from webhook.core.mutation.context import Context


def namespace_event(index: int) -> dict[str, Any]:
    name = f"team-{index}"
    alias = {"ip": f"10.{index // 256}.{index % 256}.1", "hostnames": [f"reg.{name}.example"]}
    return {"type": "ADDED", "object": {
        "kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": name, "resourceVersion": str(1000 + index), "annotations": {
            "k8s.ksyun.com/kci-host-aliases": orjson.dumps([alias]).decode(),
            "kci-webhook/image-pull-secrets": f"{name}-pull"}}}}


def per_admission_us(namespaces: int, body: bytes, repeats: int = 7) -> float:
    cache = NamespaceCache(None)
    for index in range(namespaces):
        cache.apply(namespace_event(index))
    config = config_mod.load_config(CONFIG_PATH.read_bytes(), source=str(CONFIG_PATH))
    environment = config_mod.environment_defaults({})

    def context_for(namespace: str) -> Context:        # as webhook.server.state.AppState does
        return Context(config=config, environment=environment, namespace=namespace,
                       namespace_layer=cache.get(namespace))

    assert len(cache) == namespaces
    decision = admit_once(body, context_for)
    assert decision.outcome == "mutated" and not decision.warnings, decision.warnings
    timer = admit_timer(body, context_for)
    number = 2000
    return statistics.median(timer(number) / number * 1e6 for _ in range(repeats))


def main() -> None:
    sample = next(s for s in load_samples() if s.key == TARGET_SAMPLE)
    review = decode(sample.body)
    # admit in the last namespace created, so the lookup is never the first entry
    body = sample.body.replace(f'"namespace":"{review.namespace}"'.encode(),
                               b'"namespace":"team-0"')
    print("admission of the 6 KB review, median µs, namespace cache filled by watch events")
    results = {}
    for count in (1, 1000) * 4:           # interleaved: the VM's speed drifts
        results.setdefault(count, []).append(per_admission_us(count, body))
    for count, figures in results.items():
        print(f"  {count:>5} namespace(s) cached: best {min(figures):6.1f} µs, median "
              f"{statistics.median(figures):6.1f} µs "
              f"(runs: {', '.join(f'{f:.1f}' for f in figures)})")


if __name__ == "__main__":
    main()
