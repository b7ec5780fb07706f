"""The chart's dashboard and alerts, each checked by its own tool and against the server.

- The PrometheusRule, rendered by Helm's engine, is a rules file `promtool check rules`
  accepts, and `promtool test rules` fires (or keeps quiet) its alerts on made-up series
  as the runbook says; every `runbook_url` anchor is a heading of docs/operating.md.
- The dashboard JSON loads into grafana-foundation-sdk's dashboard model (Grafana's own
  schema, generated) with nothing left over: a misspelt field anywhere, panel options
  included, is a field the model does not know.
- Every expression of both names only metrics the server exports (its REGISTRY), or
  Prometheus's own `up`: a renamed metric cannot leave a silent alert behind.
- With the opt-ins off, the chart renders what it rendered before.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from helm_python import HelmRenderError
from prometheus_client import CollectorRegistry

from hack import chart_render as chart
from tests.conftest import ROOT
from tests.test_docs import anchors
from tests.test_manifests import one, validate
from webhook.server.metrics import REGISTRY

DASHBOARD_FILE = chart.CHART / "dashboards" / "kci-webhook.json"
OPERATING = ROOT / "docs" / "operating.md"
ON = {"grafanaDashboard": {"enabled": True}, "prometheusRule": {"enabled": True},
      "serviceMonitor": {"enabled": True}}
SELECTOR = 'job="kci-webhook",namespace="kci-webhook"'
PROMTOOL_TIMEOUT = 60

Objects = list[dict[str, Any]]


def promtool() -> str:
    """promtool is a Debian package (`prometheus`, installed by `make deps`): a missing
    one is a failure, never a skip, or the rules would go unchecked."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: `make deps` installs the Debian package prometheus")
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True,
                          timeout=PROMTOOL_TIMEOUT, check=False)


def rules(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rule = one(chart.render(values or ON), "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def rules_file(tmp_path: Path, values: dict[str, Any] | None = None) -> Path:
    """The PrometheusRule's spec as a Prometheus rules file (what the Operator writes)."""
    spec = one(chart.render(values or ON), "PrometheusRule")["spec"]
    path = tmp_path / "kci-webhook.rules.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel but rows, including those folded into a row."""
    for panel in board["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


# --- metric names in PromQL ------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
# Label lists: by (…), without (…), on (…), ignoring (…), group_left (…), group_right (…).
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on",
                       "ignoring", "group_left", "group_right", "inf", "nan", "atan2"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions
    (followed by `(`), keywords, label names (inside `{}` and label lists) or strings."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text)
            if name.lower() not in _KEYWORDS and not re.fullmatch(r"\d\w*", name)}


# A dashboard variable's query: Grafana's label_values(SERIES, LABEL), not PromQL.
_LABEL_VALUES = re.compile(r"label_values\((.*),\s*[A-Za-z_]\w*\)")


def variable_series(query: str) -> str:
    """The PromQL series selector inside a `label_values(…)` query."""
    match = _LABEL_VALUES.fullmatch(query)
    assert match, query
    return match.group(1)


def exported(registry: CollectorRegistry) -> set[str]:
    """The series names the server's registry exposes, with the suffixes each type adds."""
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created")}
    return {family.name + suffix for family in registry.collect()
            for suffix in suffixes[family.type]}


# Prometheus's own series for each scrape target.
SCRAPE_SERIES = {"up"}


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (le) (rate(a_bucket{job="x", le!="y"}[5m]))', {"a_bucket"}),
    ("histogram_quantile(0.99, sum by (le, endpoint) (rate(b_bucket[$__rate_interval])))",
     {"b_bucket"}),
    ("x / on (instance) group_left (mirror) y > bool 0.5 unless z offset 5m", {"x", "y", "z"}),
    ('absent(up{job="kci-webhook"} == 1)', {"up"}),
    ('time() - max by (instance) (c{a="sum(d)"} > 0) > 900', {"c"}),
    ('min(f:recorded) - 1e3 * 86400 < 14 * 86400 and g', {"f:recorded", "g"}),
], ids=["matchers", "quantile", "operators", "absent", "quoted", "numbers"])
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    """The extractor is what the checks below rest on: it must find every metric and
    nothing else (no function, keyword, label, number or quoted text)."""
    assert metric_names(expr) == names


