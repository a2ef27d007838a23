"""The durable outbox: every notification is in the store before a channel sees it.

Two small workers over the store:

- :class:`AlertingWriter` persists the engine's batches in order, each in one
  transaction (alert states + events + incidents + outbox entries), then wakes
  the sender. A store error keeps the batch and retries it; nothing is dropped.
  While the store is down, the notifications of the batches it holds are
  sent once straight through their channels (:meth:`OutboxSender.send_unsaved`),
  so that pages go out during a store outage; each is saved later with the
  outcome of that attempt (sent, or pending for the outbox to retry).
- :class:`OutboxSender` delivers due entries: success marks them sent; a
  transient :class:`DeliveryError` schedules a retry with exponential backoff
  (honouring ``retry_after``); a permanent one, or running out of attempts,
  marks the entry failed and enqueues it on the channel's ``fallback``.

Delivery is at least once: a crash between a send and its mark resends the
same notification with the same idempotency key (the email Message-ID).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tocsin.alerting.clock import Clock
from tocsin.alerting.engine import AlertingBatch
from tocsin.alerting.model import Delivery, DeliveryStatus
from tocsin.channels import Channel, DeliveryError
from tocsin.store import Store, StoreError

log = logging.getLogger(__name__)

RETRY_INITIAL = 2.0  # seconds before the first retry
RETRY_MAX = 300.0  # longest wait between retries
MAX_ATTEMPTS = 10  # then the entry fails (and goes to the fallback, if any)


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter; a server's ``Retry-After`` wins when longer."""
    delay: float = min(RETRY_MAX, RETRY_INITIAL * 2.0 ** max(attempts - 1, 0))
    delay *= random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


class AlertingWriter:
    """Persists engine batches, in order, then wakes the sender."""

    def __init__(self, store: Store, on_saved: Callable[[], None],
                 send_unsaved: SendUnsaved | None = None) -> None:
        self.store = store
        self.on_saved = on_saved
        self.send_unsaved = send_unsaved
        self._queue: deque[AlertingBatch] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    def submit(self, batch: AlertingBatch) -> None:
        # Snapshot now: the engine keeps mutating its alerts after handing them over.
        # An alert may appear more than once in a batch; its last state is the one to keep.
        latest = {alert.fingerprint: alert for alert in batch.alerts}
        self._queue.append(AlertingBatch(
            alerts=[alert.copy() for alert in latest.values()], events=list(batch.events),
            incidents=[replace(i) for i in batch.incidents], deliveries=list(batch.deliveries)))
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tocsin-alerting-writer")

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[0]
                try:
                    await asyncio.to_thread(self.store.save_alerting, batch.alerts,
                                            batch.events, batch.incidents, batch.deliveries)
                except StoreError as error:
                    failures += 1
                    self.last_error = str(error)
                    log.error("could not save alert state (attempt %d), retrying: %s",
                              failures, error)
                    await self._send_unsaved()
                    await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
                    continue
                failures = 0
                self.last_error = None
                self._queue.popleft()
                if batch.deliveries:
                    self.on_saved()
            self._idle.set()

    async def _send_unsaved(self) -> None:
        """Try once each notification held here that has never been tried.

        Between two attempts to save, never during one: the save reads the
        same :class:`Delivery` objects this updates.
        """
        untried = [delivery for batch in self._queue for delivery in batch.deliveries
                   if delivery.attempts == 0 and delivery.status is DeliveryStatus.PENDING]
        if untried and self.send_unsaved is not None:
            try:
                await self.send_unsaved(untried)
            except Exception:  # they stay pending: the outbox sends them once they are saved
                log.exception("sending notifications the store could not hold failed")

    async def flush(self) -> None:
        await self._idle.wait()

    async def close(self) -> None:
        if self._queue:
            try:
                await asyncio.wait_for(self.flush(), 10)
            except TimeoutError:
                log.error("%d alert batches could not be saved before stopping", len(self._queue))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


SendUnsaved = Callable[[list[Delivery]], Awaitable[None]]

FAILING_AFTER = 3  # deliveries failed for good in a row before a channel counts as failing


@dataclass
class ChannelHealth:
    """How one channel has been doing since this process started."""

    last_success_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failed_in_a_row: int = 0  # deliveries that failed for good since the last success

    @property
    def failing(self) -> bool:
        return self.failed_in_a_row >= FAILING_AFTER


ChannelWatcher = Callable[[str, ChannelHealth], None]


