"""Headlines, durations and values as every channel words them."""

from __future__ import annotations

import pytest

from tests.channels.conftest import T0, notification, snapshot
from tocsin.alerting.model import AlertState, NotificationKind, Severity
from tocsin.channels.rendering import (
    alert_view,
    format_elapsed,
    format_time,
    format_value,
    headline,
    one_line,
)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.4, "0s"), (59.6, "1m"), (192, "3m12s"), (3600, "1h"),
    (5400, "1h30m"), (90061, "1d1h"), (-5, "0s"),
])
def test_format_elapsed_keeps_two_units(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


def test_format_time_is_utc_iso() -> None:
    assert format_time(T0) == "2027-01-15T08:00:00Z"


@pytest.mark.parametrize(("value", "unit", "text"), [
    (None, "ms", ""), (1234.5, "ms", "1234.5ms"), (1200.0, "ms", "1200ms"),
    (92.456, "%", "92.46%"), (3, "", "3"), (7.0, "requests", "7 requests"),
])
def test_format_value(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_headline_cannot_carry_a_header_break() -> None:
    alert = snapshot(summary="down\r\nBcc: evil@example.com\x00")

    assert headline(notification(alert)) == "P1 FIRING down Bcc: evil@example.com"
    assert one_line("x" * 300).endswith("…")
    assert len(one_line("x" * 300)) == 200


def test_headlines_by_kind() -> None:
    firing = snapshot(summary="", fingerprint="backend:http", rule="down")
    resolved = snapshot(state=AlertState.RESOLVED, ended_at=T0)

    assert headline(notification(firing)) == "P1 FIRING backend:http down"
    assert headline(notification(firing, kind=NotificationKind.REPEAT)) == (
        "P1 STILL FIRING backend:http down")
    assert headline(notification(resolved, kind=NotificationKind.RESOLVED)) == (
        "RESOLVED backend:http is down (lasted 5m)")
    assert headline(notification(firing, firing, kind=NotificationKind.ESCALATION)) == (
        "P1 ESCALATED: 2 alerts for backend")
    assert headline(notification(kind=NotificationKind.TEST, alerts=(),
                                 subject="drill")) == "P1 TEST drill"


def test_digest_counts_come_from_the_notification_when_given() -> None:
    alerts = [snapshot(severity=Severity.P4)]

    digest = notification(*alerts, kind=NotificationKind.DIGEST,
                          counts={"P3": 10, "P4": 2, "firing": 12})

    assert headline(digest) == "Digest: 12 alerts (P3: 10, P4: 2)"


def test_view_of_an_open_alert_says_for_how_long() -> None:
    view = alert_view(snapshot(since=T0 - 3700, dashboard_url="javascript:alert(1)"), now=T0)

    assert view.severity == "P1 critical"
    assert view.since == "2027-01-15T06:58:20Z"
    assert view.for_ == "1h1m"
    assert view.lasted == ""
    assert view.dashboard_url == ""  # only http(s) links are rendered as links
    assert view.runbook_is_link