def test_a_variables_query_is_read_as_the_series_it_lists() -> None:
    assert metric_names(variable_series(
        'label_values(e{namespace=~"$namespace"}, job)')) == {"e"}


def test_the_exported_names_are_the_servers_and_an_unknown_one_is_not_among_them() -> None:
    names = exported(REGISTRY)
    assert {"kci_webhook_admissions_total", "kci_webhook_admission_duration_seconds_bucket",
            "kci_webhook_mirror_lookups_total",
            "kci_webhook_certificate_expiry_timestamp_seconds"} <= names
    assert "kci_webhook_admissions" not in names and "kci_webhook_mirror_misses" not in names


def test_every_alert_names_only_metrics_the_server_exports() -> None:
    known = exported(REGISTRY) | SCRAPE_SERIES
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= known, (rule["alert"], names - known)


def test_every_dashboard_query_names_only_metrics_the_server_exports() -> None:
    known = exported(REGISTRY) | SCRAPE_SERIES
    board = dashboard()
    queries = [(panel["title"], target["expr"]) for panel in panels(board)
               for target in panel["targets"]]
    queries += [(variable["name"], variable_series(variable["query"]["query"]))
                for variable in board["templating"]["list"] if variable["type"] == "query"]
    for title, expr in queries:
        names = metric_names(expr)
        assert names, title
        assert names <= known, (title, names - known)


def test_the_dashboard_shows_each_thing_an_operator_asks_about() -> None:
    """Admission rate and outcome, latency quantiles, denials by reason, mirror misses and
    timeouts by mirror, config reloads, certificate days left, namespace watch health."""
    exprs = " ".join(target["expr"] for panel in panels(dashboard())
                     for target in panel["targets"])
    for needed in ("sum by (outcome) (rate(kci_webhook_admissions_total",
                   "histogram_quantile(0.99, sum by (le) "
                   "(rate(kci_webhook_admission_duration_seconds_bucket",
                   "sum by (reason) (rate(kci_webhook_denials_total",
                   "sum by (mirror, result) (rate(kci_webhook_mirror_lookups_total",
                   "kci_webhook_config_reloads_total", "kci_webhook_config_last_reload_successful",
                   "kci_webhook_certificate_expiry_timestamp_seconds",
                   "kci_webhook_namespace_cache_state",
                   "kci_webhook_namespace_cache_last_sync_timestamp_seconds"):
        assert needed in exprs, needed


# --- the dashboard ---------------------------------------------------------------------------

def _leftovers(original: Any, parsed: Any, path: str = "") -> Iterator[str]:
    """Paths of `original` that `parsed` lacks or holds with another value."""
    if isinstance(original, dict):
        for key, value in original.items():
            if not isinstance(parsed, dict) or key not in parsed:
                yield f"{path}.{key}"
            else:
                yield from _leftovers(value, parsed[key], f"{path}.{key}")
    elif isinstance(original, list):
        if not isinstance(parsed, list) or len(parsed) != len(original):
            yield f"{path}[]"
            return
        for index, (a, b) in enumerate(zip(original, parsed, strict=True)):
            yield from _leftovers(a, b, f"{path}[{index}]")
    elif original != parsed:
        yield f"{path} = {original!r}, read as {parsed!r}"


def through_grafanas_model(board: dict[str, Any]) -> dict[str, Any]:
    """`board` read into grafana-foundation-sdk's Dashboard (with the panel and query
    plugins registered, so panel options and Prometheus queries are typed too) and
    written out again: what the model does not know is gone."""
    plugins.register_default_plugins()
    written: dict[str, Any] = json.loads(json.dumps(Dashboard.from_json(board),
                                                    cls=JSONEncoder))
    return written


