"""PagerDutyChannel against a local fake of the Events API v2 (tests/fakes/pagerduty.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from targets import closed_port
from tests.channels.conftest import T0, notification, snapshot
from tests.fakes.pagerduty import FakePagerDuty
from tocsin.alerting.model import AlertState, NotificationKind, Severity
from tocsin.channels import DeliveryError, build_channel
from tocsin.channels.pagerduty import PagerDutyChannel, dedup_key
from tocsin.config import ConfigError, load_config_text

KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
assert len(KEY) == 32

_opened: list[PagerDutyChannel] = []


def pagerduty(base_url: str, **options: Any) -> PagerDutyChannel:
    config: dict[str, Any] = {"type": "pagerduty", "routing_key": KEY, "base_url": base_url,
                              "timeout": "5s"}
    config.update(options)
    channel = build_channel("pd", config)
    assert isinstance(channel, PagerDutyChannel)
    _opened.append(channel)
    return channel


@pytest.fixture(autouse=True)
async def _close_channels() -> AsyncIterator[None]:
    yield
    while _opened:
        await _opened.pop().close()


@pytest.fixture
async def fake() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty(known_keys=frozenset({KEY})) as server:
        yield server


async def test_firing_alert_triggers_one_event_with_the_full_payload(
        fake: FakePagerDuty) -> None:
    alert = snapshot(labels={"team": "core"}, value=1234.5, unit="ms", threshold="1000ms")

    await pagerduty(fake.url).send(notification(alert, incident_id="inc-7"))

    [request] = fake.requests
    assert request.path == "/v2/enqueue"
    assert request.headers["Content-Type"] == "application/json"
    assert fake.events == [{
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "backend:http",
        "payload": {
            "summary": "backend:http is down",
            "source": "backend",
            "severity": "critical",
            "timestamp": "2027-01-15T07:55:00Z",
            "component": "backend http",
            "group": "backend",
            "class": "down",
            "custom_details": {
                "fingerprint": "backend:http", "state": "firing", "severity": "P1 critical",
                "rule": "down", "kind": "firing", "message": "connection refused",
                "value": "1234.5ms", "threshold": "1000ms", "since": "2027-01-15T07:55:00Z",
                "runbook": "https://runbooks.example.com/backend-down",
                "incident_id": "inc-7",
                "labels": {"alertname": "down", "check": "backend http",
                           "fingerprint": "backend:http", "service": "backend",
                           "severity": "P1", "team": "core"},
            },
        },
        "links": [
            {"href": "http://127.0.0.1:8080/alerts/backend:http", "text": "Tocsin dashboard"},
            {"href": "https://runbooks.example.com/backend-down", "text": "Runbook"},
        ],
        "client": "Tocsin",
        "client_url": "http://127.0.0.1:8080",
    }]


@pytest.mark.parametrize(("severity", "expected"), [
    (Severity.P1, "critical"), (Severity.P2, "error"), (Severity.P3, "warning"),
    (Severity.P4, "info"),
])
async def test_severities_map_to_pagerduty_severities(fake: FakePagerDuty, severity: Severity,
                                                      expected: str) -> None:
    await pagerduty(fake.url).send(notification(snapshot(severity=severity)))

    assert fake.events[0]["payload"]["severity"] == expected


@pytest.mark.parametrize(("kind", "action"), [
    (NotificationKind.FIRING, "trigger"), (NotificationKind.UPDATE, "trigger"),
    (NotificationKind.REPEAT, "trigger"), (NotificationKind.ESCALATION, "trigger"),
    (NotificationKind.FLAPPING, "trigger"), (NotificationKind.TEST, "trigger"),
    (NotificationKind.ACKNOWLEDGED, "acknowledge"), (NotificationKind.RESOLVED, "resolve"),
])
async def test_each_kind_sends_its_event_action(fake: FakePagerDuty, kind: NotificationKind,
                                                action: str) -> None:
    await pagerduty(fake.url).send(notification(kind=kind))

    [event] = fake.events
    assert event["event_action"] == action
    assert event["dedup_key"] == "backend:http"


async def test_acknowledge_and_resolve_carry_only_the_key_fields(fake: FakePagerDuty) -> None:
    channel = pagerduty(fake.url)
    resolved = snapshot(state=AlertState.RESOLVED, ended_at=T0)

    await channel.send(notification(kind=NotificationKind.ACKNOWLEDGED))
    await channel.send(notification(resolved, kind=NotificationKind.RESOLVED))

    assert fake.events == [
        {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "backend:http"},
        {"routing_key": KEY, "event_action": "resolve", "dedup_key": "backend:http"},
    ]


def test_the_channel_receives_acknowledgements() -> None:
    assert PagerDutyChannel.receives_acknowledgements is True
    assert build_channel("x", {"type": "webhook", "url": "https://h.example/x"}) \
        .receives_acknowledgements is False


async def test_digest_is_not_sent(fake: FakePagerDuty, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tocsin.channels.pagerduty")
    alerts = (snapshot(severity=Severity.P4), snapshot(fingerprint="b:x", severity=Severity.P4))

    await pagerduty(fake.url).send(notification(*alerts, kind=NotificationKind.DIGEST))

    assert fake.requests == []
    assert "digests are not pages" in caplog.text


async def test_each_alert_of_a_notification_is_its_own_event(fake: FakePagerDuty) -> None:
    first = snapshot()
    second = snapshot(fingerprint="backend:latency", severity=Severity.P2,
                      summary="backend is slow", rule="response_time > 1s")

    await pagerduty(fake.url).send(notification(first, second, kind=NotificationKind.UPDATE))

    assert [(event["dedup_key"], event["payload"]["severity"]) for event in fake.events] == [
        ("backend:http", "critical"), ("backend:latency", "error")]


async def test_a_failure_midway_raises_and_the_resend_is_deduplicated(
        fake: FakePagerDuty) -> None:
    channel = pagerduty(fake.url)
    first, second = snapshot(), snapshot(fingerprint="backend:latency")
    fake.requests.clear()
    fake.fail_next(1, status=202, body='{"status":"success"}')  # the first goes through
    fake.fail_next(1, status=503)

    with pytest.raises(DeliveryError) as raised:
        await channel.send(notification(first, second))
    await channel.send(notification(first, second))  # the outbox's retry: both again

    assert not raised.value.permanent
    assert "event 2 of 2" in raised.value.message
    assert "'backend:latency'" in raised.value.message
    assert [event["dedup_key"] for event in fake.events] == ["backend:http", "backend:latency"]


async def test_unknown_routing_key_is_permanent_and_masked() -> None:
    async with FakePagerDuty(known_keys=frozenset({"k" * 32})) as fake:
        channel = pagerduty(fake.url)
        with pytest.raises(DeliveryError) as raised:
            await channel.send(notification())

    assert raised.value.permanent
    assert "HTTP 400" in raised.value.message
    assert "Invalid routing key" in raised.value.message
    assert KEY not in raised.value.message
    assert len(fake.requests) == 1  # refused, not retried


async def test_429_is_transient_with_retry_after(fake: FakePagerDuty) -> None:
    fake.fail_next(1, status=429, retry_after="30",
                   body='{"status":"throttle event","message":"Requests for this service '
                        'are arriving too quickly."}')

    with pytest.raises(DeliveryError) as raised:
        await pagerduty(fake.url).send(notification())

    assert not raised.value.permanent
    assert raised.value.retry_after == 30


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_transient(fake: FakePagerDuty, status: int) -> None:
    fake.fail_next(1, status=status)

    with pytest.raises(DeliveryError) as raised:
        await pagerduty(fake.url).send(notification())

    assert not raised.value.permanent


async def test_hanging_api_times_out(fake: FakePagerDuty) -> None:
    fake.hang_next()

    with pytest.raises(DeliveryError) as raised:
        await pagerduty(fake.url, timeout="0.3s").send(notification())

    assert not raised.value.permanent
    assert "timed out" in raised.value.message


async def test_refused_connection_is_transient() -> None:
    async with closed_port() as target:
        with pytest.raises(DeliveryError) as raised:
            await pagerduty(target.url).send(notification())

    assert not raised.value.permanent
    assert KEY not in raised.value.message


async def test_two_megabyte_description_fits_the_limits(fake: FakePagerDuty) -> None:
    alert = snapshot(description="é" * (2 * 1024 * 1024), summary="s" * 5000)

    await pagerduty(fake.url).send(notification(alert))

    [event] = fake.events  # the fake refuses summaries over 1024 and events over 512 KiB
    assert len(event["payload"]["summary"]) == 1024
    assert event["payload"]["summary"].endswith("…")
    assert event["payload"]["custom_details"]["description"].endswith("…")
    assert len(fake.requests[0].body) <= 512 * 1024


async def test_many_large_details_still_fit(fake: FakePagerDuty) -> None:
    labels = {f"label{index}": "v" * 60_000 for index in range(12)}

    await pagerduty(fake.url).send(notification(snapshot(labels=labels)))

    [event] = fake.events
    assert set(event["payload"]["custom_details"]) == {"fingerprint", "rule", "note"}


async def test_long_fingerprint_gets_a_stable_short_dedup_key(fake: FakePagerDuty) -> None:
    fingerprint = "svc:" + "x" * 400

    await pagerduty(fake.url).send(notification(snapshot(fingerprint=fingerprint)))

    [event] = fake.events
    assert len(event["dedup_key"]) == 255
    assert event["dedup_key"] == dedup_key(fingerprint)
    assert dedup_key(fingerprint) != dedup_key(fingerprint + "y")


async def test_non_ascii_emoji_and_html_arrive_as_data(fake: FakePagerDuty) -> None:
    text = "Zürich 東京 🔥 <script>alert(1)</script>"

    await pagerduty(fake.url).send(notification(snapshot(summary=text, message=text)))

    [request] = fake.requests
    event = request.json()
    assert event["payload"]["summary"] == text
    assert event["payload"]["custom_details"]["message"] == text


def test_missing_routing_key_variable_names_it() -> None:
    text = "channels:\n  pd: {type: pagerduty, routing_key: \"${PAGERDUTY_ROUTING_KEY}\"}\n"

    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "t.yaml", env={})

    [issue] = raised.value.issues
    assert issue.path == "channels.pd.routing_key"
    assert "PAGERDUTY_ROUTING_KEY is not set" in issue.message


def test_routing_key_of_the_wrong_length_is_refused_without_repeating_it() -> None:
    text = "channels:\n  pd: {type: pagerduty, routing_key: \"${PAGERDUTY_ROUTING_KEY}\"}\n"

    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "t.yaml", env={"PAGERDUTY_ROUTING_KEY": "abc123secret"})

    [issue] = raised.value.issues
    assert "32-character" in issue.message
    assert "12 characters" in issue.message
    assert "abc123secret" not in str(raised.value)


def test_config_loads_with_a_key_from_the_environment() -> None:
    text = ("channels:\n  pd:\n    type: pagerduty\n    routing_key: ${PAGERDUTY_ROUTING_KEY}\n"
            "    base_url: http://127.0.0.1:9/\n")

    loaded = load_config_text(text, "t.yaml", env={"PAGERDUTY_ROUTING_KEY": KEY})

    config = loaded.config.channels["pd"]
    assert config.base_url == "http://127.0.0.1:9"
    assert KEY not in repr(config)
    assert KEY not in json.dumps(config.model_dump(mode="json"))
