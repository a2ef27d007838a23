"""The registry: statuses, timeouts, failures, messages, caching and single flight."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from tocsin.health import HealthRegistry, HealthStatus, Unhealthy
from tocsin.testing import FakeClock

HEALTHY, DEGRADED, UNHEALTHY = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY


async def fine() -> None:
    return None


async def broken() -> None:
    raise ConnectionRefusedError("connection refused by 10.0.0.5:5432")


async def hangs() -> None:
    await asyncio.Event().wait()


async def test_all_healthy_answers_200_with_every_check() -> None:
    health = HealthRegistry(version="1.4.2")
    health.add("database", fine)

    @health.check(critical=False)
    async def cache() -> str:
        return "3 keys"

    report = await health.run()

    assert report.status is HEALTHY
    assert report.http_status == 200
    document = report.as_dict()
    assert document["status"] == "healthy"
    assert document["version"] == "1.4.2"
    assert datetime.fromisoformat(document["timestamp"]).tzinfo is not None
    assert document["timestamp"].endswith("Z")
    assert set(document["checks"]) == {"database", "cache"}
    assert document["checks"]["database"]["status"] == "healthy"
    assert "message" not in document["checks"]["database"]
    assert document["checks"]["cache"]["message"] == "3 keys"
    assert document["checks"]["cache"]["latency_ms"] >= 0


async def test_failing_non_critical_check_is_degraded_200() -> None:
    health = HealthRegistry()
    health.add("database", fine)
    health.add("cache", broken, critical=False)

    report = await health.run()

    assert report.status is DEGRADED
    assert report.http_status == 200
    cache = report.as_dict()["checks"]["cache"]
    assert cache == {"status": "unhealthy", "latency_ms": cache["latency_ms"], "critical": False,
                     "message": "ConnectionRefusedError: connection refused by 10.0.0.5:5432"}


async def test_failing_critical_check_is_unhealthy_503() -> None:
    health = HealthRegistry()
    health.add("database", broken)
    health.add("cache", broken, critical=False)

    report = await health.run()

    assert report.status is UNHEALTHY
    assert report.http_status == 503


async def test_hanging_check_times_out_within_its_timeout() -> None:
    health = HealthRegistry()
    health.add("database", fine)
    health.add("search", hangs, timeout=0.2)

    start = time.perf_counter()
    report = await health.run()
    elapsed = time.perf_counter() - start

    assert 0.2 <= elapsed < 0.5
    assert report.status is UNHEALTHY
    assert report.checks["search"].message == "timed out after 0.2 s"
    assert report.checks["database"].status is HEALTHY


async def test_check_that_ignores_cancellation_does_not_hold_the_answer() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue  # a badly written check swallows the cancellation

    health = HealthRegistry()
    health.add("stubborn", stubborn, timeout=0.1)

    start = time.perf_counter()
    report = await health.run()

    assert time.perf_counter() - start < 0.3
    assert report.checks["stubborn"].message == "timed out after 0.1 s"
    release.set()
    await asyncio.sleep(0.1)  # let it end before the loop closes


async def test_raising_check_names_the_exception_type_without_traceback() -> None:
    async def no_message() -> None:
        raise KeyError

    async def says_why() -> None:
        raise Unhealthy("replica lag 42 s")

    async def returns_false() -> bool:
        return False

    def not_async() -> None:
        raise RuntimeError("boom\nTraceback (most recent call last):\n  File x")

    health = HealthRegistry()
    health.add("key", no_message)
    health.add("lag", says_why)
    health.add("flag", returns_false)
    health.add("sync", not_async)  # type: ignore[arg-type]

    checks = (await health.run()).checks

    assert checks["key"].message == "KeyError"
    assert checks["lag"].message == "replica lag 42 s"
    assert checks["flag"].message == "check returned False"
    assert checks["sync"].message == "RuntimeError: boom Traceback (most recent call last): File x"
    assert all(check.status is UNHEALTHY for check in checks.values())


async def test_messages_are_short_and_mask_credentials() -> None:
    async def leaky() -> None:
        raise OSError("cannot reach postgresql://app:s3cret@db:5432/app with password=hunter2 "
                      + "x" * 500)

    health = HealthRegistry()
    health.add("db", leaky)

    message = (await health.run()).checks["db"].message or ""

    assert "s3cret" not in message and "hunter2" not in message
    assert "postgresql://app:***@db" in message and "password=***" in message
    assert len(message) <= 200


async def test_burst_within_ttl_runs_once_then_again_after_it() -> None:
    clock = FakeClock()
    runs = 0

    async def counted() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)

    health = HealthRegistry(cache_ttl=2.0, clock=clock.now)
    health.add("database", counted)

    burst = await asyncio.gather(*(health.run() for _ in range(20)))
    assert runs == 1
    assert len({id(report) for report in burst}) == 1  # every caller shared the one run

    clock.advance(1.5)
    await health.run()
    assert runs == 1  # still within the TTL: the cached report

    clock.advance(1.0)
    await health.run()
    assert runs == 2


async def test_caller_that_goes_away_does_not_cancel_the_shared_run() -> None:
    runs = 0

    async def slow() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.1)

    health = HealthRegistry()
    health.add("slow", slow)
    impatient = asyncio.ensure_future(health.run())
    await asyncio.sleep(0.01)
    patient = asyncio.ensure_future(health.run())
    impatient.cancel()

    report = await patient

    assert report.status is HEALTHY
    assert runs == 1


async def test_zero_ttl_runs_every_time() -> None:
    runs = 0

    async def counted() -> None:
        nonlocal runs
        runs += 1

    health = HealthRegistry(cache_ttl=0)
    health.add("x", counted)
    await health.run()
    await health.run()

    assert runs == 2


async def test_no_checks_is_healthy() -> None:
    report = await HealthRegistry().run()

    assert report.status is HEALTHY
    assert report.as_dict()["checks"] == {}
    assert "version" not in report.as_dict()


def test_names_and_timeouts_are_validated() -> None:
    health = HealthRegistry()
    health.add("db", fine)
    with pytest.raises(ValueError, match="already registered"):
        health.add("db", fine)
    with pytest.raises(ValueError, match="positive"):
        health.add("other", fine, timeout=0)
    with pytest.raises(ValueError, match="cache_ttl"):
        HealthRegistry(cache_ttl=-1)
    assert health.names == ["db"]
