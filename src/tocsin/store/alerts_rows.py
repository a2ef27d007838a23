"""Alerting values as table rows, and back.

Enums are stored as their values; an alert as its whole JSON record (plus the
columns queries need), a notification as its JSON, a silence's matchers as a
JSON list of ``[name, op, value]``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, Select, select

from tocsin.alerting.model import (
    Alert,
    AlertEvent,
    AlertState,
    Delivery,
    DeliveryStatus,
    Incident,
    Matcher,
    MatchOp,
    Notification,
    Severity,
    Silence,
)
from tocsin.store.schema import deliveries as delivery_table


def alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "check": alert.check,
        "service": alert.service,
        "severity": alert.severity.value,
        "state": alert.state.value,
        "fired_at": alert.fired_at,
        "resolved_at": alert.resolved_at,
        "updated_at": alert.updated_at,
        "incident_id": alert.incident_id,
        "data": alert.to_json(),
    }


def event_row(event: AlertEvent) -> dict[str, Any]:
    return {
        "fingerprint": event.fingerprint,
        "at": event.at,
        "from_state": event.from_state.value,
        "to_state": event.to_state.value,
        "severity": event.severity.value,
        "note": event.note,
    }


def to_event(row: Row[Any]) -> AlertEvent:
    return AlertEvent(
        fingerprint=row.fingerprint,
        at=row.at,
        from_state=AlertState(row.from_state),
        to_state=AlertState(row.to_state),
        severity=Severity(row.severity),
        note=row.note,
    )


def incident_row(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "service": incident.service,
        "opened_at": incident.opened_at,
        "closed_at": incident.closed_at,
        "paged_at": incident.paged_at,
        "severity": incident.severity.value,
    }


def to_incident(row: Row[Any]) -> Incident:
    return Incident(
        id=row.id,
        service=row.service,
        opened_at=row.opened_at,
        severity=Severity(row.severity),
        closed_at=row.closed_at,
        paged_at=row.paged_at,
    )


def delivery_row(delivery: Delivery) -> dict[str, Any]:
    notification = delivery.notification
    return {
        "key": notification.key,
        "channel": notification.channel,
        "kind": notification.kind.value,
        "severity": notification.severity.value,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_error": delivery.last_error,
        "created_at": notification.created_at,
        "sent_at": delivery.sent_at,
        "fallback_of": delivery.fallback_of,
        "payload": notification.to_json(),
    }


def select_deliveries() -> Select[Any]:
    """The columns :func:`to_delivery` reads."""
    c = delivery_table.c
    return select(
        c.id, c.status, c.attempts, c.next_attempt_at, c.last_error, c.sent_at,
        c.fallback_of, c.payload,
    )


def to_delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        notification=Notification.from_json(row.payload),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        sent_at=row.sent_at,
        fallback_of=row.fallback_of,
        id=row.id,
    )


def silence_row(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": json.dumps([[m.name, m.op.value, m.value] for m in silence.matchers]),
        "starts_at": silence.starts_at,
        "ends_at": silence.ends_at,
        "created_by": silence.created_by,
        "comment": silence.comment,
        "created_at": silence.created_at,
    }


def to_silence(row: Row[Any]) -> Silence:
    return Silence(
        id=row.id,
        matchers=tuple(
            Matcher(name, MatchOp(op), value) for name, op, value in json.loads(row.matchers)
        ),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        created_by=row.created_by,
        comment=row.comment,
        created_at=row.created_at,
    )
