"""`kci-webhook mutate`: run as a user runs it, and compared with what the server does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, RunningServer, apply_response_patch, pod_review
from webhook.tools.preview import documents

CONFIG = """
mirrors:
  - endpoint: https://172.18.0.20:5000/v2/test-namespace
    hosts: [docker.io, gcr.io, somehost.io]
    pullSecret: mirror-pull
"""

# The KCI documentation's Deployment (Kingsoft KCI, "使用自建仓库"), as written there.
DOC_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-rbkci
  namespace: default
  labels:
    app: nginx
spec:
  replicas: 1
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
        annotations:
            k8s.ksyun.com/kci-dns-config: '{"nameservers":["1.1.1.1"],"options":[{"name":"ndots","value":"2"},{"name":"timeout","value":"3"}],"searches":["test1.com"]}'
            k8s.ksyun.com/kci-host-aliases: '[{"ip":"1.2.3.4","hostnames":["www.privaterepo1.com"]},{"ip":"2.3.4.5","hostnames":["www.privaterepo2.com"]}]'
        labels:
            app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - key: type
                operator: In
                values:
                - virtual-kubelet
      tolerations:
      - key: rbkci-virtual-kubelet.io/provider
        value: kingsoftcloud
        effect: NoSchedule
"""  # noqa: E501


POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n" \
      "  - {name: c, image: nginx}\n"
MIRRORED = "172.18.0.20:5000/test-namespace/library/nginx"


def run(tmp_path: Path, *args: str, stdin: str | None = None,
        config: str = CONFIG) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.yaml").write_text(config)
    return subprocess.run([sys.executable, "-m", "webhook", "mutate", "--config",
                           str(tmp_path / "config.yaml"), *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})


def manifest(tmp_path: Path, text: str, name: str = "in.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_documented_deployment_template_is_mutated(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, DOC_DEPLOYMENT))
    assert result.returncode == 0, result.stderr
    template = yaml.safe_load(result.stdout)["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == (
        "172.18.0.20:5000/test-namespace/library/nginx:latest")
    assert template["spec"]["imagePullSecrets"] == [{"name": "mirror-pull"}]
    assert [a["ip"] for a in template["spec"]["hostAliases"]] == ["1.2.3.4", "2.3.4.5"]
    assert template["spec"]["dnsConfig"]["nameservers"] == ["1.1.1.1"]


def test_preview_and_server_produce_the_same_pod(
        tmp_path: Path, server_factory: Callable[[str | None], RunningServer]) -> None:
    """The pods a ReplicaSet makes from the previewed template equal what the server makes
    of pods from the original template: one code path, two shells."""
    previewed = yaml.safe_load(run(tmp_path, "-f", manifest(tmp_path, DOC_DEPLOYMENT)).stdout)
    original = yaml.safe_load(DOC_DEPLOYMENT)["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", **original}
    review = pod_review(pod, namespace="default")
    response = server_factory(CONFIG).review(review).json()["response"]
    served = apply_response_patch(review, response)
    expected = previewed["spec"]["template"]
    assert served["spec"] == expected["spec"]
    assert served["metadata"]["annotations"] == expected["metadata"]["annotations"]


def test_diff_shows_the_changes_only(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, DOC_DEPLOYMENT), "--diff")
    added = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert any("image: 172.18.0.20:5000/test-namespace/library/nginx:latest" in line
               for line in added)
    assert "-        image: nginx:latest" in result.stdout
    assert result.stdout.startswith("---")


