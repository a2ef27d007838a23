"""The condition language: each form parses once and evaluates against a result."""

from __future__ import annotations

import re

import pytest

from tocsin.alerting.conditions import Comparison, StatusCondition, parse_condition
from tocsin.probes.base import CheckResult, CheckStatus


def result(status: CheckStatus = CheckStatus.OK, **values: float) -> CheckResult:
    return CheckResult(check="backend:http", status=status, started_at=1000.0, values=values)


@pytest.mark.parametrize("status", [CheckStatus.FAILING, CheckStatus.ERROR])
def test_down_holds_when_the_result_is_not_ok(status: CheckStatus) -> None:
    condition = parse_condition("down")
    assert condition.evaluate(result(status)).held is True
    assert condition.evaluate(result()).held is False
    assert condition.metric == "down"


def test_failed_holds_only_when_the_check_saw_a_failure() -> None:
    condition = parse_condition("failed")
    assert isinstance(condition, StatusCondition)
    assert condition.evaluate(result(CheckStatus.FAILING)).held is True
    assert condition.evaluate(result()).held is False
    assert condition.metric == "failed"


def test_failed_has_no_verdict_on_an_error_result() -> None:
    # The platform's API being down says nothing about the deploy: neither fire nor resolve.
    errored = CheckResult(check="backend:deploy", status=CheckStatus.ERROR, started_at=1000.0,
                          message="Render answered HTTP 503")
    outcome = parse_condition("failed").evaluate(errored)
    assert outcome.held is None and not outcome.evaluable
    assert "HTTP 503" in (outcome.error or "")


def test_duration_thresholds_compare_in_milliseconds() -> None:
    condition = parse_condition("response_time > 1000ms")
    assert condition.evaluate(result(response_time=1234)).held is True
    assert condition.evaluate(result(response_time=1000)).held is False
    seconds = parse_condition("response_time >= 2s")
    assert seconds.evaluate(result(response_time=2000)).held is True
    assert seconds.evaluate(result(response_time=1999)).held is False
    compound = parse_condition("query_time > 1m30s")
    assert isinstance(compound, Comparison) and compound.threshold.value == 90_000


def test_percent_thresholds_compare_percent_numbers() -> None:
    condition = parse_condition("error_rate > 5%")
    assert condition.evaluate(result(error_rate=6.0)).held is True
    assert condition.evaluate(result(error_rate=0.06)).held is False  # a fraction is not 6 %
    outcome = condition.evaluate(result(error_rate=6.0))
    assert (outcome.value, outcome.threshold, outcome.unit) == (6.0, "5%", "%")


def test_size_thresholds_compare_bytes() -> None:
    condition = parse_condition("used < 10GB")
    assert condition.evaluate(result(used=9_999_999_999)).held is True
    assert condition.evaluate(result(used=10_000_000_000)).held is False
    assert parse_condition("used > 1KiB").evaluate(result(used=1025)).held is True


@pytest.mark.parametrize(("text", "value", "held"), [
    ("status_code == 200", 200, True), ("status_code != 200", 200, False),
    ("status_code >= 500", 503, True), ("status_code < 400", 404, False),
    ("status_code <= 399", 399, True), ("temperature > -5", -4, True),
])
def test_plain_number_comparisons(text: str, value: float, held: bool) -> None:
    name = text.split()[0]
    values: dict[str, float] = {name: value}
    assert parse_condition(text).evaluate(result(CheckStatus.OK, **values)).held is held


def test_short_form_compares_the_primary_value() -> None:
    condition = parse_condition("> 90%")
    assert condition.metric == "value"
    assert condition.evaluate(result(value=95, other=1)).held is True
    assert condition.evaluate(result(cpu=95)).held is True  # the only value
    assert condition.evaluate(result(cpu=50)).held is False


def test_a_missing_value_is_not_evaluable_and_does_not_fire() -> None:
    condition = parse_condition("response_time > 1000ms")
    outcome = condition.evaluate(result(CheckStatus.ERROR))
    assert outcome.held is None and not outcome.held and not outcome.evaluable
    assert outcome.error == "the result has no value 'response_time'"
    ambiguous = parse_condition("> 90%").evaluate(result(a=1, b=2))
    assert ambiguous.held is None and "no primary value" in (ambiguous.error or "")


def test_condition_text_is_normalised() -> None:
    assert parse_condition("  response_time>1000ms ").text == "response_time > 1000ms"
    assert parse_condition(">90%").text == "> 90%"


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty condition"),
    ("   ", "empty condition"),
    ("up", "unknown condition 'up'"),
    ("response_time => 1000ms", "unknown operator '=>'"),
    ("response_time = 1000ms", "unknown operator '='"),
    ("response_time ~ 5", "unknown operator '~'"),
    ("response_time > 10parsecs", "unknown unit 'parsecs'"),
    ("response_time > 10gb", "unknown unit 'gb'"),
    ("response_time >", "missing threshold"),
    ("response_time > fast", "invalid threshold 'fast'"),
    ("response_time 1000ms", "invalid condition"),
    ("1000 > 5", "invalid condition"),
])
def test_bad_expressions_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_condition(text)


def test_non_text_is_refused() -> None:
    with pytest.raises(ValueError, match="must be text"):
        parse_condition(5)
