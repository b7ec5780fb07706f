"""Coverage-guided fuzzing (atheris) of decode → mutate → patch → self-check → encode.

    make fuzz                     # 100,000 runs (FUZZ_RUNS=... to change)
    python -m bench.fuzz -atheris_runs=100000 [corpus_dir]

The input bytes are used three ways: as a whole request body, as the pod object inside a
valid envelope, and as the values of the KCI annotations of the captured 3-container pod.
Whatever they are, `admit`/`validate` must either answer (bytes of an AdmissionReview
whose patch applies to the object) or raise `BadRequest`; anything else is a finding.
"""

from __future__ import annotations

import base64
import copy
import sys
from pathlib import Path

import atheris
import orjson

with atheris.instrument_imports():
    from webhook.core.admission.dispatch import validate
    from webhook.core.admission.patch import apply
    from webhook.core.admission.pipeline import admit_offline as admit
    from webhook.core.config import EnvironmentDefaults, load_config
    from webhook.core.errors import BadRequest
    from webhook.core.mutation.context import Context
    from webhook.core.mutation.layers import namespace_layer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = orjson.loads((ROOT / "tests" / "data" / "admission" /
                       "deployment-pod-3-containers.json").read_bytes())
CONFIG = load_config((ROOT / "examples" / "config.yaml").read_bytes(), source="examples")
KEYS = ["k8s.ksyun.com/kci-dns-config", "k8s.ksyun.com/kci-host-aliases",
        "k8s.ksyun.com/kci-http-registry", "k8s.ksyun.com/kci-insecure-registry",
        "kci-webhook/mirrors"]


def context_for(namespace: str) -> Context:
    return Context(config=CONFIG, environment=EnvironmentDefaults(), namespace=namespace,
                   namespace_layer=namespace_layer(namespace, {KEYS[1]: "[{"}))


def check(body: bytes) -> None:
    for handler in (admit, validate):
        try:
            decision = handler(body, context_for=context_for)
        except BadRequest:
            continue
        answer = orjson.loads(decision.body)
        assert answer["kind"] == "AdmissionReview"
        response = answer["response"]
        if "patch" in response:
            review = orjson.loads(body)
            ops = orjson.loads(base64.b64decode(response["patch"]))
            apply(copy.deepcopy(review["request"]["object"]), ops)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:                                   # the whole body
        check(fdp.ConsumeBytes(fdp.remaining_bytes()))
        return
    review = copy.deepcopy(SAMPLE)
    if mode == 1:                                   # the object, when it is JSON at all
        try:
            review["request"]["object"] = orjson.loads(fdp.ConsumeBytes(fdp.remaining_bytes()))
        except orjson.JSONDecodeError:
            return
    else:                                           # annotation values
        annotations = review["request"]["object"]["metadata"]["annotations"]
        for key in KEYS:
            if fdp.ConsumeBool():
                annotations[key] = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 200))
        review["request"]["object"]["spec"]["containers"][0]["image"] = (
            fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 120)))
    check(orjson.dumps(review))


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
