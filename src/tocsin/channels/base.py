"""The channel interface: one small class per destination (email, Slack, webhook, …).

A channel receives its validated config once and is asked to :meth:`Channel.send`
one :class:`~tocsin.alerting.model.Notification` at a time. It either delivers
it or raises :class:`DeliveryError` saying whether a retry can help; the outbox
retries transient failures and hands permanent ones (and exhausted retries) to
the channel's ``fallback``.

Exceptions::

    DeliveryError(message, permanent=..., retry_after=...)   root of this layer
    │   .permanent=True    retrying cannot help: credentials refused, recipient
    │                      unknown, certificate untrusted, channel type not built
    │                      or not known; go to the fallback
    │   .permanent=False   retry later: connection refused or reset, timeout,
    │                      a 4yz SMTP reply, a 5xx or 429 HTTP reply
    │   .retry_after       seconds the destination asked us to wait, if it said
    │
    └── nothing else: each channel maps every third-party exception (aiosmtplib,
        OSError, TimeoutError, ssl.SSLError, …) onto DeliveryError at its
        boundary, so alerting never sees one.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from typing import Annotated, ClassVar, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from tocsin.alerting.model import Notification
from tocsin.config.durations import Duration


class DeliveryError(Exception):
    """A notification was not delivered; ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (f"DeliveryError({self.message!r}, permanent={self.permanent}, "
                f"retry_after={self.retry_after})")


def _positive_timeout(seconds: float) -> float:
    # A channel without a deadline can hold a delivery worker forever.
    if seconds <= 0:
        raise ValueError("a timeout must be longer than zero, e.g. 10s")
    return seconds


class ChannelConfig(BaseModel):
    """Keys every channel type accepts; each channel extends it with its own.

    ``fallback`` names another channel that gets the notification when this one
    fails permanently or runs out of retries (the config checks that it exists).
    ``timeout`` bounds one whole delivery attempt.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    fallback: str | None = None
    timeout: Annotated[Duration, AfterValidator(_positive_timeout)] = 10.0


C = TypeVar("C", bound=ChannelConfig)


class Channel(ABC, Generic[C]):
    """Base of every channel: subclasses set ``type`` and ``config_model``, implement ``send``."""

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[ChannelConfig]]
    # Whether ACKNOWLEDGED notifications go to this channel (PagerDuty acks its incident).
    receives_acknowledgements: ClassVar[bool] = False

    def __init__(self, name: str, config: C) -> None:
        self.name = name
        self.config = config

    @abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver ``notification`` once, or raise :class:`DeliveryError`.

        Sending the same notification twice must be safe to the extent the
        destination allows: channels pass ``notification.key`` on as their
        idempotency key (the email Message-ID, PagerDuty's dedup key, …).
        """

    async def close(self) -> None:
        """Release what the channel holds open (connections, sessions); most hold nothing."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
