"""What passes admission silently but is almost certainly a mistake in a manifest.

The webhook reads only the annotations it knows, only from pods (a workload's pods get
them from its pod template), and only objects it is sent; anything else is ignored
without a word, in the cluster and in a plain preview. These checks say so: each returns
warnings (text), which `kci-webhook mutate` prints and `--strict` turns into exit 1.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.core.admission.workloads import TEMPLATE_PATHS
from webhook.core.dialects import DIALECT_KEY
from webhook.core.mutation.layers import NAMESPACE_KEYS, POD_KEYS
from webhook.core.values.keys import IMAGE_PULL_SECRETS, IMAGE_RECORD, ORIGINAL_IMAGES

KCI_PREFIX = "k8s.ksyun.com/kci-"
WEBHOOK_PREFIX = "kci-webhook/"
# what a pod may carry: the keys every level reads, and the record the webhook writes
# (and the dialect key, which the mutation itself says a pod cannot use)
POD_ANNOTATIONS = frozenset((*POD_KEYS, ORIGINAL_IMAGES, IMAGE_RECORD, DIALECT_KEY))
NAMESPACE_ANNOTATIONS = frozenset(NAMESPACE_KEYS)


def annotation_problems(annotations: object, *, where: str,
                        known: frozenset[str] = POD_ANNOTATIONS) -> list[str]:
    """Keys under the KCI and kci-webhook prefixes that nothing reads (a typo, mostly),
    with the closest known key; a Namespace-only key on a pod."""
    if not isinstance(annotations, Mapping):
        return []
    problems = []
    for key in annotations:
        if not isinstance(key, str) or not key.startswith((KCI_PREFIX, WEBHOOK_PREFIX)):
            continue
        if key in known:
            continue
        if key == IMAGE_PULL_SECRETS:
            problems.append(f"{where}: {key} is read only from a Namespace; a pod names its "
                            "pull secrets in spec.imagePullSecrets")
            continue
        guess = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {guess[0]}?" if guess else f"known keys: {', '.join(sorted(known))}"
        problems.append(f"{where}: unknown annotation {key}, which the webhook ignores ({hint})")
    return problems


def misplaced_annotations(obj: Mapping[str, Any], kind: str) -> list[str]:
    """KCI annotations on a workload's own metadata (or a CronJob's job template's): its
    pods never see them."""
    path = TEMPLATE_PATHS.get(kind)
    if path is None:
        return []
    places = [("metadata",), *(path[:i + 1] + ("metadata",)
                               for i, key in enumerate(path[:-1]) if key.endswith("Template"))]
    template = ".".join((*path, "metadata", "annotations"))
    problems = []
    for place in places:
        annotations = _dig(obj, (*place, "annotations"))
        keys = [k for k in annotations if isinstance(k, str)
                and (k in POD_ANNOTATIONS or k.startswith(KCI_PREFIX))] \
            if isinstance(annotations, Mapping) else []
        if keys:
            where = ".".join((*place, "annotations"))
            problems.append(f"{where} has {', '.join(keys)}: the webhook reads KCI annotations "
                            f"from pods only, and a {kind}'s pods get theirs from {template}: "
                            f"move {'it' if len(keys) == 1 else 'them'} there")
    return problems


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def document_problems(data: Any) -> list[str]:
    """A document that is no Kubernetes object, or an AdmissionReview."""
    if data is None:
        return []
    if not isinstance(data, Mapping) or not data.get("kind") or not data.get("apiVersion"):
        what = ("a mapping without apiVersion and kind" if isinstance(data, Mapping)
                else f"a {_kind(data)}")
        return [f"not a Kubernetes object ({what}); kubectl would refuse it"]
    if data.get("kind") == "AdmissionReview":
        return ["an AdmissionReview is what the API server sends the webhook, not a "
                "manifest: send it to the server (POST /mutate), or preview the object in "
                "it: extract .request.object (e.g. yq '.request.object' FILE)"]
    return []


def no_objects(documents: Iterable[Any]) -> bool:
    return not any(isinstance(d, Mapping) and d.get("kind") for d in documents)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__
