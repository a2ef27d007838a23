"""Strict parsers for durations (``500ms``, ``1h30m``), sizes (``1MiB``) and percentages.

Each parser accepts exactly one spelling per unit and refuses everything else
with a message that shows an accepted form: a monitoring config that silently
reads ``10 parsecs`` as ten seconds is worse than one that refuses to start.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_ORDER = ["w", "d", "h", "m", "s", "ms"]

_SIZE_UNITS = {
    "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)")
_PERCENT = re.compile(r"(-?\d+(?:\.\d+)?)\s?%")


def parse_duration(text: object) -> float:
    """Seconds in ``text``: one or more ``<number><unit>`` parts, largest unit first.

    Units: ms, s, m, h, d, w. ``1h30m`` is 5400.0; ``90`` (no unit), ``10 parsecs``,
    ``1m1h`` (out of order) and ``1s1s`` (repeated) are refused.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"expected a duration such as 500ms, 30s, 5m or 1h30m, got {text!r}")
    if isinstance(text, int | float):
        if text == 0:
            return 0.0
        raise ValueError(f"a duration needs a unit: write {text}s, not {text}")
    source = text.strip()
    position, total, last_rank = 0, 0.0, -1
    for match in _DURATION_PART.finditer(source):
        if match.start() != position:
            break
        rank = _DURATION_ORDER.index(match.group(2))
        if rank <= last_rank:
            raise ValueError(
                f"invalid duration {text!r}: units must go from largest to smallest, once each"
            )
        last_rank = rank
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(source):
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d, w), "
            "e.g. 500ms, 30s, 5m, 1h30m"
        )
    return total


def format_duration(seconds: float) -> str:
    """The shortest strict spelling of ``seconds`` (``5400`` → ``1h30m``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts, remainder = [], round(seconds * 1000)
    for unit in _DURATION_ORDER:
        size = round(_DURATION_UNITS[unit] * 1000)
        count, remainder = divmod(remainder, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_size(text: object) -> int:
    """Bytes in ``text``: ``512B``, ``10KB`` (1000), ``1MiB`` (1024²). A bare integer is bytes."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    if isinstance(text, str):
        match = _SIZE.fullmatch(text.strip())
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    raise ValueError(f"invalid size {text!r}: use e.g. 512B, 64KB, 1MiB, 2GB")


def parse_percent(text: object) -> float:
    """A fraction from ``text``: ``"5%"`` is 0.05. Numbers without ``%`` are refused."""
    if isinstance(text, str):
        match = _PERCENT.fullmatch(text.strip())
        if match:
            return float(match.group(1)) / 100.0
    raise ValueError(f"invalid percentage {text!r}: write it with a % sign, e.g. 5% or 99.9%")


def _validator(parse: Any) -> BeforeValidator:
    return BeforeValidator(parse)


Duration = Annotated[float, _validator(parse_duration)]
"""A duration in seconds, parsed strictly from config text."""

Size = Annotated[int, _validator(parse_size)]
"""A size in bytes, parsed strictly from config text."""

Percent = Annotated[float, _validator(parse_percent)]
"""A fraction (0.05 for ``5%``), parsed strictly from config text."""
