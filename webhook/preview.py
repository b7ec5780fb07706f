"""`kci-webhook mutate`: the server's mutation, offline, on manifests in files.

Pods and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs
and CronJobs go through exactly `webhook.mutate.mutate`, with the same config, the same
`KCI_*` environment and (simulated) namespace annotations; everything else passes
through unchanged. Warnings and denials go to stderr; a denial makes the exit code 1.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from webhook.config import Config, EnvironmentDefaults, environment_defaults, load_config
from webhook.errors import ConfigError, InvalidInput
from webhook.layers import namespace_layer
from webhook.mutate import Context, mutate
from webhook.workloads import TEMPLATE_PATHS, pod_template, template_as_pod

EXIT_DENIED, EXIT_USAGE = 1, 2


@dataclass
class Preview:
    documents: list[Any]
    messages: list[str] = field(default_factory=list)
    denied: bool = False


def preview(documents: list[Any], *, config: Config, environment: EnvironmentDefaults,
            namespace: str, namespace_annotations: dict[str, str]) -> Preview:
    """Mutate every Pod and workload template among `documents` (plain data in and out)."""
    result = Preview(documents=[])
    for doc in documents:
        result.documents.append(_one(doc, result, config=config, environment=environment,
                                     namespace=namespace, ns_annotations=namespace_annotations))
    return result


def _one(doc: Any, result: Preview, *, config: Config, environment: EnvironmentDefaults,
         namespace: str, ns_annotations: dict[str, str]) -> Any:
    if not isinstance(doc, dict):
        return doc
    raw_kind = doc.get("kind")
    kind = raw_kind if isinstance(raw_kind, str) else ""
    if kind == "List" and isinstance(doc.get("items"), list):
        return {**doc, "items": [_one(item, result, config=config, environment=environment,
                                      namespace=namespace, ns_annotations=ns_annotations)
                                 for item in doc["items"]]}
    raw_meta = doc.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    ns = meta.get("namespace") or namespace
    label = f"{kind}/{meta.get('name') or meta.get('generateName') or '?'}"
    ctx = Context(config=config, environment=environment, namespace=ns,
                  namespace_layer=namespace_layer(ns, ns_annotations) if ns_annotations
                  else None, own_namespace=os.environ.get("POD_NAMESPACE") or None)
    if kind == "Pod":
        return _mutated(doc, ctx, label, result) or doc
    template = pod_template(doc, kind)
    if template is None:
        return doc
    as_pod = template_as_pod(template)
    pod = _mutated(as_pod, ctx, label, result)
    if pod is None or pod is as_pod:
        return doc
    new_template = {**template, "metadata": pod["metadata"], "spec": pod["spec"]}
    return _put(doc, TEMPLATE_PATHS[kind], new_template)


def _mutated(pod: dict[str, Any], ctx: Context, label: str,
             result: Preview) -> dict[str, Any] | None:
    try:
        outcome = mutate(pod, ctx)
    except InvalidInput as exc:
        result.messages.append(f"denied: {label}: {exc}")
        result.denied = True
        return None
    result.messages.extend(f"warning: {label}: {w}" for w in outcome.warnings)
    if outcome.denial:
        result.messages.append(f"denied: {label}: {outcome.denial}")
        result.denied = True
        return None
    return outcome.pod


def _put(doc: Any, path: tuple[str, ...], value: Any) -> Any:
    """A copy of `doc` with `value` at `path`, sharing everything else."""
    if not path:
        return value
    head, *rest = path
    return {**doc, head: _put(doc[head], tuple(rest), value)}


# --- command line ----------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "mutate", help="preview the mutation of manifests offline",
        description="Apply the webhook's mutation to Pods and workload pod templates in "
                    "FILE (multi-document YAML or JSON) and print the result.")
    parser.add_argument("-f", "--filename", required=True, help="manifest file, or - for stdin")
    parser.add_argument("--config", default=os.environ.get("KCI_WEBHOOK_CONFIG"),
                        help="config file (default: $KCI_WEBHOOK_CONFIG)")
    parser.add_argument("-n", "--namespace", default="default",
                        help="namespace for objects that name none (default: default)")
    parser.add_argument("--namespace-annotations", metavar="JSON|FILE",
                        help="simulate the Namespace's annotations: a JSON object or a "
                             "YAML/JSON file holding one")
    parser.add_argument("--diff", action="store_true", help="print a unified diff instead")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = (load_config(Path(args.config).read_bytes(), source=args.config)
                  if args.config else Config())
        environment = environment_defaults(os.environ)
        ns_annotations = _namespace_annotations(args.namespace_annotations)
        text = sys.stdin.read() if args.filename == "-" else Path(args.filename).read_text()
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except (ConfigError, OSError, yaml.YAMLError, ValueError) as exc:
        print(f"kci-webhook mutate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = preview(documents, config=config, environment=environment,
                     namespace=args.namespace, namespace_annotations=ns_annotations)
    for message in result.messages:
        print(message, file=sys.stderr)
    rendered = _dump(result.documents)
    if args.diff:
        before = _dump(documents)
        sys.stdout.writelines(difflib.unified_diff(
            before.splitlines(keepends=True), rendered.splitlines(keepends=True),
            fromfile=f"{args.filename} (as written)", tofile=f"{args.filename} (as admitted)"))
    else:
        sys.stdout.write(rendered)
    return EXIT_DENIED if result.denied else 0


def _namespace_annotations(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    text = value if value.lstrip().startswith("{") else Path(value).read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError("--namespace-annotations: expected an object of string values")
    return {str(k): v for k, v in data.items()}


def _dump(documents: list[Any]) -> str:
    # round-trip through JSON first: plain types only, whatever YAML tags came in
    plain = orjson.loads(orjson.dumps(documents, default=str))
    return yaml.safe_dump_all(plain, sort_keys=False, explicit_start=len(plain) > 1)
