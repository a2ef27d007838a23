"""``type: slack``: a message to a Slack incoming webhook, in Block Kit.

Layout: the headline as a top-level ``header`` block (so ``text``, required
for notifications and screen readers, is not shown twice), then one
attachment whose ``color`` is the severity's (resolved: green) holding the
details. One alert: a section of fields (Severity, Service, Check, Rule,
Value, Threshold, Since or Lasted), its message and description, a text
runbook, buttons (Dashboard, Runbook when a link, Acknowledge when the alert
has an ack link) and a footer. Several alerts (updates, digests): one section
each, up to :data:`LISTED_ALERTS`, then "…and N more" and a Dashboard button.

Everything an alert says is escaped as Slack documents (``&`` ``<`` ``>`` →
``&amp;`` ``&lt;`` ``&gt;``), so an alert message cannot mention
``<!channel>``, a user or a link. Every text is cut to Slack's limit (counted
in UTF-16 code units, as the stricter reading) and ends in "…", the longer
ones with a link to the dashboard: a long alert is shortened, never refused.

The webhook URL is a secret (``${SLACK_WEBHOOK_URL}``): https, or http to a
loopback host for local stand-ins; it never appears in an error. An empty one
means "not configured": every send fails permanently, so the ``fallback`` runs.
Slack answers ``200 ok``; its 400 (``invalid_payload``, ``invalid_blocks``),
403, 404 and 410 errors are permanent, 429 and 5xx transient
(:mod:`tocsin.channels.http`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr, field_validator

from tocsin.alerting.model import Notification, NotificationKind, Severity
from tocsin.channels.base import ChannelConfig, DeliveryError
from tocsin.channels.endpoints import check_endpoint_url
from tocsin.channels.http import HTTPChannel
from tocsin.channels.registry import register
from tocsin.channels.rendering import (
    AlertView,
    alert_view,
    delivery_path,
    format_time,
    headline,
    severity_counts,
)

COLORS = {Severity.P1: "#d00000", Severity.P2: "#ff8c00", Severity.P3: "#f2c744",
          Severity.P4: "#439fe0"}
RESOLVED_COLOR = "#2eb67d"

# Slack's Block Kit limits, and TEXT_LIMIT: ours for the notification text
# (Slack allows 40,000; a push notification shows a line).
TEXT_LIMIT = 3000
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
FIELDS_LIMIT = 10
BLOCK_LIMIT = 50
BUTTON_TEXT_LIMIT = 75
BUTTON_URL_LIMIT = 3000
LISTED_ALERTS = 20  # alerts listed one section each; the rest are counted


class SlackConfig(ChannelConfig):
    """``type: slack``: the incoming webhook's URL, a secret."""

    type: Literal["slack"]
    webhook_url: SecretStr  # from ${SLACK_WEBHOOK_URL}; empty: not configured

    @field_validator("webhook_url")
    @classmethod
    def _https_or_loopback(cls, url: SecretStr) -> SecretStr:
        if url.get_secret_value():
            check_endpoint_url(url.get_secret_value(), "webhook_url")
        return url


