"""Reading a live cluster for `kci-webhook plan`: lists of workloads, Namespaces, a
ConfigMap, whether a Secret exists — with the user's own permissions.

The API server is found where every Kubernetes tool finds it, by the same
`webhook.adapters.namespaces.choose_source` the server uses. Lists are read in pages
(`limit` and `continue`, as kubectl does), and parsed straight from the JSON (the client's
model classes are slow and drop fields they do not know). What a user may not read is an
answer, not a crash: a 403 on one namespace's list is `Forbidden`, which the caller shows as
a skipped namespace; a 403 on a cluster-wide list makes the caller ask namespace by
namespace. Every request is bounded by `REQUEST_TIMEOUT`.

With `namespaces` and `registration`, the only modules that import the `kubernetes`
client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from webhook.adapters.namespaces import api_for, choose_source
from webhook.core.errors import ConfigError

PAGE_SIZE = 500                     # kubectl's own chunk size
# An object's metadata without its content (API servers since 1.15), plain JSON otherwise.
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
REQUEST_TIMEOUT = (5, 60)           # connect, read: seconds

# The kinds `plan` reads: kind → (API group path, plural), as the API server names them.
RESOURCES: dict[str, tuple[str, str]] = {
    "Pod": ("api/v1", "pods"),
    "Deployment": ("apis/apps/v1", "deployments"),
    "StatefulSet": ("apis/apps/v1", "statefulsets"),
    "DaemonSet": ("apis/apps/v1", "daemonsets"),
    "ReplicaSet": ("apis/apps/v1", "replicasets"),
    "Job": ("apis/batch/v1", "jobs"),
    "CronJob": ("apis/batch/v1", "cronjobs"),
}


class ClusterError(Exception):
    """The cluster cannot be read at all (no API server found, unreachable, an answer
    that is not Kubernetes'): the message says which and where."""


class Forbidden(Exception):
    """The API server answered 403 for this read: the user may not do it."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(f"{what}: forbidden: {message}" if message else f"{what}: forbidden")
        self.what = what


class NotFound(Exception):
    """The API server answered 404 for this read."""


@dataclass(frozen=True)
class Cluster:
    """One API server, read through the user's kubeconfig (or the in-cluster account)."""

    api: client.ApiClient
    where: str              # how it was found, for messages

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def objects(self, kind: str, namespace: str | None = None, *,
                page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every object of `kind` in `namespace` (None: all namespaces), page by page
        (`page_size`, default PAGE_SIZE). Raises Forbidden on 403, ClusterError on
        anything else that is not a list."""
        group, plural = RESOURCES[kind]
        path = (f"/{group}/namespaces/{namespace}/{plural}" if namespace
                else f"/{group}/{plural}")
        token: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("limit", page_size or PAGE_SIZE)]
            if token:
                query.append(("continue", token))
            body = self._get(path, query, what=_what(kind, namespace))
            items = body.get("items")
            if not isinstance(items, list):
                raise ClusterError(f"{self.host}{path}: the answer has no items list")
            yield from (item for item in items if isinstance(item, dict))
            meta = body.get("metadata")
            token = meta.get("continue") if isinstance(meta, dict) else None
            if not token:
                return

    def namespaces(self) -> list[dict[str, Any]]:
        """Every Namespace (paged). Raises Forbidden when the user may not list them."""
        objects: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
            if token:
                query.append(("continue", token))
            body = self._get("/api/v1/namespaces", query, what="namespaces")
            objects += [i for i in body.get("items") or () if isinstance(i, dict)]
            meta = body.get("metadata")
            token = meta.get("continue") if isinstance(meta, dict) else None
            if not token:
                return objects

    def namespace(self, name: str) -> dict[str, Any]:
        """One Namespace. Raises Forbidden, NotFound."""
        return self._get(f"/api/v1/namespaces/{name}", [], what=f"namespace {name}")

    def config_map(self, namespace: str, name: str) -> dict[str, Any]:
        """One ConfigMap. Raises Forbidden, NotFound."""
        return self._get(f"/api/v1/namespaces/{namespace}/configmaps/{name}", [],
                         what=f"configmap {namespace}/{name}")

    def secret_exists(self, namespace: str, name: str) -> bool:
        """Whether the Secret exists. Asked for its metadata only (`PartialObjectMetadata`,
        as `kubectl get --show-kind -o name` does): the API server then sends no `data`,
        and RBAC's `get` is all it takes. Raises Forbidden."""
        try:
            self._get(f"/api/v1/namespaces/{namespace}/secrets/{name}", [],
                      what=f"secret {namespace}/{name}", accept=METADATA_ONLY)
        except NotFound:
            return False
        return True

    def _get(self, path: str, query: list[tuple[str, Any]], *, what: str,
             accept: str = "application/json") -> dict[str, Any]:
        try:
            response: Any = self.api.call_api(
                *self.api.param_serialize(method="GET", resource_path=path,
                                          query_params=query,
                                          header_params={"Accept": accept},
                                          auth_settings=["BearerToken"]),
                _request_timeout=REQUEST_TIMEOUT)
            response.read()
            status, data = response.status, response.data
        except ApiException as exc:          # the client's own: TLS failures (status 0)
            if not exc.status:
                raise ClusterError(f"API server {self.host} ({self.where}): cannot reach it: "
                                   f"{str(exc.reason or exc)[:300]}") from None
            status, data = exc.status, (exc.body or b"")
        except (Urllib3Error, OSError) as exc:
            raise ClusterError(f"API server {self.host} ({self.where}): cannot reach it: "
                               f"{_reason(exc)}") from None
        if status == 403:
            raise Forbidden(what, _message(data))
        if status == 404:
            raise NotFound(f"{what}: not found")
        if not 200 <= status <= 299:
            raise ClusterError(f"{what}: API server {self.host} answered {status}: "
                               f"{_message(data) or 'no reason given'}")
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ClusterError(f"{what}: API server {self.host} answered with something "
                               "that is not JSON") from None
        if not isinstance(body, dict):
            raise ClusterError(f"{what}: API server {self.host} answered with something "
                               "that is not an object")
        return body


def connect(*, kubeconfig: str | None, environ: Mapping[str, str],
            exists: Callable[[str], bool] | None = None) -> Cluster:
    """The cluster the user's tools talk to: `--kubeconfig`, `KUBECONFIG`, in-cluster,
    `~/.kube/config` (`choose_source`). Raises ClusterError when none is found or it
    cannot be loaded."""
    source = (choose_source(override=kubeconfig, environ=environ) if exists is None
              else choose_source(override=kubeconfig, environ=environ, exists=exists))
    try:
        core = api_for(source)
    except ConfigError as exc:
        raise ClusterError(str(exc)) from None
    if core is None:
        raise ClusterError(f"no cluster to read: {source.reason}")
    where = source.describe().removeprefix("namespace watch through ")
    return Cluster(core.api_client, where)


def _what(kind: str, namespace: str | None) -> str:
    plural = RESOURCES[kind][1]
    return f"{plural} in namespace {namespace}" if namespace else f"{plural} (all namespaces)"


def _message(data: object) -> str:
    """The `message` of a Status body, else nothing."""
    try:
        body = orjson.loads(data) if isinstance(data, bytes | str) and data else None
    except orjson.JSONDecodeError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:300] if message else ""


def _reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        reason = getattr(seen, "reason", None)
        if isinstance(reason, BaseException):
            seen = reason
            continue
        break
    text = str(seen or exc)
    if "Connection refused" in text:
        return "connection refused"
    return text[:300]
