"""The ceiling: the least a mutating webhook can do to give the answer kci-webhook gives.

`ceiling(body)` parses the AdmissionReview with orjson, finds the pod's containers and
init containers, points each image of a mirrored registry at its mirror (as
`bench/bench-config.yaml`'s docker.io mirror does: `library/` added to one-word Docker Hub
names, tag and digest untouched), builds the JSONPatch ops kci-webhook answers for the
samples (the cluster-wide host alias, in the KCI annotation and in `spec.hostAliases`; the
record of original images and the per-container record; the mirror's pull secret),
base64-encodes them and serializes the AdmissionReview response. No validation, no
dialects, no self-check, no metrics or logs: it is the floor a real mutation is measured
against, not a webhook.

It answers correctly only the pods it is measured on: pods with no host aliases, pull
secrets or record of original images of their own, whose images come from Docker Hub (or
from registries no mirror serves). The benchmark checks, before any timing, that its answer
is byte for byte kci-webhook's (`check_same_answer`), so the ratio stays honest when the
webhook's answer changes: then this module is what needs updating.

`create_app()` serves it as a minimal FastAPI endpoint (`POST /mutate`; `GET /healthz`
for the harness), run by uvicorn with uvloop and httptools, as `kci-webhook serve` is.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from jsonpointer import escape

# What bench/bench-config.yaml says, as far as the samples need it (and the KCI annotation
# the cluster-wide host alias is written back to, the webhook's own annotation, and the
# audit annotation that repeats it).
MIRRORED_HOSTS = ("docker.io", "index.docker.io", "somehost.io")
DOCKER_HUB = ("docker.io", "index.docker.io")
MIRROR_PREFIX = "172.18.0.20:5000/test-namespace/"
PULL_SECRET = "mirror-pull"
HOST_ALIASES: list[dict[str, Any]] = [{"ip": "172.18.0.20",
                                       "hostnames": ["mirror.registry.internal"]}]
HOST_ALIASES_KEY = "k8s.ksyun.com/kci-host-aliases"
ORIGINAL_IMAGES_KEY = "kci-webhook/original-images"
RECORD_KEY = "kci-webhook/images"          # the per-container record, written on every pod
MIRROR_WORD = "mirror:172.18.0.20:5000"
KEPT_WORD = "kept:no-mirror"
AUDIT_KEY = "original-images"

_HOST_ALIASES_PATH = f"/metadata/annotations/{escape(HOST_ALIASES_KEY)}"
_ORIGINAL_IMAGES_PATH = f"/metadata/annotations/{escape(ORIGINAL_IMAGES_KEY)}"
_RECORD_PATH = f"/metadata/annotations/{escape(RECORD_KEY)}"
CONTAINER_LISTS = ("initContainers", "containers")


def mirrored(image: str) -> str | None:
    """The image on the mirror, or None when no mirror serves its registry."""
    first, slash, rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if first not in MIRRORED_HOSTS:
            return None
        if first not in DOCKER_HUB:
            return MIRROR_PREFIX + rest
        path = rest
    else:
        path = image
    return MIRROR_PREFIX + (path if "/" in path else "library/" + path)


def ceiling(body: bytes) -> bytes:
    """The AdmissionReview response for a pod CREATE, as kci-webhook answers it for the
    samples (see the module's docstring for which pods those are)."""
    review = orjson.loads(body)
    request = review["request"]
    pod = request["object"]
    spec = pod["spec"]
    originals: dict[str, str] = {}
    words: dict[str, str] = {}
    image_ops: dict[str, list[dict[str, Any]]] = {}
    for list_name in CONTAINER_LISTS:
        for index, container in enumerate(spec.get(list_name) or ()):
            image = container["image"]
            new = mirrored(image)
            if new is not None:
                image_ops.setdefault(list_name, []).append(
                    {"op": "replace", "path": f"/spec/{list_name}/{index}/image", "value": new})
                originals[container["name"]] = image
            words[container["name"]] = KEPT_WORD if new is None else MIRROR_WORD
    record = orjson.dumps(originals).decode() if originals else None
    images_record = orjson.dumps({"v": 1, "c": words}).decode()

    ops: list[dict[str, Any]] = []
    aliases = orjson.dumps(HOST_ALIASES).decode()
    if pod["metadata"].get("annotations") is None:
        added = {HOST_ALIASES_KEY: aliases}
        if record:
            added[ORIGINAL_IMAGES_KEY] = record
        added[RECORD_KEY] = images_record
        ops.append({"op": "add", "path": "/metadata/annotations", "value": added})
    else:
        ops.append({"op": "add", "path": _HOST_ALIASES_PATH, "value": aliases})
        if record:
            ops.append({"op": "add", "path": _ORIGINAL_IMAGES_PATH, "value": record})
        ops.append({"op": "add", "path": _RECORD_PATH, "value": images_record})
    # the image ops in the order the lists stand in the spec, as a diff walks it
    for list_name in (spec if len(image_ops) > 1 else image_ops):
        ops.extend(image_ops.get(list_name, ()))
    ops.append({"op": "add", "path": "/spec/hostAliases", "value": HOST_ALIASES})
    if originals:
        ops.append({"op": "add", "path": "/spec/imagePullSecrets",
                    "value": [{"name": PULL_SECRET}]})

    response: dict[str, Any] = {"uid": request["uid"], "allowed": True,
                                "patchType": "JSONPatch",
                                "patch": base64.b64encode(orjson.dumps(ops)).decode()}
    if record:
        response["auditAnnotations"] = {AUDIT_KEY: record}
    return orjson.dumps({"apiVersion": review["apiVersion"], "kind": "AdmissionReview",
                         "response": response})


def check_same_answer(key: str, body: bytes, expected: bytes) -> None:
    """Refuse to measure a ceiling that does not give kci-webhook's answer, byte for byte:
    a ratio against a different answer would mean nothing."""
    got = ceiling(body)
    if got != expected:
        raise SystemExit(
            f"bench: the ceiling (bench/ceiling.py) answers {key} differently from "
            f"kci-webhook:\n  kci-webhook: {expected[:600]!r}\n  ceiling:     {got[:600]!r}\n"
            "kci-webhook's answer changed: update bench/ceiling.py to give it again (same "
            "ops, same order, same bytes), so that the ratios compare the same work")


def create_app() -> FastAPI:
    """The minimal FastAPI endpoint: the ceiling behind `POST /mutate`, and a readiness
    answer for the harness (`uvicorn --factory bench.ceiling:create_app`)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/mutate")
    async def mutate(request: Request) -> Response:
        return Response(ceiling(await request.body()), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app
