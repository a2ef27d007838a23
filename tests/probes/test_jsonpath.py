"""The JSON path helper of http conditions."""

from __future__ import annotations

from typing import Any

import pytest

from tocsin.probes.jsonpath import MISSING, JSONPath, json_equal

DOCUMENT = {"status": "ok", "checks": {"db": "ok"}, "items": [{"name": "a"}, {"name": "b"}],
            "a.b": 1, "nothing": None}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$.status", "ok"),
        ("status", "ok"),
        ("checks.db", "ok"),
        ("$.items[0].name", "a"),
        ("$.items[-1].name", "b"),
        ("$['a.b']", 1),
        ('$["checks"].db', "ok"),
        ("$.nothing", None),
        ("$.missing", MISSING),
        ("$.items[2]", MISSING),
        ("$.status.deeper", MISSING),
        ("$.checks[0]", MISSING),
    ],
)
def test_find(path: str, value: Any) -> None:
    assert JSONPath.parse(path).find(DOCUMENT) == value


def test_parse_keeps_steps() -> None:
    assert JSONPath.parse("$.items[0]['x y']").steps == ("items", 0, "x y")


@pytest.mark.parametrize(
    ("actual", "expected", "equal"),
    [(1, 1.0, True), (True, 1, False), (False, 0, False), (True, True, True),
     ([1, {"a": True}], [1, {"a": True}], True), ([1], [True], False),
     ({"a": 1}, {"a": 1, "b": 2}, False), ("1", 1, False), (None, None, True)],
)
def test_json_equal(actual: Any, expected: Any, equal: bool) -> None:
    assert json_equal(actual, expected) is equal
