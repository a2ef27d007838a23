"""YAML text → plain Python data, plus the line of every key and list item.

PyYAML's ``safe_load`` forgets where things were and silently keeps the last of
two equal keys; composing the node tree ourselves keeps both facts, so every
later error can name its line, and a duplicated key is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tocsin.config.issues import ConfigError, ConfigIssue, KeyPath, format_key_path

_MERGE_TAG = "tag:yaml.org,2002:merge"
# libyaml's parser, when PyYAML was built with it, is ~10x faster on big configs.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class YAMLDocument:
    """Parsed config data and the 1-based line of each key path in it."""

    data: Any
    lines: dict[KeyPath, int]


def parse_yaml(text: str, file: str) -> YAMLDocument:
    """Parse ``text``; raise :class:`ConfigError` on invalid YAML or a duplicated key."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable"
        where = f" (column {mark.column + 1})" if mark is not None else ""
        line = mark.line + 1 if mark is not None else None
        hint = _flow_reference_hint(text, mark) if mark is not None else ""
        issue = ConfigIssue(file, "", line, f"invalid YAML: {problem}{where}{hint}")
        raise ConfigError([issue]) from None
    except yaml.YAMLError as error:
        raise ConfigError([ConfigIssue(file, "", None, f"invalid YAML: {error}")]) from None
    lines: dict[KeyPath, int] = {(): 1}
    if root is None:
        return YAMLDocument({}, lines)
    builder = _Builder(file, lines)
    data = builder.build(root, ())
    if builder.issues:
        raise ConfigError(builder.issues)
    return YAMLDocument(data, lines)


def _flow_reference_hint(text: str, mark: yaml.Mark) -> str:
    # `{a: ${X}}` is the likeliest YAML error in a Tocsin config: inside [ ] or
    # { } a plain scalar may not contain braces.
    lines = text.splitlines()
    source = lines[mark.line] if mark.line < len(lines) else ""
    if source[max(mark.column - 1, 0):mark.column + 1] == "${":
        return '; inside [ ] or { }, quote a ${VAR} value: "${VAR}"'
    return ""


class _Builder:
    def __init__(self, file: str, lines: dict[KeyPath, int]) -> None:
        self.file = file
        self.lines = lines
        self.issues: list[ConfigIssue] = []
        self.constructor = SafeConstructor()

    def build(self, node: Node, path: KeyPath) -> Any:
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*path, index)))
            return items
        return self._scalar(node)

    def _scalar(self, node: Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as error:
            line = node.start_mark.line + 1
            self.issues.append(ConfigIssue(self.file, "", line, f"invalid YAML: {error.problem}"))
            return None

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_pairs(value_node))
                continue
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.issues.append(ConfigIssue(
                    self.file, format_key_path((*path, key)), line,
                    f"duplicate key {key!r} (first set on line {seen[key]})",
                ))
                continue
            seen[key] = line
        # Explicit keys win over merged ones, as in YAML's merge-key spec.
        pairs = [(k, v) for k, v in merged if self._key(k) not in seen]
        pairs += [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        for key_node, value_node in pairs:
            key = self._key(key_node)
            if key in result and key not in seen:
                continue  # an earlier merge source wins
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*path, key))
        return result

    def _merge_pairs(self, node: Node) -> list[tuple[Node, Node]]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        pairs: list[tuple[Node, Node]] = []
        for source in sources:
            if isinstance(source, MappingNode):
                pairs.extend(source.value)
            else:
                line = source.start_mark.line + 1
                self.issues.append(ConfigIssue(self.file, "", line, "'<<' must merge a mapping"))
        return pairs

    def _key(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            line = node.start_mark.line + 1
            self.issues.append(ConfigIssue(self.file, "", line, "a mapping key must be a scalar"))
            return f"<complex key on line {line}>"
        key = self._scalar(node)
        # `on:` or `1.5:` stay the text the user wrote; only str and int keys keep their type.
        return key if isinstance(key, str | int) and not isinstance(key, bool) else str(node.value)
