"""Email over SMTP: one connection per notification, plain text and HTML parts.

``security`` says how the connection is protected and is never guessed from
the port: ``starttls`` (the default, port 587) upgrades a plain connection and
refuses a server that cannot; ``tls`` is implicit TLS from the first byte
(port 465, which therefore refuses ``starttls``); ``none`` sends in clear (a
local relay). ``timeout`` bounds the whole attempt: connect, TLS, login, send.

The ``Message-ID`` is ``<key@tocsin>`` from the notification's idempotency
key, so a notification resent after a crash is the same message, and mail
clients and relays that deduplicate by Message-ID show it once.

Failures map onto :class:`DeliveryError` (see ``base``): refused connections,
timeouts and 4yz replies are transient; 5yz replies (535 credentials refused,
550/553 recipient refused), an untrusted certificate and a server without
STARTTLS are permanent. When the server refuses some recipients but accepts
others, the message went out: a warning names the refused ones and the send
counts as delivered (retrying would mail the accepted ones twice). When it
refuses every recipient, the failure is permanent unless every refusal was a
4yz. No error message repeats the password.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

import aiosmtplib
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from tocsin.alerting.model import Notification
from tocsin.channels.base import Channel, ChannelConfig, DeliveryError
from tocsin.channels.email_content import (
    HIGH_PRIORITY_HEADERS,
    Address,
    check_address,
    check_subject_prefix,
    render_email,
)
from tocsin.channels.registry import register
from tocsin.channels.rendering import one_line

__all__ = ["Address", "SMTPChannel", "SMTPConfig", "build_message", "check_address",
           "message_id"]

log = logging.getLogger(__name__)


class SMTPConfig(ChannelConfig):
    """``type: smtp``: a mail server and who gets the mail."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["smtp"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None  # from ${ENV} or a *_FILE secret
    # Both may be left out on a channel that is only another one's `fallback`:
    # it then sends from and to the addresses of the channel it stands in for.
    from_: Address | None = Field(default=None, alias="from")
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    verify_tls: bool = True
    ca_file: str | None = None  # a private CA's bundle, to verify the server against
    subject_prefix: str = "[Tocsin]"

    @field_validator("host")
    @classmethod
    def _host_is_a_name(cls, host: str) -> str:
        if re.search(r"[\s/@]", host):
            raise ValueError(f"invalid SMTP host {host!r}: give a host name or address only")
        return host

    @field_validator("subject_prefix")
    @classmethod
    def _prefix_is_one_line(cls, prefix: str) -> str:
        return check_subject_prefix(prefix)

    @model_validator(mode="after")
    def _consistent(self) -> SMTPConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        if self.port == 465 and self.security == "starttls":
            raise ValueError("port 465 speaks implicit TLS: set security: tls "
                             "(or use port 587 for STARTTLS)")
        return self


_ID_SAFE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


def message_id(key: str) -> str:
    """``<key@tocsin>``, with ``key`` made a valid msg-id and still unique.

    A key that is already a dot-atom of ``[A-Za-z0-9_-]`` is kept; any other is
    slugged and suffixed with a hash of the original, so two keys that slug
    alike still get different Message-IDs and one key always gets the same.
    """
    if len(key) <= 128 and _ID_SAFE.fullmatch(key):
        return f"<{key}@tocsin>"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", key).strip("-")[:64] or "n"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"<{slug}.{digest}@tocsin>"


def build_message(notification: Notification, config: SMTPConfig,
                  channel: str | None = None) -> EmailMessage:
    """The email for ``notification``: headers, a text part and an HTML alternative.

    ``channel`` is the sending channel's name, for the footer (default: the
    notification's channel).
    """
    content = render_email(notification, channel=channel or notification.channel,
                           subject_prefix=config.subject_prefix)
    message = EmailMessage()
    message["Subject"] = content.subject
    message["From"] = config.from_
    message["To"] = ", ".join(config.to)
    if config.cc:
        message["Cc"] = ", ".join(config.cc)
    # The notification's time, not the send's: a resend is the same message.
    message["Date"] = formatdate(notification.created_at, usegmt=True)
    message["Message-ID"] = message_id(notification.key)
    message["X-Tocsin-Kind"] = notification.kind.value
    message["X-Tocsin-Severity"] = notification.severity.value
    if notification.incident_id:
        message["X-Tocsin-Incident"] = one_line(notification.incident_id)
    if content.urgent:
        for name, value in HIGH_PRIORITY_HEADERS.items():
            message[name] = value
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    for attachment in notification.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(base64.b64decode(attachment.data), maintype=maintype,
                               subtype=subtype or "octet-stream",
                               filename=one_line(attachment.filename))
    return message


