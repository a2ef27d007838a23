"""Turning alerts into notifications: snapshots, subjects, one outbox entry per channel."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tocsin.alerting.model import (
    Alert,
    AlertSnapshot,
    AlertState,
    Delivery,
    Notification,
    NotificationKind,
    Severity,
)

# Notifications that tell a person about a problem: they count for dedup and repeat.
PROBLEM_NOTICES = frozenset(
    {NotificationKind.FIRING, NotificationKind.UPDATE, NotificationKind.REPEAT})


def snapshot(alert: Alert, base_url: str | None,
             ack_link: Callable[[str], str] | None) -> AlertSnapshot:
    """What a notification says about ``alert``; P1/P2 firing alerts carry an ack link."""
    ack_url = None
    if ack_link is not None and alert.state is AlertState.FIRING and alert.severity.rank <= 2:
        ack_url = ack_link(alert.fingerprint)
    return AlertSnapshot(
        fingerprint=alert.fingerprint, check=alert.check, service=alert.service,
        severity=alert.severity, state=alert.state, rule=alert.rule, summary=alert.summary,
        description=alert.description, value=alert.value, message=alert.message,
        threshold=alert.rule, since=alert.fired_at or alert.active_at,
        ended_at=alert.resolved_at, runbook=alert.runbook, labels=dict(alert.labels),
        ack_url=ack_url, dashboard_url=f"{base_url}/" if base_url else None,
    )


def subject(kind: NotificationKind, snaps: Sequence[AlertSnapshot], severity: Severity) -> str:
    """A one-line subject; channels may word their own from the alerts."""
    first = snaps[0].summary if snaps else ""
    more = f" (+{len(snaps) - 1} more)" if len(snaps) > 1 else ""
    match kind:
        case NotificationKind.FIRING:
            return f"{severity.value} FIRING {first}{more}"
        case NotificationKind.UPDATE:
            return f"{severity.value} update: {len(snaps)} more alert(s): {first}{more}"
        case NotificationKind.REPEAT:
            return f"{severity.value} STILL FIRING {first}{more}"
        case NotificationKind.ESCALATION:
            return f"{severity.value} ESCALATED (unacknowledged) {first}{more}"
        case NotificationKind.RESOLVED:
            return f"RESOLVED {first}{more}"
        case NotificationKind.FLAPPING:
            return f"{severity.value} FLAPPING {first}"
        case NotificationKind.DIGEST:
            return f"Digest: {len(snaps)} alert(s) ({severity.value})"
        case NotificationKind.REMEDIATION:
            return f"{severity.value} REMEDIATION {first}"
        case NotificationKind.REMEDIATION_EXHAUSTED:
            return f"{severity.value} REMEDIATION EXHAUSTED {first}"
        case NotificationKind.RECOVERED:
            return f"RECOVERED {first}"
        case NotificationKind.RECOVERY_FAILED:
            return f"{severity.value} RECOVERY FAILED {first}"
        case _:
            return f"{severity.value} {kind.value} {first}{more}"


def deliveries(notification_id: str, kind: NotificationKind, severity: Severity,
               snaps: tuple[AlertSnapshot, ...], targets: Sequence[str], now: float, *,
               incident_id: str | None, high_priority: bool,
               counts: dict[str, int]) -> list[Delivery]:
    """One outbox entry per target channel; the key is the notification id plus the channel."""
    text = subject(kind, snaps, severity)
    return [
        Delivery(
            notification=Notification(
                key=f"{notification_id}.{channel}", channel=channel, kind=kind,
                severity=severity, subject=text, alerts=snaps, created_at=now,
                incident_id=incident_id,
                high_priority=high_priority and kind is not NotificationKind.RESOLVED,
                counts=dict(counts),
            ),
            next_attempt_at=now,
        )
        for channel in targets
    ]
