"""The remediation orchestrator end to end over a real SQLite store, the fake Render API and a
local target: act once on a confirmed alert, verify with a real re-check, notify, budget, audit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Target
from tests.fakes.render import FakeRender
from tests.remediation.conftest import API_KEY, SERVICE_ID
from tocsin.alerting.clock import SystemClock
from tocsin.alerting.model import NotificationKind
from tocsin.alerting.pipeline import Alerting
from tocsin.config import load_config_text
from tocsin.probes import CheckResult, Probe, ProbeContext
from tocsin.remediation.audit import AttemptState, RemediationAttempt
from tocsin.remediation.base import PlatformHandle
from tocsin.remediation.orchestrator import Remediator
from tocsin.runtime import build_probes
from tocsin.scheduler import run_bounded
from tocsin.store import Store, open_store
from tocsin.testing import RecordingChannel

FINGERPRINT_CHECK = "api"


def config_text(target: Target, render: FakeRender, mode: str = "active") -> str:
    return f"""\
channels:
  mail: {{type: recording}}
  boss: {{type: recording}}
policies:
  P1: {{channels: [mail], escalation: [boss]}}
platforms:
  render: {{type: render, api_key: "${{RENDER_API_KEY}}", base_url: "{render.url}"}}
remediation:
  mode: {mode}
  restart: {{action: platform.restart, verify_after: 0.2s, max_attempts: 3, per: 1h}}
services:
  backend:
    url: {target.url}
    platform: {{name: render, service_id: {SERVICE_ID}}}
    checks:
      - type: http
        name: api
        path: /health
        timeout: 1s
        alerts: [{{when: down, severity: P1, confirm: 0, recover: 1, remediate: restart}}]
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'tocsin.db'}")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
async def render() -> AsyncIterator[FakeRender]:
    async with FakeRender(api_key=API_KEY) as fake:
        fake.add_service(SERVICE_ID, "backend")
        yield fake


@dataclass
class Harness:
    alerting: Alerting
    remediator: Remediator
    probe: Probe[Any]
    store: Store

    async def observe(self) -> CheckResult:
        result = await run_bounded(self.probe)
        self.alerting.engine.observe(result)
        return result

    async def settle(self) -> None:
        await self.remediator.wait_idle()
        await self.alerting.writer.flush()
        await self.alerting.sender.deliver_due()

    def notices(self, channel: str = "mail") -> list[tuple[NotificationKind, str]]:
        return [(n.kind, n.alerts[0].summary if n.alerts else n.subject)
                for n in RecordingChannel.sent.get(channel, [])]


async def harness(store: Store, target: Target, render: FakeRender,
                  mode: str = "active") -> AsyncIterator[Harness]:
    RecordingChannel.reset()
    loaded = load_config_text(config_text(target, render, mode), "t.yaml",
                              env={"RENDER_API_KEY": API_KEY})
    context = ProbeContext()
    probes = {probe.spec.name: probe for probe in build_probes(loaded.checks, context)}

    async def recheck(check: str) -> CheckResult:
        return await run_bounded(probes[check])

    def platform_for(check: str) -> PlatformHandle | None:
        spec = probes[check].spec
        assert spec.platform is not None
        return PlatformHandle(context.platforms.client(spec.platform), spec.platform.service_id)

    alerting = Alerting(loaded, store, SystemClock(), probe_recheck=recheck,
                        platform_for=platform_for)
    assert alerting.remediator is not None
    await alerting.start()
    yield Harness(alerting, alerting.remediator, probes[FINGERPRINT_CHECK], store)
    await alerting.stop()
    await context.close()
    RecordingChannel.reset()


@pytest.fixture
async def h(store: Store, target: Target, render: FakeRender) -> AsyncIterator[Harness]:
    async for built in harness(store, target, render):
        yield built


def restarts(render: FakeRender) -> list[str]:
    return [path for path in render.paths() if path.endswith("/restart")]


def attempts(store: Store) -> list[RemediationAttempt]:
    found, _ = store.list_attempts("backend")
    return list(reversed(found))  # oldest first


async def test_down_restart_brings_it_back_and_recovered_is_sent(
        h: Harness, target: Target, render: FakeRender) -> None:
    def bring_back() -> None:
        target.health_status = 200

    render.on_restart(SERVICE_ID, bring_back, delay=0.05)
    target.health_status = 503
    await h.observe()
    await h.settle()
    assert restarts(render) == [f"POST /services/{SERVICE_ID}/restart"]
    kinds = [kind for kind, _ in h.notices()]
    assert kinds == [NotificationKind.FIRING, NotificationKind.REMEDIATION,
                     NotificationKind.RECOVERED]
    texts = [text for _, text in h.notices()]
    assert texts[1] == "remediation started: platform.restart for backend"
    assert texts[2].startswith("backend is back after restart (took ")
    assert not RecordingChannel.sent.get("boss")
    [attempt] = attempts(h.store)
    assert attempt.state is AttemptState.RECOVERED
    assert attempt.duration_s is not None and attempt.duration_s >= 0.2
    assert attempt.inputs["service_id"] == SERVICE_ID
    assert API_KEY not in repr(attempt)


