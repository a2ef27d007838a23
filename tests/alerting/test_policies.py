"""Severity policies: SEMANTICS.md's defaults, and a partial policy merged over them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from tocsin.alerting.model import Severity
from tocsin.alerting.policies import Policies, Policy, Priority


def policies(data: Any = None) -> Policies:
    return Policies.model_validate(data)


def test_defaults_follow_the_severity_table() -> None:
    defaults = policies()
    p1, p2, p3, p4 = (defaults.for_severity(severity) for severity in Severity)
    assert (p1.priority, p1.repeat, p1.escalate_after, p1.digest) == (
        Priority.HIGH, 900.0, 300.0, None)
    assert (p2.priority, p2.repeat, p2.escalate_after) == (Priority.NORMAL, 900.0, 1800.0)
    assert (p3.repeat, p3.escalate_after) == (7200.0, None)
    assert (p4.repeat, p4.escalate_after, p4.digest) == (None, None, "0 9 * * *")
    assert all(policy.channels is None and policy.ack_timeout == 1800.0
               and policy.notify_resolved for policy in (p1, p2, p3, p4))
    assert (defaults.dedup_window, defaults.group_interval) == (900.0, 300.0)
    assert defaults[Severity.P3] is p3


def test_a_partial_policy_merges_over_its_default() -> None:
    merged = policies({"dedup_window": "10m", "P3": {"channels": ["email"]},
                       "P1": {"repeat": "5m", "escalation": ["pager"]},
                       "P4": {"digest": None, "channels": ["email"]}})
    assert merged.dedup_window == 600.0
    assert (merged.P3.channels, merged.P3.repeat) == (("email",), 7200.0)
    assert (merged.P1.repeat, merged.P1.escalate_after, merged.P1.priority) == (
        300.0, 300.0, Priority.HIGH)
    assert merged.P1.escalation == ("pager",)
    assert merged.P4.digest is None  # written null: P4 goes out at once
    assert merged.P2 == policies().P2


def test_an_empty_section_or_severity_is_the_default() -> None:
    assert policies(None) == policies({}) == policies({"P2": None})


def test_no_channels_means_every_channel() -> None:
    configured = ("email", "slack", "pager")
    assert policies().P1.targets(configured) == ["email", "slack", "pager"]
    assert policies({"P3": {"channels": ["email"]}}).P3.targets(configured) == ["email"]


def test_repeats_never_come_faster_than_the_dedup_window() -> None:
    fast = policies({"P1": {"repeat": "1m"}}).P1
    assert fast.repeat_every(900.0) == 900.0
    assert policies().P3.repeat_every(900.0) == 7200.0
    assert policies().P4.repeat_every(900.0) is None


def test_next_digest_is_in_the_policy_time_zone() -> None:
    utc = policies().P4
    now = datetime(2026, 5, 4, 10, 0, tzinfo=UTC).timestamp()
    assert utc.next_digest(now) == datetime(2026, 5, 5, 9, 0, tzinfo=UTC).timestamp()
    berlin = policies({"P4": {"timezone": "Europe/Berlin"}}).P4
    expected = datetime(2026, 5, 5, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert berlin.next_digest(now) == expected
    with pytest.raises(ValueError, match="no digest"):
        policies().P1.next_digest(now)


def test_priority_compares_as_its_name() -> None:
    assert policies().P1.priority == "high"


@pytest.mark.parametrize(("data", "message"), [
    ({"P1": {"priority": "urgent"}}, "'normal' or 'high'"),
    ({"P4": {"digest": "every day"}}, "invalid cron expression 'every day'"),
    ({"P4": {"timezone": "Mars/Base"}}, "unknown time zone 'Mars/Base'"),
    ({"P3": {"escalation": ["pager"]}}, "`escalation` channels need `escalate_after`"),
    ({"P2": {"repeat": "0s"}}, "longer than zero"),
    ({"P5": {}}, "Extra inputs are not permitted"),
    ({"P1": {"chanels": []}}, "Extra inputs are not permitted"),
])
def test_bad_policies_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        policies(data)
    assert message in str(caught.value)


def test_a_policy_can_be_built_directly() -> None:
    assert Policy().channels is None
