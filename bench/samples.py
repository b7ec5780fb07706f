"""The AdmissionReviews the benchmark sends, and the context it mutates them in.

Three captured reviews from `tests/data/admission/` and one built here: a 3-container
pod that carries the KCI annotations (dns-config, host-aliases, http-registry) as the KCI
documentation's examples do: one image from docker.io and one digest-pinned from gcr.io,
both rewritten to their mirrors, and one from a private registry spoken to over HTTP and
resolved through a host alias — so every branch of the mutation runs, and the answer
carries no warning.

The same pod once more in each annotation dialect (`dia-kci`, `dia-eci`, `dia-eks`,
`dia-cci`), in a namespace whose `kci-webhook/dialect` annotation selects it, as the
server's namespace cache would hold it: what the vendor has no annotation for is written
in the pod's own `spec.hostAliases` / `spec.dnsConfig`. None draws a warning: every
dialect has a key that says the gcr.io mirror skips TLS verification.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from webhook.core import config as config_mod
from webhook.core.dialects import DIALECT_KEY, DIALECTS
from webhook.core.model import DnsConfig, DnsOption, HostAlias, dns_config_to_spec
from webhook.core.model import host_aliases_to_spec as aliases_to_spec
from webhook.core.mutation.context import Context
from webhook.core.mutation.layers import namespace_layer

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CONFIG_PATH = BENCH_DIR / "bench-config.yaml"


def cases_dir() -> Path:
    """The captured reviews in `tests/data/admission` (override: $KCI_BENCH_CASES)."""
    return Path(os.environ.get("KCI_BENCH_CASES")
                or REPO / "tests" / "data" / "admission")


@dataclass(frozen=True)
class Sample:
    key: str            # short name used on the command line and in the JSON
    title: str          # what it is, for the table
    body: bytes         # the AdmissionReview as sent
    warns: bool = False  # the answer is expected to carry a warning

    @property
    def size_kb(self) -> float:
        return len(self.body) / 1024


CAPTURED = (
    ("pod-create", "pod-create.json: 1 container, small pod",
     "pod-create.json"),
    ("deploy-3", "deployment-pod-3-containers.json (the 6 KB review)",
     "deployment-pod-3-containers.json"),
    ("deploy-12", "deployment-pod-12-containers.json (the 25 KB review)",
     "deployment-pod-12-containers.json"),
)
TARGET_SAMPLE = "deploy-3"   # the review the targets are stated for

GCR_DIGEST = "sha256:" + "7c3e1d5a9b2f4e6c8a0d2b4f6e8a1c3e5d7b9f1a3c5e7d9b1f3a5c7e9d1b3f5a"


POD_DNS = DnsConfig(nameservers=("10.96.0.53", "10.20.0.2"),
                    searches=("shop.svc.cluster.local", "registry.corp.internal"),
                    options=(DnsOption("ndots", "2"), DnsOption("timeout", "3")))
POD_HOSTS = (HostAlias("10.20.0.15", ("harbor.corp.internal",)),
             HostAlias("10.20.0.16", ("charts.corp.internal", "files.corp.internal")))
POD_HTTP = ("harbor.corp.internal:5000",)
DIALECT_NAMESPACES = {f"bench-{name}": {DIALECT_KEY: name} for name in DIALECTS}


def kci_review(base: bytes) -> bytes:
    """A 3-container Deployment pod with KCI annotations and mirrored images, built from
    the captured 6 KB review so that everything else about it is realistic."""
    return dialect_review(base, "kci")


def dialect_review(base: bytes, dialect: str, namespace: str | None = None) -> bytes:
    """`kci_review`'s pod written in `dialect` (in `namespace`, if given)."""
    d = DIALECTS[dialect]
    review = orjson.loads(base)
    review["request"]["uid"] = "0b7d3c9e-5a1f-4e2d-8c6b-4f1a2e3d5c7b"
    pod = copy.deepcopy(review["request"]["object"])
    annotations = pod["metadata"].setdefault("annotations", {})
    if d.dns_key and d.write_dns:
        annotations[d.dns_key] = d.write_dns(POD_DNS)
    else:
        pod["spec"]["dnsConfig"] = dns_config_to_spec(POD_DNS)
    if d.hosts_key and d.write_hosts:
        annotations[d.hosts_key] = d.write_hosts(POD_HOSTS)
    else:
        pod["spec"]["hostAliases"] = aliases_to_spec(POD_HOSTS)
    if d.http_key:
        annotations[d.http_key] = d.write_registries(POD_HTTP)
    images = ("harbor.corp.internal:5000/shop/checkout-api:2.14.1", "envoyproxy/envoy:v1.29.4",
              f"gcr.io/google-containers/pause@{GCR_DIGEST}")
    for container, image in zip(pod["spec"]["containers"], images, strict=True):
        container["image"] = image
    if namespace:
        review["request"]["namespace"] = pod["metadata"]["namespace"] = namespace
    review["request"]["object"] = pod
    return orjson.dumps(review)