async def test_a_broken_restart_fails_verification_and_escalates(
        h: Harness, target: Target, render: FakeRender) -> None:
    render.break_restarts(SERVICE_ID)
    target.health_status = 503
    await h.observe()
    await h.settle()
    assert len(restarts(render)) == 1
    assert [kind for kind, _ in h.notices()] == [
        NotificationKind.FIRING, NotificationKind.REMEDIATION, NotificationKind.RECOVERY_FAILED]
    assert h.notices()[2][1].startswith("RECOVERY FAILED: backend is still down after restart")
    assert [kind for kind, _ in h.notices("boss")] == [NotificationKind.RECOVERY_FAILED]
    assert h.alerting.engine.alerts[next(iter(h.alerting.engine.alerts))].escalated
    [attempt] = attempts(h.store)
    assert attempt.state is AttemptState.FAILED and attempt.verification


async def test_a_platform_error_is_recovery_failed_without_verifying(
        h: Harness, target: Target, render: FakeRender) -> None:
    render.fail_next(404)
    target.health_status = 503
    await h.observe()
    await h.settle()
    assert [kind for kind, _ in h.notices()][-1] is NotificationKind.RECOVERY_FAILED
    [attempt] = attempts(h.store)
    assert attempt.state is AttemptState.FAILED and attempt.error


async def test_the_fourth_attempt_in_the_window_is_not_made(
        h: Harness, target: Target, render: FakeRender) -> None:
    now = h.alerting.clock.now()
    for ago in (300, 200, 100):
        h.store.add_attempt(RemediationAttempt(
            service="backend", fingerprint="x", policy="restart", action="platform.restart",
            started_at=now - ago, state=AttemptState.FAILED, finished_at=now - ago + 1))
    target.health_status = 503
    await h.observe()
    await h.settle()
    assert restarts(render) == []
    kinds = [kind for kind, _ in h.notices()]
    assert kinds == [NotificationKind.FIRING, NotificationKind.REMEDIATION_EXHAUSTED]
    assert "remediation exhausted — needs a person" in h.notices()[1][1]
    assert "backend" in h.store.disabled_services()
    assert attempts(h.store)[-1].state is AttemptState.REFUSED


async def test_two_alerts_of_one_service_make_one_action(
        h: Harness, target: Target, render: FakeRender) -> None:
    render.on_restart(SERVICE_ID, lambda: setattr(target, "health_status", 200), delay=0.05)
    target.health_status = 503
    await h.observe()
    [alert] = h.alerting.engine.alerts.values()
    rule = h.alerting.engine._rules["api"][0].rule
    h.remediator.on_firing(alert.copy(), rule)  # a second alert of the same service, at once
    await h.settle()
    assert len(restarts(render)) == 1
    states = sorted(attempt.state.value for attempt in attempts(h.store))
    assert states == ["recovered", "refused"]


async def test_recovered_by_itself_before_acting_means_no_action(
        h: Harness, target: Target, render: FakeRender) -> None:
    target.health_status = 503
    down = await run_bounded(h.probe)
    target.health_status = 200
    up = await run_bounded(h.probe)
    h.alerting.engine.observe(down)
    h.alerting.engine.observe(up)  # before the remediation task got to act
    await h.settle()
    assert restarts(render) == []
    [attempt] = attempts(h.store)
    assert attempt.state is AttemptState.REFUSED
    assert attempt.error == "the service recovered by itself"


async def test_passive_mode_only_says_what_it_would_do(
        store: Store, target: Target, render: FakeRender) -> None:
    async for built in harness(store, target, render, mode="passive"):
        target.health_status = 503
        await built.observe()
        await built.settle()
        assert restarts(render) == []
        assert built.notices()[-1] == (
            NotificationKind.REMEDIATION, "passive mode: would run platform.restart for backend")
        assert attempts(store)[0].state is AttemptState.PASSIVE


async def test_an_interrupted_attempt_is_verified_again_without_acting(
        store: Store, target: Target, render: FakeRender) -> None:
    store.add_attempt(RemediationAttempt(
        service="backend", fingerprint="api:up", policy="restart", action="platform.restart",
        started_at=SystemClock().now() - 1, state=AttemptState.ACTED,
        inputs={"check": "api"}))
    target.health_status = 200
    async for built in harness(store, target, render):
        await built.settle()
        await asyncio.sleep(0)
        assert restarts(render) == []
        [attempt] = attempts(store)
        assert attempt.state is AttemptState.INTERRUPTED
        assert attempt.verification and attempt.verification.startswith("ok")
        assert store.unfinished_attempts() == []
