from __future__ import annotations

import pytest

from tocsin.config import ConfigError
from tocsin.config.yamlsource import parse_yaml


def test_lines_are_recorded_for_keys_and_items() -> None:
    document = parse_yaml("a:\n  b: 1\n  c:\n    - x\n    - {d: 2}\n", "t.yaml")
    assert document.data == {"a": {"b": 1, "c": ["x", {"d": 2}]}}
    assert document.lines[("a",)] == 1
    assert document.lines[("a", "b")] == 2
    assert document.lines[("a", "c", 0)] == 4
    assert document.lines[("a", "c", 1, "d")] == 5


def test_scalars_keep_their_yaml_types() -> None:
    data = parse_yaml("i: 1\nf: 1.5\nb: true\nn: null\ns: '1'\n", "t.yaml").data
    assert data == {"i": 1, "f": 1.5, "b": True, "n": None, "s": "1"}


def test_anchors_and_merge_keys_work() -> None:
    text = "base: &b {interval: 30s, timeout: 5s}\ncheck:\n  <<: *b\n  timeout: 9s\n"
    assert parse_yaml(text, "t.yaml").data["check"] == {"interval": "30s", "timeout": "9s"}


def test_duplicate_keys_are_all_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: 1\na: 2\nb:\n  c: 1\n  c: 1\n", "t.yaml")
    assert [(issue.line, issue.path) for issue in caught.value.issues] == [(2, "a"), (5, "b.c")]


def test_second_document_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: 1\n---\nb: 2\n", "t.yaml")
    assert caught.value.issues[0].line == 2


def test_tab_indentation_reports_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a:\n\tb: 1\n", "t.yaml")
    [issue] = caught.value.issues
    assert issue.line == 2
    assert "column" in issue.message
