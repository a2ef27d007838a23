"""End to end: a Runtime in this event loop, a deploy check against the fake Render API.

A failed deploy fires the `failed` rule (its notification names the deploy and
its commit), the deploy is kept in the store, and a new live deploy resolves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.render import FakeRender
from tocsin.alerting.model import NotificationKind
from tocsin.platforms import DeployStatus
from tocsin.runtime import Runtime
from tocsin.testing import RecordingChannel

API_KEY = "rnd_e2e_key_123"
SERVICE = "srv-backend"


@pytest.fixture(autouse=True)
def forget_recordings() -> Iterator[None]:
    RecordingChannel.reset()
    yield
    RecordingChannel.reset()


@pytest.fixture
async def render() -> AsyncIterator[FakeRender]:
    async with FakeRender(api_key=API_KEY) as fake:
        fake.add_service(SERVICE, "backend")
        yield fake


async def wait_for(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_a_failed_deploy_fires_and_a_live_one_resolves(
        tmp_path: Path, render: FakeRender, monkeypatch: pytest.MonkeyPatch) -> None:
    render.add_deploy(SERVICE, "live", commit_message="Good")
    failed = render.add_deploy(SERVICE, "build_failed", commit_id="badc0ffee123",
                               commit_message="Break the build")
    monkeypatch.setenv("E2E_RENDER_KEY", API_KEY)
    config = tmp_path / "tocsin.yaml"
    config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{enabled: false}}
defaults: {{interval: 1s, timeout: 2s}}
scheduler: {{jitter: false}}
platforms:
  render: {{type: render, api_key: "${{E2E_RENDER_KEY}}", base_url: "{render.url}"}}
channels: {{rec: {{type: recording}}}}
policies:
  P2: {{channels: [rec]}}
services:
  backend:
    platform: {{name: render, service_id: {SERVICE}}}
    checks:
      - type: deploy
        alerts: [{{when: failed, severity: P2, retry_interval: 1s}}]
""")
    runtime = Runtime(config)
    task = asyncio.create_task(runtime.run())
    try:
        await asyncio.wait_for(runtime.ready.wait(), 10)
        sent = RecordingChannel.sent
        await wait_for(lambda: any(n.kind is NotificationKind.FIRING
                                   for n in sent.get("rec", [])))
        [firing] = [n for n in sent["rec"] if n.kind is NotificationKind.FIRING]
        [alert] = firing.alerts
        assert alert.fingerprint == "backend:deploy:failed"
        assert failed["id"] in alert.message and "badc0ffee123" in alert.message
        assert "Break the build" in alert.message

        render.add_deploy(SERVICE, "live", commit_message="Fix the build")
        await wait_for(lambda: any(n.kind is NotificationKind.RESOLVED for n in sent["rec"]))
        assert [n.kind for n in sent["rec"]] == [NotificationKind.FIRING,
                                                 NotificationKind.RESOLVED]
        store = runtime.require_store()
        recorder = runtime.deploys
        assert recorder is not None
        await recorder.flush()
        stored = await asyncio.to_thread(store.list_deploys, "backend")
        assert len(stored) == 3
        assert stored[0].status is DeployStatus.LIVE
        assert stored[1].deploy_id == failed["id"]
        assert stored[1].status is DeployStatus.BUILD_FAILED
        # Every request named the key; none went anywhere but the fake.
        assert all(r.headers["Authorization"] == f"Bearer {API_KEY}" for r in render.requests)
        assert {r.path for r in render.requests} == {"/services/srv-backend/deploys"}
    finally:
        runtime.request_stop()
        await asyncio.wait_for(task, 10)
