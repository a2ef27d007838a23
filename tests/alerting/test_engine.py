"""The alert engine, rule by rule of SEMANTICS.md, on a fake clock (no sleeps)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tocsin.alerting.engine import AlertEngine, AlertingBatch, EngineSettings
from tocsin.alerting.model import (
    AlertState,
    Delivery,
    Matcher,
    MatchOp,
    NotificationKind,
    Severity,
    Silence,
)
from tocsin.config import LoadedConfig, load_config_text
from tocsin.probes import CheckResult, CheckStatus
from tocsin.testing import FakeClock

CONFIG = """\
channels:
  email: {type: recording}
  chat: {type: recording}
  pager: {type: recording}
policies:
  P1: {channels: [email, chat], escalation: [pager], escalate_after: 5m}
  P2: {channels: [email, chat]}
  P3: {channels: [email]}
  P4: {channels: [email], digest: "0 9 * * *"}
services:
  backend:
    url: http://127.0.0.1:9
    checks:
      - type: http
        name: api
        path: /health
        alerts:
          - {when: down, severity: P1}
          - {when: "response_time > 1000ms", severity: P2}
      - {type: http, name: api-2, path: /two, alerts: [{when: down, severity: P2}]}
      - {type: http, name: api-3, path: /three, alerts: [{when: down, severity: P1}]}
      - {type: http, name: minor, path: /minor, alerts: [{when: down, severity: P4, confirm: 0}]}
  frontend:
    url: http://127.0.0.1:9
    checks:
      - {type: http, name: web, path: /, alerts: [{when: down, severity: P1}]}
