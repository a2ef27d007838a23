"""Severity policies: what each of P1–P4 gets (channels, repeats, escalation, digests).

The defaults follow SEMANTICS.md's severity table::

    P1  high priority, repeat every 15m, escalate after 5m
    P2  repeat every 15m, escalate after 30m
    P3  repeat every 2h
    P4  a daily digest at 09:00 ("0 9 * * *"), no repeat

In the config, ``policies:`` holds the dedup window, the grouping interval and
one mapping per severity; each severity's mapping is merged key by key over
its default, so ``P3: {channels: [email]}`` keeps the 2h repeat::

    policies:
      dedup_window: 15m
      P1: {channels: [email, slack], escalation: [pagerduty]}

A policy without ``channels`` notifies **every configured channel**.
``escalation`` names where an escalation goes; when it is empty, the
escalation notice goes to the policy's own channels.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tocsin.alerting.model import Severity
from tocsin.config.cron import CronExpression, TimeZoneName, next_fire, previous_fire
from tocsin.config.durations import Duration


class Priority(enum.StrEnum):
    """How loudly a channel delivers: high is an email's ``Importance: high``, a push sound."""

    NORMAL = "normal"
    HIGH = "high"


class Policy(BaseModel):
    """What one severity gets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: tuple[str, ...] | None = None  # None: every configured channel
    priority: Priority = Priority.NORMAL
    repeat: Duration | None = None  # None: never repeat
    escalate_after: Duration | None = None
    escalation: tuple[str, ...] = ()
    digest: CronExpression | None = None  # collect into a digest on this schedule
    timezone: TimeZoneName = "UTC"  # of the digest schedule
    ack_timeout: Duration = 1800.0
    notify_resolved: bool = True

    @field_validator("repeat", "escalate_after", "ack_timeout")
    @classmethod
    def _positive(cls, seconds: float | None) -> float | None:
        if seconds is not None and seconds <= 0:
            raise ValueError("must be longer than zero, e.g. 15m")
        return seconds

    @model_validator(mode="after")
    def _escalation_needs_a_time(self) -> Policy:
        if self.escalation and self.escalate_after is None:
            raise ValueError("`escalation` channels need `escalate_after`, e.g. 30m")
        return self

    def targets(self, configured: Iterable[str]) -> list[str]:
        """The channels a notification goes to: ``channels``, or every configured one."""
        if self.channels is None:
            return list(configured)
        return list(self.channels)

    def repeat_every(self, dedup_window: float) -> float | None:
        """Seconds between repeats, never under the dedup window; None: no repeats."""
        if self.repeat is None:
            return None
        return max(self.repeat, dedup_window)

    def previous_digest(self, now: float) -> float:
        """When the last digest was due, at or before ``now``; ValueError without a digest."""
        if self.digest is None:
            raise ValueError("this policy has no digest schedule")
        return previous_fire(self.digest, self.timezone, now)

    def next_digest(self, now: float) -> float:
        """When the next digest is due after ``now``; ValueError without a digest."""
        if self.digest is None:
            raise ValueError("this policy has no digest schedule")
        return next_fire(self.digest, self.timezone, now)


DEFAULT_POLICIES: Mapping[Severity, Mapping[str, Any]] = {
    Severity.P1: {"priority": "high", "repeat": "15m", "escalate_after": "5m"},
    Severity.P2: {"repeat": "15m", "escalate_after": "30m"},
    Severity.P3: {"repeat": "2h"},
    Severity.P4: {"digest": "0 9 * * *"},
}
"""Each severity's policy when the config says nothing (SEMANTICS.md)."""


def default_policy(severity: Severity) -> Policy:
    return Policy.model_validate(DEFAULT_POLICIES[severity])


class Policies(BaseModel):
    """``policies:``: one :class:`Policy` per severity, and the timing shared by all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dedup_window: Duration = 900.0  # one fingerprint notifies at most once per window
    group_interval: Duration = 300.0  # alerts joining an open incident go out together
    P1: Policy = Field(default_factory=lambda: default_policy(Severity.P1))
    P2: Policy = Field(default_factory=lambda: default_policy(Severity.P2))
    P3: Policy = Field(default_factory=lambda: default_policy(Severity.P3))
    P4: Policy = Field(default_factory=lambda: default_policy(Severity.P4))

    @model_validator(mode="before")
    @classmethod
    def _merge_over_defaults(cls, data: Any) -> Any:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            return data
        merged = dict(data)
        for severity, default in DEFAULT_POLICIES.items():
            given = data.get(severity.value)
            if given is None and severity.value in data:
                merged[severity.value] = dict(default)  # `P3:` with nothing under it
            elif isinstance(given, Mapping):
                merged[severity.value] = {**default, **given}
        return merged

    @field_validator("dedup_window", "group_interval")
    @classmethod
    def _not_negative(cls, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("must not be negative")
        return seconds

    def for_severity(self, severity: Severity) -> Policy:
        policy: Policy = getattr(self, severity.value)
        return policy

    def __getitem__(self, severity: Severity) -> Policy:
        return self.for_severity(severity)
