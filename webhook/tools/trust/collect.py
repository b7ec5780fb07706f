"""Finding the trust entries in YAML, per document kind, before any entry is checked.

`load_documents` parses multi-document YAML (or JSON) and remembers mapping keys written
twice, which YAML would silently drop. `_Collector` walks the documents — a
TkgServiceConfiguration, TanzuKubernetesCluster, Cluster (its `trust` variable), Secret,
List or bare fragment — records each entry with the form its `data` must have, and the
structural problems (no list, not a mapping, a key written twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from webhook.tools.trust.report import CheckReport, DocumentReport
from webhook.tools.trust.tanzu import (
    _REFERENCE,
    _SECRET,
    _STRING_DATA,
    _TKC,
    _TKG,
    SECRET_SUFFIX,
    TKG_KIND,
    Form,
    secret_name,
)


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers keys written twice (YAML keeps only the last)."""

    duplicates: list[tuple[Any, int]]


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Map]:
    data = _Map()
    data.duplicates = []
    yield data
    data.update(loader.construct_mapping(node))
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            if key_node.value in seen:
                data.duplicates.append((key_node.value, key_node.start_mark.line + 1))
            seen.add(key_node.value)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def load_documents(text: str) -> list[Any]:
    """Multi-document YAML or JSON; yaml.YAMLError if it does not parse."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


@dataclass
class _Raw:
    """An entry as found, before any checking."""

    document: DocumentReport
    path: str
    label: str               # entry name for messages ("#2" when it has none)
    name: Any
    value: Any
    form: Form


@dataclass
class _Collector:
    """The entries of the documents given to `document`, the Secrets among them, and the
    name-only entries that refer to a cluster's Secret."""

    report: CheckReport
    raws: list[_Raw] = field(default_factory=list)
    secrets: list[tuple[DocumentReport, str, str | None, set[str]]] = field(default_factory=list)
    references: list[tuple[_Raw, str, str | None]] = field(default_factory=list)

    def document(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            return
        kind = doc.get("kind")
        if kind == "List" and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                self.document(item)
            return
        meta = doc.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        name: str = meta["name"] if isinstance(meta.get("name"), str) else "?"
        namespace: str | None = (meta["namespace"] if isinstance(meta.get("namespace"), str)
                                 else None)
        if kind == TKG_KIND:
            self._list(self._doc(f"{kind}/{name}", kind, _TKG), doc,
                       ("spec", "trust", "additionalTrustedCAs"), _TKG)
        elif kind == "TanzuKubernetesCluster":
            self._list(self._doc(f"{kind}/{name}", kind, _TKC), doc,
                       ("spec", "settings", "network", "trust", "additionalTrustedCAs"), _TKC,
                       secret=(secret_name(name), namespace))
        elif kind == "Cluster":
            self._cluster(doc, name, namespace)
        elif kind == "Secret":
            self._secret(doc, name, namespace)
        elif kind is None and ("additionalTrustedCAs" in doc or "trust" in doc
                               or "spec" in doc):
            path = next((p for p in (("additionalTrustedCAs",), ("trust", "additionalTrustedCAs"),
                                     ("spec", "trust", "additionalTrustedCAs"))
                         if _dig(doc, *p) is not None), None)
            if path is not None:
                self._list(self._doc("(fragment)", "fragment", _TKG), doc, path, _TKG)

    def _doc(self, label: str, kind: str, form: Form) -> DocumentReport:
        doc = DocumentReport(label, kind, form)
        self.report.documents.append(doc)
        return doc

    def _list(self, doc: DocumentReport, obj: Any, path: tuple[str, ...], form: Form,
              secret: tuple[str, str | None] | None = None) -> None:
        where = ".".join(path)
        items = _dig(obj, *path)
        if items is None:
            self.report.add("note", "no-entries", doc, None, f"no {where}",
                            "nothing to check here; add entries with kci-webhook trust CA.pem",
                            where)
            return
        if not isinstance(items, list):
            self.report.add("error", "not-a-list", doc, None, f"{where} is not a list",
                            "make it a list of {name, data} entries", where)
            return
        for i, item in enumerate(items):
            item_path = f"{where}[{i}]"
            if not isinstance(item, dict):
                self.report.add("error", "not-a-mapping", doc, f"#{i + 1}",
                                "is not a mapping", "each entry is {name: NAME, data: BASE64}",
                                item_path)
                continue
            name = item.get("name")
            label = name if isinstance(name, str) and name else f"#{i + 1}"
            entry_form = form
            if "data" not in item and secret is not None:
                entry_form = _REFERENCE
            raw = _Raw(doc, item_path, label, name, item.get("data"), entry_form)
            doc.entries += 1
            if entry_form is _REFERENCE and secret is not None:
                self.references.append((raw, secret[0], secret[1]))
            self.raws.append(raw)

    def _cluster(self, doc: dict[str, Any], name: str, namespace: str | None) -> None:
        variables = _dig(doc, "spec", "topology", "variables")
        if not isinstance(variables, list):
            return
        for i, var in enumerate(variables):
            if isinstance(var, dict) and var.get("name") == "trust":
                report = self._doc(f"Cluster/{name}", "Cluster", _REFERENCE)
                self._list(report, var, ("value", "additionalTrustedCAs"), _REFERENCE,
                           secret=(secret_name(name), namespace))
                for raw in self.raws:
                    if raw.document is report:
                        raw.path = f"spec.topology.variables[{i}].{raw.path}"

    def _secret(self, doc: dict[str, Any], name: str, namespace: str | None) -> None:
        report = self._doc(f"Secret/{name}", "Secret", _SECRET)
        if not name.endswith(SECRET_SUFFIX):
            self.report.add(
                "warning", "secret-name", report, None,
                f"Tanzu reads trusted CAs only from the Secret <cluster>{SECRET_SUFFIX}",
                f"name it after the cluster, e.g. CLUSTER{SECRET_SUFFIX}, in the "
                "cluster's vSphere namespace", "metadata.name")
        keys: set[str] = set()
        for field_name, form in (("data", _SECRET), ("stringData", _STRING_DATA)):
            mapping = doc.get(field_name)
            if mapping is None:
                continue
            if not isinstance(mapping, dict):
                self.report.add("error", "not-a-mapping", report, None,
                                f"{field_name} is not a map",
                                "data maps each entry name to its certificate", field_name)
                continue
            for key, line in getattr(mapping, "duplicates", []):
                self.report.add("error", "duplicate-name", report, str(key),
                                f"key written twice in {field_name} (line {line}); YAML keeps only "
                                "the last one", "remove or rename one of them",
                                f"{field_name}.{key}")
            for key, value in mapping.items():
                label = str(key)
                keys.add(label)
                self.raws.append(_Raw(report, f"{field_name}.{label}", label, label, value,
                                      form))
                report.entries += 1
        if not keys:
            self.report.add("note", "no-entries", report, None, "no data",
                            "nothing to check here")
        self.secrets.append((report, name, namespace, keys))
