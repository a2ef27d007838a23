"""The values alerting works on: severities, alert states, alerts, notifications.

Plain typed values, no I/O. The store persists them, the engine transforms
them, channels render :class:`Notification` and nothing else.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class Severity(enum.Enum):
    """P1 critical … P4 low. Lower rank is more urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        return int(self.value[1])

    @property
    def label(self) -> str:
        return {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low"}[self.value]

    def outranks(self, other: Severity) -> bool:
        return self.rank < other.rank


class AlertState(enum.Enum):
    """Where an alert is in its lifecycle (SEMANTICS.md)."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    @property
    def is_open(self) -> bool:
        """Firing or acknowledged: a problem a person may need to know about."""
        return self in (AlertState.FIRING, AlertState.ACKNOWLEDGED)


@dataclass
class Alert:
    """The state of one fingerprint, persisted in the store.

    ``fingerprint`` is ``<check>:<metric>`` plus the rule's identifying labels;
    ``flags`` hold what is not a state: silenced, inhibited, flapping.
    """

    fingerprint: str
    check: str
    service: str | None
    rule: str  # the rule's condition text, e.g. "down" or "response_time > 1000ms"
    severity: Severity
    state: AlertState = AlertState.INACTIVE
    active_at: float | None = None  # the condition first held (pending began)
    fired_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    resolved_at: float | None = None
    last_notified_at: float | None = None
    notified: int = 0  # notifications sent for the current firing
    escalated: bool = False
    escalate_from: float | None = None  # first notified, or re-fired after an ack timeout
    incident_id: str | None = None
    failures: int = 0  # consecutive results where the condition held
    successes: int = 0  # consecutive results where it did not
    value: float | None = None
    message: str = ""
    summary: str = ""
    description: str = ""
    runbook: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    history: str = ""  # recent condition outcomes, "1" held / "0" not, newest last (flapping)
    flapping: bool = False
    silenced: bool = False
    inhibited: bool = False
    updated_at: float = 0.0
    avoid_channels: list[str] = field(default_factory=list)  # e.g. a failing channel's own alert

    def to_json(self) -> str:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["state"] = self.state.value
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Alert:
        data = json.loads(text)
        data["severity"] = Severity(data["severity"])
        data["state"] = AlertState(data["state"])
        return cls(**data)

    def copy(self) -> Alert:
        return replace(self, labels=dict(self.labels), avoid_channels=list(self.avoid_channels))


class NotificationKind(enum.Enum):
    """Why a notification is sent."""

    FIRING = "firing"  # a new incident's first alert
    UPDATE = "update"  # more alerts joined an open incident
    REPEAT = "repeat"  # still firing and unacknowledged after the repeat interval
    ESCALATION = "escalation"  # unacknowledged after escalate_after
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FLAPPING = "flapping"
    DIGEST = "digest"
    TEST = "test"  # a drill
    REMEDIATION = "remediation"  # a remediation started, or would have (passive mode)
    REPORT = "report"  # a scheduled report (the monthly SLA report), as a document
    REMEDIATION_EXHAUSTED = "remediation_exhausted"  # budget spent: a person must step in
    RECOVERED = "recovered"  # a remediation's verification passed
    RECOVERY_FAILED = "recovery_failed"  # a remediation failed or did not bring it back


@dataclass(frozen=True)
class AlertSnapshot:
    """What a notification says about one alert."""

    fingerprint: str
    check: str
    service: str | None
    severity: Severity
    state: AlertState
    rule: str
    summary: str
    description: str = ""
    value: float | None = None
    unit: str = ""
    threshold: str = ""
    message: str = ""
    since: float | None = None
    ended_at: float | None = None
    runbook: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    ack_url: str | None = None
    dashboard_url: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.since is None or self.ended_at is None:
            return None
        return self.ended_at - self.since


@dataclass(frozen=True)
class Attachment:
    """A file a notification carries (a report's PDF), its bytes in base64."""

    filename: str
    content_type: str
    data: str


@dataclass(frozen=True)
class Notification:
    """One message to one channel. ``key`` is its idempotency key (the email Message-ID)."""

    key: str
    channel: str
    kind: NotificationKind
    severity: Severity
    subject: str
    alerts: tuple[AlertSnapshot, ...]
    created_at: float
    incident_id: str | None = None
    high_priority: bool = False
    counts: dict[str, int] = field(default_factory=dict)  # digests: alerts per severity/state
    body: str = ""  # a report's text, shown where there are no alerts to list
    attachments: tuple[Attachment, ...] = ()

    def to_json(self) -> str:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["severity"] = self.severity.value
        for alert in data["alerts"]:
            alert["severity"] = alert["severity"].value
            alert["state"] = alert["state"].value
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Notification:
        data: dict[str, Any] = json.loads(text)
        data["kind"] = NotificationKind(data["kind"])
        data["severity"] = Severity(data["severity"])
        alerts = []
        for alert in data["alerts"]:
            alert["severity"] = Severity(alert["severity"])
            alert["state"] = AlertState(alert["state"])
            alerts.append(AlertSnapshot(**alert))
        data["alerts"] = tuple(alerts)
        data["attachments"] = tuple(Attachment(**item) for item in data.get("attachments", ()))
        return cls(**data)


class DeliveryStatus(enum.Enum):
    """Where one outbox entry is."""

    PENDING = "pending"  # waiting for its first or next attempt
    SENT = "sent"
    FAILED = "failed"  # permanent failure, or retries exhausted


@dataclass
class Delivery:
    """An outbox entry: a notification to deliver, written before any attempt."""

    notification: Notification
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    sent_at: float | None = None
    fallback_of: str | None = None  # the key of the delivery this one stands in for
    id: int | None = None

    @property
    def key(self) -> str:
        return self.notification.key

    @property
    def channel(self) -> str:
        return self.notification.channel


@dataclass
class Incident:
    """Alerts of one service open at the same time: one page, then updates."""

    id: str
    service: str
    opened_at: float
    severity: Severity
    closed_at: float | None = None
    paged_at: float | None = None


class MatchOp(enum.Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True)
class Matcher:
    """``name op value`` over an alert's labels (``service``, ``check``, ``severity``, …)."""

    name: str
    op: MatchOp
    value: str


class SilenceState(enum.Enum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass
class Silence:
    """A time-bounded mute: alerts matching every matcher are recorded, not notified."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float

    def state(self, now: float) -> SilenceState:
        if now < self.starts_at:
            return SilenceState.PENDING
        if now < self.ends_at:
            return SilenceState.ACTIVE
        return SilenceState.EXPIRED


@dataclass(frozen=True)
class AlertEvent:
    """One lifecycle transition of an alert, kept for the alert-review report."""

    fingerprint: str
    at: float
    from_state: AlertState
    to_state: AlertState
    severity: Severity
    note: str = ""
