"""``GET /metrics`` through the real web server of a Runtime, parsed by prometheus_client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Target
from tests.targets import tls_target
from tocsin.probes import CheckResult, CheckSpec, CheckStatus
from tocsin.probes.http import HTTPCheckConfig
from tocsin.runtime import Runtime
from tocsin.store.base import APIToken, TokenScope
from tocsin.web.credentials import issue_token
from tocsin.web.prometheus import Snapshot, render

PING_TOKEN = "backup-ping-token-0123456789"
PUSH_TOKEN = "push-token-for-tests-0123456789"

FAMILIES = {
    "tocsin_check_up", "tocsin_check_latency_seconds", "tocsin_check_last_run_timestamp_seconds",
    "tocsin_tls_days_left", "tocsin_metric_value", "tocsin_alerts_firing",
    "tocsin_heartbeat_up", "tocsin_heartbeat_last_ping_timestamp_seconds",
    "tocsin_scheduler_lag_seconds", "tocsin_scheduler_runs", "tocsin_outbox_pending",
    "tocsin_store_buffer_depth", "tocsin_store_dropped", "tocsin_store_available",
}


@dataclass
class Server:
    runtime: Runtime
    url: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        async with self.http.request(method, self.url + path, **kwargs) as response:
            return response.status, await response.text()

    async def scrape(self, **kwargs: Any) -> dict[str, Metric]:
        status, text = await self.call("GET", "/metrics", **kwargs)
        assert status == 200, text
        return {family.name: family for family in text_string_to_metric_families(text)}


def value(family: Metric, **labels: str) -> float:
    found = [s.value for s in family.samples
             if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (family.name, labels, family.samples)
    return float(found[0])


@pytest.fixture
async def server(tmp_path: Path, target: Target,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    monkeypatch.delenv("TOCSIN_API_TOKEN", raising=False)
    monkeypatch.delenv("TOCSIN_ADMIN_PASSWORD_HASH", raising=False)
    monkeypatch.setenv("BACKUP_PING_TOKEN", PING_TOKEN)
    monkeypatch.setenv("TOCSIN_PUSH_TOKEN", PUSH_TOKEN)
    async with tls_target() as tls:
        tls_port = urlsplit(tls.url).port
        config = tmp_path / "tocsin.yaml"
        config.write_text(f"""\
storage: sqlite:///{tmp_path / 'tocsin.db'}
web: {{port: 0, push_token: "${{TOCSIN_PUSH_TOKEN}}"}}
defaults: {{interval: 1s, timeout: 1s}}
scheduler: {{jitter: false}}
channels: {{rec: {{type: recording}}}}
services:
  backend:
    url: {target.url}
    checks:
      - {{type: http, name: backend-health, path: /health}}
      - type: http
        name: backend-down
        path: /down
        alerts: [{{when: down, severity: P1, confirm: 0}}]
      - {{type: tls, name: backend-cert, host: 127.0.0.1, port: {tls_port}}}
  jobs:
    checks:
      - {{type: heartbeat, name: backup, token: "${{BACKUP_PING_TOKEN}}", period: 1d}}
      - {{type: metric, name: signups, push: true}}
""")
        runtime = Runtime(config)
        task = asyncio.create_task(runtime.run())
        await asyncio.wait_for(runtime.ready.wait(), 10)
        assert runtime.web_address is not None
        host, port = runtime.web_address
        async with aiohttp.ClientSession() as http:
            yield Server(runtime, f"http://{host}:{port}", http)
        runtime.request_stop()
        await asyncio.wait_for(task, 10)


async def test_metrics_has_every_family_with_the_runtime_state(server: Server) -> None:
    status, _ = await server.call("GET", "/ping/" + PING_TOKEN)
    assert status == 200
    status, _ = await server.call("POST", "/api/v1/metrics", json={
        "metrics": [{"name": "signups", "value": 42}]},
        headers={"Authorization": f"Bearer {PUSH_TOKEN}"})
    assert status == 202
    deadline = time.monotonic() + 10
    while True:
        families = await server.scrape()
        ready = (value(families["tocsin_alerts_firing"], severity="P1") == 1
                 and families["tocsin_tls_days_left"].samples
                 and families["tocsin_metric_value"].samples)
        if ready:
            break
        assert time.monotonic() < deadline, families
        await asyncio.sleep(0.1)

    assert families.keys() >= FAMILIES
    up = families["tocsin_check_up"]
    assert value(up, check="backend-health", service="backend", type="http") == 1
    assert value(up, check="backend-down", service="backend", type="http") == 0
    assert value(families["tocsin_alerts_firing"], severity="P2") == 0
    days = value(families["tocsin_tls_days_left"], check="backend-cert")
    assert days > 300  # trustme certificates outlive any test run
    assert value(families["tocsin_metric_value"], check="signups", service="jobs") == 42
    assert value(families["tocsin_heartbeat_up"], check="backup") == 1
    pinged = value(families["tocsin_heartbeat_last_ping_timestamp_seconds"], check="backup")
    assert abs(pinged - time.time()) < 30
    latency = value(families["tocsin_check_latency_seconds"], check="backend-health")
    assert 0 < latency < 1
    last_run = value(families["tocsin_check_last_run_timestamp_seconds"], check="backend-health")
    assert abs(last_run - time.time()) < 30
    assert value(families["tocsin_scheduler_runs"]) >= 3
    assert {s.labels["quantile"] for s in families["tocsin_scheduler_lag_seconds"].samples} \
        == {"0.99", "1"}
    assert value(families["tocsin_outbox_pending"]) >= 0
    assert value(families["tocsin_store_dropped"]) == 0
    assert value(families["tocsin_store_available"]) == 1


async def test_metrics_needs_a_read_token_once_tokens_exist(server: Server) -> None:
    issued = issue_token()
    await asyncio.to_thread(server.runtime.require_store().add_api_token, APIToken(
        id=issued.id, name="prometheus", scope=TokenScope.READ, hash=issued.hash,
        created_at=time.time()))
    assert server.runtime.web is not None
    server.runtime.web.app.state.auth.forget_cached()
    status, _ = await server.call("GET", "/metrics")
    assert status == 401
    families = await server.scrape(headers={"Authorization": f"Bearer {issued.text}"})
    assert "tocsin_check_up" in families


def test_a_scrape_of_ten_thousand_checks_renders_quickly() -> None:
    config = HTTPCheckConfig.model_validate({"type": "http", "name": "x"})
    now = time.time()
    snapshot = Snapshot(scheduler_runs=1, store_pending=0, outbox_pending=0)
    for n in range(10_000):
        spec: CheckSpec[Any] = CheckSpec(name=f"check-{n}", service=f"service-{n % 50}",
                                         service_url=None, interval=60, timeout=5,
                                         config=config)
        result = CheckResult(check=spec.name, status=CheckStatus.OK, started_at=now,
                             latency_ms=12.5)
        snapshot.checks.append((spec, result))
    started = time.perf_counter()
    text = render(snapshot).decode()
    elapsed = time.perf_counter() - started
    print(f"rendered 10,000 checks in {elapsed * 1000:.0f} ms ({len(text) / 1e6:.1f} MB)")
    assert text.count("tocsin_check_up{") == 10_000
    assert elapsed < 5.0
