"""The durable outbox over a real SQLite store: retries, permanent failures, fallbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tocsin.alerting.model import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationKind,
    Severity,
)
from tocsin.alerting.outbox import MAX_ATTEMPTS, OutboxSender, retry_delay
from tocsin.channels import Channel, build_channel
from tocsin.store import Store, open_store
from tocsin.testing import FakeClock, RecordingChannel


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'outbox.db'}")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def _fresh_recordings() -> Iterator[None]:
    RecordingChannel.reset()
    yield
    RecordingChannel.reset()


def channels(**configs: dict[str, Any]) -> dict[str, Channel[Any]]:
    return {name: build_channel(name, {"type": "recording", **config})
            for name, config in configs.items()}


def enqueue(store: Store, channel: str, clock: FakeClock, key: str = "n1") -> None:
    note = Notification(key=key, channel=channel, kind=NotificationKind.FIRING,
                        severity=Severity.P1, subject="backend is down", alerts=(),
                        created_at=clock.now())
    store.save_alerting(deliveries=[Delivery(notification=note, next_attempt_at=clock.now())])


async def test_a_delivery_is_sent_once_and_marked_sent(store: Store) -> None:
    clock = FakeClock()
    enqueue(store, "mail", clock)
    sender = OutboxSender(store, channels(mail={}), clock)
    await sender.deliver_due()
    await sender.deliver_due()
    assert [n.key for n in RecordingChannel.sent["mail"]] == ["n1"]
    delivery = store.get_delivery("n1")
    assert delivery is not None and delivery.status is DeliveryStatus.SENT
    assert delivery.sent_at == clock.now() and delivery.attempts == 1


async def test_a_transient_failure_is_retried_with_backoff(store: Store) -> None:
    clock = FakeClock()
    enqueue(store, "mail", clock)
    sender = OutboxSender(store, channels(mail={"fail_times": 2}), clock)
    await sender.deliver_due()
    delivery = store.get_delivery("n1")
    assert delivery is not None and delivery.status is DeliveryStatus.PENDING
    assert delivery.attempts == 1 and "configured failure 1" in (delivery.last_error or "")
    assert clock.now() + 1.5 < delivery.next_attempt_at < clock.now() + 2.5
    await sender.deliver_due()  # not due yet: nothing happens
    assert RecordingChannel.attempts["mail"] == 1
    for _ in range(2):
        clock.advance(10)
        await sender.deliver_due()
    assert len(RecordingChannel.sent["mail"]) == 1
    assert store.get_delivery("n1").status is DeliveryStatus.SENT  # type: ignore[union-attr]


async def test_retry_after_from_the_server_is_honoured() -> None:
    assert retry_delay(1, retry_after=60) == 60
    assert 1.5 < retry_delay(1) < 2.5
    assert retry_delay(30) <= 300 * 1.2


async def test_a_permanent_failure_stops_and_goes_to_the_fallback(store: Store) -> None:
    clock = FakeClock()
    enqueue(store, "mail", clock)
    sender = OutboxSender(store, channels(
        mail={"fail_times": 1, "permanent": True, "fallback": "backup"}, backup={}), clock)
    await sender.deliver_due()
    await sender.deliver_due()
    failed = store.get_delivery("n1")
    assert failed is not None and failed.status is DeliveryStatus.FAILED
    assert failed.attempts == 1
    fallback = store.get_delivery("n1~backup")
    assert fallback is not None and fallback.fallback_of == "n1"
    assert fallback.status is DeliveryStatus.SENT
    assert [n.key for n in RecordingChannel.sent["backup"]] == ["n1~backup"]


async def test_exhausted_retries_fail_and_fall_back(store: Store) -> None:
    clock = FakeClock()
    enqueue(store, "mail", clock)
    sender = OutboxSender(store, channels(
        mail={"fail_times": 100, "fallback": "backup"}, backup={}), clock)
    for _ in range(MAX_ATTEMPTS):
        await sender.deliver_due()
        clock.advance(3600)
    await sender.deliver_due()
    assert store.get_delivery("n1").status is DeliveryStatus.FAILED  # type: ignore[union-attr]
    assert RecordingChannel.attempts["mail"] == MAX_ATTEMPTS
    assert len(RecordingChannel.sent["backup"]) == 1


async def test_a_channel_removed_from_the_config_fails_clearly(store: Store) -> None:
    clock = FakeClock()
    enqueue(store, "gone", clock)
    sender = OutboxSender(store, channels(mail={}), clock)
    await sender.deliver_due()
    delivery = store.get_delivery("n1")
    assert delivery is not None and delivery.status is DeliveryStatus.FAILED
    assert delivery.last_error == "no channel named 'gone' in the config"


async def test_an_enqueued_key_is_delivered_once_even_if_enqueued_twice(store: Store) -> None:
    clock = FakeClock()
    enqueue(store, "mail", clock)
    enqueue(store, "mail", clock)  # a replay after a crash: same idempotency key
    sender = OutboxSender(store, channels(mail={}), clock)
    await sender.deliver_due()
    assert len(RecordingChannel.sent["mail"]) == 1


async def test_concurrent_passes_never_send_an_entry_twice(store: Store) -> None:
    clock = FakeClock()
    for index in range(20):
        enqueue(store, "mail", clock, key=f"n{index}")
    sender = OutboxSender(store, channels(mail={}), clock)
    await asyncio.gather(*(sender.deliver_due() for _ in range(3)))
    assert sorted(n.key for n in RecordingChannel.sent["mail"]) == sorted(
        f"n{index}" for index in range(20))
