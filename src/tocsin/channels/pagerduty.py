"""``type: pagerduty``: PagerDuty Events API v2, one event per alert.

``POST {base_url}/v2/enqueue`` with::

    {"routing_key": "<32 characters>", "event_action": "trigger",
     "dedup_key": "<alert fingerprint>",
     "payload": {"summary": "…(≤1024)", "source": "backend", "severity": "critical",
                 "timestamp": "2027-01-15T07:55:00Z", "component": "backend http",
                 "group": "backend", "class": "down", "custom_details": {…}},
     "links": [{"href": "<dashboard>", "text": "Tocsin dashboard"},
               {"href": "<runbook>", "text": "Runbook"}],
     "client": "Tocsin", "client_url": "<dashboard base>"}

``payload``, ``links``, ``client`` and ``client_url`` go with ``trigger`` only;
``acknowledge`` and ``resolve`` carry ``routing_key``, ``event_action`` and
``dedup_key``. Severity P1–P4 is critical / error / warning / info.

Which event each notification kind sends, per alert it carries:

- FIRING, UPDATE, REPEAT, ESCALATION, FLAPPING, TEST → ``trigger`` (PagerDuty
  folds a repeated trigger of an open dedup key into the same alert);
- ACKNOWLEDGED → ``acknowledge`` (the channel sets ``receives_acknowledgements``);
- RESOLVED → ``resolve``;
- DIGEST → nothing: PagerDuty is for pages, a digest is not one (a log line says so).

A TEST (``tocsin drill``) triggers a real PagerDuty alert with dedup key
``tocsin:drill``: resolve it in PagerDuty, or it stays open there.

Several alerts in one notification are sent one by one, in order. If one
fails, the send raises at once: permanent if PagerDuty refused the event
(400 ``invalid event``, 401/403/404), transient otherwise (429, 5xx, timeout,
no connection). The outbox then retries the whole notification, re-sending
events that already went through: that is safe, because PagerDuty
deduplicates on ``dedup_key`` (a second trigger of an open alert, or a second
resolve, changes nothing).

Limits of the API enforced here: ``summary`` ≤ 1024 characters and
``dedup_key`` ≤ 255 (a longer fingerprint becomes a prefix plus its SHA-256,
stable across sends); the whole event ≤ 512 KiB, so each text detail is
capped at 64 KiB and, if the event is still too large, ``custom_details``
shrinks to the identifying fields.

A bad or unknown routing key: PagerDuty answers 400 ``invalid event`` (this
code treats every 4xx but 408/429 as permanent, so a 404 for an unknown key,
as some integrations report, is permanent too): the notification goes to
the fallback and is not retried. No message repeats the routing key.

Values are JSON data, never markup: PagerDuty's web and mobile apps show
them as text; anything that renders ``custom_details`` as HTML must escape.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, SecretStr, field_validator

from tocsin.alerting.model import AlertSnapshot, Notification, NotificationKind, Severity
from tocsin.channels.base import ChannelConfig, DeliveryError
from tocsin.channels.http import HTTPChannel
from tocsin.channels.registry import register
from tocsin.channels.rendering import format_time, format_value, is_link, one_line
from tocsin.channels.webhook import alert_labels, cap_utf8, external_url

log = logging.getLogger(__name__)

SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
EVENT_LIMIT = 512 * 1024
DETAIL_CAP = 64 * 1024

SEVERITIES = {Severity.P1: "critical", Severity.P2: "error", Severity.P3: "warning",
              Severity.P4: "info"}

EventAction = Literal["trigger", "acknowledge", "resolve"]

_ACTIONS: dict[NotificationKind, EventAction] = {
    NotificationKind.FIRING: "trigger",
    NotificationKind.UPDATE: "trigger",
    NotificationKind.REPEAT: "trigger",
    NotificationKind.ESCALATION: "trigger",
    NotificationKind.FLAPPING: "trigger",
    NotificationKind.TEST: "trigger",
    NotificationKind.ACKNOWLEDGED: "acknowledge",
    NotificationKind.RESOLVED: "resolve",
}


def _routing_key_shape(key: SecretStr) -> SecretStr:
    # The message gives the length, never the key.
    value = key.get_secret_value()
    if len(value) != 32 or not value.isascii() or not value.isalnum():
        raise ValueError(
            "routing_key must be the 32-character integration key of an Events API v2 "
            f"integration (this one has {len(value)} characters)")
    return key


def _base_url(url: str) -> str:
    if not is_link(url):
        raise ValueError("base_url must be an http:// or https:// URL")
    return url.strip().rstrip("/")


class PagerDutyConfig(ChannelConfig):
    """``type: pagerduty``: an Events API v2 integration's routing key."""

    type: Literal["pagerduty"]
    routing_key: Annotated[SecretStr, AfterValidator(_routing_key_shape)]  # from ${ENV}
    base_url: Annotated[str, AfterValidator(_base_url)] = "https://events.pagerduty.com"
    verify_tls: bool = True
    client_url: str | None = None  # the "View in Tocsin" link; default: the dashboard's base

    @field_validator("client_url")
    @classmethod
    def _client_url_is_http(cls, url: str | None) -> str | None:
        if url is not None and not is_link(url):
            raise ValueError("client_url must be an http:// or https:// URL")
        return url


