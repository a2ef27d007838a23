"""``type: apprise``: any of the ~100 services the `apprise` library speaks, by URL.

Needs the ``apprise`` extra (``pip install 'tocsin[apprise]'``); without it, a
config with an apprise channel is refused at load, naming the extra.

Each entry of ``urls`` is an Apprise URL (``tgram://bot-token/chat-id``,
``discord://…``, ``json://host/path``…). They hold credentials, so take them
from ``${ENV}``; every URL is treated as a secret: no message or log line of
this module repeats one. A URL Apprise cannot parse or load is refused when
the config loads (naming its position in ``urls`` and its scheme only).

A notification becomes one Apprise message: ``title`` is ``title_prefix`` and
the headline; ``body`` lists each alert (text, or Markdown with ``format:
markdown``, where alert text is escaped so that it stays text); ``notify_type``
is ``failure`` for a problem (firing, update, repeat, escalation, flapping,
test), ``success`` for a resolution and ``info`` otherwise (acknowledged,
digest). Apprise converts the body to what each service takes (HTML for
email) and escapes it on the way; values are never markup to Tocsin.

Failures: Apprise reports an outcome per call (a boolean, or in apprise ≥ 2 a
result whose truth is the same), not a reason or an HTTP status (its own
log says why), so Tocsin cannot tell a revoked token from an outage: a
failed send is **transient** and retried, then handed to the fallback when
retries run out. Only "no service to notify" is permanent. When some URLs
took the message and another failed, a retry sends it to all of them again
(Apprise sends to every URL of a call): give a URL that must not get
duplicates its own channel. ``timeout`` bounds the whole call; Apprise's
blocking services run in its worker threads, which finish on their own
socket timeouts (``cto``/``rto`` URL parameters, 4 s by default).
"""

from __future__ import annotations

import asyncio
import importlib
import re
import warnings
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator

from tocsin.alerting.model import Notification, NotificationKind, Severity
from tocsin.channels.base import Channel, ChannelConfig, DeliveryError
from tocsin.channels.registry import register
from tocsin.channels.rendering import (
    PROBLEM_KINDS,
    AlertView,
    alert_view,
    headline,
    one_line,
    severity_counts,
)

if TYPE_CHECKING:
    import apprise as apprise_library

TEXT_CAP = 8 * 1024
"""Characters one alert field may hold in the body; Apprise then trims to each service's limit."""

_MISSING = "the apprise channel needs the apprise package: pip install 'tocsin[apprise]'"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


def _library() -> Any:
    """The ``apprise`` module, imported on first use: it is an optional extra."""
    try:
        with warnings.catch_warnings():
            # apprise loads its plugins on first use, and one probes for the stdlib's
            # deprecated imghdr (for PGPy): load them now, with that warning silenced.
            warnings.simplefilter("ignore", DeprecationWarning)
            import apprise

            plugins: Any = importlib.import_module("apprise.manager_plugins")
            plugins.NotificationManager().load_modules()
    except ImportError:
        raise ValueError(_MISSING) from None
    return apprise


def _scheme(url: str) -> str:
    scheme, separator, _ = url.partition("://")
    return scheme if separator and scheme.isascii() and scheme.isalnum() else "?"


def _apprise_can_load(url: SecretStr) -> SecretStr:
    library = _library()
    text = url.get_secret_value().strip()
    if library.Apprise.instantiate(text, asset=_asset(library)) is None:
        raise ValueError(f"this URL (scheme {_scheme(text)!r}) is not a URL apprise can use: "
                         "check it against apprise's list of services")
    return url


class AppriseConfig(ChannelConfig):
    """``type: apprise``: Apprise URLs (secrets), a title prefix and the body's format."""

    type: Literal["apprise"]
    # Each from ${ENV}: they hold tokens. Checked one by one, so an error names its index.
    urls: list[Annotated[SecretStr, AfterValidator(_apprise_can_load)]] = Field(min_length=1)
    title_prefix: str = "[Tocsin]"
    format: Literal["text", "markdown"] = "text"

    @field_validator("title_prefix")
    @classmethod
    def _prefix_is_one_line(cls, prefix: str) -> str:
        if prefix != one_line(prefix, limit=len(prefix) + 1):
            raise ValueError("title_prefix must be one line without control characters")
        return prefix


def _asset(library: Any) -> Any:
    # In memory only: Apprise's persistent store would otherwise write under $HOME.
    return library.AppriseAsset(app_id="Tocsin", storage_mode="memory")


