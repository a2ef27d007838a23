"""The alert lifecycle as a pure function: (alert, outcome, now, rule) → the next alert.

    inactive ─held─► pending ─held N times or for `for`─► firing ─ack─► acknowledged
        ▲               │                                   │  ▲            │
        └──not held─────┘                 recover× not held │  └ack timeout─┘
                                                            ▼
                                                         resolved ─held─► pending (a new incident)

``confirm: N`` means N further consecutive results must agree after the first
(so ``confirm: 1`` is one re-check); ``for: 5m`` means the condition held at
every result for five minutes. A result whose value the rule cannot evaluate
(no ``response_time`` on a refused connection) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from tocsin.alerting.flapping import record_outcome
from tocsin.alerting.model import Alert, AlertEvent, AlertState

HISTORY = 21  # outcomes kept for flap detection (Nagios)


@dataclass(frozen=True)
class Step:
    """The alert after one result, and the transition it made (None when it stayed)."""

    alert: Alert
    event: AlertEvent | None
    wants_recheck: bool  # pending on a `confirm` rule: run the check again soon


def _transition(alert: Alert, to: AlertState, now: float, note: str = "") -> AlertEvent:
    event = AlertEvent(fingerprint=alert.fingerprint, at=now, from_state=alert.state,
                       to_state=to, severity=alert.severity, note=note)
    alert.state = to
    alert.updated_at = now
    return event


def _fire(alert: Alert, now: float) -> AlertEvent:
    alert.fired_at = now
    alert.resolved_at = None
    alert.acked_at = None
    alert.acked_by = None
    alert.notified = 0
    alert.last_notified_at = None
    alert.escalated = False
    alert.escalate_from = None
    alert.incident_id = None
    return _transition(alert, AlertState.FIRING, now, alert.message)


def step(alert: Alert, held: bool | None, now: float, *, confirm: int, for_s: float | None,
         recover: int, value: float | None = None, message: str = "") -> Step:
    """Apply one evaluated result to a copy of ``alert``.

    ``held`` is None when the result could not be evaluated by this rule.
    """
    alert = alert.copy()
    if held is None:
        return Step(alert, None, False)
    alert.history, alert.flapping = record_outcome(alert.history, held, alert.flapping, HISTORY)
    alert.value = value
    if message:
        alert.message = message
    event: AlertEvent | None = None
    recheck = False
    state = alert.state
    if held:
        alert.successes = 0
        alert.failures += 1
        if state in (AlertState.INACTIVE, AlertState.RESOLVED):
            alert.active_at = now
            alert.failures = 1
            event = _transition(alert, AlertState.PENDING, now)
            state = AlertState.PENDING
        if state is AlertState.PENDING:
            confirmed = (
                now - (alert.active_at or now) >= for_s if for_s is not None
                else alert.failures > confirm
            )
            if confirmed:
                event = _fire(alert, now)
            else:
                recheck = for_s is None
    else:
        alert.failures = 0
        alert.successes += 1
        if state is AlertState.PENDING:
            alert.active_at = None
            event = _transition(alert, AlertState.INACTIVE, now, "condition cleared while pending")
        elif state.is_open and alert.successes >= recover:
            alert.resolved_at = now
            event = _transition(alert, AlertState.RESOLVED, now)
    return Step(alert, event, recheck)


def acknowledge(alert: Alert, by: str, now: float) -> tuple[Alert, AlertEvent | None]:
    """Firing → acknowledged; anything else is unchanged."""
    if alert.state is not AlertState.FIRING:
        return alert, None
    alert = alert.copy()
    alert.acked_at = now
    alert.acked_by = by
    return alert, _transition(alert, AlertState.ACKNOWLEDGED, now, f"acknowledged by {by}")


def unacknowledge(alert: Alert, now: float, note: str) -> tuple[Alert, AlertEvent | None]:
    """Acknowledged → firing (by a person, or when the ack timed out)."""
    if alert.state is not AlertState.ACKNOWLEDGED:
        return alert, None
    alert = alert.copy()
    alert.acked_at = None
    alert.acked_by = None
    alert.escalated = False
    alert.escalate_from = now  # unacknowledged again: the escalation clock restarts
    return alert, _transition(alert, AlertState.FIRING, now, note)