def test_the_dashboard_is_grafanas_schema_with_nothing_left_over() -> None:
    board = dashboard()
    assert list(_leftovers(board, through_grafanas_model(board))) == []


@pytest.mark.parametrize("break_it", [
    lambda b: b["panels"][1].__setitem__("gridpos", {}),
    lambda b: next(p for p in b["panels"] if p["type"] == "timeseries")["options"][
        "legend"].__setitem__("placment", "bottom"),
    lambda b: next(p for p in b["panels"] if p["type"] == "timeseries")["fieldConfig"][
        "defaults"]["custom"].__setitem__("drawstyle", "line"),
    lambda b: next(p for p in b["panels"] if p["type"] == "stat")["targets"][0].__setitem__(
        "exp", "up"),
], ids=["panel-field", "panel-option", "field-config", "query-field"])
def test_the_model_check_catches_a_misspelt_field(break_it: Any) -> None:
    board = dashboard()
    break_it(board)
    assert list(_leftovers(board, through_grafanas_model(board)))


def test_the_dashboard_has_a_stable_uid_a_recent_schema_and_a_datasource_variable() -> None:
    board = dashboard()
    assert board["uid"] == "kci-webhook" and board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "job"):
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_panel_queries_the_chosen_datasource_for_this_namespace_and_job() -> None:
    board = dashboard()
    source = {"type": "prometheus", "uid": "${datasource}"}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == source, panel["title"]
            for selector in re.findall(r"\w+\{([^}]*)\}", target["expr"]):
                assert 'namespace=~"$namespace", job=~"$job"' in selector, panel["title"]


def test_panels_tile_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[x, y] = panel["title"]


# --- the ConfigMap -----------------------------------------------------------------------------

def test_the_opt_ins_off_render_nothing_new() -> None:
    default = chart.render({})
    assert not [o for o in default if o["kind"] == "PrometheusRule"]
    assert {o["metadata"]["name"] for o in default if o["kind"] == "ConfigMap"} == {
        "kci-webhook-config", "kci-webhook-config-check"}
    def identities(objects: Objects) -> set[tuple[str, str]]:
        return {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert identities(chart.render(ON)) - identities(default) == {
        ("ConfigMap", "kci-webhook-dashboard"), ("PrometheusRule", "kci-webhook"),
        ("ServiceMonitor", "kci-webhook")}


def test_the_dashboard_configmap_carries_the_sidecar_label_and_the_json() -> None:
    configmap = one(chart.render(ON), "ConfigMap", "kci-webhook-dashboard")
    validate(configmap)
    assert configmap["metadata"]["namespace"] == "kci-webhook"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["kci-webhook.json"]) == dashboard()


def test_the_sidecar_label_namespace_and_annotations_follow_the_values() -> None:
    configmap = one(chart.render({"grafanaDashboard": {
        "enabled": True, "namespace": "grafana", "label": "example.com/dashboard",
        "labelValue": "kci", "labels": {"team": "platform"},
        "annotations": {"grafana_folder": "Kubernetes"}}}), "ConfigMap",
        "kci-webhook-dashboard")
    validate(configmap)
    metadata = configmap["metadata"]
    assert metadata["namespace"] == "grafana"
    assert metadata["labels"]["example.com/dashboard"] == "kci"
    assert metadata["labels"]["team"] == "platform"
    assert "grafana_dashboard" not in metadata["labels"]
    assert metadata["annotations"] == {"grafana_folder": "Kubernetes"}


# --- the rules -----------------------------------------------------------------------------