@register
class SMTPChannel(Channel[SMTPConfig]):
    """Sends each notification as one email through an SMTP server."""

    type = "smtp"
    config_model = SMTPConfig

    async def send(self, notification: Notification) -> None:
        config = self.config
        if config.from_ is None or not config.to:
            raise DeliveryError(f"channel {self.name!r} has no from/to addresses",
                                permanent=True)
        message = build_message(notification, config, self.name)
        password = config.password.get_secret_value() if config.password else None
        try:
            async with asyncio.timeout(config.timeout):
                refused, _ = await aiosmtplib.send(
                    message,
                    sender=config.from_,
                    recipients=[*config.to, *config.cc],
                    hostname=config.host,
                    port=config.port,
                    username=config.username,
                    password=password,
                    use_tls=config.security == "tls",
                    start_tls=config.security == "starttls",
                    validate_certs=config.verify_tls,
                    cert_bundle=config.ca_file,
                    timeout=config.timeout,
                )
        except Exception as error:  # the boundary: nothing from aiosmtplib or ssl leaks
            raise self._delivery_error(error, password) from None
        if refused:
            log.warning(
                "channel %s: the server refused %s; delivered to the other recipients",
                self.name,
                ", ".join(f"{address} ({response.code} {one_line(response.message)})"
                          for address, response in sorted(refused.items())),
            )

    def _delivery_error(self, error: Exception, password: str | None) -> DeliveryError:
        config = self.config
        where = f"SMTP {config.host}:{config.port}"
        permanent, reason = _classify(error, config.timeout)
        text = f"{where}: {reason}"
        if password:
            text = text.replace(password, "***")
        return DeliveryError(text, permanent=permanent)


def _reply(code: int, text: str) -> str:
    return f"{code} {one_line(text)}".strip()


def _classify(error: Exception, timeout: float) -> tuple[bool, str]:
    """(permanent, reason) for an exception raised while sending."""
    # Order matters: aiosmtplib's timeouts are also SMTPExceptions and
    # TimeoutErrors, its connect errors also ConnectionErrors (OSError).
    if isinstance(error, TimeoutError):
        return False, f"timed out after {timeout:g}s"
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{refusal.recipient}: {_reply(refusal.code, refusal.message)}"
                            for refusal in error.recipients)
        temporary = all(400 <= refusal.code < 500 for refusal in error.recipients)
        return not temporary, f"every recipient refused ({replies})"
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return error.code >= 500, f"login refused: {_reply(error.code, error.message)}"
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code >= 500, f"server replied {_reply(error.code, error.message)}"
    certificate = _certificate_error(error)
    if certificate is not None:
        return True, (f"TLS certificate not trusted ({certificate}); set ca_file, "
                      "or verify_tls: false for a server you trust")
    if isinstance(error, aiosmtplib.SMTPNotSupported) or (
            # aiosmtplib says "STARTTLS/AUTH extension not supported" with the
            # base class only: a server/config mismatch no retry will fix.
            type(error) is aiosmtplib.SMTPException and "not supported" in str(error)):
        return True, f"server does not support what the config asks: {one_line(str(error))}"
    if isinstance(error, aiosmtplib.SMTPException | ssl.SSLError | OSError):
        return False, one_line(str(error)) or type(error).__name__
    if isinstance(error, ValueError):  # aiosmtplib refusing an address it cannot send safely
        return True, one_line(str(error))
    return False, f"{type(error).__name__}: {one_line(str(error))}"


def _certificate_error(error: BaseException) -> str | None:
    """The verification failure behind ``error``, if a certificate was refused."""
    seen: BaseException | None = error
    for _ in range(5):  # aiosmtplib wraps the ssl error once or twice
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return one_line(seen.verify_message or str(seen))
        seen = seen.__cause__ or seen.__context__
    return None