def escape(text: str) -> str:
    """Slack's escaping of the three characters its markup gives meaning to."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def units(text: str) -> int:
    """Length in UTF-16 code units: an emoji outside the BMP counts two."""
    return len(text) + sum(1 for character in text if ord(character) > 0xFFFF)


def _head(text: str, limit: int) -> str:
    """The longest start of ``text`` of at most ``limit`` units."""
    count = 0
    for index, character in enumerate(text):
        count += 2 if ord(character) > 0xFFFF else 1
        if count > limit:
            return text[:index]
    return text


def fit(raw: str, limit: int, more: str = "") -> str:
    """``raw`` escaped and cut to ``limit`` units, ending in "…" and ``more`` when cut.

    ``more`` is already Slack markup (a link to the rest); a cut never splits an
    ``&amp;``-style entity.
    """
    text = escape(raw)
    if units(text) <= limit:
        return text
    tail = "…" + (f" {more}" if more else "")
    if units(tail) >= limit:
        tail = "…"
    cut = _head(text, limit - units(tail))
    entity = cut.rfind("&", max(0, len(cut) - 5))
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut + tail


def link(url: str, label: str) -> str:
    """``<url|label>``, with the URL unable to close the link early."""
    return f"<{escape(url).replace('|', '%7C')}|{escape(label)}>"


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _button(label: str, url: str, style: str | None = None) -> dict[str, Any] | None:
    if not url or len(url) > BUTTON_URL_LIMIT:
        return None  # a cut URL leads nowhere
    button: dict[str, Any] = {"type": "button", "text": _plain(fit(label, BUTTON_TEXT_LIMIT)),
                              "url": url}
    if style:
        button["style"] = style
    return button


def _actions(*buttons: dict[str, Any] | None) -> list[dict[str, Any]]:
    elements = [button for button in buttons if button is not None]
    return [{"type": "actions", "elements": elements}] if elements else []


def _more_link(view: AlertView) -> str:
    return link(view.dashboard_url, "more on the dashboard") if view.dashboard_url else ""


def _fields(view: AlertView) -> list[dict[str, str]]:
    measured = view.measured or ""
    since = f"{view.since} (for {view.for_})" if view.since and view.for_ else view.since
    pairs = [("Severity", f"{view.severity}" + (f" ({view.state})" if view.state != "firing"
                                                else "")),
             ("Service", view.service), ("Check", view.check), ("Rule", view.rule),
             ("Value", measured), ("Threshold", view.threshold), ("Since", since),
             ("Lasted", view.lasted)]
    return [_mrkdwn(f"*{name}*\n{fit(value, FIELD_LIMIT - len(name) - 3)}")
            for name, value in pairs if value][:FIELDS_LIMIT]


def _one_alert(view: AlertView) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "section", "fields": _fields(view)}]
    if view.lasted:
        blocks.append({"type": "section", "text": _mrkdwn(f"*Resolved after {view.lasted}*")})
    said = "\n\n".join(part for part in (view.message, view.description) if part)
    if said:
        blocks.append({"type": "section",
                       "text": _mrkdwn(fit(said, SECTION_LIMIT, _more_link(view)))})
    if view.runbook and not view.runbook_is_link:
        blocks.append({"type": "section", "text": _mrkdwn(
            "*Runbook:* " + fit(view.runbook, SECTION_LIMIT - 12, _more_link(view)))})
    blocks += _actions(_button("Dashboard", view.dashboard_url),
                       _button("Runbook", view.runbook if view.runbook_is_link else ""),
                       _button("Acknowledge", view.ack_url, "primary"))
    return blocks


def _summary_line(view: AlertView) -> str:
    parts = [view.service, view.check]
    if view.measured:
        parts.append(view.measured + (f" (threshold {view.threshold})" if view.threshold
                                      else ""))
    if view.lasted:
        parts.append(f"resolved after {view.lasted}")
    elif view.since:
        parts.append(f"since {view.since}")
    return " · ".join(part for part in parts if part)


def _listed_alert(view: AlertView) -> dict[str, Any]:
    state = f" ({view.state})" if view.state != "firing" else ""
    lines = [f"*{escape(view.severity)}{escape(state)}* {escape(view.title)}",
             escape(_summary_line(view))]
    if view.message:
        lines.append(escape(view.message))
    text = "\n".join(lines)
    if units(text) > SECTION_LIMIT:
        text = fit("\n".join([view.title, _summary_line(view), view.message]), SECTION_LIMIT,
                   _more_link(view))
    block: dict[str, Any] = {"type": "section", "text": _mrkdwn(text)}
    button = _button("Acknowledge", view.ack_url)
    if button is not None:
        block["accessory"] = button
    return block


def _many_alerts(notification: Notification, views: list[AlertView]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if notification.kind is NotificationKind.DIGEST:
        counts = ", ".join(f"{key} {Severity(key).label}: {count}"
                           for key, count in severity_counts(notification).items())
        blocks.append({"type": "section", "text": _mrkdwn(fit(counts, SECTION_LIMIT))})
    blocks += [_listed_alert(view) for view in views[:LISTED_ALERTS]]
    dashboard = next((view.dashboard_url for view in views if view.dashboard_url), "")
    hidden = len(views) - LISTED_ALERTS
    if hidden > 0:
        more = f"…and {hidden} more"
        if dashboard:
            more += f": {link(dashboard, 'see them all on the dashboard')}"
        blocks.append({"type": "section", "text": _mrkdwn(more)})
    return blocks + _actions(_button("Dashboard", dashboard))


def color(notification: Notification) -> str:
    """The attachment's bar: green for good news, else the severity's colour."""
    if notification.kind is NotificationKind.RESOLVED:
        return RESOLVED_COLOR
    return COLORS[notification.severity]


def slack_message(notification: Notification, channel: str) -> dict[str, Any]:
    """The webhook's JSON body for ``notification``, within Slack's limits."""
    views = [alert_view(alert, notification.created_at) for alert in notification.alerts]
    title = headline(notification)
    single = len(views) == 1 and notification.kind not in (NotificationKind.UPDATE,
                                                           NotificationKind.DIGEST)
    details = _one_alert(views[0]) if single else _many_alerts(notification, views)
    footer = (f"{delivery_path(notification, channel)} by Tocsin at "
              f"{format_time(notification.created_at)}")
    if notification.incident_id:
        footer += f", incident {notification.incident_id}"
    details.append({"type": "context", "elements": [_mrkdwn(fit(footer, SECTION_LIMIT))]})
    header = {"type": "header", "text": _plain(fit(title, HEADER_LIMIT))}
    return {
        "text": fit(title, TEXT_LIMIT),
        "blocks": [header],
        "attachments": [{"color": color(notification),
                         "blocks": details[:BLOCK_LIMIT - 1]}],
    }


@register
class SlackChannel(HTTPChannel[SlackConfig]):
    """Posts each notification to a Slack incoming webhook."""

    type = "slack"
    config_model = SlackConfig

    async def send(self, notification: Notification) -> None:
        url = self.config.webhook_url.get_secret_value()
        if not url:
            raise DeliveryError(f"{self.name}: webhook_url is empty, so Slack is not configured",
                                permanent=True)
        await self.post(url, json=slack_message(notification, self.name))