def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    done = run_promtool("check", "rules", str(rules_file(tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_check_can_fail(tmp_path: Path) -> None:
    """The check must not be a rubber stamp: a broken expression is refused."""
    path = tmp_path / "broken.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"alert": "Broken", "expr": "sum by (le (rate(x[5m]))"}]}]}))
    assert run_promtool("check", "rules", str(path)).returncode != 0


def test_a_selector_of_your_own_reaches_every_alert_and_still_checks(tmp_path: Path) -> None:
    mine = 'job="kubernetes-pods",app="kci-webhook"'
    values = {"prometheusRule": {"enabled": True, "selector": mine}}     # no ServiceMonitor
    for rule in rules(values):
        assert mine in rule["expr"] and SELECTOR not in rule["expr"], rule["alert"]
    done = run_promtool("check", "rules", str(rules_file(tmp_path, values)))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_summary_a_description_and_a_runbook_in_operating_md() -> None:
    headings = anchors(OPERATING)
    for rule in rules():
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operating.md" and anchor == rule["alert"].lower()
        assert anchor in headings, f"docs/operating.md has no heading {rule['alert']}"
        assert rule["labels"]["severity"] in {"critical", "warning"}


def test_the_alerts_are_the_ones_the_schema_lets_you_disable() -> None:
    names = {rule["alert"] for rule in rules()}
    schema = chart.schema()["properties"]["prometheusRule"]["properties"]["disabled"]
    assert names == set(schema["items"]["enum"])
    kept = rules({**ON, "prometheusRule": {"enabled": True, "disabled": [
        "KciWebhookMirrorMisses", "KciWebhookCertificateExpiry"]}})
    assert {rule["alert"] for rule in kept} == names - {"KciWebhookMirrorMisses",
                                                        "KciWebhookCertificateExpiry"}


def test_alert_labels_and_thresholds_follow_the_values() -> None:
    tuned = {rule["alert"] + rule["labels"]["severity"]: rule for rule in rules(
        {**ON, "prometheusRule": {"enabled": True, "alertLabels": {"team": "platform"},
                            "thresholds": {"latencyP99Seconds": 0.25,
                                           "certificateCriticalDays": 5}}})}
    assert all(rule["labels"]["team"] == "platform" for rule in tuned.values())
    assert tuned["KciWebhookHighLatencywarning"]["expr"].endswith("> 0.25")
    assert tuned["KciWebhookCertificateExpirycritical"]["expr"].endswith("< 5 * 86400")
    assert tuned["KciWebhookCertificateExpirywarning"]["expr"].endswith("< 14 * 86400")


def test_a_critical_certificate_threshold_above_the_warning_is_refused() -> None:
    with pytest.raises(HelmRenderError, match="certificateCriticalDays"):
        chart.render({**ON, "prometheusRule": {"enabled": True, "thresholds": {
            "certificateWarningDays": 7, "certificateCriticalDays": 10}}})


def test_alerts_without_a_scrape_they_can_select_are_refused() -> None:
    """Rules for series nobody scrapes would only ever say KciWebhookDown."""
    with pytest.raises(HelmRenderError, match="serviceMonitor.enabled"):
        chart.render({"prometheusRule": {"enabled": True}})


# --- the alerts on made-up series: promtool test rules -----------------------------------------

TARGET = {"job": "kci-webhook", "namespace": "kci-webhook"}
INSTANCE = "10.0.0.7:8443"


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    every = {**TARGET, **labels}
    text = ",".join(f'{key}="{value}"' for key, value in every.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def annotations(alert: str, severity: str, description: str) -> dict[str, str]:
    """What the alert says once Prometheus has filled in its templates: the rendered
    summary and runbook, and the description as the test expects it to read."""
    (rule,) = [r for r in rules() if r["alert"] == alert and r["labels"]["severity"] == severity]
    return {"summary": rule["annotations"]["summary"], "description": description,
            "runbook_url": rule["annotations"]["runbook_url"]}


def test_promtool_fires_the_alerts_on_made_up_series_and_only_those(tmp_path: Path) -> None:
    """Each alert under test in a case that fires and one that does not: a replica down
    and all down; a mirror that times out beside one that answers; a certificate 10
    days from expiry (warning, not critical) beside one far off; a refused config; a
    namespace cache that went quiet beside one that keeps syncing."""
    mirror_labels = {"mirror": "slow-mirror.example:5000"}
    cases = {
        "rule_files": [rules_file(tmp_path).name],
        "evaluation_interval": "1m",
        "tests": [
            {   # every replica down: the webhook is down; one replica down: only that
                "interval": "1m",
                "input_series": [series("up", "1x5 0x30", instance=INSTANCE),
                                 series("up", "1x5 0x30", instance="10.0.0.8:8443")],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "KciWebhookDown", "exp_alerts": []},
                    {"eval_time": "20m", "alertname": "KciWebhookDown", "exp_alerts": [{
                        "exp_labels": {"severity": "critical"},
                        "exp_annotations": annotations(
                            "KciWebhookDown", "critical",
                            "No scrape target of the webhook has answered for 5 minutes. "
                            "With failurePolicy Fail, pod creation in every selected "
                            "namespace is refused until one answers.")}]},
                ],
            },
            {   # one replica of two down: ReplicaDown for it, the webhook is not down
                "interval": "1m",
                "input_series": [series("up", "1x40", instance="10.0.0.8:8443"),
                                 series("up", "1x5 0x35", instance=INSTANCE)],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "KciWebhookDown", "exp_alerts": []},
                    {"eval_time": "30m", "alertname": "KciWebhookReplicaDown", "exp_alerts": [{
                        "exp_labels": {**TARGET, "instance": INSTANCE, "severity": "warning"},
                        "exp_annotations": annotations(
                            "KciWebhookReplicaDown", "warning",
                            f"{INSTANCE} has not answered a scrape for 10 minutes; the other "
                            "replicas carry the admissions.")}]},
                ],
            },
            {   # half the slow mirror's lookups time out; the other mirror answers them all
                "interval": "1m",
                "input_series": [
                    series("kci_webhook_mirror_lookups_total", "0+6x40", result="timeout",
                           **mirror_labels),
                    series("kci_webhook_mirror_lookups_total", "0+6x40", result="present",
                           **mirror_labels),
                    series("kci_webhook_mirror_lookups_total", "0+60x40", result="present",
                           mirror="mirror.example:5000"),
                    series("kci_webhook_mirror_lookups_total", "0x40", result="timeout",
                           mirror="mirror.example:5000")],
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "KciWebhookMirrorTimeouts",
                     "exp_alerts": []},
                    {"eval_time": "30m", "alertname": "KciWebhookMirrorTimeouts",
                     "exp_alerts": [{
                         "exp_labels": {**TARGET, **mirror_labels, "severity": "warning"},
                         "exp_annotations": annotations(
                             "KciWebhookMirrorTimeouts", "warning",
                             "50% of the if-present lookups of mirror "
                             "slow-mirror.example:5000 timed out or failed over 10 minutes: "
                             "those images were kept upstream.")}]},
                    {"eval_time": "30m", "alertname": "KciWebhookMirrorMisses",
                     "exp_alerts": []},
                ],
            },
            {   # 10 days left at 30m: a warning, not yet critical; the other is far off
                "interval": "1m",
                "input_series": [
                    series("kci_webhook_certificate_expiry_timestamp_seconds",
                           f"{10 * 86400 + 1800}x40", instance=INSTANCE),
                    series("kci_webhook_certificate_expiry_timestamp_seconds",
                           f"{300 * 86400}x40", instance="10.0.0.8:8443")],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "KciWebhookCertificateExpiry",
                     "exp_alerts": [{
                         "exp_labels": {**TARGET, "instance": INSTANCE,
                                        "severity": "warning"},
                         "exp_annotations": annotations(
                             "KciWebhookCertificateExpiry", "warning",
                             f"The certificate {INSTANCE} serves expires in 10d 0h 0m 0s. "
                             "Once it has, the API server's calls fail and, with "
                             "failurePolicy Fail, pod creation stops.")}]},
                ],
            },
            {   # a refused config stays an alert until a reload succeeds
                "interval": "1m",
                "input_series": [
                    series("kci_webhook_config_last_reload_successful", "1x5 0x20 1x10",
                           instance=INSTANCE)],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "KciWebhookConfigReloadFailed",
                     "exp_alerts": []},
                    {"eval_time": "20m", "alertname": "KciWebhookConfigReloadFailed",
                     "exp_alerts": [{
                         "exp_labels": {**TARGET, "instance": INSTANCE,
                                        "severity": "warning"},
                         "exp_annotations": annotations(
                             "KciWebhookConfigReloadFailed", "warning",
                             f"{INSTANCE} refused the config file's current content; the "
                             "previous config keeps serving. /readyz names the key "
                             "(configReloadError).")}]},
                    {"eval_time": "34m", "alertname": "KciWebhookConfigReloadFailed",
                     "exp_alerts": []},
                ],
            },
            {   # one replica drops Events from minute 10 on; the other sends every one
                "interval": "1m",
                "input_series": [
                    series("kci_webhook_events_total", "0x10 0+4x40", instance=INSTANCE,
                           result="dropped"),
                    series("kci_webhook_events_total", "0+10x50", instance="10.0.0.8:8443",
                           result="sent")],
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": "KciWebhookEventsNotDelivered",
                     "exp_alerts": []},
                    {"eval_time": "40m", "alertname": "KciWebhookEventsNotDelivered",
                     "exp_alerts": [{
                         "exp_labels": {**TARGET, "instance": INSTANCE,
                                        "severity": "warning"},
                         "exp_annotations": annotations(
                             "KciWebhookEventsNotDelivered", "warning",
                             f"{INSTANCE} dropped or failed to send Events for 15 minutes: "
                             "kubectl describe no longer shows why images were kept "
                             "upstream. Admissions are not affected.")}]},
                ],
            },
            {   # one cache last synced at 1m and never again; the other every 5 minutes
                "interval": "5m",
                "input_series": [
                    series("kci_webhook_namespace_cache_last_sync_timestamp_seconds", "60x8",
                           instance=INSTANCE),
                    series("kci_webhook_namespace_cache_last_sync_timestamp_seconds",
                           "60+300x8", instance="10.0.0.8:8443")],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "KciWebhookNamespaceCacheStale",
                     "exp_alerts": []},
                    {"eval_time": "41m", "alertname": "KciWebhookNamespaceCacheStale",
                     "exp_alerts": [{
                         "exp_labels": {**TARGET, "instance": INSTANCE,
                                        "severity": "warning"},
                         "exp_annotations": annotations(
                             "KciWebhookNamespaceCacheStale", "warning",
                             f"The namespace cache of {INSTANCE} was last known current 40m "
                             "0s ago; a healthy watch shows it every 5 minutes.")}]},
                ],
            },
        ],
    }
    path = tmp_path / "kci-webhook.test.yaml"
    path.write_text(yaml.safe_dump(cases, sort_keys=False))
    done = run_promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_test_can_fail(tmp_path: Path) -> None:
    """A case that expects the wrong thing fails: the test above is not a rubber stamp."""
    cases = {"rule_files": [rules_file(tmp_path).name], "evaluation_interval": "1m",
             "tests": [{"interval": "1m",
                        "input_series": [series("up", "1x30", instance=INSTANCE)],
                        "alert_rule_test": [{"eval_time": "20m", "alertname": "KciWebhookDown",
                                             "exp_alerts": [{"exp_labels": {
                                                 "severity": "critical"}}]}]}]}
    path = tmp_path / "wrong.test.yaml"
    path.write_text(yaml.safe_dump(cases, sort_keys=False))
    assert run_promtool("test", "rules", str(path)).returncode != 0
