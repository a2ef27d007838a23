"""Fixtures for probe tests: a shared ProbeContext and a quick way to build an HTTP probe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tocsin.probes import CheckSpec, ProbeContext
from tocsin.probes.http import HTTPCheckConfig, HTTPProbe

MakeHTTPProbe = Callable[..., HTTPProbe]


@pytest.fixture
async def context() -> AsyncIterator[ProbeContext]:
    context = ProbeContext()
    yield context
    await context.close()


@pytest.fixture
def http_probe(context: ProbeContext) -> MakeHTTPProbe:
    """``http_probe(service_url, timeout=1.0, **config)`` → an HTTPProbe on the shared context."""

    def make(service_url: str | None, timeout: float = 1.0, **config: Any) -> HTTPProbe:
        spec = CheckSpec(
            name="svc http",
            service="svc",
            service_url=service_url,
            interval=10.0,
            timeout=timeout,
            config=HTTPCheckConfig.model_validate({"type": "http", **config}),
        )
        return HTTPProbe(spec, context)

    return make
