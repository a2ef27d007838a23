"""``type: sendgrid``: email through SendGrid's v3 ``POST /v3/mail/send``.

The mail says what the SMTP channel's says (:mod:`tocsin.channels.email_content`):
the same subject, a text/plain part first (SendGrid requires that order) and a
text/html part. The JSON body follows SendGrid's documented contract::

    personalizations: [{to: [{email}], cc?: [{email}]}]
    from: {email, name?}, subject, content: [text/plain, text/html]
    categories: ["tocsin", "P1", "firing"]             (≤ 10, each ≤ 255 characters)
    headers: {X-Tocsin-Key, X-Tocsin-Kind, X-Tocsin-Severity, X-Tocsin-Incident?,
              X-Priority/Importance/Priority on urgent problem notices}
    custom_args: {tocsin_key}                          (shows up in SendGrid's event webhook)
    tracking_settings: click and open tracking off

Decisions:

- No ``Message-ID``: SendGrid sets its own (it answers with ``X-Message-Id``)
  and reserves ``To``, ``From``, ``Subject``, ``Reply-To``, ``Cc``, ``Bcc``,
  ``Content-Type``, ``Content-Transfer-Encoding``, ``Received``,
  ``DKIM-Signature``, ``X-SG-ID`` and ``X-SG-EID``; the idempotency key goes in
  ``X-Tocsin-Key`` and ``custom_args.tocsin_key`` instead.
- Click and open tracking are off: SendGrid would otherwise rewrite the signed
  acknowledge link through its redirector and add a tracking pixel to pages.
- SendGrid refuses a body over 20 MB; a larger one is rendered again with each
  alert's message and description cut (the dashboard has them whole), so a
  huge description costs detail, not the alert.
- An empty ``api_key`` (``${SENDGRID_API_KEY:-}`` with the variable unset)
  means "not configured": every send fails permanently, so the ``fallback``
  runs at once. A missing ``${VAR}`` without a default is a config error.

Status codes map as in :mod:`tocsin.channels.http`: 202 delivered; 400, 401,
403, 413 permanent; 429 (``Retry-After`` / ``X-RateLimit-Reset``) and 5xx
transient.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from tocsin.alerting.model import Notification
from tocsin.channels.base import ChannelConfig, DeliveryError
from tocsin.channels.email_content import (
    HIGH_PRIORITY_HEADERS,
    Address,
    check_subject_prefix,
    render_email,
)
from tocsin.channels.endpoints import check_endpoint_url
from tocsin.channels.http import HTTPChannel
from tocsin.channels.registry import register
from tocsin.channels.rendering import one_line

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.sendgrid.com"
MAX_BODY = 20 * 1024 * 1024 - 64 * 1024  # SendGrid's 20 MB, less room for headers
FIRST_TEXT_LIMIT, LAST_TEXT_LIMIT = 1_000_000, 1_000  # characters of a message or description
KEY_LIMIT = 200  # characters of the idempotency key in a header (a key is far shorter)


class SendGridConfig(ChannelConfig):
    """``type: sendgrid``: an API key, a sender and at least one recipient."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["sendgrid"]
    api_key: SecretStr  # from ${SENDGRID_API_KEY}; empty: not configured, the fallback runs
    from_: Address = Field(alias="from")
    from_name: str | None = None
    to: list[Address] = Field(min_length=1)
    cc: list[Address] = Field(default_factory=list)
    base_url: str = DEFAULT_BASE_URL
    subject_prefix: str = "[Tocsin]"

    @field_validator("api_key")
    @classmethod
    def _key_is_one_token(cls, key: SecretStr) -> SecretStr:
        if any(character.isspace() for character in key.get_secret_value()):
            raise ValueError("api_key must be one token without spaces or line breaks")
        return key

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        return check_endpoint_url(url, "base_url").rstrip("/")

    @field_validator("from_name")
    @classmethod
    def _name_is_one_line(cls, name: str | None) -> str | None:
        if name is not None and name != one_line(name, limit=len(name) + 1):
            raise ValueError("from_name must be one line without control characters")
        return name

    @field_validator("subject_prefix")
    @classmethod
    def _prefix_is_one_line(cls, prefix: str) -> str:
        return check_subject_prefix(prefix)

    @model_validator(mode="after")
    def _each_address_once(self) -> SendGridConfig:
        # SendGrid refuses a personalization that names an address twice (400).
        addresses = [address.lower() for address in (*self.to, *self.cc)]
        if len(set(addresses)) != len(addresses):
            raise ValueError("each address may appear only once across to and cc")
        return self


