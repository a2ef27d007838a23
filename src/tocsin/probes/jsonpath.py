"""A small JSON path: pick one value out of a decoded JSON document.

Only what a health check needs: object keys and list indexes, written
``$.status``, ``status.db``, ``$.items[0].name``, ``$['key.with.dots']`` or
``$.items[-1]``. No wildcards, filters or slices: a condition compares one value.
Paths are parsed once, at config load, into a :class:`JSONPath`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"\[(-?\d+)\]")
_QUOTED = re.compile(r"""\[(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]""")
_UNESCAPE = re.compile(r"\\(.)")


class _Missing:
    """The value of a path that leads nowhere (distinct from JSON ``null``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class JSONPath:
    """A parsed path: the steps (key or index) from the document root."""

    text: str
    steps: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str) -> JSONPath:
        """Parse ``text``; raise ValueError saying where it went wrong."""
        source = text.strip()
        position = 0
        if source.startswith("$"):
            position = 1
        steps: list[str | int] = []
        expect_name = position == 0  # a bare path starts with a key: ``status.db``
        while position < len(source):
            if expect_name:
                match = _NAME.match(source, position)
                if match is None:
                    break
                steps.append(match.group())
                position = match.end()
                expect_name = False
                continue
            char = source[position]
            if char == ".":
                position += 1
                expect_name = True
                continue
            if char == "[":
                index = _INDEX.match(source, position)
                if index is not None:
                    steps.append(int(index.group(1)))
                    position = index.end()
                    continue
                quoted = _QUOTED.match(source, position)
                if quoted is not None:
                    raw = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
                    steps.append(_UNESCAPE.sub(r"\1", raw))
                    position = quoted.end()
                    continue
            break
        if position != len(source) or expect_name or not steps:
            raise ValueError(
                f"invalid JSON path {text!r} at character {position + 1}: "
                "write e.g. $.status, status.db, $.items[0].name or $['a.b']"
            )
        return cls(text=source, steps=tuple(steps))

    def find(self, document: Any) -> Any:
        """The value at this path in ``document``, or :data:`MISSING`."""
        value = document
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return MISSING
                value = value[step]
            else:
                if not isinstance(value, dict) or step not in value:
                    return MISSING
                value = value[step]
        return value


def json_equal(actual: Any, expected: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, but ``1`` equals ``1.0``."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return actual == expected
    if type(actual) is not type(expected):
        return False
    if isinstance(actual, list):
        return len(actual) == len(expected) and all(
            json_equal(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(
            json_equal(value, expected[key]) for key, value in actual.items()
        )
    return bool(actual == expected)
