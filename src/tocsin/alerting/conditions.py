"""The condition language of alert rules, parsed once at config load.

Forms::

    down                      the result's status is not OK (FAILING or ERROR)
    failed                    the result's status is FAILING: the check saw the target fail
                              (a deploy that failed). An ERROR result (the platform's API
                              could not be asked) is not evaluable: it neither fires nor
                              resolves the alert, so an API outage is not a failed deploy.
    <value> <op> <threshold>  e.g. ``response_time > 1000ms``, ``error_rate > 5%``
    <op> <threshold>          e.g. ``> 90%``: compares the check's primary value

``op`` is one of ``> >= < <= == !=``. ``value`` names an entry of
:attr:`CheckResult.values`. The primary value of the short form is
``values["value"]`` when present, else the only value when there is exactly one.

Units. Each threshold is converted to the unit probes report values in:

- durations (``ms s m h d w``, also ``1h30m``) → **milliseconds**, because
  ``response_time``, ``query_time`` and every other timing value is in ms:
  ``> 2s`` compares the value with 2000;
- percentages → **percent, 0–100**: probes report ``error_rate``, ``cpu``,
  ``memory`` and ``disk`` as percent numbers, so ``> 5%`` compares with 5
  (not 0.05);
- sizes (``B KB MB GB TB``, 1000-based, ``KiB MiB GiB TiB``, 1024-based) → bytes;
- a plain number is compared as it is (``status_code >= 500``).

The threshold's unit is not checked against the value's (``status_code > 2s``
is accepted and compares with 2000): values carry no unit at run time.

A result that lacks the value a comparison needs (no ``response_time`` on a
refused connection) is *not evaluable*: :class:`Outcome` has ``held=None`` and
an ``error`` note, and the alert's state does not change: neither fired nor
counted as a recovery.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tocsin.config.durations import parse_duration

if TYPE_CHECKING:
    from tocsin.probes.base import CheckResult

PRIMARY_VALUE = "value"
"""The name a probe gives its one headline number (``cpu`` percent, a metric, …)."""

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}
_OPERATOR_LIST = " ".join(_OPERATORS)
_SIZE_UNITS = {
    "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
}
_DURATION_UNITS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0,
                   "d": 86_400_000.0, "w": 604_800_000.0}
_COMPARISON = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.]*)?\s*(?P<op>[<>=!~]+)\s*(?P<threshold>.*)"
)
_THRESHOLD = re.compile(r"(?P<number>[-+]?\d+(?:\.\d+)?)\s*(?P<unit>.*)")
_UNIT_HELP = ("use ms, s, m, h, d or w for durations, % for percentages, "
              "B, KB, MB, GB, TB, KiB, MiB, GiB or TiB for sizes, or a plain number")
_FORMS_HELP = ("write down, failed, or a comparison such as "
               "'response_time > 1000ms', 'error_rate > 5%' or '> 90%'")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a condition found in one result.

    ``held`` is True or False, or None when the result could not be evaluated
    (the value is missing: see ``error``); None must change nothing.
    ``value`` is the compared value in the threshold's base unit (ms, percent,
    bytes); ``threshold`` the threshold as written (``1000ms``), ``unit`` its
    base unit (``ms``, ``%``, ``B`` or empty).
    """

    held: bool | None
    value: float | None = None
    threshold: str = ""
    unit: str = ""
    error: str | None = None

    @property
    def evaluable(self) -> bool:
        return self.held is not None


@dataclass(frozen=True, slots=True)
class Threshold:
    """A number in a base unit, with the text it was written as."""

    value: float
    unit: Literal["ms", "%", "B", ""]
    text: str
    scale: float = 1.0  # base units per written unit: 1000 for "2s", for display
    written_unit: str = ""

    def display(self, value: float) -> str:
        """``value`` (in the base unit) in the unit the threshold was written in."""
        number = _format_number(value / self.scale)
        return f"{number} {self.written_unit}" if self.written_unit else number