def categories(notification: Notification) -> list[str]:
    """``["tocsin", "P1", "firing"]``: what SendGrid's statistics can be split by."""
    return ["tocsin", notification.severity.value, notification.kind.value]


def mail_body(notification: Notification, config: SendGridConfig, channel: str, *,
              text_limit: int | None = None) -> dict[str, Any]:
    """The mail/send JSON body for ``notification``, sent by the channel named ``channel``."""
    content = render_email(notification, channel=channel, subject_prefix=config.subject_prefix,
                           text_limit=text_limit)
    personalization: dict[str, Any] = {"to": [{"email": address} for address in config.to]}
    if config.cc:
        personalization["cc"] = [{"email": address} for address in config.cc]
    sender = {"email": config.from_}
    if config.from_name:
        sender["name"] = config.from_name
    key = one_line(notification.key, limit=KEY_LIMIT)
    headers = {
        "X-Tocsin-Key": key,
        "X-Tocsin-Kind": notification.kind.value,
        "X-Tocsin-Severity": notification.severity.value,
    }
    if notification.incident_id:
        headers["X-Tocsin-Incident"] = one_line(notification.incident_id)
    if content.urgent:
        headers.update(HIGH_PRIORITY_HEADERS)
    body: dict[str, Any] = {
        "personalizations": [personalization],
        "from": sender,
        "subject": content.subject,
        "content": [{"type": "text/plain", "value": content.text},
                    {"type": "text/html", "value": content.html}],
        "categories": categories(notification),
        "headers": headers,
        "custom_args": {"tocsin_key": key},
        "tracking_settings": {"click_tracking": {"enable": False, "enable_text": False},
                              "open_tracking": {"enable": False}},
    }
    if notification.attachments:
        body["attachments"] = [{"content": item.data, "type": item.content_type,
                                "filename": one_line(item.filename), "disposition": "attachment"}
                               for item in notification.attachments]
    return body


def encode_mail(notification: Notification, config: SendGridConfig, channel: str) -> bytes:
    """The body as UTF-8 JSON, cut (see the module docstring) to fit SendGrid's 20 MB."""
    text_limit: int | None = None
    while True:
        data = json.dumps(mail_body(notification, config, channel, text_limit=text_limit),
                          ensure_ascii=False, separators=(",", ":")).encode()
        if len(data) <= MAX_BODY or text_limit == LAST_TEXT_LIMIT:
            # Still too large at the last cut (thousands of alerts): SendGrid's 413
            # makes it permanent, and the fallback gets it.
            return data
        text_limit = FIRST_TEXT_LIMIT if text_limit is None else max(LAST_TEXT_LIMIT,
                                                                       text_limit // 10)


@register
class SendGridChannel(HTTPChannel[SendGridConfig]):
    """Sends each notification as one email through SendGrid's v3 API."""

    type = "sendgrid"
    config_model = SendGridConfig

    async def send(self, notification: Notification) -> None:
        api_key = self.config.api_key.get_secret_value()
        if not api_key:
            raise DeliveryError(f"{self.name}: api_key is empty, so SendGrid is not configured",
                                permanent=True)
        answer = await self.post(
            f"{self.config.base_url}/v3/mail/send",
            data=encode_mail(notification, self.config, self.name),
            headers={"Authorization": f"Bearer {api_key}",
                     "Content-Type": "application/json"},
        )
        log.debug("%s: SendGrid accepted %s as %s", self.name, notification.key,
                  answer.headers.get("X-Message-Id", "?"))
