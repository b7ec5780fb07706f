"""An HTTP-level stand-in for the Kubernetes API server's Namespace list and watch, for
GET and PATCH of admissionregistration.k8s.io/v1 webhook configurations by name, and for
what `kci-webhook plan` reads: Lists of Pods, Deployments, StatefulSets, DaemonSets,
ReplicaSets, Jobs and CronJobs (in a namespace, and across all), a Namespace, a Secret
or a ConfigMap by name.

There is no API server on this machine, so the real `kubernetes` client talks to this:
real HTTP on loopback, real Namespace JSON, a chunked watch stream the test feeds event
by event, bookmarks, `410 Gone` as the API server sends it (an ERROR event, or the watch
request itself answered 410), a dropped connection, and failing lists. The webhook
configurations are stored as the API server returns them; a PATCH is applied as a
strategic merge patch of that kind is (`webhooks` merged by `name`, a selector's
matchLabels merged and its matchExpressions replaced), checks a resourceVersion it
carries (409 Conflict when stale), and can be made to fail. Events (`events.k8s.io/v1`)
are created (POST) and merge-patched (PATCH) by name, each checked as the API server's
validation for that version checks it (422 Invalid with the field, 409 AlreadyExists);
they can be made to fail (a status per request) or to hang until released. Every request
is recorded (method, path, query, `Accept` of a GET, content type and body of a POST or
PATCH).

The Lists are shaped as the API server sends them (`kind: PodList`, `apiVersion`,
`metadata.resourceVersion`, items without their own kind and apiVersion) and paged as it
pages them: `limit` cuts a page, `metadata.continue` is the token of the next, and
`remainingItemCount` says how many are left. An object asked with the `Accept` of
`as=PartialObjectMetadata` comes back as that: its metadata alone. A namespace in
`forbidden` answers 403 to every read in it, as RBAC does, with the API server's message
(`forbidden_reads`: one kind in one namespace); `cluster_lists_forbidden` refuses the
lists across all namespaces (a user with rights in some namespaces only).
"""

from __future__ import annotations

import copy
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
from kubernetes import client

ADMISSION_PREFIX = "/apis/admissionregistration.k8s.io/v1/"
EVENTS = re.compile(r"/apis/events\.k8s\.io/v1/namespaces/([^/]+)/events(?:/([^/]+))?")
KINDS = {"mutatingwebhookconfigurations": "MutatingWebhookConfiguration",
         "validatingwebhookconfigurations": "ValidatingWebhookConfiguration"}
# kind → (API group path, plural): what the stand-in serves Lists and objects of
RESOURCES = {
    "Pod": ("api/v1", "pods"), "Secret": ("api/v1", "secrets"),
    "ConfigMap": ("api/v1", "configmaps"),
    "Deployment": ("apis/apps/v1", "deployments"),
    "StatefulSet": ("apis/apps/v1", "statefulsets"),
    "DaemonSet": ("apis/apps/v1", "daemonsets"),
    "ReplicaSet": ("apis/apps/v1", "replicasets"),
    "Job": ("apis/batch/v1", "jobs"), "CronJob": ("apis/batch/v1", "cronjobs"),
}
_BY_PATH = {f"/{group}/{plural}": kind for kind, (group, plural) in RESOURCES.items()}


def namespace(name: str, annotations: dict[str, str] | None = None,
              resource_version: str = "1") -> dict[str, Any]:
    """A Namespace object as the API server serializes it."""
    return {"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": resource_version,
                         "labels": {"kubernetes.io/metadata.name": name},
                         "annotations": annotations or {},
                         "creationTimestamp": "2026-11-22T00:00:00Z"},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


