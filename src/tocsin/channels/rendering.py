"""What a notification says, in words: headlines, durations, values, times.

Shared by every channel that writes prose (email now, Slack and others
later), so a P1 reads the same wherever it lands. Produces plain strings and
:class:`AlertView` values; escaping is the template's job (HTML autoescape).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeGuard

from tocsin.alerting.model import AlertSnapshot, Notification, NotificationKind, Severity

_KIND_WORDS = {
    NotificationKind.FIRING: "FIRING",
    NotificationKind.UPDATE: "update",
    NotificationKind.REPEAT: "STILL FIRING",
    NotificationKind.ESCALATION: "ESCALATED",
    NotificationKind.ACKNOWLEDGED: "ACKNOWLEDGED",
    NotificationKind.RESOLVED: "RESOLVED",
    NotificationKind.FLAPPING: "FLAPPING",
    NotificationKind.DIGEST: "Digest",
    NotificationKind.TEST: "TEST",
    NotificationKind.REPORT: "Report",
    NotificationKind.REMEDIATION: "REMEDIATION",
    NotificationKind.REMEDIATION_EXHAUSTED: "REMEDIATION EXHAUSTED",
    NotificationKind.RECOVERED: "RECOVERED",
    NotificationKind.RECOVERY_FAILED: "RECOVERY FAILED",
}

# Kinds that report a problem: the ones a high-priority flag is meant for.
PROBLEM_KINDS = frozenset({
    NotificationKind.FIRING, NotificationKind.UPDATE, NotificationKind.REPEAT,
    NotificationKind.ESCALATION, NotificationKind.FLAPPING, NotificationKind.TEST,
    NotificationKind.RECOVERY_FAILED, NotificationKind.REMEDIATION_EXHAUSTED,
})

_UNITS = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_HEADLINE_LIMIT = 200


def format_elapsed(seconds: float) -> str:
    """A human duration, the two largest units, whole seconds: ``192`` → ``3m12s``."""
    remainder = max(0, round(seconds))
    if remainder == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, remainder = divmod(remainder, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2])


def format_time(timestamp: float) -> str:
    """UTC ISO 8601 to the second: ``2027-01-15T08:00:00Z``."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_value(value: float | None, unit: str = "") -> str:
    """A measured value with its unit: ``1234.5 ms`` → ``1234.5ms``, ``0.925, %`` → ``0.93%``."""
    if value is None:
        return ""
    number = f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return f"{number}{unit}" if unit in ("", "%", "ms", "s") else f"{number} {unit}"


def one_line(text: str, limit: int = _HEADLINE_LIMIT) -> str:
    """``text`` with control characters and line breaks collapsed: safe in a header."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_link(text: str | None) -> TypeGuard[str]:
    """True for an http(s) URL: the only kind rendered as a link (never ``javascript:``)."""
    return text is not None and re.match(r"https?://\S+$", text.strip()) is not None


def alert_title(alert: AlertSnapshot) -> str:
    """``backend:http is down``: the summary, or the fingerprint and rule without one."""
    return one_line(alert.summary or f"{alert.fingerprint} {alert.rule}")


def severity_counts(notification: Notification) -> dict[str, int]:
    """Alerts per severity (``{"P3": 10, "P4": 2}``), most urgent first.

    A digest's ``counts`` win where they name severities (it may summarise more
    alerts than it lists); otherwise the listed alerts are counted.
    """
    given = {key: count for key, count in notification.counts.items()
             if key in Severity.__members__}
    counts = given or dict(Counter(alert.severity.value for alert in notification.alerts))
    return {key: counts[key] for key in sorted(counts)}


def headline(notification: Notification) -> str:
    """The one-line gist (an email subject without its prefix).

    ``P1 FIRING backend:http is down``, ``RESOLVED backend:http is down (lasted 3m12s)``,
    ``P2 update: 3 alerts in incident inc-7``, ``Digest: 12 alerts (P3: 10, P4: 2)``.
    A notification without alerts uses its own ``subject``.
    """
    kind, alerts = notification.kind, notification.alerts
    severity = notification.severity.value
    word = _KIND_WORDS[kind]
    if kind is NotificationKind.REPORT:
        return one_line(notification.subject)
    if kind is NotificationKind.DIGEST:
        counts = severity_counts(notification)
        total = sum(counts.values())
        detail = ", ".join(f"{key}: {count}" for key, count in counts.items())
        return one_line(f"{word}: {total} alert{'s' if total != 1 else ''} ({detail})")
    if not alerts:
        return one_line(f"{severity} {word} {notification.subject}".rstrip())
    if len(alerts) == 1 and kind is not NotificationKind.UPDATE:
        alert = alerts[0]
        if kind is NotificationKind.RESOLVED:
            lasted = alert.duration_s
            suffix = f" (lasted {format_elapsed(lasted)})" if lasted is not None else ""
            return one_line(f"{word} {alert_title(alert)}{suffix}")
        return one_line(f"{severity} {word} {alert_title(alert)}")
    where = f"in incident {notification.incident_id}" if notification.incident_id else (
        f"for {alerts[0].service}" if alerts[0].service else "")
    prefix = "" if kind is NotificationKind.RESOLVED else f"{severity} "
    return one_line(f"{prefix}{word}: {len(alerts)} alerts {where}".rstrip())


def delivery_path(notification: Notification, channel: str) -> str:
    """``Sent via email``, or ``Sent via smtp (fallback after email failed)``.

    The outbox keys a fallback delivery ``<id>.<original channel>~<fallback>``
    (one ``~<channel>`` per hop), and engine ids hold no dot, so the channels
    that failed are read back from the key.
    """
    base, *hops = notification.key.split("~")
    if not hops:
        return f"Sent via {channel}"
    original = base.partition(".")[2]
    failed = [name for name in (original, *hops[:-1]) if name]
    if not failed:
        return f"Sent via {channel} (fallback after another channel failed)"
    return f"Sent via {channel} (fallback after {', then '.join(failed)} failed)"


@dataclass(frozen=True)
class AlertView:
    """One alert, as the templates show it: every field already in words."""

    title: str
    severity: str  # "P1 critical"
    state: str
    service: str
    check: str
    rule: str
    measured: str
    threshold: str
    message: str
    description: str
    since: str  # "2027-01-15T08:00:00Z"
    for_: str  # "5m": how long it has been open at the notification's time
    lasted: str  # "3m12s" once resolved, else ""
    runbook: str
    runbook_is_link: bool
    dashboard_url: str
    ack_url: str


def alert_view(alert: AlertSnapshot, now: float) -> AlertView:
    """:class:`AlertView` of ``alert`` as of ``now`` (the notification's creation time)."""
    lasted = alert.duration_s
    return AlertView(
        title=alert_title(alert),
        severity=f"{alert.severity.value} {alert.severity.label}",
        state=alert.state.value,
        service=alert.service or "",
        check=alert.check,
        rule=alert.rule,
        measured=format_value(alert.value, alert.unit),
        threshold=alert.threshold,
        message=alert.message,
        description=alert.description,
        since=format_time(alert.since) if alert.since is not None else "",
        for_=format_elapsed(now - alert.since) if alert.since is not None and lasted is None
        else "",
        lasted=format_elapsed(lasted) if lasted is not None else "",
        runbook=alert.runbook or "",
        runbook_is_link=is_link(alert.runbook),
        dashboard_url=alert.dashboard_url if is_link(alert.dashboard_url) else "",
        ack_url=alert.ack_url if is_link(alert.ack_url) else "",
    )
