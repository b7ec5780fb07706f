"""`kci-webhook plan` over a cluster of 2,000 pods in 50 namespaces with 40 images.

    python -m bench.plan                          # 2,000 pods, 50 namespaces, 40 images
    python -m bench.plan --pods 10000 --images 200

The API server is the test stand-in (real HTTP on loopback, Lists paged by 500 as the API
server pages them), read by the real `kubernetes` client; the mirror is a real registry
(Debian's docker-registry, TLS with our CA, htpasswd auth) holding three images in four of
the 40 (the rest are missing-image findings). Every pod's containers name images from the
40, so each image recurs on many pods. Printed: the seconds the command took, end to end
(config, lists, mutation, registry, Secrets, JSON out), and the manifest requests the
registry served per unique (image, mirror), from its own access log. Figures only: nothing
is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import tempfile
import time
from pathlib import Path

import orjson
import yaml

from tests.apiserver_standin import running_standin
from tests.builders import kubeconfig, workload
from tests.registry_support import push_image, start_registry
from webhook import cli


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pods", type=int, default=2000)
    p.add_argument("--namespaces", type=int, default=50)
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--present", type=int, default=0,
                   help="images the mirror holds (default: three in four)")
    args = p.parse_args(argv)
    present = args.present or args.images * 3 // 4
    images = [f"kci/bench-{i}:1.0" for i in range(args.images)]
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp, \
            running_standin() as (state, api):
        work = Path(tmp)
        registry = start_registry(work / "registry")
        try:
            started = time.monotonic()
            for image in images[:present]:
                repository, tag = image.split(":")
                push_image(registry, repository, tag)
            print(f"setup: {present} images pushed in {time.monotonic() - started:.1f} s")
            namespaces = [f"team-{n:02d}" for n in range(args.namespaces)]
            for index, name in enumerate(namespaces):
                state.set(name, event=None)
                if index % 10:     # one namespace in ten lacks the mirror's pull Secret
                    state.put({"apiVersion": "v1", "kind": "Secret",
                               "metadata": {"name": "mirror-pull", "namespace": name},
                               "type": "kubernetes.io/dockerconfigjson",
                               "data": {".dockerconfigjson": "e30="}})
            for index in range(args.pods):
                chosen = rng.sample(images, 2)
                state.put(workload("Pod", f"pod-{index}", chosen[0],
                                   namespace=namespaces[index % len(namespaces)],
                                   init=(chosen[1],)))
            credentials = registry.docker_config(work / "credentials.json")
            config = work / "config.yaml"
            config.write_text(yaml.safe_dump({"mirrors": [{
                "endpoint": registry.url, "hosts": ["docker.io"], "pullSecret": "mirror-pull",
                "caFile": str(registry.ca_file), "pullCredentialConfigPath": str(credentials)}]}))
            kube = kubeconfig(work / "kubeconfig", api.api_client.configuration.host)
            heads_before = _heads(registry.access_lines())
            out = io.StringIO()
            started = time.monotonic()
            with contextlib.redirect_stdout(out):
                code = cli.main(["plan", "--kubeconfig", str(kube), "--config", str(config),
                                 "-A", "-o", "json"])
            elapsed = time.monotonic() - started
            heads = _heads(registry.access_lines()) - heads_before
            data = orjson.loads(out.getvalue())
            lists = [r for r in state.requests if r["path"] == "/api/v1/pods"]
            print(f"cluster: {args.pods} pods in {args.namespaces} namespaces, "
                  f"{args.images} unique images ({present} on the mirror)")
            print(f"plan -A -o json: {elapsed:.2f} s, exit {code}, {len(data['rows'])} rows, "
                  f"{len(lists)} pages of pods")
            print(f"findings: {data['summary']['total']}")
            print(f"manifest requests at the registry: {heads} for {args.images} unique "
                  f"(image, mirror): {heads / args.images:.3f} per image "
                  "(the first of all answers the registry's 401 challenge)")
        finally:
            registry.stop()
    return 0


def _heads(lines: list[str]) -> int:
    return sum('"HEAD /v2/kci/bench-' in line for line in lines)


if __name__ == "__main__":
    raise SystemExit(main())
