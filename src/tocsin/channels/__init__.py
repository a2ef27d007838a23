"""Channels: one module per destination, each registering itself here.

Adding a channel type touches one file: define a ``ChannelConfig`` subclass
with a ``type: Literal["name"]`` field and a ``Channel`` subclass whose
``send()`` raises :class:`DeliveryError`, and decorate it with
:func:`register`. Built in: ``smtp``, ``sendgrid``, ``slack``, ``webhook``,
``pagerduty``, ``apprise`` (the ``apprise`` extra) and ``recording`` (the in-memory channel
:mod:`tocsin.testing` re-exports). Types in :data:`PLANNED_CHANNEL_TYPES`
validate and build, but fail every send permanently so their fallback runs.
"""

from __future__ import annotations

from tocsin.channels.base import Channel, ChannelConfig, DeliveryError
from tocsin.channels.registry import (
    PLANNED_CHANNEL_TYPES,
    PlannedChannel,
    PlannedChannelConfig,
    build_channel,
    channel_config_models,
    channel_config_union,
    channel_types,
    known_channel_types,
    parse_channel_config,
    register,
)

# Importing a channel module registers it.
from tocsin.channels import recording as _recording  # noqa: F401  isort: skip
from tocsin.channels import smtp as _smtp  # noqa: F401  isort: skip
from tocsin.channels import sendgrid as _sendgrid  # noqa: F401  isort: skip
from tocsin.channels import slack as _slack  # noqa: F401  isort: skip
from tocsin.channels import webhook as _webhook  # noqa: F401  isort: skip
from tocsin.channels import pagerduty as _pagerduty  # noqa: F401  isort: skip
from tocsin.channels import apprise as _apprise  # noqa: F401  isort: skip

__all__ = [
    "PLANNED_CHANNEL_TYPES",
    "Channel",
    "ChannelConfig",
    "DeliveryError",
    "PlannedChannel",
    "PlannedChannelConfig",
    "build_channel",
    "channel_config_models",
    "channel_config_union",
    "channel_types",
    "known_channel_types",
    "parse_channel_config",
    "register",
]