def test_denial_prints_nothing_on_stdout_and_exits_1(tmp_path: Path) -> None:
    """`mutate | kubectl apply -f -` must apply nothing when the webhook would refuse an
    object: not the refused object, and not the others beside it either."""
    bad = DOC_DEPLOYMENT.replace('"ip":"1.2.3.4"', '"ip":"1.2.3"')
    path = manifest(tmp_path, POD + "---" + bad)
    result = run(tmp_path, "-f", path)
    assert result.returncode == 1
    assert result.stdout == ""
    line = line_of(POD + "---" + bad, "k8s.ksyun.com/kci-host-aliases:")   # the annotation's
    assert result.stderr.startswith(
        f'{path}:{line}: denied: Deployment/nginx-rbkci: k8s.ksyun.com/kci-host-aliases (pod): '
        'item 1: "ip": "1.2.3" is not an IPv4 or IPv6 address\n')
    assert "nothing printed (denied)" in result.stderr
    assert run(tmp_path, "-f", path, "--diff").stdout == ""
    assert run(tmp_path, "-f", path, "-o", "json").stdout == ""


def test_other_kinds_pass_through_and_every_workload_kind_is_handled(tmp_path: Path) -> None:
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "c"}, "data": {"image": "nginx"}}]
    template = {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        docs.append({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": kind.lower()},
                     "spec": {"template": template}})
    docs.append({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
                 "spec": {"jobTemplate": {"spec": {"template": template}}}})
    result = run(tmp_path, "-f", "-", stdin=json.dumps({"kind": "List", "items": docs}))
    assert result.returncode == 0, result.stderr
    items = yaml.safe_load(result.stdout)["items"]
    assert items[0] == docs[0]
    images = [json.dumps(item) for item in items[1:]]
    assert all("172.18.0.20:5000/test-namespace/library/nginx" in i for i in images)


def test_namespace_annotations_are_simulated(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, POD), "--namespace", "team-a",
                 "--namespace-annotations", '{"kci-webhook/mirrors": "off", '
                 '"kci-webhook/image-pull-secrets": "team-pull"}')
    out = yaml.safe_load(result.stdout)
    assert out["spec"]["containers"][0]["image"] == "nginx"
    assert out["spec"]["imagePullSecrets"] == [{"name": "team-pull"}]


# --- documents in, documents out --------------------------------------------------------

CONFIGMAP = """\
# settings for the app: this comment, the quoting and the order stay as written
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  "z-last": 'one'
  a-first: "two"
"""


def test_unchanged_documents_come_out_exactly_as_written(tmp_path: Path) -> None:
    text = CONFIGMAP + "---\n" + POD + "---\n# a comment between documents\n" + CONFIGMAP
    result = run(tmp_path, "-f", manifest(tmp_path, text))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(CONFIGMAP + "---\n")
    assert out.endswith("---\n# a comment between documents\n" + CONFIGMAP)
    pod = list(yaml.safe_load_all(out))[1]
    assert pod["spec"]["containers"][0]["image"] == MIRRORED
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["ConfigMap", "Pod", "ConfigMap"]


def test_json_document_in_a_stream_and_flow_after_the_marker(tmp_path: Path) -> None:
    pod = json.dumps(yaml.safe_load(POD))
    text = f"{pod}\n--- {pod}\n"
    result = run(tmp_path, "-f", manifest(tmp_path, text))
    assert result.returncode == 0, result.stderr
    pods = list(yaml.safe_load_all(result.stdout))
    assert [p["spec"]["containers"][0]["image"] for p in pods] == [MIRRORED] * 2


@pytest.mark.parametrize(("documents", "expected"), [
    pytest.param([POD], "Pod", id="one-object-as-itself"),
    pytest.param([POD, CONFIGMAP], "List", id="several-as-a-v1-List"),
])
def test_json_output_follows_kubectl(tmp_path: Path, documents: list[str],
                                     expected: str) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, "---\n".join(documents)), "-o", "json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["kind"] == expected
    objects = out["items"] if expected == "List" else [out]
    if expected == "List":
        assert out["apiVersion"] == "v1" and out["metadata"] == {"resourceVersion": ""}
    assert objects[0]["spec"]["containers"][0]["image"] == MIRRORED
    assert [o["kind"] for o in objects] == [yaml.safe_load(d)["kind"] for d in documents]


