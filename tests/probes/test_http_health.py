"""The http check reads a health answer: which sub-check fails, degraded or unhealthy."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from asgi_server import serve_asgi
from targets import http_target, scripted_target
from tocsin.alerting.engine import AlertEngine, AlertingBatch, EngineSettings
from tocsin.alerting.model import AlertState, NotificationKind
from tocsin.config import load_config_text
from tocsin.health import HealthRegistry, Unhealthy
from tocsin.probes import CheckStatus, ProbeContext, build_probe
from tocsin.probes.http import HTTPProbe
from tocsin.probes.http_health import HEALTH_BODY_LIMIT, MAX_FAILING
from tocsin.testing import FakeClock

OK, FAILING = CheckStatus.OK, CheckStatus.FAILING
MakeHTTPProbe = Callable[..., HTTPProbe]  # the ``http_probe`` fixture of conftest.py


def answer(body: object, status: str = "200 OK", content_type: str = "application/json") -> bytes:
    """A raw HTTP response carrying ``body`` (JSON-encoded unless bytes)."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
    return head.encode() + payload


async def probe_answer(http_probe: MakeHTTPProbe, raw: bytes, **config: Any) -> Any:
    async with scripted_target(raw) as target:
        return await http_probe(target.url, path="/health", **config).run()


# -- reading the shapes --------------------------------------------------------------------------


async def test_degraded_tocsin_answer_is_ok_naming_the_failing_sub_check(
    http_probe: MakeHTTPProbe,
) -> None:
    body = {"status": "degraded", "version": "1.0", "timestamp": "2026-10-01T08:00:00Z",
            "checks": {"database": {"status": "healthy", "latency_ms": 1.2},
                       "cache": {"status": "unhealthy", "message": "timed out after 2 s",
                                 "latency_ms": 2000.0}}}

    result = await probe_answer(http_probe, answer(body))

    assert result.status is OK
    assert result.message == "degraded: cache — timed out after 2 s"
    assert result.values["health_degraded"] == 1
    assert result.details["health"] == {
        "status": "degraded",
        "failing": [{"name": "cache", "status": "unhealthy", "message": "timed out after 2 s"}]}


async def test_unhealthy_503_is_failing_naming_the_sub_checks(http_probe: MakeHTTPProbe) -> None:
    body = {"status": "unhealthy",
            "checks": {"database": {"status": "unhealthy", "message": "OperationalError: x"},
                       "disk": {"status": "unhealthy", "message": "95.0% used"}}}

    result = await probe_answer(http_probe, answer(body, "503 Service Unavailable"))

    assert result.status is FAILING
    assert result.message == ("status 503 not in 200-399; "
                              "unhealthy: database — OperationalError: x; disk — 95.0% used")
    assert "health_degraded" not in result.values
    assert [check["name"] for check in result.details["health"]["failing"]] == ["database", "disk"]


async def test_unhealthy_under_200_is_failing_too(http_probe: MakeHTTPProbe) -> None:
    result = await probe_answer(http_probe, answer({"status": "down", "checks": {"db": "down"}}))

    assert result.status is FAILING
    assert result.message == "unhealthy: db"


async def test_healthy_answer_is_ok_with_no_message(http_probe: MakeHTTPProbe) -> None:
    body = {"status": "healthy", "checks": {"database": {"status": "healthy"}}}

    result = await probe_answer(http_probe, answer(body))

    assert result.status is OK
    assert result.message == ""
    assert result.values["health_degraded"] == 0
    assert result.details["health"] == {"status": "healthy", "failing": []}


async def test_ietf_health_json_warn(http_probe: MakeHTTPProbe) -> None:
    body = {"status": "warn", "version": "1", "checks": {
        "db:responseTime": [{"componentId": "a", "status": "pass"},
                            {"componentId": "b", "status": "warn", "output": "slow: 900 ms"}],
        "uptime": [{"status": "pass"}]}}

    result = await probe_answer(http_probe, answer(body, content_type="application/health+json"))

    assert result.status is OK
    assert result.message == "degraded: db:responseTime — slow: 900 ms"
    assert result.values["health_degraded"] == 1
    assert result.details["health"]["failing"] == [
        {"name": "db:responseTime", "status": "degraded", "message": "slow: 900 ms"}]


async def test_ietf_health_json_without_checks(http_probe: MakeHTTPProbe) -> None:
    raw = answer({"status": "fail", "output": "maintenance"}, "503 Service Unavailable",
                 content_type="application/health+json; charset=utf-8")

    result = await probe_answer(http_probe, raw)

    assert result.status is FAILING
    assert result.message == "status 503 not in 200-399; unhealthy"


async def test_spring_boot_actuator_down(http_probe: MakeHTTPProbe) -> None:
    body = {"status": "DOWN", "components": {
        "db": {"status": "DOWN", "details": {"error": "org.h2.jdbc.JdbcSQLException: gone"}},
        "ping": {"status": "UP"}}}
    raw = answer(body, "503 Service Unavailable",
                 content_type="application/vnd.spring-boot.actuator.v3+json")

    result = await probe_answer(http_probe, raw)

    assert result.status is FAILING
    assert result.message.endswith("unhealthy: db — org.h2.jdbc.JdbcSQLException: gone")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (answer({"status": "degraded", "checks": {"a": "down"}}, content_type="text/plain"),
         "not JSON by its content type"),
        (answer({"status": "degraded"}), "no checks object"),
        (answer({"status": "busy", "checks": {}}), "an unknown status word"),
        (answer([{"status": "down"}]), "not an object"),
        (answer(b'{"status": "degraded", "checks": {'), "not valid JSON"),
        (answer({"items": [1, 2, 3]}), "no status"),
    ],
)
async def test_answers_that_are_not_health_documents_are_judged_as_before(
    http_probe: MakeHTTPProbe, raw: bytes, why: str,
) -> None:
    result = await probe_answer(http_probe, raw)

    assert result.status is OK, why
    assert result.message == "", why
    assert result.details == {}, why
    assert "health_degraded" not in result.values, why


