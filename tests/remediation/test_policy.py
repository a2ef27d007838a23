"""The attempt budget: Monit's "N attempts within a window, then wait for a person"."""

from __future__ import annotations

from typing import Any

from tocsin.remediation.audit import AttemptState, RemediationAttempt, budget_times
from tocsin.remediation.policy import (
    AttemptBudget,
    DisabledRemediation,
    Refusal,
    RemediationMode,
    RemediationPolicy,
    decide,
)

HOUR = 3600.0
T0 = 1_700_000_000.0


def restart(**fields: Any) -> RemediationPolicy:
    return RemediationPolicy(action="platform.restart", **{"max_attempts": 3, "per": "1h",
                                                           **fields})


def test_three_attempts_in_an_hour_are_allowed_and_the_fourth_is_exhausted() -> None:
    policy, attempts = restart(), list[float]()
    for minute in (0, 10, 20):
        decision = decide(policy, attempts, now=T0 + minute * 60)
        assert decision.allowed and not decision.passive
        attempts.append(T0 + minute * 60)

    fourth = decide(policy, attempts, now=T0 + 30 * 60)

    assert not fourth.allowed
    assert fourth.refusal is Refusal.EXHAUSTED and fourth.exhausted
    assert fourth.message == "exhausted: 3 attempts in the last 1h"


def test_the_window_slides_before_the_budget_is_spent() -> None:
    policy = restart(max_attempts=2)
    attempts = [T0, T0 + 50 * 60]

    assert decide(policy, attempts, now=T0 + 55 * 60).exhausted
    # An hour after the first attempt, only the second one still counts.
    assert decide(policy, attempts, now=T0 + HOUR + 1).allowed
    assert AttemptBudget(policy, attempts).remaining(T0 + HOUR + 1) == 1


def test_exhaustion_disables_until_a_person_enables_it_even_after_the_window() -> None:
    policy, attempts = restart(), [T0, T0 + 60, T0 + 120]
    disabled = DisabledRemediation("backend", "restart", T0 + 180, "3 attempts in the last 1h")

    later = decide(policy, attempts, now=T0 + 5 * HOUR, disabled=disabled)
    assert later.refusal is Refusal.DISABLED
    assert "waiting for a person" in later.message
    assert not later.exhausted  # already disabled: nothing new to raise

    assert decide(policy, attempts, now=T0 + 5 * HOUR, disabled=None).allowed  # enabled again


def test_cooldown_spaces_attempts() -> None:
    policy = restart(cooldown="10m")
    decision = decide(policy, [T0], now=T0 + 4 * 60)

    assert decision.refusal is Refusal.COOLING_DOWN
    assert decision.retry_at == T0 + 600
    assert decision.message == "cooling down until 2023-11-14 22:23:20 UTC (in 6m)"
    assert decide(policy, [T0], now=T0 + 600).allowed


def test_one_remediation_in_flight_per_service() -> None:
    decision = decide(restart(), [], now=T0, in_flight=True)
    assert (decision.allowed, decision.refusal) == (False, Refusal.IN_FLIGHT)
    assert decision.message == "already remediating this service"


def test_a_silenced_alert_is_not_remediated_unless_the_policy_says_so() -> None:
    refused = decide(restart(), [], now=T0, silenced=True)
    assert (refused.refusal, refused.message) == (Refusal.SILENCED, "alert is silenced")

    assert decide(restart(during_silence=True), [], now=T0, silenced=True).allowed


def test_passive_mode_allows_recording_what_would_run() -> None:
    budget = AttemptBudget(restart(), [T0], mode=RemediationMode.PASSIVE)
    decision = budget.may_act(T0 + 60)
    assert decision.allowed and decision.passive
    assert decision.message == "passive mode: would run platform.restart"


def test_passive_mode_still_honours_refusals() -> None:
    budget = AttemptBudget(restart(), [], silenced=True, mode=RemediationMode.PASSIVE)
    assert budget.may_act(T0).refusal is Refusal.SILENCED


def test_refused_and_passive_attempts_spend_no_budget() -> None:
    def attempt(state: AttemptState, at: float) -> RemediationAttempt:
        return RemediationAttempt("backend", "backend:http:down", "restart", "platform.restart",
                                  started_at=at, state=state)

    attempts = [attempt(AttemptState.FAILED, T0), attempt(AttemptState.REFUSED, T0 + 1),
                attempt(AttemptState.PASSIVE, T0 + 2), attempt(AttemptState.INTERRUPTED, T0 + 3)]

    assert budget_times(attempts) == [T0, T0 + 3]


def test_disabled_comes_before_every_other_refusal() -> None:
    disabled = DisabledRemediation("backend", "rollback", T0, "1 attempt in the last 1h")
    decision = decide(restart(), [T0] * 3, now=T0 + 1, in_flight=True, silenced=True,
                      disabled=disabled)
    assert decision.refusal is Refusal.DISABLED
