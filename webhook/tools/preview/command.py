"""The `kci-webhook mutate` command line: arguments, reading, what goes where, exit codes."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from webhook.adapters.configfile import ConfigUnreadable, check_config
from webhook.core.config import (
    DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
    Config,
    environment_defaults,
    parse_webhook_timeout,
    yaml_error_message,
)
from webhook.core.dialects import DIALECT_NAMES
from webhook.core.errors import ConfigError
from webhook.tools.helpformat import HelpFormatter, epilog, from_environment
from webhook.tools.preview.documents import (
    Document,
    InputError,
    Loader,
    display_name,
    dump_json,
    dump_yaml,
    load,
    plain,
    splice,
)
from webhook.tools.preview.edit import edited
from webhook.tools.preview.objects import Preview, preview

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = (
    "Apply the webhook's mutation, offline, to the Pods and the pod templates of "
    "Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs in FILE "
    "(multi-document YAML or JSON), with the server's own code, config and KCI_* "
    "environment, and print the documents as the cluster would admit them: the same "
    "documents in the same order, those the webhook does not change exactly as written."
    "\n\n"
    "Safe in a pipeline: if any object is denied, nothing at all is printed on stdout "
    "(so `... | kubectl apply -f -` applies nothing), every denial goes to stderr, and "
    "the exit code is 1. Warnings go to stderr too, among them what admission passes "
    "silently: an unknown k8s.ksyun.com/kci-* or kci-webhook/* annotation (with the "
    "closest known key), KCI annotations on a workload's own metadata instead of its pod "
    "template, input with no Kubernetes object in it, an AdmissionReview given as a "
    "manifest, and objects in a namespace the config excludes (where the webhook would do "
    "nothing). With --strict a warning counts as a denial."
)
EXIT_CODES = {
    EXIT_OK: "admitted (warnings, if any, on stderr)",
    EXIT_REFUSED: "an object is denied, or --strict and there are warnings: stdout is empty",
    EXIT_USAGE: "unreadable input, a config serve would refuse (the same words; "
                "FILE:LINE:COL: for a YAML error), bad arguments",
}
EXAMPLES = (
    "kci-webhook mutate -f deploy.yaml --config config.yaml --diff",
    "kci-webhook mutate -f deploy.yaml --strict | kubectl apply -f -",
    "helm template . | kci-webhook mutate -f - -n team-a -o json",
)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "mutate", help="preview the mutation of manifests offline", description=DESCRIPTION,
        epilog=epilog(EXIT_CODES, EXAMPLES), formatter_class=HelpFormatter)
    parser.add_argument("-f", "--filename", required=True, metavar="FILE",
                        help="manifest file, or - for stdin")
    from_environment(parser.add_argument(
        "--config", default=os.environ.get("KCI_WEBHOOK_CONFIG"),
        help="the webhook's config file, checked as serve checks it (kci-webhook config "
             "check); without one, built-in defaults"), "KCI_WEBHOOK_CONFIG")
    parser.add_argument("--files", action="store_true",
                        help="a file the config names (caFile, pullCredentialConfigPath) "
                             "that is not on this machine is an error, as it is to serve; "
                             "without --files, a warning")
    parser.add_argument("-n", "--namespace", default="default",
                        help="namespace of objects that name none")
    parser.add_argument("--namespace-annotations", metavar="JSON|FILE",
                        help="simulate the Namespace's annotations: a JSON object or a "
                             "YAML/JSON file holding one")
    parser.add_argument("--dialect", choices=DIALECT_NAMES,
                        help="the virtual kubelet's annotation dialect: kci (Kingsoft), eci "
                             "(Alibaba), eks (Tencent super nodes), cci (Huawei); default: "
                             "the namespace's, else the config's")
    parser.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml",
                        help="yaml: the documents of FILE; json: one object, or a v1 List "
                             "of several (as kubectl get -o json)")
    parser.add_argument("--diff", action="store_true",
                        help="print a unified diff of FILE as written against the output")
    parser.add_argument("--strict", action="store_true",
                        help="warnings are errors: exit 1 and print nothing on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = _config(args.config, files=args.files) if args.config else Config()
        environment = environment_defaults(os.environ)
        ns_annotations = _namespace_annotations(args.namespace_annotations)
        text = _read(args.filename)
        documents = load(text, args.filename)
    except (ConfigError, InputError, ValueError) as exc:
        print(f"kci-webhook mutate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"kci-webhook mutate: {exc.filename or args.filename}: cannot read: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    name = display_name(args.filename)
    result = preview(documents, filename=name, config=config, environment=environment,
                     namespace=args.namespace, namespace_annotations=ns_annotations,
                     dialect=args.dialect)
    for finding in result.findings:
        print(finding, file=sys.stderr)
    if result.denied or (args.strict and result.warned):
        why = "denied" if result.denied else "warnings with --strict"
        print(f"kci-webhook mutate: nothing printed ({why})", file=sys.stderr)
        return EXIT_REFUSED
    output = _render(text, documents, result, args.output)
    if args.diff:
        sys.stdout.writelines(difflib.unified_diff(
            text.splitlines(keepends=True), output.splitlines(keepends=True),
            fromfile=f"{name} (as written)", tofile=f"{name} (as admitted)"))
    else:
        sys.stdout.write(output)
    return EXIT_OK


def _config(path: str, *, files: bool) -> Config:
    """The config through the validator `serve` uses (its words, its timeout from
    $KCI_WEBHOOK_TIMEOUT_SECONDS); a named file absent here is a warning unless `files`."""
    timeout = parse_webhook_timeout(
        os.environ.get("KCI_WEBHOOK_TIMEOUT_SECONDS") or str(DEFAULT_WEBHOOK_TIMEOUT_SECONDS),
        where="KCI_WEBHOOK_TIMEOUT_SECONDS")
    try:
        report = check_config(path, webhook_timeout=timeout, absent_files_are_errors=files)
    except ConfigUnreadable as exc:
        raise ConfigError(str(exc)) from None
    if report.config is None:
        raise ConfigError(f"invalid configuration:\n{report.message()}")
    for warning in report.warnings:
        print(f"kci-webhook mutate: warning: {warning}", file=sys.stderr)
    return report.config


def _read(filename: str) -> str:
    raw = sys.stdin.buffer.read() if filename == "-" else Path(filename).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{display_name(filename)}: not UTF-8 text (byte {exc.start})"
                         ) from None


def _render(text: str, documents: list[Document], result: Preview, output: str) -> str:
    if output == "json":
        return dump_json(_objects(result.documents))
    replacements = []
    for doc, new, changed in zip(documents, result.documents, result.changed, strict=True):
        if changed:
            exact = edited(text, doc.node, doc.start, doc.end, doc.data, new, plain=plain)
            replacements.append((doc, dump_yaml(new), False) if exact is None
                                else (doc, exact, True))
    return splice(text, replacements)


def _objects(documents: list[Any]) -> list[Any]:
    """The objects to print: a `kind: List`'s items in its place (kubectl prints one flat
    List, never a List in a List); empty documents dropped."""
    objects: list[Any] = []
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "List" \
                and isinstance(document.get("items"), list):
            objects.extend(document["items"])
        elif document is not None:
            objects.append(document)
    return objects


NAMESPACE_ANNOTATIONS_EXPECTED = ('expected a JSON object of string values, such as '
                                  '\'{"kci-webhook/mirrors": "off"}\', or a YAML or JSON file '
                                  'holding one')


def _namespace_annotations(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    if value.lstrip().startswith("{"):
        text, where = value, "--namespace-annotations"
    elif Path(value).is_file():
        text, where = Path(value).read_text(), f"--namespace-annotations {value}"
    else:
        raise ValueError(f"--namespace-annotations: {value!r} is neither a file nor a JSON "
                         f"object; {NAMESPACE_ANNOTATIONS_EXPECTED}")
    try:
        data = yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        raise ValueError(yaml_error_message(exc, where, text)) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{where}: {NAMESPACE_ANNOTATIONS_EXPECTED}")
    return {str(k): v for k, v in data.items()}