async def test_a_large_json_answer_is_not_kept_for_health(http_probe: MakeHTTPProbe) -> None:
    padding = "x" * HEALTH_BODY_LIMIT
    body = {"status": "unhealthy", "checks": {"db": "down"}, "padding": padding}

    result = await probe_answer(http_probe, answer(body))

    assert result.status is OK
    assert result.details == {}


async def test_what_the_target_says_is_cut_short(http_probe: MakeHTTPProbe) -> None:
    checks = {f"{'n' * 500}{index}": {"status": "unhealthy", "message": "m" * 1000}
              for index in range(MAX_FAILING + 5)}

    result = await probe_answer(http_probe, answer({"status": "degraded", "checks": checks}))

    health = result.details["health"]
    assert len(health["failing"]) == MAX_FAILING
    assert health["more_failing"] == 5
    assert all(len(check["name"]) <= 80 and len(check["message"]) <= 160
               for check in health["failing"])
    assert result.message.endswith("; 5 more")


async def test_json_conditions_and_health_together(http_probe: MakeHTTPProbe) -> None:
    body = {"status": "degraded", "version": "2", "checks": {"cache": {"status": "unhealthy"}}}

    result = await probe_answer(http_probe, answer(body), expect={"json": {"version": "3"}})

    assert result.status is FAILING
    assert result.message == "version is '2', expected '3'; degraded: cache"


async def test_existing_json_document_keeps_its_verdict(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:  # {"status": "ok", "checks": {"cache": "degraded", …}}
        result = await http_probe(target.url, path="/json").run()

    assert result.status is OK
    assert result.message == ""
    assert result.values["health_degraded"] == 0
    assert result.details["health"]["failing"] == [
        {"name": "cache", "status": "degraded", "message": ""}]


async def test_plain_answers_carry_no_health(http_probe: MakeHTTPProbe) -> None:
    async with http_target() as target:
        result = await http_probe(target.url, path="/health").run()

    assert result.details == {}
    assert set(result.values) == {"response_time", "status_code"}


# -- end to end: an app using tocsin.health, checked by Tocsin -----------------------------------


def health_app(state: dict[str, bool]) -> FastAPI:
    """A FastAPI app whose database (critical) and cache (not) fail when ``state`` says."""

    async def database() -> None:
        if not state["database"]:
            raise ConnectionRefusedError("connection refused")

    async def cache() -> None:
        if not state["cache"]:
            raise Unhealthy("timed out after 2 s")

    health = HealthRegistry(version="1.4.2", cache_ttl=0)
    health.add("database", database)
    health.add("cache", cache, critical=False)
    app = FastAPI()
    app.include_router(health.router("/health"))
    return app


CONFIG = """\
channels: {chat: {type: recording}}
policies:
  P1: {channels: [chat]}
  P3: {channels: [chat]}
services:
  backend:
    url: {url}
    checks:
      - type: http
        name: backend health
        path: /health
        alerts:
          - {when: down, severity: P1}
          - {when: "health_degraded == 1", severity: P3}
"""


async def test_app_using_tocsin_health_checked_by_tocsin(context: ProbeContext) -> None:
    state = {"database": True, "cache": True}
    clock = FakeClock()
    batches: list[AlertingBatch] = []
    async with serve_asgi(health_app(state)) as url:
        loaded = load_config_text(CONFIG.replace("{url}", url), "test.yaml", env={})
        config = loaded.config
        engine = AlertEngine(EngineSettings(policies=config.policies,
                                            channels=tuple(config.channels or {})),
                             clock, batches.append)
        engine.configure(engine.settings, loaded.checks)
        probe = build_probe(loaded.checks[0], context)
        assert probe is not None

        healthy = await probe.run()
        state["cache"] = False
        degraded = await probe.run()
        engine.observe(degraded)
        state["database"] = False
        unhealthy = await probe.run()

    assert healthy.status is OK and healthy.message == ""
    assert healthy.values["health_degraded"] == 0

    assert degraded.status is OK
    assert degraded.code == 200
    assert degraded.message == "degraded: cache — timed out after 2 s"
    assert degraded.values["health_degraded"] == 1
    alert = engine.alerts["backend health:health_degraded"]
    assert alert.state is AlertState.FIRING
    firing = [d.notification for batch in batches for d in batch.deliveries
              if d.notification.kind is NotificationKind.FIRING]
    assert firing[0].alerts[0].message == "degraded: cache — timed out after 2 s"

    assert unhealthy.status is FAILING
    assert unhealthy.code == 503
    assert unhealthy.message == (
        "status 503 not in 200-399; unhealthy: database — ConnectionRefusedError: connection "
        "refused; cache — timed out after 2 s")