class StandIn:
    """State shared with the handler: the namespaces, and the open watch streams."""

    def __init__(self) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.resource_version = 100
        self.list_status = 200
        self.watch_gone_once = False   # answer the next watch request HTTP 410 itself
        self.requests: list[dict[str, Any]] = []
        # (resource, name) → the stored object; PATCHes answered this status while > 0 left.
        self.configurations: dict[tuple[str, str], dict[str, Any]] = {}
        self.patch_failures: list[int] = []
        self.watchers: list[queue.Queue[Any]] = []
        self.lock = threading.Lock()
        self.watch_opened = threading.Condition(self.lock)
        # kind → objects of that kind (each with its metadata.namespace), in creation order
        self.objects: dict[str, list[dict[str, Any]]] = {kind: [] for kind in RESOURCES}
        self.forbidden: set[str] = set()
        self.forbidden_reads: set[tuple[str, str]] = set()   # (namespace, kind) refused
        self.cluster_lists_forbidden = False

        # (namespace, name) → the stored Event; statuses to answer the next event calls
        # with; while `events_hang` is clear, every event call waits for it.
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.event_failures: list[int] = []
        self.events_hang = threading.Event()
        self.events_hang.set()
        self.event_calls = threading.Semaphore(0)    # released once per event call answered

    def put(self, obj: dict[str, Any]) -> None:
        """Create an object of a kind in RESOURCES (its namespace need not exist)."""
        with self.lock:
            self.resource_version += 1
            stored = copy.deepcopy(obj)
            meta = stored.setdefault("metadata", {})
            meta["resourceVersion"] = str(self.resource_version)
            meta.setdefault("uid", f"uid-{obj['kind']}-{meta.get('namespace')}-{meta['name']}")
            self.objects[obj["kind"]].append(stored)

    def list_body(self, kind: str, namespace: str | None, limit: int | None,
                  token: str | None) -> tuple[int, dict[str, Any]]:
        """A List as the API server answers it, one page of it."""
        group, plural = RESOURCES[kind]
        if namespace is None and self.cluster_lists_forbidden:
            return 403, _forbidden(plural, None)
        if namespace in self.forbidden or (namespace, kind) in self.forbidden_reads:
            return 403, _forbidden(plural, namespace)
        with self.lock:
            items = [copy.deepcopy(o) for o in self.objects[kind]
                     if namespace is None or o["metadata"].get("namespace") == namespace]
            version = str(self.resource_version)
        start = int(token.split(":", 1)[1]) if token else 0
        end = len(items) if not limit else start + limit
        meta: dict[str, Any] = {"resourceVersion": version}
        if end < len(items):
            meta["continue"] = f"{version}:{end}"
            meta["remainingItemCount"] = len(items) - end
        for item in items:
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return 200, {"kind": f"{kind}List", "apiVersion": group.split("/", 1)[1],
                     "metadata": meta, "items": items[start:end]}

    def get_object(self, kind: str, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        plural = RESOURCES[kind][1]
        if namespace in self.forbidden or (namespace, kind) in self.forbidden_reads:
            return 403, _forbidden(plural, namespace, verb="get")
        with self.lock:
            for obj in self.objects[kind]:
                meta = obj["metadata"]
                if meta.get("namespace") == namespace and meta.get("name") == name:
                    return 200, copy.deepcopy(obj)
        return 404, _status(404, f'{plural} "{name}" not found', "NotFound")

    def set(self, name: str, annotations: dict[str, str] | None = None,
            *, event: str | None = "MODIFIED") -> None:
        """Create or change a namespace; open watches get the event."""
        with self.lock:
            self.resource_version += 1
            obj = namespace(name, annotations, str(self.resource_version))
            kind = "ADDED" if name not in self.namespaces else event
            self.namespaces[name] = obj
        self.broadcast({"type": kind, "object": obj})

    def delete(self, name: str) -> None:
        with self.lock:
            self.resource_version += 1
            obj = self.namespaces.pop(name)
            obj["metadata"]["resourceVersion"] = str(self.resource_version)
        self.broadcast({"type": "DELETED", "object": obj})

    def bookmark(self) -> None:
        with self.lock:
            self.resource_version += 1
            rv = str(self.resource_version)
        self.broadcast({"type": "BOOKMARK", "object": {
            "kind": "Namespace", "apiVersion": "v1", "metadata": {"resourceVersion": rv}}})

    def gone(self) -> None:
        """What the API server sends when the watch's resourceVersion is too old."""
        self.broadcast({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 1 (200)", "reason": "Expired", "code": 410}})
        self.broadcast(None)

    def drop(self) -> None:
        """Cut every open watch connection without ending the chunked stream."""
        self.broadcast("drop")

    def broadcast(self, item: Any) -> None:
        with self.lock:
            for watcher in self.watchers:
                watcher.put(item)

    def wait_for_watchers(self, count: int, timeout: float = 10.0) -> bool:
        with self.watch_opened:
            return self.watch_opened.wait_for(lambda: len(self.watchers) >= count, timeout)

    def watch_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("watch") == ["true"]]

    def put_configuration(self, obj: dict[str, Any]) -> None:
        """Create or replace a webhook configuration (as `kubectl apply` would leave it)."""
        resource = {kind: plural for plural, kind in KINDS.items()}[obj["kind"]]
        with self.lock:
            self.resource_version += 1
            stored = copy.deepcopy(obj)
            meta = stored.setdefault("metadata", {})
            meta["resourceVersion"] = str(self.resource_version)
            meta.setdefault("uid", f"uid-{meta['name']}")
            meta.setdefault("generation", 1)
            self.configurations[(resource, meta["name"])] = stored

    def configuration(self, kind: str, name: str) -> dict[str, Any]:
        resource = {k: plural for plural, k in KINDS.items()}[kind]
        with self.lock:
            return copy.deepcopy(self.configurations[(resource, name)])

    def admission_requests(self) -> list[dict[str, Any]]:
        """Every request about webhook configurations (neither Namespaces nor Events)."""
        return [r for r in self.requests if r["path"] != "/api/v1/namespaces"
                and not EVENTS.fullmatch(r["path"])]

    def patch(self, resource: str, name: str, content_type: str,
              body: Any) -> tuple[int, dict[str, Any]]:
        """Apply a PATCH as the API server does for this kind, or refuse it as it would."""
        with self.lock:
            if self.patch_failures:
                code = self.patch_failures.pop(0)
                return code, _status(code, "injected failure")
            stored = self.configurations.get((resource, name))
            if stored is None:
                return 404, _status(404, f'{resource} "{name}" not found', "NotFound")
            if content_type != "application/strategic-merge-patch+json":
                return 415, _status(415, f"the stand-in takes strategic merge patches, "
                                         f"not {content_type}", "UnsupportedMediaType")
            if not isinstance(body, dict):
                return 400, _status(400, "patch body is not an object", "BadRequest")
            version = (body.get("metadata") or {}).get("resourceVersion")
            if version is not None and version != stored["metadata"]["resourceVersion"]:
                return 409, _status(409, "the object has been modified; please apply your "
                                         "changes to the latest version and try again",
                                    "Conflict")
            merged = _strategic_merge(stored, body)
            if merged != stored:
                self.resource_version += 1
                merged["metadata"]["resourceVersion"] = str(self.resource_version)
                merged["metadata"]["generation"] = stored["metadata"].get("generation", 1) + 1
                self.configurations[(resource, name)] = merged
            return 200, copy.deepcopy(self.configurations[(resource, name)])


    def event_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if EVENTS.fullmatch(r["path"])]

    def event(self, method: str, namespace: str, name: str | None, content_type: str,
              body: Any) -> tuple[int, dict[str, Any]]:
        """Create or merge-patch an Event as the API server does, or refuse it."""
        with self.lock:
            if self.event_failures:
                code = self.event_failures.pop(0)
                return code, _status(code, "injected failure")
            if method == "POST":
                problems = event_problems(body, namespace)
                if problems:
                    return 422, _status(422, "Event is invalid: " + "; ".join(problems),
                                        "Invalid")
                key = (namespace, body["metadata"]["name"])
                if key in self.events:
                    return 409, _status(409, f'events.events.k8s.io "{key[1]}" already exists',
                                        "AlreadyExists")
                self.resource_version += 1
                stored = copy.deepcopy(body)
                stored["metadata"]["resourceVersion"] = str(self.resource_version)
                self.events[key] = stored
                return 201, copy.deepcopy(stored)
            stored = self.events.get((namespace, name or ""))
            if stored is None:
                return 404, _status(404, f'events.events.k8s.io "{name}" not found', "NotFound")
            if content_type != "application/merge-patch+json" or not isinstance(body, dict):
                return 415, _status(415, f"the stand-in takes merge patches of events, not "
                                         f"{content_type}", "UnsupportedMediaType")
            merged = _merge_map(stored, body)
            problems = event_problems(merged, namespace)
            changed = sorted(k for k in set(merged) | set(stored)
                             if k not in ("series", "metadata") and merged.get(k) != stored.get(k))
            if problems or changed:
                return 422, _status(422, "Event is invalid: " + "; ".join(
                    problems + [f"{k}: field is immutable" for k in changed]), "Invalid")
            self.events[(namespace, name or "")] = merged
            return 200, copy.deepcopy(merged)


_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def event_problems(event: Any, namespace: str) -> list[str]:
    """What events.k8s.io/v1 refuses in an Event created in `namespace`
    (pkg/apis/core/validation/events.go, ValidateEventCreate at version v1)."""
    if not isinstance(event, dict):
        return ["not an object"]
    problems = []
    meta = event.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        problems.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    if meta.get("namespace") != namespace:
        problems.append("metadata.namespace: does not match the request")
    if not _MICRO_TIME.fullmatch(str(event.get("eventTime"))):
        problems.append("eventTime: Required value (RFC 3339 with microseconds)")
    if event.get("type") not in ("Normal", "Warning"):
        problems.append(f"type: has invalid value: {event.get('type')}")
    controller = event.get("reportingController")
    if not isinstance(controller, str) or len(controller) > 316 \
            or not _QUALIFIED.fullmatch(controller):
        problems.append("reportingController: must be a qualified name")
    for field, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
        value = event.get(field)
        if not isinstance(value, str) or not value or len(value.encode()) > limit:
            problems.append(f"{field}: required, at most {limit} characters")
    if len(str(event.get("note", "")).encode()) > 1024:
        problems.append("note: can have at most 1024 characters")
    regarding = event.get("regarding") or {}
    if not regarding.get("namespace") and namespace not in ("default", "kube-system"):
        problems.append("regarding.namespace: does not match event.namespace")
    series = event.get("series")
    if series is not None and (not isinstance(series.get("count"), int)
                               or series["count"] < 2
                               or not _MICRO_TIME.fullmatch(str(series.get("lastObservedTime")))):
        problems.append("series: count at least 2 and lastObservedTime required")
    for field in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount",
                  "deprecatedSource"):
        if event.get(field):
            problems.append(f"{field}: needs to be unset")
    return problems