@dataclass(frozen=True, slots=True)
class StatusCondition:
    """``down``: the result's status is not OK; ``failed``: it is FAILING (ERROR: no verdict)."""

    keyword: Literal["down", "failed"]

    @property
    def text(self) -> str:
        return self.keyword

    @property
    def metric(self) -> str:
        return self.keyword

    def evaluate(self, result: CheckResult) -> Outcome:
        from tocsin.probes.base import CheckStatus  # probes import alerting: not at load

        if self.keyword == "failed" and result.status is CheckStatus.ERROR:
            return Outcome(held=None, error="the check could not tell (error): "
                                            f"{result.message or 'no message'}")
        return Outcome(held=not result.status.is_ok)

    def describe(self, outcome: Outcome) -> str:
        return "is down" if self.keyword == "down" else "failed"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Comparison:
    """``<value> <op> <threshold>``; ``value_name`` None means the primary value."""

    value_name: str | None
    op: str
    threshold: Threshold

    @property
    def text(self) -> str:
        prefix = f"{self.value_name} " if self.value_name else ""
        return f"{prefix}{self.op} {self.threshold.text}"

    @property
    def metric(self) -> str:
        return self.value_name or PRIMARY_VALUE

    def evaluate(self, result: CheckResult) -> Outcome:
        value, error = _pick_value(self.value_name, result.values)
        if value is None:
            return Outcome(held=None, threshold=self.threshold.text, unit=self.threshold.unit,
                           error=error)
        held = _OPERATORS[self.op](value, self.threshold.value)
        return Outcome(held=held, value=value,
                       threshold=self.threshold.text, unit=self.threshold.unit)

    def describe(self, outcome: Outcome) -> str:
        """``response_time 1234 ms > 1000 ms``."""
        name = self.value_name or PRIMARY_VALUE
        if outcome.value is None:
            return f"{name} {self.op} {self.threshold.display(self.threshold.value)}"
        return (f"{name} {self.threshold.display(outcome.value)} {self.op} "
                f"{self.threshold.display(self.threshold.value)}")

    def __str__(self) -> str:
        return self.text


Condition = StatusCondition | Comparison
"""A parsed condition: ``evaluate(result) -> Outcome``, ``text``, ``metric``."""


def parse_condition(text: object) -> Condition:
    """Parse a rule's ``when:``; raise ValueError saying what is wrong and what to write."""
    if isinstance(text, StatusCondition | Comparison):
        return text
    if not isinstance(text, str):
        raise ValueError(f"a condition must be text, e.g. 'down' or 'response_time > 1000ms', "
                         f"not {text!r}")
    source = text.strip()
    if not source:
        raise ValueError(f"empty condition: {_FORMS_HELP}")
    if source == "down":
        return StatusCondition("down")
    if source == "failed":
        return StatusCondition("failed")
    match = _COMPARISON.fullmatch(source)
    if match is None:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", source):
            raise ValueError(f"unknown condition {source!r}: {_FORMS_HELP}")
        raise ValueError(f"invalid condition {source!r}: {_FORMS_HELP}")
    name, op, threshold_text = match.group("name"), match.group("op"), match.group("threshold")
    if op not in _OPERATORS:
        raise ValueError(f"unknown operator {op!r} in {source!r}: use one of {_OPERATOR_LIST}")
    if not threshold_text:
        raise ValueError(f"missing threshold in {source!r}, e.g. 'response_time > 1000ms'")
    threshold = parse_threshold(threshold_text, source)
    return Comparison(name, op, threshold)


def parse_threshold(text: str, condition: str | None = None) -> Threshold:
    """A threshold in its base unit: ``2s`` → 2000 ms, ``5%`` → 5, ``10GB`` → 10¹⁰ B."""
    where = f" in {condition!r}" if condition else ""
    match = _THRESHOLD.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid threshold {text!r}{where}: expected a number with an "
                         f"optional unit, e.g. 1000ms, 5%, 10GB or 500")
    number, unit = float(match.group("number")), match.group("unit")
    spelled = text.strip()
    if not unit:
        return Threshold(number, "", spelled)
    if unit == "%":
        return Threshold(number, "%", spelled, 1.0, "%")
    if unit in _SIZE_UNITS:
        scale = float(_SIZE_UNITS[unit])
        return Threshold(number * scale, "B", spelled, scale, unit)
    if unit in _DURATION_UNITS:
        scale = _DURATION_UNITS[unit]
        return Threshold(number * scale, "ms", spelled, scale, unit)
    try:  # compound durations: 1h30m
        seconds = parse_duration(spelled.replace(" ", ""))
    except ValueError:
        raise ValueError(f"unknown unit {unit!r}{where}: {_UNIT_HELP}") from None
    return Threshold(seconds * 1000.0, "ms", spelled, 1.0, "ms")


def _pick_value(name: str | None, values: Mapping[str, float]) -> tuple[float | None, str]:
    if name is not None:
        value = values.get(name)
        if value is None:
            return None, f"the result has no value {name!r}"
    elif PRIMARY_VALUE in values:
        value = values[PRIMARY_VALUE]
    elif len(values) == 1:
        value = next(iter(values.values()))
    else:
        have = ", ".join(sorted(values)) or "none"
        return None, f"no primary value to compare (values: {have}); name one, e.g. 'cpu > 90%'"
    if isinstance(value, float) and math.isnan(value):
        return None, f"the value {name or PRIMARY_VALUE!r} is not a number"
    return float(value), ""


def _format_number(value: float) -> str:
    if value == int(value) or abs(value) >= 100:
        return str(round(value))
    return f"{value:.3g}"