class OutboxSender:
    """Delivers due outbox entries through their channels, with retries and fallbacks.

    ``on_health`` is told when a channel starts failing (``FAILING_AFTER``
    deliveries in a row failed for good) and when it delivers again.
    """

    def __init__(self, store: Store, channels: Mapping[str, Channel[Any]], clock: Clock, *,
                 concurrency: int = 10, on_health: ChannelWatcher | None = None) -> None:
        self.store = store
        self.channels = dict(channels)
        self.clock = clock
        self._semaphore = asyncio.Semaphore(concurrency)
        self._pass = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.health: dict[str, ChannelHealth] = {}
        self.on_health = on_health

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tocsin-outbox")
        self.wake()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                delay = await self.deliver_due()
            except StoreError as error:
                log.error("outbox: store unavailable, retrying in 5 s: %s", error)
                delay = 5.0
            self._wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def deliver_due(self) -> float:
        """Send every entry that is due; return seconds until the next one (at most 60).

        One pass at a time: two concurrent passes would both read, and both
        send, the same due entries.
        """
        async with self._pass:
            return await self._deliver_due()

    async def _deliver_due(self) -> float:
        while True:
            now = self.clock.now()
            due = await asyncio.to_thread(self.store.due_deliveries, now, 100)
            if not due:
                break
            await asyncio.gather(*(self._deliver(delivery) for delivery in due))
            if len(due) < 100:
                break
        upcoming = await asyncio.to_thread(self.store.next_delivery_at)
        if upcoming is None:
            return 60.0
        return min(60.0, max(0.0, upcoming - self.clock.now()))

    async def _deliver(self, delivery: Delivery) -> None:
        channel = self.channels.get(delivery.channel)
        async with self._semaphore:
            delivery.attempts += 1
            try:
                if channel is None:
                    raise DeliveryError(f"no channel named {delivery.channel!r} in the config",
                                        permanent=True)
                await channel.send(delivery.notification)
            except DeliveryError as error:
                await self._failed(delivery, error, channel)
                return
            except Exception as error:  # a bug in a channel: retry, never lose it
                log.exception("channel %s raised %s", delivery.channel, type(error).__name__)
                await self._failed(delivery, DeliveryError(
                    f"unexpected {type(error).__name__}", permanent=False), channel)
                return
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = self.clock.now()
        delivery.last_error = None
        self.sent += 1
        health = self.health.setdefault(delivery.channel, ChannelHealth())
        was_failing = health.failing
        health.last_success_at = delivery.sent_at
        health.failed_in_a_row = 0
        if was_failing and self.on_health is not None:
            self.on_health(delivery.channel, health)
        await asyncio.to_thread(self.store.update_delivery, delivery)
        log.info("sent %s to %s: %s", delivery.notification.kind.value, delivery.channel,
                 delivery.notification.subject)

    async def _failed(self, delivery: Delivery, error: DeliveryError,
                      channel: Channel[Any] | None) -> None:
        delivery.last_error = str(error)
        self.health.setdefault(delivery.channel, ChannelHealth()).last_error = str(error)
        self.health[delivery.channel].last_error_at = self.clock.now()
        exhausted = delivery.attempts >= MAX_ATTEMPTS
        if not error.permanent and not exhausted:
            self.retried += 1
            delivery.next_attempt_at = self.clock.now() + retry_delay(
                delivery.attempts, error.retry_after)
            log.warning("delivery to %s failed (attempt %d), retrying: %s",
                        delivery.channel, delivery.attempts, error)
            await asyncio.to_thread(self.store.update_delivery, delivery)
            return
        self.failed += 1
        delivery.status = DeliveryStatus.FAILED
        health = self.health.setdefault(delivery.channel, ChannelHealth())
        health.last_error, health.last_error_at = str(error), self.clock.now()
        health.failed_in_a_row += 1
        if health.failed_in_a_row == FAILING_AFTER and self.on_health is not None:
            self.on_health(delivery.channel, health)
        why = "permanently" if error.permanent else f"after {delivery.attempts} attempts"
        log.error("delivery to %s failed %s: %s", delivery.channel, why, error)
        fallback = channel.config.fallback if channel is not None else None
        fallbacks = []
        if fallback and fallback != delivery.channel:
            note = delivery.notification
            fallbacks.append(Delivery(
                notification=replace(note, key=f"{note.key}~{fallback}", channel=fallback),
                next_attempt_at=self.clock.now(), fallback_of=note.key,
            ))
        await asyncio.to_thread(self._fail_and_fall_back, delivery, fallbacks)
        if fallbacks:
            self.wake()

    async def send_unsaved(self, deliveries: list[Delivery]) -> None:
        """Send notifications the store cannot hold yet, once each, straight through the channels.

        Each delivery is updated in place — sent, or left pending with the
        error — and the outbox takes it over once it is saved: a pending one
        is retried (and falls back) as any other. Nothing is read from or
        written to the store here.
        """
        await asyncio.gather(*(self._send_unsaved(delivery) for delivery in deliveries))

    async def _send_unsaved(self, delivery: Delivery) -> None:
        channel = self.channels.get(delivery.channel)
        async with self._semaphore:
            delivery.attempts += 1
            try:
                if channel is None:
                    raise DeliveryError(f"no channel named {delivery.channel!r} in the config",
                                        permanent=True)
                await channel.send(delivery.notification)
            except Exception as error:  # DeliveryError or a bug: the outbox retries it later
                delivery.last_error = str(error) or type(error).__name__
                delivery.next_attempt_at = self.clock.now()
                log.warning("delivery to %s failed while the store is unavailable; the outbox "
                            "retries it once the store is back: %s", delivery.channel, error)
                return
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = self.clock.now()
        self.sent += 1
        log.info("sent %s to %s while the store is unavailable: %s",
                 delivery.notification.kind.value, delivery.channel,
                 delivery.notification.subject)

    def _fail_and_fall_back(self, delivery: Delivery, fallbacks: list[Delivery]) -> None:
        self.store.update_delivery(delivery)
        if fallbacks:
            self.store.save_alerting(deliveries=fallbacks)

    async def close(self) -> None:
        self._stopping = True
        self.wake()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        for channel in self.channels.values():
            await channel.close()
