"""YAML as a person reads it: a key written twice refused, errors at LINE:COL."""

from __future__ import annotations

from typing import Any

import yaml

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLoader(_BaseLoader):
    """The safe loader (libyaml's when PyYAML has it) that refuses a key written twice in
    one mapping. YAML forbids it, and kubectl and the API server refuse such a manifest;
    PyYAML alone would keep the last value and say nothing (a second `image:` silently
    wins). Merge keys (`<<: *anchor`) overriding a merged value are not duplicates."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Node] = {}
            for key_node, _value in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                identity = (key_node.tag, key_node.value)
                if identity in seen:
                    first = seen[identity].start_mark
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r} (first at line "
                        f"{first.line + 1}): a key may appear once in a mapping; "
                        "kubectl refuses it too", key_node.start_mark)
                seen[identity] = key_node
        return super().construct_mapping(node, deep=deep)


def yaml_error_message(exc: yaml.YAMLError, name: str, source: str) -> str:
    """`FILE:LINE:COL: problem (context at LINE:COL)`, 1-based as editors count; the
    raw text of PyYAML's message is for programmers, with a copy of the line and a caret."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):
        line = source.count("\n", 0, exc.position) + 1
        column = exc.position - (source.rfind("\n", 0, exc.position) + 1) + 1
        character = exc.character if isinstance(exc.character, int) else 0
        return f"{name}:{line}:{column}: unacceptable character #x{character:04x}: {exc.reason}"
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return f"{name}: not valid YAML: {exc}"
    text = exc.problem or exc.context or "cannot be read"
    context = exc.context_mark
    if exc.problem and exc.context:
        text += f" ({exc.context}"
        if context and (context.line, context.column) != (mark.line, mark.column):
            text += f" at {context.line + 1}:{context.column + 1}"
        text += ")"
    if source[mark.index:mark.index + 1] == "\t":
        text += "; a tab: YAML indents with spaces only"
    return f"{name}:{mark.line + 1}:{mark.column + 1}: {text}"