def dedup_key(fingerprint: str) -> str:
    """``fingerprint``, or, past 255 characters, a prefix and its SHA-256 (the same every time)."""
    if len(fingerprint) <= DEDUP_KEY_LIMIT:
        return fingerprint
    digest = hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()
    return f"{fingerprint[:DEDUP_KEY_LIMIT - len(digest) - 1]}~{digest}"


def _details(alert: AlertSnapshot, notification: Notification) -> dict[str, Any]:
    details: dict[str, Any] = {
        "fingerprint": alert.fingerprint,
        "state": alert.state.value,
        "severity": f"{alert.severity.value} {alert.severity.label}",
        "rule": alert.rule,
        "kind": notification.kind.value,
        "message": alert.message,
        "description": alert.description,
        "value": format_value(alert.value, alert.unit),
        "threshold": alert.threshold,
        "since": format_time(alert.since) if alert.since is not None else "",
        "runbook": alert.runbook or "",
        "incident_id": notification.incident_id or "",
        "labels": alert_labels(alert),
    }
    return {key: cap_utf8(value, DETAIL_CAP) if isinstance(value, str) else value
            for key, value in details.items() if value not in ("", None)}


def trigger_event(alert: AlertSnapshot, notification: Notification, routing_key: str,
                  client_url: str) -> dict[str, Any]:
    """The ``trigger`` event for ``alert``, within the API's size limits."""
    links = []
    if is_link(alert.dashboard_url):
        links.append({"href": alert.dashboard_url.strip(), "text": "Tocsin dashboard"})
    if is_link(alert.runbook):
        links.append({"href": alert.runbook.strip(), "text": "Runbook"})
    payload: dict[str, Any] = {
        "summary": one_line(alert.summary or f"{alert.fingerprint} {alert.rule}",
                            limit=SUMMARY_LIMIT),
        "source": alert.service or alert.check,
        "severity": SEVERITIES[alert.severity],
        "timestamp": format_time(alert.since if alert.since is not None
                                 else notification.created_at),
        "component": alert.check,
        "class": alert.labels.get("alertname") or alert.rule,
        "custom_details": _details(alert, notification),
    }
    if alert.service:
        payload["group"] = alert.service
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert.fingerprint),
        "payload": payload,
        "links": links,
        "client": "Tocsin",
    }
    if client_url:
        event["client_url"] = client_url
    if len(json.dumps(event, ensure_ascii=False).encode("utf-8")) > EVENT_LIMIT:
        # Many capped details together can still pass the limit: keep what identifies it.
        payload["custom_details"] = {
            "fingerprint": alert.fingerprint, "rule": alert.rule,
            "note": "details left out: they exceeded PagerDuty's 512 KiB event limit"}
    return event


def events(notification: Notification, routing_key: str,
           client_url: str = "") -> list[dict[str, Any]]:
    """The Events API v2 events for ``notification``: one per alert, none for a digest."""
    action = _ACTIONS.get(notification.kind)
    if action is None:
        return []
    if action == "trigger":
        return [trigger_event(alert, notification, routing_key, client_url)
                for alert in notification.alerts]
    return [{"routing_key": routing_key, "event_action": action,
             "dedup_key": dedup_key(alert.fingerprint)} for alert in notification.alerts]


@register
class PagerDutyChannel(HTTPChannel[PagerDutyConfig]):
    """Sends each alert of a notification to PagerDuty as an Events API v2 event."""

    type = "pagerduty"
    config_model = PagerDutyConfig
    receives_acknowledgements: ClassVar[bool] = True

    async def send(self, notification: Notification) -> None:
        config = self.config
        key = config.routing_key.get_secret_value()
        client_url = config.client_url or external_url(notification, None)
        to_send = events(notification, key, client_url)
        if not to_send:
            log.info("channel %s: a %s notification is not sent to PagerDuty (%s)", self.name,
                     notification.kind.value,
                     "digests are not pages" if notification.kind is NotificationKind.DIGEST
                     else "it carries no alert")
            return
        url = f"{config.base_url}/v2/enqueue"
        for number, event in enumerate(to_send, start=1):
            try:
                await self.post(url, json=event, verify_tls=config.verify_tls)
            except DeliveryError as error:
                where = (f" (event {number} of {len(to_send)}, dedup_key "
                         f"{event['dedup_key']!r})" if len(to_send) > 1 else "")
                raise DeliveryError(error.message.replace(key, "***") + where,
                                    permanent=error.permanent,
                                    retry_after=error.retry_after) from None