def test_diff_is_against_the_file_as_written(tmp_path: Path) -> None:
    text = CONFIGMAP + "---\n" + POD
    result = run(tmp_path, "-f", manifest(tmp_path, text), "--diff")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    removed = [line[1:] for line in lines if line.startswith("-") and not line.startswith("---")]
    assert removed and all(line + "\n" in text for line in removed)
    changed = "".join(line[1:] for line in lines if line[:1] in "+-" and line[:3] not in
                      ("+++", "---"))
    assert "ConfigMap" not in changed and "comment" not in changed, "unchanged: no diff lines"
    assert f"image: {MIRRORED}" in changed


# --- unreadable input ---------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    pytest.param("a: [\n", ":2:1: did not find expected node content", id="unclosed-flow"),
    pytest.param("kind: Pod\nmetadata:\n\tname: p\n", ":3:1: found character that cannot start "
                 "any token (while scanning for the next token); a tab: YAML indents with "
                 "spaces only",
                 id="tab-indent"),
    pytest.param("kind: Pod\n  name: x\n", ":2:7: mapping values are not allowed in "
                 "this context",
                 id="bad-indent"),
    pytest.param("a: *nowhere\n", ":1:4: found undefined alias", id="undefined-alias"),
])
def test_yaml_errors_name_file_line_and_column(tmp_path: Path, content: str,
                                               message: str) -> None:
    path = manifest(tmp_path, content)
    result = run(tmp_path, "-f", path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"kci-webhook mutate: {path}{message}"), result.stderr


