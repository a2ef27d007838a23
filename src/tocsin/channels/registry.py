"""The registry of channel types: type name → channel class (and its config model).

Types the product brief names but this version does not build yet
(:data:`PLANNED_CHANNEL_TYPES`) validate loosely as :class:`PlannedChannelConfig`
and build into a :class:`PlannedChannel` that fails every send permanently, so
a config written for the brief loads and its ``fallback`` (e.g. SendGrid →
SMTP) carries the notification.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, Union

from pydantic import ConfigDict, Discriminator, Tag, TypeAdapter, field_validator

from tocsin.alerting.model import Notification
from tocsin.channels.base import Channel, ChannelConfig, DeliveryError

_CHANNELS: dict[str, type[Channel[Any]]] = {}

PLANNED_CHANNEL_TYPES: frozenset[str] = frozenset()

PLANNED_TAG = "planned"
"""The union tag (it appears in pydantic error locations) of :class:`PlannedChannelConfig`."""

K = TypeVar("K", bound=type[Channel[Any]])


class PlannedChannelConfig(ChannelConfig):
    """A channel of a type the brief names but this version does not build; kept as written."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @field_validator("type")
    @classmethod
    def _is_planned(cls, kind: str) -> str:
        if kind not in PLANNED_CHANNEL_TYPES:
            raise ValueError(f"{kind!r} is not a planned channel type")
        return kind


class PlannedChannel(Channel[PlannedChannelConfig]):
    """Stands in for a planned channel type: every send fails permanently, so the fallback runs."""

    type = PLANNED_TAG
    config_model = PlannedChannelConfig

    async def send(self, notification: Notification) -> None:
        raise DeliveryError(
            f"channel type {self.config.type!r} is not available in this version",
            permanent=True,
        )


def register(channel: K) -> K:
    """Class decorator: make ``channel`` available as channel ``type: channel.type``."""
    if channel.type in _CHANNELS:
        raise ValueError(f"channel type {channel.type!r} registered twice")
    if channel.type in PLANNED_CHANNEL_TYPES or channel.type == PLANNED_TAG:
        # A built type leaves the planned set by being removed from it, not shadowed.
        raise ValueError(f"channel type {channel.type!r} is reserved as planned")
    _CHANNELS[channel.type] = channel
    _adapters.clear()
    return channel


def channel_types() -> dict[str, type[Channel[Any]]]:
    """Every registered channel type, by name."""
    return dict(_CHANNELS)


def known_channel_types() -> list[str]:
    """Every channel type a config may name: registered and planned."""
    return sorted(set(_CHANNELS) | PLANNED_CHANNEL_TYPES)


def channel_config_models() -> dict[str, type[ChannelConfig]]:
    """Union tag → config model: one tag per registered type, plus :data:`PLANNED_TAG`."""
    models = {name: channel.config_model for name, channel in sorted(_CHANNELS.items())}
    models[PLANNED_TAG] = PlannedChannelConfig
    return models


def channel_config_union() -> Any:
    """The discriminated union of every channel config model, tagged by ``type``.

    For the config schema (``channels: dict[str, channel_config_union()]``);
    built on call, so it includes every type registered so far.
    """
    members = tuple(Annotated[model, Tag(tag)] for tag, model in channel_config_models().items())
    return Annotated[Union[members], Discriminator(_channel_tag)]  # noqa: UP007


def _channel_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    if not isinstance(kind, str):
        return None
    if kind in _CHANNELS:
        return kind
    return PLANNED_TAG if kind in PLANNED_CHANNEL_TYPES else None


_adapters: dict[frozenset[str], TypeAdapter[ChannelConfig]] = {}


def parse_channel_config(data: Mapping[str, Any]) -> ChannelConfig:
    """Validate one channel's config (a mapping with ``type``) against its type's model.

    Raises :class:`pydantic.ValidationError` for an unknown type or a bad key.
    """
    registered = frozenset(_CHANNELS)
    adapter = _adapters.get(registered)
    if adapter is None:
        adapter = _adapters[registered] = TypeAdapter(channel_config_union())
    return adapter.validate_python(dict(data))


def build_channel(name: str, config: ChannelConfig | Mapping[str, Any]) -> Channel[Any]:
    """The channel called ``name`` for ``config``.

    A planned type builds a :class:`PlannedChannel`; an unknown type raises a
    permanent :class:`DeliveryError` (the config schema refuses it first).
    """
    if isinstance(config, Mapping):
        kind = config.get("type")
        if not isinstance(kind, str) or (kind not in _CHANNELS
                                         and kind not in PLANNED_CHANNEL_TYPES):
            raise DeliveryError(f"unknown channel type {kind!r}", permanent=True)
        config = parse_channel_config(config)
    channel = _CHANNELS.get(config.type)
    if channel is None:
        if config.type in PLANNED_CHANNEL_TYPES:
            if not isinstance(config, PlannedChannelConfig):
                config = PlannedChannelConfig.model_validate(config.model_dump())
            return PlannedChannel(name, config)
        raise DeliveryError(f"unknown channel type {config.type!r}", permanent=True)
    if not isinstance(config, channel.config_model):
        config = channel.config_model.model_validate(config.model_dump(by_alias=True))
    return channel(name, config)
