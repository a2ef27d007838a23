"""Fixtures for the action tests: a strict fake Render API, a client of it, an alert request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.render import FakeRender
from tocsin.alerting.model import Severity
from tocsin.platforms.render import RenderConfig, RenderPlatform
from tocsin.remediation import ActionRequest, PlatformHandle

API_KEY = "rnd_remediation_key_9f8e7d"
SERVICE_ID = "srv-backend"


@pytest.fixture
async def render() -> AsyncIterator[FakeRender]:
    async with FakeRender(api_key=API_KEY) as fake:
        fake.add_service(SERVICE_ID, "backend")
        yield fake


@pytest.fixture
async def client(render: FakeRender) -> AsyncIterator[RenderPlatform]:
    config = RenderConfig(type="render", api_key=API_KEY, base_url=render.url, timeout="2s")
    platform = RenderPlatform("render", config, jitter=lambda low, high: 0.0)
    yield platform
    await platform.close()


def alert_request(platform: PlatformHandle | None = None) -> ActionRequest:
    return ActionRequest(
        fingerprint="backend-http:up", check="backend-http", service="backend",
        severity=Severity.P1, summary="backend is down", message="HTTP 503 from /health",
        value=503.0, labels={"team": "core"}, platform=platform)


@pytest.fixture
def request_for(client: RenderPlatform) -> ActionRequest:
    return alert_request(PlatformHandle(client, SERVICE_ID))
