"""What an alert email says, whichever way it is sent (SMTP or SendGrid).

:func:`render_email` turns a :class:`~tocsin.alerting.model.Notification` into
a subject, a plain-text body and an HTML body (autoescaped Jinja templates in
``templates/``), so both email channels say the same thing; each channel only
wraps the result in its own envelope (a MIME message, a SendGrid JSON body).

The footer says which channel sent the mail and, for a fallback delivery,
which channel failed first (:func:`~tocsin.channels.rendering.delivery_path`):
"Sent via smtp (fallback after email failed)".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from html import escape
from pathlib import Path
from typing import Annotated, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import AfterValidator

from tocsin.alerting.model import Notification, NotificationKind, Severity
from tocsin.channels.rendering import (
    PROBLEM_KINDS,
    alert_view,
    delivery_path,
    format_time,
    headline,
    one_line,
    severity_counts,
)

_TEMPLATES = Path(__file__).parent / "templates"

# Characters an address must not hold: whitespace and controls would let a
# value start a new header; the rest delimit addresses inside one.
_ADDRESS_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f<>,;:\"()\[\]\\]")


def check_address(address: str) -> str:
    """Refuse anything but a bare ``local@domain`` with no spaces, breaks or delimiters."""
    local, at, domain = address.partition("@")
    if not at or not local or not domain or "@" in domain or _ADDRESS_FORBIDDEN.search(address):
        raise ValueError(f"invalid email address {address!r}: write it as name@example.com")
    return address


Address = Annotated[str, AfterValidator(check_address)]


def check_subject_prefix(prefix: str) -> str:
    """Refuse a ``subject_prefix`` that is not one line free of control characters."""
    if prefix != one_line(prefix, limit=len(prefix) + 1):
        raise ValueError("subject_prefix must be one line without control characters")
    return prefix

HIGH_PRIORITY_HEADERS = {"X-Priority": "1 (Highest)", "Importance": "high", "Priority": "urgent"}
"""What mail clients read as "urgent"; set on problem notices of P1 or a high-priority policy."""


@dataclass(frozen=True)
class EmailContent:
    """One notification as an email: subject (with prefix), text and HTML bodies."""

    subject: str
    text: str
    html: str
    urgent: bool  # a problem notice that should carry HIGH_PRIORITY_HEADERS


@cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def is_urgent(notification: Notification) -> bool:
    """A problem notice of P1, or of a policy with ``priority: high``; never good news."""
    urgent = notification.high_priority or notification.severity is Severity.P1
    return urgent and notification.kind in PROBLEM_KINDS


TRUNCATED = "… (truncated: the dashboard has the rest)"


def _cut(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[:limit] + TRUNCATED


def render_email(notification: Notification, *, channel: str, subject_prefix: str,
                 text_limit: int | None = None) -> EmailContent:
    """The email for ``notification`` as sent by the channel named ``channel``.

    ``text_limit`` cuts each alert's message and description to that many
    characters, for an API that refuses large mail.
    """
    if notification.kind is NotificationKind.REPORT:
        return _report_email(notification, channel=channel, subject_prefix=subject_prefix)
    views = [alert_view(alert, notification.created_at) for alert in notification.alerts]
    if text_limit is not None:
        views = [replace(view, message=_cut(view.message, text_limit),
                         description=_cut(view.description, text_limit)) for view in views]
    subject_line = headline(notification)
    context: dict[str, Any] = {
        "notification": notification,
        "headline": subject_line,
        "alerts": views,
        "counts_line": ", ".join(f"{key} {Severity(key).label}: {count}"
                                 for key, count in severity_counts(notification).items()),
        "sent_at": format_time(notification.created_at),
        "delivery_path": delivery_path(notification, channel),
    }
    templates = _templates()
    return EmailContent(
        subject=f"{subject_prefix} {subject_line}".strip(),
        text=templates.get_template("email.txt.j2").render(context),
        html=templates.get_template("email.html.j2").render(context),
        urgent=is_urgent(notification),
    )


def _report_email(notification: Notification, *, channel: str,
                  subject_prefix: str) -> EmailContent:
    """A report's mail: its text, with the document attached (by the channel)."""
    footer = f"Sent by Tocsin via {delivery_path(notification, channel)}."
    paragraphs = "".join(f"<p>{escape(part)}</p>" for part in notification.body.split("\n\n")
                         if part.strip())
    return EmailContent(
        subject=f"{subject_prefix} {headline(notification)}".strip(),
        text=f"{notification.body}\n\n-- \n{footer}\n",
        html=(f"<!doctype html><html><body>{paragraphs}<hr><p><small>{escape(footer)}</small>"
              "</p></body></html>"),
        urgent=False,
    )
