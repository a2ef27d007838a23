"""The condition language of alert rules, parsed once at config load.

Forms::

    down                      the result's status is not OK (FAILING or ERROR)
    failed                    the result's status is FAILING: the check saw the target fail
                              (a deploy that failed). An ERROR result (the platform's API
                              could not be asked) is not evaluable: it neither fires nor
                              resolves the alert, so an API outage is not a failed deploy.
    <value> <op> <threshold>  e.g. ``response_time > 1000ms``, ``error_rate > 5%``
    <op> <threshold>          e.g. ``> 90%``: compares the check's primary value
    <change> <op> <N>% vs <offset>
                              ``drop > 50% vs 1w``, ``rise > 20% vs 1d``, ``change > 10% vs 1h``:
                              the primary value against its own value ``offset`` earlier
                              (drop = (base - now) / base, rise = (now - base) / base, change =
                              the absolute of either). The probe reads the baseline and reports
                              it as ``values[baseline_key(offset)]``; without one (a new metric,
                              a baseline of 0) the condition does not hold: it never fires on
                              missing data.
    absent                    the result has no primary value (a pushed metric stopped coming,
                              a fetch failed); not evaluable while a probe is still
                              :data:`AWAITING_DATA` (the first minutes after a restart)

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
from typing import TYPE_CHECKING, Literal, cast

from tocsin.config.durations import format_duration, parse_duration

if TYPE_CHECKING:
    from tocsin.probes.base import CheckResult

PRIMARY_VALUE = "value"
"""The name a probe gives its one headline number (``cpu`` percent, a metric, …)."""

AWAITING_DATA = "awaiting_data"
"""A ``details`` key a probe sets when it cannot tell yet whether its value is absent."""

ChangeKind = Literal["drop", "rise", "change"]
_CHANGE = re.compile(
    r"(?P<kind>drop|rise|change)\s*(?P<op>[<>=!~]+)\s*(?P<amount>[^\s]+?)\s*\bvs\b\s*(?P<offset>.*)"
)
_CHANGE_OPERATORS = (">", ">=", "<", "<=")
_CHANGE_HELP = "e.g. 'drop > 50% vs 1w', 'rise > 20% vs 1d' or 'change > 10% vs 1h'"


def baseline_key(offset: float) -> str:
    """The ``values`` key of the primary value ``offset`` seconds earlier: ``value@-1w``."""
    return f"{PRIMARY_VALUE}@-{format_duration(offset)}"

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
_FORMS_HELP = ("write down, failed, absent, a comparison such as "
               "'response_time > 1000ms', 'error_rate > 5%' or '> 90%', "
               "or a change such as 'drop > 50% vs 1w'")


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


@dataclass(frozen=True, slots=True)
class ChangeCondition:
    """``drop > 50% vs 1w``: the primary value's change against its value ``offset`` ago."""

    kind: ChangeKind
    op: str
    percent: float
    offset: float  # seconds
    amount_text: str
    offset_text: str

    @property
    def text(self) -> str:
        return f"{self.kind} {self.op} {self.amount_text} vs {self.offset_text}"

    @property
    def metric(self) -> str:
        """``drop_1w``: the alert's name within its check."""
        return f"{self.kind}_{format_duration(self.offset)}"

    @property
    def baseline(self) -> str:
        """The ``values`` key the probe puts the baseline under."""
        return baseline_key(self.offset)

    def evaluate(self, result: CheckResult) -> Outcome:
        now = result.values.get(PRIMARY_VALUE)
        if now is None or math.isnan(now):
            return Outcome(held=None, threshold=self.amount_text, unit="%",
                           error=f"the result has no value {PRIMARY_VALUE!r}")
        base = result.values.get(self.baseline)
        if base is None or base == 0 or math.isnan(base):
            return Outcome(held=False, threshold=self.amount_text, unit="%")  # no baseline
        changed = self.change_percent(float(now), float(base))
        return Outcome(held=_OPERATORS[self.op](changed, self.percent), value=changed,
                       threshold=self.amount_text, unit="%")

    def change_percent(self, now: float, base: float) -> float:
        """The change this condition measures, in percent of ``abs(base)``."""
        rise = (now - base) / abs(base) * 100.0
        if self.kind == "drop":
            return -rise
        return rise if self.kind == "rise" else abs(rise)

    def describe(self, outcome: Outcome) -> str:
        """``drop 62% > 50% vs 1w``, or ``drop > 50% vs 1w`` without a baseline."""
        if outcome.value is None:
            return self.text
        return (f"{self.kind} {_format_number(outcome.value)}% {self.op} {self.amount_text} "
                f"vs {self.offset_text}")

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class AbsentCondition:
    """``absent``: the result has no primary value."""

    @property
    def text(self) -> str:
        return "absent"

    @property
    def metric(self) -> str:
        return "absent"

    def evaluate(self, result: CheckResult) -> Outcome:
        if PRIMARY_VALUE in result.values:
            return Outcome(held=False)
        if result.details.get(AWAITING_DATA):
            return Outcome(held=None, error=result.message or "waiting for a first value")
        return Outcome(held=True)

    def describe(self, outcome: Outcome) -> str:
        return "is absent" if outcome.held else "is present"

    def __str__(self) -> str:
        return self.text


Condition = StatusCondition | Comparison | ChangeCondition | AbsentCondition
"""A parsed condition: ``evaluate(result) -> Outcome``, ``text``, ``metric``."""


def parse_condition(text: object) -> Condition:
    """Parse a rule's ``when:``; raise ValueError saying what is wrong and what to write."""
    if isinstance(text, StatusCondition | Comparison | ChangeCondition | AbsentCondition):
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
    if source == "absent":
        return AbsentCondition()
    change = _CHANGE.fullmatch(source)
    if change is not None:
        return parse_change(change, source)
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


def parse_change(match: re.Match[str], source: str) -> ChangeCondition:
    """``drop > 50% vs 1w`` from its regex match; ValueError naming the wrong part."""
    op, amount, offset_text = match.group("op"), match.group("amount"), match.group("offset")
    if op not in _CHANGE_OPERATORS:
        raise ValueError(f"unknown operator {op!r} in {source!r}: a change condition uses "
                         f"one of {' '.join(_CHANGE_OPERATORS)}, {_CHANGE_HELP}")
    number = re.fullmatch(r"(\d+(?:\.\d+)?)%", amount)
    if number is None:
        raise ValueError(f"a change is a percentage: write e.g. '50%', not {amount!r}, "
                         f"in {source!r} ({_CHANGE_HELP})")
    try:
        offset = parse_duration(offset_text.strip())
    except ValueError:
        raise ValueError(f"invalid offset {offset_text.strip()!r} in {source!r}: compare with "
                         "a time earlier, e.g. vs 1h, vs 1d or vs 1w (units m, h, d, w)"
                         ) from None
    if offset < 60:
        raise ValueError(f"the offset in {source!r} must be at least 1m, e.g. vs 1h")
    kind = cast(ChangeKind, match.group("kind"))  # the regex admits only CHANGE_KINDS
    return ChangeCondition(kind, op, float(number.group(1)), offset, amount, offset_text.strip())


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