def _forbidden(plural: str, namespace: str | None, verb: str = "list") -> dict[str, Any]:
    """RBAC's refusal, in the API server's words."""
    group = "" if plural in ("pods", "secrets", "configmaps", "namespaces") else (
        "apps" if plural.endswith("sets") or plural == "deployments" else "batch")
    where = (f'in the namespace "{namespace}"' if namespace is not None
             else "at the cluster scope")
    return _status(403, f'{plural} is forbidden: User "jane" cannot {verb} resource '
                        f'"{plural}" in API group "{group}" {where}', "Forbidden")


def _status(code: int, message: str, reason: str = "InternalError") -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _strategic_merge(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The subset of strategic merge patch the webhook configurations' schema defines:
    `webhooks` is a list merged by `name`; inside an entry, maps merge and lists (rules,
    matchExpressions) are replaced; null deletes."""
    merged = copy.deepcopy(stored)
    for key, value in patch.items():
        if key == "webhooks" and isinstance(value, list):
            entries = merged.setdefault("webhooks", [])
            for change in value:
                match = next((e for e in entries if e.get("name") == change.get("name")), None)
                if match is None:
                    entries.append(copy.deepcopy(change))
                else:
                    entries[entries.index(match)] = _merge_map(match, change)
        elif key == "metadata":
            merged["metadata"] = _merge_map(merged.get("metadata") or {},
                                            {k: v for k, v in value.items()
                                             if k != "resourceVersion"})
        else:
            merged = _merge_map(merged, {key: value})
    return merged


def _merge_map(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_map(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Go's net/http (the API server's) sets TCP_NODELAY; without it, the body written
        # after the headers waits for a delayed ACK, 40 ms per request on keep-alive.
        disable_nagle_algorithm = True

        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlparse(self.path)
            query = parse_qs(url.query)
            state.requests.append({"method": "GET", "path": url.path, **query,
                                   "accept": self.headers.get("Accept") or ""})
            if url.path.startswith(ADMISSION_PREFIX):
                self._configuration_get(url.path)
            elif self._resource_get(url.path, query):
                return
            elif url.path != "/api/v1/namespaces":
                self._json(404, {"kind": "Status", "code": 404})
            elif query.get("watch") == ["true"] and state.watch_gone_once:
                state.watch_gone_once = False
                self._json(410, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": "too old resource version: 1 (200)",
                                 "reason": "Expired", "code": 410})
            elif query.get("watch") == ["true"]:
                self._watch()
            elif state.list_status != 200:
                self._json(state.list_status, {"kind": "Status", "code": state.list_status,
                                                "message": "injected failure"})
            else:
                with state.lock:
                    body = {"kind": "NamespaceList", "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(state.resource_version)},
                            "items": list(state.namespaces.values())}
                self._json(200, body)

        def _resource_get(self, path: str, query: dict[str, list[str]]) -> bool:
            """The reads of `plan`; False when `path` is none of them."""
            limit = int(query["limit"][0]) if query.get("limit") else None
            token = query["continue"][0] if query.get("continue") else None
            parts = path.strip("/").split("/")
            if path in _BY_PATH:                                  # across all namespaces
                self._json(*state.list_body(_BY_PATH[path], None, limit, token))
                return True
            if len(parts) == 4 and parts[:3] == ["api", "v1", "namespaces"]:
                name = parts[3]
                if name in state.forbidden or (name, "Namespace") in state.forbidden_reads:
                    self._json(403, _forbidden("namespaces", None, verb="get"))
                elif name in state.namespaces:
                    self._json(200, state.namespaces[name])
                else:
                    self._json(404, _status(404, f'namespaces "{name}" not found',
                                            "NotFound"))
                return True
            # /api/v1/namespaces/NS/PLURAL[/NAME] or /apis/G/V/namespaces/NS/PLURAL[/NAME]
            head = 2 if parts[0] == "api" else 3
            if len(parts) < head + 3 or parts[head] != "namespaces":
                return False
            group, namespace = "/".join(parts[:head]), parts[head + 1]
            kind = _BY_PATH.get(f"/{group}/{parts[head + 2]}")
            if kind is None:
                return False
            if len(parts) == head + 3:
                self._json(*state.list_body(kind, namespace, limit, token))
            elif len(parts) == head + 4:
                code, body = state.get_object(kind, namespace, parts[head + 3])
                if code == 200 and "as=PartialObjectMetadata" in (self.headers.get("Accept")
                                                                  or ""):
                    body = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                            "metadata": body["metadata"]}
                self._json(code, body)
            else:
                return False
            return True

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            url, content_type, body = self._read("POST")
            events = EVENTS.fullmatch(url.path)
            if events is None or events.group(2):
                self._json(405, _status(405, "the stand-in creates events only",
                                        "MethodNotAllowed"))
                return
            self._event("POST", events.group(1), None, content_type, body)

        def _read(self, method: str) -> tuple[Any, str, Any]:
            url = urlparse(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            state.requests.append({"method": method, "path": url.path,
                                   **parse_qs(url.query), "contentType": content_type,
                                   "body": body})
            return url, content_type, body

        def _event(self, method: str, namespace: str, name: str | None, content_type: str,
                   body: Any) -> None:
            state.events_hang.wait()
            try:
                self._json(*state.event(method, namespace, name, content_type, body))
            finally:
                state.event_calls.release()

        def do_PATCH(self) -> None:  # noqa: N802 - http.server's naming
            url, content_type, body = self._read("PATCH")
            events = EVENTS.fullmatch(url.path)
            if events is not None and events.group(2):
                self._event("PATCH", events.group(1), events.group(2), content_type, body)
                return
            resource, _, name = url.path.removeprefix(ADMISSION_PREFIX).partition("/")
            if not url.path.startswith(ADMISSION_PREFIX) or resource not in KINDS or not name:
                self._json(405, _status(405, "the stand-in patches webhook configurations only",
                                        "MethodNotAllowed"))
                return
            self._json(*state.patch(resource, name, content_type, body))

        def _configuration_get(self, path: str) -> None:
            resource, _, name = path.removeprefix(ADMISSION_PREFIX).partition("/")
            with state.lock:
                stored = state.configurations.get((resource, name))
                body = copy.deepcopy(stored) if stored is not None else None
            if body is None:
                self._json(404, _status(404, f'{resource} "{name}" not found', "NotFound"))
            else:
                self._json(200, body)

        def _json(self, status: int, body: Any) -> None:
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _watch(self) -> None:
            events: queue.Queue[Any] = queue.Queue()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            with state.watch_opened:
                state.watchers.append(events)
                state.watch_opened.notify_all()
            try:
                while True:
                    item = events.get(timeout=60)
                    if item == "drop":
                        self.connection.shutdown(2)
                        return
                    if item is None:
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    line = orjson.dumps(item) + b"\n"
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    self.wfile.flush()
            except (queue.Empty, OSError):
                return
            finally:
                with state.lock:
                    state.watchers.remove(events)
                self.close_connection = True

    return Handler


@contextmanager
def running_standin() -> Iterator[tuple[StandIn, client.CoreV1Api]]:
    """The stand-in on a free loopback port, and a real CoreV1Api pointed at it."""
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_port}")
    api = client.CoreV1Api(client.ApiClient(configuration))
    try:
        yield state, api
    finally:
        state.broadcast("drop")
        state.events_hang.set()
        server.shutdown()
        server.server_close()
