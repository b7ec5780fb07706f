"""A changed document as the smallest edit of its text: what did not change stays as written.

Re-serializing a whole changed object would re-format every line of it (flow mappings
become blocks, quotes go, line endings become LF), and a diff of that against the file
would show each unchanged line as a -/+ pair. Instead the old and new objects are walked
beside the YAML nodes the text was read into, and only what differs is written:

- a changed string is replaced in place, in the style it was written in (plain, quoted)
  when that style can hold the new value, else as JSON, which is YAML too;
- keys the webhook adds to a block mapping, and items it appends to a block sequence, are
  inserted as block YAML below the last entry, at the entry's indentation; keys added to
  a flow mapping go before its closing brace;
- a collection changed in any other way is replaced by its JSON form.

New text uses the document's own line ending. The result is read back and compared with
the new object; if it differs (a shape this does not know, such as a merge key or a removed
key), the caller re-serializes the whole document instead, so the output is always right.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from webhook.core.config import YamlLoader

Edit = tuple[int, int, str]   # replace text[start:end] with the string


class _Unknown(Exception):
    """A change this module does not edit in place."""


def edited(text: str, node: yaml.Node | None, start: int, end: int, old: Any, new: Any,
           *, plain: Any) -> str | None:
    """text[start:end] (a document read into `node`, constructed as `old`) edited into
    `new`; None when it cannot be done in place. `plain` turns constructed YAML into the
    plain JSON types the output has (webhook.tools.preview.documents.plain)."""
    if node is None:
        return None
    newline = "\r\n" if "\r\n" in text[start:end] else "\n"
    edits: list[Edit] = []
    try:
        _walk(text, node, old, new, edits)
    except _Unknown:
        return None
    out = text[start:end]
    for edit_start, edit_end, replacement in sorted(edits, reverse=True):
        if not start <= edit_start <= edit_end <= end:
            return None
        replacement = replacement.replace("\n", newline)
        out = out[:edit_start - start] + replacement + out[edit_end - start:]
    try:
        again = yaml.load(out, Loader=YamlLoader)
    except yaml.YAMLError:
        return None
    return out if plain(again) == plain(new) else None


def _walk(text: str, node: yaml.Node, old: Any, new: Any, edits: list[Edit]) -> None:
    if _same(old, new):
        return
    if isinstance(node, yaml.MappingNode) and isinstance(old, dict) and isinstance(new, dict):
        _mapping(text, node, old, new, edits)
    elif isinstance(node, yaml.SequenceNode) and isinstance(old, list) \
            and isinstance(new, list) and (not node.flow_style or len(new) == len(old)):
        _sequence(text, node, old, new, edits)
    else:
        start, end = node.start_mark.index, _content_end(text, node)
        while end > start and text[end - 1] in "\r\n":    # a block scalar's own breaks
            end -= 1
        edits.append((start, end, _scalar(node, new)))


def _mapping(text: str, node: yaml.MappingNode, old: dict[Any, Any], new: dict[Any, Any],
             edits: list[Edit]) -> None:
    if any(key not in new for key in old) or not node.value:
        raise _Unknown("a key removed, or an empty block mapping")
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge") \
                or key_node.value not in old:
            raise _Unknown("a key that is not plain text")
        key = key_node.value
        _walk(text, value_node, old[key], new[key], edits)
    added = {key: value for key, value in new.items() if key not in old}
    if added and node.flow_style:
        close = node.end_mark.index - 1
        if text[close:close + 1] != "}":
            raise _Unknown("a flow mapping that does not end in }")
        edits.append((close, close, "".join(f", {_json(k)}: {_json(v)}"
                                            for k, v in added.items())))
    elif added:
        column = node.value[0][0].start_mark.column
        at = _line_after(text, node.value[-1][1])
        edits.append((at, at, _block(added, column)))


def _sequence(text: str, node: yaml.SequenceNode, old: list[Any], new: list[Any],
              edits: list[Edit]) -> None:
    if not node.value:
        raise _Unknown("an empty block sequence")
    if len(new) == len(old):
        for item_node, old_item, new_item in zip(node.value, old, new, strict=True):
            _walk(text, item_node, old_item, new_item, edits)
    elif len(new) > len(old) and all(_same(a, b) for a, b in zip(old, new, strict=False)):
        column = _dash_column(text, node.value[0])
        at = _line_after(text, node.value[-1])
        edits.append((at, at, _block(new[len(old):], column)))
    else:
        start = text.rfind("-", 0, node.value[0].start_mark.index)
        edits.append((start, _content_end(text, node), _json(new)))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _dash_column(text: str, first_item: yaml.Node) -> int:
    dash = text.rfind("-", 0, first_item.start_mark.index)
    return dash - (text.rfind("\n", 0, dash) + 1)


def _content_end(text: str, node: yaml.Node) -> int:
    """Where the node's own text ends: a block collection's end mark lies at the next
    token, past the line breaks, comments and indentation that follow it."""
    end = node.end_mark.index
    if isinstance(node, yaml.CollectionNode) and not node.flow_style:
        last = node.value[-1]
        end = _content_end(text, last[1] if isinstance(last, tuple) else last)
    return end


def _line_after(text: str, last: yaml.Node) -> int:
    """The start of the line after the one where `last` ends."""
    end = _content_end(text, last)
    if text[end - 1:end] == "\n":                   # a block scalar ends with its break
        return end
    newline = text.find("\n", end)
    if newline < 0:
        raise _Unknown("no line break after the last entry")
    return newline + 1


def _block(value: Any, column: int) -> str:
    dumped = yaml.dump(value, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                       sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "".join(" " * column + line for line in dumped.splitlines(keepends=True))


def _scalar(node: yaml.Node, value: Any) -> str:
    """A new string in the style of the one it replaces (plain, or single-quoted) when that
    style can hold it, anywhere (no flow indicator, nothing YAML would read as another
    type); else, and for anything but a string, JSON."""
    if isinstance(value, str) and isinstance(node, yaml.ScalarNode) \
            and not any(c in value for c in "\n\r\t"):
        if node.style == "'":              # single quotes hold anything but line breaks
            return "'" + value.replace("'", "''") + "'"
        if not node.style and value and value == value.strip() \
                and not any(c in value for c in ",[]{}#'\"") and ": " not in value \
                and _reads_as(value, value):   # plain: None, or "" from libyaml
            return value
    return _json(value)


def _reads_as(text: str, value: Any) -> bool:
    try:
        return bool(yaml.load(text, Loader=YamlLoader) == value)
    except yaml.YAMLError:
        return False


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
