"""The assembled alerting stage over a real SQLite store: channel health raises its own alert."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tocsin.alerting.model import DeliveryStatus, NotificationKind, Severity
from tocsin.alerting.outbox import FAILING_AFTER
from tocsin.alerting.pipeline import Alerting
from tocsin.config import load_config_text
from tocsin.probes import CheckResult, CheckStatus
from tocsin.store import Store, open_store
from tocsin.testing import FakeClock, RecordingChannel

CONFIG = """\
channels:
  broken: {type: recording, fail_times: 1000, permanent: true}
  working: {type: recording}
policies:
  P3: {channels: [broken]}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
async def alerting(store: Store) -> AsyncIterator[Alerting]:
    RecordingChannel.reset()
    stage = Alerting(load_config_text(CONFIG, "t.yaml", env={}), store, FakeClock())
    await stage.start()
    yield stage
    await stage.stop()
    RecordingChannel.reset()


async def test_a_channel_that_keeps_failing_raises_a_p2_through_the_others(
        alerting: Alerting, store: Store) -> None:
    for _ in range(FAILING_AFTER):
        alerting.engine.drill(Severity.P3)
        await alerting.writer.flush()
        await alerting.sender.deliver_due()
    assert alerting.sender.health["broken"].failing
    await alerting.writer.flush()
    await alerting.sender.deliver_due()
    alert = alerting.engine.alerts["tocsin:channel:broken:failing"]
    assert alert.state.value == "firing" and alert.severity is Severity.P2
    sent = RecordingChannel.sent["working"]
    assert [n.kind for n in sent] == [NotificationKind.FIRING]
    assert "broken" in sent[0].alerts[0].summary
    failed, total = store.list_deliveries(DeliveryStatus.FAILED, "broken", 10, 0)
    assert total == FAILING_AFTER
    assert failed[0].last_error and "configured failure" in failed[0].last_error


async def test_a_restart_keeps_what_the_next_digest_will_say(store: Store) -> None:
    RecordingChannel.reset()
    config = load_config_text(
        "channels: {mail: {type: recording}}\n"
        "services:\n  api:\n    url: http://127.0.0.1:9\n    checks:\n"
        "      - {type: http, name: api, alerts: [{when: down, severity: P4, confirm: 0}]}\n",
        "t.yaml", env={})
    clock = FakeClock(1_800_000_000.0 - 3600)  # 07:00 UTC; the P4 digest is due at 09:00
    first = Alerting(config, store, clock)
    first.engine.configure(first.engine.settings, config.checks)
    await first.start()
    first.engine.observe(CheckResult(check="api", status=CheckStatus.ERROR,
                                     started_at=clock.now(), message="refused"))
    await first.stop()  # the process ends before 09:00

    clock.advance(1800)
    second = Alerting(config, store, clock)
    await second.start()
    clock.set(1_800_000_000.0 + 3600 + 1)  # 09:00:01
    second.engine.tick()
    await second.writer.flush()
    await second.sender.deliver_due()
    await second.stop()
    digests = [n for n in RecordingChannel.sent["mail"] if n.kind is NotificationKind.DIGEST]
    assert len(digests) == 1, [(d.key, d.alerts) for d in digests]
    assert [a.fingerprint for a in digests[0].alerts] == ["api:down"]
    RecordingChannel.reset()


async def test_pagerduty_is_triggered_acknowledged_and_resolved_by_the_lifecycle(
        store: Store) -> None:
    from fakes.pagerduty import FakePagerDuty

    async with FakePagerDuty() as pagerduty:
        config = load_config_text(
            f"channels: {{pd: {{type: pagerduty, routing_key: '{'k' * 32}',"
            f" base_url: '{pagerduty.url}'}}}}\n"
            "services:\n  api:\n    url: http://127.0.0.1:9\n    checks:\n"
            "      - {type: http, name: api, alerts: [{when: down, severity: P1, confirm: 0,"
            " recover: 1}]}\n", "t.yaml", env={})
        clock = FakeClock()
        stage = Alerting(config, store, clock)
        await stage.start()

        async def result(ok: bool) -> None:
            clock.advance(10)
            stage.engine.observe(CheckResult(
                check="api", status=CheckStatus.OK if ok else CheckStatus.ERROR,
                started_at=clock.now(), message="ok" if ok else "refused"))
            await stage.writer.flush()
            await stage.sender.deliver_due()

        await result(ok=False)
        stage.engine.acknowledge("api:down", "alice")
        await stage.writer.flush()
        await stage.sender.deliver_due()
        await result(ok=True)
        await stage.stop()
    assert [(e["event_action"], e["dedup_key"]) for e in pagerduty.events] == [
        ("trigger", "api:down"), ("acknowledge", "api:down"), ("resolve", "api:down")]
    assert pagerduty.events[0]["payload"]["severity"] == "critical"
