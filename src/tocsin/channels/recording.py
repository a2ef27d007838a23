"""``type: recording``: keeps every notification in memory, for tests and drills.

Shipped (and re-exported by :mod:`tocsin.testing`) so that users can test
their own configs: route alerts to a recording channel, then look at
``RecordingChannel.sent[name]``. ``fail_times`` makes the first sends fail,
to exercise retries and fallbacks.

It lives with the other channels and registers when :mod:`tocsin.channels`
is imported, so the normal runtime (and ``tocsin drill``) accepts it without
importing :mod:`tocsin.testing`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from tocsin.alerting.model import Notification
from tocsin.channels.base import Channel, ChannelConfig, DeliveryError
from tocsin.channels.registry import register
from tocsin.config.durations import Duration


class RecordingConfig(ChannelConfig):
    """``fail_times``: how many sends fail before they succeed; ``permanent``: how they fail."""

    type: Literal["recording"]
    fail_times: int = Field(default=0, ge=0)
    permanent: bool = False
    retry_after: Annotated[Duration, Field(ge=0)] | None = None


@register
class RecordingChannel(Channel[RecordingConfig]):
    """Appends each notification it delivers to ``RecordingChannel.sent[channel name]``.

    ``sent`` and ``attempts`` are class-level, keyed by channel name, so a test
    finds what a channel built deep inside the runtime received. Call
    :meth:`reset` between tests.
    """

    type = "recording"
    config_model = RecordingConfig

    sent: ClassVar[dict[str, list[Notification]]] = {}
    attempts: ClassVar[dict[str, int]] = {}

    def __init__(self, name: str, config: RecordingConfig) -> None:
        super().__init__(name, config)
        self.failures_left = config.fail_times
        self.sent.setdefault(name, [])
        self.attempts.setdefault(name, 0)

    async def send(self, notification: Notification) -> None:
        self.attempts[self.name] = self.attempts.get(self.name, 0) + 1
        if self.failures_left > 0:
            failure = self.config.fail_times - self.failures_left + 1
            self.failures_left -= 1
            raise DeliveryError(
                f"recording channel {self.name!r}: configured failure "
                f"{failure} of {self.config.fail_times}",
                permanent=self.config.permanent,
                retry_after=self.config.retry_after,
            )
        self.sent.setdefault(self.name, []).append(notification)

    @classmethod
    def reset(cls) -> None:
        """Forget every recorded notification and attempt."""
        cls.sent.clear()
        cls.attempts.clear()
