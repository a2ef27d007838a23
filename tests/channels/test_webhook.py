"""WebhookChannel against a local Alertmanager-format receiver (tests/fakes/webhook.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from targets import closed_port
from tests.channels.conftest import T0, notification, snapshot
from tests.fakes.webhook import AlertmanagerReceiver
from tocsin.alerting.model import AlertState, NotificationKind, Severity
from tocsin.channels import DeliveryError, build_channel
from tocsin.channels.webhook import ANNOTATION_CAP, WebhookChannel
from tocsin.config import ConfigError, load_config_text

SECRET = "whsec-0123456789abcdef"


def webhook(url: str, **options: Any) -> WebhookChannel:
    config: dict[str, Any] = {"type": "webhook", "url": url, "timeout": "5s"}
    config.update(options)
    channel = build_channel("hook", config)
    assert isinstance(channel, WebhookChannel)
    _opened.append(channel)
    return channel


_opened: list[WebhookChannel] = []


@pytest.fixture(autouse=True)
async def _close_channels() -> AsyncIterator[None]:
    yield
    while _opened:
        await _opened.pop().close()


@pytest.fixture
async def receiver() -> AsyncIterator[AlertmanagerReceiver]:
    async with AlertmanagerReceiver() as server:
        yield server


async def test_firing_alert_arrives_in_the_alertmanager_format(
        receiver: AlertmanagerReceiver) -> None:
    channel = webhook(f"{receiver.url}/alerts?token=abc")
    alert = snapshot(labels={"team": "core"}, value=1234.5, unit="ms", threshold="1000ms")

    await channel.send(notification(alert, incident_id="inc-7"))

    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/alerts?token=abc"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "n-1"
    assert "X-Tocsin-Signature" not in request.headers
    labels = {"alertname": "down", "check": "backend http", "fingerprint": "backend:http",
              "service": "backend", "severity": "P1", "team": "core"}
    annotations = {
        "summary": "backend:http is down", "message": "connection refused",
        "value": "1234.5ms", "threshold": "1000ms",
        "runbook_url": "https://runbooks.example.com/backend-down",
        "dashboard_url": "http://127.0.0.1:8080/alerts/backend:http",
        "ack_url": "http://127.0.0.1:8080/ack/abc123",
    }
    assert receiver.accepted == [{
        "version": "4",
        "groupKey": "tocsin/inc-7",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "hook",
        "groupLabels": {"service": "backend"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "http://127.0.0.1:8080",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": annotations,
            "startsAt": "2027-01-15T07:55:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:8080/alerts/backend:http",
            "fingerprint": "backend:http",
        }],
        "tocsin": {"kind": "firing", "key": "n-1", "severity": "P1",
                   "headline": "P1 FIRING backend:http is down",
                   "created_at": "2027-01-15T08:00:00Z", "high_priority": False,
                   "incident_id": "inc-7"},
    }]


async def test_resolution_is_resolved_with_an_end_time(receiver: AlertmanagerReceiver) -> None:
    alert = snapshot(state=AlertState.RESOLVED, ended_at=T0, ack_url=None)
    channel = webhook(receiver.url, external_url="https://tocsin.example.com/")

    await channel.send(notification(alert, kind=NotificationKind.RESOLVED))

    [body] = receiver.accepted
    assert body["status"] == "resolved"
    assert body["externalURL"] == "https://tocsin.example.com"
    assert body["alerts"][0]["status"] == "resolved"
    assert body["alerts"][0]["endsAt"] == "2027-01-15T08:00:00Z"
    assert body["tocsin"]["kind"] == "resolved"


async def test_common_labels_hold_only_what_every_alert_shares(
        receiver: AlertmanagerReceiver) -> None:
    first = snapshot()
    second = snapshot(fingerprint="backend:latency", rule="response_time > 1s",
                      severity=Severity.P2, summary="backend is slow")

    await webhook(receiver.url).send(notification(first, second,
                                                  kind=NotificationKind.UPDATE))

    [body] = receiver.accepted
    assert body["commonLabels"] == {"check": "backend http", "service": "backend"}
    assert body["groupKey"] == "tocsin/service=backend"
    assert [alert["fingerprint"] for alert in body["alerts"]] == ["backend:http",
                                                                  "backend:latency"]


async def test_signature_is_verifiable_by_the_receiver() -> None:
    async with AlertmanagerReceiver(secret=SECRET) as receiver:
        channel = webhook(receiver.url, secret=SECRET,
                          headers={"Authorization": "Bearer tkn-42"})
        await channel.send(notification())

    [request] = receiver.requests
    assert len(receiver.accepted) == 1  # the fake checked the signature too
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Tocsin-Signature"] == f"sha256={expected}"
    assert request.headers["X-Tocsin-Timestamp"].isdigit()
    assert request.headers["Authorization"] == "Bearer tkn-42"


async def test_wrong_secret_is_refused_permanently() -> None:
    async with AlertmanagerReceiver(secret=SECRET) as receiver:
        channel = webhook(receiver.url, secret="another-secret-of-16+")
        with pytest.raises(DeliveryError) as raised:
            await channel.send(notification())

    assert raised.value.permanent
    assert "HTTP 401" in raised.value.message
    assert len(receiver.requests) == 1


async def test_a_resend_is_byte_identical(receiver: AlertmanagerReceiver) -> None:
    channel = webhook(receiver.url, secret=SECRET)
    await channel.send(notification())
    await channel.send(notification())

    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["X-Tocsin-Signature"] == second.headers["X-Tocsin-Signature"]
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


async def test_429_is_transient_with_retry_after(receiver: AlertmanagerReceiver) -> None:
    receiver.fail_next(1, status=429, retry_after="7")
    channel = webhook(receiver.url)

    with pytest.raises(DeliveryError) as raised:
        await channel.send(notification())
    await channel.send(notification())  # the next attempt goes through

    assert not raised.value.permanent
    assert raised.value.retry_after == 7
    assert len(receiver.accepted) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_transient(receiver: AlertmanagerReceiver, status: int) -> None:
    receiver.fail_next(1, status=status)
    channel = webhook(receiver.url)

    with pytest.raises(DeliveryError) as raised:
        await channel.send(notification())

    assert not raised.value.permanent
    assert f"HTTP {status}" in raised.value.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413])
async def test_4xx_is_permanent(receiver: AlertmanagerReceiver, status: int) -> None:
    receiver.fail_next(1, status=status)
    channel = webhook(receiver.url)

    with pytest.raises(DeliveryError) as raised:
        await channel.send(notification())

    assert raised.value.permanent


async def test_hanging_receiver_times_out(receiver: AlertmanagerReceiver) -> None:
    receiver.hang_next()
    channel = webhook(receiver.url, timeout="0.3s")

    with pytest.raises(DeliveryError) as raised:
        await channel.send(notification())

    assert not raised.value.permanent
    assert "timed out" in raised.value.message


async def test_refused_connection_is_transient_and_hides_the_url() -> None:
    async with closed_port() as target:
        channel = webhook(f"{target.url}/hook/s3cr3t-token")
        with pytest.raises(DeliveryError) as raised:
            await channel.send(notification())

    assert not raised.value.permanent
    assert "s3cr3t-token" not in raised.value.message


async def test_secrets_echoed_by_the_receiver_are_masked(
        receiver: AlertmanagerReceiver) -> None:
    receiver.fail_next(1, status=400, body='{"error": "bad header Bearer tkn-42 for /t0k3n"}')
    channel = webhook(f"{receiver.url}/t0k3n", headers={"Authorization": "Bearer tkn-42"})

    with pytest.raises(DeliveryError) as raised:
        await channel.send(notification())

    assert "tkn-42" not in raised.value.message
    assert "***" in raised.value.message


async def test_two_megabyte_description_is_capped(receiver: AlertmanagerReceiver) -> None:
    alert = snapshot(description="x" * (2 * 1024 * 1024))

    await webhook(receiver.url).send(notification(alert))

    [body] = receiver.accepted
    description = body["alerts"][0]["annotations"]["description"]
    assert len(description.encode()) <= ANNOTATION_CAP
    assert description.endswith("…")
    # The alert's annotations and commonAnnotations (one alert: the same) hold it.
    assert len(receiver.requests[0].body) < 3 * ANNOTATION_CAP


async def test_non_ascii_and_emoji_arrive_intact(receiver: AlertmanagerReceiver) -> None:
    text = "Zürich 東京 — база недоступна 🔥"
    alert = snapshot(summary=text, message=text, labels={"région": "été"})

    await webhook(receiver.url).send(notification(alert, key="clé-🔥"))

    [request] = receiver.requests
    assert text.encode() in request.body  # sent as UTF-8, not \u escapes
    body = request.json()
    assert body["alerts"][0]["annotations"]["summary"] == text
    assert body["alerts"][0]["labels"]["région"] == "été"
    assert body["tocsin"]["key"] == "clé-🔥"
    assert request.headers["Idempotency-Key"] == "cl%C3%A9-%F0%9F%94%A5"


async def test_html_is_passed_as_data(receiver: AlertmanagerReceiver) -> None:
    alert = snapshot(message="<script>alert(1)</script>", summary='<b onclick="x">down</b>')

    await webhook(receiver.url).send(notification(alert))

    [body] = receiver.accepted
    assert body["alerts"][0]["annotations"]["message"] == "<script>alert(1)</script>"
    assert body["alerts"][0]["annotations"]["summary"] == '<b onclick="x">down</b>'


def test_missing_url_variable_names_it() -> None:
    text = "channels:\n  hook: {type: webhook, url: \"${ALERT_WEBHOOK_URL}\"}\n"

    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "t.yaml", env={})

    [issue] = raised.value.issues
    assert issue.path == "channels.hook.url"
    assert "ALERT_WEBHOOK_URL is not set" in issue.message


def test_missing_header_and_secret_variables_are_named() -> None:
    text = ("channels:\n  hook:\n    type: webhook\n    url: https://hooks.example.com/x\n"
            "    secret: ${HOOK_SIGNING_SECRET}\n"
            "    headers: {Authorization: \"Bearer ${HOOK_TOKEN}\"}\n")

    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "t.yaml", env={})

    messages = " ".join(issue.message for issue in raised.value.issues)
    assert "HOOK_SIGNING_SECRET is not set" in messages
    assert "HOOK_TOKEN is not set" in messages


def test_config_from_the_environment_loads() -> None:
    text = ("channels:\n  hook:\n    type: webhook\n    url: ${ALERT_WEBHOOK_URL}\n"
            "    secret: ${HOOK_SIGNING_SECRET}\n")
    env = {"ALERT_WEBHOOK_URL": "https://hooks.example.com/T0K3N",
           "HOOK_SIGNING_SECRET": SECRET}

    loaded = load_config_text(text, "t.yaml", env=env)

    config = loaded.config.channels["hook"]
    assert config.url.get_secret_value() == "https://hooks.example.com/T0K3N"
    assert "T0K3N" not in repr(config)
    assert loaded.redactor.redact("posting to https://hooks.example.com/T0K3N") == \
        "posting to ***"


@pytest.mark.parametrize(("options", "message"), [
    ({"url": "ftp://hooks.example.com/T0K3N"}, "http:// or https://"),
    ({"url": "https://h.example/x", "headers": {"Content-Type": "text/plain"}},
     "set by Tocsin"),
    ({"url": "https://h.example/x", "headers": {"X-A": "a\r\nInjected: 1"}}, "line break"),
    ({"url": "https://h.example/x", "secret": "short"}, "at least 16"),
])
def test_bad_config_is_refused_without_repeating_secrets(options: dict[str, Any],
                                                          message: str) -> None:
    text = "channels:\n  hook: " + json.dumps({"type": "webhook", **options}) + "\n"

    with pytest.raises(ConfigError) as raised:
        load_config_text(text, "t.yaml", env={})

    [issue] = raised.value.issues
    assert message in issue.message
    assert "T0K3N" not in str(raised.value)
