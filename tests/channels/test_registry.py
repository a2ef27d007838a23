"""The channel registry: built-in types, planned types, the config union."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tests.channels.conftest import notification
from tocsin.alerting.model import Notification
from tocsin.channels import (
    PLANNED_CHANNEL_TYPES,
    Channel,
    ChannelConfig,
    DeliveryError,
    PlannedChannel,
    PlannedChannelConfig,
    build_channel,
    channel_config_union,
    channel_types,
    known_channel_types,
    register,
    registry,
)
from tocsin.channels.smtp import SMTPChannel, SMTPConfig


class Channels(BaseModel):
    channels: dict[str, channel_config_union()]  # type: ignore[valid-type]


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> str:
    """A planned type (every built-in one is built now): ``pigeon``."""
    monkeypatch.setattr(registry, "PLANNED_CHANNEL_TYPES", frozenset({"pigeon"}))
    return "pigeon"


def test_built_in_types_register_on_import() -> None:
    assert {"smtp", "recording"} <= set(channel_types())
    assert set(known_channel_types()) == set(channel_types()) | PLANNED_CHANNEL_TYPES


def test_union_validates_each_type_against_its_model(planned: str) -> None:
    parsed = Channels.model_validate({"channels": {
        "smtp": {"type": "smtp", "host": "mail.example.com", "from": "a@example.com",
                 "to": ["b@example.com"], "fallback": "log"},
        "email": {"type": planned, "api_key": "xyz", "fallback": "smtp"},
    }})

    smtp, email = parsed.channels["smtp"], parsed.channels["email"]
    assert isinstance(smtp, SMTPConfig)
    assert smtp.fallback == "log" and smtp.timeout == 10.0
    assert isinstance(email, PlannedChannelConfig)
    assert email.fallback == "smtp"


@pytest.mark.parametrize(("channel", "expected"), [
    ({"type": "carrier-pigeon"}, "union_tag_not_found"),
    ({"type": "smtp", "host": "h", "from": "a@b.c", "to": ["d@e.f"], "colour": "red"},
     "extra_forbidden"),
    ({"type": "smtp", "host": "h", "from": "a@b.c", "to": ["d@e.f"], "timeout": "10"},
     "value_error"),
    ({"type": "smtp", "host": "h", "from": "a@b.c", "to": ["d@e.f"], "port": 465},
     "value_error"),
    ({"type": "smtp", "host": "h", "from": "a@b.c", "to": ["d@e.f"], "username": "u"},
     "value_error"),
])
def test_union_refuses_bad_channels(channel: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Channels.model_validate({"channels": {"c": channel}})

    assert expected in {error["type"] for error in caught.value.errors()}


def test_build_channel_from_a_mapping_or_a_model() -> None:
    config = {"type": "smtp", "host": "h", "port": 465, "security": "tls",
              "from": "a@b.c", "to": ["d@e.f"]}

    from_mapping = build_channel("mail", config)
    from_model = build_channel("mail", SMTPConfig.model_validate(config))

    assert isinstance(from_mapping, SMTPChannel) and isinstance(from_model, SMTPChannel)
    assert from_mapping.config == from_model.config
    assert from_mapping.name == "mail"


async def test_planned_type_fails_permanently_so_the_fallback_runs(planned: str) -> None:
    channel = build_channel("chat", {"type": planned, "webhook_url": "https://hooks.example"})

    assert isinstance(channel, PlannedChannel)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(notification())
    assert caught.value.permanent
    assert str(caught.value) == "channel type 'pigeon' is not available in this version"
    await channel.close()


def test_unknown_type_cannot_be_built() -> None:
    with pytest.raises(DeliveryError, match="unknown channel type 'fax'") as caught:
        build_channel("x", {"type": "fax"})
    assert caught.value.permanent


def test_a_type_registers_once_and_planned_names_are_reserved(planned: str) -> None:
    class Again(Channel[ChannelConfig]):
        type = "smtp"
        config_model = ChannelConfig

        async def send(self, notification: Notification) -> None:
            return None

    with pytest.raises(ValueError, match="registered twice"):
        register(Again)
    Again.type = planned
    with pytest.raises(ValueError, match="reserved"):
        register(Again)