def test_stdin_is_named_in_errors(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", "-", stdin="x: [\n")
    assert result.returncode == 2
    assert result.stderr.startswith("kci-webhook mutate: <stdin>:2:1: ")


@pytest.mark.parametrize(("content", "message"), [
    pytest.param(b"kind: \xff\xfe\n", "not UTF-8 text", id="not-utf8"),
    pytest.param(("a: &a [" + ",".join(["x"] * 10) + "]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(7))).encode(), "aliases expand to more than", id="billion-laughs"),
    pytest.param(b"[" * 20000 + b"]" * 20000, "", id="deeply-nested"),
    pytest.param(b"kind: Pod\nmetadata: &m\n  labels: *m\n", ":1:1: an alias refers to a node "
                 "it is part of", id="recursive-alias"),
    pytest.param(b"--- &r\n- *r\n", ":1:5: an alias refers to a node it is part of",
                 id="recursive-root"),
    pytest.param(b"kind: Pod\nmetadata:\n  name: \"a\x00b\"\n",
                 ":3:11: unacceptable character #x0000: control characters are not allowed",
                 id="nul-character"),
])
def test_hostile_input_exits_2_and_says_why(tmp_path: Path, content: bytes,
                                            message: str) -> None:
    path = tmp_path / "in.yaml"
    path.write_bytes(content)
    result = run(tmp_path, "-f", str(path))   # bounded: run() times out after 60 s
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stdout == ""
    assert f"kci-webhook mutate: {path}" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr


def test_anchors_aliases_and_merge_keys_are_read(tmp_path: Path) -> None:
    """Shared, not recursive: what real manifests do with anchors passes the checks."""
    text = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "  - &c {name: a, image: nginx}\n  - {<<: *c, name: b}\n")
    result = run(tmp_path, "-f", manifest(tmp_path, text), "--strict")
    assert result.returncode == 0, result.stderr
    containers = yaml.safe_load(result.stdout)["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", MIRRORED), ("b", MIRRORED)]


def test_unreadable_file_and_config_exit_2(tmp_path: Path) -> None:
    missing = run(tmp_path, "-f", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2 and "missing.yaml: cannot read" in missing.stderr
    assert run(tmp_path, "-f", "-", stdin="", config="onInvalidd: x").returncode == 2


# --- what admission would pass silently: warnings, and --strict -----------------------------

DEPLOYMENT = yaml.safe_load(DOC_DEPLOYMENT)


def with_annotations(obj: dict[str, Any], path: tuple[str, ...],
                     annotations: dict[str, str]) -> str:
    doc = json.loads(json.dumps(obj))
    node = doc
    for key in path:
        node = node.setdefault(key, {})
    node.setdefault("annotations", {}).update(annotations)
    return yaml.safe_dump(doc, sort_keys=False)


TEMPLATE_META = ("spec", "template", "metadata")
STRICT_CASES = [
    pytest.param(with_annotations(DEPLOYMENT, TEMPLATE_META,
                                  {"k8s.ksyun.com/kci-dns-configs": "{}"}), (),
                 "unknown annotation k8s.ksyun.com/kci-dns-configs, which the webhook "
                 "ignores (did you mean k8s.ksyun.com/kci-dns-config?)", id="kci-key-typo"),
    pytest.param(with_annotations(yaml.safe_load(POD), ("metadata",),
                                  {"kci-webhook/mirror": "off"}), (),
                 "did you mean kci-webhook/mirrors?", id="webhook-key-typo"),
    pytest.param(with_annotations(DEPLOYMENT, ("metadata",),
                                  {"k8s.ksyun.com/kci-http-registry": "r.example:5000"}), (),
                 "metadata.annotations has k8s.ksyun.com/kci-http-registry: the webhook reads "
                 "KCI annotations from pods only, and a Deployment's pods get theirs from "
                 "spec.template.metadata.annotations: move it there", id="on-workload-metadata"),
    pytest.param(with_annotations({"apiVersion": "batch/v1", "kind": "CronJob",
                                   "metadata": {"name": "nightly"},
                                   "spec": {"schedule": "@daily", "jobTemplate": {"spec": {
                                       "template": {"spec": {"containers": [
                                           {"name": "c", "image": "nginx"}]}}}}}},
                                  ("spec", "jobTemplate", "metadata"),
                                  {"k8s.ksyun.com/kci-dns-config": "{}"}), (),
                 "spec.jobTemplate.metadata.annotations has k8s.ksyun.com/kci-dns-config: the "
                 "webhook reads KCI annotations from pods only, and a CronJob's pods get theirs "
                 "from spec.jobTemplate.spec.template.metadata.annotations",
                 id="on-cronjob-job-template"),
    pytest.param("# nothing here yet\n", (), "no Kubernetes object in the input",
                 id="no-object"),
    pytest.param("name: p\nimage: nginx\n", (), "not a Kubernetes object (a mapping without "
                 "apiVersion and kind)", id="not-an-object"),
    pytest.param(json.dumps(pod_review(yaml.safe_load(POD))), (),
                 "an AdmissionReview is what the API server sends the webhook, not a manifest: "
                 "send it to the server (POST /mutate), or preview the object in it: extract "
                 ".request.object", id="admission-review"),
    pytest.param(POD, ("-n", "kube-system"), "namespace kube-system is excluded",
                 id="excluded-namespace-flag"),
    pytest.param(POD.replace("{name: p}", "{name: p, namespace: kube-public}"), (),
                 "namespace kube-public is excluded", id="excluded-namespace-metadata"),
    pytest.param(POD, ("--namespace-annotations", '{"k8s.ksyun.com/kci-host-alias": "[]"}'),
                 "--namespace-annotations: unknown annotation k8s.ksyun.com/kci-host-alias",
                 id="namespace-annotation-typo"),
]


@pytest.mark.parametrize(("text", "extra", "warning"), STRICT_CASES)
def test_silent_mistakes_warn_and_fail_under_strict(tmp_path: Path, text: str,
                                                    extra: tuple[str, ...],
                                                    warning: str) -> None:
    path = manifest(tmp_path, text)
    lenient = run(tmp_path, "-f", path, *extra)
    assert lenient.returncode == 0, lenient.stderr
    assert warning in lenient.stderr
    assert ": warning: " in lenient.stderr
    strict = run(tmp_path, "-f", path, *extra, "--strict")
    assert strict.returncode == 1
    assert strict.stdout == ""
    assert warning in strict.stderr and "nothing printed (warnings with --strict)" in strict.stderr


def test_strict_passes_a_clean_manifest(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, DOC_DEPLOYMENT), "--strict")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert MIRRORED in result.stdout


def line_of(text: str, needle: str, start: int = 0) -> int:
    return text[:text.index(needle, start)].count("\n") + 1


def test_warnings_name_the_line_of_their_annotation(tmp_path: Path) -> None:
    text = CONFIGMAP + "---\n" + with_annotations(yaml.safe_load(POD), ("metadata",),
                                                  {"k8s.ksyun.com/kci-dns": "{}"})
    path = manifest(tmp_path, text)
    result = run(tmp_path, "-f", path)
    line = line_of(text, "k8s.ksyun.com/kci-dns:")
    assert line > CONFIGMAP.count("\n") + 2          # not the document's first line
    assert result.stderr.startswith(f"{path}:{line}: warning: Pod/p: metadata.annotations: "
                                    "unknown annotation k8s.ksyun.com/kci-dns")


LIST = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: c}
- apiVersion: v1
  kind: Pod
  metadata:
    name: good
  spec:
    containers: [{name: c, image: nginx}]
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: bad
  spec:
    template:
      metadata:
        labels: {app: x}
        annotations:
          k8s.ksyun.com/kci-http-registry: "a.example"
          k8s.ksyun.com/kci-dns-config: '{"nameservers": ["1.2.3"]}'
      spec:
        containers: [{name: c, image: nginx}]
"""


def test_findings_inside_a_list_point_at_the_item_and_its_annotation(tmp_path: Path) -> None:
    path = manifest(tmp_path, LIST)
    result = run(tmp_path, "-f", path)
    assert result.returncode == 1
    line = line_of(LIST, "k8s.ksyun.com/kci-dns-config:")
    assert result.stderr.startswith(
        f"{path}:{line}: denied: Deployment/bad: k8s.ksyun.com/kci-dns-config (pod): "
        '"nameservers" item 1: "1.2.3" is not an IPv4 or IPv6 address'), result.stderr


def test_a_finding_without_annotations_points_at_its_list_item(tmp_path: Path) -> None:
    text = LIST.replace("name: good", "name: good\n    namespace: kube-system")
    result = run(tmp_path, "-f", manifest(tmp_path, text.split("- apiVersion: apps/v1")[0]))
    assert result.returncode == 0, result.stderr
    line = line_of(text, "- apiVersion: v1\n  kind: Pod")
    assert f"in.yaml:{line}: warning: Pod/good: namespace kube-system is " in result.stderr


# --- reading: libyaml when present, the same documents either way -----------------------------


def test_libyaml_reads_and_writes_when_present() -> None:
    assert yaml.__with_libyaml__, "PyYAML here is built with libyaml"
    assert issubclass(documents.Loader, yaml.CSafeLoader)
    assert documents.Dumper is yaml.CSafeDumper


@pytest.mark.parametrize("loader", [yaml.SafeLoader, yaml.CSafeLoader], ids=["python", "libyaml"])
def test_both_loaders_give_the_same_documents_and_positions(
        monkeypatch: pytest.MonkeyPatch, loader: type[Any]) -> None:
    monkeypatch.setattr(documents, "Loader", loader)
    text = CONFIGMAP + "---\n" + POD + "--- {kind: X}\n---\n"
    docs = documents.load(text, "in.yaml")
    assert [(d.line, d.column) for d in docs] == [(2, 0), (9, 0), (15, 4), (17, 0)]
    assert [d.data and d.data["kind"] for d in docs] == ["ConfigMap", "Pod", "X", None]
    assert text[docs[0].start:docs[0].end] == CONFIGMAP.split("\n", 1)[1]


def test_large_input(tmp_path: Path) -> None:
    """3,000 Deployments (about 2.5 MB) in one stream: each one mutated, in order."""
    text = "---\n".join(DOC_DEPLOYMENT.replace("nginx-rbkci", f"app-{i}") for i in range(3000))
    result = run(tmp_path, "-f", manifest(tmp_path, text), "--strict")
    assert result.returncode == 0, result.stderr[-500:]
    out = list(yaml.load_all(result.stdout, Loader=yaml.CSafeLoader))
    assert [d["metadata"]["name"] for d in out] == [f"app-{i}" for i in range(3000)]
    assert all(MIRRORED in json.dumps(d) for d in out)


# --- properties ---------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.text(min_size=1, max_size=8), VALUES, min_size=1,
                                max_size=5), min_size=1, max_size=4),
       st.sampled_from([yaml.SafeLoader, yaml.CSafeLoader]))
def test_what_the_webhook_does_not_touch_comes_back_byte_for_byte(
        objects: list[dict[str, Any]], loader: type[Any]) -> None:
    text = yaml.safe_dump_all(objects, sort_keys=False)
    default, documents.Loader = documents.Loader, loader
    try:
        docs = documents.load(text, "in.yaml")
    finally:
        documents.Loader = default
    assert [d.data for d in docs] == objects
    assert documents.splice(text, []) == text
    replaced = documents.splice(text, [(d, documents.dump_yaml(d.data), False) for d in docs])
    assert list(yaml.safe_load_all(replaced)) == objects


def test_preview_is_idempotent(tmp_path: Path) -> None:
    once = run(tmp_path, "-f", manifest(tmp_path, DOC_DEPLOYMENT + "---\n" + POD))
    twice = run(tmp_path, "-f", manifest(tmp_path, once.stdout, name="once.yaml"))
    assert once.returncode == twice.returncode == 0
    assert twice.stdout == once.stdout


def test_a_reader_that_stops_early_ends_the_preview_quietly(tmp_path: Path) -> None:
    """`kci-webhook mutate -f big.yaml | head`: head closes the pipe; no traceback."""
    (tmp_path / "config.yaml").write_text(CONFIG)
    path = manifest(tmp_path, "---\n".join([POD] * 2000))
    read_end, write_end = os.pipe()
    os.close(read_end)                      # the reader is gone before the first write
    try:
        result = subprocess.run([sys.executable, "-m", "webhook", "mutate", "--config",
                                 str(tmp_path / "config.yaml"), "-f", path], cwd=ROOT,
                                stdout=write_end, stderr=subprocess.PIPE, text=True,
                                timeout=120, check=False, env={"PATH": "/usr/bin:/bin"})
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141       # as a shell reports a command ended by SIGPIPE


def test_a_key_written_twice_is_refused_where_it_is_written_again(tmp_path: Path) -> None:
    """YAML allows a key once; PyYAML alone would keep the second `image:` silently."""
    text = POD.replace("  - {name: c, image: nginx}\n",
                       "  - name: c\n    image: nginx\n    image: busybox\n")
    path = manifest(tmp_path, text)
    result = run(tmp_path, "-f", path)
    assert result.returncode == 2 and result.stdout == ""
    line = line_of(text, "image: busybox")
    assert result.stderr == (f"kci-webhook mutate: {path}:{line}:5: duplicate key 'image' (first "
                             f"at line {line - 1}): a key may appear once in a mapping; kubectl "
                             "refuses it too\n")


def test_a_merge_key_overridden_is_not_a_duplicate(tmp_path: Path) -> None:
    text = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "  - &c {name: a, image: nginx}\n  - <<: *c\n    name: b\n")
    assert run(tmp_path, "-f", manifest(tmp_path, text)).returncode == 0


def test_a_host_two_mirrors_serve_is_a_warning_about_the_config(tmp_path: Path) -> None:
    config = CONFIG + "  - endpoint: https://other.example/v2/x\n    hosts: [docker.io]\n"
    result = run(tmp_path, "-f", manifest(tmp_path, POD), config=config)
    assert result.returncode == 0
    assert f"{tmp_path / 'config.yaml'}: warning: mirrors[1].hosts: docker.io is also listed " \
           "by mirrors[0], which serves it" in result.stderr
    assert run(tmp_path, "-f", manifest(tmp_path, POD), "--strict",
               config=config).returncode == 1


STYLED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {app: "web"}   # flow style, quotes, a comment: none of it changes
spec:
  containers:
  - name: c
    image: "nginx"
    args: ["--port", '80']
"""


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_diff_shows_only_the_lines_that_change_in_the_files_line_endings(
        tmp_path: Path, newline: str) -> None:
    text = STYLED_POD.replace("\n", newline)
    path = tmp_path / "in.yaml"
    path.write_bytes(text.encode())
    (tmp_path / "config.yaml").write_text(CONFIG)
    result = subprocess.run([sys.executable, "-m", "webhook", "mutate", "--config",
                             str(tmp_path / "config.yaml"), "-f", str(path), "--diff"],
                            cwd=ROOT, capture_output=True, timeout=60, check=False,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines(keepends=True)
    changed = [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == [f"+  annotations:{newline}",
                       f"+    kci-webhook/original-images: '{{\"c\":\"nginx\"}}'{newline}",
                       f"+    kci-webhook/images: '{{\"v\":1,\"c\":{{\"c\":"
                       f"\"mirror:172.18.0.20:5000\"}}}}'{newline}",
                       f'-    image: "nginx"{newline}',
                       f'+    image: "{MIRRORED}"{newline}',
                       f"+  imagePullSecrets:{newline}",
                       f"+  - name: mirror-pull{newline}"]
    admitted = run(tmp_path, "-f", str(path)).stdout
    assert yaml.safe_load(admitted)["spec"]["containers"][0]["image"] == MIRRORED


def test_json_output_of_a_list_is_one_flat_list(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, LIST.split("- apiVersion: apps/v1")[0]
                                          + "---\n" + POD), "-o", "json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["kind"] == "List"
    assert [(o["kind"], o["metadata"]["name"]) for o in out["items"]] == [
        ("ConfigMap", "c"), ("Pod", "good"), ("Pod", "p")]


def test_an_if_present_mirror_is_shown_as_not_asked(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, POD),
                 config=CONFIG + "    policy: if-present\n")
    assert result.returncode == 0
    assert yaml.safe_load(result.stdout)["spec"]["containers"][0]["image"] == MIRRORED
    assert (f"warning: Pod/p: container c: nginx is shown as {MIRRORED}, but 172.18.0.20:5000 "
            "is a policy: if-present mirror, which this preview did not ask") in result.stderr
    assert "which this preview did not ask" not in run(tmp_path, "-f",
                                                      manifest(tmp_path, POD)).stderr


@pytest.mark.parametrize(("value", "message"), [
    pytest.param('["a"]', "--namespace-annotations: '[\"a\"]' is neither a file nor a JSON "
                 "object; expected a JSON object of string values", id="array"),
    pytest.param("team-a.yaml", "--namespace-annotations: 'team-a.yaml' is neither a file nor "
                 "a JSON object", id="missing-file"),
    pytest.param('{"a": 1}', "--namespace-annotations: expected a JSON object of string "
                 "values", id="not-strings"),
    pytest.param('{"a": "b"', "--namespace-annotations:2:1: did not find expected ',' or '}'",
                 id="broken-json"),
])
def test_namespace_annotations_say_what_they_expect(tmp_path: Path, value: str,
                                                   message: str) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, POD), "--namespace-annotations", value)
    assert result.returncode == 2
    assert result.stderr.startswith(f"kci-webhook mutate: {message}"), result.stderr
    assert "No such file" not in result.stderr