def notify_type(kind: NotificationKind) -> str:
    """Apprise's ``notify_type``: failure for problems, success for resolved, else info."""
    if kind is NotificationKind.RESOLVED:
        return "success"
    return "failure" if kind in PROBLEM_KINDS else "info"


def _escape_markdown(text: str) -> str:
    # Entities for the HTML that Markdown passes through, backslashes for its own syntax.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _cap(text: str) -> str:
    return text if len(text) <= TEXT_CAP else text[: TEXT_CAP - 1] + "…"


def _alert_lines(view: AlertView, markdown: bool) -> list[str]:
    def value(text: str) -> str:
        return _escape_markdown(_cap(text)) if markdown else _cap(text)

    title = f"{view.severity} — {value(view.title)}"
    lines = [f"**{title}**" if markdown else title]
    fields = [
        ("Service", view.service), ("Check", view.check), ("State", view.state),
        ("Message", view.message), ("Description", view.description),
        ("Measured", f"{view.measured} (threshold {view.threshold})" if view.measured
         and view.threshold else view.measured),
        ("Since", f"{view.since} (for {view.for_})" if view.for_ else view.since),
        ("Lasted", view.lasted), ("Runbook", view.runbook),
        ("Dashboard", view.dashboard_url), ("Acknowledge", view.ack_url),
    ]
    for label, text in fields:
        if text:
            lines.append(f"{label}: {value(text)}")
    return lines


def render_body(notification: Notification, markdown: bool = False) -> str:
    """The message body: one block per alert (a digest adds its counts first)."""
    blocks: list[str] = []
    if notification.kind is NotificationKind.DIGEST:
        counts = ", ".join(f"{key} {Severity(key).label}: {count}"
                           for key, count in severity_counts(notification).items())
        blocks.append(counts)
    for alert in notification.alerts:
        lines = _alert_lines(alert_view(alert, notification.created_at), markdown)
        blocks.append(("  \n" if markdown else "\n").join(lines))
    if not blocks:
        subject = one_line(notification.subject) or headline(notification)
        blocks.append(_escape_markdown(subject) if markdown else subject)
    return "\n\n".join(blocks)


@register
class AppriseChannel(Channel[AppriseConfig]):
    """Sends each notification through Apprise to every configured URL."""

    type = "apprise"
    config_model = AppriseConfig

    def __init__(self, name: str, config: AppriseConfig) -> None:
        super().__init__(name, config)
        self._apprise: apprise_library.Apprise | None = None

    def _notifier(self) -> apprise_library.Apprise:
        if self._apprise is None:
            try:
                library = _library()
            except ValueError:
                raise DeliveryError(f"{self.name}: {_MISSING}", permanent=True) from None
            notifier = library.Apprise(asset=_asset(library))
            for index, url in enumerate(self.config.urls):
                if not notifier.add(url.get_secret_value().strip()):
                    raise DeliveryError(f"{self.name}: apprise cannot load urls[{index}]",
                                        permanent=True)
            self._apprise = notifier
        return self._apprise

    async def send(self, notification: Notification) -> None:
        config = self.config
        notifier = self._notifier()
        markdown = config.format == "markdown"
        title = f"{config.title_prefix} {headline(notification)}".strip()
        try:
            async with asyncio.timeout(config.timeout):
                result: Any = await notifier.async_notify(
                    body=render_body(notification, markdown), title=title,
                    notify_type=notify_type(notification.kind), body_format=config.format)
        except TimeoutError:
            raise DeliveryError(f"{self.name}: apprise timed out after {config.timeout:g} s",
                                permanent=False) from None
        except Exception as error:  # the boundary: nothing from apprise leaks
            raise DeliveryError(f"{self.name}: apprise raised {type(error).__name__}",
                                permanent=False) from None
        if result:
            return
        status = getattr(getattr(result, "status", None), "name", "FAILURE")
        if status == "NOMATCH":
            raise DeliveryError(f"{self.name}: apprise had no service to notify",
                                permanent=True)
        failed = _failed_services(result)
        raise DeliveryError(
            f"{self.name}: apprise reported {status.lower()}{failed} (it gives no reason "
            "here; its log says why)", permanent=False)


def _failed_services(result: Any) -> str:
    """`` (JSON, Telegram)``: services apprise ≥ 2 says failed; names only, never URLs."""
    try:
        names = sorted({str(service.name) for service in result if not service})
    except TypeError:  # apprise < 2 returns a plain bool
        return ""
    return f" ({', '.join(names)})" if names else ""