WIDE_CONTAINERS = (1, 3, 10, 50)   # the pod widths the per-container cost is fitted on


def wide_review(base: bytes, containers: int) -> bytes:
    """`base`'s review with its pod given `containers` containers: its own, cycled, each
    renamed `<name>-<i>` (names are unique in a pod). Everything else is the captured pod,
    so the cost that grows with the width is the containers' alone."""
    review = orjson.loads(base)
    pod = review["request"]["object"]
    own = pod["spec"]["containers"]
    cycled = (own[i % len(own)] for i in range(containers))
    pod["spec"]["containers"] = [{**c, "name": f"{c['name']}-{i}"} for i, c in enumerate(cycled)]
    return orjson.dumps(review)


def wide_samples(base: bytes, widths: tuple[int, ...] = WIDE_CONTAINERS) -> list[Sample]:
    """`wide_review` of `base` at each width, keyed `wide-<n>`."""
    return [Sample(f"wide-{n}", f"the 6 KB review's pod with {n} container(s)",
                   wide_review(base, n)) for n in widths]


def load_samples() -> list[Sample]:
    directory = cases_dir()
    samples = []
    for key, title, name in CAPTURED:
        path = directory / name
        if not path.is_file():
            raise SystemExit(f"bench: sample {path} not found (set KCI_BENCH_CASES to the "
                             "directory of the captured AdmissionReviews)")
        samples.append(Sample(key, title, path.read_bytes()))
    base = next(s.body for s in samples if s.key == "deploy-3")
    samples.append(Sample("kci-3", "3 containers, KCI annotations, docker.io + gcr.io mirrors "
                          "and a private HTTP registry",
                          kci_review(base)))
    for name, d in DIALECTS.items():
        samples.append(Sample(f"dia-{name}", f"kci-3's pod in the {name} dialect ({d.vendor}), "
                              "chosen by its namespace",
                              dialect_review(base, name, f"bench-{name}"),
                              warns=not d.insecure_key))
    return samples


def context_factory(config_path: Path = CONFIG_PATH) -> Callable[[str], Context]:
    """`context_for` as the server builds it (`webhook.server.state.AppState`): the config and
    the KCI_* environment parsed once, one Context per namespace. The benchmark serves and
    mutates with an empty KCI_* environment so in-process and server figures agree."""
    config = config_mod.load_config(config_path.read_bytes(), source=str(config_path))
    environment = config_mod.environment_defaults({})
    contexts: dict[str, Context] = {}
    layers = {ns: namespace_layer(ns, annotations, config.dialect)
              for ns, annotations in DIALECT_NAMESPACES.items()}

    def context_for(namespace: str) -> Context:
        ctx = contexts.get(namespace)
        if ctx is None:
            ctx = contexts[namespace] = Context(config=config, environment=environment,
                                                namespace=namespace,
                                                namespace_layer=layers.get(namespace))
        return ctx

    return context_for
