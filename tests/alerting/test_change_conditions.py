"""Change conditions (``drop > 50% vs 1w``) and ``absent``: parsed once, evaluated on values."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from tocsin.alerting.conditions import (
    AWAITING_DATA,
    AbsentCondition,
    ChangeCondition,
    baseline_key,
    parse_condition,
)
from tocsin.alerting.rules import AlertRule
from tocsin.probes.base import CheckResult, CheckStatus

WEEK = 604800.0


def result(values: Mapping[str, float], status: CheckStatus = CheckStatus.OK,
           details: Mapping[str, Any] | None = None) -> CheckResult:
    return CheckResult(check="signups", status=status, started_at=time.time(),
                       values=dict(values), details=dict(details or {}))


def change(text: str) -> ChangeCondition:
    condition = parse_condition(text)
    assert isinstance(condition, ChangeCondition)
    return condition


def test_change_conditions_parse_kind_operator_percent_and_offset() -> None:
    drop = change("drop > 50% vs 1w")
    assert (drop.kind, drop.op, drop.percent, drop.offset) == ("drop", ">", 50.0, WEEK)
    assert drop.text == "drop > 50% vs 1w" and drop.metric == "drop_1w"
    assert drop.baseline == baseline_key(WEEK) == "value@-1w"
    assert change("rise >= 20% vs 1d").baseline == "value@-1d"
    assert change("change>10.5%vs 1h30m").offset == 5400.0
    assert change("drop > 50% vs 7d").baseline == "value@-1w"  # one key per offset


def test_drop_fires_when_the_value_fell_by_more_than_the_percentage() -> None:
    drop = change("drop > 50% vs 1w")
    fell = drop.evaluate(result({"value": 40.0, "value@-1w": 100.0}))
    assert fell.held is True and fell.value == pytest.approx(60.0) and fell.unit == "%"
    assert drop.describe(fell) == "drop 60% > 50% vs 1w"
    assert drop.evaluate(result({"value": 60.0, "value@-1w": 100.0})).held is False
    assert drop.evaluate(result({"value": 150.0, "value@-1w": 100.0})).held is False


def test_rise_and_change_measure_up_and_both_ways() -> None:
    rise, either = change("rise > 20% vs 1d"), change("change > 10% vs 1d")
    up = {"value": 125.0, "value@-1d": 100.0}
    down = {"value": 85.0, "value@-1d": 100.0}
    assert rise.evaluate(result(up)).held is True
    assert rise.evaluate(result(down)).held is False
    assert either.evaluate(result(up)).held is True
    outcome = either.evaluate(result(down))
    assert outcome.held is True and outcome.value == pytest.approx(15.0)
    assert either.evaluate(result({"value": 105.0, "value@-1d": 100.0})).held is False


def test_a_negative_baseline_changes_in_the_direction_of_the_value() -> None:
    # From -100 to -40 the value went up: a rise of 60 %, not a drop.
    values = {"value": -40.0, "value@-1w": -100.0}
    assert change("rise > 50% vs 1w").evaluate(result(values)).held is True
    assert change("drop > 50% vs 1w").evaluate(result(values)).held is False


@pytest.mark.parametrize("values", [{"value": 10.0}, {"value": 10.0, "value@-1w": 0.0}])
def test_without_a_baseline_a_change_condition_does_not_hold(
        values: Mapping[str, float]) -> None:
    outcome = change("drop > 50% vs 1w").evaluate(result(values))
    assert outcome.held is False and outcome.value is None


def test_without_a_value_a_change_condition_cannot_be_evaluated() -> None:
    outcome = change("drop > 50% vs 1w").evaluate(
        result({"value@-1w": 100.0}, status=CheckStatus.ERROR))
    assert outcome.held is None and outcome.error == "the result has no value 'value'"


@pytest.mark.parametrize(("text", "message"), [
    ("drop > 50 vs 1w", "a change is a percentage: write e.g. '50%', not '50'"),
    ("drop > 50% vs 1y", "invalid offset '1y' in 'drop > 50% vs 1y'"),
    ("drop > 50% vs", "invalid offset '' in 'drop > 50% vs'"),
    ("rise == 5% vs 1d", "unknown operator '==' in 'rise == 5% vs 1d'"),
    ("change > 5% vs 30s", "the offset in 'change > 5% vs 30s' must be at least 1m"),
])
def test_bad_change_conditions_are_refused_saying_which_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        parse_condition(text)


def test_absent_holds_without_a_value_and_waits_while_the_probe_cannot_tell() -> None:
    absent = parse_condition("absent")
    assert isinstance(absent, AbsentCondition) and absent.metric == "absent"
    assert absent.evaluate(result({"value": 0.0})).held is False
    assert absent.evaluate(result({}, status=CheckStatus.FAILING)).held is True
    assert absent.evaluate(result({}, status=CheckStatus.ERROR)).held is True
    waiting = absent.evaluate(result({}, details={AWAITING_DATA: True}))
    assert waiting.held is None and not waiting.evaluable


def test_the_comparison_form_works_on_the_value() -> None:
    rule = AlertRule.model_validate({"when": "value < 10", "severity": "P3"})
    assert rule.metric == "value"
    assert rule.when.evaluate(result({"value": 4.0})).held is True
    assert rule.when.evaluate(result({"value": 40.0})).held is False


def test_a_change_rule_is_named_for_its_kind_and_offset_and_summarised() -> None:
    rule = AlertRule.model_validate({"when": "drop > 50% vs 1w", "severity": "P2"})
    assert rule.fingerprint("shop:signups") == "shop:signups:drop_1w"
    outcome = rule.when.evaluate(result({"value": 10.0, "value@-1w": 100.0}))
    context = rule.template_context("shop:signups", "shop", outcome)
    assert rule.default_summary(context, outcome) == "shop:signups drop 90% > 50% vs 1w"
