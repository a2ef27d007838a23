"""``type: webhook``: POST each notification as an Alertmanager webhook (``version: "4"``).

The body is the format Alertmanager sends its ``webhook_configs``, so a receiver
written for Alertmanager (alertmanager-webhook-logger, a Matrix or Teams bridge,
your own) works unchanged::

    {"version": "4", "groupKey": "tocsin/inc-7", "truncatedAlerts": 0,
     "status": "firing", "receiver": "<channel name>",
     "groupLabels": {"service": "backend"}, "commonLabels": {...},
     "commonAnnotations": {...}, "externalURL": "http://tocsin.example:8080",
     "alerts": [{"status": "firing",
                 "labels": {"alertname", "service", "check", "severity", "fingerprint", …},
                 "annotations": {"summary", "description", "message", "runbook_url"
                                 or "runbook", "value", "threshold", "dashboard_url",
                                 "ack_url"},
                 "startsAt": "2027-01-15T07:55:00Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "…", "fingerprint": "backend:http"}],
     "tocsin": {"kind": "firing", "key": "<idempotency key>", "severity": "P1", …}}

``endsAt`` is ``0001-01-01T00:00:00Z`` (Go's zero time, as Alertmanager sends it)
while an alert is open. Tocsin's own fields sit under ``"tocsin"``, which
Alertmanager receivers ignore; an acknowledgement has no Alertmanager
equivalent, so it arrives as ``status: firing`` with ``tocsin.kind:
acknowledged``. Each annotation is capped at 64 KiB of UTF-8 (cut at a
character boundary, ending in ``…``), so one runaway probe message cannot
make a body the receiver refuses.

Every value is JSON data, never markup: an alert message may hold ``<script>``
and arrives as those characters. A receiver that puts a value into HTML must
escape it there.

Headers: ``Idempotency-Key`` is the notification's key (the same on every retry:
deduplicate on it); the configured ``headers`` (values are secrets: they never
appear in a message); and, with a ``secret``, a signature::

    X-Tocsin-Timestamp: 1800000000                 (send time, Unix seconds)
    X-Tocsin-Signature: sha256=<hex HMAC-SHA256(secret, the exact body bytes)>

A receiver verifies by computing the HMAC over the raw request body, before
parsing it, and comparing in constant time::

    expected = "sha256=" + hmac.new(secret, raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, request.headers["X-Tocsin-Signature"])

The signature covers the body only (as GitHub's ``X-Hub-Signature-256`` does),
so the timestamp header is informational; the signed body carries
``tocsin.key`` and ``tocsin.created_at``, so a receiver refuses replays by
remembering keys it has seen, or by refusing a ``created_at`` older than it
tolerates. A resend of the same notification is byte-identical and has the
same signature.

Answers: any 2xx delivers; the rest map as in :mod:`tocsin.channels.http`
(429/408/5xx retried with ``Retry-After``, other 4xx permanent). No message
names the URL, a header value or the secret: a webhook URL is its own credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, SecretStr, field_validator

from tocsin.alerting.model import AlertSnapshot, AlertState, Notification, NotificationKind
from tocsin.channels.base import ChannelConfig, DeliveryError
from tocsin.channels.endpoints import TRANSPORT_HEADERS, check_headers
from tocsin.channels.http import HTTPChannel
from tocsin.channels.registry import register
from tocsin.channels.rendering import format_time, format_value, headline, is_link

ANNOTATION_CAP = 64 * 1024
"""Bytes of UTF-8 one annotation may hold; longer ones are cut and end in ``…``."""

ZERO_TIME = "0001-01-01T00:00:00Z"
"""``endsAt`` of an open alert: Go's zero ``time.Time``, as Alertmanager writes it."""

# Headers the channel sets itself; a config may not override them.
_RESERVED_HEADERS = TRANSPORT_HEADERS | {
    "idempotency-key", "x-tocsin-signature", "x-tocsin-timestamp"}


