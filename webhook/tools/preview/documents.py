"""Manifests in and out: multi-document YAML (or JSON) with where each document is written.

Reading keeps, for every document, its line and the span of its text, so messages can
say `FILE:LINE` and the output can be the file as written with only the changed objects
replaced (comments, order and quoting of everything else survive, and `--diff` shows
the webhook's changes, not a re-formatting). libyaml (`CSafeLoader`, `CSafeDumper`) is
used when PyYAML was built with it: it reads large inputs several times faster.

A YAML alias is a reference, not a copy: a few lines of nested aliases ("billion
laughs") stand for more nodes than memory holds once printed. Like the Kubernetes YAML
decoder, reading refuses a document whose aliases expand beyond `MAX_EXPANDED_NODES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from webhook.core.config import YamlLoader, yaml_error_message

# refuses a key written twice in one mapping, as kubectl does (webhook.core.config.YamlLoader)
Loader: type[Any] = YamlLoader
Dumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MAX_EXPANDED_NODES = 1_000_000  # far above any real manifest (a 25 KB pod is ~1,500 nodes)


class InputError(Exception):
    """The input cannot be read as YAML; the message is `FILE:LINE:COL: what`."""


@dataclass(frozen=True)
class Document:
    """One document of the input: its data and where its text is (character offsets)."""

    data: Any
    line: int        # 1-based line of the document's first node
    column: int      # 0-based column of it
    start: int
    end: int
    node: yaml.Node | None = field(default=None, compare=False, repr=False)

    def line_of(self, path: Sequence[str | int]) -> int:
        """The 1-based line of the value at `path` (mapping keys and list indexes): of its
        key, for a mapping's entry, so a message about an annotation points at the line
        that names it. Where the path leaves what was written, the deepest line found."""
        node, line = self.node, self.line
        for step in path:
            if isinstance(node, yaml.SequenceNode) and isinstance(step, int) \
                    and 0 <= step < len(node.value):
                node = node.value[step]
                line = node.start_mark.line + 1
            elif isinstance(node, yaml.MappingNode):
                # the last entry of a key wins, as the constructed mapping has it
                match = [(k, v) for k, v in node.value
                         if isinstance(k, yaml.ScalarNode) and k.value == step]
                if not match:
                    break
                key, node = match[-1]
                line = key.start_mark.line + 1
            else:
                break
        return line


def display_name(filename: str) -> str:
    return "<stdin>" if filename == "-" else filename


def load(text: str, filename: str) -> list[Document]:
    """Every document of `text`, empty ones included (a `---` with nothing after it)."""
    name = display_name(filename)
    loader = Loader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            start, end = node.start_mark.index, node.end_mark.index
            if "&" in text[start:end]:        # no anchor, no alias: nothing to expand
                _check_expansion(node, name)
            if node.start_mark.column == 0 and isinstance(node, yaml.CollectionNode):
                end = _without_trailing_comments(text, start, end)
            documents.append(Document(loader.construct_document(node),
                                      node.start_mark.line + 1, node.start_mark.column,
                                      start, end, node))
    except yaml.YAMLError as exc:
        raise InputError(yaml_error_message(exc, name, text)) from None
    except RecursionError:
        raise InputError(f"{name}: nested too deeply to read") from None
    finally:
        loader.dispose()
    return documents


def _without_trailing_comments(text: str, start: int, end: int) -> int:
    """A block collection's span runs to the next token, over the comments and blank lines
    before the next document; those stay where they are, outside the span. (At column 0
    a line starting with '#' cannot be part of the collection's content.)"""
    while end > start:
        line_start = text.rfind("\n", start, end - 1) + 1
        line = text[max(line_start, start):end]
        if line.strip() and not line.startswith("#"):
            break
        end = max(line_start, start)
    return end


def _check_expansion(root: yaml.Node, name: str) -> None:
    """Refuse a document whose aliases stand for more than MAX_EXPANDED_NODES nodes, or
    refer to a node they are inside of (a recursive structure no manifest can be).
    Sizes are counted once per distinct node, bottom up, so the check itself is linear."""
    where = f"{name}:{root.start_mark.line + 1}:{root.start_mark.column + 1}"
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()        # on the path from the root: an alias to one is a loop
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if not children_done:
            if id(node) in sizes:
                continue
            if id(node) in open_nodes:
                raise InputError(f"{where}: an alias refers to a node it is part of (a "
                                 "recursive structure); refusing to read it")
            if children:
                open_nodes.add(id(node))
                stack.append((node, True))
                stack.extend((child, False) for child in children if id(child) not in sizes)
                continue
        open_nodes.discard(id(node))
        size = 1 + sum(sizes.get(id(child), 1) for child in children)
        if size > MAX_EXPANDED_NODES:
            raise InputError(f"{where}: the document's aliases expand to more than "
                             f"{MAX_EXPANDED_NODES:,} nodes; refusing to read it")
        sizes[id(node)] = size


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def plain(data: Any) -> Any:
    """Plain JSON types, whatever YAML tags came in (timestamps become RFC 3339 text)."""
    return orjson.loads(orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS))


def dump_yaml(data: Any) -> str:
    return str(yaml.dump(plain(data), Dumper=Dumper, sort_keys=False,
                         default_flow_style=False, allow_unicode=True))


def dump_json(objects: list[Any]) -> str:
    """One object as itself; several as a `v1 List`, as `kubectl get -o json` prints them."""
    if not objects:
        return ""
    value = objects[0] if len(objects) == 1 else {
        "apiVersion": "v1", "kind": "List", "items": objects,
        "metadata": {"resourceVersion": ""}}
    return orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2
                        | orjson.OPT_NON_STR_KEYS).decode() + "\n"


def splice(text: str, replacements: list[tuple[Document, str, bool]]) -> str:
    """`text` with each document's span replaced by new YAML text; the rest as written.
    An exact replacement (an edit of the span, webhook.tools.preview.edit) goes in as it is; a
    whole new serialization is fitted to the span (its line ending, its last break)."""
    parts: list[str] = []
    position = 0
    for document, new, exact in sorted(replacements, key=lambda item: item[0].start):
        span = text[document.start:document.end]
        body = new if exact or span.endswith("\n") else new.rstrip("\n")
        if not exact and document.column:   # e.g. `--- {...}`: a block mapping starts a line
            body = "\n" + body
        if not exact and "\r\n" in span:
            body = body.replace("\n", "\r\n")
        parts += [text[position:document.start], body]
        position = document.end
    parts.append(text[position:])
    return "".join(parts)