"""


class Harness:
    """An engine on a fake clock, its persisted batches and re-check requests."""

    def __init__(self, config: str = CONFIG) -> None:
        self.loaded: LoadedConfig = load_config_text(config, "test.yaml", env={})
        self.clock = FakeClock()
        self.batches: list[AlertingBatch] = []
        self.rechecks: list[tuple[str, float]] = []
        self.engine = AlertEngine(self.settings(), self.clock, self.batches.append,
                                  lambda name, delay: self.rechecks.append((name, delay)))
        self.engine.configure(self.settings(), self.loaded.checks)

    def settings(self) -> EngineSettings:
        config = self.loaded.config
        return EngineSettings(
            policies=config.policies, channels=tuple(config.channels or {}),
            inhibit=tuple(config.inhibit), maintenance=tuple(config.maintenance),
            base_url="http://127.0.0.1:8080",
            ack_link=lambda fp: f"http://127.0.0.1:8080/ack/{fp}",
        )

    def result(self, check: str, ok: bool, latency: float = 50.0, message: str = "") -> None:
        status = CheckStatus.OK if ok else CheckStatus.ERROR
        values = {"response_time": latency} if ok else {}
        self.engine.observe(CheckResult(
            check=check, status=status, started_at=self.clock.now(), latency_ms=latency,
            message=message or ("ok" if ok else "connection refused"), values=values))

    def deliveries(self) -> list[Delivery]:
        return [d for batch in self.batches for d in batch.deliveries]

    def sent(self, kind: NotificationKind | None = None) -> list[tuple[str, str]]:
        """(kind, channel) of every delivery, optionally of one kind."""
        return [(d.notification.kind.value, d.channel) for d in self.deliveries()
                if kind is None or d.notification.kind is kind]

    def take(self) -> list[Delivery]:
        found = self.deliveries()
        self.batches.clear()
        return found

    def tick_for(self, seconds: float, step: float = 1.0) -> None:
        elapsed = 0.0
        while elapsed < seconds:
            self.clock.advance(step)
            elapsed += step
            self.engine.tick()

    def state(self, fingerprint: str) -> AlertState:
        return self.engine.alerts[fingerprint].state


@pytest.fixture
def h() -> Harness:
    return Harness()


def _down_and_confirm(h: Harness, check: str = "api") -> None:
    h.result(check, ok=False)
    h.clock.advance(2)
    h.result(check, ok=False)


def test_down_is_confirmed_by_a_quick_recheck_before_paging(h: Harness) -> None:
    h.result("api", ok=False)
    assert h.state("api:down") is AlertState.PENDING
    assert h.deliveries() == []
    assert h.rechecks == [("api", 2.0)]
    h.clock.advance(2)
    h.result("api", ok=False)
    assert h.state("api:down") is AlertState.FIRING
    sent = h.take()
    assert [(d.notification.kind, d.channel) for d in sent] == [
        (NotificationKind.FIRING, "email"), (NotificationKind.FIRING, "chat")]
    note = sent[0].notification
    assert note.high_priority and note.severity.value == "P1"
    assert note.alerts[0].ack_url == "http://127.0.0.1:8080/ack/api:down"
    assert note.alerts[0].message == "connection refused"
    assert sent[0].key != sent[1].key


def test_pending_that_clears_never_notifies(h: Harness) -> None:
    h.result("api", ok=False)
    h.clock.advance(2)
    h.result("api", ok=True)
    assert h.state("api:down") is AlertState.INACTIVE
    h.tick_for(3600, step=60)
    assert h.deliveries() == []


def test_repeats_only_after_the_repeat_window(h: Harness) -> None:
    _down_and_confirm(h)
    h.take()
    h.tick_for(14 * 60 + 50, step=10)
    assert h.sent(NotificationKind.REPEAT) == []
    h.tick_for(20, step=10)
    assert h.sent(NotificationKind.REPEAT) == [("repeat", "email"), ("repeat", "chat")]


def test_escalates_when_unacknowledged(h: Harness) -> None:
    _down_and_confirm(h)
    h.take()
    h.tick_for(4 * 60 + 50, step=10)
    assert h.sent() == []
    h.tick_for(20, step=10)
    assert h.sent() == [("escalation", "pager")]
    h.take()
    h.tick_for(30 * 60, step=60)
    assert h.sent(NotificationKind.ESCALATION) == []  # escalates once


def test_acknowledge_stops_repeats_and_escalation_until_the_ack_times_out(h: Harness) -> None:
    _down_and_confirm(h)
    h.take()
    h.clock.advance(60)
    acked = h.engine.acknowledge("api:down", "alice")
    assert acked is not None and acked.state is AlertState.ACKNOWLEDGED
    assert h.batches[-1].events[-1].note == "acknowledged by alice"
    h.take()
    h.tick_for(29 * 60, step=60)
    assert h.sent() == []
    h.tick_for(120, step=60)  # the ack lasted 30 minutes: firing again, and said so
    assert h.state("api:down") is AlertState.FIRING
    assert h.sent() == [("repeat", "email"), ("repeat", "chat")]


def test_resolution_is_notified_once_and_closes_the_incident(h: Harness) -> None:
    _down_and_confirm(h)
    h.take()
    h.clock.advance(30)
    h.result("api", ok=True)
    assert h.state("api:down") is AlertState.FIRING  # recover: 2
    h.clock.advance(30)
    h.result("api", ok=True)
    assert h.state("api:down") is AlertState.RESOLVED
    sent = h.take()
    assert [(d.notification.kind.value, d.channel) for d in sent] == [
        ("resolved", "email"), ("resolved", "chat")]
    assert sent[0].notification.alerts[0].duration_s == 60
    assert h.engine.incidents == {}
    h.result("api", ok=True)
    h.tick_for(3600, step=60)
    assert h.sent() == []


def test_silenced_alert_is_recorded_not_notified_and_notifies_when_the_silence_ends(
        h: Harness) -> None:
    now = h.clock.now()
    h.engine.add_silence(Silence(
        id="s1", matchers=(Matcher("service", MatchOp.EQUAL, "backend"),), starts_at=now,
        ends_at=now + 600, created_by="bob", comment="deploying", created_at=now))
    _down_and_confirm(h)
    alert = h.engine.alerts["api:down"]
    assert alert.state is AlertState.FIRING and alert.silenced
    assert any(b.events for b in h.batches)  # recorded
    assert h.sent() == []
    h.tick_for(590, step=10)
    assert h.sent() == []
    h.tick_for(20, step=10)
    assert h.sent() == [("firing", "email"), ("firing", "chat")]


def test_a_down_service_inhibits_its_own_latency_alert(h: Harness) -> None:
    _down_and_confirm(h)
    h.take()
    h.result("api", ok=True, latency=5000)  # slow, not down: one success toward recovery
    alert = h.engine.alerts["api:response_time"]
    assert alert.state is AlertState.FIRING
    assert alert.inhibited
    assert h.sent() == []


def test_later_alerts_of_an_incident_go_out_as_one_update(h: Harness) -> None:
    _down_and_confirm(h, "api")
    h.take()
    _down_and_confirm(h, "api-3")  # P1 too, same service: joins the incident
    assert h.sent() == []
    h.tick_for(5 * 60, step=10)
    assert h.sent(NotificationKind.UPDATE) == [("update", "email"), ("update", "chat")]


def test_another_service_opens_its_own_incident(h: Harness) -> None:
    _down_and_confirm(h, "api")
    _down_and_confirm(h, "web")
    assert h.sent(NotificationKind.FIRING) == [("firing", "email"), ("firing", "chat")] * 2
    assert set(h.engine.incidents) == {"backend", "frontend"}


def test_a_thousand_alerts_make_one_page_and_one_update() -> None:
    checks = "\n".join(
        f"      - {{type: http, name: c{i}, path: /{i}, alerts: [{{when: down, severity: P2}}]}}"
        for i in range(1000))
    config = CONFIG.split("services:")[0] + (
        "services:\n  big:\n    url: http://127.0.0.1:9\n    checks:\n" + checks + "\n")
    h = Harness(config)
    for i in range(1000):
        h.result(f"c{i}", ok=False)
    h.clock.advance(2)
    for i in range(1000):
        h.result(f"c{i}", ok=False)
    h.tick_for(5 * 60 + 1, step=10)
    kinds = h.sent()
    assert kinds == [("firing", "email"), ("firing", "chat"),
                     ("update", "email"), ("update", "chat")]
    update = h.deliveries()[-1].notification
    assert len(update.alerts) == 999


def test_flapping_holds_problem_notifications_and_sends_one_notice(h: Harness) -> None:
    config = CONFIG.replace("{when: down, severity: P1}\n",
                            "{when: down, severity: P1, confirm: 0, recover: 1}\n", 1)
    h = Harness(config)
    for i in range(12):
        h.result("api", ok=i % 2 == 1)
        h.clock.advance(30)
    sent = h.sent()
    flapping = h.sent(NotificationKind.FLAPPING)
    assert flapping == [("flapping", "email"), ("flapping", "chat")]
    assert h.engine.alerts["api:down"].flapping
    pages_after_flapping = sent[sent.index(("flapping", "email")) + 2:]
    assert not any(kind == "firing" for kind, _ in pages_after_flapping)


def test_p4_goes_to_the_daily_digest_with_counts(h: Harness) -> None:
    h.clock.set(1_800_000_000.0 - 8 * 3600 + 3600)  # 2027-01-15 01:00 UTC
    h.engine.configure(h.settings(), h.loaded.checks)
    h.result("minor", ok=False)
    assert h.state("minor:down") is AlertState.FIRING
    assert h.sent() == []
    h.tick_for(8 * 3600 - 60, step=60)
    assert h.sent() == []
    h.tick_for(120, step=60)  # 09:00 UTC
    assert h.sent() == [("digest", "email")]
    digest = h.deliveries()[0].notification
    assert len(digest.alerts) == 1 and digest.counts == {"firing": 1}


def test_a_restart_does_not_repage_and_still_resolves(h: Harness) -> None:
    _down_and_confirm(h)
    h.take()
    saved: dict[str, Any] = {}
    for alert in h.engine.alerts.values():
        saved[alert.fingerprint] = alert.copy()
    incidents = list(h.engine.incidents.values())
    again = Harness()
    again.clock.set(h.clock.now() + 60)
    again.engine.restore(saved.values(), incidents)
    again.result("api", ok=False)
    again.tick_for(60)
    assert again.sent() == []
    again.result("api", ok=True)
    again.clock.advance(10)
    again.result("api", ok=True)
    assert again.sent() == [("resolved", "email"), ("resolved", "chat")]


def test_clock_jumps_neither_crash_nor_flood(h: Harness) -> None:
    _down_and_confirm(h)
    h.take()
    h.clock.set(h.clock.now() - 3600)  # corrected backwards
    h.tick_for(600, step=60)
    assert h.sent() == []
    h.clock.set(h.clock.now() + 10 * 3600)  # forward by hours: one repeat, not forty
    h.engine.tick()
    h.engine.tick()
    assert h.sent(NotificationKind.REPEAT) == [("repeat", "email"), ("repeat", "chat")]


def test_a_more_severe_alert_joining_an_incident_pages_at_once(h: Harness) -> None:
    _down_and_confirm(h, "api-2")  # P2 opens the incident
    h.take()
    _down_and_confirm(h, "api")  # P1 joins: pages now, not in an update
    assert h.sent() == [("firing", "email"), ("firing", "chat")]
    assert h.deliveries()[0].notification.severity.value == "P1"


def test_a_new_silence_flags_alerts_already_firing_and_stops_their_repeats(h: Harness) -> None:
    _down_and_confirm(h)
    h.take()
    now = h.clock.now()
    h.engine.add_silence(Silence(
        id="s2", matchers=(Matcher("alertname", MatchOp.EQUAL, "down"),), starts_at=now,
        ends_at=now + 3600, created_by="bob", comment="", created_at=now))
    assert h.engine.alerts["api:down"].silenced
    assert [a.fingerprint for a in h.batches[-1].alerts] == ["api:down"]
    h.tick_for(30 * 60, step=60)
    assert h.sent() == []


def test_acknowledgement_is_told_to_channels_that_track_it(h: Harness) -> None:
    h.engine.settings = replace(h.settings(), ack_channels=("chat",))
    _down_and_confirm(h)
    h.take()
    h.engine.acknowledge("api:down", "alice")
    assert h.sent() == [("acknowledged", "chat")]


def test_a_condition_reported_by_tocsin_fires_and_resolves_avoiding_a_channel(
        h: Harness) -> None:
    report = h.engine.report_condition
    report("tocsin:channel:chat:failing", True, severity=Severity.P2, service="tocsin",
           check="channel:chat", summary="channel chat is failing", avoid_channels=["chat"])
    assert h.sent() == [("firing", "email")]
    h.take()
    report("tocsin:channel:chat:failing", False, severity=Severity.P2, service="tocsin",
           check="channel:chat", summary="channel chat is failing", avoid_channels=["chat"])
    assert h.sent() == [("resolved", "email")]


def test_a_drill_goes_to_the_policy_channels_or_one_channel(h: Harness) -> None:
    deliveries = h.engine.drill(Severity.P1)
    assert [(d.notification.kind.value, d.channel) for d in deliveries] == [
        ("test", "email"), ("test", "chat")]
    assert "DRILL" in deliveries[0].notification.alerts[0].summary
    assert [d.channel for d in h.engine.drill(Severity.P4, "pager")] == ["pager"]
