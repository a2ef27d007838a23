"""The fakes shipped in tocsin.testing: FakeClock and RecordingChannel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.channels.conftest import notification
from tocsin.alerting.clock import Clock
from tocsin.channels import DeliveryError, build_channel, channel_types
from tocsin.testing import FakeClock, RecordingChannel


@pytest.fixture(autouse=True)
def forget_recordings() -> Iterator[None]:
    RecordingChannel.reset()
    yield
    RecordingChannel.reset()


def test_fake_clock_moves_only_when_told() -> None:
    clock: Clock = FakeClock()
    assert isinstance(clock, FakeClock)

    assert clock.now() == 1_800_000_000.0
    assert clock.advance(90) == 1_800_000_090.0
    assert clock.now() == 1_800_000_090.0
    clock.set(100.0)
    assert clock.now() == 100.0
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    assert FakeClock(start=5).now() == 5


def test_recording_is_a_registered_channel_type() -> None:
    assert channel_types()["recording"] is RecordingChannel


async def test_recording_channel_keeps_what_it_was_sent_by_name() -> None:
    channel = build_channel("ops", {"type": "recording"})
    first, second = notification(key="a"), notification(key="b")

    await channel.send(first)
    await channel.send(second)

    assert RecordingChannel.sent["ops"] == [first, second]
    assert RecordingChannel.attempts["ops"] == 2


async def test_recording_channel_fails_as_configured_then_delivers() -> None:
    channel = build_channel("flaky", {"type": "recording", "fail_times": 2, "retry_after": "30s"})
    sent = notification()

    for attempt in (1, 2):
        with pytest.raises(DeliveryError, match=f"configured failure {attempt} of 2") as caught:
            await channel.send(sent)
        assert not caught.value.permanent
        assert caught.value.retry_after == 30.0
    await channel.send(sent)

    assert RecordingChannel.sent["flaky"] == [sent]
    assert RecordingChannel.attempts["flaky"] == 3


async def test_recording_channel_can_fail_permanently() -> None:
    channel = build_channel("broken", {"type": "recording", "fail_times": 1, "permanent": True})

    with pytest.raises(DeliveryError) as caught:
        await channel.send(notification())

    assert caught.value.permanent
    assert RecordingChannel.sent["broken"] == []
