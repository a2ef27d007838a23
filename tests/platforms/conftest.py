"""Fixtures for the platform tests: a strict fake Render API and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.render import FakeRender
from tocsin.platforms.render import RenderConfig, RenderPlatform

API_KEY = "rnd_test_key_123"


class FakeMonotonic:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def render() -> AsyncIterator[FakeRender]:
    async with FakeRender(api_key=API_KEY) as fake:
        fake.add_service("srv-backend", "backend")
        yield fake


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
async def client(render: FakeRender, clock: FakeMonotonic) -> AsyncIterator[RenderPlatform]:
    config = RenderConfig(type="render", api_key=API_KEY, base_url=render.url, timeout="2s")
    platform = RenderPlatform("render", config, clock=clock, wall_clock=lambda: 1_800_000_000.0,
                              jitter=lambda low, high: 0.0)
    yield platform
    await platform.close()