# --- dialects: the keys of ECI and CCI 2.0 ------------------------------------------------

DIALECT_CONFIG = CONFIG + """\
  - endpoint: http://10.0.0.9:5000
    hosts: [quay.io]
"""

# The vendors' own examples ("Configure a custom DNS server for a pod"; CCI 2.0's
# "Pulling an image from a self-managed image repository"), their masks made real.
ECI_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    k8s.aliyun.com/eci-custom-dnsconfig: '{"nameservers":"20.1.0.1,20.1.0.2","searches":"xx.com,xx.eee","options":"ndots:2,edns0"}'
spec:
  containers:
  - {name: c, image: 'quay.io/prom/node:1'}
"""  # noqa: E501
CCI_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    cci.io/http-registries: harbor.corp.com,192.168.10.20:5000,100.95.10.20,http://harbor.corp.com
spec:
  containers:
  - {name: c, image: 'quay.io/prom/node:1'}
  - {name: d, image: '192.168.10.20:5000/team/app:2'}
"""


def test_mutate_previews_eci_dns_in_its_own_format(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, ECI_POD), "--dialect", "eci",
                 config=DIALECT_CONFIG)
    assert result.returncode == 0, result.stderr
    out = yaml.safe_load(result.stdout)
    annotations = out["metadata"]["annotations"]
    assert annotations["k8s.aliyun.com/eci-custom-dnsconfig"] == (
        '{"nameservers":"20.1.0.1,20.1.0.2","searches":"xx.com,xx.eee",'
        '"options":"ndots:2,edns0"}')
    assert out["spec"]["dnsConfig"] == {
        "nameservers": ["20.1.0.1", "20.1.0.2"], "searches": ["xx.com", "xx.eee"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    assert annotations["k8s.aliyun.com/plain-http-registry"] == "10.0.0.9:5000"
    assert out["spec"]["containers"][0]["image"] == "10.0.0.9:5000/prom/node:1"


def test_mutate_previews_a_namespace_dns_default_in_eci(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, POD), "--dialect", "eci",
                 "--namespace-annotations",
                 '{"k8s.aliyun.com/eci-custom-dnsconfig": "{\\"nameservers\\":\\"10.0.0.53\\"}"}')
    assert result.returncode == 0, result.stderr
    out = yaml.safe_load(result.stdout)
    assert out["metadata"]["annotations"]["k8s.aliyun.com/eci-custom-dnsconfig"] == \
        '{"nameservers":"10.0.0.53"}'
    assert out["spec"]["dnsConfig"] == {"nameservers": ["10.0.0.53"]}


def test_mutate_refuses_eci_dns_beyond_the_vendors_limit(tmp_path: Path) -> None:
    pod = ECI_POD.replace('"20.1.0.1,20.1.0.2"', '"20.1.0.1,20.1.0.2,20.1.0.3"')
    result = run(tmp_path, "-f", manifest(tmp_path, pod), "--dialect", "eci")
    assert result.returncode == 1
    assert result.stdout == ""
    assert '"nameservers": 3 nameservers, at most 2 allowed' in result.stderr


def test_mutate_previews_cci_registry_lists_with_the_mirrors_entries(tmp_path: Path) -> None:
    result = run(tmp_path, "-f", manifest(tmp_path, CCI_POD), "--dialect", "cci",
                 config=DIALECT_CONFIG)
    assert result.returncode == 0, result.stderr
    assert "has no annotation to say so" not in result.stderr
    out = yaml.safe_load(result.stdout)
    assert out["metadata"]["annotations"]["cci.io/http-registries"] == \
        "harbor.corp.com,192.168.10.20:5000,100.95.10.20,10.0.0.9:5000"
    assert [c["image"] for c in out["spec"]["containers"]] == [
        "10.0.0.9:5000/prom/node:1", "192.168.10.20:5000/team/app:2"]


def test_mutate_refuses_a_cci_entry_that_weakens_a_mirror(tmp_path: Path) -> None:
    pod = CCI_POD.replace(
        "cci.io/http-registries: harbor.corp.com,192.168.10.20:5000,100.95.10.20,"
        "http://harbor.corp.com",
        "cci.io/insecure-registries: harbor.corp.com,https://172.18.0.20:5000/test-namespace")
    result = run(tmp_path, "-f", manifest(tmp_path, pod), "--dialect", "cci",
                 config=DIALECT_CONFIG)
    assert result.returncode == 1
    assert "cci.io/insecure-registries (pod): registry '172.18.0.20:5000/test-namespace' is a " \
           "configured mirror's host (172.18.0.20:5000)" in result.stderr