def cap_utf8(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8 at a character boundary, ending in ``…``."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    ellipsis = "…".encode()
    return encoded[: limit - len(ellipsis)].decode("utf-8", errors="ignore") + "…"


class WebhookConfig(ChannelConfig):
    """``type: webhook``: where to POST, extra headers, and an optional signing secret."""

    type: Literal["webhook"]
    url: SecretStr  # often holds a token: take it from ${ENV}
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    secret: SecretStr | None = None  # signs the body: X-Tocsin-Signature
    verify_tls: bool = True
    # Alertmanager's externalURL; without it, the origin of the alerts' dashboard links.
    external_url: str | None = None

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, url: SecretStr) -> SecretStr:
        # Never repeat the URL in the message: it may be the credential.
        parts = urlsplit(url.get_secret_value().strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the webhook url must be an http:// or https:// URL with a host")
        return url

    @field_validator("headers")
    @classmethod
    def _headers_are_valid(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        check_headers(headers, _RESERVED_HEADERS)
        return headers

    @field_validator("secret")
    @classmethod
    def _secret_is_long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < 16:
            raise ValueError("the signing secret must be at least 16 characters")
        return secret

    @field_validator("external_url")
    @classmethod
    def _external_url_is_http(cls, url: str | None) -> str | None:
        if url is not None and not is_link(url):
            raise ValueError("external_url must be an http:// or https:// URL")
        return url.rstrip("/") if url is not None else None


def alert_labels(alert: AlertSnapshot) -> dict[str, str]:
    """The alert's labels plus Tocsin's identifying ones (which win over the alert's own)."""
    labels = {str(key): str(value) for key, value in alert.labels.items()}
    labels["alertname"] = labels.get("alertname") or alert.rule
    labels.update(check=alert.check, severity=alert.severity.value,
                  fingerprint=alert.fingerprint)
    if alert.service:
        labels["service"] = alert.service
    return dict(sorted(labels.items()))


def alert_annotations(alert: AlertSnapshot) -> dict[str, str]:
    """What the alert says, each capped at :data:`ANNOTATION_CAP` bytes; empty ones omitted."""
    annotations = {
        "summary": alert.summary,
        "description": alert.description,
        "message": alert.message,
        "value": format_value(alert.value, alert.unit),
        "threshold": alert.threshold,
        "dashboard_url": alert.dashboard_url or "",
        "ack_url": alert.ack_url or "",
    }
    if is_link(alert.runbook):
        annotations["runbook_url"] = alert.runbook.strip()
    elif alert.runbook:
        annotations["runbook"] = alert.runbook
    return {key: cap_utf8(value, ANNOTATION_CAP)
            for key, value in sorted(annotations.items()) if value}


def _is_resolved(alert: AlertSnapshot) -> bool:
    return alert.state is AlertState.RESOLVED or alert.ended_at is not None


def _common(maps: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every mapping shares."""
    shared: dict[str, str] | None = None
    for mapping in maps:
        shared = dict(mapping) if shared is None else {
            key: value for key, value in shared.items() if mapping.get(key) == value}
    return shared or {}


def external_url(notification: Notification, configured: str | None) -> str:
    """The configured base, else the scheme and host of the first alert's dashboard link."""
    if configured:
        return configured
    for alert in notification.alerts:
        if is_link(alert.dashboard_url):
            parts = urlsplit(alert.dashboard_url.strip())
            return f"{parts.scheme}://{parts.netloc}"
    return ""


def alertmanager_payload(notification: Notification, receiver: str,
                         base_url: str | None = None) -> dict[str, Any]:
    """The Alertmanager ``version: "4"`` body for ``notification``, with ``tocsin`` extras."""
    alerts: list[dict[str, Any]] = []
    labels = [alert_labels(alert) for alert in notification.alerts]
    annotations = [alert_annotations(alert) for alert in notification.alerts]
    for index, alert in enumerate(notification.alerts):
        resolved = _is_resolved(alert)
        starts = alert.since if alert.since is not None else notification.created_at
        alerts.append({
            "status": "resolved" if resolved else "firing",
            "labels": labels[index],
            "annotations": annotations[index],
            "startsAt": format_time(starts),
            "endsAt": format_time(alert.ended_at) if alert.ended_at is not None else ZERO_TIME,
            "generatorURL": alert.dashboard_url if is_link(alert.dashboard_url) else "",
            "fingerprint": alert.fingerprint,
        })
    # Alertmanager: a group is "resolved" only when every alert in it is.
    resolved = bool(alerts) and all(alert["status"] == "resolved" for alert in alerts)
    if not alerts:
        resolved = notification.kind is NotificationKind.RESOLVED
    services = {alert.service for alert in notification.alerts}
    service = services.pop() if len(services) == 1 else None
    group_labels = {"service": service} if service else {}
    # The incident, else the one service, else the one alert: stable from firing to resolved.
    if notification.incident_id:
        group = notification.incident_id
    elif service:
        group = f"service={service}"
    else:
        group = notification.alerts[0].fingerprint if notification.alerts else notification.key
    extras: dict[str, Any] = {
        "kind": notification.kind.value,
        "key": notification.key,
        "severity": notification.severity.value,
        "headline": headline(notification),
        "created_at": format_time(notification.created_at),
        "high_priority": notification.high_priority,
    }
    if notification.incident_id:
        extras["incident_id"] = notification.incident_id
    if notification.counts:
        extras["counts"] = dict(notification.counts)
    return {
        "version": "4",
        "groupKey": f"tocsin/{group}",
        "truncatedAlerts": 0,
        "status": "resolved" if resolved else "firing",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": _common(labels),
        "commonAnnotations": _common(annotations),
        "externalURL": external_url(notification, base_url),
        "alerts": alerts,
        "tocsin": extras,
    }


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is): the exact bytes sent and signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``: the ``X-Tocsin-Signature`` value."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _header_safe(value: str) -> str:
    """``value`` if it is printable ASCII, else percent-encoded: a header must stay one line."""
    if value.isascii() and value.isprintable():
        return value
    return quote(value, safe="")


@register
class WebhookChannel(HTTPChannel[WebhookConfig]):
    """POSTs each notification as an Alertmanager webhook body, optionally HMAC-signed."""

    type = "webhook"
    config_model = WebhookConfig

    async def send(self, notification: Notification) -> None:
        config = self.config
        body = encode_body(alertmanager_payload(notification, self.name, config.external_url))
        headers = {name: value.get_secret_value() for name, value in config.headers.items()}
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = _header_safe(notification.key)
        if config.secret is not None:
            headers["X-Tocsin-Timestamp"] = str(int(time.time()))
            headers["X-Tocsin-Signature"] = sign(config.secret.get_secret_value(), body)
        try:
            await self.post(config.url.get_secret_value(), data=body, headers=headers,
                            verify_tls=config.verify_tls)
        except DeliveryError as error:
            raise DeliveryError(self._redact(error.message), permanent=error.permanent,
                                retry_after=error.retry_after) from None

    def _redact(self, text: str) -> str:
        # A receiver may echo the request in its error body; http.py already omits the URL.
        config = self.config
        secrets = [config.url.get_secret_value(),
                   *(value.get_secret_value() for value in config.headers.values())]
        if config.secret is not None:
            secrets.append(config.secret.get_secret_value())
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text
